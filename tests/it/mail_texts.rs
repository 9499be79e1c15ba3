//! Mails as a team reads them (issue 12 items 2, 4, 5): the case director named in the
//! reminders (or "nog geen casusregisseur" after a move), read back from the `.eml` files;
//! the sign-in link gone from the database as soon as its mail is sent. The test config
//! writes English mail; the Dutch texts are checked by the templates' unit tests.

use crate::support::daemon::Daemon;
use crate::support::env::*;
use crate::support::http;
use serde_json::Value;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

const READER: &str = r#"
import email, json, sys
from email import policy
out = []
for path in sys.argv[1:]:
    with open(path, 'rb') as f:
        msg = email.message_from_binary_file(f, policy=policy.default)
    body = msg.get_body(preferencelist=('plain',))
    out.append({'file': path, 'subject': str(msg['subject']), 'to': str(msg['to']),
                'body': body.get_content() if body else ''})
print(json.dumps(out))
"#;

/// Subject, To and the decoded text of each `.eml` file, as a mail program shows them.
fn read_mails(files: &[PathBuf]) -> Vec<Value> {
    if files.is_empty() {
        return Vec::new();
    }
    let out = Command::new("/usr/bin/python3")
        .arg("-c")
        .arg(READER)
        .args(files)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice::<Value>(&out.stdout)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

/// The mails that appeared since `seen` (which is updated).
fn new_mails(env: &TestEnv, seen: &mut Vec<PathBuf>) -> Vec<Value> {
    let fresh: Vec<PathBuf> = env
        .eml_files()
        .into_iter()
        .filter(|p| !seen.contains(p))
        .collect();
    seen.extend(fresh.iter().cloned());
    read_mails(&fresh)
}

fn sweep_logged(env: &TestEnv, at: &str, logs: &mut Vec<u8>) {
    let out = env.run(&["--at", at, "sweep"], None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    logs.extend(out.stderr);
}

/// Reminders name the family's case director, a professional: name and work address.
/// After a move nobody is named until the receiving team acknowledges, and the reminders
/// say so; the acknowledgement's new case director is named from then on. The names never
/// reach the logs.
#[test]
fn reminders_name_the_case_director_or_say_there_is_none_yet() {
    let env = TestEnv::new();
    let mut body = family_body(AMSTERDAM, "standard", "2026-12-01", "CDMARK");
    body["case_director"] =
        serde_json::json!({"name": "CDMARK-director", "email": "director.cdmark@team.example.org"});
    let fam = env.enrol("2026-12-01T10:00:00+01:00", &body);
    let family = fam["family"].as_str().unwrap();
    let mut seen = Vec::new();
    let mut logs = Vec::new();
    sweep_logged(&env, "2026-12-01T10:05:00+01:00", &mut logs);
    new_mails(&env, &mut seen);

    // The upcoming reminder, to Amsterdam.
    sweep_logged(&env, "2026-12-14T10:00:00+01:00", &mut logs);
    let mails = new_mails(&env, &mut seen);
    let upcoming: Vec<&Value> = mails
        .iter()
        .filter(|m| {
            m["subject"]
                .as_str()
                .unwrap()
                .starts_with("[Nazorg] Check-in")
        })
        .collect();
    assert_eq!(upcoming.len(), 1, "{mails:?}");
    let body = upcoming[0]["body"].as_str().unwrap();
    assert!(
        body.contains(
            "Case director:        CDMARK-director\n                      director.cdmark@team.example.org\n"
        ),
        "{body}"
    );
    assert!(upcoming[0]["to"].as_str().unwrap().contains(TEAM_AMSTERDAM));

    // Moved to Rotterdam: the due reminder goes there, naming nobody yet.
    let moved = env.json(&[
        "--at",
        "2026-12-14T11:00:00+01:00",
        "move",
        family,
        "--to",
        ROTTERDAM,
        "--date",
        "2026-12-14",
    ]);
    let handover = moved["handover"].as_str().unwrap();
    sweep_logged(&env, "2026-12-15T10:00:00+01:00", &mut logs);
    let mails = new_mails(&env, &mut seen);
    let due: Vec<&Value> = mails
        .iter()
        .filter(|m| m["body"].as_str().unwrap().contains("is due now"))
        .collect();
    assert_eq!(due.len(), 1, "{mails:?}");
    let body = due[0]["body"].as_str().unwrap();
    assert!(
        due[0]["to"].as_str().unwrap().contains(TEAM_ROTTERDAM),
        "{}",
        due[0]
    );
    assert!(
        body.contains("Case director:        no case director yet\n"),
        "{body}"
    );
    assert!(
        !body.contains("CDMARK"),
        "the previous case director: {body}"
    );

    // Rotterdam acknowledges and names its own case director.
    let file = env.path("director.json");
    std::fs::write(
        &file,
        r#"{"name": "CDMARK-rotterdam", "email": "regie@rotterdam.example.org"}"#,
    )
    .unwrap();
    env.ok(&[
        "--at",
        "2026-12-15T11:00:00+01:00",
        "handover",
        "ack",
        handover,
        "--municipality",
        ROTTERDAM,
        "--case-director-file",
        file.to_str().unwrap(),
    ]);
    let mut named = 0;
    for at in [
        "2026-12-18T10:00:00+01:00",
        "2026-12-21T10:00:00+01:00",
        "2026-12-24T10:00:00+01:00",
    ] {
        sweep_logged(&env, at, &mut logs);
        for m in new_mails(&env, &mut seen) {
            let body = m["body"].as_str().unwrap();
            if body.contains("Check-in:  ") && !body.contains("calendar") {
                assert!(
                    body.contains(
                        "Case director:        CDMARK-rotterdam\n                      regie@rotterdam.example.org\n"
                    ),
                    "{body}"
                );
                named += 1;
            }
        }
    }
    assert!(named >= 1, "no reminder after the acknowledgement");
    let logs = String::from_utf8_lossy(&logs);
    for secret in ["CDMARK", "cdmark", "regie@rotterdam"] {
        assert!(!logs.contains(secret), "{secret} in the logs:\n{logs}");
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// The value of cookie `name` in the response's `Set-Cookie` headers.
fn cookie(r: &http::Response, name: &str) -> Option<String> {
    r.headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("set-cookie"))
        .find_map(|(_, v)| v.strip_prefix(&format!("{name}=")))
        .map(|v| v.split(';').next().unwrap_or("").to_string())
}

/// A sign-in link is a secret: as soon as its mail is sent, the outbox row keeps only its
/// metadata (kind, recipient, subject, times) and the link is in no database file, WAL
/// included. Opening it afterwards still signs in (the mail went out).
#[test]
fn a_sent_signin_link_is_dropped_from_the_database() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let env = TestEnv::with_config(
        &config_text("transport = \"file\"\ndir = \"var/outbox\"")
            .replace("listen = \"127.0.0.1:0\"", &format!("listen = \"{addr}\"")),
        |_| format!("\n[web]\nbase_url = \"{base}\"\n"),
    );
    if env.skip_on_postgres("scans the SQLite files") {
        return;
    }
    let worker = "anna@amsterdam.example.org";
    env.ok(&[
        "member",
        "add",
        "--municipality",
        AMSTERDAM,
        "--email",
        worker,
        "--name",
        "Anna de Vries",
    ]);
    let daemon = Daemon::spawn(
        &env,
        "serve",
        &["--at", "2027-01-18T10:00:00+01:00", "serve"],
        None,
    );
    let mut daemon = daemon;
    daemon.wait_log("nazorg daemon ready", Duration::from_secs(30));
    let start = Instant::now();
    while TcpStream::connect(addr).is_err() {
        assert!(start.elapsed() < Duration::from_secs(10), "no listener");
        std::thread::sleep(Duration::from_millis(50));
    }

    let form = http::request_with(addr, "GET", "/team/signin", &[], None);
    assert_eq!(form.status, 200, "{}", form.text());
    let browser = cookie(&form, "nz_browser").expect("a browser cookie");
    let html = form.text();
    let csrf = html
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("a csrf field")
        .to_string();
    let body = format!("csrf={csrf}&email={}", worker.replace('@', "%40"));
    let sent = http::request_with(
        addr,
        "POST",
        "/team/signin",
        &[("Cookie", &format!("nz_browser={browser}"))],
        Some(("application/x-www-form-urlencoded", body.as_bytes())),
    );
    assert_eq!(sent.status, 200, "{}", sent.text());

    // The mail goes out (the file transport is the team's mailbox here).
    let start = Instant::now();
    let link = loop {
        let found = env.eml_files().iter().find_map(|p| {
            let text = std::fs::read_to_string(p).unwrap().replace("=\r\n", "");
            let i = text.find(&format!("{base}/team/signin/"))?;
            Some(text[i..i + base.len() + 13 + 64].to_string())
        });
        if let Some(l) = found {
            break l;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "no sign-in mail");
        std::thread::sleep(Duration::from_millis(100));
    };
    let token = link.rsplit('/').next().unwrap().to_string();
    assert_eq!(token.len(), 64, "{link}");
    let start = Instant::now();
    while env.sql("SELECT status FROM outbox WHERE kind = 'signin_link'") != "sent" {
        assert!(start.elapsed() < Duration::from_secs(30), "not marked sent");
        std::thread::sleep(Duration::from_millis(100));
    }
    // The row keeps its metadata; the body is gone at once, long before mail.keep_sent.
    assert_eq!(
        env.sql(
            "SELECT body = '', body_dropped_at IS NOT NULL, subject != '', recipients \
             FROM outbox WHERE kind = 'signin_link'"
        ),
        format!("1|1|1|[\"{worker}\"]")
    );
    let scan = |when: &str| {
        for f in ["var/nazorg.db", "var/nazorg.db-wal", "var/nazorg.db-shm"] {
            let bytes = bytes_of(&env.path(f));
            assert!(
                !contains(&bytes, token.as_bytes()),
                "the sign-in link is in {f} {when}"
            );
        }
    };
    scan("while the daemon runs");

    // The link still works: it went out, so the worker can use it.
    let opened = http::request_with(
        addr,
        "GET",
        &format!("/team/signin/{token}"),
        &[("Cookie", &format!("nz_browser={browser}"))],
        None,
    );
    assert_eq!(opened.status, 200, "{}", opened.text());
    assert!(
        cookie(&opened, "nz_session").is_some(),
        "{:?}",
        opened.headers
    );
    let log = daemon.terminate();
    assert!(!log.contains(&token), "the link in the daemon's log");
    scan("after the daemon stopped");
    assert!(
        env.sql("SELECT COUNT(*) FROM outbox") == "1",
        "one message: the sign-in mail"
    );
}

/// A sign-in link that expired before its mail could go (the relay was down) takes its
/// text with it: the next sweep cancels the mail and drops its body, and the link is in
/// no database file.
#[test]
fn an_expired_unsent_signin_link_is_dropped_by_the_sweep() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // Nobody listens here: every delivery attempt fails, and is retried later.
    let relay = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let env = TestEnv::with_config(
        &config_text(&format!(
            "transport = \"smtp\"\nurl = \"smtp://127.0.0.1:{relay}?tls=none\""
        ))
        .replace("listen = \"127.0.0.1:0\"", &format!("listen = \"{addr}\"")),
        |_| format!("\n[web]\nbase_url = \"{base}\"\n"),
    );
    if env.skip_on_postgres("scans the SQLite files") {
        return;
    }
    let worker = "anna@amsterdam.example.org";
    env.ok(&[
        "member",
        "add",
        "--municipality",
        AMSTERDAM,
        "--email",
        worker,
        "--name",
        "Anna de Vries",
    ]);
    let mut daemon = Daemon::spawn(
        &env,
        "serve",
        &["--at", "2027-01-18T10:00:00+01:00", "serve"],
        None,
    );
    daemon.wait_log("nazorg daemon ready", Duration::from_secs(30));
    let start = Instant::now();
    while TcpStream::connect(addr).is_err() {
        assert!(start.elapsed() < Duration::from_secs(10), "no listener");
        std::thread::sleep(Duration::from_millis(50));
    }
    let form = http::request_with(addr, "GET", "/team/signin", &[], None);
    let browser = cookie(&form, "nz_browser").expect("a browser cookie");
    let csrf = form
        .text()
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("a csrf field")
        .to_string();
    let body = format!("csrf={csrf}&email={}", worker.replace('@', "%40"));
    let asked = http::request_with(
        addr,
        "POST",
        "/team/signin",
        &[("Cookie", &format!("nz_browser={browser}"))],
        Some(("application/x-www-form-urlencoded", body.as_bytes())),
    );
    assert_eq!(asked.status, 200, "{}", asked.text());
    daemon.terminate();
    assert_eq!(
        env.sql(
            "SELECT status, instr(body, '/team/signin/') > 0 FROM outbox WHERE kind = 'signin_link'"
        ),
        "pending|1",
        "the link waits for the relay"
    );
    let needle = format!("{base}/team/signin/");
    // Sixteen minutes later the link has expired; the sweep drops its text.
    let s = env.json(&[
        "--at",
        "2027-01-18T10:16:00+01:00",
        "sweep",
        "--no-dispatch",
    ]);
    assert!(s["sweep"]["bodies_dropped"].as_u64().unwrap() >= 1, "{s}");
    assert_eq!(
        env.sql(
            "SELECT status, body = '', body_dropped_at IS NOT NULL, subject != '' \
             FROM outbox WHERE kind = 'signin_link'"
        ),
        "cancelled|1|1|1"
    );
    for f in ["var/nazorg.db", "var/nazorg.db-wal", "var/nazorg.db-shm"] {
        assert!(
            !contains(&bytes_of(&env.path(f)), needle.as_bytes()),
            "the expired link is in {f}"
        );
    }
}
