//! Stopping the daemon: a message being handed to the relay at SIGTERM is finished and
//! recorded, so the next start does not send it again; no further message is begun.

use crate::support::daemon::Daemon;
use crate::support::env::*;
use crate::support::smtp::SmtpServer;
use std::time::{Duration, Instant};

const EPISODE: &str = "2026-01-05";
const ENROL_AT: &str = "2026-01-06T10:00:00+01:00";
/// Two slots of each family are overdue at this instant.
const SERVE_AT: &str = "2026-03-02T10:00:00+01:00";

fn poll(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn with_status(env: &TestEnv, status: &str) -> Vec<String> {
    env.outbox()
        .iter()
        .filter(|m| m["status"] == status)
        .map(|m| m["key"].as_str().unwrap().to_string())
        .collect()
}

/// The outbox keys of the messages the relay received, in order.
fn received_keys(server: &SmtpServer) -> Vec<String> {
    server
        .messages()
        .iter()
        .filter_map(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("X-Nazorg-Key: "))
                .map(|k| k.trim().to_string())
        })
        .collect()
}

/// The relay has stored the first message and not yet confirmed it when SIGTERM comes: the
/// daemon waits for the confirmation (within its grace), records the message sent, begins
/// no other, and exits 0. The next start sends the others and not that one again.
#[test]
fn a_message_being_sent_at_sigterm_is_finished_and_never_sent_twice() {
    let hold = tempfile::tempdir().unwrap();
    let release = hold.path().join("release");
    let server = SmtpServer::start_holding(&release);
    let env = TestEnv::with_mail(&format!("transport = \"smtp\"\nurl = \"{}\"", server.url()));
    for i in 0..2 {
        env.enrol(
            ENROL_AT,
            &family_body(AMSTERDAM, "standard", EPISODE, &format!("STOP{i}")),
        );
    }
    env.ok(&["--at", SERVE_AT, "sweep", "--no-dispatch"]);
    let queued = with_status(&env, "pending");
    assert_eq!(
        queued.len(),
        6,
        "two overdue notices and the new-family notice each"
    );

    let mut d = Daemon::spawn(&env, "first", &["--at", SERVE_AT, "serve"], None);
    // The relay holds the first message, stored but not yet answered.
    poll(
        "the relay to store a message",
        Duration::from_secs(20),
        || !server.messages().is_empty(),
    );
    d.signal("-TERM");
    d.wait_log(
        "stopping: finishing the message being sent",
        Duration::from_secs(10),
    );
    std::fs::write(&release, b"").unwrap();
    let log = d.exits_cleanly();
    assert!(log.contains("nazorg daemon stopping"), "{log}");

    let in_flight = received_keys(&server);
    assert_eq!(in_flight.len(), 1, "no message begun after SIGTERM");
    assert_eq!(
        with_status(&env, "sent"),
        in_flight,
        "the message the relay confirmed is recorded sent"
    );
    assert_eq!(with_status(&env, "pending").len(), 5, "the others wait");

    // The next start sends the other five, and not the first again.
    let d = Daemon::spawn(&env, "second", &["--at", SERVE_AT, "serve"], None);
    poll("the rest to be sent", Duration::from_secs(30), || {
        with_status(&env, "pending").is_empty()
    });
    d.terminate();
    let mut received = received_keys(&server);
    assert_eq!(received.len(), 6, "{received:?}");
    received.sort();
    received.dedup();
    let mut expected = queued;
    expected.sort();
    assert_eq!(
        received, expected,
        "each message reached the relay exactly once"
    );
}
