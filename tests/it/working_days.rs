//! Working days: due moments on weekends and Dutch public holidays move to the next working
//! day, no reminder goes out on a non-working day, and a family that needs an interpreter
//! hears about a check-in `reminders.lead_interpreter` ahead.

use crate::support::env::*;
use serde_json::{Value, json};

/// The first check-in's due instant (UTC, RFC 3339) of a `workdays` family (P14D first).
fn first_due(env: &TestEnv, episode: &str) -> (Value, String) {
    let fam = env.enrol(
        &format!("{episode}T10:00:00+02:00"),
        &family_body(AMSTERDAM, "workdays", episode, "WORK"),
    );
    let due = fam["checkins"][0]["due"].as_str().unwrap().to_string();
    (fam, due)
}

/// A Saturday moves to Monday; Easter Monday to Tuesday; King's Day (a Tuesday in 2027) to
/// Wednesday; in 2031 the 27th of April is a Sunday, so King's Day is Saturday the 26th and
/// the Monday after is a working day again.
#[test]
fn due_moments_move_off_weekends_and_dutch_holidays() {
    let env = TestEnv::new();
    for (case, episode, want) in [
        // +14 days = Saturday 2027-01-16 → Monday 2027-01-18 09:00 CET.
        ("saturday", "2027-01-02", "2027-01-18T08:00:00Z"),
        // +14 days = Easter Monday 2027-03-29 → Tuesday 09:00 CEST.
        ("easter monday", "2027-03-15", "2027-03-30T07:00:00Z"),
        // +14 days = King's Day, Tuesday 2027-04-27 → Wednesday.
        ("king's day", "2027-04-13", "2027-04-28T07:00:00Z"),
        // +14 days = Saturday 2031-04-26, King's Day that year → Monday 2031-04-28.
        (
            "king's day on saturday",
            "2031-04-12",
            "2031-04-28T07:00:00Z",
        ),
        // +14 days = Liberation Day, Wednesday 2027-05-05; Ascension is the day after.
        (
            "liberation and ascension",
            "2027-04-21",
            "2027-05-07T07:00:00Z",
        ),
    ] {
        let (_, due) = first_due(&env, episode);
        assert_eq!(due, want, "{case}");
    }
    // A plan with weekends kept leaves the Saturday where it is.
    let kept = env.enrol(
        "2027-01-02T10:00:00+01:00",
        &family_body(AMSTERDAM, "standard", "2027-01-02", "KEPT"),
    );
    assert_eq!(kept["checkins"][0]["due"], "2027-01-16T08:00:00Z");
}

/// The extra closing days of `handover.holidays` close the office for due moments too.
#[test]
fn configured_holidays_apply_to_due_moments() {
    let env = TestEnv::with_changes(&[("[api]", "[handover]\nholidays = [\"2027-01-18\"]\n[api]")]);
    let (_, due) = first_due(&env, "2027-01-02");
    assert_eq!(
        due, "2027-01-19T08:00:00Z",
        "Saturday → Monday (closed) → Tuesday"
    );
}

/// The "upcoming" notice of a Monday check-in falls on Saturday: it is held over the
/// weekend and sent by the first sweep on Monday.
#[test]
fn no_notice_goes_out_on_a_weekend() {
    let env = TestEnv::new();
    let (fam, due) = first_due(&env, "2027-01-02");
    assert_eq!(due, "2027-01-18T08:00:00Z");
    let c1 = fam["checkins"][0]["id"].as_str().unwrap();
    let sat = env.sweep("2027-01-16T10:00:00+01:00");
    assert_eq!(sat["sweep"]["upcoming"], 0, "{sat}");
    assert_eq!(sat["sweep"]["held_for_working_day"], 1, "{sat}");
    let sun = env.sweep("2027-01-17T10:00:00+01:00");
    assert_eq!(sun["sweep"]["examined"], 0, "held until Monday: {sun}");
    let kinds = |env: &TestEnv| -> Vec<String> {
        env.outbox()
            .iter()
            .map(|m| m["kind"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(kinds(&env), ["new_family"], "nothing on the weekend");
    let mon = env.sweep("2027-01-18T00:05:00+01:00");
    assert_eq!(mon["sweep"]["upcoming"], 1, "{mon}");
    let due_sweep = env.sweep("2027-01-18T09:00:00+01:00");
    assert_eq!(due_sweep["sweep"]["due"], 1);
    let kinds: Vec<(String, String)> = env
        .outbox()
        .iter()
        .filter(|m| m["kind"] != "new_family")
        .map(|m| {
            (
                m["kind"].as_str().unwrap().to_string(),
                m["key"]
                    .as_str()
                    .unwrap()
                    .split(':')
                    .nth(1)
                    .unwrap()
                    .to_string(),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            ("upcoming".to_string(), c1.to_string()),
            ("due".to_string(), c1.to_string())
        ]
    );
}

/// With the default `reminders.lead_interpreter` (P5D) the family that needs an interpreter
/// hears five days ahead; the one that does not, two days ahead (`reminders.lead`).
#[test]
fn an_interpreter_family_gets_its_first_notice_earlier() {
    let env = TestEnv::with_changes(&[("lead_interpreter = \"P2D\"\n", "")]);
    // standard plan from 2026-12-01: first check-in due Tuesday 2026-12-15 09:00.
    let with = env.enrol(
        "2026-12-01T10:00:00+01:00",
        &family_body(AMSTERDAM, "standard", "2026-12-01", "TOLK"),
    );
    let mut body = family_body(ROTTERDAM, "standard", "2026-12-01", "GEEN");
    body["interpreter_needed"] = json!(false);
    let without = env.enrol("2026-12-01T10:00:00+01:00", &body);
    let s = env.sweep("2026-12-10T08:59:00+01:00");
    assert_eq!(s["sweep"]["upcoming"], 0);
    let s = env.sweep("2026-12-10T09:00:00+01:00");
    assert_eq!(s["sweep"]["upcoming"], 1, "five days ahead: {s}");
    let s = env.sweep("2026-12-13T09:00:00+01:00");
    assert_eq!(s["sweep"]["upcoming"], 1, "two days ahead: {s}");
    let upcoming: Vec<(String, String)> = env
        .outbox()
        .iter()
        .filter(|m| m["kind"] == "upcoming")
        .map(|m| {
            (
                m["family"].as_str().unwrap().to_string(),
                m["recipients"][0].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        upcoming,
        [
            (
                with["family"].as_str().unwrap().to_string(),
                TEAM_AMSTERDAM.to_string()
            ),
            (
                without["family"].as_str().unwrap().to_string(),
                TEAM_ROTTERDAM.to_string()
            )
        ]
    );
}
