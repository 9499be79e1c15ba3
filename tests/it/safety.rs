//! Issue 10 items 7 and 9: mail subjects and logs carry no evidence; safety notices are
//! never silently lost; tokens expire by default and record their use; the daemon cannot
//! be dumped; removing a recipient warns about old copies.

use crate::support::daemon::Daemon;
use crate::support::env::*;
use crate::support::http;
use crate::support::smtp::SmtpServer;
use serde_json::{Value, json};
use std::io::Write;
use std::net::SocketAddr;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

/// Every rule code the shipped config defines.
fn rule_codes() -> Vec<String> {
    let example = include_str!("../../config/nazorg.example.toml");
    let mut codes = Vec::new();
    let mut in_rule = false;
    for line in example.lines() {
        let l = line.trim();
        if l.starts_with("[[") {
            in_rule = l == "[[rules]]";
        } else if in_rule && let Some(v) = l.strip_prefix("code = ") {
            codes.push(v.trim_matches('"').to_string());
        }
    }
    assert!(codes.len() >= 5, "{codes:?}");
    codes
}

/// Runs the CLI with `NAZORG_LOG=debug`, optionally with `stdin`.
fn run_debug(env: &TestEnv, args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut cmd = env.command(args);
    cmd.env("NAZORG_LOG", "debug")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(bytes) = stdin {
        input.write_all(bytes).unwrap();
    }
    drop(input);
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "nazorg {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A red alert's subject says a signal needs action today and names the family only; the
/// debug log of enrolling, recording the red signal and the sweeps (which raise
/// out-of-sight flags and send the alert) names no rule code, language or interpreter need.
#[test]
fn red_alert_subject_and_logs_carry_no_evidence() {
    let env = TestEnv::new();
    let body = family_body(AMSTERDAM, "standard", "2026-12-01", "LOGMARK");
    assert_eq!(body["language"], "ar");
    assert_eq!(body["interpreter_needed"], true);
    let mut logs = String::new();
    let out = run_debug(
        &env,
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
    );
    logs.push_str(&String::from_utf8_lossy(&out.stderr));
    let fam: Value = serde_json::from_slice(&out.stdout).unwrap();
    let f = fam["family"].as_str().unwrap();
    let record = json!({"checkin": fam["checkins"][0]["id"], "at": "2026-12-15T09:00:00+01:00",
        "outcome": "reached", "mode": "home_visit",
        "children": [{"member": fam["members"][1]["ref"], "observations": {"new_incident": true}}]});
    let out = run_debug(
        &env,
        &[
            "--at",
            "2026-12-15T10:00:00+01:00",
            "checkin",
            "record",
            "--file",
            "-",
        ],
        Some(record.to_string().as_bytes()),
    );
    logs.push_str(&String::from_utf8_lossy(&out.stderr));
    // By September three check-ins in a row are overdue: the sweep raises out_of_sight.
    for at in ["2026-12-15T10:05:00+01:00", "2027-09-15T10:00:00+01:00"] {
        let out = run_debug(&env, &["--at", at, "sweep"], None);
        logs.push_str(&String::from_utf8_lossy(&out.stderr));
    }
    assert!(logs.contains("flag raised"), "debug logging is on: {logs}");
    assert!(
        env.sql("SELECT COUNT(*) FROM flags WHERE rule = 'out_of_sight'") != "0",
        "the sweep raised a flag too"
    );
    for code in rule_codes() {
        assert!(
            !logs.contains(&code),
            "rule code {code} in the log:\n{logs}"
        );
    }
    // Field names, not column names (sqlx's debug log shows SQL text without values).
    for word in [
        "rule=",
        "severity=",
        "language=",
        "interpreter=",
        "interpreter_needed=",
    ] {
        assert!(!logs.contains(word), "{word} in the log:\n{logs}");
    }
    let tokens: Vec<&str> = logs
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|t| *t == "ar")
        .collect();
    assert!(tokens.is_empty(), "the language in the log:\n{logs}");

    let alerts: Vec<Value> = env
        .outbox()
        .into_iter()
        .filter(|m| m["kind"] == "alert")
        .collect();
    assert_eq!(alerts.len(), 2, "new_incident and out_of_sight");
    let subject = format!("[Nazorg] Signal needs action today: family {f}");
    for a in &alerts {
        assert_eq!(a["subject"], subject.as_str());
        assert_eq!(a["status"], "sent");
    }
    let mail = env
        .eml_files()
        .into_iter()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .find(|m| m.contains("X-Nazorg-Key: alert:"))
        .unwrap();
    assert!(mail.contains(&format!("Subject: {subject}")), "{mail}");
}

fn daemon_addr(d: &mut Daemon) -> SocketAddr {
    d.wait_log("nazorg daemon ready", Duration::from_secs(20));
    d.log()
        .lines()
        .find(|l| l.contains("api listening"))
        .and_then(|l| l.split("addr=").nth(1))
        .and_then(|a| a.split_whitespace().next())
        .unwrap()
        .parse()
        .unwrap()
}

/// A red alert the relay refuses for good (550) goes once more, to the municipality's
/// coordinator, in the same transaction as marking it failed; `outbox list --failed`
/// shows the original; `/metrics` counts the fallback; a later dispatch adds none.
#[test]
fn a_red_alert_that_fails_for_good_falls_back_to_the_coordinator() {
    let server = SmtpServer::start_rejecting(&[TEAM_AMSTERDAM]);
    let env = TestEnv::with_mail(&format!("transport = \"smtp\"\nurl = \"{}\"", server.url()));
    let fam = env.enrol(
        "2026-12-02T10:00:00+01:00",
        &family_body(AMSTERDAM, "standard", "2026-12-01", "FALLMARK"),
    );
    let f = fam["family"].as_str().unwrap();
    let out = env.record(
        "2026-12-15T10:00:00+01:00",
        &json!({"checkin": fam["checkins"][0]["id"], "at": "2026-12-15T09:00:00+01:00",
            "outcome": "reached", "mode": "phone",
            "children": [{"member": fam["members"][1]["ref"], "observations": {"new_incident": true}}]}),
    );
    assert!(out.status.success());
    let s = env.sweep("2026-12-15T10:01:00+01:00");
    assert_eq!(s["dispatch"]["fallbacks"], 1, "{s}");

    let failed = env.json(&["outbox", "list", "--failed"]);
    let failed = failed.as_array().unwrap();
    let alert = failed
        .iter()
        .find(|m| m["kind"] == "alert")
        .expect("the failed alert is listed");
    assert_eq!(alert["status"], "failed");
    assert!(
        alert["last_error"].as_str().unwrap().contains("550"),
        "{alert}"
    );
    let fallbacks: Vec<Value> = env
        .outbox()
        .into_iter()
        .filter(|m| m["kind"] == "safety_fallback")
        .collect();
    assert_eq!(fallbacks.len(), 1);
    assert_eq!(fallbacks[0]["recipients"], json!([COORD_AMSTERDAM]));
    assert_eq!(fallbacks[0]["status"], "sent");
    assert_eq!(fallbacks[0]["family"], f);
    let received: Vec<String> = server
        .messages()
        .into_iter()
        .filter(|m| m.contains(&format!("To: {COORD_AMSTERDAM}")))
        .collect();
    assert_eq!(received.len(), 1, "{received:#?}");
    assert!(
        received[0].contains("NOT DELIVERED: [Nazorg] Signal needs action today"),
        "{}",
        received[0]
    );
    assert!(
        received[0].contains(TEAM_AMSTERDAM),
        "names who missed it: {}",
        received[0]
    );

    // Once only. (Later the same day: from the next working day on, the unacknowledged red
    // flag is alerted again and escalated, new notices with fallbacks of their own.)
    let s = env.sweep("2026-12-15T16:00:00+01:00");
    assert_eq!(s["dispatch"]["fallbacks"], 0, "{s}");
    assert_eq!(
        env.sql("SELECT COUNT(*) FROM outbox WHERE kind = 'safety_fallback'"),
        "1"
    );

    let mut d = Daemon::spawn(
        &env,
        "serve",
        &["--at", "2026-12-15T17:00:00+01:00", "serve"],
        None,
    );
    let addr = daemon_addr(&mut d);
    let metrics = http::get(addr, "/metrics", None).text();
    assert!(
        metrics.contains("# TYPE nazorg_safety_fallbacks_total counter"),
        "{metrics}"
    );
    assert!(
        metrics.contains("\nnazorg_safety_fallbacks_total 1\n"),
        "{metrics}"
    );
    d.terminate();
}

/// A handover escalation whose attempts run out (the relay answers 451 for the sending
/// team, and `dispatch.max_attempts = 1`) falls back to the coordinator of the municipality
/// now responsible; the escalation stays listed as failed.
#[test]
fn an_escalation_whose_attempts_run_out_falls_back_to_the_coordinator() {
    let server = SmtpServer::start_rejecting(&[&format!("~{TEAM_AMSTERDAM}")]);
    let text = config_text(&format!("transport = \"smtp\"\nurl = \"{}\"", server.url()))
        .replace("max_attempts = 6", "max_attempts = 1");
    let env = TestEnv::with_config(&text, |_| String::new());
    let fam = env.enrol(
        "2026-12-02T10:00:00+01:00",
        &family_body(AMSTERDAM, "standard", "2026-12-01", "ESCMARK"),
    );
    let f = fam["family"].as_str().unwrap();
    env.ok(&[
        "--at",
        "2026-12-20T10:00:00+01:00",
        "move",
        f,
        "--to",
        ROTTERDAM,
        "--date",
        "2027-01-04",
    ]);
    let s = env.sweep("2026-12-20T10:01:00+01:00");
    assert_eq!(
        s["dispatch"]["fallbacks"], 0,
        "the notice is no safety notice: {s}"
    );
    // Unacknowledged for weeks: reminder and escalation; the escalation also goes to the
    // sending team, whose address the relay keeps refusing.
    let s = env.sweep("2027-01-12T10:00:00+01:00");
    assert_eq!(s["dispatch"]["fallbacks"], 1, "{s}");
    let failed = env.json(&["outbox", "list", "--failed"]);
    let escalation = failed
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["kind"] == "handover_escalation")
        .expect("the failed escalation is listed");
    assert_eq!(escalation["attempts"], 1);
    assert!(
        escalation["last_error"].as_str().unwrap().contains("451"),
        "{escalation}"
    );
    let fallback: Vec<Value> = env
        .outbox()
        .into_iter()
        .filter(|m| m["kind"] == "safety_fallback")
        .collect();
    assert_eq!(fallback.len(), 1);
    assert_eq!(fallback[0]["recipients"], json!([COORD_ROTTERDAM]));
    assert_eq!(fallback[0]["status"], "sent");
    assert!(
        server
            .messages()
            .iter()
            .any(|m| m.contains(&format!("To: {COORD_ROTTERDAM}"))
                && m.contains("X-Nazorg-Key: fallback:handover_escalation:")),
        "the coordinator got the fallback"
    );
}

/// Without `--expires` a token lives `api.token_lifetime` (default P90D; configurable);
/// using it records `last_used_at`.
#[test]
fn tokens_expire_by_default_and_record_their_last_use() {
    let env = TestEnv::new();
    let at = "2026-12-20T10:00:00+01:00";
    let t = env.json(&["--at", at, "token", "create", "--municipality", AMSTERDAM]);
    assert_eq!(t["expires_at"], "2027-03-20T09:00:00Z", "{t}");
    let short = env.json(&["--at", at, "token", "create", "--admin", "--expires", "P1D"]);
    assert_eq!(short["expires_at"], "2026-12-21T09:00:00Z");

    let list = env.json(&["token", "list"]);
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .all(|r| r["last_used_at"].is_null()),
        "{list}"
    );
    let mut d = Daemon::spawn(&env, "serve", &["--at", at, "serve"], None);
    let addr = daemon_addr(&mut d);
    let r = http::get(addr, "/v1/checkins/due", t["token"].as_str());
    assert_eq!(r.status, 200, "{}", r.text());
    d.terminate();
    let list = env.json(&["token", "list"]);
    let used = list
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == t["id"])
        .unwrap();
    assert!(!used["last_used_at"].is_null(), "{list}");
    let unused = list
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == short["id"])
        .unwrap();
    assert!(unused["last_used_at"].is_null(), "{list}");

    let env = TestEnv::with_changes(&[("burst = 100", "burst = 100\ntoken_lifetime = \"P7D\"")]);
    let t = env.json(&["--at", at, "token", "create", "--admin"]);
    assert_eq!(t["expires_at"], "2026-12-27T09:00:00Z", "{t}");
}

/// Authenticating does not wait for the writer: while a write transaction holds it (on
/// SQLite the writer connection, on PostgreSQL the write lock) a valid token is accepted at
/// once, and its `last_used_at` is written through the writer once that transaction ended
/// (closing the store waits for it).
#[test]
fn authentication_does_not_wait_for_a_held_write() {
    let env = TestEnv::new();
    let at = "2026-12-20T10:00:00+01:00";
    let t = env.json(&["--at", at, "token", "create", "--admin"]);
    let id = t["id"].as_str().unwrap().to_string();
    let secret = t["token"].as_str().unwrap().to_string();
    let used = chrono::DateTime::parse_from_rfc3339("2026-12-20T11:00:00+01:00")
        .unwrap()
        .with_timezone(&chrono::Utc);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let clock = std::sync::Arc::new(nazorg::clock::ManualClock::new(used));
        let app = env.app(clock).await;
        let held = app.store.write().await.unwrap();
        // Far below SQLite's busy timeout (15 s), which a write beside the writer waits out.
        let principal = tokio::time::timeout(
            Duration::from_secs(10),
            nazorg::tokens::authenticate(&app, &secret),
        )
        .await
        .expect("authentication waited for the held write")
        .unwrap()
        .unwrap();
        assert_eq!(principal.token_id, id);
        let last: Option<i64> =
            sqlx::query_scalar("SELECT last_used_at FROM api_tokens WHERE id = $1")
                .bind(&id)
                .fetch_one(app.store.pool())
                .await
                .unwrap();
        assert_eq!(
            last, None,
            "written through the writer, after the held write"
        );
        held.rollback().await.unwrap();
        app.store
            .close_within(Duration::from_secs(30))
            .await
            .unwrap();
    });
    let last = env.sql(&format!(
        "SELECT last_used_at FROM api_tokens WHERE id = '{id}'"
    ));
    assert_eq!(last, used.timestamp().to_string());
}

/// The daemon sets `PR_SET_DUMPABLE=0` at start. Observable from outside: the kernel then
/// owns the files in `/proc/<pid>/` (status, environ, mem…) by root instead of by the
/// process's user. So the daemon runs as an
/// unprivileged user (65534) here; a plain process of that user shows the contrast. Needs
/// root to switch users; skipped (with a message) otherwise.
#[test]
fn the_daemon_is_not_dumpable() {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let root = status
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .is_some_and(|l| l.split_whitespace().nth(2) == Some("0"));
    if !root {
        eprintln!("skipped: switching to an unprivileged user needs root");
        return;
    }
    const NOBODY: u32 = 65534;
    let env = TestEnv::new();
    let mut stack = vec![env.dir.path().to_path_buf()];
    while let Some(p) = stack.pop() {
        std::os::unix::fs::chown(&p, Some(NOBODY), Some(NOBODY)).unwrap();
        if p.is_dir() {
            stack.extend(std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
        }
    }
    let log = env.path("serve.stderr");
    let mut child = env
        .command(&["--at", "2026-12-20T10:00:00+01:00", "serve"])
        .uid(NOBODY)
        .gid(NOBODY)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let mut plain = std::process::Command::new("sleep")
        .arg("30")
        .uid(NOBODY)
        .gid(NOBODY)
        .spawn()
        .unwrap();
    let proc_file = format!("/proc/{}/environ", child.id());
    let start = Instant::now();
    let ready = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.contains("nazorg daemon ready") {
            break true;
        }
        if child.try_wait().unwrap().is_some() || start.elapsed() > Duration::from_secs(20) {
            break false;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let daemon_owner = std::fs::metadata(&proc_file).map(|m| m.uid());
    let daemon_uid = std::fs::read_to_string(format!("/proc/{}/status", child.id()))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .and_then(|l| l.split_whitespace().nth(1).map(str::to_string));
    let plain_owner = std::fs::metadata(format!("/proc/{}/environ", plain.id())).map(|m| m.uid());
    let _ = child.kill();
    let _ = child.wait();
    let _ = plain.kill();
    let _ = plain.wait();
    assert!(
        ready,
        "daemon as nobody: {}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    assert_eq!(daemon_uid.as_deref(), Some("65534"), "runs as nobody");
    assert_eq!(plain_owner.unwrap(), NOBODY, "a dumpable process of nobody");
    assert_eq!(daemon_owner.unwrap(), 0, "the daemon is not dumpable");
}

/// The shipped unit forbids core dumps.
#[test]
fn the_unit_forbids_core_dumps() {
    let unit = include_str!("../../systemd/nazorg.service");
    assert!(
        unit.lines().any(|l| l.trim() == "LimitCORE=0"),
        "LimitCORE=0 in systemd/nazorg.service"
    );
}

/// Removing a recipient without `--new-kek` warns that old copies of the wrapped key can
/// still be opened by it, and suggests `--new-kek`; with `--new-kek` no warning.
#[test]
fn removing_a_recipient_without_a_new_kek_warns() {
    let env = TestEnv::new();
    env.enrol(
        "2026-12-02T10:00:00+01:00",
        &family_body(AMSTERDAM, "standard", "2026-12-01", "KEYMARK"),
    );
    let recovery = env.path("recovery.key");
    let rec = env.json(&["keygen", "--out", recovery.to_str().unwrap()])["recipient"]
        .as_str()
        .unwrap()
        .to_string();
    env.json(&["keys", "rotate", "--add-recipient", &rec]);
    let out = env.run(&["keys", "rotate", "--remove-recipient", &rec], None);
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("warning:"), "{err}");
    assert!(err.contains("old copy"), "{err}");
    assert!(err.contains("--new-kek"), "{err}");

    env.json(&["keys", "rotate", "--add-recipient", &rec]);
    let out = env.run(
        &["keys", "rotate", "--remove-recipient", &rec, "--new-kek"],
        None,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("warning:"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
