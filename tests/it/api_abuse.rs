//! Issue 10 item 4: the API is not a write amplifier for strangers. Requests without a valid
//! token are limited per client IP before any database work, counted on /metrics and
//! audited in aggregate; the sweep still runs during a flood; slow or piled-up connections
//! are bounded by `api.header_timeout` and `api.max_connections`.

use crate::support::daemon::Daemon;
use crate::support::env::{AMSTERDAM, TestEnv, family_body};
use crate::support::http;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

const SERVE_AT: &str = "2026-12-20T10:00:00+01:00";

fn start(env: &TestEnv) -> (Daemon, SocketAddr) {
    let mut d = Daemon::spawn(env, "serve", &["--at", SERVE_AT, "serve"], None);
    d.wait_log("nazorg daemon ready", Duration::from_secs(20));
    let addr = d
        .log()
        .lines()
        .find(|l| l.contains("api listening"))
        .and_then(|l| l.split("addr=").nth(1))
        .and_then(|a| a.split_whitespace().next())
        .unwrap()
        .parse()
        .unwrap();
    (d, addr)
}

fn denied_entries(env: &TestEnv) -> Vec<(String, u64)> {
    env.json(&["audit", "list"])
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "api.denied" && e["actor"] == "anonymous")
        .map(|e| {
            let count = e["detail"]
                .as_str()
                .unwrap()
                .split_whitespace()
                .find_map(|w| w.strip_prefix("count="))
                .unwrap()
                .parse()
                .unwrap();
            (e["subject"].as_str().unwrap().to_string(), count)
        })
        .collect()
}

#[test]
fn a_flood_of_bad_tokens_writes_a_handful_of_audit_rows_and_the_sweep_completes() {
    const REQUESTS: usize = 2_000;
    const CLIENTS: usize = 4;
    let env = TestEnv::new();
    let good = env.json(&["token", "create", "--municipality", AMSTERDAM])["token"]
        .as_str()
        .unwrap()
        .to_string();
    let (daemon, addr) = start(&env);
    // Enrolled after the daemon's catch-up sweep, so the sweep below has a notice to send.
    env.enrol(
        "2026-12-21T10:00:00+01:00",
        &family_body(AMSTERDAM, "standard", "2026-12-20", "Flood"),
    );
    let audit_before: u64 = env.sql("SELECT COUNT(*) FROM audit").parse().unwrap();

    let started = Instant::now();
    let (statuses, swept) = std::thread::scope(|s| {
        let flood: Vec<_> = (0..CLIENTS)
            .map(|i| {
                s.spawn(move || {
                    (0..REQUESTS / CLIENTS)
                        .map(|j| {
                            http::get(addr, "/v1/checkins/due", Some(&format!("bad-{i}-{j}")))
                                .status
                        })
                        .collect::<Vec<u16>>()
                })
            })
            .collect();
        // A sweep while the flood runs.
        let sweep = s.spawn(|| env.sweep("2027-01-02T10:00:00+01:00"));
        let swept = sweep.join().unwrap();
        let statuses: Vec<u16> = flood.into_iter().flat_map(|t| t.join().unwrap()).collect();
        (statuses, swept)
    });
    let elapsed = started.elapsed();
    assert_eq!(statuses.len(), REQUESTS);
    let unauthorized = statuses.iter().filter(|s| **s == 401).count();
    let limited = statuses.iter().filter(|s| **s == 429).count();
    eprintln!("flood: {unauthorized} x 401, {limited} x 429 in {elapsed:?}");
    assert_eq!(unauthorized + limited, REQUESTS, "only 401 and 429");
    // burst 100, then 50 per second (the test config), plus what was in flight.
    let allowed = 100 + 50 * (elapsed.as_secs() as usize + 1) + CLIENTS;
    assert!(
        limited > 0 && unauthorized <= allowed,
        "{unauthorized} answered 401 in {elapsed:?}, {limited} answered 429"
    );
    // The sweep completed with its normal summary.
    assert!(swept["sweep"]["examined"].as_u64().unwrap() >= 1, "{swept}");
    assert!(
        swept["sweep"]["upcoming"].as_u64().unwrap() + swept["sweep"]["due"].as_u64().unwrap() >= 1,
        "{swept}"
    );
    // A team with a valid token from the same address is not locked out by the flood.
    let r = http::get(addr, "/v1/checkins/due", Some(&good));
    assert!(r.status == 200, "{}", r.text());

    // Every denial is counted on /metrics.
    let metrics = http::get(addr, "/metrics", None).text();
    let denied: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("nazorg_api_denied_total "))
        .unwrap_or_else(|| panic!("no nazorg_api_denied_total in\n{metrics}"))
        .parse()
        .unwrap();
    assert_eq!(denied, REQUESTS as u64);

    // Audited in aggregate: one entry per client and minute, with the counts.
    let log = daemon.terminate();
    assert!(
        !log.contains("127.0.0.1:") || !log.contains("denied"),
        "client addresses stay out of the info log"
    );
    let entries = denied_entries(&env);
    assert!(
        !entries.is_empty() && entries.len() <= 3,
        "{} api.denied rows: {entries:?}",
        entries.len()
    );
    assert!(
        entries
            .iter()
            .all(|(subject, _)| subject == "client 127.0.0.1")
    );
    assert_eq!(entries.iter().map(|(_, n)| n).sum::<u64>(), REQUESTS as u64);
    let audit_after: u64 = env.sql("SELECT COUNT(*) FROM audit").parse().unwrap();
    eprintln!(
        "flood: {} api.denied rows, {} audit rows in all",
        entries.len(),
        audit_after - audit_before
    );
    // The denials, the sweep's own entries and the one good request: a handful, not 2,000.
    assert!(
        audit_after - audit_before <= 10,
        "{} audit rows written during the flood",
        audit_after - audit_before
    );
}

/// A client that never finishes its headers is cut off after `api.header_timeout`, and
/// `api.max_connections` holds others until a slot is free.
#[test]
fn slow_headers_are_cut_off_and_connections_are_capped() {
    let env = TestEnv::with_changes(&[(
        "rate_limit = 50\nburst = 100",
        "rate_limit = 50\nburst = 100\nmax_connections = 1\nheader_timeout = \"PT1S\"",
    )]);
    let (daemon, addr) = start(&env);
    let mut slow = TcpStream::connect(addr).unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    let started = Instant::now();
    // The one slot is taken: a second client is served only once the slow one is cut off.
    let other = std::thread::spawn(move || {
        let r = http::get(addr, "/healthz", None);
        (r.status, Instant::now())
    });
    let mut rest = Vec::new();
    let _ = slow.read_to_end(&mut rest);
    let cut = started.elapsed();
    assert!(
        cut >= Duration::from_millis(800) && cut < Duration::from_secs(8),
        "slow client closed after {cut:?}"
    );
    let (status, served_at) = other.join().unwrap();
    assert_eq!(status, 200);
    assert!(
        served_at.duration_since(started) >= Duration::from_millis(800),
        "the second connection was served while the slot was taken"
    );
    daemon.terminate();

    // Bad values are refused by the config check, naming the key.
    for (from, to, key) in [
        (
            "max_connections = 1",
            "max_connections = 0",
            "api.max_connections",
        ),
        (
            "header_timeout = \"PT1S\"",
            "header_timeout = \"soon\"",
            "api.header_timeout",
        ),
    ] {
        let text = std::fs::read_to_string(&env.config_path).unwrap();
        std::fs::write(&env.config_path, text.replace(from, to)).unwrap();
        let out = env.run(&["check-config"], None);
        std::fs::write(&env.config_path, &text).unwrap();
        assert_eq!(out.status.code(), Some(78));
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(key),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
