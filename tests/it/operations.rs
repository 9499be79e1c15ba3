//! The daemon as an operator runs it: start and stop never held by the network, systemd's
//! watchdog, stale claims after a crash, readiness apart from liveness, journald
//! priorities, and the operator commands (backup, status, healthcheck, version,
//! default-config).

use crate::support::daemon::Daemon;
use crate::support::env::*;
use crate::support::http;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const EPISODE: &str = "2026-01-05";
const ENROL_AT: &str = "2026-01-06T10:00:00+01:00";
/// Two slots of each family are overdue at this instant.
const SERVE_AT: &str = "2026-03-02T10:00:00+01:00";

fn enrol(env: &TestEnv, n: usize) {
    for i in 0..n {
        let muni = if i % 2 == 0 { AMSTERDAM } else { ROTTERDAM };
        env.enrol(
            ENROL_AT,
            &family_body(muni, "standard", EPISODE, &format!("OPS{i}")),
        );
    }
}

fn poll(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A mail relay that accepts TCP connections and never says a word (the classic hung
/// relay). Connections are held until the relay is dropped.
struct SilentRelay {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    held: Arc<Mutex<Vec<TcpStream>>>,
}

impl SilentRelay {
    fn start() -> SilentRelay {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let held = Arc::new(Mutex::new(Vec::new()));
        let (s, h) = (stop.clone(), held.clone());
        std::thread::spawn(move || {
            // Bounded: at most 10 minutes, ends when the test drops the relay.
            let start = Instant::now();
            while !s.load(Ordering::Relaxed) && start.elapsed() < Duration::from_secs(600) {
                match listener.accept() {
                    Ok((stream, _)) => h.lock().unwrap().push(stream),
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        });
        SilentRelay { addr, stop, held }
    }

    fn connections(&self) -> usize {
        self.held.lock().unwrap().len()
    }

    fn mail_config(&self) -> String {
        format!(
            "transport = \"smtp\"\nurl = \"smtp://127.0.0.1:{}?tls=none\"",
            self.addr.port()
        )
    }
}

impl Drop for SilentRelay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Reads datagrams from a test NOTIFY_SOCKET until one holds `needle` (bounded).
fn recv_until(sock: &UnixDatagram, needle: &str, limit: Duration) -> Duration {
    let start = Instant::now();
    let mut buf = [0u8; 4096];
    loop {
        assert!(start.elapsed() < limit, "no {needle} within {limit:?}");
        if let Ok(n) = sock.recv(&mut buf) {
            let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
            if msg.lines().any(|l| l == needle) {
                return start.elapsed();
            }
        }
    }
}

fn notify_socket(env: &TestEnv) -> (UnixDatagram, std::path::PathBuf) {
    let path = env.path("notify.sock");
    let sock = UnixDatagram::bind(&path).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    (sock, path)
}

fn api_addr(d: &mut Daemon) -> SocketAddr {
    d.wait_log("api listening", Duration::from_secs(20));
    d.log()
        .lines()
        .find(|l| l.contains("api listening"))
        .and_then(|l| l.split("addr=").nth(1))
        .and_then(|a| a.split_whitespace().next())
        .unwrap()
        .parse()
        .unwrap()
}

fn pending(env: &TestEnv) -> usize {
    env.outbox()
        .iter()
        .filter(|m| m["status"] == "pending")
        .count()
}

/// With 24 messages queued and a relay that never answers, systemd hears READY=1 within
/// 5 s, SIGTERM ends the daemon within 10 s, and every message is still queued.
#[test]
fn a_silent_relay_holds_neither_start_nor_stop() {
    let relay = SilentRelay::start();
    let env = TestEnv::with_mail(&relay.mail_config());
    enrol(&env, 8);
    env.ok(&["--at", SERVE_AT, "sweep", "--no-dispatch"]);
    let queued = env.outbox().len();
    assert_eq!(
        queued, 24,
        "two overdue notices and the new-family notice per family"
    );

    let (sock, sock_path) = notify_socket(&env);
    let d = Daemon::spawn(
        &env,
        "silent",
        &["--at", SERVE_AT, "serve"],
        Some(&sock_path),
    );
    let ready = recv_until(&sock, "READY=1", Duration::from_secs(5));
    assert!(ready < Duration::from_secs(5), "READY after {ready:?}");
    // The dispatcher is now stuck inside an SMTP exchange with the silent relay.
    poll("a connection to the relay", Duration::from_secs(10), || {
        relay.connections() > 0
    });
    let asked = Instant::now();
    d.signal("-TERM");
    let log = d.exits_cleanly();
    assert!(
        asked.elapsed() < Duration::from_secs(10),
        "stopped after {:?}",
        asked.elapsed()
    );
    assert!(log.contains("nazorg daemon stopping"), "{log}");
    // Nothing lost, nothing given up on: every message waits for the relay.
    let outbox = env.outbox();
    assert_eq!(outbox.len(), queued);
    assert!(
        outbox.iter().all(|m| m["status"] == "pending"),
        "{outbox:?}"
    );
    assert!(
        env.ok(&["outbox", "list", "--failed"])
            .contains("no messages")
    );
}

/// `WATCHDOG_USEC` set: the worker loop pings systemd's watchdog.
#[test]
fn the_watchdog_is_pinged_from_the_worker_loop() {
    let env = TestEnv::new();
    let (sock, sock_path) = notify_socket(&env);
    // systemd names the watched process in WATCHDOG_PID: `exec` from a shell keeps its pid.
    let inner = env.command(&["--at", SERVE_AT, "serve"]);
    let mut cmd = std::process::Command::new("sh");
    cmd.arg("-c")
        .arg("WATCHDOG_PID=$$ exec \"$0\" \"$@\"")
        .arg(inner.get_program())
        .args(inner.get_args())
        .envs(inner.get_envs().filter_map(|(k, v)| v.map(|v| (k, v))))
        .env_remove("NAZORG_CONFIG")
        .env_remove("CREDENTIALS_DIRECTORY")
        .env("NOTIFY_SOCKET", &sock_path)
        .env("WATCHDOG_USEC", "2000000")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut child = cmd.spawn().unwrap();
    recv_until(&sock, "READY=1", Duration::from_secs(10));
    recv_until(&sock, "WATCHDOG=1", Duration::from_secs(5));
    recv_until(&sock, "WATCHDOG=1", Duration::from_secs(5));
    let _ = child.kill();
    let _ = child.wait();
}

/// After a SIGKILL the claims of the dead process are stale; on SQLite the daemon lock
/// proves it, so the next start sends at once instead of waiting five minutes.
#[test]
fn a_starting_daemon_releases_stale_claims_at_once() {
    let env = TestEnv::new();
    enrol(&env, 2);
    env.ok(&["--at", SERVE_AT, "sweep", "--no-dispatch"]);
    // As a killed dispatcher leaves them: claimed for the next 5 minutes (of any clock).
    env.sql("UPDATE outbox SET claimed_until = 4102444800");
    let mut d = Daemon::spawn(&env, "restart", &["--at", SERVE_AT, "serve"], None);
    // Two overdue notices and the new-family notice per family.
    poll("6 messages sent", Duration::from_secs(15), || {
        env.eml_files().len() == 6
    });
    d.wait_log(
        "released claims left by a previous daemon",
        Duration::from_secs(5),
    );
    assert_eq!(pending(&env), 0);
    d.terminate();
}

/// `/healthz` says the process lives; `/readyz` says whether it can be relied on: here a
/// message has waited two hours for a relay that never answers.
#[test]
fn readiness_differs_from_liveness() {
    let relay = SilentRelay::start();
    let env = TestEnv::with_mail(&relay.mail_config());
    enrol(&env, 1);
    env.ok(&["--at", SERVE_AT, "sweep", "--no-dispatch"]);
    let two_hours_later = "2026-03-02T12:00:00+01:00";
    let mut d = Daemon::spawn(&env, "ready", &["--at", two_hours_later, "serve"], None);
    let addr = api_addr(&mut d);
    d.wait_log("nazorg daemon ready", Duration::from_secs(10));
    assert_eq!(http::get(addr, "/healthz", None).status, 200);
    let mut ready = http::get(addr, "/readyz", None);
    poll("a finished sweep", Duration::from_secs(10), || {
        ready = http::get(addr, "/readyz", None);
        ready.text().contains("waited")
    });
    assert_eq!(ready.status, 503, "{}", ready.text());
    let body = ready.json();
    assert_eq!(body["status"], "not_ready");
    assert!(
        body["oldest_pending_secs"].as_i64().unwrap() >= 7200,
        "{body}"
    );
    // `nazorg healthcheck` asks the same question: exit 1.
    let out = env.run(&["healthcheck"], None);
    assert_eq!(out.status.code(), Some(1));
    d.terminate();
}

/// A healthy daemon: `/readyz` 200 and `nazorg healthcheck` exit 0; without a daemon,
/// `healthcheck` exits 1 and says nobody answers.
#[test]
fn healthcheck_answers_for_the_running_daemon() {
    let env = TestEnv::new();
    let out = env.run(&["healthcheck"], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no daemon answers"));

    // A fixed port: healthcheck reads it from the config.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let cfg = std::fs::read_to_string(&env.config_path).unwrap();
    std::fs::write(
        &env.config_path,
        cfg.replace("127.0.0.1:0", &format!("127.0.0.1:{port}")),
    )
    .unwrap();
    let mut d = Daemon::spawn(&env, "healthy", &["--at", SERVE_AT, "serve"], None);
    let addr = api_addr(&mut d);
    let mut ready = http::get(addr, "/readyz", None);
    poll("ready", Duration::from_secs(10), || {
        ready = http::get(addr, "/readyz", None);
        ready.status == 200
    });
    assert_eq!(ready.json()["status"], "ready");
    let out = env.run(&["healthcheck"], None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    d.terminate();
}

/// Under systemd (JOURNAL_STREAM set) each log line starts with its syslog priority.
#[test]
fn journald_sees_log_priorities() {
    let env = TestEnv::new();
    let out = env
        .command(&["--at", SERVE_AT, "sweep"])
        .env("JOURNAL_STREAM", "8:12345")
        .env("NAZORG_LOG", "debug")
        .output()
        .unwrap();
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = err.lines().filter(|l| !l.is_empty()).collect();
    assert!(!lines.is_empty(), "no log lines");
    for l in &lines {
        assert!(
            ["<3>", "<4>", "<6>", "<7>"]
                .iter()
                .any(|p| l.starts_with(p)),
            "line without a priority: {l}"
        );
    }
    // Outside systemd: no prefixes.
    let plain = env.run(&["--at", SERVE_AT, "sweep"], None);
    assert!(!String::from_utf8_lossy(&plain.stderr).contains("<6>"));
}

fn count_families(db: &Path) -> String {
    let out = std::process::Command::new("sqlite3")
        .arg(db)
        .arg("SELECT COUNT(*) FROM families")
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A backup taken while a sweep runs passes the integrity check, holds every family
/// committed before it began, and restores into a working installation whose audit trail
/// verifies.
#[test]
fn backup_during_a_sweep_restores_into_a_working_installation() {
    let env = TestEnv::new();
    enrol(&env, 12);
    let sweeping = {
        let cmd = env.command(&["--at", SERVE_AT, "sweep", "--no-dispatch"]);
        std::thread::spawn(move || {
            let mut cmd = cmd;
            cmd.output().unwrap()
        })
    };
    let out = env.path("backup.db");
    let report = env.json(&["backup", "--out", out.to_str().unwrap()]);
    assert!(sweeping.join().unwrap().status.success());
    assert_eq!(report["integrity"], "ok");
    assert_eq!(report["families"], 12);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&out).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(count_families(&out), "12");

    // A second backup to the same file is refused; the first stays intact.
    let again = env.run(&["backup", "--out", out.to_str().unwrap()], None);
    assert_eq!(again.status.code(), Some(73));
    assert_eq!(count_families(&out), "12");

    // Restore: the copy replaces the database (daemon stopped), and everything works.
    std::fs::remove_file(env.db_path()).unwrap();
    for suffix in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(env.path(&format!("var/nazorg.db{suffix}")));
    }
    std::fs::copy(&out, env.db_path()).unwrap();
    env.ok(&["audit", "verify"]);
    let due = env.json(&["--at", SERVE_AT, "checkin", "due"]);
    assert!(!due.as_array().unwrap().is_empty());
    let status = env.json(&["status"]);
    assert_eq!(status["families_running"], 12);
}

/// `status`, `version` and `default-config` as an operator uses them.
#[test]
fn status_version_and_default_config() {
    let env = TestEnv::new();
    enrol(&env, 2);
    env.ok(&["--at", SERVE_AT, "sweep", "--no-dispatch"]);
    let st = env.json(&["status"]);
    // Two overdue notices and the new-family notice per family.
    assert_eq!(st["outbox_pending"], 6);
    assert_eq!(st["families_running"], 2);
    assert_eq!(st["last_sweep"], "2026-03-02T09:00:00+00:00");
    let text = env.ok(&["status"]);
    assert!(text.contains("outbox: 6 pending"), "{text}");
    assert!(text.contains("open flags: none"), "{text}");

    let v = env.ok(&["version"]);
    assert_eq!(v.trim(), format!("nazorg {}", env!("CARGO_PKG_VERSION")));

    // The printed default config is the shipped example, and it is valid.
    let printed = env.ok(&["default-config"]);
    assert_eq!(
        printed,
        include_str!("../../config/nazorg.example.toml"),
        "default-config prints the example"
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nazorg.toml");
    std::fs::write(&path, printed).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_nazorg"))
        .args(["--config", path.to_str().unwrap(), "check-config"])
        .env_remove("NAZORG_CONFIG")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Empty lists say so instead of printing nothing.
    let due = env.ok(&["--at", ENROL_AT, "checkin", "due"]);
    assert_eq!(due.trim(), "nothing is due");
}

/// `send-test-email` goes straight through the transport (here the file transport).
#[test]
fn send_test_email_uses_the_configured_transport() {
    let env = TestEnv::new();
    let out = env.ok(&["send-test-email", "--to", "operator@example.org"]);
    assert!(out.contains("test message sent"), "{out}");
    let files = env.eml_files();
    assert_eq!(files.len(), 1);
    let mail = std::fs::read_to_string(&files[0]).unwrap();
    assert!(mail.contains("operator@example.org"), "{mail}");
    // Not an outbox message: nothing is queued for the daemon.
    assert!(env.outbox().is_empty());
}

/// The `new_family` notices in the outbox, by their recipients.
fn new_family_recipients(env: &TestEnv) -> Vec<String> {
    env.outbox()
        .iter()
        .filter(|m| m["kind"] == "new_family")
        .map(|m| m["recipients"].to_string())
        .collect()
}

/// SIGHUP (`systemctl reload`) re-reads the config: a changed team address takes effect
/// for the next message without a restart; a broken config is refused with its errors
/// logged, and the daemon keeps working on the config it had.
#[test]
fn sighup_reloads_the_config_and_keeps_the_old_one_when_broken() {
    let env = TestEnv::new();
    let v = env.json(&[
        "--at",
        SERVE_AT,
        "token",
        "create",
        "--municipality",
        AMSTERDAM,
    ]);
    let token = v["token"].as_str().unwrap().to_string();
    let mut d = Daemon::spawn(&env, "reload", &["--at", SERVE_AT, "serve"], None);
    let addr = api_addr(&mut d);
    d.wait_log("nazorg daemon ready", Duration::from_secs(10));
    let enrol_via_api = |marker: &str| {
        let r = http::post_json(
            addr,
            "/v1/families",
            Some(&token),
            &family_body(AMSTERDAM, "standard", "2026-03-01", marker),
        );
        assert_eq!(r.status, 201, "{}", r.text());
    };
    enrol_via_api("RELOADONE");
    assert!(new_family_recipients(&env)[0].contains(TEAM_AMSTERDAM));

    // A new team address, then SIGHUP.
    let new_team = "nieuw-wijkteam@amsterdam.example.org";
    let original = std::fs::read_to_string(&env.config_path).unwrap();
    std::fs::write(&env.config_path, original.replace(TEAM_AMSTERDAM, new_team)).unwrap();
    d.signal("-HUP");
    d.wait_log("config reloaded", Duration::from_secs(10));
    assert!(d.running(), "SIGHUP must not end the daemon");
    enrol_via_api("RELOADTWO");
    let after = new_family_recipients(&env);
    assert_eq!(after.len(), 2);
    assert!(after[1].contains(new_team), "{after:?}");

    // A broken config: refused, every error logged, the reloaded one stays in force.
    std::fs::write(
        &env.config_path,
        original
            .replace(TEAM_AMSTERDAM, "not-an-address")
            .replace("overdue_after = \"P3D\"", "overdue_after = \"soon\""),
    )
    .unwrap();
    d.signal("-HUP");
    d.wait_log("config not reloaded", Duration::from_secs(10));
    let log = d.log();
    assert!(log.contains("reminders.overdue_after"), "{log}");
    assert!(d.running());
    enrol_via_api("RELOADTHREE");
    // The CLI reads the file too: give it a valid one again (no SIGHUP, the daemon is not told).
    std::fs::write(&env.config_path, original.replace(TEAM_AMSTERDAM, new_team)).unwrap();
    let last = new_family_recipients(&env);
    assert_eq!(last.len(), 3);
    assert!(last[2].contains(new_team), "{last:?}");
    assert_eq!(http::get(addr, "/healthz", None).status, 200);
    // The log names keys and problems, never family data.
    assert!(!log.contains("RELOAD"), "{log}");
    d.terminate();
}
