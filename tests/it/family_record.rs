//! The family record keeps up (issue 11 item 7): members join and leave, contacts and the
//! case director change, the ex-partner is a party of its own (never in a mail), a court
//! measure's end is flagged ahead of time once, the safety plan's review is reminded.

use crate::support::env::*;
use serde_json::{Value, json};

const ENROL_AT: &str = "2026-12-02T10:00:00+01:00";

fn update(env: &TestEnv, at: &str, family: &str, body: &Value) -> std::process::Output {
    env.run(
        &[
            "--at", at, "--json", "family", "update", family, "--file", "-",
        ],
        Some(body.to_string().as_bytes()),
    )
}

fn update_ok(env: &TestEnv, at: &str, family: &str, body: &Value) -> Value {
    let o = update(env, at, family, body);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

fn show(env: &TestEnv, at: &str, family: &str) -> Value {
    env.json(&["--at", at, "family", "show", family])
}

fn children(enrolled: &Value) -> Vec<String> {
    enrolled["members"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"] == "child")
        .map(|m| m["ref"].as_str().unwrap().to_string())
        .collect()
}

fn all_mail(env: &TestEnv) -> String {
    env.eml_files()
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn a_newborn_joins_a_child_leaves_and_the_history_is_kept() {
    let env = TestEnv::new();
    let fam = env.enrol(
        ENROL_AT,
        &family_body(AMSTERDAM, "standard", "2026-12-01", "HHMARK"),
    );
    let f = fam["family"].as_str().unwrap();
    let kids = children(&fam);
    let c0 = fam["checkins"][0]["id"].as_str().unwrap();
    let c1 = fam["checkins"][1]["id"].as_str().unwrap();
    let o = env.record(
        "2026-12-16T11:00:00+01:00",
        &json!({"checkin": c0, "at": "2026-12-16T10:00:00+01:00", "outcome": "reached",
                "mode": "home_visit",
                "children": [{"member": kids[1], "observations": {"wellbeing": 6}}]}),
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    let adult = fam["members"][0]["ref"].as_str().unwrap();
    let out = update_ok(
        &env,
        "2026-12-20T10:00:00+01:00",
        f,
        &json!({
            "address": "HHMARK-new-address 3",
            "case_director": {"name": "HHMARK-new-director", "email": "new.director@team.example.org"},
            "contacts": [{"member": adult, "phone": "+31 6 99998888"}],
            "add_members": [{"role": "child", "name": "HHMARK-newborn", "birth_date": "2026-12-18"}],
            "remove_members": [{"member": kids[1], "reason": "placed_elsewhere"}]
        }),
    );
    assert_eq!(out["added"][0]["role"], "child");
    assert_eq!(out["removed"][0], kids[1].as_str());
    let newborn = out["added"][0]["ref"].as_str().unwrap().to_string();
    assert_eq!(
        env.sql(&format!(
            "SELECT COUNT(*) FROM audit WHERE action LIKE 'family.update.%' AND family_ref = '{f}'"
        )),
        "5"
    );

    // The leaving child's later check-ins have no place for observations.
    let before = env.counts();
    let o = env.record(
        "2027-01-13T11:00:00+01:00",
        &json!({"checkin": c1, "at": "2027-01-13T10:00:00+01:00", "outcome": "reached",
                "mode": "home_visit",
                "children": [{"member": kids[1], "observations": {"wellbeing": 6}}]}),
    );
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("children[0].member"), "{err}");
    assert!(err.contains("left the household"), "{err}");
    assert_eq!(env.counts(), before);
    // The newborn is followed.
    let o = env.record(
        "2027-01-13T11:00:00+01:00",
        &json!({"checkin": c1, "at": "2027-01-13T10:00:00+01:00", "outcome": "reached",
                "mode": "home_visit",
                "children": [{"member": newborn, "observations": {"wellbeing": 8}}]}),
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    let v = show(&env, "2027-01-14T10:00:00+01:00", f);
    assert_eq!(v["details"]["address"], "HHMARK-new-address 3");
    assert_eq!(v["details"]["case_director"]["name"], "HHMARK-new-director");
    let members = v["members"].as_array().unwrap();
    assert_eq!(members.len(), 4, "the leaving child is kept for history");
    let left = members
        .iter()
        .find(|m| m["ref"] == kids[1].as_str())
        .unwrap();
    assert_eq!(left["left_reason"], "placed_elsewhere");
    assert!(left["left_at"].is_string());
    assert_eq!(members[0]["phone"], "+31 6 99998888");
    // The first check-in's observation of the leaving child is still there.
    assert_eq!(v["checkins"][0]["children"][0]["member"], kids[1].as_str());
    // Nothing personal is stored plain.
    assert_eq!(
        env.sql("SELECT COUNT(*) FROM members WHERE CAST(sealed_details AS TEXT) LIKE '%HHMARK%'"),
        "0"
    );
}

#[test]
fn the_ex_partner_is_never_mailed_and_the_measure_end_is_signalled_once_ahead() {
    let env = TestEnv::new();
    let fam = env.enrol(
        ENROL_AT,
        &family_body(AMSTERDAM, "standard", "2026-12-01", "EXMARK"),
    );
    let f = fam["family"].as_str().unwrap();
    let out = update_ok(
        &env,
        "2026-12-03T10:00:00+01:00",
        f,
        &json!({"add_members": [{"role": "ex_partner", "name": "EXMARK-perpetrator",
            "measure": {"kind": "huisverbod", "starts_on": "2026-11-20", "ends_on": "2027-01-20"}}]}),
    );
    let x = out["added"][0]["ref"].as_str().unwrap().to_string();
    assert_eq!(out["added"][0]["role"], "ex_partner");
    // Not a household member: not counted as an adult or child anywhere.
    assert_eq!(env.sql("SELECT COUNT(*) FROM members"), "3");
    assert_eq!(env.sql("SELECT COUNT(*) FROM ex_partners"), "1");
    assert_eq!(
        env.sql("SELECT COUNT(*) FROM ex_partners WHERE CAST(sealed_details AS TEXT) LIKE '%huisverbod%' OR CAST(sealed_details AS TEXT) LIKE '%EXMARK%'"),
        "0"
    );
    let v = show(&env, "2026-12-03T11:00:00+01:00", f);
    assert_eq!(v["ex_partners"][0]["name"], "EXMARK-perpetrator");
    assert_eq!(v["ex_partners"][0]["measure"]["kind"], "huisverbod");

    // Observations for the ex-partner are refused, naming the field; nothing changes.
    let c0 = fam["checkins"][0]["id"].as_str().unwrap();
    let before = env.counts();
    let o = env.record(
        "2026-12-16T11:00:00+01:00",
        &json!({"checkin": c0, "at": "2026-12-16T10:00:00+01:00", "outcome": "reached",
                "mode": "home_visit",
                "children": [{"member": x, "observations": {"wellbeing": 6}}]}),
    );
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("children[0].member") && err.contains("ex-partner"),
        "{err}"
    );
    assert_eq!(env.counts(), before);

    let flags = || {
        env.sql(&format!(
            "SELECT COUNT(*) FROM flags WHERE rule = 'measure_notice' AND severity = 'amber' AND subject = '{x}'"
        ))
    };
    // Sweeps through the month: reminders, digests; 15 days ahead nothing yet.
    for at in [
        "2026-12-14T09:30:00+01:00",
        "2026-12-16T09:30:00+01:00",
        "2027-01-05T23:00:00+01:00",
    ] {
        env.sweep(at);
    }
    assert_eq!(flags(), "0");
    // 14 days ahead (P14D before the end's local midnight): signalled, once.
    let s = env.sweep("2027-01-06T00:30:00+01:00");
    assert_eq!(s["sweep"]["flags_raised"], 1, "{s}");
    assert_eq!(flags(), "1");
    for at in [
        "2027-01-06T09:30:00+01:00",
        "2027-01-07T09:30:00+01:00",
        "2027-01-21T09:30:00+01:00",
    ] {
        env.sweep(at);
    }
    assert_eq!(flags(), "1");
    let listed = env.json(&[
        "--at",
        "2027-01-21T10:00:00+01:00",
        "flags",
        "list",
        "--open",
    ]);
    let notice = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|fl| fl["rule"] == "measure_notice")
        .unwrap();
    assert_eq!(notice["family"], f);
    assert_eq!(notice["severity"], "amber");
    assert!(notice["child"].is_null());
    assert_eq!(
        env.sql(&format!(
            "SELECT COUNT(*) FROM audit WHERE action = 'flag.measure_notice' AND family_ref = '{f}'"
        )),
        "1"
    );
    // A move hands the dossier over: the ex-partner is not in it either.
    env.ok(&[
        "--at",
        "2027-01-22T10:00:00+01:00",
        "move",
        f,
        "--to",
        ROTTERDAM,
        "--date",
        "2027-01-25",
    ]);
    env.sweep("2027-01-22T10:30:00+01:00");
    let mail = all_mail(&env);
    assert!(env.eml_files().len() >= 3, "mail was sent");
    assert!(!mail.contains("EXMARK-perpetrator"), "ex-partner in a mail");
    assert!(!mail.contains(&x), "ex-partner reference in a mail");
    assert!(!mail.contains("huisverbod"), "measure in a mail");
    // Until the receiving team names a case director the family has none; naming one in
    // the record does.
    let v = show(&env, "2027-01-26T10:00:00+01:00", f);
    assert_eq!(v["case_director_named"], false);
    update_ok(
        &env,
        "2027-01-26T10:00:00+01:00",
        f,
        &json!({"case_director": {"name": "EXMARK-rotterdam-director", "email": "cd@rotterdam.example.org"}}),
    );
    let v = show(&env, "2027-01-26T11:00:00+01:00", f);
    assert_eq!(v["case_director_named"], true);
    assert_eq!(
        v["details"]["case_director"]["name"],
        "EXMARK-rotterdam-director"
    );
}

#[test]
fn the_safety_plan_review_is_reminded_once_without_its_text() {
    let env = TestEnv::new();
    let fam = env.enrol(
        ENROL_AT,
        &family_body(AMSTERDAM, "standard", "2026-12-01", "SPMARK"),
    );
    let f = fam["family"].as_str().unwrap();
    update_ok(
        &env,
        "2026-12-03T10:00:00+01:00",
        f,
        &json!({"safety_plan": {"text": "SPMARK-plan: code word, neighbour has a key",
                                "review_on": "2027-01-10"}}),
    );
    let v = show(&env, "2026-12-03T11:00:00+01:00", f);
    assert_eq!(v["safety_plan"]["review_on"], "2027-01-10");
    let reviews = || env.sql("SELECT COUNT(*) FROM outbox WHERE kind = 'safety_plan_review'");
    env.sweep("2027-01-09T23:30:00+01:00");
    assert_eq!(reviews(), "0");
    // 2027-01-10 is a Sunday: reminded on Monday.
    env.sweep("2027-01-10T09:00:00+01:00");
    assert_eq!(reviews(), "0");
    let s = env.sweep("2027-01-11T08:00:00+01:00");
    assert_eq!(s["sweep"]["safety_plan_reviews"], 1, "{s}");
    env.sweep("2027-01-11T09:05:00+01:00");
    env.sweep("2027-01-12T09:05:00+01:00");
    assert_eq!(reviews(), "1");
    assert_eq!(
        env.sql("SELECT recipients FROM outbox WHERE kind = 'safety_plan_review'"),
        format!("[\"{TEAM_AMSTERDAM}\"]")
    );
    let mail = all_mail(&env);
    assert!(mail.contains("safety plan"), "the reminder was mailed");
    assert!(!mail.contains("SPMARK"), "personal data in a mail");
    // A new review date is reminded again.
    update_ok(
        &env,
        "2027-01-12T10:00:00+01:00",
        f,
        &json!({"safety_plan": {"text": "SPMARK-plan v2", "review_on": "2027-04-13"}}),
    );
    env.sweep("2027-04-12T09:00:00+02:00");
    assert_eq!(reviews(), "1");
    env.sweep("2027-04-13T09:00:00+02:00");
    assert_eq!(reviews(), "2");
}

#[test]
fn bad_family_updates_name_the_field_and_change_nothing() {
    let env = TestEnv::new();
    let fam = env.enrol(
        ENROL_AT,
        &family_body(AMSTERDAM, "standard", "2026-12-01", "BADMARK"),
    );
    let f = fam["family"].as_str().unwrap();
    let state = || {
        format!(
            "{}|{}|{}",
            env.counts(),
            env.sql("SELECT COUNT(*) FROM ex_partners"),
            env.sql("SELECT COUNT(*) FROM audit")
        )
    };
    let before = state();
    let cases = [
        (
            json!({"add_members": [{"role": "uncle", "name": "A"}]}),
            "add_members[0].role",
        ),
        (
            json!({"add_members": [{"role": "ex_partner", "name": "A",
                    "measure": {"kind": "straatverbod"}}]}),
            "add_members[0].measure.kind",
        ),
        (
            json!({"add_members": [{"role": "ex_partner", "name": "A",
                    "measure": {"kind": "contactverbod", "starts_on": "2026-12-01", "ends_on": "2026-11-01"}}]}),
            "add_members[0].measure.ends_on",
        ),
        (
            json!({"remove_members": [{"member": "M-UNKNOWN000", "reason": "moved_out"}]}),
            "remove_members[0].member",
        ),
        (
            json!({"remove_members": [{"member": fam["members"][1]["ref"], "reason": "bored"}]}),
            "remove_members[0].reason",
        ),
        (
            json!({"add_members": [{"role": "ex_partner", "name": "A", "phone": "0612345678"}]}),
            "add_members[0].phone",
        ),
        (
            json!({"safety_plan": {"text": "x", "review_on": "2026-01-01"}}),
            "safety_plan.review_on",
        ),
        (json!({}), "update"),
    ];
    for (body, field) in cases {
        let o = update(&env, "2026-12-03T10:00:00+01:00", f, &body);
        assert!(!o.status.success(), "{body} was accepted");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(field), "{body}: {err}");
        assert!(!err.contains("BADMARK"), "{err}");
        assert_eq!(state(), before, "{body} changed something");
    }
    // A mix of good and bad parts is refused whole.
    let o = update(
        &env,
        "2026-12-03T10:00:00+01:00",
        f,
        &json!({"address": "BADMARK-new", "add_members": [{"role": "child", "name": "B", "birth_date": "2026-11-30"}],
                "remove_members": [{"member": "M-UNKNOWN000", "reason": "moved_out"}]}),
    );
    assert!(!o.status.success());
    assert_eq!(state(), before);
}

fn record_at(env: &TestEnv, checkin: &str, day: &str, extra: Value) -> std::process::Output {
    let mut body = json!({"checkin": checkin, "at": format!("{day}T10:00:00+01:00"),
        "outcome": "reached", "mode": "home_visit"});
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    env.record(&format!("{day}T11:00:00+01:00"), &body)
}

#[test]
fn adult_observations_are_checked_sealed_and_raise_the_adult_rules() {
    let env = TestEnv::new();
    let fam = env.enrol(
        ENROL_AT,
        &family_body(AMSTERDAM, "standard", "2026-12-01", "ADMARK"),
    );
    let f = fam["family"].as_str().unwrap();
    let adult = fam["members"][0]["ref"].as_str().unwrap();
    let kid = children(&fam)[0].clone();
    let c0 = fam["checkins"][0]["id"].as_str().unwrap();
    let x = update_ok(
        &env,
        "2026-12-03T10:00:00+01:00",
        f,
        &json!({"add_members": [{"role": "ex_partner", "name": "ADMARK-ex"}]}),
    )["added"][0]["ref"]
        .as_str()
        .unwrap()
        .to_string();
    let before = env.counts();
    for (adults, field) in [
        (
            json!([{"member": adult, "observations": {"wellbeing": 5}}]),
            "adults[0].observations.wellbeing",
        ),
        (
            json!([{"member": kid, "observations": {"adult_feels_safe": true}}]),
            "adults[0].member",
        ),
        (
            json!([{"member": x, "observations": {"adult_feels_safe": true}}]),
            "adults[0].member",
        ),
    ] {
        let o = record_at(&env, c0, "2026-12-16", json!({"adults": adults}));
        assert!(!o.status.success(), "{adults} accepted");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(field), "{adults}: {err}");
        assert_eq!(env.counts(), before);
    }
    let o = record_at(
        &env,
        c0,
        "2026-12-16",
        json!({"adults": [{"member": adult, "observations": {"adult_feels_safe": false, "adult_wellbeing": 4}}]}),
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        env.sql(&format!(
            "SELECT severity || ':' || status FROM flags WHERE rule = 'adult_feels_unsafe' AND subject = '{adult}'"
        )),
        "amber:open"
    );
    assert_eq!(
        env.sql("SELECT COUNT(*) FROM observations WHERE CAST(sealed_values AS TEXT) LIKE '%adult_feels_safe%'"),
        "0"
    );
    let v = show(&env, "2026-12-16T12:00:00+01:00", f);
    assert_eq!(v["checkins"][0]["adults"][0]["member"], adult);
    assert_eq!(
        v["checkins"][0]["adults"][0]["observations"]["adult_feels_safe"],
        false
    );
    // The next morning's digest labels the adult as an adult, not as a child.
    env.sweep("2026-12-17T10:00:00+01:00");
    let digest = env.sql("SELECT body FROM outbox WHERE key = 'digest:GM0363:2026-12-17'");
    assert!(
        digest.contains(&format!("family {f}, adult {adult}\n")),
        "{digest}"
    );
    assert!(!digest.contains(&format!("child {adult}")), "{digest}");
}

#[test]
fn a_new_stressor_raises_amber_once() {
    let env = TestEnv::new();
    let fam = env.enrol(
        ENROL_AT,
        &family_body(AMSTERDAM, "standard", "2026-12-01", "STMARK"),
    );
    let f = fam["family"].as_str().unwrap();
    let c = |i: usize| fam["checkins"][i]["id"].as_str().unwrap().to_string();
    let stressor_flags = || {
        env.sql(&format!(
            "SELECT COUNT(*) FROM flags WHERE rule = 'stressor_new' AND severity = 'amber' AND subject = '{f}'"
        ))
    };
    for (i, day, stressors) in [
        (0, "2026-12-16", json!(["debts", "housing"])),
        (1, "2027-01-13", json!(["debts"])),
    ] {
        let o = record_at(
            &env,
            &c(i),
            day,
            json!({"family_observations": {"stressors": stressors}}),
        );
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        assert_eq!(stressor_flags(), "0", "no new stressor yet");
    }
    let o = record_at(
        &env,
        &c(2),
        "2027-03-02",
        json!({"family_observations": {"stressors": ["debts", "legal"]}}),
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(stressor_flags(), "1");
    let raised: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(raised.to_string().contains("stressor_new"), "{raised}");
}

#[test]
fn a_worsened_stressor_raises_amber_an_unchanged_or_improved_one_does_not() {
    let env = TestEnv::new();
    let fam = env.enrol(
        ENROL_AT,
        &family_body(AMSTERDAM, "standard", "2026-12-01", "SWMARK"),
    );
    let f = fam["family"].as_str().unwrap();
    let c = |i: usize| fam["checkins"][i]["id"].as_str().unwrap().to_string();
    let stressor_flags = || {
        env.sql(&format!(
            "SELECT COUNT(*) FROM flags WHERE rule = 'stressor_new' AND severity = 'amber' AND subject = '{f}'"
        ))
    };
    // First levels, then the same debts (as a number) and lighter housing: nothing.
    for (i, day, stressors) in [
        (
            0,
            "2026-12-16",
            json!([{"code": "debts", "level": "serious"}, {"code": "housing", "level": "severe"}]),
        ),
        (
            1,
            "2027-01-13",
            json!([{"code": "debts", "level": 2}, {"code": "housing", "level": "mild"}]),
        ),
    ] {
        let o = record_at(
            &env,
            &c(i),
            day,
            json!({"family_observations": {"stressors": stressors}}),
        );
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        assert_eq!(stressor_flags(), "0", "unchanged or improved at {day}");
    }
    // An unknown level names the field and changes nothing.
    let before = env.counts();
    for (stressors, field) in [
        (
            json!(["housing", {"code": "debts", "level": "extreme"}]),
            "family_observations.stressors[1].level",
        ),
        (
            json!([{"code": "debts", "level": 0}]),
            "family_observations.stressors[0].level",
        ),
        (
            json!([{"code": "debts", "severity": 2}]),
            "family_observations.stressors[0].severity",
        ),
    ] {
        let o = record_at(
            &env,
            &c(2),
            "2027-03-02",
            json!({"family_observations": {"stressors": stressors}}),
        );
        assert!(!o.status.success(), "{stressors} accepted");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(field), "{stressors}: {err}");
        assert_eq!(env.counts(), before);
    }
    // Debts from serious to severe: worsened, amber.
    let o = record_at(
        &env,
        &c(2),
        "2027-03-02",
        json!({"family_observations": {"stressors": [{"code": "debts", "level": "severe"}, {"code": "housing", "level": 1}]}}),
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(stressor_flags(), "1");
    let raised: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(raised.to_string().contains("stressor_new"), "{raised}");
}

#[test]
fn a_referral_is_recorded_with_a_checkin_checked_and_sealed_as_an_update() {
    let env = TestEnv::new();
    let fam = env.enrol(
        ENROL_AT,
        &family_body(AMSTERDAM, "standard", "2026-12-01", "RCMARK"),
    );
    let f = fam["family"].as_str().unwrap();
    let c0 = fam["checkins"][0]["id"].as_str().unwrap();
    let before = env.counts();
    for (referrals, field) in [
        (
            json!([{"kind": "loan_shark", "started": false}]),
            "referrals[0].kind",
        ),
        (
            json!([{"kind": "ggz", "started": true}, {"kind": "schuldhulp", "started": false, "detail": "bell\u{7}"}]),
            "referrals[1].detail",
        ),
    ] {
        let o = record_at(&env, c0, "2026-12-16", json!({"referrals": referrals}));
        assert!(!o.status.success(), "{referrals} accepted");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(field), "{referrals}: {err}");
        assert_eq!(env.counts(), before, "nothing changed");
    }
    let o = record_at(
        &env,
        c0,
        "2026-12-16",
        json!({"family_observations": {"stressors": ["debts"]},
               "referrals": [{"kind": "schuldhulp", "started": false, "detail": "RCMARK-intake booked"}]}),
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(env.sql("SELECT COUNT(*) FROM referrals"), "1");
    assert_eq!(
        env.sql("SELECT COUNT(*) FROM referrals WHERE CAST(sealed_details AS TEXT) LIKE '%schuldhulp%' OR CAST(sealed_details AS TEXT) LIKE '%RCMARK%'"),
        "0",
        "sealed"
    );
    assert_eq!(
        env.sql(&format!(
            "SELECT subject FROM audit WHERE action = 'family.update.referral' AND family_ref = '{f}'"
        )),
        c0
    );
    // The family update that follows it up is kept after it.
    update_ok(
        &env,
        "2027-01-03T10:00:00+01:00",
        f,
        &json!({"referrals": [{"kind": "schuldhulp", "started": true}]}),
    );
    let v = show(&env, "2027-01-03T11:00:00+01:00", f);
    let r = v["referrals"].as_array().unwrap();
    assert_eq!(r.len(), 2, "{v}");
    assert_eq!(r[0]["detail"], "RCMARK-intake booked");
    assert_eq!(r[0]["started"], false);
    assert_eq!(r[1]["started"], true);
}

#[test]
fn a_referral_is_recorded_sealed_with_whether_it_started() {
    let env = TestEnv::new();
    let fam = env.enrol(
        ENROL_AT,
        &family_body(AMSTERDAM, "standard", "2026-12-01", "RFMARK"),
    );
    let f = fam["family"].as_str().unwrap();
    let before = env.sql("SELECT COUNT(*) FROM referrals");
    let o = update(
        &env,
        "2026-12-03T10:00:00+01:00",
        f,
        &json!({"referrals": [{"kind": "loan_shark", "started": false}]}),
    );
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("referrals[0].kind"));
    assert_eq!(env.sql("SELECT COUNT(*) FROM referrals"), before);
    update_ok(
        &env,
        "2026-12-03T10:00:00+01:00",
        f,
        &json!({"referrals": [{"kind": "schuldhulp", "started": false, "detail": "RFMARK-intake booked"}]}),
    );
    update_ok(
        &env,
        "2027-01-03T10:00:00+01:00",
        f,
        &json!({"referrals": [{"kind": "schuldhulp", "started": true}]}),
    );
    assert_eq!(
        env.sql("SELECT COUNT(*) FROM referrals WHERE CAST(sealed_details AS TEXT) LIKE '%schuldhulp%' OR CAST(sealed_details AS TEXT) LIKE '%RFMARK%'"),
        "0"
    );
    let v = show(&env, "2027-01-03T11:00:00+01:00", f);
    let r = v["referrals"].as_array().unwrap();
    assert_eq!(r.len(), 2, "the history is kept");
    assert_eq!(r[0]["detail"], "RFMARK-intake booked");
    assert_eq!(r[1]["kind"], "schuldhulp");
    assert_eq!(r[1]["started"], true);
    assert_eq!(
        env.sql(&format!(
            "SELECT COUNT(*) FROM audit WHERE action = 'family.update.referral' AND family_ref = '{f}'"
        )),
        "2"
    );
}

#[test]
fn the_api_patches_the_record_for_the_responsible_team_only() {
    use crate::support::daemon::Daemon;
    use crate::support::http;
    use std::time::Duration;
    const SERVE_AT: &str = "2026-12-20T10:00:00+01:00";
    let env = TestEnv::new();
    let fam = env.enrol(
        ENROL_AT,
        &family_body(AMSTERDAM, "standard", "2026-12-01", "APIMARK"),
    );
    let f = fam["family"].as_str().unwrap();
    let token = |muni: &str| {
        env.json(&["token", "create", "--at", SERVE_AT, "--municipality", muni])["token"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let (ams, rdam) = (token(AMSTERDAM), token(ROTTERDAM));
    let mut d = Daemon::spawn(&env, "serve", &["--at", SERVE_AT, "serve"], None);
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
    let patch = |t: &str, body: &Value| {
        http::request(
            addr,
            "PATCH",
            &format!("/v1/families/{f}"),
            Some(t),
            Some(("application/json", body.to_string().as_bytes())),
        )
    };
    let newborn = json!({"add_members": [{"role": "child", "name": "APIMARK-baby", "birth_date": "2026-12-19"}]});
    let members = || env.sql("SELECT COUNT(*) FROM members");
    // Another team's token: not found, nothing changed.
    let r = patch(&rdam, &newborn);
    assert_eq!(r.status, 404, "{}", r.text());
    assert_eq!(members(), "3");
    // Bad input: the field is named, nothing changed.
    let r = patch(
        &ams,
        &json!({"add_members": [{"role": "neighbour", "name": "X"}]}),
    );
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("add_members[0].role"), "{}", r.text());
    assert_eq!(members(), "3");
    // The responsible team.
    let r = patch(&ams, &newborn);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["added"][0]["role"], "child");
    assert_eq!(members(), "4");
    assert!(
        !r.text().contains("APIMARK"),
        "personal data echoed: {}",
        r.text()
    );
    d.terminate();
}

#[test]
fn the_ex_partner_is_never_in_an_export() {
    let env = crate::export::export_env();
    let mut partners = Vec::new();
    for i in 0..8 {
        let marker = format!("EXPX{i}");
        let fam = env.enrol(
            "2025-02-02T10:00:00+01:00",
            &json!({
                "episode": {"kind": "shelter_exit", "date": "2025-02-01"},
                "municipality": AMSTERDAM,
                "plan": "standard",
                "case_director": {"name": format!("{marker}-director"), "email": "director@team.example.org"},
                "members": [
                    {"role": "adult", "name": format!("{marker}-adult"), "birth_date": "1990-04-02"},
                    {"role": "child", "name": format!("{marker}-girl"), "birth_date": "2020-01-01", "sex": "f"}
                ]
            }),
        );
        let f = fam["family"].as_str().unwrap();
        let out = update_ok(
            &env,
            "2025-02-03T10:00:00+01:00",
            f,
            &json!({"add_members": [{"role": "ex_partner", "name": format!("{marker}-ex"),
                "birth_date": "1985-05-05", "sex": "m",
                "measure": {"kind": "contactverbod", "ends_on": "2025-08-01"}}]}),
        );
        partners.push(out["added"][0]["ref"].as_str().unwrap().to_string());
        let checkin = fam["checkins"][0]["id"].as_str().unwrap();
        let girl = children(&fam)[0].clone();
        let o = env.record(
            "2025-02-16T10:00:00+01:00",
            &json!({"checkin": checkin, "at": "2025-02-15T10:00:00+01:00",
                "outcome": "reached", "mode": "phone",
                "children": [{"member": girl, "observations": {"wellbeing": 7}}]}),
        );
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let dir = env.path("export-out");
    let o = env.run(
        &[
            "--at",
            "2027-03-01T12:00:00+01:00",
            "export",
            "--out",
            dir.to_str().unwrap(),
        ],
        None,
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mut text = String::new();
    for e in std::fs::read_dir(&dir).unwrap() {
        text.push_str(&String::from_utf8_lossy(&bytes_of(&e.unwrap().path())));
    }
    let csv = std::fs::read_to_string(dir.join("followup.csv")).unwrap();
    // One row per child and check-in: 8 girls, the ex-partners are no rows.
    let children_out: std::collections::BTreeSet<&str> = csv
        .lines()
        .skip(1)
        .filter_map(|l| l.split(',').next())
        .collect();
    assert_eq!(children_out.len(), 8, "{csv}");
    assert!(!text.contains("EXPX"), "a name in the export");
    assert!(!text.contains("ex_partner"), "the role in the export");
    assert!(!text.contains("contactverbod"), "the measure in the export");
    for x in &partners {
        assert!(
            !text.contains(x.as_str()),
            "an ex-partner reference in the export"
        );
    }
}
