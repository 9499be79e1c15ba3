//! P5: the idle daemon. Starts the real `nazorg serve` on a fresh installation, lets it
//! settle after its catch-up round, then watches it for a window: resident memory from
//! `/proc/PID/status` (VmRSS, VmHWM) and wake-ups, counted as the times any of its threads
//! was scheduled onto a CPU (`/proc/PID/task/*/schedstat`, third field) plus their
//! voluntary context switches (`/proc/PID/task/*/status`).
//!
//! Two configurations: "between ticks" (sweep once a year, `dispatch.interval` one hour:
//! nothing is due in the window, so any wake-up is needless) and "default ticks" (sweep
//! every five minutes, dispatch every 30 s, as shipped).
//!
//! `cargo bench --bench idle` watches 60 s each and asserts that nothing woke between
//! ticks; without `--bench` (as `cargo test --all-targets` runs it) a 3 s smoke window,
//! printed only. `BENCH_WINDOW=S` overrides the window.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::*;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Threads of the process and, per thread, (times scheduled, voluntary switches).
fn threads(pid: u32) -> Vec<(String, u64, u64)> {
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return out;
    };
    for t in dir.flatten() {
        let path = t.path();
        let slices = std::fs::read_to_string(path.join("schedstat"))
            .ok()
            .and_then(|s| s.split_whitespace().nth(2).and_then(|v| v.parse().ok()))
            .unwrap_or(0);
        let status = std::fs::read_to_string(path.join("status")).unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        let name = std::fs::read_to_string(path.join("comm"))
            .unwrap_or_default()
            .trim()
            .to_string();
        out.push((
            format!("{}:{name}", t.file_name().to_string_lossy()),
            slices,
            field("voluntary_ctxt_switches:"),
        ));
    }
    out
}

fn kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

struct Watched {
    rss_kib: u64,
    hwm_kib: u64,
    wakeups: u64,
    switches: u64,
    threads: usize,
    busy: Vec<(String, u64)>,
}

fn watch(pid: u32, window: Duration) -> Watched {
    let before = threads(pid);
    std::thread::sleep(window);
    let after = threads(pid);
    let mut wakeups = 0;
    let mut switches = 0;
    let mut busy = Vec::new();
    for (name, slices, vol) in &after {
        let (s0, v0) = before
            .iter()
            .find(|(n, _, _)| n == name)
            .map(|(_, s, v)| (*s, *v))
            .unwrap_or((0, 0));
        let d = slices.saturating_sub(s0);
        wakeups += d;
        switches += vol.saturating_sub(v0);
        if d > 0 {
            busy.push((name.clone(), d));
        }
    }
    Watched {
        rss_kib: kib(pid, "VmRSS:"),
        hwm_kib: kib(pid, "VmHWM:"),
        wakeups,
        switches,
        threads: after.len(),
        busy,
    }
}

struct Serving {
    child: Child,
}

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `nazorg serve` and waits for its catch-up round (the first "sweep"-free status).
fn serve(dir: &std::path::Path, sweep: &str, dispatch: &str) -> Serving {
    let config = config_text()
        .replace("sweep = \"0 */5 * * * *\"", &format!("sweep = \"{sweep}\""))
        .replacen(
            "[mail]\n",
            &format!("[dispatch]\ninterval = \"{dispatch}\"\n[mail]\n"),
            1,
        )
        + "[api]\nlisten = \"127.0.0.1:0\"\n";
    let path = dir.join("nazorg.toml");
    std::fs::write(&path, config).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_nazorg"))
        .arg("--config")
        .arg(&path)
        .arg("serve")
        .env("NAZORG_LOG", "info")
        .env_remove("NOTIFY_SOCKET")
        .env_remove("NAZORG_CONFIG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("nazorg serve starts");
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let started = Instant::now();
    let mut log = String::new();
    loop {
        match rx.recv_timeout(Duration::from_secs(1)) {
            Ok(line) => {
                log.push_str(&line);
                log.push('\n');
                if line.contains("nazorg daemon ready") {
                    break;
                }
            }
            Err(_) => assert!(
                started.elapsed() < Duration::from_secs(60),
                "daemon not ready:\n{log}"
            ),
        }
    }
    Serving { child }
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let window = Duration::from_secs(
        std::env::var("BENCH_WINDOW")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(if full { 60 } else { 3 }),
    );
    // The catch-up round, then the tokio blocking pool's threads time out (10 s idle).
    let settle = Duration::from_secs(if full { 15 } else { 2 });
    let load_before = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let mut rows = Vec::new();
    let mut between = None;
    for (label, sweep, dispatch) in [
        (
            "between ticks (sweep yearly, dispatch hourly)",
            "0 0 3 1 1 *",
            "PT1H",
        ),
        (
            "default ticks (sweep 5 min, dispatch 30 s)",
            "0 */5 * * * *",
            "PT30S",
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let daemon = serve(dir.path(), sweep, dispatch);
        std::thread::sleep(settle);
        let pid = daemon.child.id();
        let w = watch(pid, window);
        rows.push((
            label.to_string(),
            format!(
                "RSS {:.1} MiB (peak {:.1} MiB), {} threads, {} wake-ups in {} s ({} voluntary switches){}",
                w.rss_kib as f64 / 1024.0,
                w.hwm_kib as f64 / 1024.0,
                w.threads,
                w.wakeups,
                window.as_secs(),
                w.switches,
                if w.busy.is_empty() {
                    String::new()
                } else {
                    format!(
                        "; woken: {}",
                        w.busy
                            .iter()
                            .map(|(n, d)| format!("{n} ×{d}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                }
            ),
        ));
        if between.is_none() {
            between = Some((w.wakeups, w.rss_kib));
        }
    }
    rows.push((
        "load average at start".into(),
        load_before
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" "),
    ));
    let profile = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    table(&format!("P5 idle daemon ({profile} binary)"), &rows);
    if full {
        let (wakeups, rss) = between.unwrap_or_default();
        assert_eq!(wakeups, 0, "the idle daemon woke between ticks");
        println!(
            "goal RSS ≤ 30 MB: {}",
            if rss * 1024 <= 30_000_000 {
                "met"
            } else {
                "NOT met"
            }
        );
    }
}
