//! The sweep writes each batch of check-ins in a few statements: the outbox messages in
//! multi-row INSERTs, every check-in's new notice state in one UPDATE. What that must keep:
//! each key enqueued once, attachments with the new messages only, closed check-ins left
//! alone, NULLs as NULLs, and statements cut below SQLite's limit of bound parameters.

use crate::support::env::*;
use chrono::{DateTime, Utc};
use nazorg::clock::ManualClock;
use nazorg::mail::Attachment;
use nazorg::store::checkins::{NoticeState, set_notice_states};
use nazorg::store::outbox::{NewMessage, enqueue, enqueue_many};
use std::sync::Arc;

const ENROLLED_AT: &str = "2026-12-02T10:00:00+01:00";

fn sweep_only(env: &TestEnv, at: &str) -> serde_json::Value {
    serde_json::from_str(&env.ok(&["--at", at, "sweep", "--no-dispatch"])).unwrap()
}

/// A check-in's notice state: `stage|overdue_count|last_notice_at|next_notice_at`, `-1`
/// for NULL.
fn notice_state(env: &TestEnv, checkin: &str) -> String {
    env.sql(&format!(
        "SELECT notice_stage, overdue_count, COALESCE(last_notice_at, -1), \
         COALESCE(next_notice_at, -1) FROM checkins WHERE ref = '{checkin}'"
    ))
}

/// `key|attachments` of every `due` message, in key order.
fn due_messages(env: &TestEnv) -> Vec<String> {
    env.sql(
        "SELECT o.key, COUNT(a.outbox_id) FROM outbox o \
         LEFT JOIN outbox_attachments a ON a.outbox_id = o.id \
         WHERE o.kind = 'due' GROUP BY o.key ORDER BY o.key",
    )
    .lines()
    .map(str::to_string)
    .collect()
}

/// An earlier sweep enqueued a check-in's due notice, and its notice-state update was lost
/// (simulated by putting the old state back). The next sweep's batch holds that check-in
/// next to two fresh ones: the fresh ones are enqueued with their calendar invitations,
/// the old one counts as already queued and is neither duplicated nor given a second
/// invitation; all three get their new notice state; a repeat changes nothing.
#[test]
fn a_batch_with_an_already_queued_notice_among_fresh_ones() {
    let env = TestEnv::new();
    let a = env.enrol(
        ENROLLED_AT,
        &family_body(AMSTERDAM, "standard", "2026-12-01", "BATCHA"),
    );
    let a_first = a["checkins"][0]["id"].as_str().unwrap().to_string();
    let due = a["checkins"][0]["due"].as_str().unwrap().to_string();
    let due_secs = due.parse::<DateTime<Utc>>().unwrap().timestamp();
    let lost = notice_state(&env, &a_first);
    let parts: Vec<&str> = lost.split('|').collect();
    assert_eq!(parts[2], "-1", "never notified before the first sweep");

    let first = sweep_only(&env, &due);
    assert_eq!(first["sweep"]["due"], 1);
    let a_key = format!("due:{a_first}:0:{due_secs}");
    assert_eq!(due_messages(&env), [format!("{a_key}|1")]);
    let a_row = env.sql(&format!("SELECT id FROM outbox WHERE key = '{a_key}'"));
    let swept_state = notice_state(&env, &a_first);
    assert_ne!(swept_state, lost);
    // The notice-state update is lost: the check-in is owed its due notice again.
    env.sql(&format!(
        "UPDATE checkins SET notice_stage = {}, overdue_count = {}, last_notice_at = NULL, \
         next_notice_at = {} WHERE ref = '{a_first}'",
        parts[0], parts[1], parts[3]
    ));
    assert_eq!(notice_state(&env, &a_first), lost);

    // Two more families with the same schedule: their first check-ins are due then too.
    let firsts: Vec<String> = ["BATCHB", "BATCHC"]
        .iter()
        .map(|marker| {
            let f = env.enrol(
                ENROLLED_AT,
                &family_body(AMSTERDAM, "standard", "2026-12-01", marker),
            );
            assert_eq!(f["checkins"][0]["due"].as_str().unwrap(), due);
            f["checkins"][0]["id"].as_str().unwrap().to_string()
        })
        .collect();

    let second = sweep_only(&env, &due);
    assert_eq!(second["sweep"]["examined"], 3);
    assert_eq!(second["sweep"]["due"], 2);
    assert_eq!(second["sweep"]["already_queued"], 1);
    let mut expected: Vec<String> = std::iter::once(&a_first)
        .chain(&firsts)
        .map(|c| format!("due:{c}:0:{due_secs}|1"))
        .collect();
    expected.sort();
    assert_eq!(due_messages(&env), expected);
    assert_eq!(
        env.sql(&format!("SELECT id FROM outbox WHERE key = '{a_key}'")),
        a_row,
        "the queued message stays the one the first sweep wrote"
    );
    // Every check-in of the batch has its new state, the already queued one included,
    // and the fresh messages name the case director (read for the batch at once).
    assert_eq!(notice_state(&env, &a_first), swept_state);
    for c in &firsts {
        assert_eq!(notice_state(&env, c), swept_state);
        let body = env.sql(&format!(
            "SELECT body FROM outbox WHERE key = 'due:{c}:0:{due_secs}'"
        ));
        assert!(body.contains(CASE_DIRECTOR), "{body}");
    }

    let outbox = env.sql("SELECT COUNT(*) FROM outbox");
    let third = sweep_only(&env, &due);
    assert_eq!(third["sweep"]["examined"], 0);
    assert_eq!(env.sql("SELECT COUNT(*) FROM outbox"), outbox);
}

fn message<'a>(key: &'a str, to: &'a [String], attachments: &'a [Attachment]) -> NewMessage<'a> {
    NewMessage {
        key,
        kind: "test",
        family_ref: None,
        recipients: to,
        cc: &[],
        subject: key,
        body: "body",
        attachments,
        now: 1,
    }
}

fn invite(name: &str) -> Vec<Attachment> {
    vec![Attachment {
        filename: name.to_string(),
        content_type: "text/calendar".into(),
        bytes: name.as_bytes().to_vec(),
    }]
}

/// The batched writes themselves, across statement chunks: a key that existed before and a
/// key repeated within the call are not new (its first occurrence alone is written, with
/// its attachments); the UPDATE of notice states leaves closed check-ins alone and stores
/// NULLs as NULLs.
#[tokio::test]
async fn batched_outbox_and_notice_state_writes() {
    let env = TestEnv::new();
    let fam = env.enrol(
        ENROLLED_AT,
        &family_body(AMSTERDAM, "standard", "2026-12-01", "BATCHS"),
    );
    let checkin = |i: usize| fam["checkins"][i]["id"].as_str().unwrap().to_string();
    let id_of = |r: &str| -> i64 {
        env.sql(&format!("SELECT id FROM checkins WHERE ref = '{r}'"))
            .parse()
            .unwrap()
    };
    let (open, closed) = (checkin(0), checkin(1));
    env.sql(&format!(
        "UPDATE checkins SET status = 'cancelled' WHERE ref = '{closed}'"
    ));
    let closed_before = notice_state(&env, &closed);

    let clock = ManualClock::new("2026-12-03T10:00:00Z".parse().unwrap());
    let app = env.app(Arc::new(clock)).await;
    let to = vec![TEAM_AMSTERDAM.to_string()];
    let (first_new, repeat, old) = (invite("first.ics"), invite("repeat.ics"), invite("old.ics"));
    // More messages than one statement carries, so the call spans chunks; the repeat of
    // `k-new` sits in a later chunk than its first occurrence.
    let bulk: Vec<String> = (0..4000).map(|i| format!("k-bulk-{i}")).collect();
    let mut batch = vec![
        message("k-old", &to, &old),
        message("k-new", &to, &first_new),
    ];
    batch.extend(bulk.iter().map(|k| message(k, &to, &[])));
    batch.push(message("k-new", &to, &repeat));
    batch.push(message("k-last", &to, &first_new));

    let mut tx = app.store.write().await.unwrap();
    assert!(enqueue(&mut tx, &message("k-old", &to, &[])).await.unwrap());
    let fresh = enqueue_many(&mut tx, &batch).await.unwrap();
    let mut expected = vec![false, true];
    expected.extend(std::iter::repeat_n(true, 4000));
    expected.extend([false, true]);
    assert_eq!(fresh, expected);

    // More states than one statement carries; the real check-ins in the last chunk.
    let mut states: Vec<NoticeState> = (0..7000)
        .map(|i| NoticeState {
            id: 1_000_000 + i,
            stage: 1,
            overdue_count: 0,
            last_notice_at: None,
            next_notice_at: None,
        })
        .collect();
    states.push(NoticeState {
        id: id_of(&open),
        stage: 4,
        overdue_count: 3,
        last_notice_at: Some(1_800_000_000),
        next_notice_at: None,
    });
    states.push(NoticeState {
        id: id_of(&closed),
        stage: 2,
        overdue_count: 0,
        last_notice_at: None,
        next_notice_at: Some(1_800_000_001),
    });
    set_notice_states(&mut tx, &states).await.unwrap();
    tx.commit().await.unwrap();

    assert_eq!(
        env.sql(
            "SELECT o.key, COALESCE(a.filename, '-') FROM outbox o \
             LEFT JOIN outbox_attachments a ON a.outbox_id = o.id \
             WHERE o.key IN ('k-old', 'k-new', 'k-last') ORDER BY o.key"
        ),
        "k-last|first.ics\nk-new|first.ics\nk-old|-"
    );
    assert_eq!(
        env.sql("SELECT COUNT(*) FROM outbox WHERE key LIKE 'k-%'"),
        "4003"
    );
    // Ids follow the order given.
    assert_eq!(
        env.sql(
            "SELECT COUNT(*) FROM outbox a JOIN outbox b ON b.key = 'k-bulk-3999' \
             WHERE a.key = 'k-new' AND a.id < b.id"
        ),
        "1"
    );
    assert_eq!(notice_state(&env, &open), "4|3|1800000000|-1");
    assert_eq!(notice_state(&env, &closed), closed_before);
}

/// A check-in whose municipality is missing from the config waits an hour beside a notice
/// enqueued in the same batch: only its notice index moves (in the same UPDATE), and once
/// the municipality is back its notice goes out.
#[test]
fn an_unroutable_check_in_waits_beside_a_notice_of_the_same_batch() {
    let env = TestEnv::new();
    let a = env.enrol(
        ENROLLED_AT,
        &family_body(AMSTERDAM, "standard", "2026-12-01", "ROUTEA"),
    );
    let b = env.enrol(
        ENROLLED_AT,
        &family_body(ROTTERDAM, "standard", "2026-12-01", "ROUTEB"),
    );
    let (a_first, b_first) = (
        a["checkins"][0]["id"].as_str().unwrap().to_string(),
        b["checkins"][0]["id"].as_str().unwrap().to_string(),
    );
    let due = a["checkins"][0]["due"].as_str().unwrap().to_string();
    assert_eq!(b["checkins"][0]["due"].as_str().unwrap(), due);
    let due_at: DateTime<Utc> = due.parse().unwrap();
    let due_secs = due_at.timestamp();
    let b_before = notice_state(&env, &b_first);

    let config = std::fs::read_to_string(&env.config_path).unwrap();
    let rotterdam = format!(
        "[[municipalities]]\ncode = \"{ROTTERDAM}\"\nname = \"Rotterdam\"\nteam_email = \"{TEAM_ROTTERDAM}\"\ncoordinator_email = \"{COORD_ROTTERDAM}\"\nregion = \"VR17\"\n"
    );
    assert!(config.contains(&rotterdam));
    std::fs::write(&env.config_path, config.replace(&rotterdam, "")).unwrap();

    let swept = sweep_only(&env, &due);
    assert_eq!(swept["sweep"]["examined"], 2);
    assert_eq!(swept["sweep"]["due"], 1);
    assert_eq!(swept["sweep"]["unroutable"], 1);
    assert_eq!(
        due_messages(&env),
        [format!("due:{a_first}:0:{due_secs}|1")]
    );
    // Only the index moved: an hour on, nothing recorded as sent.
    let (stage_count, _) = b_before.rsplit_once('|').unwrap();
    assert_eq!(
        notice_state(&env, &b_first),
        format!("{stage_count}|{}", due_secs + 3600)
    );

    std::fs::write(&env.config_path, config).unwrap();
    let later = (due_at + chrono::Duration::hours(1)).to_rfc3339();
    let again = sweep_only(&env, &later);
    assert_eq!(again["sweep"]["examined"], 1);
    assert_eq!(again["sweep"]["due"], 1);
    assert_eq!(again["sweep"]["unroutable"], 0);
    let mut expected = vec![
        format!("due:{a_first}:0:{due_secs}|1"),
        format!("due:{b_first}:0:{due_secs}|1"),
    ];
    expected.sort();
    assert_eq!(due_messages(&env), expected);
}
