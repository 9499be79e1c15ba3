//! Relapse signals end to end: observations checked against the indicators, each rule kind
//! raising exactly the flags it should per child, red alerts once, the daily digest once
//! per working day (also around DST), and the ack/resolve lifecycle.

use crate::support::env::*;
use serde_json::{Value, json};

const ENROL_AT: &str = "2027-03-01T10:00:00+01:00";
const RECORD_AT: &str = "2027-03-02T10:00:00+01:00";
const CONTACT_AT: &str = "2027-03-02T09:00:00+01:00";

struct Family {
    reference: String,
    children: Vec<String>,
    checkins: Vec<String>,
}

fn enrol(env: &TestEnv, municipality: &str, marker: &str) -> Family {
    let v = env.enrol(
        ENROL_AT,
        &family_body(municipality, "standard", "2027-02-28", marker),
    );
    Family {
        reference: v["family"].as_str().unwrap().to_string(),
        children: v["members"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["role"] == "child")
            .map(|m| m["ref"].as_str().unwrap().to_string())
            .collect(),
        checkins: v["checkins"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_str().unwrap().to_string())
            .collect(),
    }
}

/// Records wave `i` (0-based): the first child's observations, the second child's, and
/// the family's. `None` for a child: no observations for it.
fn body(
    f: &Family,
    i: usize,
    outcome: &str,
    a: Option<Value>,
    b: Option<Value>,
    fam: Value,
) -> Value {
    let mut children = Vec::new();
    for (m, o) in f.children.iter().zip([a, b]) {
        if let Some(o) = o {
            children.push(json!({"member": m, "observations": o}));
        }
    }
    json!({"checkin": f.checkins[i], "at": CONTACT_AT, "outcome": outcome, "mode": "phone",
           "family_observations": fam, "children": children})
}

fn record_ok(env: &TestEnv, b: &Value) -> Value {
    let out = env.record(RECORD_AT, b);
    assert!(
        out.status.success(),
        "record failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// (rule, child or "family", check-in wave index) of a family's flags, sorted.
fn flags_of(env: &TestEnv, f: &Family) -> Vec<(String, String, usize)> {
    let mut v: Vec<_> = env
        .json(&["flags", "list"])
        .as_array()
        .unwrap()
        .iter()
        .filter(|fl| fl["family"] == f.reference.as_str())
        .map(|fl| {
            let child = match fl["child"].as_str() {
                Some(c) => format!("child{}", f.children.iter().position(|x| x == c).unwrap()),
                None => "family".to_string(),
            };
            let wave = f
                .checkins
                .iter()
                .position(|c| fl["checkin"] == c.as_str())
                .unwrap();
            (fl["rule"].as_str().unwrap().to_string(), child, wave)
        })
        .collect();
    v.sort();
    v
}

fn alerts(env: &TestEnv) -> Vec<Value> {
    env.outbox()
        .into_iter()
        .filter(|m| m["kind"] == "alert")
        .collect()
}

/// One scenario per rule kind: the first child's history → exactly these flags. The second
/// child is observed at every check-in with calm values and never gets a flag.
#[test]
fn each_rule_kind_raises_exactly_its_flags_per_child() {
    let calm =
        || Some(json!({"wellbeing": 8, "school_attendance": "normal", "new_incident": false}));
    type Step = (&'static str, Option<Value>, Value);
    let r = |o: Value| -> Step { ("reached", Some(o), json!({})) };
    type Want = Vec<(&'static str, &'static str, usize)>;
    let cases: Vec<(&str, Vec<Step>, Want)> = vec![
        (
            "threshold: an incident, persisting, one red flag",
            vec![
                r(json!({"new_incident": false})),
                r(json!({"new_incident": true})),
                r(json!({"new_incident": true})),
            ],
            vec![("new_incident", "child0", 1)],
        ),
        (
            "worsening: wellbeing 8, 8 then 6 (no) then 5 (yes)",
            vec![
                r(json!({"wellbeing": 8})),
                r(json!({"wellbeing": 8})),
                r(json!({"wellbeing": 6})),
                r(json!({"wellbeing": 5})),
            ],
            vec![("wellbeing_drop", "child0", 3)],
        ),
        (
            "streak: school reduced or worse at two check-ins in a row",
            vec![
                r(json!({"school_attendance": "reduced"})),
                r(json!({"school_attendance": "normal"})),
                r(json!({"school_attendance": "reduced"})),
                r(json!({"school_attendance": "absent"})),
                r(json!({"school_attendance": "absent"})),
            ],
            vec![("school_slipping", "child0", 3)],
        ),
        (
            "all_of: behaviour change together with perpetrator contact",
            vec![
                r(json!({"behaviour_change": true, "perpetrator_contact": "none"})),
                r(json!({"behaviour_change": false, "perpetrator_contact": "supervised"})),
                r(json!({"behaviour_change": true, "perpetrator_contact": "supervised"})),
            ],
            vec![("behaviour_and_contact", "child0", 2)],
        ),
        (
            "family threshold: the safety plan is no longer followed",
            vec![
                ("reached", None, json!({"safety_plan_followed": true})),
                (
                    "reached",
                    None,
                    json!({"safety_plan_followed": false, "stressors": ["debts", "housing"]}),
                ),
            ],
            vec![("safety_plan_dropped", "family", 1)],
        ),
    ];
    let env = TestEnv::new();
    for (name, steps, want) in &cases {
        let f = enrol(&env, AMSTERDAM, "RULES");
        for (i, (outcome, a, fam)) in steps.iter().enumerate() {
            let reached = *outcome == "reached";
            let b = body(
                &f,
                i,
                outcome,
                a.clone(),
                if reached { calm() } else { None },
                fam.clone(),
            );
            record_ok(&env, &b);
        }
        let want: Vec<(String, String, usize)> = want
            .iter()
            .map(|(r, c, w)| (r.to_string(), c.to_string(), *w))
            .collect();
        assert_eq!(flags_of(&env, &f), want, "{name}");
    }
    // The red flag (new_incident) sent one alert; amber ones none. (`out_of_sight` is a
    // time rule: see `out_of_sight_by_time_amber_at_eight_weeks_red_at_sixteen`.)
    let alerts = alerts(&env);
    assert_eq!(alerts.len(), 1, "{alerts:?}");
}

/// One child's incident flags that child only, and the alert names only that child.
#[test]
fn siblings_are_independent() {
    let env = TestEnv::new();
    let f = enrol(&env, AMSTERDAM, "SIBS");
    let out = record_ok(
        &env,
        &body(
            &f,
            0,
            "reached",
            Some(json!({"wellbeing": 9})),
            Some(json!({"new_incident": true, "wellbeing": 2})),
            json!({}),
        ),
    );
    assert_eq!(out["flags"].as_array().unwrap().len(), 1, "{out}");
    assert_eq!(out["flags"][0]["child"], f.children[1].as_str());
    assert_eq!(
        flags_of(&env, &f),
        vec![("new_incident".to_string(), "child1".to_string(), 0)]
    );
    let body_text = env.sql("SELECT body FROM outbox WHERE kind = 'alert'");
    assert!(body_text.contains(&f.children[1]), "{body_text}");
    assert!(!body_text.contains(&f.children[0]), "{body_text}");
    assert!(!body_text.contains("SIBS"), "no personal data in the alert");
}

/// `out_of_sight` is a time rule: nobody records anything, and 8 weeks after enrolment the
/// sweep raises an amber family flag (no alert), at 16 weeks it turns red and one red alert
/// goes to the team; later sweeps send nothing more. A family reached in between counts
/// from that contact instead.
#[test]
fn out_of_sight_by_time_amber_at_eight_weeks_red_at_sixteen() {
    let env = TestEnv::new();
    // Enrolled 2027-03-01 10:00 CET (09:00 UTC): amber from 2027-04-26 09:00 UTC, red from
    // 2027-06-21 09:00 UTC. No check-in is ever recorded.
    let f = enrol(&env, ROTTERDAM, "SIGHT");
    // The other family is reached at 2027-03-14 10:00 CET: amber from 2027-05-09 09:00 UTC.
    let g = enrol(&env, AMSTERDAM, "SEEN");
    let seen = json!({"checkin": g.checkins[0], "at": "2027-03-14T10:00:00+01:00",
                      "outcome": "reached", "mode": "walk"});
    let out = env.record("2027-03-14T12:00:00+01:00", &seen);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let sev = |env: &TestEnv, fam: &Family| -> Vec<String> {
        env.json(&["flags", "list"])
            .as_array()
            .unwrap()
            .iter()
            .filter(|fl| fl["family"] == fam.reference.as_str())
            .map(|fl| {
                format!(
                    "{}:{}",
                    fl["rule"].as_str().unwrap(),
                    fl["severity"].as_str().unwrap()
                )
            })
            .collect()
    };
    let s = env.sweep("2027-04-26T10:59:00+02:00");
    assert_eq!(s["sweep"]["flags_raised"], 0, "a minute before eight weeks");
    assert!(sev(&env, &f).is_empty());
    let at = "2027-04-26T11:00:00+02:00";
    let s = env.sweep(at);
    assert_eq!(s["sweep"]["flags_raised"], 1, "{s}");
    assert_eq!(sev(&env, &f), ["out_of_sight:amber"]);
    assert!(
        sev(&env, &g).is_empty(),
        "reached on 2027-03-14: still in sight"
    );
    assert!(alerts(&env).is_empty(), "amber sends no alert");
    let flag = &env.json(&["flags", "list", "--municipality", ROTTERDAM, "--open"])[0];
    assert_eq!(flag["kind"], "out_of_sight");
    assert!(flag["child"].is_null());
    // Evidence: the check-ins that fell due meanwhile, overdue without a record.
    let contacts: Vec<&str> = flag["evidence"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["contact"].as_str().unwrap())
        .collect();
    assert_eq!(contacts, ["overdue", "overdue"]);
    // Same instant again: nothing changes.
    let before = env.counts();
    let s = env.sweep(at);
    assert_eq!(s["sweep"]["flags_raised"], 0);
    assert_eq!(env.counts(), before, "a repeated sweep changes nothing");
    // The reached family turns amber eight weeks after its contact.
    env.sweep("2027-05-09T10:59:00+02:00");
    assert!(sev(&env, &g).is_empty());
    env.sweep("2027-05-09T11:00:00+02:00");
    assert_eq!(sev(&env, &g), ["out_of_sight:amber"]);
    // Sixteen weeks without contact: the same flag turns red, one alert.
    let s = env.sweep("2027-06-21T10:59:00+02:00");
    assert_eq!(s["sweep"]["flags_raised"], 0);
    assert_eq!(sev(&env, &f), ["out_of_sight:amber"]);
    let s = env.sweep("2027-06-21T11:00:00+02:00");
    assert_eq!(s["sweep"]["flags_raised"], 1, "{s}");
    assert_eq!(sev(&env, &f), ["out_of_sight:red"]);
    env.sweep("2027-09-01T10:00:00+02:00");
    assert_eq!(flags_of(&env, &f).len(), 1);
    let alerts: Vec<Value> = alerts(&env)
        .into_iter()
        .filter(|a| a["family"] == f.reference.as_str())
        .collect();
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0]["recipients"][0], TEAM_ROTTERDAM);
    assert_eq!(alerts[0]["status"], "sent");
}

fn digests(env: &TestEnv) -> Vec<String> {
    env.outbox()
        .into_iter()
        .filter(|m| m["kind"] == "digest")
        .map(|m| m["key"].as_str().unwrap().to_string())
        .collect()
}

/// New amber flags go into one digest per team per working day at 08:00 local: not before,
/// not twice (also not for a repeated sweep at the same instant), not at the weekend or on
/// Easter Monday, and at 08:00 local again on the Tuesday after the switch to summer time,
/// with the weekly summary of what is still open; then no repetition of the same lines.
#[test]
fn digest_once_per_working_day_with_new_amber_flags_and_a_weekly_summary_across_dst() {
    let env = TestEnv::new();
    let drop = |env: &TestEnv, f: &Family| {
        for (i, w) in [8, 8, 3].into_iter().enumerate() {
            record_ok(
                env,
                &body(
                    f,
                    i,
                    "reached",
                    Some(json!({"wellbeing": w})),
                    None,
                    json!({}),
                ),
            );
        }
    };
    let a1 = enrol(&env, AMSTERDAM, "DIGA");
    let a2 = enrol(&env, AMSTERDAM, "DIGB");
    let r1 = enrol(&env, ROTTERDAM, "DIGC");
    drop(&env, &a1);
    drop(&env, &a2);
    drop(&env, &r1);
    let ids = |f: &Family| -> Vec<i64> {
        env.json(&["flags", "list"])
            .as_array()
            .unwrap()
            .iter()
            .filter(|fl| fl["family"] == f.reference.as_str())
            .map(|fl| fl["id"].as_i64().unwrap())
            .collect()
    };
    // Friday 2027-03-26, CET (UTC+1).
    env.sweep("2027-03-26T07:59:00+01:00");
    assert!(digests(&env).is_empty(), "not before 08:00");
    env.sweep("2027-03-26T08:00:00+01:00");
    env.sweep("2027-03-26T08:00:00+01:00");
    env.sweep("2027-03-26T16:00:00+01:00");
    assert_eq!(
        digests(&env),
        ["digest:GM0363:2027-03-26", "digest:GM0599:2027-03-26"]
    );
    let ams = env.sql("SELECT body FROM outbox WHERE key = 'digest:GM0363:2027-03-26'");
    for id in ids(&a1).into_iter().chain(ids(&a2)) {
        assert!(ams.contains(&format!("#{id} ")), "flag {id} in {ams}");
    }
    for id in ids(&r1) {
        assert!(
            !ams.contains(&format!("#{id} ")),
            "Rotterdam's flag in Amsterdam's digest"
        );
    }
    assert!(!ams.contains("DIG"), "no personal data in the digest");
    // Weekend, including the DST switch on Sunday 2027-03-28: nothing.
    env.sweep("2027-03-27T09:00:00+01:00");
    env.sweep("2027-03-28T09:00:00+02:00");
    assert_eq!(digests(&env).len(), 2);
    // Monday 2027-03-29 is Easter Monday: no digest.
    env.sweep("2027-03-29T08:00:00+02:00");
    assert_eq!(digests(&env).len(), 2);
    // Tuesday 2027-03-30, CEST (UTC+2): 07:59 local is later in UTC than Friday's 08:00 was.
    env.sweep("2027-03-30T07:59:00+02:00");
    assert_eq!(digests(&env).len(), 2);
    // The first working day of the week: the weekly summary lists what is still open.
    env.sweep("2027-03-30T08:00:00+02:00");
    env.sweep("2027-03-30T08:00:00+02:00");
    assert_eq!(digests(&env).len(), 4);
    assert!(digests(&env).contains(&"digest:GM0363:2027-03-30".to_string()));
    let ams = env.sql("SELECT body FROM outbox WHERE key = 'digest:GM0363:2027-03-30'");
    assert!(ams.contains("Weekly summary"), "{ams}");
    for id in ids(&a1).into_iter().chain(ids(&a2)) {
        assert!(ams.contains(&format!("#{id} ")), "flag {id} in {ams}");
    }
    // Resolved flags leave the digest; the same amber lines are not repeated every day, so
    // on Wednesday nobody gets a digest.
    for id in ids(&r1) {
        env.ok(&[
            "--at",
            "2027-03-30T09:00:00+02:00",
            "flags",
            "resolve",
            &id.to_string(),
            "--note",
            "handled",
        ]);
    }
    env.sweep("2027-03-31T08:30:00+02:00");
    assert_eq!(digests(&env).len(), 4);
}

/// Unknown indicators, wrong types, values out of range and indicators of the wrong subject
/// are refused with exit 65, naming the field, and nothing changes.
#[test]
fn bad_observations_are_refused_and_change_nothing() {
    let env = TestEnv::new();
    let f = enrol(&env, AMSTERDAM, "BADOBS");
    let cases = [
        (
            json!({"mood": 3}),
            json!({}),
            "children[0].observations.mood",
        ),
        (
            json!({"wellbeing": "BADOBS"}),
            json!({}),
            "children[0].observations.wellbeing",
        ),
        (
            json!({"wellbeing": 11}),
            json!({}),
            "children[0].observations.wellbeing",
        ),
        (
            json!({"new_incident": "yes"}),
            json!({}),
            "children[0].observations.new_incident",
        ),
        (
            json!({"school_attendance": "sometimes"}),
            json!({}),
            "children[0].observations.school_attendance",
        ),
        (
            json!({"stressors": ["debts"]}),
            json!({}),
            "children[0].observations.stressors",
        ),
        (
            json!({}),
            json!({"stressors": ["debts", "gambling"]}),
            "family_observations.stressors",
        ),
        (
            json!({}),
            json!({"wellbeing": 5}),
            "family_observations.wellbeing",
        ),
    ];
    let before = env.counts();
    for (child, fam, field) in cases {
        let out = env.record(RECORD_AT, &body(&f, 0, "reached", Some(child), None, fam));
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(65), "{field}: {err}");
        assert!(err.contains(field), "{field}: {err}");
        assert!(!err.contains("BADOBS"), "{err}");
        assert_eq!(env.counts(), before, "{field}");
    }
}

/// open → acknowledged → resolved, notes sealed; a persisting condition raises nothing new
/// while the flag is open, and raises again after it was resolved.
#[test]
fn ack_resolve_lifecycle_and_recurrence() {
    let env = TestEnv::new();
    let f = enrol(&env, AMSTERDAM, "LIFE");
    let incident = |i| {
        body(
            &f,
            i,
            "reached",
            Some(json!({"new_incident": true})),
            None,
            json!({}),
        )
    };
    record_ok(&env, &incident(0));
    let id = env.json(&["flags", "list", "--open"])[0]["id"]
        .as_i64()
        .unwrap()
        .to_string();
    record_ok(&env, &incident(1));
    assert_eq!(
        flags_of(&env, &f).len(),
        1,
        "persisting: no second flag while open"
    );
    let acked = env.json(&[
        "--at",
        RECORD_AT,
        "flags",
        "ack",
        &id,
        "--note",
        "LIFE-ack-note",
        "--by",
        "LIFE-worker",
    ]);
    assert_eq!(acked["status"], "acknowledged");
    assert_eq!(acked["acknowledged"]["note"], "LIFE-ack-note");
    assert_eq!(
        env.run(&["flags", "ack", &id, "--note", "again"], None)
            .status
            .code(),
        Some(65)
    );
    record_ok(&env, &incident(2));
    assert_eq!(
        flags_of(&env, &f).len(),
        1,
        "persisting: no second flag while acknowledged"
    );
    let resolved = env.json(&[
        "--at",
        RECORD_AT,
        "flags",
        "resolve",
        &id,
        "--note",
        "LIFE-resolve-note",
    ]);
    assert_eq!(resolved["status"], "resolved");
    assert_eq!(
        env.run(&["flags", "resolve", &id, "--note", "again"], None)
            .status
            .code(),
        Some(65)
    );
    assert_eq!(
        env.run(&["flags", "ack", &id, "--note", ""], None)
            .status
            .code(),
        Some(65)
    );
    assert_eq!(
        env.run(&["flags", "ack", "99999", "--note", "x"], None)
            .status
            .code(),
        Some(66)
    );
    // It recurs: a new flag at the next check-in, and a new alert.
    record_ok(&env, &incident(3));
    let got = flags_of(&env, &f);
    assert_eq!(
        got,
        vec![
            ("new_incident".to_string(), "child0".to_string(), 0),
            ("new_incident".to_string(), "child0".to_string(), 3),
        ]
    );
    assert_eq!(alerts(&env).len(), 2);
    assert_eq!(
        env.json(&["flags", "list", "--open"])
            .as_array()
            .unwrap()
            .len(),
        1
    );
    // The family record lists its flags, with the decrypted notes.
    let shown: Value = serde_json::from_str(&env.ok(&["family", "show", &f.reference])).unwrap();
    assert_eq!(shown["flags"].as_array().unwrap().len(), 2);
    assert_eq!(shown["flags"][0]["resolved"]["note"], "LIFE-resolve-note");
    assert_eq!(shown["flags"][0]["evidence"]["items"][0]["value"], true);
    // Notes and names are sealed at rest.
    let db = env.stored_bytes();
    for marker in ["LIFE-ack-note", "LIFE-resolve-note", "LIFE-worker"] {
        assert!(
            !db.windows(marker.len()).any(|w| w == marker.as_bytes()),
            "{marker} on disk"
        );
    }
}

/// `check-config` names the key of each broken rule: unknown indicator, wrong kind for the
/// indicator's type, unknown severity, wrong op for the type.
#[test]
fn bad_rules_are_reported_with_their_key_paths() {
    let good = config_text("transport = \"file\"\ndir = \"var/outbox\"");
    let cases = [
        (
            "indicator = \"new_incident\"\nop = \"eq\"",
            "indicator = \"new_incidents\"\nop = \"eq\"",
            "rules[0].indicator",
        ),
        (
            "severity = \"amber\"\nkind = \"worsening\"\nindicator = \"wellbeing\"",
            "severity = \"amber\"\nkind = \"worsening\"\nindicator = \"new_incident\"",
            "rules[2].kind",
        ),
        (
            "code = \"new_incident\"\nseverity = \"red\"",
            "code = \"new_incident\"\nseverity = \"urgent\"",
            "rules[0].severity",
        ),
        (
            "op = \"ge\"\nvalue = \"reduced\"",
            "op = \"contains\"\nvalue = \"reduced\"",
            "rules[3].value",
        ),
        (
            "applies_to = \"child\"\ntype = \"scale\"",
            "applies_to = \"child\"\ntype = \"slider\"",
            "indicators[3].type",
        ),
    ];
    for (from, to, key) in cases {
        assert_eq!(good.matches(from).count(), 1, "{from}");
        let text = good.replacen(from, to, 1);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nazorg.toml");
        std::fs::write(&path, &text).unwrap();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_nazorg"))
            .args(["--config", path.to_str().unwrap(), "check-config"])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(78), "{key}: {err}");
        assert!(err.contains(&format!("  {key}: ")), "{key}: {err}");
    }
}

/// A red flag nobody acknowledges is alerted again every working day (from 08:00) and
/// escalated to the coordinator after one working day; the digest lists red flags every
/// day, a new amber flag once, and the amber flag again only in Monday's weekly summary.
#[test]
fn red_flag_resent_and_escalated_and_the_digest_over_a_week() {
    let env = TestEnv::new();
    let f = enrol(&env, AMSTERDAM, "REDW");
    // Tuesday 2027-03-02 10:00: a new incident for the first child (red) and the safety plan
    // no longer followed (amber, family).
    let out = record_ok(
        &env,
        &body(
            &f,
            0,
            "reached",
            Some(json!({"new_incident": true})),
            None,
            json!({"safety_plan_followed": false}),
        ),
    );
    let flag = |rule: &str| -> i64 {
        out["flags"]
            .as_array()
            .unwrap()
            .iter()
            .find(|fl| fl["rule"] == rule)
            .unwrap_or_else(|| panic!("no {rule} in {out}"))["id"]
            .as_i64()
            .unwrap()
    };
    let (red, amber) = (flag("new_incident"), flag("safety_plan_dropped"));
    let digest_of = |env: &TestEnv, date: &str| {
        env.sql(&format!(
            "SELECT body FROM outbox WHERE key = 'digest:GM0363:{date}'"
        ))
    };
    let has = |body: &str, id: i64| body.contains(&format!("#{id} "));
    env.sweep("2027-03-02T10:05:00+01:00");
    let tue = digest_of(&env, "2027-03-02");
    assert!(has(&tue, red) && has(&tue, amber), "{tue}");
    assert!(
        tue.contains("Red flags") && tue.contains("New or changed"),
        "{tue}"
    );
    // Wednesday: not before 08:00; then the alert again and a digest with the red flag only.
    let s = env.sweep("2027-03-03T07:59:00+01:00");
    assert_eq!(s["sweep"]["red_repeats"], 0);
    let s = env.sweep("2027-03-03T08:00:00+01:00");
    assert_eq!(s["sweep"]["red_repeats"], 1, "{s}");
    assert_eq!(
        s["sweep"]["red_escalations"], 0,
        "one working day has not passed yet"
    );
    let wed = digest_of(&env, "2027-03-03");
    assert!(
        has(&wed, red) && !has(&wed, amber),
        "no daily repetition of amber: {wed}"
    );
    // Wednesday 10:00, one working day after it was raised: the coordinator is told.
    let s = env.sweep("2027-03-03T10:00:00+01:00");
    assert_eq!(s["sweep"]["red_escalations"], 1, "{s}");
    let s = env.sweep("2027-03-03T16:00:00+01:00");
    assert_eq!(s["sweep"]["red_repeats"], 0, "once per working day");
    assert_eq!(s["sweep"]["red_escalations"], 0, "escalated once");
    env.sweep("2027-03-04T08:00:00+01:00");
    // Acknowledged on Thursday: no more repeats.
    env.ok(&[
        "--at",
        "2027-03-04T09:00:00+01:00",
        "flags",
        "ack",
        &red.to_string(),
        "--note",
        "REDW huisbezoek gepland",
    ]);
    let s = env.sweep("2027-03-05T08:00:00+01:00");
    assert_eq!(s["sweep"]["red_repeats"], 0);
    let fri = digest_of(&env, "2027-03-05");
    assert!(has(&fri, red) && !has(&fri, amber), "{fri}");
    // The weekend: nothing at all.
    env.sweep("2027-03-06T08:00:00+01:00");
    env.sweep("2027-03-07T08:00:00+01:00");
    // Monday: the weekly summary brings the amber flag back, once.
    env.sweep("2027-03-08T08:00:00+01:00");
    let mon = digest_of(&env, "2027-03-08");
    assert!(has(&mon, red) && has(&mon, amber), "{mon}");
    assert!(mon.contains("Weekly summary"), "{mon}");

    let mails: Vec<(String, String, String)> = env
        .outbox()
        .iter()
        .map(|m| {
            (
                m["kind"].as_str().unwrap().to_string(),
                m["recipients"][0].as_str().unwrap().to_string(),
                m["key"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let m = |kind: &str, to: &str, key: String| (kind.to_string(), to.to_string(), key);
    assert_eq!(
        mails,
        vec![
            m(
                "new_family",
                TEAM_AMSTERDAM,
                format!("new_family:{}", f.reference)
            ),
            m("alert", TEAM_AMSTERDAM, format!("alert:{red}")),
            m("digest", TEAM_AMSTERDAM, "digest:GM0363:2027-03-02".into()),
            m(
                "alert_repeat",
                TEAM_AMSTERDAM,
                format!("alert_repeat:{red}:2027-03-03")
            ),
            m("digest", TEAM_AMSTERDAM, "digest:GM0363:2027-03-03".into()),
            m(
                "alert_escalation",
                COORD_AMSTERDAM,
                format!("alert_escalation:{red}")
            ),
            m(
                "alert_repeat",
                TEAM_AMSTERDAM,
                format!("alert_repeat:{red}:2027-03-04")
            ),
            m("digest", TEAM_AMSTERDAM, "digest:GM0363:2027-03-04".into()),
            m("digest", TEAM_AMSTERDAM, "digest:GM0363:2027-03-05".into()),
            m("digest", TEAM_AMSTERDAM, "digest:GM0363:2027-03-08".into()),
        ]
    );
    let esc = env.sql("SELECT cc || ' ' || body FROM outbox WHERE kind = 'alert_escalation'");
    assert!(esc.contains(TEAM_AMSTERDAM), "cc the team: {esc}");
    assert!(!esc.contains("REDW"), "no personal data: {esc}");
}

/// A record reads the family before its write transaction; another record of the same
/// family that commits in between (here: run by the test hook right there) moves the
/// family's version on, so the later record reads again inside its write transaction.
/// Its rules see the earlier record's observations (two absent school days in a row raise
/// `school_slipping` at the second), each record takes one write transaction, and a
/// check-in recorded in between is refused, not recorded twice.
#[test]
fn a_record_interleaved_with_another_sees_it() {
    use nazorg::clock::ManualClock;
    use nazorg::domain::recording::CheckinRecord;
    use nazorg::service::checkin;
    use std::sync::Arc;

    let env = TestEnv::new();
    let f = enrol(&env, AMSTERDAM, "RACE");
    let absent = || Some(json!({"school_attendance": "absent"}));
    let first: CheckinRecord =
        serde_json::from_value(body(&f, 0, "reached", absent(), None, json!({}))).unwrap();
    let second: CheckinRecord =
        serde_json::from_value(body(&f, 1, "reached", absent(), None, json!({}))).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let at = chrono::DateTime::parse_from_rfc3339(RECORD_AT)
        .unwrap()
        .with_timezone(&chrono::Utc);
    let app = rt.block_on(env.app(Arc::new(ManualClock::new(at))));
    let writes = app.store.write_transactions();
    let out = rt.block_on({
        let app2 = app.clone();
        checkin::with_work_between_read_and_write(
            Box::pin(async move {
                let out = checkin::record(&app2, &first).await.unwrap();
                assert!(out.flags.is_empty(), "one absent day is no streak");
            }),
            checkin::record(&app, &second),
        )
    });
    let out = out.unwrap();
    assert_eq!(app.store.write_transactions() - writes, 2, "one each");
    assert_eq!(out.flags.len(), 1, "{:?}", out.flags);
    assert_eq!(out.flags[0].rule, "school_slipping");
    assert_eq!(
        flags_of(&env, &f),
        vec![("school_slipping".to_string(), "child0".to_string(), 1)]
    );
    assert_eq!(out.next_checkin.map(|n| n.id), Some(f.checkins[2].clone()));

    // The same check-in recorded in between: refused, and kept once.
    let third: CheckinRecord =
        serde_json::from_value(body(&f, 2, "reached", absent(), None, json!({}))).unwrap();
    let again = third.clone();
    let refused = rt.block_on({
        let app2 = app.clone();
        checkin::with_work_between_read_and_write(
            Box::pin(async move {
                checkin::record(&app2, &again).await.unwrap();
            }),
            checkin::record(&app, &third),
        )
    });
    match refused {
        Err(nazorg::service::OpError::Conflict(m)) => {
            assert!(m.contains("already recorded"), "{m}")
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    rt.block_on(app.store.close());
    let per_checkin = |table: &str| {
        env.sql(&format!(
            "SELECT c.ref, COUNT(*) FROM {table} t JOIN checkins c ON c.id = t.checkin_id \
             GROUP BY c.ref ORDER BY c.ref"
        ))
    };
    let mut want: Vec<String> = f.checkins[..3].iter().map(|c| format!("{c}|1")).collect();
    want.sort();
    assert_eq!(per_checkin("checkin_attempts"), want.join("\n"));
    assert_eq!(per_checkin("observations"), want.join("\n"));
    assert_eq!(
        env.sql("SELECT COUNT(*) FROM audit WHERE action = 'checkin.record'"),
        "3"
    );
    // The streak goes on at the third check-in, but its open flag stands for it: one flag.
    assert_eq!(flags_of(&env, &f).len(), 1);
}

/// The family's version moves with every write to what a record reads, whatever makes it
/// (here raw SQL: the triggers keep it, not the callers). A child who leaves the household
/// between a record's read and its write is no longer observed: the record reads again
/// and is refused, and stores nothing.
#[test]
fn a_member_leaving_between_read_and_write_is_seen() {
    use nazorg::clock::ManualClock;
    use nazorg::domain::recording::CheckinRecord;
    use nazorg::service::checkin;
    use std::sync::Arc;

    let env = TestEnv::new();
    let f = enrol(&env, AMSTERDAM, "LEAVE");
    let calm = || Some(json!({"wellbeing": 8}));
    let rec: CheckinRecord =
        serde_json::from_value(body(&f, 0, "reached", calm(), None, json!({}))).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let at = chrono::DateTime::parse_from_rfc3339(RECORD_AT)
        .unwrap()
        .with_timezone(&chrono::Utc);
    let app = rt.block_on(env.app(Arc::new(ManualClock::new(at))));
    let child = f.children[0].clone();
    let refused = rt.block_on({
        let app2 = app.clone();
        checkin::with_work_between_read_and_write(
            Box::pin(async move {
                let mut tx = app2.store.write().await.unwrap();
                sqlx::query(
                    "UPDATE members SET left_at = $1, left_reason = 'moved_out' WHERE ref = $2",
                )
                .bind(at.timestamp())
                .bind(&child)
                .execute(&mut *tx)
                .await
                .unwrap();
                tx.commit().await.unwrap();
            }),
            checkin::record(&app, &rec),
        )
    });
    match refused {
        Err(nazorg::service::OpError::Invalid(errors)) => {
            let text = format!("{errors:?}");
            assert!(text.contains("left the household"), "{text}");
        }
        other => panic!("expected the record refused, got {other:?}"),
    }
    rt.block_on(app.store.close());
    assert_eq!(
        env.sql(&format!(
            "SELECT status || ' ' || attempts FROM checkins WHERE ref = '{}'",
            f.checkins[0]
        )),
        "open 0"
    );
    assert_eq!(env.sql("SELECT COUNT(*) FROM observations"), "0");
}
