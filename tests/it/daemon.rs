//! `nazorg serve` as in production: a real process, real signals, the daemon lock, a crash
//! in the middle of a backlog, and the systemd readiness notification.

use crate::support::daemon::Daemon;
use crate::support::env::*;
use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

/// Episode and enrolment well before the daemon's clock, so slots are overdue at `SERVE_AT`.
const EPISODE: &str = "2026-01-05";
const ENROL_AT: &str = "2026-01-06T10:00:00+01:00";
/// The instant `serve --at` starts its (running) clock at.
const SERVE_AT: &str = "2026-03-02T10:00:00+01:00";
const STEP: Duration = Duration::from_millis(100);

/// Polls (≤ 20 s, 100 ms steps) until `cond` holds.
fn poll(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "timed out waiting for {what}"
        );
        std::thread::sleep(STEP);
    }
}

fn enrol_families(env: &TestEnv, n: usize) {
    for i in 0..n {
        let muni = if i % 2 == 0 { AMSTERDAM } else { ROTTERDAM };
        env.enrol(
            ENROL_AT,
            &family_body(muni, "standard", EPISODE, &format!("DAEMON{i}")),
        );
    }
}

/// `serve` catches up at start (two slots overdue at its clock), writes the .eml files,
/// and exits 0 on SIGTERM.
#[test]
fn serve_catches_up_then_stops_cleanly_on_sigterm() {
    let env = TestEnv::new();
    enrol_families(&env, 1);
    let mut d = Daemon::spawn(&env, "serve", &["--at", SERVE_AT, "serve"], None);
    // 2026-01-19 and 2026-02-16 are overdue on 2026-03-02; 2026-04-05 is not near.
    // Plus the new-family notice of the enrolment.
    poll("three .eml files", || env.eml_files().len() >= 3);
    d.wait_log("nazorg daemon ready", Duration::from_secs(20));
    assert!(d.running());
    let outbox = env.outbox();
    assert_eq!(outbox.len(), 3, "{outbox:?}");
    assert!(
        outbox.iter().all(|m| m["status"] == "sent"
            && (m["kind"] == "overdue" || m["kind"] == "new_family")),
        "{outbox:?}"
    );
    assert_eq!(env.eml_files().len(), 3);
    let body = std::fs::read_to_string(&env.eml_files()[0]).unwrap();
    assert!(body.contains(TEAM_AMSTERDAM), "{body}");
    assert!(
        !body.contains("DAEMON0"),
        "personal data in a reminder:\n{body}"
    );
    let log = d.terminate();
    assert!(log.contains("nazorg daemon stopping"), "{log}");
    assert!(!log.contains("DAEMON0"), "{log}");
    // The lock is released with the process: a new daemon may start.
    let mut d2 = Daemon::spawn(&env, "serve2", &["--at", SERVE_AT, "serve"], None);
    d2.wait_log("nazorg daemon ready", Duration::from_secs(20));
    d2.terminate();
    assert_eq!(
        env.eml_files().len(),
        3,
        "a restart at the same instant sent nothing new"
    );
}

/// A second daemon on the same database exits 75 at once, saying why; the first goes on.
#[test]
fn second_daemon_on_the_same_database_is_refused() {
    let env = TestEnv::new();
    if env.skip_on_postgres("several daemons may share PostgreSQL (tests/it/several_daemons.rs)") {
        return;
    }
    let mut first = Daemon::spawn(&env, "first", &["serve"], None);
    first.wait_log("nazorg daemon ready", Duration::from_secs(20));
    let started = Instant::now();
    let mut second = Daemon::spawn(&env, "second", &["serve"], None);
    let st = second.wait_for(Duration::from_secs(10));
    let log = second.log();
    assert!(st.is_some(), "the second daemon kept running:\n{log}");
    assert_eq!(st.unwrap().code(), Some(75), "{log}");
    assert!(log.contains("another nazorg daemon"), "{log}");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(first.running(), "the first daemon died:\n{}", first.log());
    // The first still works: it answers SIGTERM cleanly.
    first.terminate();
}

/// SIGKILL in the middle of a backlog, then sweeps until done: every message sent exactly
/// once as far as the outbox and the mail folder can tell, and the database is intact.
#[test]
fn sigkill_mid_backlog_loses_and_duplicates_nothing() {
    let env = TestEnv::new();
    enrol_families(&env, 30);
    // At 2026-11-25 five slots per family are overdue (Jan 19, Feb 16, Apr 5, Jul 5, Oct 5).
    let at = "2026-11-25T10:00:00+01:00";
    let reminders = 30 * 5;
    // Plus one red `out_of_sight` alert per family: no reached contact for over 16 weeks.
    // And one new-family notice per family, queued at enrolment, and the digest of each of
    // the two teams (it lists red flags too).
    let expected = reminders + 30 + 30 + 2;
    let mut d = Daemon::spawn(&env, "crash", &["--at", at, "serve"], None);
    poll("the first .eml", || !env.eml_files().is_empty());
    d.signal("-KILL");
    let st = d
        .wait_for(Duration::from_secs(10))
        .expect("SIGKILL did not end the daemon");
    assert_eq!(
        st.code(),
        None,
        "the daemon exited by itself before the kill"
    );
    let at_kill = env.eml_files().len();
    eprintln!("killed with {at_kill} of {expected} .eml files written");

    // Later than the dispatcher's 300 s claim, so what the dead daemon claimed is free.
    let later = "2026-11-25T11:00:00+01:00";
    let mut rounds = 0;
    loop {
        rounds += 1;
        assert!(rounds <= 5, "backlog not done after 5 sweeps");
        env.sweep(later);
        if env.sql("SELECT COUNT(*) FROM outbox WHERE status != 'sent'") == "0" {
            break;
        }
    }
    let outbox = env.outbox();
    assert_eq!(outbox.len(), expected);
    assert!(outbox.iter().all(|m| m["status"] == "sent"), "{outbox:?}");
    assert_eq!(
        env.sql("SELECT COUNT(*) - COUNT(DISTINCT key) FROM outbox"),
        "0"
    );
    assert_eq!(env.eml_files().len(), expected, "one .eml per outbox row");
    // One overdue notice per missed slot, never two for the same check-in.
    assert_eq!(
        env.sql("SELECT COUNT(*) FROM (SELECT family_ref, subject FROM outbox GROUP BY 1, 2 HAVING COUNT(*) > 1) d"),
        "0"
    );
    assert_eq!(
        env.sql("SELECT COUNT(*) FROM checkins WHERE overdue_count = 1"),
        reminders.to_string()
    );
    // No half-written mail is left in place of a message (temp files are hidden .tmp).
    for f in env.eml_files() {
        let text = std::fs::read_to_string(&f).unwrap();
        assert!(text.contains("Subject:"), "{} is incomplete", f.display());
    }
    if !env.skip_on_postgres("PRAGMA integrity_check is SQLite's") {
        assert_eq!(env.sql("PRAGMA integrity_check"), "ok");
    }
    // And a new daemon finds nothing left to do.
    let mut d = Daemon::spawn(&env, "after", &["--at", later, "serve"], None);
    d.wait_log("nazorg daemon ready", Duration::from_secs(20));
    d.terminate();
    assert_eq!(env.eml_files().len(), expected);
    assert_eq!(env.outbox().len(), expected);
}

/// With NOTIFY_SOCKET set, systemd hears READY=1 after the catch-up, and STOPPING=1 on
/// SIGTERM.
#[test]
fn serve_notifies_systemd_ready_and_stopping() {
    let env = TestEnv::new();
    enrol_families(&env, 1);
    let sock_path = env.path("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let d = Daemon::spawn(
        &env,
        "notify",
        &["--at", SERVE_AT, "serve"],
        Some(&sock_path),
    );
    let mut buf = [0u8; 4096];
    let mut recv_until = |needle: &str| -> String {
        let start = Instant::now();
        loop {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "no {needle} within 20 s"
            );
            let n = sock
                .recv(&mut buf)
                .unwrap_or_else(|e| panic!("waiting for {needle}: {e}"));
            let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
            if msg.lines().any(|l| l == needle) {
                return msg;
            }
        }
    };
    recv_until("READY=1");
    // READY comes once the database is migrated and the API listens; the catch-up round
    // runs after it (so systemd never waits on the mail relay) and sends what was owed
    // (two overdue notices and the new-family notice).
    poll("three .eml files", || env.eml_files().len() >= 3);
    assert_eq!(env.eml_files().len(), 3);
    d.signal("-TERM");
    recv_until("STOPPING=1");
    let log = d.exits_cleanly();
    assert!(log.contains("nazorg daemon stopping"), "{log}");
}
