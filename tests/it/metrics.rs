//! Issue 14 item 5: Prometheus metrics on `GET /metrics` (prometheus-client): the build, the
//! last sweep and dispatch, the oldest waiting message, send failures by kind and the sweep
//! durations; never a reference, name or address. `api.metrics_admin_only` puts the scrape
//! behind an admin token.

use crate::support::daemon::Daemon;
use crate::support::env::*;
use crate::support::http;
use crate::support::smtp::SmtpServer;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

const EPISODE: &str = "2026-12-01";
const ENROL_AT: &str = "2026-12-02T10:00:00+01:00";
const SERVE_AT: &str = "2026-12-20T10:00:00+01:00";

fn unix(t: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(t).unwrap().timestamp()
}

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

/// The value of the series `series` (name and labels exactly as printed), if present.
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// A sweep and a failed send, then a scrape: every metric the issue names, with values
/// that follow from what happened, and nothing personal.
#[test]
fn a_scrape_after_a_sweep_and_failed_sends_reports_them() {
    // The Amsterdam team's relay refuses for good (550), Rotterdam's for now (451).
    let server = SmtpServer::start_rejecting(&[TEAM_AMSTERDAM, &format!("~{TEAM_ROTTERDAM}")]);
    let env = TestEnv::with_mail(&format!("transport = \"smtp\"\nurl = \"{}\"", server.url()));
    env.enrol(
        ENROL_AT,
        &family_body(AMSTERDAM, "standard", EPISODE, "METRICSAMS"),
    );
    env.enrol(
        ENROL_AT,
        &family_body(ROTTERDAM, "standard", EPISODE, "METRICSROT"),
    );
    let (daemon, addr) = start(&env);

    // The catch-up round (a sweep, then a dispatch) runs right after READY.
    let start = Instant::now();
    let text = loop {
        let m = http::get(addr, "/metrics", None);
        assert_eq!(m.status, 200, "{}", m.text());
        let t = m.text();
        if t.contains("nazorg_last_dispatch_timestamp_seconds ")
            && t.contains("failure=\"permanent\"")
            && t.contains("failure=\"transient\"")
        {
            assert_eq!(
                m.header("content-type"),
                Some("text/plain; version=0.0.4; charset=utf-8")
            );
            break t;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no dispatch round with both failures within 30 s:\n{t}\n{}",
            daemon.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    };

    let version = env!("CARGO_PKG_VERSION");
    assert_eq!(
        value(
            &text,
            &format!("nazorg_build_info{{version=\"{version}\"}}")
        ),
        Some(1.0),
        "{text}"
    );
    // The failures carry the message kind: each refused message once (permanent), each
    // attempt of a message still waiting (transient), as `outbox list` shows them.
    let outbox = env.outbox();
    let mut expected = std::collections::BTreeMap::<(String, &str), i64>::new();
    for m in &outbox {
        let kind = m["kind"].as_str().unwrap().to_string();
        match m["status"].as_str().unwrap() {
            "failed" => *expected.entry((kind, "permanent")).or_default() += 1,
            "pending" if m["attempts"].as_i64().unwrap() > 0 => {
                *expected.entry((kind, "transient")).or_default() += m["attempts"].as_i64().unwrap()
            }
            _ => {}
        }
    }
    assert!(
        expected.keys().any(|k| k.1 == "permanent") && expected.keys().any(|k| k.1 == "transient"),
        "{outbox:?}"
    );
    for ((kind, failure), n) in &expected {
        assert_eq!(
            value(
                &text,
                &format!("nazorg_send_failures_total{{kind=\"{kind}\",failure=\"{failure}\"}}")
            ),
            Some(*n as f64),
            "{kind} {failure}:\n{text}"
        );
    }
    let series = text
        .lines()
        .filter(|l| l.starts_with("nazorg_send_failures_total{"))
        .count();
    assert_eq!(series, expected.len(), "{text}");
    // The daemon's sweep at the simulated start: recorded, timed, and its instant shown.
    let swept = value(&text, "nazorg_last_sweep_timestamp_seconds").unwrap() as i64;
    assert!(
        (unix(SERVE_AT)..unix(SERVE_AT) + 120).contains(&swept),
        "last sweep {swept}:\n{text}"
    );
    let dispatched = value(&text, "nazorg_last_dispatch_timestamp_seconds").unwrap() as i64;
    assert!(dispatched >= swept, "{text}");
    assert!(value(&text, "nazorg_sweep_duration_seconds_count").unwrap() >= 1.0);
    assert!(text.contains("# TYPE nazorg_sweep_duration_seconds histogram"));
    assert!(value(&text, "nazorg_sweep_duration_seconds_bucket{le=\"+Inf\"}").unwrap() >= 1.0);
    // Rotterdam's notice waits since the enrolment (queued then, retried later).
    let age = value(&text, "nazorg_oldest_pending_message_age_seconds").unwrap() as i64;
    assert!(
        age >= unix(SERVE_AT) - unix(ENROL_AT),
        "oldest pending {age}:\n{text}"
    );
    // The counts from before stay.
    assert!(
        text.contains("nazorg_families{status=\"running\"} 2"),
        "{text}"
    );
    assert!(text.contains("nazorg_api_denied_total 0"), "{text}");

    // Nothing personal: no reference, marker or address.
    for secret in ["F-", "METRICS", "@", "example.org", "amsterdam"] {
        assert!(!text.contains(secret), "{secret:?} in\n{text}");
    }
    daemon.terminate();
}

/// With `api.metrics_admin_only = true` the scrape needs an admin token: 401 without a
/// token, 404 for a team token (as every admin-only route).
#[test]
fn metrics_behind_an_admin_token_when_configured() {
    let env =
        TestEnv::with_changes(&[("burst = 100\n", "burst = 100\nmetrics_admin_only = true\n")]);
    let admin = env.json(&["--at", SERVE_AT, "token", "create", "--admin"])["token"]
        .as_str()
        .unwrap()
        .to_string();
    let team = env.json(&[
        "--at",
        SERVE_AT,
        "token",
        "create",
        "--municipality",
        AMSTERDAM,
    ])["token"]
        .as_str()
        .unwrap()
        .to_string();
    let (daemon, addr) = start(&env);
    assert_eq!(http::get(addr, "/metrics", None).status, 401);
    // Like every admin route, it does not exist for a team token.
    assert_eq!(http::get(addr, "/metrics", Some(&team)).status, 404);
    let m = http::get(addr, "/metrics", Some(&admin));
    assert_eq!(m.status, 200, "{}", m.text());
    assert!(
        m.text().contains("nazorg_build_info{version="),
        "{}",
        m.text()
    );
    daemon.terminate();
}
