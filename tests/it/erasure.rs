//! Erasure that erases (issue 10 item 1): after `family erase` (or retention) no file in the
//! state folder holds anything of the family but its tombstone, the dossier attachment is
//! gone, nothing more is sent for it, and sent bodies and exports expire.

use crate::support::env::*;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const MARK: &str = "ERASEMARK";
/// Planted so that a leftover is unmistakable: no other date or word in the state folder
/// is this.
const EPISODE: &str = "2026-11-24";
const LANGUAGE: &str = "xqz";
/// Bytes of the dossier that make up its second base64 line in a mail (76 characters a
/// line: 57 bytes).
const DOSSIER_LINE: std::ops::Range<usize> = 114..171;

/// The last 64 bytes of an age file: ciphertext (its start is the header every age file
/// shares, such as the wrapped key-encryption key).
fn dossier_payload(dossier: &[u8]) -> Vec<u8> {
    dossier[dossier.len() - 64..].to_vec()
}

/// Rotterdam gets an age recipient (so a move carries a dossier); exports with k = 1 so
/// one family can be exported.
fn erasure_config(dir: &Path, export_keep: &str) -> String {
    let key = dir.join("rotterdam.key");
    let out = Command::new(env!("CARGO_BIN_EXE_nazorg"))
        .arg("keygen")
        .arg("--out")
        .arg(&key)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let recipient = String::from_utf8(out.stdout).unwrap().trim().to_string();
    format!(
        r#"age_recipient = "{recipient}"
[export]
k = 1
family_k = 1
keep = "{export_keep}"
indicators = ["wellbeing"]
[export.values]
wellbeing = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10"]
"#
    )
}

fn env_with(export_keep: &str) -> TestEnv {
    TestEnv::with_config("transport = \"file\"\ndir = \"var/outbox\"", |d| {
        erasure_config(d, export_keep)
    })
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn must(out: Output) -> Output {
    assert!(out.status.success(), "{}", stderr(&out));
    out
}

fn body() -> Value {
    let mut b = family_body(AMSTERDAM, "standard", EPISODE, MARK);
    b["language"] = json!(LANGUAGE);
    // Erasure takes the case director along: out of the record and out of the reminders
    // that named them.
    b["case_director"] =
        json!({"name": format!("{MARK}-director"), "email": "director@team.example.org"});
    b
}

/// Every file under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

fn unhex(h: &str) -> Vec<u8> {
    (0..h.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&h[i..i + 2], 16).unwrap())
        .collect()
}

fn base64(bytes: &[u8]) -> String {
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let out = Command::new("/usr/bin/python3")
        .args([
            "-c",
            "import base64,sys; print(base64.b64encode(bytes.fromhex(sys.argv[1])).decode())",
        ])
        .arg(hex)
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// Enrols, records a red signal, moves the family to Rotterdam with a dossier and sends
/// it all; returns (family ref, the dossier's ciphertext).
fn family_with_history(env: &TestEnv) -> (String, Vec<u8>) {
    let fam = env.enrol("2026-12-02T10:00:00+01:00", &body());
    let f = fam["family"].as_str().unwrap().to_string();
    let child = fam["members"][1]["ref"].as_str().unwrap();
    must(env.record(
        "2026-12-09T10:00:00+01:00",
        &json!({"checkin": fam["checkins"][0]["id"], "at": "2026-12-08T10:00:00+01:00",
            "outcome": "reached", "mode": "home_visit",
            "children": [{"member": child, "observations": {"new_incident": true, "wellbeing": 3}}],
            "notes": format!("{MARK}-note")}),
    ));
    assert_eq!(
        env.sql(&format!(
            "SELECT COUNT(*) FROM flags fl JOIN families f ON f.id = fl.family_id WHERE f.ref = '{f}' AND fl.severity = 'red'"
        )),
        "1"
    );
    env.sweep("2026-12-09T12:00:00+01:00");
    let address = env.path("address.txt");
    std::fs::write(&address, format!("{MARK}-new-address 5, 3011 AA\n")).unwrap();
    must(env.run(
        &[
            "--at",
            "2026-12-10T10:00:00+01:00",
            "move",
            &f,
            "--to",
            ROTTERDAM,
            "--date",
            "2026-12-14",
            "--address-file",
            address.to_str().unwrap(),
        ],
        None,
    ));
    let s = env.sweep("2026-12-10T10:01:00+01:00");
    assert!(s["dispatch"]["sent"].as_u64().unwrap() >= 2, "{s}");
    let dossier = unhex(&env.sql("SELECT hex(bytes) FROM outbox_attachments"));
    assert!(dossier.len() > 100, "a dossier was attached");
    (f, dossier)
}

fn family_rows(env: &TestEnv, f: &str) -> String {
    env.sql(&format!(
        "SELECT (SELECT COUNT(*) FROM members m JOIN families x ON x.id = m.family_id WHERE x.ref = '{f}'), \
         (SELECT COUNT(*) FROM responsibilities r JOIN families x ON x.id = r.family_id WHERE x.ref = '{f}'), \
         (SELECT COUNT(*) FROM checkins c JOIN families x ON x.id = c.family_id WHERE x.ref = '{f}'), \
         (SELECT COUNT(*) FROM observations), \
         (SELECT COUNT(*) FROM handovers h JOIN families x ON x.id = h.family_id WHERE x.ref = '{f}'), \
         (SELECT COUNT(*) FROM flags fl JOIN families x ON x.id = fl.family_id WHERE x.ref = '{f}'), \
         (SELECT COUNT(*) FROM outbox_attachments a JOIN outbox o ON o.id = a.outbox_id WHERE o.family_ref = '{f}'), \
         (SELECT COUNT(*) FROM evaluations e JOIN families x ON x.id = e.family_id WHERE x.ref = '{f}')"
    ))
}

/// The tombstone: reference, status, erased_at and reason; every other column empty or the
/// placeholder that every erased family has.
fn assert_tombstone(env: &TestEnv, f: &str, reason: &str) {
    assert_eq!(
        env.sql(&format!(
            "SELECT status, erase_reason, erased_at IS NOT NULL, \
             episode_kind = 'shelter_exit' AND episode_date = '' AND plan = '' AND plan_end = 0 \
             AND close_reason IS NULL AND closed_at IS NULL AND language = '' \
             AND interpreter_needed = 0 AND enrolled_at = 0 AND kek_id IS NULL \
             AND wrapped_dek IS NULL AND sealed_details IS NULL AND sealed_close_approval IS NULL \
             FROM families WHERE ref = '{f}'"
        )),
        format!("erased|{reason}|1|1")
    );
    assert_eq!(family_rows(env, f), "0|0|0|0|0|0|0|0");
    // The family's messages keep their metadata only; none is left to send.
    assert_eq!(
        env.sql(&format!(
            "SELECT COUNT(*) FROM outbox WHERE family_ref = '{f}' \
             AND (body != '' OR subject != '' OR body_dropped_at IS NULL OR status = 'pending')"
        )),
        "0"
    );
}

/// No file under the state folder holds any of `needles`; on PostgreSQL neither does a
/// `pg_dump` of the database.
fn assert_nothing_left(env: &TestEnv, needles: &[(&str, Vec<u8>)]) {
    let files = files_under(&env.path("var"));
    let mut scanned: Vec<(String, Vec<u8>)> = files
        .iter()
        .map(|p| (p.display().to_string(), std::fs::read(p).unwrap()))
        .collect();
    if env.on_postgres() {
        scanned.push(("pg_dump".to_string(), env.stored_bytes()));
    } else {
        assert!(files.iter().any(|p| p.ends_with("nazorg.db")));
    }
    for (name, bytes) in scanned {
        for (what, needle) in needles {
            assert!(!contains(&bytes, needle), "{what} still in {name}");
        }
    }
}

/// Enrol with planted markers, raise a red flag, move with a dossier, export; erase: a
/// tombstone is all that is left, in every file under the state folder (database, WAL,
/// `.eml` copies, exports); the dossier and its mail are gone; the pending reminder is
/// cancelled; nothing is sent for the family afterwards; the erasure names the export that
/// may still hold the family, and the sweep deletes it after `export.keep`.
#[test]
fn erasure_leaves_only_a_tombstone_in_the_state_folder() {
    let env = env_with("P30D");
    let (f, dossier) = family_with_history(&env);
    let dossier_mail = env
        .eml_files()
        .into_iter()
        .find(|p| {
            std::fs::read_to_string(p)
                .unwrap()
                .contains(&format!("dossier-{f}.age"))
        })
        .expect("the handover mail with the dossier");
    // The needle for the dossier in a mail: one whole base64 line of its payload.
    assert!(
        std::fs::read_to_string(&dossier_mail)
            .unwrap()
            .contains(&base64(&dossier[DOSSIER_LINE])),
        "the needle is found before erasure"
    );
    let export = env.json(&["--at", "2026-12-11T10:00:00+01:00", "export"]);
    let export_id = export["export"].as_str().unwrap().to_string();
    let export_dir = PathBuf::from(export["out"].as_str().unwrap());
    assert_eq!(export_dir, env.path("var/exports").join(&export_id));
    assert!(export_dir.join("manifest.json").is_file(), "{export}");
    // A reminder waits in the outbox at the moment of erasure.
    env.ok(&[
        "--at",
        "2027-01-03T12:00:00+01:00",
        "sweep",
        "--no-dispatch",
    ]);
    let pending: u64 = env
        .sql(&format!(
            "SELECT COUNT(*) FROM outbox WHERE family_ref = '{f}' AND status = 'pending'"
        ))
        .parse()
        .unwrap();
    assert!(pending >= 1);
    // The dossier, and the calendar invitations of the reminders.
    let attachments: u64 = env
        .sql(&format!(
            "SELECT COUNT(*) FROM outbox_attachments a JOIN outbox o ON o.id = a.outbox_id \
             WHERE o.family_ref = '{f}'"
        ))
        .parse()
        .unwrap();
    assert!(attachments >= 1);
    let sealed = unhex(&env.sql(&format!(
        "SELECT hex(sealed_details) FROM families WHERE ref = '{f}'"
    )));
    let audit_before = env.sql("SELECT group_concat(hex(hash), ',') FROM audit");

    // Without --yes: says what would go, changes nothing, exit 64.
    let before = env.counts();
    let out = env.run(
        &[
            "--at",
            "2027-01-03T13:00:00+01:00",
            "family",
            "erase",
            &f,
            "--reason",
            "data_subject_request",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(64), "{}", stderr(&out));
    let msg = stderr(&out);
    for word in [f.as_str(), "--yes", "3 members", "flags", &export_id] {
        assert!(msg.contains(word), "{word:?} not in: {msg}");
    }
    assert_eq!(env.counts(), before);

    let erased = env.json(&[
        "--at",
        "2027-01-03T13:00:00+01:00",
        "family",
        "erase",
        &f,
        "--reason",
        "data_subject_request",
        "--yes",
    ]);
    assert_eq!(erased["status"], "erased", "{erased}");
    assert_eq!(erased["messages"]["cancelled"].as_u64(), Some(pending));
    assert_eq!(
        erased["messages"]["attachments_deleted"].as_u64(),
        Some(attachments)
    );
    assert!(
        erased["mail_files_removed"].as_u64().unwrap() >= 3,
        "{erased}"
    );
    let held = erased["exports_may_hold"].as_array().unwrap();
    assert_eq!(held.len(), 1, "{erased}");
    assert_eq!(held[0]["export"], export_id.as_str());
    assert_eq!(held[0]["folder"], export_dir.to_str().unwrap());

    assert_tombstone(&env, &f, "data_subject_request");
    assert!(!dossier_mail.exists(), "the mail with the dossier is gone");
    assert!(
        env.eml_files()
            .iter()
            .all(|p| !std::fs::read_to_string(p).unwrap().contains(&f)),
        "a mail copy naming the family is left"
    );
    // Audit rows stay untouched: the old ones unchanged, one entry added.
    let audit_after = env.sql("SELECT group_concat(hex(hash), ',') FROM audit");
    assert!(audit_after.starts_with(&audit_before), "audit rewritten");
    assert_eq!(
        env.sql(&format!(
            "SELECT detail FROM audit WHERE family_ref = '{f}' ORDER BY seq DESC LIMIT 1"
        )),
        "data_subject_request"
    );

    // Sweeps and dispatch later: nothing for the family; the export expires.
    let outbox_rows = env.sql(&format!(
        "SELECT COUNT(*) FROM outbox WHERE family_ref = '{f}'"
    ));
    let mails = env.eml_files();
    let s = env.sweep("2027-01-20T12:00:00+01:00");
    // What goes out after the erasure: the calendar cancels of its invited check-ins,
    // naming the check-in only (the `invites` tests read them with a calendar parser).
    let cancels: Vec<PathBuf> = env
        .eml_files()
        .into_iter()
        .filter(|p| !mails.contains(p))
        .collect();
    assert!(!cancels.is_empty(), "{s}");
    for p in &cancels {
        let text = std::fs::read_to_string(p).unwrap();
        assert!(text.contains("method=CANCEL"), "{text}");
        assert!(!text.contains(&f), "the family named in {text}");
    }
    assert_eq!(s["sweep"]["exports_expired"], 1, "{s}");
    assert!(!export_dir.exists(), "expired export folder deleted");
    assert_eq!(
        env.sql(&format!(
            "SELECT expired_at IS NOT NULL FROM exports WHERE id = '{export_id}'"
        )),
        "1"
    );
    env.sweep("2027-06-01T12:00:00+01:00");
    assert_eq!(
        env.sql(&format!(
            "SELECT COUNT(*) FROM outbox WHERE family_ref = '{f}'"
        )),
        outbox_rows
    );
    assert_eq!(
        env.eml_files().len(),
        mails.len() + cancels.len(),
        "nothing sent for the family"
    );
    let shown = env.json(&["family", "show", &f]);
    assert_eq!(shown["status"], "erased");
    assert!(
        shown["details"].is_null() && shown["episode"].is_null(),
        "{shown}"
    );
    assert!(shown["members"].as_array().unwrap().is_empty());

    let dossier_b64 = base64(&dossier[DOSSIER_LINE]);
    let mut needles: Vec<(&str, Vec<u8>)> = [
        "-director",
        "-address 12",
        "-family-note",
        "-adult-name",
        "-child-one",
        "-child-two",
        "-new-address",
        "-note",
    ]
    .iter()
    .map(|s| ("a planted marker", format!("{MARK}{s}").into_bytes()))
    .collect();
    needles.extend([
        ("any marker", MARK.as_bytes().to_vec()),
        ("the marker in lower case", MARK.to_lowercase().into_bytes()),
        ("the episode date", EPISODE.as_bytes().to_vec()),
        ("the language", LANGUAGE.as_bytes().to_vec()),
        ("the dossier", dossier_payload(&dossier)),
        ("the dossier in a mail", dossier_b64.into_bytes()),
        ("the sealed details", sealed),
    ]);
    assert_nothing_left(&env, &needles);
}

/// Retention erases in the same way: tombstone, pending alert cancelled and never sent,
/// and the sweep names the export that may still hold the family.
#[test]
fn retention_erasure_leaves_the_same_tombstone() {
    let env = env_with("P10Y");
    let (f, dossier) = family_with_history(&env);
    let export = env.json(&["--at", "2026-12-11T10:00:00+01:00", "export"]);
    let export_id = export["export"].as_str().unwrap().to_string();
    // A red alert raised just before closing waits, unsent, when retention comes.
    let checkin2 = env.sql(&format!(
        "SELECT c.ref FROM checkins c JOIN families x ON x.id = c.family_id WHERE x.ref = '{f}' AND c.wave = 2"
    ));
    let child = env.sql(&format!(
        "SELECT m.ref FROM members m JOIN families x ON x.id = m.family_id WHERE x.ref = '{f}' AND m.position = 1"
    ));
    must(env.record(
        "2027-01-06T10:00:00+01:00",
        &json!({"checkin": checkin2, "at": "2027-01-06T09:00:00+01:00",
            "outcome": "reached", "mode": "phone",
            "children": [{"member": child, "observations": {"perpetrator_contact": "unsupervised"}}]}),
    ));
    assert_eq!(
        env.sql(&format!(
            "SELECT COUNT(*) FROM outbox WHERE family_ref = '{f}' AND kind = 'alert' AND status = 'pending'"
        )),
        "1"
    );
    let view = env.path("view.txt");
    std::fs::write(&view, format!("{MARK}-family-view")).unwrap();
    env.json(&[
        "--at",
        "2027-01-10T10:00:00+01:00",
        "family",
        "close",
        &f,
        "--reason",
        "family_moved_abroad",
        "--safety-improved",
        "partly",
        "--professionals",
        "2",
        "--family-view-file",
        view.to_str().unwrap(),
        "--approved-by",
        &format!("{MARK}-coordinator"),
    ]);
    assert_eq!(
        env.sql(&format!(
            "SELECT COUNT(*) FROM evaluations e JOIN families x ON x.id = e.family_id WHERE x.ref = '{f}'"
        )),
        "1"
    );
    let mails = env.eml_files().len();
    let s: Value = serde_json::from_str(&env.ok(&[
        "--at",
        "2032-01-11T10:00:00+01:00",
        "sweep",
        "--no-dispatch",
    ]))
    .unwrap();
    assert_eq!(s["sweep"]["retention_erased"], 1, "{s}");
    assert_eq!(
        s["sweep"]["retention_exports_may_hold"],
        json!([export_id]),
        "{s}"
    );
    assert_tombstone(&env, &f, "retention");
    env.sweep("2032-01-12T10:00:00+01:00");
    assert!(
        env.eml_files().len() < mails,
        "copies removed, nothing sent"
    );
    assert!(
        env.eml_files()
            .iter()
            .all(|p| !std::fs::read_to_string(p).unwrap().contains(&f))
    );
    assert_nothing_left(
        &env,
        &[
            ("the episode date", EPISODE.as_bytes().to_vec()),
            ("the language", LANGUAGE.as_bytes().to_vec()),
            ("the dossier", dossier_payload(&dossier)),
            ("a planted marker", MARK.as_bytes().to_vec()),
        ],
    );
}

/// Bodies (and attachments) of sent messages are kept `mail.keep_sent` (default P30D) and
/// then dropped by the sweep; the metadata rows stay.
#[test]
fn sent_bodies_are_dropped_after_keep_sent() {
    let env = env_with("P30D");
    let (_f, _) = family_with_history(&env);
    let sent_by = |at: &str| {
        env.sql(&format!(
            "SELECT COUNT(*) FROM outbox WHERE status = 'sent' AND sent_at <= strftime('%s', '{at}')"
        ))
    };
    let metadata = "SELECT group_concat(m, ',') FROM (SELECT key || kind || recipients || status || sent_at AS m \
                    FROM outbox WHERE status = 'sent' ORDER BY id) o";
    let before = env.sql(metadata);
    let sent_early = sent_by("2026-12-10T09:02:00Z");
    assert!(sent_early.parse::<u64>().unwrap() >= 3);
    // 29 days after the move mails: kept.
    env.ok(&[
        "--at",
        "2027-01-08T10:00:00+01:00",
        "sweep",
        "--no-dispatch",
    ]);
    assert_eq!(
        env.sql("SELECT COUNT(*) FROM outbox WHERE body_dropped_at IS NOT NULL"),
        "0"
    );
    assert_eq!(env.sql("SELECT COUNT(*) FROM outbox_attachments"), "1");
    // 31 days after: dropped, metadata kept.
    let s: Value = serde_json::from_str(&env.ok(&[
        "--at",
        "2027-01-10T10:02:00+01:00",
        "sweep",
        "--no-dispatch",
    ]))
    .unwrap();
    assert_eq!(
        s["sweep"]["bodies_dropped"].as_u64().unwrap().to_string(),
        sent_early,
        "{s}"
    );
    assert_eq!(
        env.sql("SELECT COUNT(*) FROM outbox WHERE status = 'sent' AND body != ''"),
        "0"
    );
    assert_eq!(env.sql("SELECT COUNT(*) FROM outbox_attachments"), "0");
    assert_eq!(env.sql(metadata), before);
    // Pending messages keep their bodies.
    assert_eq!(
        env.sql("SELECT COUNT(*) FROM outbox WHERE status = 'pending' AND body = ''"),
        "0"
    );
}

/// `mail.keep_sent` and `export.keep` are validated like every duration.
#[test]
fn keep_durations_are_validated() {
    let env = TestEnv::new();
    let text = std::fs::read_to_string(&env.config_path).unwrap().replace(
        "language = \"en\"",
        "language = \"en\"\nkeep_sent = \"30 days\"",
    ) + "[export]\nkeep = \"P0D\"\n";
    std::fs::write(&env.config_path, text).unwrap();
    let out = env.run(&["check-config"], None);
    assert_eq!(out.status.code(), Some(78), "{}", stderr(&out));
    let msg = stderr(&out);
    assert!(msg.contains("mail.keep_sent"), "{msg}");
    assert!(msg.contains("export.keep"), "{msg}");
}
