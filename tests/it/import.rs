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

/// One value per row of an `env.sql` answer.
fn rows(text: &str) -> Vec<String> {
    text.lines().map(str::to_string).collect()
}

#[test]
fn a_batch_with_rejected_lines_between_enrols_every_valid_line_whole() {
    let env = TestEnv::new();
    let mut bad_plan = four_member_family(AMSTERDAM, "IMPREJECTED");
    bad_plan["plan"] = "no-such-plan".into();
    let mut bad_date = four_member_family(ROTTERDAM, "IMPREJECTED");
    bad_date["episode"]["date"] = "2030-01-01".into();
    let lines = [
        bad_plan.to_string(),
        four_member_family(AMSTERDAM, "IMPA").to_string(),
        bad_date.to_string(),
        four_member_family(ROTTERDAM, "IMPB").to_string(),
        "not json".to_string(),
        four_member_family(AMSTERDAM, "IMPC").to_string(),
        bad_plan.to_string(),
    ];
    // The import is the first write: its batch also makes the audit key.
    let out = env.run(
        &["--at", AT, "--json", "family", "import", "--file", "-"],
        Some(lines.join("\n").as_bytes()),
    );
    assert_eq!(out.status.code(), Some(65), "some lines were rejected");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let enrolled = report["enrolled"].as_array().unwrap();
    let lines_enrolled: Vec<u64> = enrolled
        .iter()
        .map(|l| l["line"].as_u64().unwrap())
        .collect();
    assert_eq!(lines_enrolled, [2, 4, 6]);
    let rejected: Vec<u64> = report["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["line"].as_u64().unwrap())
        .collect();
    assert_eq!(rejected, [1, 3, 5, 7]);
    let families: Vec<String> = enrolled
        .iter()
        .map(|l| l["family"].as_str().unwrap().to_string())
        .collect();

    // A family enrolled alone afterwards takes the same path, as a batch of one.
    let single = env.enrol(AT, &four_member_family(AMSTERDAM, "IMPSINGLE"));
    let slots = single["checkins"].as_array().unwrap().len();
    assert!(slots > 0);

    for (f, marker) in families.iter().zip(["IMPA", "IMPB", "IMPC"]) {
        let show = env.json(&["family", "show", f]);
        let members = show["members"].as_array().unwrap();
        assert_eq!(members.len(), 4, "{show}");
        // Sealed under this family's reference: the details open.
        assert!(
            members[0]["name"].as_str().unwrap().starts_with(marker),
            "{show}"
        );
        assert_eq!(show["checkins"].as_array().unwrap().len(), slots, "{show}");
        assert_eq!(
            env.sql(&format!(
                "SELECT COUNT(*) FROM outbox WHERE key = 'new_family:{f}' AND family_ref = '{f}'"
            )),
            "1"
        );
        assert_eq!(
            env.sql(&format!(
                "SELECT COUNT(*) FROM audit WHERE action = 'family.enrol' AND family_ref = '{f}'"
            )),
            "1"
        );
        assert_eq!(
            env.sql(&format!(
                "SELECT COUNT(*) FROM responsibilities r JOIN families f ON f.id = r.family_id \
                 WHERE f.ref = '{f}' AND r.valid_to IS NULL"
            )),
            "1"
        );
    }
    // The batch's entries follow the lines' order, then the single enrolment's.
    let mut expected = families.clone();
    expected.push(single["family"].as_str().unwrap().to_string());
    assert_eq!(
        rows(&env.sql("SELECT family_ref FROM audit WHERE action = 'family.enrol' ORDER BY seq")),
        expected
    );
    assert_eq!(env.sql("SELECT COUNT(*) FROM families"), "4");
    assert_eq!(env.sql("SELECT COUNT(*) FROM members"), "16");
    assert_eq!(
        env.sql("SELECT COUNT(*) FROM checkins"),
        (4 * slots).to_string()
    );
    assert_eq!(
        env.sql("SELECT COUNT(*) FROM outbox WHERE kind = 'new_family'"),
        "4"
    );
    let stored = env.sql("SELECT COUNT(*) FROM families WHERE sealed_details IS NULL");
    assert_eq!(stored, "0");
    env.ok(&["audit", "verify"]);
    assert!(!env.stored_bytes().is_empty());
}

fn at() -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339(AT)
        .unwrap()
        .with_timezone(&chrono::Utc)
}

/// References from `script`, then random ones.
fn scripted(script: &[&str]) -> impl FnMut() -> String + Send + use<> {
    let mut script: std::collections::VecDeque<String> =
        script.iter().map(|s| s.to_string()).collect();
    move || {
        script
            .pop_front()
            .unwrap_or_else(nazorg::domain::reference::family)
    }
}

#[tokio::test]
async fn a_reference_already_taken_is_drawn_again_and_the_family_sealed_under_the_new_one() {
    let env = TestEnv::new();
    let taken = env.enrol(AT, &four_member_family(AMSTERDAM, "IMPTAKEN"))["family"]
        .as_str()
        .unwrap()
        .to_string();
    let app = env
        .app(std::sync::Arc::new(nazorg::clock::ManualClock::new(at())))
        .await;
    // The first family draws the stored family's reference; the third the second's (a clash
    // inside the batch), then a fresh one; the first, retried, draws the stored one again,
    // then a fresh one.
    let mut references = scripted(&[
        &taken,
        "F-22223333",
        "F-22223333",
        "F-44445555",
        &taken,
        "F-66667777",
    ]);
    let input: String = ["IMPFIRST", "IMPSECOND", "IMPTHIRD"]
        .iter()
        .map(|m| format!("{}\n", four_member_family(ROTTERDAM, m)))
        .collect();
    let out =
        nazorg::service::import::import_with(&app, std::io::Cursor::new(input), &mut references)
            .await
            .unwrap();
    let refs: Vec<&str> = out.enrolled.iter().map(|l| l.family.as_str()).collect();
    assert_eq!(refs, ["F-66667777", "F-22223333", "F-44445555"]);
    assert!(out.rejected.is_empty());
    app.store.close().await;

    for (f, marker) in refs.iter().zip(["IMPFIRST", "IMPSECOND", "IMPTHIRD"]) {
        let show = env.json(&["family", "show", f]);
        assert_eq!(show["municipality"], ROTTERDAM, "{show}");
        let members = show["members"].as_array().unwrap();
        assert_eq!(members.len(), 4, "{show}");
        assert!(
            members[0]["name"].as_str().unwrap().starts_with(marker),
            "{show}"
        );
        assert_eq!(
            env.sql(&format!(
                "SELECT COUNT(*) FROM outbox WHERE key = 'new_family:{f}'"
            )),
            "1"
        );
    }
    // The stored family is untouched; nothing of the retried one names its reference.
    let show = env.json(&["family", "show", &taken]);
    assert_eq!(show["municipality"], AMSTERDAM, "{show}");
    assert_eq!(show["members"].as_array().unwrap().len(), 4);
    assert!(
        show["members"][0]["name"]
            .as_str()
            .unwrap()
            .starts_with("IMPTAKEN")
    );
    assert_eq!(
        env.sql(&format!(
            "SELECT COUNT(*) FROM audit WHERE family_ref = '{taken}' AND action = 'family.enrol'"
        )),
        "1"
    );
    assert_eq!(
        env.sql(&format!(
            "SELECT COUNT(*) FROM outbox WHERE family_ref = '{taken}' OR body LIKE '%{taken}%'"
        )),
        "1"
    );
    assert_eq!(env.sql("SELECT COUNT(*) FROM families"), "4");
    assert_eq!(env.sql("SELECT COUNT(*) FROM members"), "16");
    env.ok(&["audit", "verify"]);
}

#[tokio::test]
async fn a_reference_that_stays_taken_stops_the_import_with_nothing_of_the_batch_written() {
    let env = TestEnv::new();
    let taken = env.enrol(AT, &four_member_family(AMSTERDAM, "IMPTAKEN"))["family"]
        .as_str()
        .unwrap()
        .to_string();
    let before = env.counts();
    let app = env
        .app(std::sync::Arc::new(nazorg::clock::ManualClock::new(at())))
        .await;
    let again = taken.clone();
    let mut references = move || again.clone();
    // Every draw is the stored family's reference: the insert skips it, each retry draws it again.
    let input = format!("{}\n", four_member_family(ROTTERDAM, "IMPFIRST"));
    let err =
        nazorg::service::import::import_with(&app, std::io::Cursor::new(input), &mut references)
            .await
            .err()
            .unwrap();
    assert!(err.to_string().contains("free family reference"), "{err}");
    app.store.close().await;
    assert_eq!(env.counts(), before);
    env.ok(&["audit", "verify"]);
}

fn attachment(name: &str) -> nazorg::mail::Attachment {
    nazorg::mail::Attachment {
        filename: name.to_string(),
        content_type: "text/plain".to_string(),
        bytes: name.as_bytes().to_vec(),
    }
}

fn message<'a>(
    key: &'a str,
    to: &'a [String],
    attachments: &'a [nazorg::mail::Attachment],
) -> nazorg::store::outbox::NewMessage<'a> {
    nazorg::store::outbox::NewMessage {
        key,
        kind: "test",
        family_ref: None,
        recipients: to,
        cc: &[],
        subject: "subject",
        body: "body",
        attachments,
        now: 1,
    }
}

#[tokio::test]
async fn messages_of_one_key_in_one_batch_are_enqueued_once_with_their_attachments() {
    let env = TestEnv::new();
    let app = env
        .app(std::sync::Arc::new(nazorg::clock::ManualClock::new(at())))
        .await;
    let to = ["team@example.org".to_string()];
    let first = [attachment("first.txt")];
    let repeat = [attachment("repeat.txt")];
    let other = [attachment("other-a.txt"), attachment("other-b.txt")];
    let mut tx = app.store.write().await.unwrap();
    let fresh = nazorg::store::outbox::enqueue_many(&mut tx, &[message("test:stored", &to, &[])])
        .await
        .unwrap();
    assert_eq!(fresh, [true]);
    let fresh = nazorg::store::outbox::enqueue_many(
        &mut tx,
        &[
            message("test:a", &to, &first),
            message("test:stored", &to, &other),
            message("test:a", &to, &repeat),
            message("test:b", &to, &other),
        ],
    )
    .await
    .unwrap();
    assert_eq!(fresh, [true, false, false, true]);
    // More than one multi-row statement holds (SQLite's bound-parameter limit).
    let keys: Vec<String> = (0..4000).map(|i| format!("test:many:{i}")).collect();
    let many: Vec<_> = keys.iter().map(|k| message(k, &to, &[])).collect();
    let fresh = nazorg::store::outbox::enqueue_many(&mut tx, &many)
        .await
        .unwrap();
    assert!(fresh.len() == 4000 && fresh.iter().all(|f| *f));
    tx.commit().await.unwrap();
    app.store.close().await;
    assert_eq!(
        env.sql("SELECT COUNT(*) FROM outbox WHERE key LIKE 'test:many:%'"),
        "4000"
    );
    assert_eq!(env.sql("SELECT COUNT(*) FROM outbox"), "4003");
    assert_eq!(
        rows(&env.sql(
            "SELECT o.key || ' ' || a.filename FROM outbox_attachments a \
             JOIN outbox o ON o.id = a.outbox_id ORDER BY o.key, a.position"
        )),
        [
            "test:a first.txt",
            "test:b other-a.txt",
            "test:b other-b.txt"
        ]
    );
}
