//! Both shipped configs work end to end (issue 11 item 8): enrol, record observations,
//! export. `check-config` refuses an export codebook that contradicts its indicators.

use crate::support::env::*;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::path::Path;

const EXAMPLE: &str = include_str!("../../config/nazorg.example.toml");
const PRODUCTION: &str = include_str!("../../config/nazorg.production.toml");

fn replace(text: &str, from: &str, to: &str) -> String {
    assert!(text.contains(from), "shipped config has no {from:?}");
    text.replace(from, to)
}

/// The example as shipped: it keeps everything under `../var` next to its folder, so in
/// `TMP/config/nazorg.toml` it lives in `TMP/var`. Only the API port is moved off 8080.
fn example_env() -> TestEnv {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("config")).unwrap();
    let config_path = dir.path().join("config/nazorg.toml");
    let text = replace(
        EXAMPLE,
        "listen = \"127.0.0.1:8080\"",
        "listen = \"127.0.0.1:0\"",
    );
    std::fs::write(&config_path, text).unwrap();
    let env = TestEnv { dir, config_path };
    env.ok(&["migrate"]);
    env
}

/// The production template with its absolute paths pointed into the test's folder and
/// mail written to files; the identity is made with `keygen` (it never creates one).
fn production_env() -> TestEnv {
    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("nazorg.toml");
    let mut text = PRODUCTION.to_string();
    for (from, to) in [
        ("\"/var/lib/nazorg\"", "\"var\""),
        (
            "sqlite:///var/lib/nazorg/nazorg.db",
            "sqlite://var/nazorg.db",
        ),
        (
            "/run/credentials/nazorg.service/nazorg.key",
            "var/nazorg.key",
        ),
        (
            "transport = \"smtp\"",
            "transport = \"file\"\ndir = \"var/outbox\"",
        ),
        ("listen = \"127.0.0.1:8080\"", "listen = \"127.0.0.1:0\""),
    ] {
        text = replace(&text, from, to);
    }
    std::fs::write(&config_path, text).unwrap();
    std::fs::create_dir(dir.path().join("var")).unwrap();
    let env = TestEnv { dir, config_path };
    let key = env.path("var/nazorg.key");
    env.ok(&["keygen", "--out", key.to_str().unwrap()]);
    env.ok(&["migrate"]);
    env
}

fn family(marker: &str) -> Value {
    json!({
        "episode": {"kind": "shelter_exit", "date": "2027-01-04"},
        "municipality": AMSTERDAM,
        "plan": "standard",
        "case_director": {"name": format!("{marker}-director"), "email": "director@team.example.org"},
        "members": [
            {"role": "adult", "name": format!("{marker}-adult"), "birth_date": "1990-04-02"},
            {"role": "child", "name": format!("{marker}-child"), "birth_date": "2019-02-03", "sex": "f"}
        ]
    })
}

/// Enrols 12 alike families (k = 10 in both configs), records observations at the first
/// check-in of each (a fractional scale value among them), exports, and returns the
/// export's folder.
fn enrol_record_export(env: &TestEnv) -> std::path::PathBuf {
    env.ok(&["check-config"]);
    for i in 0..12 {
        let out = env.enrol(
            "2027-01-05T10:00:00+01:00",
            &family(&format!("SHIPPED{i:02}")),
        );
        let checkin = out["checkins"][0]["id"].as_str().unwrap().to_string();
        let due = out["checkins"][0]["due"].as_str().unwrap().to_string();
        let child = out["members"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["role"] == "child")
            .unwrap()["ref"]
            .as_str()
            .unwrap()
            .to_string();
        let wellbeing = if i % 2 == 0 { json!(7.6) } else { json!(4) };
        let school = if i % 3 == 0 { "n/a" } else { "reduced" };
        let body = json!({
            "checkin": checkin, "at": due, "outcome": "reached", "mode": "home_visit",
            "children": [{"member": child, "observations": {
                "wellbeing": wellbeing, "school_attendance": school, "new_incident": false
            }}],
        });
        let o = env.record("2027-06-01T10:00:00+02:00", &body);
        assert!(
            o.status.success(),
            "record failed: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    let out = env.path("export1");
    let o = env.run(
        &[
            "--at",
            "2027-06-01T12:00:00+02:00",
            "export",
            "--out",
            out.to_str().unwrap(),
        ],
        None,
    );
    assert!(
        o.status.success(),
        "export failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    out
}

fn column(dir: &Path, name: &str) -> BTreeSet<String> {
    let text = std::fs::read_to_string(dir.join("followup.csv")).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let c = header.iter().position(|h| *h == name).unwrap();
    lines
        .map(|l| l.split(',').nth(c).unwrap().to_string())
        .collect()
}

fn assert_exported(dir: &Path) {
    let m: Value =
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(m["counts"]["children_out"], 12, "{m:#}");
    let wellbeing = column(dir, "wellbeing");
    assert!(
        wellbeing.contains("8") && wellbeing.contains("4"),
        "{wellbeing:?}"
    );
    let school = column(dir, "school_attendance");
    assert!(
        school.contains("n/a") && school.contains("reduced"),
        "{school:?}"
    );
    let cb = std::fs::read_to_string(dir.join("codebook.md")).unwrap();
    assert!(cb.contains("`10`") && cb.contains("`absent`"), "{cb}");
}

#[test]
fn shipped_example_config_enrols_records_and_exports() {
    let env = example_env();
    let dir = enrol_record_export(&env);
    assert_exported(&dir);
    assert!(env.path("var/nazorg.db").exists());
}

#[test]
fn shipped_production_config_enrols_records_and_exports() {
    let env = production_env();
    let dir = enrol_record_export(&env);
    assert_exported(&dir);
}

#[test]
fn check_config_rejects_a_codebook_that_contradicts_its_indicator() {
    for (from, to, key, needle) in [
        (
            r#"wellbeing = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10"]"#,
            r#"wellbeing = ["good", "fair", "poor"]"#,
            "export.values.wellbeing",
            "not values of it: fair, good, poor",
        ),
        (
            r#"school_attendance = ["normal", "reduced", "absent", "n/a"]"#,
            r#"school_attendance = ["normal", "reduced"]"#,
            "export.values.school_attendance",
            "missing: absent, n/a",
        ),
        (
            r#"indicators = ["wellbeing", "school_attendance"]"#,
            r#"indicators = ["wellbeing", "school_attendance", "stressors"]
stressors_placeholder = 1"#,
            "export.values.stressors",
            "only child indicators can be columns",
        ),
    ] {
        let mut text = replace(EXAMPLE, from, to);
        if text.contains("stressors_placeholder") {
            text = text.replace("stressors_placeholder = 1\n", "").replace(
                "[export.values]\n",
                "[export.values]\nstressors = [\"debts\"]\n",
            );
        }
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("nazorg.toml");
        std::fs::write(&p, &text).unwrap();
        let env = TestEnv {
            dir,
            config_path: p,
        };
        let o = env.run(&["check-config"], None);
        assert_eq!(o.status.code(), Some(78), "{key}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(key) && err.contains(needle), "{key}: {err}");
    }
}
