//! Closing on purpose (issue 11 item 6): early closure is refused while a red flag is open
//! unless a coordinator approves, the coordinator is notified, every closure records a
//! short evaluation, and the evaluation's codes reach research exports.

use crate::support::env::*;
use serde_json::{Value, json};
use std::path::Path;

const ENROL_AT: &str = "2026-12-02T10:00:00+01:00";
const CLOSE_AT: &str = "2026-12-20T10:00:00+01:00";

fn children(enrolled: &Value) -> Vec<String> {
    enrolled["members"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"] == "child")
        .map(|m| m["ref"].as_str().unwrap().to_string())
        .collect()
}

/// Records the first check-in with `new_incident` for every child (a red flag each).
fn record_incident(env: &TestEnv, enrolled: &Value, incident: bool) {
    let checkin = enrolled["checkins"][0]["id"].as_str().unwrap();
    let kids: Vec<Value> = children(enrolled)
        .iter()
        .map(|c| json!({"member": c, "observations": {"new_incident": incident, "wellbeing": 6}}))
        .collect();
    let body = json!({
        "checkin": checkin, "at": "2026-12-16T10:00:00+01:00", "outcome": "reached",
        "mode": "home_visit", "children": kids,
    });
    let o = env.record("2026-12-16T11:00:00+01:00", &body);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

fn evaluations(env: &TestEnv) -> String {
    env.sql("SELECT COUNT(*) FROM evaluations")
}

#[test]
fn early_closure_is_refused_with_a_red_flag_then_approved_and_the_coordinator_told() {
    let env = TestEnv::new();
    let fam = env.enrol(
        ENROL_AT,
        &family_body(AMSTERDAM, "standard", "2026-12-01", "CLOSEMARK"),
    );
    let f = fam["family"].as_str().unwrap();
    record_incident(&env, &fam, true);
    assert_eq!(
        env.sql("SELECT COUNT(*) FROM flags WHERE severity = 'red' AND status = 'open'"),
        "2"
    );
    let view = env.path("view.txt");
    std::fs::write(&view, "CLOSEMARK-view: we feel safer now").unwrap();
    let close = |extra: &[&str]| {
        let mut args = vec![
            "--at",
            CLOSE_AT,
            "--json",
            "family",
            "close",
            f,
            "--reason",
            "family_declined_aftercare",
            "--safety-improved",
            "partly",
            "--professionals",
            "3",
            "--family-view-file",
            view.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        env.run(&args, None)
    };
    let before = env.counts();
    let o = close(&[]);
    assert_eq!(o.status.code(), Some(65), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("red flag") && err.contains("--approved-by"),
        "{err}"
    );
    assert!(!err.contains("CLOSEMARK"), "{err}");
    assert_eq!(env.counts(), before);
    assert_eq!(evaluations(&env), "0");

    let o = close(&["--approved-by", "CLOSEMARK-coordinator Jansen"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(out["status"], "closed_early");
    assert_eq!(out["approved"], true);
    assert_eq!(out["evaluated"], true);
    assert_eq!(out["coordinator_notified"], COORD_AMSTERDAM);

    // The notice: exactly the coordinator of the responsible municipality, a fixed subject.
    let notices: Vec<Value> = env
        .outbox()
        .into_iter()
        .filter(|m| m["kind"] == "closure_notice")
        .collect();
    assert_eq!(notices.len(), 1, "{notices:?}");
    assert_eq!(notices[0]["recipients"], json!([COORD_AMSTERDAM]));
    assert_eq!(notices[0]["cc"], json!([]));
    assert_eq!(
        notices[0]["subject"],
        format!("[Nazorg] Aftercare of family {f} closed early")
    );
    let body = env.sql("SELECT body FROM outbox WHERE kind = 'closure_notice'");
    assert!(body.contains(f) && body.contains("the family declined aftercare"));
    assert!(
        !body.contains("family_declined_aftercare"),
        "the code, not words: {body}"
    );
    assert!(body.contains("a coordinator approved"), "{body}");
    assert!(
        !body.contains("CLOSEMARK") && !body.contains("Jansen"),
        "{body}"
    );

    // The approval, the evaluation and the view are kept; the personal parts sealed.
    assert_eq!(
        env.sql("SELECT safety_improved || '/' || professionals FROM evaluations"),
        "partly/3"
    );
    assert_eq!(
        env.sql("SELECT CAST(sealed_close_approval IS NOT NULL AS INTEGER) FROM families"),
        "1"
    );
    let db = env.stored_bytes();
    let text = String::from_utf8_lossy(&db);
    assert!(!text.contains("CLOSEMARK") && !text.contains("Jansen"));
    // The operator reads them back from the record.
    let shown = env.json(&["family", "show", f]);
    assert_eq!(shown["close_approved_by"], "CLOSEMARK-coordinator Jansen");
    assert_eq!(shown["evaluation"]["professionals"], 3);
    assert_eq!(
        shown["evaluation"]["family_view"],
        "CLOSEMARK-view: we feel safer now"
    );
    // Closing twice is a conflict and sends nothing more.
    let o = close(&["--approved-by", "Jansen"]);
    assert_eq!(o.status.code(), Some(65));
    assert_eq!(
        env.sql("SELECT COUNT(*) FROM outbox WHERE kind = 'closure_notice'"),
        "1"
    );
    // Erasure takes the evaluation and the sealed approval with it.
    let mut erase = vec!["family", "erase", f, "--reason", "data_subject_request"];
    if String::from_utf8_lossy(&env.run(&["family", "erase", "--help"], None).stdout)
        .contains("--yes")
    {
        erase.push("--yes");
    }
    env.ok(&erase);
    assert_eq!(evaluations(&env), "0");
    assert_eq!(
        env.sql("SELECT COUNT(*) FROM families WHERE sealed_close_approval IS NOT NULL"),
        "0"
    );
}

#[test]
fn early_closure_without_a_red_flag_needs_no_approval_but_notifies() {
    let env = TestEnv::new();
    let fam = env.enrol(
        ENROL_AT,
        &family_body(ROTTERDAM, "standard", "2026-12-01", "CALM"),
    );
    let f = fam["family"].as_str().unwrap();
    record_incident(&env, &fam, false);
    let out = env.json(&[
        "--at",
        CLOSE_AT,
        "family",
        "close",
        f,
        "--reason",
        "transferred_to_specialist_care",
        "--safety-improved",
        "yes",
        "--professionals",
        "0",
    ]);
    assert_eq!(out["approved"], false);
    let m = env.outbox();
    let notice = m.iter().find(|m| m["kind"] == "closure_notice").unwrap();
    assert_eq!(notice["recipients"], json!([COORD_ROTTERDAM]));
    let body = env.sql("SELECT body FROM outbox WHERE kind = 'closure_notice'");
    assert!(!body.contains("approved"), "{body}");
}

#[test]
fn closing_without_a_valid_evaluation_names_the_field_and_changes_nothing() {
    let env = TestEnv::new();
    let fam = env.enrol(
        ENROL_AT,
        &family_body(AMSTERDAM, "standard", "2026-12-01", "BADEVAL"),
    );
    let f = fam["family"].as_str().unwrap();
    let before = env.counts();
    for (extra, field) in [
        (vec!["--professionals", "2"], "safety_improved: required"),
        (
            vec!["--safety-improved", "maybe", "--professionals", "2"],
            "safety_improved: expected one of: yes, partly, no",
        ),
        (vec!["--safety-improved", "yes"], "professionals: required"),
        (
            vec!["--safety-improved", "yes", "--professionals", "51"],
            "professionals: expected a whole number from 0 to 50",
        ),
        (
            vec!["--safety-improved", "yes", "--professionals", "many"],
            "professionals: expected a whole number from 0 to 50",
        ),
        (
            vec![
                "--safety-improved",
                "yes",
                "--professionals",
                "2",
                "--approved-by",
                " ",
            ],
            "approved_by:",
        ),
    ] {
        let mut args = vec![
            "--at",
            CLOSE_AT,
            "family",
            "close",
            f,
            "--reason",
            "family_moved_abroad",
        ];
        args.extend_from_slice(&extra);
        let o = env.run(&args, None);
        assert_eq!(o.status.code(), Some(65), "{extra:?}");
        assert!(stderr(&o).contains(field), "{extra:?}: {}", stderr(&o));
        assert_eq!(env.counts(), before, "{extra:?}");
        assert_eq!(evaluations(&env), "0");
    }
    // A family enrolled in error has nothing to evaluate.
    env.ok(&[
        "--at",
        CLOSE_AT,
        "family",
        "close",
        f,
        "--reason",
        "enrolled_in_error",
    ]);
    assert_eq!(evaluations(&env), "0");
}

#[test]
fn an_ended_plan_is_evaluated_afterwards_with_family_evaluate() {
    let env = TestEnv::new();
    let fam = env.enrol(
        ENROL_AT,
        &family_body(AMSTERDAM, "daily3", "2026-12-02", "ENDED"),
    );
    let f = fam["family"].as_str().unwrap().to_string();
    let eval = |body: &str| {
        env.run(
            &["--at", CLOSE_AT, "family", "evaluate", &f, "--file", "-"],
            Some(body.as_bytes()),
        )
    };
    // Still running: nothing to evaluate yet.
    let o = eval(r#"{"safety_improved": "yes", "professionals": 1}"#);
    assert_eq!(o.status.code(), Some(65));
    assert!(
        stderr(&o).contains("when the plan has ended"),
        "{}",
        stderr(&o)
    );
    for c in fam["checkins"].as_array().unwrap() {
        let body = json!({"checkin": c["id"], "at": "2026-12-06T10:00:00+01:00",
                          "outcome": "reached", "mode": "phone"});
        let o = env.record("2026-12-06T11:00:00+01:00", &body);
        assert!(o.status.success(), "{}", stderr(&o));
    }
    assert_eq!(env.sql("SELECT status FROM families"), "completed");
    let before = env.counts();
    for (body, field) in [
        (r#"{"professionals": 1}"#, "safety_improved: required"),
        (
            r#"{"safety_improved": "better", "professionals": 1}"#,
            "safety_improved: expected one of",
        ),
        (
            r#"{"safety_improved": "yes", "professionals": -1}"#,
            "professionals: expected a whole number from 0 to 50",
        ),
        (
            r#"{"safety_improved": "yes", "professionals": 1, "mood": "ok"}"#,
            "unknown field",
        ),
    ] {
        let o = eval(body);
        assert_eq!(o.status.code(), Some(65), "{body}");
        assert!(stderr(&o).contains(field), "{body}: {}", stderr(&o));
        assert_eq!(env.counts(), before);
        assert_eq!(evaluations(&env), "0");
    }
    let o = eval(r#"{"safety_improved": "no", "professionals": 7, "family_view": "ENDED-view"}"#);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        env.sql("SELECT safety_improved || '/' || professionals || '/' || CAST(sealed_view IS NOT NULL AS INTEGER) FROM evaluations"),
        "no/7/1"
    );
    let o = eval(r#"{"safety_improved": "yes", "professionals": 1}"#);
    assert_eq!(o.status.code(), Some(65));
    assert!(stderr(&o).contains("already"), "{}", stderr(&o));
    assert!(!String::from_utf8_lossy(&env.stored_bytes()).contains("ENDED-view"));
}

fn one_girl(marker: &str) -> Value {
    json!({
        "episode": {"kind": "shelter_exit", "date": "2025-02-01"},
        "municipality": AMSTERDAM,
        "plan": "standard",
        "case_director": {"name": format!("{marker}-director"), "email": "director@team.example.org"},
        "members": [
            {"role": "adult", "name": format!("{marker}-adult"), "birth_date": "1990-04-02"},
            {"role": "child", "name": format!("{marker}-girl"), "birth_date": "2020-01-01", "sex": "f"}
        ]
    })
}

fn csv(dir: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let text = std::fs::read_to_string(dir.join("followup.csv")).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap().split(',').map(String::from).collect();
    let rows = lines
        .map(|l| l.split(',').map(String::from).collect())
        .collect();
    (header, rows)
}

#[test]
fn evaluation_codes_reach_the_export_csv_and_codebook() {
    let env = crate::export::export_env();
    let mut closed = Vec::new();
    for i in 0..8 {
        let fam = env.enrol("2025-02-02T10:00:00+01:00", &one_girl(&format!("EVX{i}")));
        let child = children(&fam)[0].clone();
        let checkin = fam["checkins"][0]["id"].as_str().unwrap().to_string();
        let body = json!({"checkin": checkin, "at": "2025-02-15T10:00:00+01:00",
            "outcome": "reached", "mode": "phone",
            "children": [{"member": child, "observations": {"wellbeing": 7}}]});
        let o = env.record("2025-02-16T10:00:00+01:00", &body);
        assert!(o.status.success(), "{}", stderr(&o));
        if i < 4 {
            closed.push(fam["family"].as_str().unwrap().to_string());
        }
    }
    for f in &closed {
        env.ok(&[
            "--at",
            "2025-02-20T10:00:00+01:00",
            "family",
            "close",
            f,
            "--reason",
            "family_declined_aftercare",
            "--safety-improved",
            "partly",
            "--professionals",
            "2",
        ]);
    }
    // One family enrolled in error: never exported.
    let wrong = env.enrol("2025-02-02T10:00:00+01:00", &one_girl("EVXWRONG"));
    env.ok(&[
        "--at",
        "2025-02-20T10:00:00+01:00",
        "family",
        "close",
        wrong["family"].as_str().unwrap(),
        "--reason",
        "enrolled_in_error",
    ]);
    let out = env.path("evx");
    env.ok(&[
        "--at",
        "2027-03-01T12:00:00+01:00",
        "export",
        "--out",
        out.to_str().unwrap(),
    ]);
    let (header, rows) = csv(&out);
    let col = |n: &str| header.iter().position(|h| h == n).unwrap();
    let closed_rows: Vec<&Vec<String>> = rows
        .iter()
        .filter(|r| r[col("plan_status")] == "closed_early:family_declined_aftercare")
        .collect();
    assert_eq!(
        closed_rows.len(),
        4,
        "one recorded check-in per closed family"
    );
    for r in &closed_rows {
        assert_eq!(r[col("safety_improved")], "partly");
        assert_eq!(r[col("professionals")], "1-2");
        assert_eq!(r[col("plan")], "standard");
    }
    assert!(
        rows.iter()
            .filter(|r| r[col("plan_status")] == "running")
            .all(|r| r[col("safety_improved")].is_empty())
    );
    let m: Value =
        serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(
        m["counts"]["children_in"], 8,
        "enrolled_in_error is not read"
    );
    let cb: Value =
        serde_json::from_slice(&std::fs::read(out.join("codebook.json")).unwrap()).unwrap();
    let entry = |name: &str| {
        cb["columns"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .unwrap()
            .clone()
    };
    assert_eq!(
        entry("safety_improved")["values"],
        json!(["", "yes", "partly", "no"])
    );
    assert_eq!(
        entry("professionals")["values"],
        json!(["", "0", "1-2", "3-5", "6+"])
    );
    let md = std::fs::read_to_string(out.join("codebook.md")).unwrap();
    assert!(md.contains("`safety_improved`") && md.contains("`1-2`"));
    assert!(
        !std::fs::read_to_string(out.join("followup.csv"))
            .unwrap()
            .contains("enrolled_in_error")
    );
}
