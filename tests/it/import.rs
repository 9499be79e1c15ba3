//! `family import`: bulk enrolment from JSON Lines. Valid lines are enrolled whole, bad
//! lines are reported by number and field (never by content), and nothing of a rejected
//! line reaches the database.

use crate::support::env::*;
use serde_json::Value;

const AT: &str = "2026-12-02T10:00:00+01:00";

fn four_member_family(municipality: &str, marker: &str) -> Value {
    let mut f = family_body(municipality, "standard", "2026-12-01", marker);
    f["members"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({"role": "child", "name": format!("{marker}-child-three"), "birth_date": "2021-05-06", "sex": "f"}));
    f
}

#[test]
fn import_enrols_valid_lines_and_reports_the_rest_by_line_and_field() {
    let env = TestEnv::new();
    let mut bad_muni = four_member_family(AMSTERDAM, "IMPREJECTED");
    bad_muni["municipality"] = "GM9999".into();
    let lines = [
        four_member_family(AMSTERDAM, "IMPONE").to_string(),
        "{\"episode\": {\"kind\": \"shelter_exit\", \"date\": \"IMPBROKEN\"".to_string(),
        four_member_family(ROTTERDAM, "IMPTWO").to_string(),
        String::new(),
        bad_muni.to_string(),
        four_member_family(AMSTERDAM, "IMPTHREE").to_string(),
    ];
    let input = lines.join("\n");
    let out = env.run(
        &["--at", AT, "--json", "family", "import", "--file", "-"],
        Some(input.as_bytes()),
    );
    assert_eq!(out.status.code(), Some(65), "some lines were rejected");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let enrolled: Vec<u64> = report["enrolled"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["line"].as_u64().unwrap())
        .collect();
    assert_eq!(enrolled, [1, 3, 6]);
    let rejected = report["rejected"].as_array().unwrap();
    assert_eq!(rejected.len(), 2, "{report}");
    assert_eq!(rejected[0]["line"], 2);
    assert_eq!(rejected[0]["errors"][0]["field"], "episode.date");
    assert_eq!(rejected[1]["line"], 5);
    assert_eq!(rejected[1]["errors"][0]["field"], "municipality");
    // Nothing of a rejected line is echoed, nor stored.
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !all.contains("IMPREJECTED") && !all.contains("IMPBROKEN"),
        "{all}"
    );
    assert_eq!(env.sql("SELECT COUNT(*) FROM families"), "3");
    assert_eq!(env.sql("SELECT COUNT(*) FROM members"), "12");
    // Each imported family is whole: members, its responsibility, its plan, its audit entry.
    for l in report["enrolled"].as_array().unwrap() {
        let f = l["family"].as_str().unwrap();
        let show = env.json(&["family", "show", f]);
        assert_eq!(show["members"].as_array().unwrap().len(), 4, "{show}");
        assert!(!show["checkins"].as_array().unwrap().is_empty());
    }
    assert_eq!(
        env.sql("SELECT COUNT(*) FROM audit WHERE action = 'family.enrol'"),
        "3"
    );
    assert_eq!(
        env.sql("SELECT COUNT(*) FROM responsibilities WHERE valid_to IS NULL"),
        "3"
    );
}

#[test]
fn import_of_only_valid_lines_succeeds_and_reads_a_file() {
    let env = TestEnv::new();
    let path = env.path("families.jsonl");
    let text: String = (0..600)
        .map(|i| format!("{}\n", four_member_family(AMSTERDAM, &format!("BULK{i}"))))
        .collect();
    std::fs::write(&path, text).unwrap();
    let out = env.ok(&[
        "--at",
        AT,
        "family",
        "import",
        "--file",
        path.to_str().unwrap(),
    ]);
    assert_eq!(out.trim(), "enrolled 600 families; rejected 0 lines");
    // Three batches of at most 250: every family and member is there.
    assert_eq!(env.sql("SELECT COUNT(*) FROM families"), "600");
    assert_eq!(env.sql("SELECT COUNT(*) FROM members"), "2400");
    env.ok(&["audit", "verify"]);
}

#[test]
fn import_of_a_missing_file_says_so_and_changes_nothing() {
    let env = TestEnv::new();
    let before = env.counts();
    let out = env.run(
        &["family", "import", "--file", "/nonexistent/families.jsonl"],
        None,
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot open"));
    assert_eq!(env.counts(), before);
}
