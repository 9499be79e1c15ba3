//! Moves between municipalities: a warm handover that no family falls through.

use crate::support::env::*;
use crate::support::smtp::SmtpServer;
use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use chrono_tz::Europe::Amsterdam;
use nazorg::clock::ManualClock;
use nazorg::service::{self, OpError};
use nazorg::store;
use rand::{Rng, SeedableRng};
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;

const DEN_HAAG: &str = "GM0518";
const TEAM_DEN_HAAG: &str = "wijkteam@denhaag.example.org";
const COORD_DEN_HAAG: &str = "coordinator@vt-denhaag.example.org";
const DATAERR: i32 = 65;
const NOINPUT: i32 = 66;

/// Rotterdam gets an age recipient (identity in `rotterdam.key`); Den Haag has none.
fn handover_config(dir: &Path) -> String {
    let key = dir.join("rotterdam.key");
    let out = Command::new(env!("CARGO_BIN_EXE_nazorg"))
        .arg("keygen")
        .arg("--out")
        .arg(&key)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let recipient = String::from_utf8(out.stdout).unwrap().trim().to_string();
    format!(
        r#"age_recipient = "{recipient}"
[[municipalities]]
code = "{DEN_HAAG}"
name = "Den Haag"
team_email = "{TEAM_DEN_HAAG}"
coordinator_email = "{COORD_DEN_HAAG}"
region = "VR15"
[handover]
remind_after = 2
escalate_after = 5
max_move_ahead = "P3M"
holidays = ["2027-04-27"]
"#
    )
}

fn file_env() -> TestEnv {
    TestEnv::with_config(
        "transport = \"file\"\ndir = \"var/outbox\"",
        handover_config,
    )
}

fn local(y: i32, m: u32, d: u32, h: u32) -> DateTime<Utc> {
    Amsterdam
        .with_ymd_and_hms(y, m, d, h, 0, 0)
        .single()
        .unwrap()
        .with_timezone(&Utc)
}

/// Stderr as text: under `--json` the errors come as one JSON document, read here back
/// into `field: message` lines (and the document itself, so it is checked too).
fn stderr(out: &Output) -> String {
    let text = String::from_utf8_lossy(&out.stderr).into_owned();
    let Some(doc) = text
        .lines()
        .find_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|d| d["ok"] == false)
    else {
        return text;
    };
    let mut lines = text.clone();
    for e in doc["errors"].as_array().into_iter().flatten() {
        let message = e["message"].as_str().unwrap_or_default();
        match e["field"].as_str() {
            Some(f) => lines.push_str(&format!("\nerror: {f}: {message}")),
            None => lines.push_str(&format!("\nerror: {message}")),
        }
    }
    lines
}

fn move_cmd(env: &TestEnv, at: &str, family: &str, to: &str, date: &str) -> Output {
    env.run(
        &[
            "--at", at, "--json", "move", family, "--to", to, "--date", date,
        ],
        None,
    )
}

fn moved(env: &TestEnv, at: &str, family: &str, to: &str, date: &str) -> Value {
    let out = move_cmd(env, at, family, to, date);
    assert!(out.status.success(), "move failed: {}", stderr(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn age_decrypt(identity: &Path, file: &Path) -> String {
    let out = Command::new("/usr/bin/age")
        .arg("-d")
        .arg("-i")
        .arg(identity)
        .arg(file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "age -d: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Writes the attachment `name` of a raw RFC 5322 message to `dest` (Python's email
/// package: an independent MIME parser).
fn extract_attachment(raw: &str, name: &str, dest: &Path) {
    let msg = dest.with_extension("eml");
    std::fs::write(&msg, raw).unwrap();
    let script = "import email,sys\n\
        m=email.message_from_binary_file(open(sys.argv[1],'rb'))\n\
        parts=[p for p in m.walk() if p.get_filename()==sys.argv[2]]\n\
        assert len(parts)==1, [p.get_filename() for p in m.walk()]\n\
        open(sys.argv[3],'wb').write(parts[0].get_payload(decode=True))\n";
    let out = Command::new("/usr/bin/python3")
        .args(["-c", script])
        .arg(&msg)
        .arg(name)
        .arg(dest)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn kinds(env: &TestEnv, prefix: &str) -> Vec<Value> {
    env.outbox()
        .into_iter()
        .filter(|m| m["kind"].as_str().unwrap().starts_with(prefix))
        .collect()
}

/// The receiving team's email arrives over real SMTP with `dossier-<REF>.age`; the `age`
/// CLI opens it with the team's identity and the planted names (and the new address) are
/// inside; no message body or header carries any of them.
#[test]
fn handover_email_over_smtp_carries_a_dossier_only_the_receiving_team_reads() {
    let server = SmtpServer::start();
    let env = TestEnv::with_config(
        &format!("transport = \"smtp\"\nurl = \"{}\"", server.url()),
        handover_config,
    );
    let fam = env.enrol(
        "2026-12-02T10:00:00+01:00",
        &family_body(AMSTERDAM, "standard", "2026-12-01", "HANDMARK"),
    );
    let family = fam["family"].as_str().unwrap();
    let address = env.path("address.txt");
    std::fs::write(&address, "HANDMARK-new-address 5, 3011 AA\n").unwrap();
    let out = env.run(
        &[
            "--at",
            "2026-12-20T10:00:00+01:00",
            "--json",
            "move",
            family,
            "--to",
            ROTTERDAM,
            "--date",
            "2027-01-04",
            "--address-file",
            address.to_str().unwrap(),
        ],
        None,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!stderr(&out).contains("HANDMARK"), "{}", stderr(&out));
    let h: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(h["dossier"], "attached");
    assert_eq!(h["from"], AMSTERDAM);
    let s = env.sweep("2026-12-20T10:01:00+01:00");
    assert!(s["dispatch"]["sent"].as_u64().unwrap() >= 2, "{s}");

    let messages = server.messages();
    let file = format!("dossier-{family}.age");
    let to_rotterdam: Vec<&String> = messages
        .iter()
        .filter(|m| {
            m.contains(&format!("To: {TEAM_ROTTERDAM}")) && m.contains("X-Nazorg-Key: handover:")
        })
        .collect();
    assert_eq!(to_rotterdam.len(), 1, "{messages:#?}");
    let raw = to_rotterdam[0];
    assert!(raw.contains(&file), "{raw}");
    assert!(raw.contains(h["handover"].as_str().unwrap()), "{raw}");
    let notice = messages
        .iter()
        .find(|m| m.contains("X-Nazorg-Key: handover_notice:"))
        .expect("notice to the sending team");
    assert!(
        notice.contains(&format!("To: {TEAM_AMSTERDAM}")),
        "{notice}"
    );
    for m in &messages {
        assert!(!m.contains("HANDMARK"), "personal data in a message: {m}");
    }

    let dossier = env.path("dossier.age");
    extract_attachment(raw, &file, &dossier);
    let plain = age_decrypt(&env.path("rotterdam.key"), &dossier);
    for planted in [
        "HANDMARK-adult-name",
        "HANDMARK-child-one",
        "HANDMARK-child-two",
        CASE_DIRECTOR,
        "HANDMARK-family-note",
        "HANDMARK-new-address 5",
        "2016-07-19",
    ] {
        assert!(
            plain.contains(planted),
            "{planted} missing from the dossier"
        );
    }
    let d: Value = serde_json::from_str(&plain).unwrap();
    assert_eq!(d["family"]["family"], family);
    assert_eq!(d["moves"][0]["to"], ROTTERDAM);
    assert_eq!(d["open_flags"], serde_json::json!([]));
    // The file in the database is the encrypted one, never the plaintext.
    assert_eq!(
        env.sql("SELECT COUNT(*) FROM outbox_attachments WHERE instr(bytes, 'HANDMARK') > 0"),
        "0"
    );
}

/// A reminder owed on Friday (registered Wednesday 2027-04-21, two working days) while no
/// sweep ran that day waits for Monday: a sweep catching up on the weekend sends nothing.
#[test]
fn a_handover_reminder_owed_before_a_weekend_waits_for_the_working_day() {
    let env = file_env();
    let a = env.enrol(
        "2027-04-01T10:00:00+02:00",
        &family_body(AMSTERDAM, "standard", "2027-04-01", "WKND"),
    );
    let h = moved(
        &env,
        "2027-04-21T10:00:00+02:00",
        a["family"].as_str().unwrap(),
        ROTTERDAM,
        "2027-05-01",
    );
    let h = h["handover"].as_str().unwrap();
    for t in ["2027-04-24T11:00:00+02:00", "2027-04-25T11:00:00+02:00"] {
        env.ok(&["--at", t, "sweep", "--no-dispatch"]);
        assert!(kinds(&env, "handover_reminder").is_empty(), "sent at {t}");
    }
    env.ok(&[
        "--at",
        "2027-04-26T08:00:00+02:00",
        "sweep",
        "--no-dispatch",
    ]);
    let sent = kinds(&env, "handover_reminder");
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["key"], format!("handover_reminder:{h}"));
}

/// Handover registered Thursday 2027-04-22 10:00, King's Day (Tuesday 27th) configured as
/// a holiday: the reminder is owed after 2 working days (Monday 26th 10:00), the escalation
/// after 5 (Friday 30th 10:00, not Thursday). A second family acknowledged on Monday gets
/// its reminder but no escalation. Sweeps twice a day, twice at one instant: nothing twice.
#[test]
fn handover_reminder_and_escalation_fall_on_working_days() {
    let env = file_env();
    let a = env.enrol(
        "2027-04-01T10:00:00+02:00",
        &family_body(AMSTERDAM, "standard", "2027-04-01", "TIMEA"),
    );
    let b = env.enrol(
        "2027-04-01T10:00:00+02:00",
        &family_body(AMSTERDAM, "standard", "2027-04-01", "TIMEB"),
    );
    let at = "2027-04-22T10:00:00+02:00";
    let ha = moved(
        &env,
        at,
        a["family"].as_str().unwrap(),
        ROTTERDAM,
        "2027-05-01",
    );
    let hb = moved(
        &env,
        at,
        b["family"].as_str().unwrap(),
        ROTTERDAM,
        "2027-05-01",
    );
    let (ha, hb) = (
        ha["handover"].as_str().unwrap(),
        hb["handover"].as_str().unwrap(),
    );

    let mut first_reminder = std::collections::BTreeMap::new();
    let mut first_escalation = std::collections::BTreeMap::new();
    let mut day = NaiveDate::from_ymd_opt(2027, 4, 22).unwrap();
    while day <= NaiveDate::from_ymd_opt(2027, 5, 10).unwrap() {
        for hour in [9, 11] {
            let t = format!("{day}T{hour:02}:00:00+02:00");
            env.ok(&["--at", &t, "sweep", "--no-dispatch"]);
            if day == NaiveDate::from_ymd_opt(2027, 4, 30).unwrap() && hour == 11 {
                let before = env.counts();
                env.ok(&["--at", &t, "sweep", "--no-dispatch"]);
                assert_eq!(env.counts(), before, "a repeated sweep changed something");
            }
            for m in kinds(&env, "handover_reminder")
                .into_iter()
                .chain(kinds(&env, "handover_escalation"))
            {
                let key = m["key"].as_str().unwrap().to_string();
                let map = if m["kind"] == "handover_reminder" {
                    &mut first_reminder
                } else {
                    &mut first_escalation
                };
                map.entry(key).or_insert_with(|| t.clone());
            }
            if day == NaiveDate::from_ymd_opt(2027, 4, 26).unwrap() && hour == 11 {
                env.ok(&[
                    "--at",
                    "2027-04-26T12:00:00+02:00",
                    "handover",
                    "ack",
                    hb,
                    "--municipality",
                    ROTTERDAM,
                    "--by",
                    "TIMEB-acker",
                ]);
            }
        }
        day = day.succ_opt().unwrap();
    }
    let r = |h: &str| {
        first_reminder
            .get(&format!("handover_reminder:{h}"))
            .cloned()
    };
    let e = |h: &str| {
        first_escalation
            .get(&format!("handover_escalation:{h}"))
            .cloned()
    };
    assert_eq!(r(ha).as_deref(), Some("2027-04-26T11:00:00+02:00"));
    assert_eq!(r(hb).as_deref(), Some("2027-04-26T11:00:00+02:00"));
    assert_eq!(e(ha).as_deref(), Some("2027-04-30T11:00:00+02:00"));
    assert_eq!(e(hb), None, "escalated after acknowledgement");
    assert_eq!(kinds(&env, "handover_reminder").len(), 2);
    let esc = kinds(&env, "handover_escalation");
    assert_eq!(esc.len(), 1);
    assert_eq!(
        esc[0]["recipients"],
        serde_json::json!([COORD_ROTTERDAM, TEAM_AMSTERDAM])
    );
    assert_eq!(esc[0]["cc"], serde_json::json!([TEAM_ROTTERDAM]));
    let list = env.json(&["handover", "list", "--pending"]);
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["status"], "escalated");
    // Escalated handovers can still be acknowledged; afterwards nothing more is sent.
    env.ok(&[
        "--at",
        "2027-05-10T12:00:00+02:00",
        "handover",
        "ack",
        ha,
        "--municipality",
        ROTTERDAM,
    ]);
    let n = env.outbox().len();
    env.ok(&[
        "--at",
        "2027-05-20T12:00:00+02:00",
        "sweep",
        "--no-dispatch",
    ]);
    assert_eq!(
        kinds(&env, "handover_reminder").len() + kinds(&env, "handover_escalation").len(),
        3
    );
    assert!(env.outbox().len() >= n);
    // The acknowledger's name is sealed, never stored in plain text.
    assert_eq!(
        env.sql("SELECT COUNT(*) FROM handovers WHERE instr(sealed_ack_by, 'TIMEB') > 0"),
        "0"
    );
}

fn assert_refused(
    env: &TestEnv,
    case: &str,
    out: &Output,
    code: i32,
    needles: &[&str],
    before: &str,
) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(code), "{case}: {err}");
    for n in needles {
        assert!(err.contains(n), "{case}: stderr lacks {n:?}: {err}");
    }
    assert!(
        !err.contains("BADMARK"),
        "{case}: personal data in stderr: {err}"
    );
    assert_eq!(env.counts(), before, "{case}: the database changed");
}

/// Unknown municipality, move to the current one, dates before enrolment or too far ahead,
/// unknown family, acknowledging as the wrong municipality, twice, or a superseded one:
/// a clear error naming the field, exit 65/66, nothing changed.
#[test]
fn bad_moves_and_acknowledgements_are_refused_and_change_nothing() {
    let env = file_env();
    let fam = env.enrol(
        "2026-12-02T10:00:00+01:00",
        &family_body(AMSTERDAM, "standard", "2026-12-01", "BADMARK"),
    );
    let f = fam["family"].as_str().unwrap();
    let at = "2026-12-05T10:00:00+01:00";
    let before = env.counts();
    let addr = env.path("addr.txt");
    std::fs::write(&addr, "BADMARK-street 1").unwrap();
    // A well-formed code outside the region needs handover.outside_region_email.
    let out = move_cmd(&env, at, f, "GM9999", "2026-12-10");
    assert_refused(
        &env,
        "outside the region without an intake desk",
        &out,
        DATAERR,
        &["to:", "GM9999", "handover.outside_region_email"],
        &before,
    );
    for bad in ["GM99", "gm0363", "GM03631", "XX0363"] {
        let out = move_cmd(&env, at, f, bad, "2026-12-10");
        assert_refused(
            &env,
            bad,
            &out,
            DATAERR,
            &["to:", "not a CBS municipality code"],
            &before,
        );
    }
    let out = move_cmd(&env, at, f, AMSTERDAM, "2026-12-10");
    assert_refused(
        &env,
        "same municipality",
        &out,
        DATAERR,
        &["to:", "already the responsibility of GM0363"],
        &before,
    );
    let out = env.run(
        &[
            "--at",
            at,
            "move",
            f,
            "--to",
            ROTTERDAM,
            "--date",
            "2026-11-30",
            "--address-file",
            addr.to_str().unwrap(),
        ],
        None,
    );
    assert_refused(
        &env,
        "before enrolment",
        &out,
        DATAERR,
        &["date:", "before the family's enrolment"],
        &before,
    );
    let out = move_cmd(&env, at, f, ROTTERDAM, "2027-03-06");
    assert_refused(
        &env,
        "too far ahead",
        &out,
        DATAERR,
        &["date:", "max_move_ahead", "2027-03-05"],
        &before,
    );
    let out = move_cmd(&env, at, "F-22222222", ROTTERDAM, "2026-12-10");
    assert_refused(
        &env,
        "unknown family",
        &out,
        NOINPUT,
        &["family F-22222222 not found"],
        &before,
    );

    let h = moved(&env, at, f, ROTTERDAM, "2027-03-05");
    let h = h["handover"].as_str().unwrap();
    let before = env.counts();
    let out = env.run(
        &[
            "--at",
            at,
            "handover",
            "ack",
            h,
            "--municipality",
            AMSTERDAM,
        ],
        None,
    );
    assert_refused(
        &env,
        "wrong municipality",
        &out,
        DATAERR,
        &["municipality:", "addressed to GM0599"],
        &before,
    );
    let out = env.run(
        &["--at", at, "handover", "ack", h, "--municipality", "GM9999"],
        None,
    );
    assert_refused(
        &env,
        "unknown ack municipality",
        &out,
        DATAERR,
        &["municipality:", "outside the configured region"],
        &before,
    );
    let out = env.run(
        &[
            "--at",
            at,
            "handover",
            "ack",
            "H-22222222",
            "--municipality",
            ROTTERDAM,
        ],
        None,
    );
    assert_refused(
        &env,
        "unknown handover",
        &out,
        NOINPUT,
        &["handover H-22222222 not found"],
        &before,
    );
    // A move dated before the latest responsibility began (the pending one from 2027-03-05).
    let out = move_cmd(&env, at, f, DEN_HAAG, "2027-03-01");
    assert_refused(
        &env,
        "out of order",
        &out,
        DATAERR,
        &["date:", "moves are registered in date order"],
        &before,
    );

    env.ok(&[
        "--at",
        at,
        "handover",
        "ack",
        h,
        "--municipality",
        ROTTERDAM,
        "--by",
        "BADMARK-acker",
    ]);
    let before = env.counts();
    let out = env.run(
        &[
            "--at",
            at,
            "handover",
            "ack",
            h,
            "--municipality",
            ROTTERDAM,
        ],
        None,
    );
    assert_refused(
        &env,
        "acknowledged twice",
        &out,
        DATAERR,
        &["already acknowledged"],
        &before,
    );
}

/// A move with a future date: the sender stays responsible until the date (`family show`,
/// `checkin due`, reminders), the receiver from the date on; while pending the sender gets
/// a copy of the receiver's reminders, after acknowledgement not any more.
#[test]
fn a_future_move_keeps_the_sender_responsible_until_the_move_date() {
    let env = file_env();
    let fam = env.enrol(
        "2026-12-02T10:00:00+01:00",
        &family_body(AMSTERDAM, "standard", "2026-12-01", "FUTMARK"),
    );
    let f = fam["family"].as_str().unwrap();
    let wave = |n: usize| fam["checkins"][n]["id"].as_str().unwrap().to_string();
    // Waves: 2026-12-15, 2027-01-12, 2027-03-01, 2027-06-01 …
    let h = moved(
        &env,
        "2026-12-20T10:00:00+01:00",
        f,
        ROTTERDAM,
        "2027-02-01",
    );
    assert_eq!(h["effective_at"], "2027-01-31T23:00:00Z");
    let show = |at: &str| env.json(&["--at", at, "family", "show", f])["municipality"].clone();
    assert_eq!(show("2026-12-21T10:00:00+01:00"), AMSTERDAM);
    assert_eq!(show("2027-01-31T23:59:59+01:00"), AMSTERDAM);
    assert_eq!(show("2027-02-01T00:00:00+01:00"), ROTTERDAM);
    assert_eq!(
        env.sql(&format!("SELECT group_concat(m, ' ') FROM (SELECT municipality || ':' || COALESCE(CAST(valid_to AS TEXT), 'open') AS m FROM responsibilities r JOIN families f ON f.id = r.family_id WHERE f.ref = '{f}' ORDER BY r.id) o")),
        format!("{AMSTERDAM}:{} {ROTTERDAM}:open", local(2027, 2, 1, 0).timestamp())
    );

    let for_checkin = |id: &str| -> Vec<Value> {
        env.outbox()
            .into_iter()
            .filter(|m| m["key"].as_str().unwrap().contains(id))
            .collect()
    };
    // The January check-in is due before the move: Amsterdam's, no copy to itself.
    env.sweep("2027-01-10T10:00:00+01:00");
    let jan = for_checkin(&wave(1));
    assert!(!jan.is_empty());
    for m in &jan {
        assert_eq!(m["recipients"], serde_json::json!([TEAM_AMSTERDAM]), "{m}");
        assert_eq!(m["cc"], serde_json::json!([]), "{m}");
    }
    let due = env.json(&[
        "--at",
        "2027-01-10T10:00:00+01:00",
        "checkin",
        "due",
        "--municipality",
        AMSTERDAM,
    ]);
    assert!(
        due.as_array()
            .unwrap()
            .iter()
            .any(|c| c["checkin"] == wave(1).as_str())
    );
    // The March check-in is due after the move: Rotterdam's, Amsterdam copied while pending.
    env.sweep("2027-02-27T10:00:00+01:00");
    let mar = for_checkin(&wave(2));
    assert_eq!(mar.len(), 1, "{mar:?}");
    assert_eq!(mar[0]["kind"], "upcoming");
    assert_eq!(mar[0]["recipients"], serde_json::json!([TEAM_ROTTERDAM]));
    assert_eq!(mar[0]["cc"], serde_json::json!([TEAM_AMSTERDAM]));
    env.ok(&[
        "--at",
        "2027-02-28T10:00:00+01:00",
        "handover",
        "ack",
        h["handover"].as_str().unwrap(),
        "--municipality",
        ROTTERDAM,
    ]);
    env.sweep("2027-03-01T10:00:00+01:00");
    let mar = for_checkin(&wave(2));
    assert_eq!(mar.len(), 2);
    assert_eq!(mar[1]["kind"], "due");
    assert_eq!(mar[1]["recipients"], serde_json::json!([TEAM_ROTTERDAM]));
    assert_eq!(mar[1]["cc"], serde_json::json!([]));
}

/// A → B, then B → C before B acknowledged: one pending handover (to C), the first one
/// superseded and no longer acknowledgeable, B told as the sender; then C → A works.
#[test]
fn two_moves_in_a_row_then_a_move_back() {
    let env = file_env();
    let fam = env.enrol(
        "2026-12-02T10:00:00+01:00",
        &family_body(AMSTERDAM, "standard", "2026-12-01", "ROWMARK"),
    );
    let f = fam["family"].as_str().unwrap();
    let h1 = moved(
        &env,
        "2026-12-03T10:00:00+01:00",
        f,
        ROTTERDAM,
        "2026-12-10",
    );
    let h2 = moved(&env, "2026-12-04T10:00:00+01:00", f, DEN_HAAG, "2026-12-20");
    let (h1, h2s) = (
        h1["handover"].as_str().unwrap(),
        h2["handover"].as_str().unwrap(),
    );
    assert_eq!(h2["from"], ROTTERDAM);
    assert_eq!(h2["supersedes"], h1);
    let pending = env.json(&["handover", "list", "--pending"]);
    assert_eq!(pending.as_array().unwrap().len(), 1, "{pending}");
    assert_eq!(pending[0]["id"], h2s);
    assert_eq!(pending[0]["to"], DEN_HAAG);
    let all = env.json(&["handover", "list"]);
    assert_eq!(all[0]["status"], "superseded");
    assert_eq!(all[0]["superseded_by"], h2s);
    let notices: Vec<Value> = kinds(&env, "handover_notice");
    assert_eq!(notices.len(), 2);
    assert_eq!(
        notices[1]["recipients"],
        serde_json::json!([TEAM_ROTTERDAM])
    );
    let before = env.counts();
    let out = env.run(
        &[
            "--at",
            "2026-12-05T10:00:00+01:00",
            "handover",
            "ack",
            h1,
            "--municipality",
            ROTTERDAM,
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(DATAERR), "{}", stderr(&out));
    assert!(stderr(&out).contains("superseded"), "{}", stderr(&out));
    assert_eq!(env.counts(), before);

    let h3 = moved(
        &env,
        "2026-12-06T10:00:00+01:00",
        f,
        AMSTERDAM,
        "2027-01-05",
    );
    assert_eq!(h3["from"], DEN_HAAG);
    env.ok(&[
        "--at",
        "2026-12-07T10:00:00+01:00",
        "handover",
        "ack",
        h3["handover"].as_str().unwrap(),
        "--municipality",
        AMSTERDAM,
    ]);
    assert_eq!(
        env.json(&["handover", "list", "--pending"])
            .as_array()
            .unwrap()
            .len(),
        0
    );
    let show = |at: &str| env.json(&["--at", at, "family", "show", f])["municipality"].clone();
    assert_eq!(show("2026-12-09T12:00:00+01:00"), AMSTERDAM);
    assert_eq!(show("2026-12-15T12:00:00+01:00"), ROTTERDAM);
    assert_eq!(show("2026-12-25T12:00:00+01:00"), DEN_HAAG);
    assert_eq!(show("2027-01-06T12:00:00+01:00"), AMSTERDAM);
}

/// Den Haag has no age recipient: the email says the dossier is withheld, nothing is
/// attached, the operator is warned and `handover list --withheld` shows it. A new case
/// director in Rotterdam hands the dossier over the same way, encrypted to Rotterdam.
#[test]
fn withheld_dossier_is_listed_and_reassignment_hands_the_dossier_over() {
    let env = file_env();
    let a = env.enrol(
        "2026-12-02T10:00:00+01:00",
        &family_body(AMSTERDAM, "standard", "2026-12-01", "WITHMARK"),
    );
    let b = env.enrol(
        "2026-12-02T10:00:00+01:00",
        &family_body(ROTTERDAM, "standard", "2026-12-01", "REASMARK"),
    );
    let out = move_cmd(
        &env,
        "2026-12-03T10:00:00+01:00",
        a["family"].as_str().unwrap(),
        DEN_HAAG,
        "2026-12-03",
    );
    assert!(out.status.success());
    assert!(
        stderr(&out).contains("dossier withheld"),
        "{}",
        stderr(&out)
    );
    assert!(!stderr(&out).contains("WITHMARK"));
    let mail = kinds(&env, "handover");
    let to_dh = mail
        .iter()
        .find(|m| m["recipients"][0] == TEAM_DEN_HAAG)
        .unwrap();
    assert_eq!(
        env.sql(&format!(
            "SELECT COUNT(*) FROM outbox_attachments WHERE outbox_id = {}",
            to_dh["id"]
        )),
        "0"
    );
    assert!(
        env.sql(&format!(
            "SELECT body FROM outbox WHERE id = {}",
            to_dh["id"]
        ))
        .contains("WITHHELD")
    );
    let withheld = env.json(&["handover", "list", "--withheld"]);
    assert_eq!(withheld.as_array().unwrap().len(), 1);
    assert_eq!(withheld[0]["to"], DEN_HAAG);

    let director = env.path("director.json");
    std::fs::write(
        &director,
        r#"{"name": "REASMARK-new-director", "email": "new.director@team.example.org"}"#,
    )
    .unwrap();
    let fb = b["family"].as_str().unwrap();
    let out = env.json(&[
        "--at",
        "2026-12-04T10:00:00+01:00",
        "family",
        "reassign",
        fb,
        "--case-director-file",
        director.to_str().unwrap(),
    ]);
    assert_eq!(out["kind"], "reassign");
    assert_eq!(out["dossier"], "attached");
    let shown = env.json(&["--at", "2026-12-04T10:00:00+01:00", "family", "show", fb]);
    assert_eq!(
        shown["details"]["case_director"]["name"],
        "REASMARK-new-director"
    );
    let row = env.sql("SELECT a.outbox_id FROM outbox_attachments a JOIN outbox o ON o.id = a.outbox_id WHERE o.kind = 'handover' AND o.recipients LIKE '%rotterdam%'");
    let hexed = env.sql(&format!(
        "SELECT hex(bytes) FROM outbox_attachments WHERE outbox_id = {row}"
    ));
    let bytes: Vec<u8> = (0..hexed.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hexed[i..i + 2], 16).unwrap())
        .collect();
    let file = env.path("reassign.age");
    std::fs::write(&file, bytes).unwrap();
    let plain = age_decrypt(&env.path("rotterdam.key"), &file);
    assert!(plain.contains("REASMARK-new-director") && plain.contains("REASMARK-child-one"));
    for m in env.outbox() {
        assert!(!m.to_string().contains("MARK-"), "{m}");
    }
    // The new case director (a professional) is named in later reminders; nothing else.
    assert_eq!(env.sql("SELECT COUNT(*) FROM outbox WHERE instr(replace(body, 'REASMARK-new-director', ''), 'MARK-') > 0 OR instr(subject, 'MARK-') > 0"), "0");
}

// ---- the invariants over random histories -----------------------------------------------------

const MUNIS: [&str; 3] = [AMSTERDAM, ROTTERDAM, DEN_HAAG];

fn team(code: &str) -> &'static str {
    match code {
        AMSTERDAM => TEAM_AMSTERDAM,
        ROTTERDAM => TEAM_ROTTERDAM,
        _ => TEAM_DEN_HAAG,
    }
}

fn coordinator(code: &str) -> &'static str {
    match code {
        AMSTERDAM => COORD_AMSTERDAM,
        ROTTERDAM => COORD_ROTTERDAM,
        _ => COORD_DEN_HAAG,
    }
}

/// Checks every invariant at this point; `fresh` are the outbox ids created by the last
/// sweep, whose recipients must match the state they were made in.
async fn check_invariants(
    app: &service::App,
    families: &[(i64, String)],
    fresh: &[store::outbox::OutboxEntry],
    ctx: &str,
) {
    let mut conn = app.store.pool().acquire().await.unwrap();
    for (id, reference) in families {
        let rows = store::families::responsibilities(&mut conn, *id)
            .await
            .unwrap();
        assert!(!rows.is_empty(), "{ctx}");
        assert_eq!(
            rows.iter().filter(|r| r.valid_to.is_none()).count(),
            1,
            "{ctx}: {rows:?}"
        );
        assert!(rows.last().unwrap().valid_to.is_none(), "{ctx}");
        for w in rows.windows(2) {
            assert_eq!(
                w[0].valid_to,
                Some(w[1].valid_from),
                "{ctx}: gap or overlap {rows:?}"
            );
            assert!(w[0].valid_from < w[1].valid_from, "{ctx}");
        }
        // Exactly one responsible municipality at every boundary and in between, and the
        // family row agrees.
        let mut instants: Vec<i64> = rows
            .iter()
            .flat_map(|r| [r.valid_from - 1, r.valid_from, r.valid_from + 3600])
            .collect();
        instants.push(app.now().timestamp());
        for t in instants {
            let containing: Vec<_> = rows
                .iter()
                .filter(|r| r.valid_from <= t && r.valid_to.is_none_or(|to| t < to))
                .collect();
            let expected = match containing.as_slice() {
                [one] => one.municipality.clone(),
                [] if t < rows[0].valid_from => rows[0].municipality.clone(),
                other => panic!("{ctx}: {} responsible at {t}: {other:?}", other.len()),
            };
            let f = store::families::by_ref(&mut conn, reference, t)
                .await
                .unwrap()
                .unwrap();
            assert_eq!(f.municipality, expected, "{ctx}: at {t}");
        }
        // At most one open move, and it points at the last responsibility.
        let open: Vec<_> = store::handovers::of_family(&mut conn, *id)
            .await
            .unwrap()
            .into_iter()
            .filter(|h| h.kind == "move" && (h.status == "pending" || h.status == "escalated"))
            .collect();
        assert!(open.len() <= 1, "{ctx}");
        if let Some(h) = open.first() {
            assert_eq!(
                h.to_municipality,
                rows.last().unwrap().municipality,
                "{ctx}"
            );
            assert_eq!(
                h.from_municipality,
                rows[rows.len() - 2].municipality,
                "{ctx}"
            );
        }
    }
    // Every fresh reminder went to exactly the team responsible at its due instant, with a
    // copy to the sender of a pending move (and only then).
    for m in fresh {
        if !["upcoming", "due", "overdue", "escalation"].contains(&m.kind.as_str()) {
            continue;
        }
        let parts: Vec<&str> = m.key.split(':').collect();
        let due: i64 = parts[3].parse().unwrap();
        let family = m.family.clone().unwrap();
        let (fid, _) = families.iter().find(|(_, r)| *r == family).unwrap();
        let rows = store::families::responsibilities(&mut conn, *fid)
            .await
            .unwrap();
        let resp = rows
            .iter()
            .rev()
            .find(|r| r.valid_from <= due)
            .unwrap_or(&rows[0])
            .municipality
            .clone();
        let open = store::handovers::open_move(&mut conn, *fid).await.unwrap();
        let mut cc: Vec<String> = Vec::new();
        let to = if m.kind == "escalation" {
            cc.push(team(&resp).to_string());
            vec![coordinator(&resp).to_string()]
        } else {
            vec![team(&resp).to_string()]
        };
        if let Some(h) = open
            && h.from_municipality != resp
        {
            cc.push(team(&h.from_municipality).to_string());
        }
        assert_eq!(m.recipients, to, "{ctx}: {m:?}");
        assert_eq!(m.cc, cc, "{ctx}: {m:?}");
    }
    // No slot is reminded twice for the same stage.
    let all = store::outbox::list(&mut conn, false).await.unwrap();
    let mut keys: Vec<&str> = all.iter().map(|m| m.key.as_str()).collect();
    keys.sort();
    let n = keys.len();
    keys.dedup();
    assert_eq!(keys.len(), n, "{ctx}");
}

/// 30 seeds × 15 random steps of moves (to any municipality, any date), acknowledgements
/// (right and wrong municipality) and sweeps, driven through the library on a manual clock.
/// After every step: one responsible municipality at every instant, reminders only to the
/// responsible team (+ the sender's copy while pending), at most one open move per family.
#[tokio::test]
async fn random_moves_acknowledgements_and_sweeps_keep_one_responsible_team() {
    let (mut moves, mut acks, mut reminders) = (0, 0, 0);
    for seed in 0..30u64 {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let env = file_env();
        let clock = ManualClock::new(local(2026, 12, 2, 10));
        let app = env.app(Arc::new(clock.clone())).await;
        let mut families = Vec::new();
        for (i, muni) in [AMSTERDAM, ROTTERDAM].iter().enumerate() {
            let body = family_body(muni, "standard", "2026-12-01", &format!("PROP{i}"));
            let e: nazorg::domain::enrolment::Enrolment =
                nazorg::domain::parse_json(body.to_string().as_bytes()).unwrap();
            let out = service::family::enrol(&app, &e).await.unwrap();
            let mut conn = app.store.pool().acquire().await.unwrap();
            let row = store::families::by_ref(&mut conn, &out.family, 0)
                .await
                .unwrap()
                .unwrap();
            families.push((row.id, out.family));
        }
        let mut now = local(2026, 12, 2, 10);
        for step in 0..15 {
            let ctx = format!("seed {seed} step {step}");
            let mut fresh = Vec::new();
            match rng.gen_range(0..10) {
                0..=3 => {
                    now += Duration::hours(rng.gen_range(6..24 * 9));
                    clock.set(now);
                    let mut conn = app.store.pool().acquire().await.unwrap();
                    let before = store::outbox::list(&mut conn, false).await.unwrap().len();
                    drop(conn);
                    nazorg::sweep::sweep(&app, now).await.unwrap();
                    let mut conn = app.store.pool().acquire().await.unwrap();
                    fresh = store::outbox::list(&mut conn, false)
                        .await
                        .unwrap()
                        .split_off(before);
                }
                4..=7 => {
                    let (_, f) = &families[rng.gen_range(0..families.len())];
                    let to = MUNIS[rng.gen_range(0..MUNIS.len())];
                    let date = now.with_timezone(&Amsterdam).date_naive()
                        + Duration::days(rng.gen_range(-3..40));
                    let req = service::handover::MoveRequest {
                        family: f.clone(),
                        to: to.into(),
                        date,
                        address: None,
                    };
                    match service::handover::move_family(&app, &req).await {
                        Ok(h) => {
                            assert_eq!(h.to, to, "{ctx}");
                            moves += 1;
                        }
                        Err(OpError::Invalid(e)) => {
                            assert!(
                                e.iter().all(|e| e.field == "to" || e.field == "date"),
                                "{ctx}: {e:?}"
                            )
                        }
                        Err(other) => panic!("{ctx}: {other}"),
                    }
                }
                _ => {
                    let pending = service::handover::list(
                        &app,
                        service::handover::ListFilter {
                            pending: true,
                            ..Default::default()
                        },
                    )
                    .await
                    .unwrap();
                    if let Some(h) = pending.get(rng.gen_range(0..pending.len().max(1))) {
                        let right = rng.gen_bool(0.8);
                        let who = if right {
                            h.to.clone()
                        } else {
                            MUNIS.iter().find(|m| **m != h.to).unwrap().to_string()
                        };
                        let r = service::handover::ack(&app, &h.id, &who, Some("PROP-acker")).await;
                        assert_eq!(r.is_ok(), right, "{ctx}: {r:?}");
                        acks += usize::from(right);
                    }
                }
            }
            reminders += fresh.len();
            check_invariants(&app, &families, &fresh, &ctx).await;
        }
        app.store.close().await;
    }
    // The random histories really moved, acknowledged and reminded.
    assert!(
        moves > 60 && acks > 10 && reminders > 50,
        "{moves} {acks} {reminders}"
    );
}
