//! Bad input is refused with a message that names the field, a sysexits code, and no trace
//! in the database; personal values from the input never reach stderr.

use crate::support::env::*;
use serde_json::{Value, json};
use std::io::Write;
use std::process::{Output, Stdio};

/// Planted in every personal field of the bodies below; must never show up in stderr.
const MARKER: &str = "ZZSECRET";
const ENROL_AT: &str = "2026-12-02T10:00:00+01:00";
const DATAERR: i32 = 65;
const NOINPUT: i32 = 66;
const CONFIG: i32 = 78;

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Runs `args` with `input` on stdin. Unlike `TestEnv::run`, a child that stops reading
/// early (oversized input) is not an error of the test.
fn run_stdin(env: &TestEnv, args: &[&str], input: &[u8]) -> Output {
    let mut child = env
        .command(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    out
}

/// Asserts a refusal: the exit code, every `needles` substring in stderr, no marker in
/// stderr, and the same row counts as `before`.
fn assert_refused(
    env: &TestEnv,
    case: &str,
    out: &Output,
    code: i32,
    needles: &[&str],
    before: &str,
) {
    let err = stderr(out);
    assert_eq!(
        out.status.code(),
        Some(code),
        "{case}: exit code; stderr:\n{err}"
    );
    for n in needles {
        assert!(err.contains(n), "{case}: stderr lacks {n:?}:\n{err}");
    }
    assert!(
        !err.contains(MARKER),
        "{case}: personal value leaked to stderr:\n{err}"
    );
    assert!(
        out.stdout.is_empty(),
        "{case}: printed data on failure: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(env.counts(), before, "{case}: the database changed");
}

fn body() -> Value {
    family_body(AMSTERDAM, "standard", "2026-12-01", MARKER)
}

fn with(mut v: Value, pointer: &str, new: Value) -> Value {
    *v.pointer_mut(pointer)
        .unwrap_or_else(|| panic!("no {pointer} in body")) = new;
    v
}

fn without(mut v: Value, pointer: &str) -> Value {
    let (parent, key) = pointer.rsplit_once('/').unwrap();
    v.pointer_mut(parent)
        .unwrap()
        .as_object_mut()
        .unwrap()
        .remove(key)
        .unwrap();
    v
}

const ENROL: &[&str] = &["--at", ENROL_AT, "family", "enroll", "--file", "-"];

/// Every way an enrolment can be wrong is refused before anything is stored, naming the
/// field and never the value.
#[test]
fn enrolment_refuses_bad_bodies_and_stores_nothing() {
    let env = TestEnv::new();
    // One good family first, so "unchanged" is about a database with rows in it.
    env.enrol(ENROL_AT, &body());
    let good = body().to_string();
    let cases: Vec<(&str, Vec<u8>, Vec<&str>)> = vec![
        ("truncated JSON", good.as_bytes()[..good.len() / 2].to_vec(), vec!["malformed JSON"]),
        ("trailing garbage", format!("{good} {MARKER}").into_bytes(), vec!["(body)", "malformed JSON"]),
        (
            "wrong type",
            with(body(), "/interpreter_needed", json!(format!("{MARKER}-yes"))).to_string().into_bytes(),
            vec!["interpreter_needed", "expected a boolean"],
        ),
        (
            "wrong type in a member",
            with(body(), "/members/0/name", json!(42)).to_string().into_bytes(),
            vec!["members[0].name", "expected a string"],
        ),
        (
            "unknown field",
            with(body(), "/members/1", json!({"role": "child", "name": "x", "birth_date": "2016-07-19", "nickname": MARKER}))
                .to_string()
                .into_bytes(),
            vec!["unknown field", "nickname"],
        ),
        (
            "unknown top-level field",
            {
                let mut v = body();
                v["bsn"] = json!(format!("{MARKER}-123456782"));
                v.to_string().into_bytes()
            },
            vec!["unknown field", "bsn"],
        ),
        (
            "unknown enum value",
            with(body(), "/members/0/role", json!(MARKER)).to_string().into_bytes(),
            vec!["members[0].role", "not an allowed value"],
        ),
        (
            "unknown municipality",
            with(body(), "/municipality", json!("GM9999")).to_string().into_bytes(),
            vec!["municipality", "unknown municipality", "GM9999"],
        ),
        (
            "unknown plan",
            with(body(), "/plan", json!("weekly")).to_string().into_bytes(),
            vec!["plan", "unknown plan", "weekly"],
        ),
        (
            "child without birth date",
            without(body(), "/members/1/birth_date").to_string().into_bytes(),
            vec!["members[1].birth_date", "required for a child"],
        ),
        (
            "episode after now",
            with(body(), "/episode/date", json!("2026-12-03")).to_string().into_bytes(),
            vec!["episode.date", "in the future"],
        ),
        (
            "birth date before 1900",
            with(body(), "/members/0/birth_date", json!("1899-12-31")).to_string().into_bytes(),
            vec!["members[0].birth_date", "before 1900"],
        ),
        (
            "impossible date",
            with(body(), "/members/2/birth_date", json!("2017-02-30")).to_string().into_bytes(),
            vec!["members[2].birth_date"],
        ),
        (
            "impossible episode date",
            with(body(), "/episode/date", json!("2027-02-30")).to_string().into_bytes(),
            vec!["episode.date"],
        ),
        (
            "empty members",
            with(body(), "/members", json!([])).to_string().into_bytes(),
            vec!["members", "at least one member"],
        ),
        (
            "missing members",
            without(body(), "/members").to_string().into_bytes(),
            vec!["missing field", "members"],
        ),
        ("not an object", json!(MARKER).to_string().into_bytes(), vec!["(body)", "expected struct Enrolment"]),
        ("empty input", Vec::new(), vec!["(body)", "malformed JSON"]),
    ];
    let before = env.counts();
    for (case, input, needles) in &cases {
        let out = run_stdin(&env, ENROL, input);
        assert_refused(&env, case, &out, DATAERR, needles, &before);
        // The offending value is not echoed either (the impossible date is personal).
        assert!(
            !stderr(&out).contains("2017-02-30"),
            "{case}: {}",
            stderr(&out)
        );
    }
    // Several mistakes at once are all named, in one refusal.
    let several = with(
        with(body(), "/plan", json!("weekly")),
        "/municipality",
        json!("GM9999"),
    );
    let several = without(several, "/members/2/birth_date");
    let out = run_stdin(&env, ENROL, several.to_string().as_bytes());
    assert_refused(
        &env,
        "several",
        &out,
        DATAERR,
        &["municipality", "plan", "members[2].birth_date"],
        &before,
    );
}

/// Over 1 MiB on stdin is refused before parsing; a file too.
#[test]
fn enrolment_refuses_input_over_one_mebibyte() {
    let env = TestEnv::new();
    // A family first: on a fresh database the first command that opens the store creates
    // the first KEK row, even when it then refuses the input; that is not this test's subject.
    env.enrol(ENROL_AT, &body());
    let before = env.counts();
    // Valid JSON in every other respect: only the size is wrong.
    let huge = with(
        body(),
        "/notes",
        json!(MARKER.repeat(1024 * 1024 / MARKER.len() + 10)),
    );
    let bytes = huge.to_string().into_bytes();
    assert!(bytes.len() > 1024 * 1024);
    let out = run_stdin(&env, ENROL, &bytes);
    assert_refused(
        &env,
        "stdin over 1 MiB",
        &out,
        DATAERR,
        &["input larger than 1048576 bytes"],
        &before,
    );
    let file = env.path("huge.json");
    std::fs::write(&file, &bytes).unwrap();
    let out = env.run(
        &[
            "--at",
            ENROL_AT,
            "family",
            "enroll",
            "--file",
            file.to_str().unwrap(),
        ],
        None,
    );
    assert_refused(
        &env,
        "file over 1 MiB",
        &out,
        DATAERR,
        &["input larger than 1048576 bytes"],
        &before,
    );
    // Just under the limit is parsed (and then refused for the long note, by field).
    let under = with(body(), "/notes", json!("n".repeat(1024 * 1024 - 2048)));
    let out = run_stdin(&env, ENROL, under.to_string().as_bytes());
    assert_refused(
        &env,
        "notes too long",
        &out,
        DATAERR,
        &["notes", "longer than"],
        &before,
    );
}

/// A family with its check-ins and members, for the recording cases.
struct Fam {
    checkin: String,
    adult: String,
    child: String,
    other_child: String,
}

fn refs(fam: &Value) -> (Vec<String>, Vec<String>) {
    let ids = fam["checkins"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect();
    let members = fam["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["ref"].as_str().unwrap().to_string())
        .collect();
    (ids, members)
}

fn record_body(checkin: &str, at: &str, children: &[&str]) -> Value {
    json!({
        "checkin": checkin,
        "at": at,
        "outcome": "reached",
        "mode": "home_visit",
        "family_observations": {"stressors": ["debts"]},
        "children": children.iter().map(|m| json!({"member": m, "observations": {"wellbeing": 7}})).collect::<Vec<_>>(),
        "notes": format!("{MARKER}-record-note"),
    })
}

const RECORD_AT: &str = "2026-12-15T12:00:00+01:00";
const CONTACT_AT: &str = "2026-12-15T11:00:00+01:00";

fn setup_recording(env: &TestEnv) -> Fam {
    let a = env.enrol(ENROL_AT, &body());
    let b = env.enrol(
        ENROL_AT,
        &family_body(ROTTERDAM, "standard", "2026-11-30", "ZZSECRETB"),
    );
    let (ids, members) = refs(&a);
    let (_, b_members) = refs(&b);
    Fam {
        checkin: ids[0].clone(),
        adult: members[0].clone(),
        child: members[1].clone(),
        other_child: b_members[1].clone(),
    }
}

/// Every way a record can be wrong is refused with the field named; nothing is stored.
#[test]
fn recording_refuses_bad_records_and_stores_nothing() {
    let env = TestEnv::new();
    let f = setup_recording(&env);
    let good = record_body(&f.checkin, CONTACT_AT, &[&f.child]);
    let cases: Vec<(&str, Value, i32, Vec<&str>)> = vec![
        (
            "unknown check-in",
            with(good.clone(), "/checkin", json!("C-23456789AB")),
            NOINPUT,
            vec!["check-in C-23456789AB not found"],
        ),
        (
            "garbage id",
            with(good.clone(), "/checkin", json!(format!("{MARKER}-1"))),
            DATAERR,
            vec!["checkin", "not a check-in id"],
        ),
        (
            "lowercase id",
            with(good.clone(), "/checkin", json!(f.checkin.to_lowercase())),
            DATAERR,
            vec!["checkin", "not a check-in id"],
        ),
        (
            "at in the future",
            with(good.clone(), "/at", json!("2026-12-15T12:00:01+01:00")),
            DATAERR,
            vec!["at", "in the future"],
        ),
        (
            "at before the plan start",
            with(good.clone(), "/at", json!("2026-11-30T23:30:00+01:00")),
            DATAERR,
            vec!["at", "before the start"],
        ),
        (
            "at without offset",
            with(good.clone(), "/at", json!("2026-12-15T11:00:00")),
            DATAERR,
            vec!["at"],
        ),
        (
            "unknown outcome",
            with(good.clone(), "/outcome", json!(MARKER)),
            DATAERR,
            vec!["outcome", "not an allowed value"],
        ),
        (
            "unknown mode",
            with(good.clone(), "/mode", json!("carrier_pigeon")),
            DATAERR,
            vec!["mode", "not an allowed value"],
        ),
        (
            "adult as child",
            record_body(&f.checkin, CONTACT_AT, &[&f.child, &f.adult]),
            DATAERR,
            vec!["children[1].member", "is not a child"],
        ),
        (
            "child of another family",
            record_body(&f.checkin, CONTACT_AT, &[&f.other_child]),
            DATAERR,
            vec![
                "children[0].member",
                "not a member of this check-in's family",
            ],
        ),
        (
            "same child twice",
            record_body(&f.checkin, CONTACT_AT, &[&f.child, &f.child]),
            DATAERR,
            vec!["children[1].member", "listed twice"],
        ),
        (
            "garbage member",
            with(
                good.clone(),
                "/children/0/member",
                json!(format!("{MARKER}-kid")),
            ),
            DATAERR,
            vec!["children[0].member", "not a member reference"],
        ),
        (
            "unknown field",
            {
                let mut v = good.clone();
                v["child_name"] = json!(MARKER);
                v
            },
            DATAERR,
            vec!["unknown field", "child_name"],
        ),
        (
            "observation of a wrong type",
            with(
                good.clone(),
                "/children/0/observations",
                json!({"wellbeing": {"name": MARKER}}),
            ),
            DATAERR,
            vec!["children[0].observations.wellbeing"],
        ),
    ];
    let before = env.counts();
    for (case, body, code, needles) in &cases {
        let out = env.record(RECORD_AT, body);
        assert_refused(&env, case, &out, *code, needles, &before);
    }
    // The good record still goes through afterwards: the refusals left no half state.
    let out = env.record(RECORD_AT, &good);
    assert!(out.status.success(), "{}", stderr(&out));
}

/// A check-in is recorded once; the second attempt is refused (65) and changes nothing.
#[test]
fn recording_twice_is_refused() {
    let env = TestEnv::new();
    let f = setup_recording(&env);
    let first = record_body(&f.checkin, CONTACT_AT, &[&f.child]);
    let out = env.record(RECORD_AT, &first);
    assert!(out.status.success(), "{}", stderr(&out));
    let before = env.counts();
    // The same body, and a different one for the same check-in.
    let second = with(
        with(
            with(first.clone(), "/outcome", json!("declined")),
            "/children",
            json!([]),
        ),
        "/family_observations",
        json!({}),
    );
    for (case, body) in [("same body", &first), ("different body", &second)] {
        let out = env.record("2026-12-16T12:00:00+01:00", body);
        assert_refused(
            &env,
            case,
            &out,
            DATAERR,
            &["already recorded", &f.checkin],
            &before,
        );
    }
}

/// `family show` and `family close` of a family that does not exist: 66, nothing changes.
#[test]
fn unknown_family_is_not_found() {
    let env = TestEnv::new();
    env.enrol(ENROL_AT, &body());
    let before = env.counts();
    for (case, args) in [
        ("show well-formed", vec!["family", "show", "F-23456789"]),
        ("show garbage", vec!["family", "show", "not-a-ref"]),
        (
            "close well-formed",
            vec![
                "family",
                "close",
                "F-23456789",
                "--reason",
                "family_moved_abroad",
                "--safety-improved",
                "partly",
                "--professionals",
                "2",
            ],
        ),
        (
            "close garbage",
            vec![
                "family",
                "close",
                "F-",
                "--reason",
                "family_moved_abroad",
                "--safety-improved",
                "yes",
                "--professionals",
                "1",
            ],
        ),
    ] {
        let out = env.run(&args, None);
        assert_refused(&env, case, &out, NOINPUT, &["family", "not found"], &before);
    }
    let out = env.run(&["family", "show", "F-23456789"], None);
    assert!(stderr(&out).contains("F-23456789"), "{}", stderr(&out));
}

/// With the database file gone, commands say to run `nazorg migrate` and do not create
/// an empty database behind the operator's back.
#[test]
fn missing_database_says_run_migrate_and_creates_nothing() {
    let env = TestEnv::new();
    let var = env.path("var");
    // On PostgreSQL the equivalent of a missing file is a database without our tables.
    let pg = env.on_postgres();
    if pg {
        env.sql("DROP SCHEMA public CASCADE; CREATE SCHEMA public");
    }
    let tables =
        || env.sql("SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = 'public'");
    for entry in std::fs::read_dir(&var).unwrap() {
        let p = entry.unwrap().path();
        if p.file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("nazorg.db")
        {
            std::fs::remove_file(&p).unwrap();
        }
    }
    let db_files = || -> Vec<String> {
        std::fs::read_dir(&var)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("nazorg.db"))
            .collect()
    };
    assert!(db_files().is_empty());
    let enrol_body = body().to_string();
    let record = record_body("C-23456789AB", CONTACT_AT, &[]).to_string();
    type Case<'a> = (&'a str, Vec<&'a str>, Option<&'a [u8]>);
    let cases: Vec<Case> = vec![
        ("checkin due", vec!["checkin", "due"], None),
        ("family show", vec!["family", "show", "F-23456789"], None),
        (
            "family close",
            vec![
                "family",
                "close",
                "F-23456789",
                "--reason",
                "family_moved_abroad",
                "--safety-improved",
                "partly",
                "--professionals",
                "2",
            ],
            None,
        ),
        ("outbox list", vec!["outbox", "list"], None),
        ("sweep", vec!["--at", RECORD_AT, "sweep"], None),
        ("enroll", ENROL.to_vec(), Some(enrol_body.as_bytes())),
        (
            "record",
            vec!["--at", RECORD_AT, "checkin", "record", "--file", "-"],
            Some(record.as_bytes()),
        ),
    ];
    for (case, args, input) in cases {
        let out = match input {
            Some(i) => run_stdin(&env, &args, i),
            None => env.run(&args, None),
        };
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(CONFIG), "{case}: {err}");
        if pg {
            assert!(err.contains("no Nazorg tables"), "{case}: {err}");
            assert_eq!(tables(), "0", "{case} created tables");
        } else {
            assert!(err.contains("no database at"), "{case}: {err}");
        }
        assert!(err.contains("run `nazorg migrate`"), "{case}: {err}");
        assert!(!err.contains(MARKER), "{case}: {err}");
        assert!(db_files().is_empty(), "{case} created {:?}", db_files());
    }
    // `migrate` brings it back.
    env.ok(&["migrate"]);
    if pg {
        assert_ne!(tables(), "0");
    } else {
        assert!(env.db_path().is_file());
    }
}

/// A bad cron and a bad duration: `check-config` exits 78 naming each key path; other
/// commands refuse the config the same way and leave the database alone.
#[test]
fn bad_config_names_each_key() {
    let env = TestEnv::new();
    env.enrol(ENROL_AT, &body());
    let before = env.counts();
    let text = std::fs::read_to_string(&env.config_path).unwrap();
    let bad = text
        .replace("sweep = \"0 0 3 1 1 *\"", "sweep = \"every five minutes\"")
        .replace("lead = \"P2D\"", "lead = \"2 days\"");
    assert_ne!(bad, text);
    std::fs::write(&env.config_path, &bad).unwrap();
    let out = env.run(&["check-config"], None);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(CONFIG), "{err}");
    assert!(err.contains("schedule.sweep"), "{err}");
    assert!(err.contains("reminders.lead"), "{err}");
    assert!(err.contains(env.config_path.to_str().unwrap()), "{err}");
    // Each problem on its own line.
    let lines: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("schedule.sweep") || l.contains("reminders.lead"))
        .collect();
    assert_eq!(lines.len(), 2, "{err}");
    for args in [
        vec!["checkin", "due"],
        vec!["--at", RECORD_AT, "sweep"],
        vec!["--json", "check-config"],
    ] {
        let out = env.run(&args, None);
        assert_eq!(
            out.status.code(),
            Some(CONFIG),
            "{args:?}: {}",
            stderr(&out)
        );
        assert!(
            stderr(&out).contains("reminders.lead"),
            "{args:?}: {}",
            stderr(&out)
        );
    }
    let out = run_stdin(&env, ENROL, body().to_string().as_bytes());
    assert_refused(
        &env,
        "enrol with bad config",
        &out,
        CONFIG,
        &["schedule.sweep", "reminders.lead"],
        &before,
    );
    assert_eq!(env.counts(), before);
}
