//! Calendar invitations: the upcoming and retry reminders carry a METHOD:REQUEST for the
//! check-in, recording it sends a METHOD:CANCEL with the same UID and a higher SEQUENCE,
//! and closing a family cancels its invited check-ins. Read back from the .eml files by an
//! independent parser (Python's `icalendar`).

use crate::support::env::*;
use crate::support::ical;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::path::PathBuf;

/// The .eml files that appeared since `seen`, which is updated.
fn new_files(env: &TestEnv, seen: &mut BTreeSet<PathBuf>) -> Vec<PathBuf> {
    let fresh: Vec<PathBuf> = env
        .eml_files()
        .into_iter()
        .filter(|p| !seen.contains(p))
        .collect();
    seen.extend(fresh.iter().cloned());
    fresh
}

fn attempt(env: &TestEnv, clock: &str, body: &Value) {
    let out = env.run(
        &["--at", clock, "--json", "checkin", "attempt", "--file", "-"],
        Some(body.to_string().as_bytes()),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Checks what every invitation must hold: the check-in's UID, the method in the MIME type
/// and the calendar alike, the family reference and no personal data.
fn check_event(e: &Value, method: &str, uid: &str, family: &str) {
    assert_eq!(e["method"], method, "{e}");
    assert_eq!(e["content_method"], method, "{e}");
    assert_eq!(e["uid"], uid, "{e}");
    let summary = e["summary"].as_str().unwrap();
    let description = e["description"].as_str().unwrap();
    assert!(summary.contains(family), "{e}");
    for s in [summary, description] {
        assert!(!s.contains("ICS-"), "personal data in the invitation: {e}");
        assert!(
            !s.contains("director"),
            "personal data in the invitation: {e}"
        );
    }
    assert_eq!(e["attendee"], format!("mailto:{TEAM_AMSTERDAM}"), "{e}");
    assert_eq!(e["organizer"], "mailto:nazorg@example.org", "{e}");
}

#[test]
fn reminders_invite_and_recording_cancels_with_the_same_uid() {
    let env = TestEnv::new();
    // standard plan from 2026-12-01: C1 due 2026-12-15 09:00 local (08:00 UTC).
    let fam = env.enrol(
        "2026-12-01T10:00:00+01:00",
        &family_body(AMSTERDAM, "standard", "2026-12-01", "ICS"),
    );
    let family = fam["family"].as_str().unwrap();
    let c1 = fam["checkins"][0]["id"].as_str().unwrap();
    let uid = format!("{c1}@nazorg");
    let mut seen = BTreeSet::new();
    env.sweep("2026-12-01T10:05:00+01:00");
    let first = new_files(&env, &mut seen);
    assert!(
        ical::events(&first).is_empty(),
        "the new-family notice has no invitation"
    );

    // The upcoming reminder invites.
    let s = env.sweep("2026-12-14T10:00:00+01:00");
    assert_eq!(s["sweep"]["upcoming"], 1, "{s}");
    let upcoming = ical::events(&new_files(&env, &mut seen));
    assert_eq!(upcoming.len(), 1, "{upcoming:?}");
    check_event(&upcoming[0], "REQUEST", &uid, family);
    assert_eq!(upcoming[0]["sequence"], 0);
    assert_eq!(upcoming[0]["dtstart"], "2026-12-15T08:00:00+00:00");
    assert_eq!(upcoming[0]["status"], "CONFIRMED");

    // A failed attempt moves the moment: the retry reminder's request has a higher SEQUENCE
    // and the new start.
    attempt(
        &env,
        "2026-12-15T12:00:00+01:00",
        &json!({"checkin": c1, "at": "2026-12-15T11:00:00+01:00", "outcome": "not_reached",
                "mode": "phone", "by": "ICS-worker"}),
    );
    let s = env.sweep("2026-12-22T11:00:00+01:00");
    assert_eq!(s["sweep"]["retry"], 1, "{s}");
    let retry = ical::events(&new_files(&env, &mut seen));
    assert_eq!(retry.len(), 1, "{retry:?}");
    check_event(&retry[0], "REQUEST", &uid, family);
    assert_eq!(retry[0]["sequence"], 1);
    assert_eq!(retry[0]["dtstart"], "2026-12-22T10:00:00+00:00");

    // Recording it cancels: same UID, SEQUENCE above the last request, queued with the record.
    let child = fam["members"][1]["ref"].as_str().unwrap();
    let out = env.record(
        "2026-12-22T12:00:00+01:00",
        &json!({"checkin": c1, "at": "2026-12-22T11:30:00+01:00", "outcome": "reached",
                "mode": "home_visit", "by": "ICS-worker",
                "children": [{"member": child, "observations": {"wellbeing": 7}}]}),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        env.sql("SELECT COUNT(*) FROM outbox WHERE kind = 'invite_cancel' AND status = 'pending'"),
        "1",
        "the cancel is queued in the record's transaction"
    );
    env.sweep("2026-12-22T12:05:00+01:00");
    let cancel = ical::events(&new_files(&env, &mut seen));
    assert_eq!(cancel.len(), 1, "{cancel:?}");
    check_event(&cancel[0], "CANCEL", &uid, family);
    assert_eq!(cancel[0]["sequence"], 2);
    assert_eq!(cancel[0]["status"], "CANCELLED");
    let subject = cancel[0]["subject"].as_str().unwrap();
    assert!(subject.contains(family), "{subject}");

    // Recording again is refused and queues nothing more.
    let again = env.record(
        "2026-12-22T12:10:00+01:00",
        &json!({"checkin": c1, "at": "2026-12-22T11:30:00+01:00", "outcome": "reached",
                "mode": "home_visit", "by": "ICS-worker"}),
    );
    assert!(!again.status.success());
    assert_eq!(
        env.sql("SELECT COUNT(*) FROM outbox WHERE kind = 'invite_cancel'"),
        "1"
    );
}

#[test]
fn closing_a_family_cancels_its_invited_checkins() {
    let env = TestEnv::new();
    let fam = env.enrol(
        "2026-12-01T10:00:00+01:00",
        &family_body(AMSTERDAM, "standard", "2026-12-01", "ICS"),
    );
    let family = fam["family"].as_str().unwrap();
    let c1 = fam["checkins"][0]["id"].as_str().unwrap();
    let mut seen = BTreeSet::new();
    env.sweep("2026-12-14T10:00:00+01:00");
    let invited = ical::events(&new_files(&env, &mut seen));
    assert_eq!(invited.len(), 1, "{invited:?}");
    env.json(&[
        "--at",
        "2026-12-14T11:00:00+01:00",
        "family",
        "close",
        family,
        "--reason",
        "transferred_to_specialist_care",
        "--safety-improved",
        "yes",
        "--professionals",
        "0",
    ]);
    env.sweep("2026-12-14T11:05:00+01:00");
    let cancel = ical::events(&new_files(&env, &mut seen));
    // Only C1 had an invitation; later check-ins were never in the calendar.
    assert_eq!(cancel.len(), 1, "{cancel:?}");
    check_event(&cancel[0], "CANCEL", &format!("{c1}@nazorg"), family);
    assert_eq!(cancel[0]["sequence"], 1);
    assert_eq!(invited[0]["uid"], cancel[0]["uid"]);
}

/// A move takes the invited check-in out of the sending team's calendar: a METHOD:CANCEL
/// with the same UID as the REQUEST and a higher SEQUENCE, addressed to that team, queued
/// with the move.
#[test]
fn moving_a_family_cancels_its_invitation_with_the_same_uid() {
    let env = TestEnv::new();
    let fam = env.enrol(
        "2026-12-01T10:00:00+01:00",
        &family_body(AMSTERDAM, "standard", "2026-12-01", "ICS"),
    );
    let family = fam["family"].as_str().unwrap();
    let c1 = fam["checkins"][0]["id"].as_str().unwrap();
    let uid = format!("{c1}@nazorg");
    let mut seen = BTreeSet::new();
    env.sweep("2026-12-14T10:00:00+01:00");
    let invited = ical::events(&new_files(&env, &mut seen));
    assert_eq!(invited.len(), 1, "{invited:?}");
    check_event(&invited[0], "REQUEST", &uid, family);
    assert_eq!(invited[0]["sequence"], 0);

    env.json(&[
        "--at",
        "2026-12-14T11:00:00+01:00",
        "move",
        family,
        "--to",
        ROTTERDAM,
        "--date",
        "2026-12-14",
    ]);
    assert_eq!(
        env.sql(&format!(
            "SELECT COUNT(*) FROM outbox WHERE kind = 'invite_cancel' AND status = 'pending' \
             AND family_ref = '{family}' AND key LIKE 'invite_cancel:{c1}:1:%'"
        )),
        "1",
        "the cancel is queued in the move's transaction"
    );
    env.sweep("2026-12-14T11:05:00+01:00");
    let events = ical::events(&new_files(&env, &mut seen));
    let cancels: Vec<&Value> = events.iter().filter(|e| e["method"] == "CANCEL").collect();
    assert_eq!(cancels.len(), 1, "{events:?}");
    check_event(cancels[0], "CANCEL", &uid, family);
    assert_eq!(cancels[0]["uid"], invited[0]["uid"]);
    assert_eq!(cancels[0]["sequence"], 1);
    assert_eq!(cancels[0]["status"], "CANCELLED");
    assert_eq!(cancels[0]["dtstart"], invited[0]["dtstart"]);
    assert_eq!(cancels[0]["filename"], "contactmoment-vervallen.ics");
    assert!(
        cancels[0]["subject"].as_str().unwrap().contains(family),
        "{}",
        cancels[0]
    );
}

/// Erasing a family cancels the invitations in its team's calendar, yet nothing queued
/// or sent names it: the CANCEL carries the check-in's UID only, with a neutral summary,
/// and its outbox row is not filed under the family. After the sweep no mail, outbox row
/// or attachment holds the family reference or anything planted in its record.
#[test]
fn erasing_a_family_cancels_its_invitations_without_naming_it() {
    let env = TestEnv::new();
    let fam = env.enrol(
        "2026-12-01T10:00:00+01:00",
        &family_body(AMSTERDAM, "standard", "2026-12-01", "ERASEICS"),
    );
    let family = fam["family"].as_str().unwrap().to_string();
    let c1 = fam["checkins"][0]["id"].as_str().unwrap();
    let uid = format!("{c1}@nazorg");
    let mut seen = BTreeSet::new();
    env.sweep("2026-12-14T10:00:00+01:00");
    let invited = ical::events(&new_files(&env, &mut seen));
    assert_eq!(invited.len(), 1, "{invited:?}");
    check_event(&invited[0], "REQUEST", &uid, &family);

    let erased = env.json(&[
        "--at",
        "2026-12-14T11:00:00+01:00",
        "family",
        "erase",
        &family,
        "--reason",
        "data_subject_request",
        "--yes",
    ]);
    assert_eq!(erased["status"], "erased", "{erased}");
    assert_eq!(
        env.sql(
            "SELECT COUNT(*) FROM outbox WHERE kind = 'invite_cancel' AND status = 'pending' \
             AND family_ref IS NULL"
        ),
        "1",
        "the cancel is queued with the erasure, not filed under the family"
    );
    let s = env.sweep("2026-12-14T11:05:00+01:00");
    assert_eq!(s["dispatch"]["sent"], 1, "{s}");
    let fresh = new_files(&env, &mut seen);
    let cancels = ical::events(&fresh);
    assert_eq!(cancels.len(), 1, "{cancels:?}");
    let e = &cancels[0];
    assert_eq!(e["method"], "CANCEL", "{e}");
    assert_eq!(e["content_method"], "CANCEL", "{e}");
    assert_eq!(e["uid"], uid, "{e}");
    assert_eq!(e["uid"], invited[0]["uid"], "{e}");
    assert_eq!(e["sequence"], 1, "{e}");
    assert_eq!(e["status"], "CANCELLED", "{e}");
    assert_eq!(e["attendee"], format!("mailto:{TEAM_AMSTERDAM}"), "{e}");
    // The test config writes English mail.
    assert_eq!(e["summary"], "Nazorg: check-in cancelled", "{e}");
    assert_eq!(
        e["description"],
        format!("Check-in {c1} is cancelled."),
        "{e}"
    );
    // Nothing anywhere names the erased family or holds its record.
    let needles = [
        family.clone(),
        "ERASEICS".to_string(),
        "eraseics".to_string(),
    ];
    for p in env.eml_files() {
        let text = std::fs::read_to_string(&p).unwrap();
        for n in &needles {
            assert!(
                !text.contains(n.as_str()),
                "{n} in {}:\n{text}",
                p.display()
            );
        }
    }
    assert_eq!(
        env.sql(&format!(
            "SELECT COUNT(*) FROM outbox WHERE instr(subject, '{family}') > 0 \
             OR instr(body, '{family}') > 0 \
             OR (family_ref IS NULL AND instr(key, '{family}') > 0)"
        )),
        "0"
    );
    assert_eq!(
        env.sql(&format!(
            "SELECT COUNT(*) FROM outbox_attachments WHERE instr(bytes, '{family}') > 0"
        )),
        "0"
    );
    // The database files too (the tombstone keeps the reference, nothing else).
    let mut scanned: Vec<(String, Vec<u8>)> = Vec::new();
    if env.on_postgres() {
        scanned.push(("pg_dump".into(), env.stored_bytes()));
    } else {
        for f in ["var/nazorg.db", "var/nazorg.db-wal"] {
            scanned.push((f.into(), bytes_of(&env.path(f))));
        }
    }
    for (name, bytes) in scanned {
        for n in &needles[1..] {
            assert!(
                !bytes.windows(n.len()).any(|w| w == n.as_bytes()),
                "{n} in {name}"
            );
        }
    }
}
