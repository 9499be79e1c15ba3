//! Delivery through a real SMTP server (aiosmtpd on loopback): outages are retried, every
//! message arrives once, and what cannot be delivered is visible.

use crate::support::env::*;
use crate::support::smtp::SmtpServer;
use std::collections::BTreeMap;

fn message_ids(server: &SmtpServer) -> Vec<String> {
    server
        .messages()
        .iter()
        .map(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("Message-ID: "))
                .unwrap()
                .trim()
                .to_string()
        })
        .collect()
}

/// Stop the server, sweep, restart it, sweep again later: every message arrives once.
#[test]
fn smtp_outage_then_every_message_arrives_once() {
    let mut server = SmtpServer::start();
    let env = TestEnv::with_mail(&format!("transport = \"smtp\"\nurl = \"{}\"", server.url()));
    for i in 0..3 {
        env.enrol(
            "2026-12-02T10:00:00+01:00",
            &family_body(AMSTERDAM, "standard", "2026-12-01", &format!("SMTP{i}")),
        );
    }
    // Up: the new-family notices of the enrolments and the upcoming notices arrive.
    let s = env.sweep("2026-12-13T10:00:00+01:00");
    assert_eq!(s["dispatch"]["sent"], 6);
    assert_eq!(server.messages().len(), 6);

    // Down: the due notices are queued and retried, nothing is lost.
    server.stop();
    let s = env.sweep("2026-12-15T10:00:00+01:00");
    assert_eq!(s["sweep"]["due"], 3);
    assert_eq!(s["dispatch"]["sent"], 0);
    assert_eq!(s["dispatch"]["retrying"], 3);
    let pending: Vec<_> = env
        .outbox()
        .into_iter()
        .filter(|m| m["status"] == "pending")
        .collect();
    assert_eq!(pending.len(), 3);
    assert!(
        pending
            .iter()
            .all(|m| m["last_error"].as_str().unwrap().contains("temporary"))
    );

    // Back: the next sweep after the backoff delivers them, once.
    server.restart();
    let s = env.sweep("2026-12-15T10:05:00+01:00");
    assert_eq!(s["dispatch"]["sent"], 3);
    let s = env.sweep("2026-12-15T10:10:00+01:00");
    assert_eq!(s["dispatch"]["sent"], 0);

    let ids = message_ids(&server);
    assert_eq!(ids.len(), 9);
    let mut seen = BTreeMap::new();
    for id in &ids {
        *seen.entry(id.clone()).or_insert(0) += 1;
    }
    assert!(
        seen.values().all(|n| *n == 1),
        "duplicate Message-IDs: {seen:?}"
    );
    assert!(env.outbox().iter().all(|m| m["status"] == "sent"));
    // What arrived carries references, never the personal data.
    for m in server.messages() {
        assert!(m.contains(TEAM_AMSTERDAM));
        assert!(
            !m.contains("SMTP0") && !m.contains("SMTP1") && !m.contains("SMTP2"),
            "{m}"
        );
    }
}

/// A server that stays down: after `dispatch.max_attempts` the message is marked failed and
/// `outbox list --failed` shows it with the last error; it is never deleted.
#[test]
fn undeliverable_mail_is_listed_as_failed() {
    let mut server = SmtpServer::start();
    let env = TestEnv::with_mail(&format!("transport = \"smtp\"\nurl = \"{}\"", server.url()));
    server.stop();
    env.enrol(
        "2026-12-02T10:00:00+01:00",
        &family_body(AMSTERDAM, "standard", "2026-12-01", "FAIL"),
    );
    // max_attempts = 6 in the test config; one attempt per hourly sweep (backoff ≤ 1 h).
    for hour in 10..16 {
        env.sweep(&format!("2026-12-13T{hour}:00:00+01:00"));
    }
    // The new-family notice of the enrolment and the upcoming notice.
    let failed = env.json(&["outbox", "list", "--failed"]);
    let failed = failed.as_array().unwrap();
    assert_eq!(failed.len(), 2);
    assert!(failed.iter().all(|m| m["attempts"] == 6));
    assert!(
        failed[0]["last_error"]
            .as_str()
            .unwrap()
            .contains("temporary")
    );
    // Failed for good: later sweeps do not try again, the row stays.
    env.sweep("2026-12-13T20:00:00+01:00");
    assert_eq!(env.json(&["outbox", "list", "--failed"])[0]["attempts"], 6);
    let human = env.ok(&["outbox", "list", "--failed"]);
    assert!(human.contains("failed"), "{human}");
}
