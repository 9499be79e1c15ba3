//! Personal data sealed at rest: no plaintext on disk, in mail or logs; values bound to
//! their place; rotation, erasure, retention; interoperability with the `age` CLI.

use crate::support::env::*;
use serde_json::{Value, json};
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Output};

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn must(o: Output) -> Output {
    assert!(o.status.success(), "{}", stderr(&o));
    o
}

/// Runs `age -d -i identity` on the stored (current) KEK; returns the output.
fn age_decrypt_stored_kek(env: &TestEnv, identity: &std::path::Path) -> Output {
    let kek = env.path("kek.age");
    let _ = std::fs::remove_file(&kek);
    let hexed =
        env.sql("SELECT hex(wrapped) FROM keks WHERE retired_at IS NULL ORDER BY id DESC LIMIT 1");
    let bytes: Vec<u8> = (0..hexed.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hexed[i..i + 2], 16).unwrap())
        .collect();
    std::fs::write(&kek, bytes).unwrap();
    Command::new("age")
        .arg("-d")
        .arg("-i")
        .arg(identity)
        .arg(&kek)
        .output()
        .unwrap()
}

fn public_key_of(identity: &std::path::Path) -> String {
    let text = std::fs::read_to_string(identity).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("# public key: "))
        .unwrap()
        .trim()
        .to_string()
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Markers planted in every personal field of three families never appear in the database
/// files, the mail, or the logs, after enrolment, recording and months of sweeps.
#[test]
fn markers_never_reach_disk_mail_or_logs() {
    let env = TestEnv::new();
    let mut logs = Vec::new();
    let mut markers: Vec<String> = Vec::new();
    for i in 0..3 {
        let marker = format!("QQMARK{i}X");
        let mut body = family_body(AMSTERDAM, "standard", "2026-12-01", &marker);
        body["members"][0]["phone"] = json!(format!("+31 6 9{i}9{i}7{i}7{i}"));
        body["members"][0]["birth_date"] = json!(format!("1911-0{}-1{i}", i + 1));
        body["members"][0]["email"] =
            json!(format!("adult.{}@home.example.org", marker.to_lowercase()));
        markers.extend([
            marker.clone(),
            format!("9{i}9{i}7{i}7{i}"),
            format!("1911-0{}-1{i}", i + 1),
            marker.to_lowercase(),
        ]);
        let out = must(env.run(
            &[
                "--at",
                "2026-12-02T10:00:00+01:00",
                "--json",
                "family",
                "enroll",
                "--file",
                "-",
            ],
            Some(body.to_string().as_bytes()),
        ));
        logs.extend(out.stderr.clone());
        let fam: Value = serde_json::from_slice(&out.stdout).unwrap();
        let child = fam["members"][1]["ref"].as_str().unwrap();
        logs.extend(must(env.run(&["--at", "2026-12-16T10:00:00+01:00", "sweep"], None)).stderr);
        let rec = json!({"checkin": fam["checkins"][0]["id"], "at": "2026-12-16T09:00:00+01:00", "outcome": "reached", "mode": "video",
                         "family_observations": {"stressors": ["debts"], "safety_plan_followed": true},
                         "children": [{"member": child, "observations": {"wellbeing": 7, "school_attendance": "reduced"}}],
                         "notes": format!("{marker}-checkin-note")});
        logs.extend(must(env.record("2026-12-16T11:00:00+01:00", &rec)).stderr);
        // The operator can read it all back.
        let shown = must(env.run(&["family", "show", fam["family"].as_str().unwrap()], None));
        assert!(String::from_utf8_lossy(&shown.stdout).contains(&format!("{marker}-checkin-note")));
        logs.extend(shown.stderr);
    }
    for at in [
        "2027-01-20T10:00:00+01:00",
        "2027-04-01T10:00:00+02:00",
        "2027-07-01T10:00:00+02:00",
    ] {
        logs.extend(must(env.run(&["--at", at, "sweep"], None)).stderr);
    }
    assert!(!env.eml_files().is_empty());
    let mut scanned = vec![("logs".to_string(), logs)];
    if env.on_postgres() {
        scanned.push(("pg_dump".to_string(), env.stored_bytes()));
    } else {
        for f in ["var/nazorg.db", "var/nazorg.db-wal", "var/nazorg.db-shm"] {
            scanned.push((f.to_string(), bytes_of(&env.path(f))));
        }
    }
    for f in env.eml_files() {
        scanned.push((f.display().to_string(), bytes_of(&f)));
    }
    assert!(scanned[1].1.len() > 4096, "the database was read");
    for (name, bytes) in &scanned {
        for m in &markers {
            assert!(!contains(bytes, m.as_bytes()), "marker {m} found in {name}");
        }
    }
}

/// A sealed value copied to another row, column or family does not open; the error names
/// the family and the field, never the content.
#[test]
fn sealed_values_are_bound_to_their_place() {
    let env = TestEnv::new();
    let a = env.enrol(
        "2026-12-02T10:00:00+01:00",
        &family_body(AMSTERDAM, "standard", "2026-12-01", "BINDA"),
    );
    let b = env.enrol(
        "2026-12-02T10:00:00+01:00",
        &family_body(AMSTERDAM, "standard", "2026-12-01", "BINDB"),
    );
    let (fa, fb) = (a["family"].as_str().unwrap(), b["family"].as_str().unwrap());
    let (m0, m1) = (
        a["members"][0]["ref"].as_str().unwrap(),
        a["members"][1]["ref"].as_str().unwrap(),
    );
    // Another row of the same table and family.
    env.sql(&format!("UPDATE members SET sealed_details = (SELECT sealed_details FROM members WHERE ref = '{m0}') WHERE ref = '{m1}'"));
    let out = env.run(&["family", "show", fa], None);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains(fa) && err.contains("members"), "{err}");
    assert!(!err.contains("BINDA"), "{err}");
    // Another family.
    env.sql(&format!("UPDATE families SET sealed_details = (SELECT sealed_details FROM families WHERE ref = '{fa}') WHERE ref = '{fb}'"));
    let out = env.run(&["family", "show", fb], None);
    assert!(!out.status.success());
    assert!(stderr(&out).contains(fb));
    // Another column: a member's sealed details in the family's column.
    let c = env.enrol(
        "2026-12-02T10:00:00+01:00",
        &family_body(AMSTERDAM, "standard", "2026-12-01", "BINDC"),
    );
    let fc = c["family"].as_str().unwrap();
    let mc = c["members"][0]["ref"].as_str().unwrap();
    env.sql(&format!("UPDATE families SET sealed_details = (SELECT sealed_details FROM members WHERE ref = '{mc}') WHERE ref = '{fc}'"));
    let out = env.run(&["family", "show", fc], None);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("families"), "{}", stderr(&out));
}

/// The stored KEK is a standard age file: the `age` CLI opens it with the identity that
/// `nazorg keygen` wrote.
#[test]
fn age_cli_reads_the_stored_kek_with_a_keygen_identity() {
    let env = TestEnv::new();
    // Replace the auto-created identity (none exists yet: no command opened keys so far).
    let key = env.path("var/nazorg.key");
    assert!(!key.exists());
    let out = must(env.run(&["--json", "keygen", "--out", key.to_str().unwrap()], None));
    let k: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(k["recipient"].as_str().unwrap().starts_with("age1"));
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    env.enrol(
        "2026-12-02T10:00:00+01:00",
        &family_body(AMSTERDAM, "standard", "2026-12-01", "AGECLI"),
    );
    let out = age_decrypt_stored_kek(&env, &key);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(out.stdout.len(), 32);
    // keygen refuses to overwrite.
    assert!(
        !env.run(&["keygen", "--out", key.to_str().unwrap()], None)
            .status
            .success()
    );
}

/// Adding a recovery recipient and removing the original: the recovery identity reads
/// everything, the original reads nothing.
#[test]
fn rotation_moves_access_to_the_recovery_identity() {
    let env = TestEnv::new();
    let fam = env.enrol(
        "2026-12-02T10:00:00+01:00",
        &family_body(AMSTERDAM, "standard", "2026-12-01", "ROTATE"),
    );
    let r = fam["family"].as_str().unwrap();
    let original = env.path("var/nazorg.key");
    let recovery = env.path("recovery.key");
    let rec_pub = env.json(&["keygen", "--out", recovery.to_str().unwrap()])["recipient"]
        .as_str()
        .unwrap()
        .to_string();
    let orig_pub = public_key_of(&original);

    // Bad recipients change nothing.
    let before = env.sql("SELECT hex(wrapped) FROM keks");
    let out = env.run(&["keys", "rotate", "--add-recipient", "age1nonsense"], None);
    assert_eq!(out.status.code(), Some(65), "{}", stderr(&out));
    assert_eq!(env.sql("SELECT hex(wrapped) FROM keks"), before);

    let added = env.json(&["keys", "rotate", "--add-recipient", &rec_pub]);
    assert_eq!(added["recipients"].as_array().unwrap().len(), 2);
    assert!(age_decrypt_stored_kek(&env, &recovery).status.success());
    assert!(age_decrypt_stored_kek(&env, &original).status.success());

    env.json(&["keys", "rotate", "--remove-recipient", &orig_pub]);
    assert!(age_decrypt_stored_kek(&env, &recovery).status.success());
    assert!(!age_decrypt_stored_kek(&env, &original).status.success());

    // The daemon's own identity now opens nothing: a clear error, no panic.
    let out = env.run(&["family", "show", r], None);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("does not open"), "{}", stderr(&out));
    // With the recovery identity everything reads.
    let out = env
        .command(&["family", "show", r])
        .env("NAZORG_IDENTITY_FILE", &recovery)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("ROTATE-child-one"));
}

/// A `--new-kek` rotation interrupted halfway leaves every family readable, and running it
/// again completes it and retires the old key.
#[test]
fn new_kek_rotation_resumes_after_interruption() {
    let env = TestEnv::new();
    let fams: Vec<String> = (0..5)
        .map(|i| {
            env.enrol(
                "2026-12-02T10:00:00+01:00",
                &family_body(AMSTERDAM, "standard", "2026-12-01", &format!("KEK{i}")),
            )["family"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    let field_before = env.sql("SELECT hex(sealed_details) FROM families ORDER BY id");
    let half = env.json(&[
        "keys",
        "rotate",
        "--new-kek",
        "--batch",
        "2",
        "--max-batches",
        "1",
    ]);
    assert_eq!(half["incomplete"], true);
    assert_eq!(half["deks_rewrapped"], 2);
    assert_eq!(
        env.sql("SELECT COUNT(*) FROM keks WHERE retired_at IS NULL"),
        "2"
    );
    for f in &fams {
        must(env.run(&["family", "show", f], None));
    }
    let done = env.json(&["keys", "rotate", "--new-kek", "--batch", "2"]);
    assert_eq!(done["incomplete"], false);
    assert_eq!(done["deks_rewrapped"], 3);
    assert_eq!(done["keks_retired"], 1);
    assert_eq!(
        env.sql("SELECT COUNT(*) FROM keks WHERE retired_at IS NULL"),
        "1"
    );
    assert_eq!(
        env.sql("SELECT COUNT(*) FROM keks WHERE retired_at IS NOT NULL AND length(wrapped) = 0"),
        "1"
    );
    assert_eq!(env.sql("SELECT COUNT(DISTINCT kek_id) FROM families"), "1");
    // Field ciphertexts are untouched; every family still opens.
    assert_eq!(
        env.sql("SELECT hex(sealed_details) FROM families ORDER BY id"),
        field_before
    );
    for (i, f) in fams.iter().enumerate() {
        let out = must(env.run(&["family", "show", f], None));
        assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("KEK{i}-adult-name")));
    }
    // New enrolments use the new key.
    env.enrol(
        "2026-12-02T10:00:00+01:00",
        &family_body(AMSTERDAM, "standard", "2026-12-01", "KEKNEW"),
    );
    assert_eq!(env.sql("SELECT COUNT(DISTINCT kek_id) FROM families"), "1");
}

/// Erasure deletes the family's data key and sealed values in one transaction; `show` says
/// erased; the wrapped key's bytes are gone from the database and its WAL.
#[test]
fn erasure_crypto_shreds_a_family() {
    let env = TestEnv::new();
    let fam = env.enrol(
        "2026-12-02T10:00:00+01:00",
        &family_body(AMSTERDAM, "standard", "2026-12-01", "ERASE"),
    );
    let other = env.enrol(
        "2026-12-02T10:00:00+01:00",
        &family_body(AMSTERDAM, "standard", "2026-12-01", "KEEP"),
    );
    let r = fam["family"].as_str().unwrap();
    let child = fam["members"][1]["ref"].as_str().unwrap();
    must(env.record("2026-12-16T11:00:00+01:00", &json!({"checkin": fam["checkins"][0]["id"], "at": "2026-12-16T09:00:00+01:00",
        "outcome": "reached", "mode": "home_visit", "children": [{"member": child, "observations": {"wellbeing": 3}}], "notes": "ERASE-note"})));
    let wrapped_hex = env.sql(&format!(
        "SELECT hex(wrapped_dek) FROM families WHERE ref = '{r}'"
    ));
    let sealed_hex = env.sql(&format!(
        "SELECT hex(sealed_details) FROM families WHERE ref = '{r}'"
    ));
    assert_eq!(wrapped_hex.len(), 73 * 2);

    let before = env.counts();
    let out = env.run(
        &["family", "erase", r, "--reason", "because", "--yes"],
        None,
    );
    assert_eq!(out.status.code(), Some(65));
    assert_eq!(env.counts(), before);

    let erased = env.json(&[
        "family",
        "erase",
        r,
        "--reason",
        "data_subject_request",
        "--yes",
    ]);
    assert_eq!(erased["status"], "erased");
    let shown = env.json(&["family", "show", r]);
    assert_eq!(shown["status"], "erased");
    assert!(shown["details"].is_null());
    assert!(
        shown["members"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m.get("name").is_none())
    );
    assert_eq!(env.sql(&format!("SELECT COUNT(*) FROM observations o JOIN checkins c ON c.id = o.checkin_id JOIN families f ON f.id = c.family_id WHERE f.ref = '{r}'")), "0");
    // The bytes of the wrapped key and of a sealed field are gone from every file.
    let unhex = |h: &str| {
        (0..h.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&h[i..i + 2], 16).unwrap())
            .collect::<Vec<u8>>()
    };
    // On PostgreSQL: what the database holds (a pg_dump); dead row versions until the
    // next vacuum are the server's files, outside what the tests can read.
    let stored: Vec<(String, Vec<u8>)> = if env.on_postgres() {
        vec![("pg_dump".to_string(), env.stored_bytes())]
    } else {
        ["var/nazorg.db", "var/nazorg.db-wal"]
            .iter()
            .map(|f| (f.to_string(), bytes_of(&env.path(f))))
            .collect()
    };
    for (f, bytes) in stored {
        assert!(
            !contains(&bytes, &unhex(&wrapped_hex)),
            "wrapped key still in {f}"
        );
        assert!(
            !contains(&bytes, &unhex(&sealed_hex)),
            "sealed details still in {f}"
        );
    }
    // No more reminders; the other family is untouched.
    env.sweep("2027-03-01T10:00:00+01:00");
    // (Only the new-family notice of the enrolment, sent before the erasure.)
    assert!(
        env.outbox()
            .iter()
            .all(|m| m["family"] != r || m["kind"] == "new_family")
    );
    must(env.run(&["family", "show", other["family"].as_str().unwrap()], None));
    // Erasing twice is refused.
    assert!(
        !env.run(
            &[
                "family",
                "erase",
                r,
                "--reason",
                "data_subject_request",
                "--yes"
            ],
            None
        )
        .status
        .success()
    );
}

/// Retention: a family whose plan ended more than `retention.after` (default P5Y) ago is
/// erased by the sweep, and the summary says so.
#[test]
fn retention_erases_in_the_sweep() {
    let env = TestEnv::new();
    let fam = env.enrol(
        "2026-12-02T10:00:00+01:00",
        &family_body(AMSTERDAM, "standard", "2026-12-01", "RETAIN"),
    );
    let r = fam["family"].as_str().unwrap();
    env.json(&[
        "--at",
        "2027-01-10T10:00:00+01:00",
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
    let s = env.sweep("2032-01-09T10:00:00+01:00");
    assert_eq!(s["sweep"]["retention_erased"], 0);
    let s = env.sweep("2032-01-11T10:00:00+01:00");
    assert_eq!(s["sweep"]["retention_erased"], 1);
    assert_eq!(env.json(&["family", "show", r])["status"], "erased");
    let s = env.sweep("2032-01-12T10:00:00+01:00");
    assert_eq!(s["sweep"]["retention_erased"], 0);
}

/// Identity problems stop every command with a message that says how to fix them.
#[test]
fn identity_problems_are_clear_errors() {
    let env = TestEnv::new();
    env.enrol(
        "2026-12-02T10:00:00+01:00",
        &family_body(AMSTERDAM, "standard", "2026-12-01", "IDENT"),
    );
    let key = env.path("var/nazorg.key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = env.run(&["checkin", "due"], None);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("chmod 600"), "{}", stderr(&out));
    assert!(!stderr(&out).contains("AGE-SECRET-KEY"), "{}", stderr(&out));
    // Another identity: the KEK does not open; nothing panics.
    std::fs::remove_file(&key).unwrap();
    must(env.run(&["keygen", "--out", key.to_str().unwrap()], None));
    let out = env.run(&["checkin", "due"], None);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("does not open"), "{}", stderr(&out));
    assert!(!stderr(&out).contains("panicked"));
    // A truncated wrapped data key: the error names the family, nothing panics.
    let env = TestEnv::new();
    let fam = env.enrol(
        "2026-12-02T10:00:00+01:00",
        &family_body(AMSTERDAM, "standard", "2026-12-01", "DEKCUT"),
    );
    let r = fam["family"].as_str().unwrap();
    env.sql(&format!(
        "UPDATE families SET wrapped_dek = substr(wrapped_dek, 1, 20) WHERE ref = '{r}'"
    ));
    let out = env.run(&["family", "show", r], None);
    assert!(!out.status.success());
    assert!(stderr(&out).contains(r), "{}", stderr(&out));
    assert!(!stderr(&out).contains("panicked"));
    // A truncated stored KEK.
    let env = TestEnv::new();
    env.enrol(
        "2026-12-02T10:00:00+01:00",
        &family_body(AMSTERDAM, "standard", "2026-12-01", "TRUNC"),
    );
    env.sql("UPDATE keks SET wrapped = substr(wrapped, 1, 40)");
    let out = env.run(&["checkin", "due"], None);
    assert!(!out.status.success());
    assert!(!stderr(&out).contains("panicked"), "{}", stderr(&out));
}

/// Without an identity and without `create_identity` (production), every command and the
/// daemon refuse to start with a message that says how to fix it, and write nothing.
#[test]
fn missing_identity_is_refused_with_a_fix() {
    let env = TestEnv::with_changes(&[("create_identity = true", "create_identity = false")]);
    let before = env.counts();
    for args in [&["checkin", "due"][..], &["serve"][..]] {
        let out = env.run(args, None);
        // EX_CONFIG: the installation needs fixing, not the input.
        assert_eq!(out.status.code(), Some(78), "{args:?}");
        let err = stderr(&out);
        assert!(
            err.contains("does not exist") && err.contains("nazorg keygen"),
            "{err}"
        );
    }
    assert!(!env.path("var/nazorg.key").exists());
    assert_eq!(env.counts(), before);
}
