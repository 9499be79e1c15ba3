//! The aftercare spine end to end: enrol, schedule, sweep, remind, record.

use crate::support::env::*;
use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use chrono_tz::Europe::Amsterdam;
use nazorg::clock::ManualClock;
use nazorg::service;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;

fn local(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
    Amsterdam
        .with_ymd_and_hms(y, m, d, h, min, 0)
        .single()
        .unwrap()
        .with_timezone(&Utc)
}

fn rfc(t: DateTime<Utc>) -> String {
    t.to_rfc3339()
}

/// (recipient, kind, check-in, n) of every outbox message, sorted.
fn messages(env: &TestEnv) -> Vec<(String, String, String, u32)> {
    // Reminders only: relapse-signal alerts and digests are covered in `signals`.
    let mut v: Vec<_> = env
        .outbox()
        .iter()
        .filter(|m| {
            !matches!(
                m["kind"].as_str(),
                Some("alert" | "alert_repeat" | "alert_escalation" | "digest" | "new_family")
            )
        })
        .map(|m| {
            let key = m["key"].as_str().unwrap();
            let parts: Vec<&str> = key.split(':').collect();
            (
                m["recipients"][0].as_str().unwrap().to_string(),
                m["kind"].as_str().unwrap().to_string(),
                parts[1].to_string(),
                parts[2].parse().unwrap(),
            )
        })
        .collect();
    v.sort();
    v
}

/// What the reminder rules promise for one check-in, given when (if ever) it is recorded:
/// upcoming (due − 2 d), due, overdue at +3 d, +10 d, +17 d, escalation at +24 d; each only
/// if the sweep that sends it runs before the record. Sweeps run daily at 10:00 local.
fn expected_for(
    team: &str,
    coord: &str,
    checkin: &str,
    due_day: NaiveDate,
    recorded: Option<DateTime<Utc>>,
) -> Vec<(String, String, String, u32)> {
    let at = |days: i64| {
        let d = due_day + Duration::days(days);
        local(d.year_ce().1 as i32, d.month0() + 1, d.day0() + 1, 10, 0)
    };
    let plan = [
        (-2, team, "upcoming", 0),
        (0, team, "due", 0),
        (3, team, "overdue", 1),
        (10, team, "overdue", 2),
        (17, team, "overdue", 3),
        (24, coord, "escalation", 3),
    ];
    plan.iter()
        .filter(|(days, ..)| recorded.is_none_or(|r| at(*days) < r))
        .map(|(_, to, kind, n)| (to.to_string(), kind.to_string(), checkin.to_string(), *n))
        .collect()
}

use chrono::Datelike;

/// Two families on different plans, swept once a day for 25 months; some check-ins recorded
/// on time, some late, some never. The outbox holds exactly what the rules say, once each.
#[tokio::test]
async fn twenty_five_months_of_daily_sweeps() {
    let env = TestEnv::new();
    let a = env.enrol(
        &rfc(local(2026, 12, 2, 11, 0)),
        &family_body(AMSTERDAM, "standard", "2026-12-01", "SCENA"),
    );
    let b = env.enrol(
        &rfc(local(2026, 12, 11, 11, 0)),
        &family_body(ROTTERDAM, "monthly", "2026-12-10", "SCENB"),
    );
    let clock = ManualClock::new(local(2026, 12, 2, 12, 0));
    let app = env.app(Arc::new(clock.clone())).await;
    let transport = nazorg::dispatcher::transport(&app.config.mail).unwrap();

    // Record plan by wave: 1 → on the due day after the due notice; 2 → the day before due;
    // 3 → never; 0 → five days late (after the first overdue reminder).
    let mut records: BTreeMap<DateTime<Utc>, Vec<Value>> = BTreeMap::new();
    let mut expected = Vec::new();
    for (fam, team, coord) in [
        (&a, TEAM_AMSTERDAM, COORD_AMSTERDAM),
        (&b, TEAM_ROTTERDAM, COORD_ROTTERDAM),
    ] {
        let children: Vec<String> = fam["members"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["role"] == "child")
            .map(|m| m["ref"].as_str().unwrap().to_string())
            .collect();
        for c in fam["checkins"].as_array().unwrap() {
            let id = c["id"].as_str().unwrap();
            let wave = c["wave"].as_u64().unwrap();
            let due: DateTime<Utc> = c["due"].as_str().unwrap().parse().unwrap();
            let due_day = due.with_timezone(&Amsterdam).date_naive();
            let rec_day = match wave % 4 {
                1 => Some(due_day),
                2 => Some(due_day - Duration::days(1)),
                0 => Some(due_day + Duration::days(5)),
                _ => None,
            };
            let rec_at = rec_day.map(|d| local(d.year(), d.month(), d.day(), 12, 0));
            expected.extend(expected_for(team, coord, id, due_day, rec_at));
            if let Some(at) = rec_at {
                records.entry(at).or_default().push(json!({
                    "checkin": id,
                    "at": rfc(at),
                    "mode": "home_visit",
                    "notes": "SCEN-note"
                }));
                // Even waves: the family declined (which closes the check-in, like
                // reached; `not_reached` would keep it open for another attempt).
                let last = records.get_mut(&at).and_then(|v| v.last_mut()).unwrap();
                if wave % 2 == 0 {
                    last["outcome"] = json!("declined");
                } else {
                    last["outcome"] = json!("reached");
                    last["family_observations"] = json!({"stressors": ["debts"]});
                    last["children"] = json!(children.iter().map(|m| json!({"member": m, "observations": {"wellbeing": wave.min(10)}})).collect::<Vec<_>>());
                }
            }
        }
    }
    expected.sort();
    // 8 standard waves (2+1+6+3, twice) and 12 monthly ones (2+1+6+3, three times).
    assert_eq!(expected.len(), 24 + 36);

    let mut day = NaiveDate::from_ymd_opt(2026, 12, 3).unwrap();
    let end = NaiveDate::from_ymd_opt(2029, 1, 15).unwrap();
    let mut sweeps = 0;
    while day <= end {
        let sweep_at = local(day.year(), day.month(), day.day(), 10, 0);
        clock.set(sweep_at);
        nazorg::sweep::sweep(&app, sweep_at).await.unwrap();
        nazorg::dispatcher::dispatch(&app, &transport, sweep_at)
            .await
            .unwrap();
        sweeps += 1;
        let record_at = local(day.year(), day.month(), day.day(), 12, 0);
        for body in records.remove(&record_at).unwrap_or_default() {
            clock.set(record_at);
            let rec = nazorg::domain::parse_json(body.to_string().as_bytes()).unwrap();
            service::checkin::record(&app, &rec).await.unwrap();
        }
        day += Duration::days(1);
    }
    assert!(records.is_empty(), "records left unplayed: {records:?}");
    assert!(sweeps > 750);

    let got = messages(&env);
    assert_eq!(got, expected);
    // Every message was sent exactly once: one .eml per outbox row, all marked sent.
    assert_eq!(env.eml_files().len(), env.outbox().len());
    assert!(
        env.outbox()
            .iter()
            .all(|m| m["status"] == "sent" && m["attempts"] == 1)
    );
    // A repeat of the last sweep changes nothing.
    let again = env.sweep(&rfc(local(2029, 1, 15, 10, 0)));
    assert_eq!(again["sweep"]["examined"], 0);
    assert_eq!(messages(&env), expected);
}

/// No sweep for 90 days, then one: each missed slot gets one overdue notice, the slot due
/// yesterday its due notice, nothing stale; a second sweep at the same instant adds nothing.
#[test]
fn catch_up_after_ninety_days_down() {
    let env = TestEnv::new();
    let fam = env.enrol(
        "2026-12-02T10:00:00+01:00",
        &family_body(AMSTERDAM, "standard", "2026-12-01", "CATCH"),
    );
    let ids: Vec<&str> = fam["checkins"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    let first = env.sweep("2027-03-02T10:00:00+01:00");
    assert_eq!(first["sweep"]["overdue"], 2);
    assert_eq!(first["sweep"]["due"], 1);
    assert_eq!(first["sweep"]["upcoming"], 0);
    assert_eq!(first["sweep"]["escalation"], 0);
    // The three reminders, and the digest with the amber `out_of_sight` flag (13 weeks
    // without a reached contact).
    assert_eq!(first["sweep"]["flags_raised"], 1);
    assert_eq!(first["sweep"]["digests"], 1);
    // And the new-family notice queued at enrolment.
    assert_eq!(first["dispatch"]["sent"], 5);
    let got = messages(&env);
    assert_eq!(
        got,
        vec![
            (TEAM_AMSTERDAM.into(), "due".into(), ids[2].into(), 0),
            (TEAM_AMSTERDAM.into(), "overdue".into(), ids[0].into(), 1),
            (TEAM_AMSTERDAM.into(), "overdue".into(), ids[1].into(), 1),
        ]
        .into_iter()
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect::<Vec<_>>()
    );
    let before = env.counts();
    let second = env.sweep("2027-03-02T10:00:00+01:00");
    assert_eq!(second["sweep"]["examined"], 0);
    assert_eq!(second["dispatch"]["sent"], 0);
    assert_eq!(env.counts(), before);
    assert_eq!(env.eml_files().len(), 5);
}

/// A family enrolled two months after leaving the shelter: slots long past are `lapsed`
/// (kept for the waves, never reminded); nothing is mailed at enrolment.
#[test]
fn late_enrolment_lapses_old_slots_without_a_storm() {
    let env = TestEnv::new();
    let fam = env.enrol(
        "2026-12-02T10:00:00+01:00",
        &family_body(AMSTERDAM, "standard", "2026-10-01", "LATE"),
    );
    let status: Vec<&str> = fam["checkins"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["status"].as_str().unwrap())
        .collect();
    assert_eq!(status[..3], ["lapsed", "lapsed", "open"]);
    let s = env.sweep("2026-12-02T10:05:00+01:00");
    assert_eq!(s["sweep"]["examined"], 0);
    // Only the new-family notice queued at enrolment: no storm of overdue reminders.
    let kinds: Vec<Value> = env.outbox().iter().map(|m| m["kind"].clone()).collect();
    assert_eq!(kinds, [json!("new_family")]);
    // A contact that did happen in a lapsed slot can still be recorded.
    let lapsed = fam["checkins"][0]["id"].as_str().unwrap();
    let out = env.record(
        "2026-12-02T11:00:00+01:00",
        &json!({"checkin": lapsed, "at": "2026-10-16T10:00:00+02:00", "outcome": "reached", "mode": "office"}),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // A slot that fell due the day before enrolment stays open and is due now.
    let fam = env.enrol(
        "2026-12-02T10:00:00+01:00",
        &family_body(AMSTERDAM, "standard", "2026-11-17", "LATE2"),
    );
    assert_eq!(fam["checkins"][0]["status"], "open");
    let s = env.sweep("2026-12-02T10:05:00+01:00");
    assert_eq!(s["sweep"]["due"], 1);
    assert_eq!(s["sweep"]["overdue"], 0);
}

/// Check-ins fall due at 09:00 local on the days around both DST switches of 2027.
#[test]
fn dst_switches_keep_nine_o_clock_local() {
    let env = TestEnv::new();
    for (episode, enrol_at, expect_utc) in [
        (
            "2027-03-26",
            "2027-03-26T12:00:00+01:00",
            [
                "2027-03-27T08:00:00+00:00",
                "2027-03-28T07:00:00+00:00",
                "2027-03-29T07:00:00+00:00",
            ],
        ),
        (
            "2027-10-29",
            "2027-10-29T12:00:00+02:00",
            [
                "2027-10-30T07:00:00+00:00",
                "2027-10-31T08:00:00+00:00",
                "2027-11-01T08:00:00+00:00",
            ],
        ),
    ] {
        let fam = env.enrol(enrol_at, &family_body(AMSTERDAM, "daily3", episode, "DST"));
        let due: Vec<DateTime<Utc>> = fam["checkins"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["due"].as_str().unwrap().parse().unwrap())
            .collect();
        let want: Vec<DateTime<Utc>> = expect_utc.iter().map(|t| t.parse().unwrap()).collect();
        assert_eq!(due, want, "episode {episode}");
        // The due notice is sent at the due instant, not an hour early or late.
        let minute_before = rfc(due[1] - Duration::minutes(1));
        let s = env.sweep(&minute_before);
        assert_eq!(
            s["sweep"]["due"], 1,
            "only the first slot is due a minute before the second"
        );
        let s = env.sweep(&rfc(due[1]));
        assert_eq!(
            s["sweep"]["due"], 1,
            "the second slot falls due at 09:00 local"
        );
    }
    let due = env.json(&["--at", "2027-11-01T09:00:00+01:00", "checkin", "due"]);
    assert!(
        due.as_array()
            .unwrap()
            .iter()
            .all(|l| l["due_local"].as_str().unwrap().contains(" 09:00 "))
    );
}

/// Recording stops reminders for that moment; the schedule continues; a second record of
/// the same check-in is refused and changes nothing.
#[test]
fn recording_stops_reminders_and_the_schedule_goes_on() {
    let env = TestEnv::new();
    let fam = env.enrol(
        "2026-12-02T10:00:00+01:00",
        &family_body(AMSTERDAM, "standard", "2026-12-01", "REC"),
    );
    let c1 = fam["checkins"][0]["id"].as_str().unwrap();
    let c2 = fam["checkins"][1]["id"].as_str().unwrap();
    let child = fam["members"][1]["ref"].as_str().unwrap();
    env.sweep("2026-12-15T10:00:00+01:00");
    let body = json!({"checkin": c1, "at": "2026-12-15T11:00:00+01:00", "outcome": "reached", "mode": "phone",
                      "children": [{"member": child, "observations": {"wellbeing": 6}}], "notes": "REC-note"});
    let out = env.record("2026-12-15T12:00:00+01:00", &body);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["next_checkin"]["id"], c2);
    // No overdue mail for the recorded moment, ever.
    env.sweep("2027-01-05T10:00:00+01:00");
    assert!(
        messages(&env)
            .iter()
            .all(|(_, kind, id, _)| id != c1 || kind == "upcoming" || kind == "due")
    );
    // Recording twice: refused, nothing changes.
    let before = env.counts();
    let again = env.record("2027-01-05T12:00:00+01:00", &body);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already recorded"));
    assert_eq!(env.counts(), before);
    // The show command returns the recorded observation, decrypted.
    let shown = env.json(&["family", "show", fam["family"].as_str().unwrap()]);
    assert_eq!(shown["checkins"][0]["outcome"], "reached");
    assert_eq!(
        shown["checkins"][0]["children"][0]["observations"]["wellbeing"],
        6
    );
    assert_eq!(shown["checkins"][0]["record"]["notes"], "REC-note");
}

/// Closing early needs a reason code; reminders stop.
#[test]
fn closing_early_needs_a_reason_and_stops_reminders() {
    let env = TestEnv::new();
    let fam = env.enrol(
        "2026-12-02T10:00:00+01:00",
        &family_body(AMSTERDAM, "standard", "2026-12-01", "CLOSE"),
    );
    let r = fam["family"].as_str().unwrap();
    let before = env.counts();
    let out = env.run(&["family", "close", r, "--reason", "calm_now"], None);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("reason"));
    assert_eq!(env.counts(), before);
    let closed = env.json(&[
        "--at",
        "2026-12-03T10:00:00+01:00",
        "family",
        "close",
        r,
        "--reason",
        "family_moved_abroad",
        "--safety-improved",
        "partly",
        "--professionals",
        "2",
    ]);
    assert_eq!(closed["checkins_cancelled"], 8);
    let s = env.sweep("2027-06-01T10:00:00+02:00");
    assert_eq!(s["sweep"]["examined"], 0);
    // Only the new-family notice queued at enrolment and the coordinator's notice of the
    // early closure.
    let kinds: Vec<Value> = env.outbox().iter().map(|m| m["kind"].clone()).collect();
    assert_eq!(kinds, [json!("new_family"), json!("closure_notice")]);
    let shown = env.json(&["family", "show", r]);
    assert_eq!(shown["status"], "closed_early");
    assert_eq!(shown["close_reason"], "family_moved_abroad");
}
