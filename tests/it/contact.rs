//! The contact loop: several attempts per check-in, a retry reminder after each failed one,
//! the check-in missed and escalated after the last; observations only when reached.

use crate::support::env::*;
use serde_json::{Value, json};

fn attempt(env: &TestEnv, clock: &str, body: &Value) -> Value {
    let out = env.run(
        &["--at", clock, "--json", "checkin", "attempt", "--file", "-"],
        Some(body.to_string().as_bytes()),
    );
    assert!(
        out.status.success(),
        "attempt failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// (kind, to, cc, check-in) of every outbox message, in the order they were queued.
fn mails(env: &TestEnv) -> Vec<(String, String, String, String)> {
    env.outbox()
        .iter()
        .map(|m| {
            let key = m["key"].as_str().unwrap();
            let checkin = key
                .split(':')
                .find(|p| p.starts_with("C-"))
                .unwrap_or("-")
                .to_string();
            let join = |v: &Value| {
                v.as_array()
                    .unwrap()
                    .iter()
                    .map(|x| x.as_str().unwrap())
                    .collect::<Vec<_>>()
                    .join(",")
            };
            (
                m["kind"].as_str().unwrap().to_string(),
                join(&m["recipients"]),
                join(&m["cc"]),
                checkin,
            )
        })
        .collect()
}

fn m(kind: &str, to: &str, cc: &str, c: &str) -> (String, String, String, String) {
    (kind.into(), to.into(), cc.into(), c.into())
}

/// Three failed attempts: after each of the first two a retry reminder a week later, after
/// the third the check-in is missed and the coordinator is told (cc the team); the next
/// check-in is reached. Exactly these messages, in this order, to these addresses.
#[test]
fn three_failed_attempts_then_a_reached_one() {
    let env = TestEnv::new();
    // standard plan from 2026-12-01: C1 due 2026-12-15 09:00, C2 due 2027-01-12 09:00.
    let fam = env.enrol(
        "2026-12-01T10:00:00+01:00",
        &family_body(AMSTERDAM, "standard", "2026-12-01", "TRY"),
    );
    let family = fam["family"].as_str().unwrap();
    let c1 = fam["checkins"][0]["id"].as_str().unwrap();
    let c2 = fam["checkins"][1]["id"].as_str().unwrap();
    let child = fam["members"][1]["ref"].as_str().unwrap();
    env.sweep("2026-12-14T10:00:00+01:00");
    env.sweep("2026-12-15T10:00:00+01:00");
    let try_at = |at: &str, mode: &str, by: &str| {
        json!({"checkin": c1, "at": at, "outcome": "not_reached", "mode": mode,
               "by": by, "notes": "TRY-attempt-note"})
    };
    // Attempt 1: not reached; the check-in stays open, the next attempt is due a week later.
    let a1 = attempt(
        &env,
        "2026-12-15T12:00:00+01:00",
        &try_at("2026-12-15T11:00:00+01:00", "phone", "TRY-worker-a"),
    );
    assert_eq!(a1["status"], "open", "{a1}");
    assert_eq!(a1["attempt"], 1);
    assert_eq!(a1["next_attempt_due"], "2026-12-22T10:00:00Z");
    let s = env.sweep("2026-12-22T10:59:00+01:00");
    assert_eq!(s["sweep"]["retry"], 0, "not before the retry is due");
    let s = env.sweep("2026-12-22T11:00:00+01:00");
    assert_eq!(s["sweep"]["retry"], 1, "{s}");
    // Attempt 2, a home visit: not reached either.
    let a2 = attempt(
        &env,
        "2026-12-23T12:00:00+01:00",
        &try_at("2026-12-23T11:00:00+01:00", "home_visit", "TRY-worker-b"),
    );
    assert_eq!(a2["status"], "open");
    assert_eq!(a2["attempt"], 2);
    env.sweep("2026-12-30T11:00:00+01:00");
    // The same sweep again sends nothing twice.
    let s = env.sweep("2026-12-30T11:00:00+01:00");
    assert_eq!(s["sweep"]["examined"], 0);
    // Attempt 3 (through `checkin record`, the same service): missed, escalated.
    let out = env.record(
        "2026-12-31T12:00:00+01:00",
        &try_at("2026-12-31T11:00:00+01:00", "video", "TRY-worker-a"),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let a3: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(a3["status"], "missed", "{a3}");
    assert_eq!(a3["attempt"], 3);
    assert_eq!(a3["next_checkin"]["id"], c2);
    // Nothing more for C1, ever; C2 runs as usual and is reached.
    env.sweep("2027-01-05T10:00:00+01:00");
    env.sweep("2027-01-11T10:00:00+01:00");
    env.sweep("2027-01-12T10:00:00+01:00");
    let reached = json!({"checkin": c2, "at": "2027-01-12T11:00:00+01:00", "outcome": "reached",
                         "mode": "walk", "by": "TRY-worker-a",
                         "children": [{"member": child, "observations": {"wellbeing": 7}}]});
    let a4 = attempt(&env, "2027-01-12T12:00:00+01:00", &reached);
    assert_eq!(a4["status"], "recorded");
    assert_eq!(a4["attempt"], 1);
    env.sweep("2027-01-20T10:00:00+01:00");

    assert_eq!(
        mails(&env),
        vec![
            m("new_family", TEAM_AMSTERDAM, "", "-"),
            m("upcoming", TEAM_AMSTERDAM, "", c1),
            m("due", TEAM_AMSTERDAM, "", c1),
            m("retry", TEAM_AMSTERDAM, "", c1),
            m("retry", TEAM_AMSTERDAM, "", c1),
            m("invite_cancel", TEAM_AMSTERDAM, "", c1),
            m("missed", COORD_AMSTERDAM, TEAM_AMSTERDAM, c1),
            m("upcoming", TEAM_AMSTERDAM, "", c2),
            m("due", TEAM_AMSTERDAM, "", c2),
            m("invite_cancel", TEAM_AMSTERDAM, "", c2),
        ]
    );
    let subjects: Vec<String> = env
        .outbox()
        .iter()
        .map(|m| m["subject"].as_str().unwrap().to_string())
        .collect();
    assert!(subjects[3].contains("attempt 2 of 3"), "{}", subjects[3]);
    assert!(subjects[4].contains("attempt 3 of 3"), "{}", subjects[4]);
    // subjects[5] is the calendar cancel queued with the missed check-in.
    assert!(
        subjects[6].contains("not reached after 3 attempts"),
        "{}",
        subjects[6]
    );
    let escalation = env.sql("SELECT body FROM outbox WHERE kind = 'missed'");
    assert!(
        escalation.contains("earlier attempts failed too"),
        "{escalation}"
    );
    assert!(!escalation.contains("TRY"), "no personal data in mail");

    // Every attempt is kept, who tried sealed.
    assert_eq!(env.sql("SELECT COUNT(*) FROM checkin_attempts"), "4");
    assert_eq!(
        env.sql(
            "SELECT group_concat(outcome || '/' || mode, ' ') FROM \
             (SELECT outcome, mode FROM checkin_attempts ORDER BY checkin_id, number) a"
        ),
        "not_reached/phone not_reached/home_visit not_reached/video reached/walk"
    );
    assert_eq!(
        env.sql(
            "SELECT COUNT(*) FROM checkin_attempts WHERE CAST(sealed_details AS TEXT) LIKE '%TRY%'"
        ),
        "0"
    );
    // `missed` is the stored status, not a reading of it.
    assert_eq!(
        env.sql(&format!("SELECT status FROM checkins WHERE ref = '{c1}'")),
        "missed"
    );
    let shown = env.json(&["family", "show", family]);
    assert_eq!(shown["checkins"][0]["status"], "missed");
    assert_eq!(shown["checkins"][0]["outcome"], "not_reached");
    let by: Vec<&str> = shown["checkins"][0]["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["by"].as_str().unwrap())
        .collect();
    assert_eq!(by, ["TRY-worker-a", "TRY-worker-b", "TRY-worker-a"]);
    assert_eq!(shown["checkins"][1]["status"], "recorded");
    assert_eq!(shown["checkins"][1]["attempts"][0]["by"], "TRY-worker-a");
}

/// Observations on `not_reached` or `declined` are refused with the field named, and
/// nothing changes (no attempt kept either); an unknown field likewise.
#[test]
fn observations_are_refused_unless_reached() {
    let env = TestEnv::new();
    let fam = env.enrol(
        "2026-12-01T10:00:00+01:00",
        &family_body(AMSTERDAM, "standard", "2026-12-01", "OBS"),
    );
    let c1 = fam["checkins"][0]["id"].as_str().unwrap();
    let child = fam["members"][1]["ref"].as_str().unwrap();
    let before = (
        env.counts(),
        env.sql("SELECT COUNT(*) FROM checkin_attempts"),
    );
    let base = json!({"checkin": c1, "at": "2026-12-15T11:00:00+01:00", "mode": "phone"});
    let with = |extra: Value| {
        let mut b = base.clone();
        for (k, v) in extra.as_object().unwrap() {
            b[k] = v.clone();
        }
        b
    };
    for (case, body, field) in [
        (
            "family observations, not reached",
            with(
                json!({"outcome": "not_reached", "family_observations": {"stressors": ["debts"]}}),
            ),
            "family_observations",
        ),
        (
            "child observations, declined",
            with(json!({"outcome": "declined",
                        "children": [{"member": child, "observations": {"wellbeing": 5}}]})),
            "children[0].observations",
        ),
        (
            "unknown field",
            with(json!({"outcome": "not_reached", "tried_by": "x"})),
            "tried_by",
        ),
    ] {
        let out = env.run(
            &[
                "--at",
                "2026-12-15T12:00:00+01:00",
                "checkin",
                "attempt",
                "--file",
                "-",
            ],
            Some(body.to_string().as_bytes()),
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(65), "{case}: {err}");
        assert!(err.contains(field), "{case}: {err}");
        assert_eq!(
            (
                env.counts(),
                env.sql("SELECT COUNT(*) FROM checkin_attempts")
            ),
            before,
            "{case}: the database changed"
        );
    }
}

/// Enrolment tells the responsible team at once, in the same transaction: one
/// `new_family` notice with the reference, plan, first contact and contact hints, and no
/// personal data; a refused enrolment queues nothing.
#[test]
fn enrolment_queues_a_new_family_notice_at_once() {
    let env = TestEnv::new();
    let fam = env.enrol(
        "2026-12-01T10:00:00+01:00",
        &family_body(ROTTERDAM, "standard", "2026-12-01", "NIEUW"),
    );
    let family = fam["family"].as_str().unwrap();
    let c1 = fam["checkins"][0]["id"].as_str().unwrap();
    let outbox = env.outbox();
    assert_eq!(outbox.len(), 1, "{outbox:?}");
    let m = &outbox[0];
    assert_eq!(m["kind"], "new_family");
    assert_eq!(m["recipients"], json!([TEAM_ROTTERDAM]));
    assert_eq!(m["family"], family);
    assert!(m["subject"].as_str().unwrap().contains(family));
    let body = env.sql("SELECT body FROM outbox WHERE kind = 'new_family'");
    assert!(body.contains(c1), "{body}");
    assert!(
        body.contains("around Tuesday 15 December 2026"),
        "first contact date: {body}"
    );
    assert!(body.contains("Contact language:     Arabic"), "{body}");
    assert!(body.contains("Interpreter needed:   yes"), "{body}");
    assert!(!body.contains("NIEUW"), "no personal data: {body}");
    // The first sweep sends it.
    let s = env.sweep("2026-12-01T10:05:00+01:00");
    assert_eq!(s["dispatch"]["sent"], 1);
    // A refused enrolment queues nothing.
    let before = env.counts();
    let mut bad = family_body(ROTTERDAM, "standard", "2026-12-01", "NIEUW");
    bad["plan"] = json!("nope");
    let out = env.run(
        &[
            "--at",
            "2026-12-01T10:00:00+01:00",
            "family",
            "enroll",
            "--file",
            "-",
        ],
        Some(bad.to_string().as_bytes()),
    );
    assert_eq!(out.status.code(), Some(65));
    assert_eq!(env.counts(), before);
}

/// The shipped plans start with a first contact three days after the start.
#[test]
fn shipped_plans_start_with_a_first_contact_at_three_days() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    for file in [
        "config/nazorg.example.toml",
        "config/nazorg.production.toml",
    ] {
        let path = root.join(file);
        let text = std::fs::read_to_string(&path).unwrap();
        let cfg = nazorg::config::Config::parse(&text, &path, &Default::default()).unwrap();
        assert!(!cfg.plans.is_empty());
        let p3d: nazorg::domain::duration::IsoDuration = "P3D".parse().unwrap();
        for (name, plan) in &cfg.plans {
            assert!(plan.offsets.contains(&p3d), "{file}: plan {name}");
            // A Thursday start: the first contact is on Sunday → Monday at the latest
            // (working days), never the two weeks it used to be.
            let start = chrono::NaiveDate::from_ymd_opt(2027, 3, 4).unwrap();
            let first = plan.slots(start, cfg.timezone).unwrap()[0].due;
            let day = first.with_timezone(&cfg.timezone).date_naive();
            assert!(
                day <= chrono::NaiveDate::from_ymd_opt(2027, 3, 8).unwrap(),
                "{file}: plan {name}: first contact {day}"
            );
        }
    }
}

/// The API's record endpoint is the same service: `not_reached` keeps the check-in open
/// with the next attempt due a week later; observations on it are refused (400, the field
/// named) and change nothing.
#[test]
fn the_api_records_attempts_the_same_way() {
    use crate::support::daemon::Daemon;
    use crate::support::http;
    use std::time::Duration;
    let env = TestEnv::new();
    let fam = env.enrol(
        "2026-12-01T10:00:00+01:00",
        &family_body(AMSTERDAM, "standard", "2026-12-01", "APITRY"),
    );
    let c1 = fam["checkins"][0]["id"].as_str().unwrap();
    let child = fam["members"][1]["ref"].as_str().unwrap();
    let token = env.json(&[
        "token",
        "create",
        "--municipality",
        AMSTERDAM,
        "--label",
        "cs",
    ]);
    let token = token["token"].as_str().unwrap().to_string();
    let mut d = Daemon::spawn(
        &env,
        "serve",
        &["--at", "2026-12-15T12:00:00+01:00", "serve"],
        None,
    );
    d.wait_log("nazorg daemon ready", Duration::from_secs(20));
    let addr: std::net::SocketAddr = d
        .log()
        .lines()
        .find(|l| l.contains("api listening"))
        .and_then(|l| l.split("addr=").nth(1))
        .and_then(|a| a.split_whitespace().next())
        .unwrap()
        .parse()
        .unwrap();
    let path = format!("/v1/checkins/{c1}/record");
    let before = env.sql("SELECT COUNT(*) FROM checkin_attempts");
    let bad = json!({"at": "2026-12-15T11:00:00+01:00", "outcome": "not_reached", "mode": "phone",
                     "children": [{"member": child, "observations": {"wellbeing": 4}}]});
    let r = http::post_json(addr, &path, Some(&token), &bad);
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(
        r.text().contains("children[0].observations"),
        "{}",
        r.text()
    );
    assert_eq!(env.sql("SELECT COUNT(*) FROM checkin_attempts"), before);
    let ok = json!({"at": "2026-12-15T11:00:00+01:00", "outcome": "not_reached", "mode": "phone"});
    let r = http::post_json(addr, &path, Some(&token), &ok);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["status"], "open");
    assert_eq!(r.json()["attempt"], 1);
    assert_eq!(r.json()["next_attempt_due"], "2026-12-22T10:00:00Z");
    d.terminate();
}

/// A database from before `missed` was a stored status (migration 0012): migrating turns
/// the missed check-in's `recorded` + `missed_at` into `missed`, and the table rebuild
/// loses nothing that refers to check-ins (attempts, observations, flags).
#[test]
fn migrating_an_older_database_stores_missed_and_keeps_everything_else() {
    let env = TestEnv::new();
    if env.skip_on_postgres("rebuilds an SQLite table with the sqlite3 CLI") {
        return;
    }
    let fam = env.enrol(
        "2026-12-01T10:00:00+01:00",
        &family_body(AMSTERDAM, "standard", "2026-12-01", "UPG"),
    );
    let c1 = fam["checkins"][0]["id"].as_str().unwrap();
    let c2 = fam["checkins"][1]["id"].as_str().unwrap();
    let child = fam["members"][1]["ref"].as_str().unwrap();
    for (n, day) in [(1, "2026-12-15"), (2, "2026-12-22"), (3, "2026-12-29")] {
        let body = json!({"checkin": c1, "at": format!("{day}T11:00:00+01:00"),
                          "outcome": "not_reached", "mode": "phone"});
        let a = attempt(&env, &format!("{day}T12:00:00+01:00"), &body);
        assert_eq!(a["attempt"], n);
    }
    let reached = json!({"checkin": c2, "at": "2027-01-12T11:00:00+01:00", "outcome": "reached",
                         "mode": "walk",
                         "children": [{"member": child, "observations": {"new_incident": true}}]});
    attempt(&env, "2027-01-12T12:00:00+01:00", &reached);
    let refs = "SELECT (SELECT COUNT(*) FROM checkin_attempts) || ' ' || \
                (SELECT COUNT(*) FROM observations) || ' ' || (SELECT COUNT(*) FROM flags)";
    let kept = env.sql(refs);
    assert_eq!(kept, "4 1 1", "attempts, observations, a red flag");
    // Back to what migration 0012 left: the old CHECK, missed as recorded + missed_at. The
    // family version triggers of 0015 name `checkins`: rolled back too (as before 0013).
    let triggers: String = ["families_version"]
        .into_iter()
        .map(str::to_string)
        .chain(
            [
                "responsibilities",
                "members",
                "ex_partners",
                "checkins",
                "observations",
            ]
            .iter()
            .flat_map(|t| ["insert", "update", "delete"].map(|op| format!("{t}_version_{op}"))),
        )
        .map(|t| format!("DROP TRIGGER {t}; "))
        .collect();
    env.sql(&format!(
        "BEGIN; {triggers} ALTER TABLE families DROP COLUMN version; \
         DELETE FROM _sqlx_migrations WHERE version = 15; COMMIT;"
    ));
    env.sql(
        "PRAGMA foreign_keys = OFF; BEGIN;
         CREATE TABLE checkins_old (
             id INTEGER PRIMARY KEY, ref TEXT NOT NULL UNIQUE,
             family_id INTEGER NOT NULL REFERENCES families(id) ON DELETE CASCADE,
             wave INTEGER NOT NULL, due_at INTEGER NOT NULL,
             status TEXT NOT NULL DEFAULT 'open'
                 CHECK (status IN ('open', 'recorded', 'cancelled', 'lapsed')),
             notice_stage INTEGER NOT NULL DEFAULT 0, overdue_count INTEGER NOT NULL DEFAULT 0,
             last_notice_at INTEGER, next_notice_at INTEGER, contact_at INTEGER,
             recorded_at INTEGER,
             outcome TEXT CHECK (outcome IN ('reached', 'not_reached', 'declined')),
             mode TEXT CHECK (mode IN ('home_visit', 'phone', 'video', 'office', 'walk')),
             sealed_record BLOB, attempts INTEGER NOT NULL DEFAULT 0, retry_due_at INTEGER,
             missed_at INTEGER, UNIQUE (family_id, wave));
         INSERT INTO checkins_old SELECT id, ref, family_id, wave, due_at,
             CASE status WHEN 'missed' THEN 'recorded' ELSE status END, notice_stage,
             overdue_count, last_notice_at, next_notice_at, contact_at, recorded_at, outcome,
             mode, sealed_record, attempts, retry_due_at, missed_at FROM checkins;
         DROP TABLE checkins;
         ALTER TABLE checkins_old RENAME TO checkins;
         CREATE INDEX checkins_next_notice ON checkins (next_notice_at) WHERE status = 'open';
         CREATE INDEX checkins_open_due ON checkins (due_at) WHERE status = 'open';
         CREATE INDEX checkins_family_open ON checkins (family_id, due_at) WHERE status = 'open';
         ALTER TABLE families DROP COLUMN evaluation_asked_at;
         ALTER TABLE families DROP COLUMN evaluation_reminded_at;
         DELETE FROM _sqlx_migrations WHERE version = 13;
         COMMIT;",
    );
    let status = format!("SELECT status FROM checkins WHERE ref = '{c1}'");
    assert_eq!(env.sql(&status), "recorded");
    env.ok(&["migrate"]);
    assert_eq!(env.sql(&status), "missed");
    assert_eq!(env.sql(refs), kept, "nothing lost in the rebuild");
    assert_eq!(env.sql("PRAGMA foreign_key_check"), "");
    // 0013 is applied again (later migrations, e.g. 0014, were never rolled back).
    assert_eq!(
        env.sql("SELECT COUNT(*) FROM _sqlx_migrations WHERE version = 13 AND success"),
        "1"
    );
    // And 0015 with its triggers, on the rebuilt table.
    assert_eq!(
        env.sql(
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'trigger' AND name LIKE '%_version%'"
        ),
        "16"
    );
    let shown = env.json(&["family", "show", fam["family"].as_str().unwrap()]);
    assert_eq!(shown["checkins"][0]["status"], "missed");
}
