//! The HTTP API over real loopback HTTP, with the daemon started as in production.

use crate::support::daemon::Daemon;
use crate::support::env::*;
use crate::support::http::{self, Response};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::time::Duration;

/// The daemon's clock starts here (`serve --at`), and runs on from it.
const SERVE_AT: &str = "2026-12-20T10:00:00+01:00";

pub(crate) struct Api {
    _daemon: Daemon,
    pub(crate) addr: SocketAddr,
}

pub(crate) fn start(env: &TestEnv) -> Api {
    let sweeps = env.sql("SELECT COUNT(*) FROM sweeps");
    let mut d = Daemon::spawn(env, "serve", &["--at", SERVE_AT, "serve"], None);
    d.wait_log("nazorg daemon ready", Duration::from_secs(20));
    // The catch-up sweep runs after READY: let it finish, so counts taken now stay put.
    let started = std::time::Instant::now();
    while env.sql("SELECT COUNT(*) FROM sweeps") == sweeps {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no catch-up sweep:\n{}",
            d.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let log = d.log();
    let addr = log
        .lines()
        .find(|l| l.contains("api listening"))
        .and_then(|l| l.split("addr=").nth(1))
        .and_then(|a| a.split_whitespace().next())
        .unwrap()
        .parse()
        .unwrap();
    Api { _daemon: d, addr }
}

pub(crate) fn token(env: &TestEnv, args: &[&str]) -> (String, String) {
    // Made at the daemon's start, so the default lifetime (api.token_lifetime) runs from
    // the simulated clock and not from the machine's.
    let mut a = vec!["token", "create"];
    if !args.contains(&"--at") {
        a.extend_from_slice(&["--at", SERVE_AT]);
    }
    a.extend_from_slice(args);
    let v = env.json(&a);
    (
        v["id"].as_str().unwrap().to_string(),
        v["token"].as_str().unwrap().to_string(),
    )
}

/// Row counts of everything but the audit trail (which records denials by design).
fn data_counts(env: &TestEnv) -> String {
    env.counts()
}

fn enrol_body(muni: &str, marker: &str) -> Value {
    family_body(muni, "standard", "2026-12-01", marker)
}

#[test]
fn full_journey_over_http() {
    let env = TestEnv::new();
    let (_, ams) = token(
        &env,
        &["--municipality", AMSTERDAM, "--label", "case system"],
    );
    let api = start(&env);
    let a = api.addr;

    let r = http::post_json(
        a,
        "/v1/families",
        Some(&ams),
        &enrol_body(AMSTERDAM, "HTTPJ"),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let fam = r.json();
    let f = fam["family"].as_str().unwrap();
    // Enrolled at the daemon's 2026-12-20: the 14-day slot lapsed, the 6-week one is open.
    assert_eq!(fam["checkins"][0]["status"], "lapsed");
    let c1 = fam["checkins"][1]["id"].as_str().unwrap();
    let child = fam["members"][1]["ref"].as_str().unwrap();

    let r = http::get(a, &format!("/v1/families/{f}"), Some(&ams));
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["members"][1]["name"], "HTTPJ-child-one");

    let r = http::get(
        a,
        "/v1/checkins/due?before=2027-01-31T00:00:00%2B01:00",
        Some(&ams),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        r.json()
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["checkin"] == c1)
    );

    let rec = json!({"at": "2026-12-19T10:00:00+01:00", "outcome": "reached", "mode": "home_visit",
                     "children": [{"member": child, "observations": {"wellbeing": 8, "new_incident": true}}], "notes": "HTTPJ-note"});
    let r = http::post_json(a, &format!("/v1/checkins/{c1}/record"), Some(&ams), &rec);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["status"], "recorded");
    let r = http::post_json(a, &format!("/v1/checkins/{c1}/record"), Some(&ams), &rec);
    assert_eq!(r.status, 409);

    let r = http::post_json(
        a,
        &format!("/v1/families/{f}/close"),
        Some(&ams),
        &json!({"reason": "family_moved_abroad", "safety_improved": "yes", "professionals": 2}),
    );
    // The recorded incident raised a red flag: closing needs a coordinator's approval.
    assert_eq!(r.status, 409, "{}", r.text());
    assert!(r.text().contains("approved_by"), "{}", r.text());
    let r = http::post_json(
        a,
        &format!("/v1/families/{f}/close"),
        Some(&ams),
        &json!({"reason": "family_moved_abroad", "safety_improved": "yes", "professionals": 2,
                "approved_by": "Coordinator Jansen"}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["approved"], true);
    // The evaluation was recorded with the closure; a bad one names its field.
    let eval = format!("/v1/families/{f}/evaluation");
    let r = http::post_json(
        a,
        &eval,
        Some(&ams),
        &json!({"safety_improved": "yes", "professionals": 99}),
    );
    assert_eq!(r.json()["error"]["field"], "professionals", "{}", r.text());
    let r = http::post_json(
        a,
        &eval,
        Some(&ams),
        &json!({"safety_improved": "no", "professionals": 1}),
    );
    assert_eq!(r.status, 409, "{}", r.text());
    let shown = http::get(a, &format!("/v1/families/{f}"), Some(&ams)).json();
    assert_eq!(shown["evaluation"]["safety_improved"], "yes");
    assert_eq!(shown["close_approved_by"], "Coordinator Jansen");

    // Health and metrics carry no references.
    assert_eq!(http::get(a, "/healthz", None).status, 200);
    let m = http::get(a, "/metrics", None);
    assert_eq!(m.status, 200);
    assert!(
        m.text()
            .contains("nazorg_families{status=\"closed_early\"} 1"),
        "{}",
        m.text()
    );
    assert!(!m.text().contains("F-"));

    // The audit trail names the reads and changes, and is intact.
    let trail = env.json(&["audit", "list", "--family", f]);
    let actions: Vec<&str> = trail
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for want in [
        "family.enrol",
        "family.read",
        "checkin.record",
        "family.close",
    ] {
        assert!(actions.contains(&want), "{want} missing from {actions:?}");
    }
    let v = env.json(&["audit", "verify"]);
    assert!(v["problems"].as_array().unwrap().is_empty(), "{v}");
}

/// A recording over HTTP is one write transaction: the request's own `api.request` entry is
/// committed with the check-in and its `checkin.record` entry (the next entry of the chain,
/// same instant, same token), once; a refused repeat is audited with its status afterwards.
#[test]
fn recording_over_http_audits_the_request_in_the_operations_commit() {
    let env = TestEnv::new();
    let (token_id, ams) = token(&env, &["--municipality", AMSTERDAM]);
    let api = start(&env);
    let a = api.addr;
    let r = http::post_json(
        a,
        "/v1/families",
        Some(&ams),
        &enrol_body(AMSTERDAM, "ONETX"),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let fam = r.json();
    let c1 = fam["checkins"][1]["id"].as_str().unwrap().to_string();
    let child = fam["members"][1]["ref"].as_str().unwrap().to_string();
    let rec = json!({"at": "2026-12-19T10:00:00+01:00", "outcome": "reached", "mode": "home_visit",
                     "children": [{"member": child, "observations": {"wellbeing": 8}}]});
    let path = format!("/v1/checkins/{c1}/record");
    let r = http::post_json(a, &path, Some(&ams), &rec);
    assert_eq!(r.status, 200, "{}", r.text());
    let r = http::post_json(a, &path, Some(&ams), &rec);
    assert_eq!(r.status, 409, "{}", r.text());

    let trail = env.json(&["audit", "list"]);
    let trail = trail.as_array().unwrap();
    let subject = "POST /v1/checkins/{id}/record";
    let requests: Vec<&Value> = trail
        .iter()
        .filter(|e| e["action"] == "api.request" && e["subject"] == subject)
        .collect();
    let details: Vec<&str> = requests
        .iter()
        .map(|e| e["detail"].as_str().unwrap())
        .collect();
    assert_eq!(
        details,
        ["200", "409"],
        "one entry per request: {requests:?}"
    );
    let recorded = trail
        .iter()
        .find(|e| e["action"] == "checkin.record" && e["subject"] == c1.as_str())
        .expect("checkin.record entry");
    let ok = requests[0];
    assert_eq!(
        ok["seq"].as_i64(),
        Some(recorded["seq"].as_i64().unwrap() + 1)
    );
    assert_eq!(ok["at"], recorded["at"]);
    assert_eq!(ok["actor"], token_id.as_str());
    assert_eq!(recorded["actor"], token_id.as_str());
    let v = env.json(&["audit", "verify"]);
    assert!(v["problems"].as_array().unwrap().is_empty(), "{v}");
}

/// Every protected endpoint, for every kind of caller that must not reach the resource:
/// the right status, no data, the database unchanged.
#[test]
fn scope_matrix() {
    let env = TestEnv::new();
    let (_, ams) = token(&env, &["--municipality", AMSTERDAM]);
    let (_, rot) = token(&env, &["--municipality", ROTTERDAM]);
    let (_, res) = token(&env, &["--researcher", "cohort2027"]);
    let (rev_id, rev) = token(&env, &["--municipality", AMSTERDAM]);
    env.ok(&["token", "revoke", &rev_id]);
    let (_, exp) = token(
        &env,
        &[
            "--at",
            "2026-12-01T10:00:00+01:00",
            "--municipality",
            AMSTERDAM,
            "--expires",
            "P1D",
        ],
    );
    let fam = env.enrol("2026-12-02T10:00:00+01:00", &enrol_body(AMSTERDAM, "SCOPE"));
    let f = fam["family"].as_str().unwrap().to_string();
    let c = fam["checkins"][0]["id"].as_str().unwrap().to_string();
    let out = env.record(
        "2027-01-13T10:00:00+01:00",
        &json!({"checkin": fam["checkins"][1]["id"], "at": "2027-01-12T10:00:00+01:00", "outcome": "reached", "mode": "phone",
                "children": [{"member": fam["members"][1]["ref"], "observations": {"new_incident": true}}]}),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let flag = env.json(&["flags", "list"])[0]["id"].as_i64().unwrap();
    let api = start(&env);
    let a = api.addr;
    let before = data_counts(&env);

    let rec = json!({"at": "2026-12-19T10:00:00+01:00", "outcome": "reached", "mode": "phone"});
    let calls: Vec<(&str, String, Option<Value>)> = vec![
        ("GET", format!("/v1/families/{f}"), None),
        (
            "POST",
            format!("/v1/families/{f}/close"),
            Some(
                json!({"reason": "family_moved_abroad", "safety_improved": "yes", "professionals": 2}),
            ),
        ),
        ("POST", format!("/v1/checkins/{c}/record"), Some(rec)),
        (
            "POST",
            "/v1/families".to_string(),
            Some(enrol_body(AMSTERDAM, "SCOPE2")),
        ),
        ("GET", "/v1/checkins/due".to_string(), None),
        (
            "POST",
            format!("/v1/families/{f}/moves"),
            Some(json!({"to": ROTTERDAM, "date": "2026-12-20"})),
        ),
        ("GET", "/v1/handovers".to_string(), None),
        ("GET", "/v1/flags".to_string(), None),
        (
            "POST",
            format!("/v1/flags/{flag}/ack"),
            Some(json!({"note": "SCOPE-note"})),
        ),
        (
            "POST",
            format!("/v1/flags/{flag}/resolve"),
            Some(json!({"note": "SCOPE-note"})),
        ),
    ];
    for (method, path, body) in &calls {
        let send = |tok: Option<&str>| -> Response {
            match body {
                Some(b) => http::request(
                    a,
                    method,
                    path,
                    tok,
                    Some(("application/json", b.to_string().as_bytes())),
                ),
                None => http::request(a, method, path, tok, None),
            }
        };
        for (who, tok, want) in [
            ("none", None, 401),
            ("revoked", Some(rev.as_str()), 401),
            ("expired", Some(exp.as_str()), 401),
        ] {
            let r = send(tok);
            assert_eq!(r.status, want, "{who} {method} {path}: {}", r.text());
            assert!(!r.text().contains("SCOPE"), "{}", r.text());
            assert_eq!(r.json()["error"]["code"], "unauthorized");
        }
        let other = send(Some(&rot));
        let researcher = send(Some(&res));
        match path.as_str() {
            "/v1/families" => {
                assert_eq!(other.status, 403, "{}", other.text());
                assert_eq!(researcher.status, 404);
            }
            "/v1/checkins/due" | "/v1/handovers" | "/v1/flags" => {
                // Another team sees its own (empty) list, never Amsterdam's check-ins.
                assert_eq!(other.status, 200);
                assert_eq!(other.json(), json!([]));
                assert_eq!(researcher.status, 404);
            }
            _ => {
                assert_eq!(other.status, 404, "{method} {path}: {}", other.text());
                assert_eq!(researcher.status, 404);
            }
        }
        assert!(!other.text().contains("SCOPE") && !researcher.text().contains("SCOPE"));
    }
    assert_eq!(data_counts(&env), before);
    // The owner still reaches the family.
    assert_eq!(
        http::get(a, &format!("/v1/families/{f}"), Some(&ams)).status,
        200
    );
    // The denials are in the audit trail, in aggregate: one entry for this client (the
    // daemon writes what it counted when it stops, at the latest).
    api._daemon.terminate();
    let denied: Vec<Value> = env
        .json(&["audit", "list"])
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "api.denied" && e["actor"] == "anonymous")
        .cloned()
        .collect();
    assert!(!denied.is_empty() && denied.len() <= 2, "{denied:?}");
    let count: u64 = denied
        .iter()
        .map(|e| {
            let d = e["detail"].as_str().unwrap();
            d.split_whitespace()
                .find_map(|w| w.strip_prefix("count="))
                .unwrap()
                .parse::<u64>()
                .unwrap()
        })
        .sum();
    assert_eq!(count, 3 * calls.len() as u64, "{denied:?}");
    assert!(denied.iter().all(|e| e["subject"] == "client 127.0.0.1"));
}

#[test]
fn hostile_input_is_refused_and_changes_nothing() {
    let env = TestEnv::new();
    let (_, ams) = token(&env, &["--municipality", AMSTERDAM]);
    let fam = env.enrol(
        "2026-12-02T10:00:00+01:00",
        &enrol_body(AMSTERDAM, "HOSTILE"),
    );
    let c = fam["checkins"][0]["id"].as_str().unwrap().to_string();
    let out = env.record(
        "2027-01-13T10:00:00+01:00",
        &json!({"checkin": fam["checkins"][1]["id"], "at": "2027-01-12T10:00:00+01:00", "outcome": "reached", "mode": "phone",
                "children": [{"member": fam["members"][1]["ref"], "observations": {"new_incident": true}}]}),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let flag = env.json(&["flags", "list"])[0]["id"].as_i64().unwrap();
    let api = start(&env);
    let a = api.addr;
    let before = data_counts(&env);
    let post = |path: &str, ctype: &str, body: &[u8]| {
        http::request(a, "POST", path, Some(&ams), Some((ctype, body)))
    };

    let cases: Vec<(&str, Response, u16)> = vec![
        ("invalid JSON", post("/v1/families", "application/json", b"{\"episode\": "), 400),
        ("wrong type", post("/v1/families", "application/json", br#"{"episode": 5}"#), 400),
        ("unknown field", post("/v1/families", "application/json", {
            let mut b = enrol_body(AMSTERDAM, "HOSTILE2");
            b["bsn"] = json!("123456789");
            b.to_string().into_bytes()
        }.as_slice()), 400),
        ("invalid UTF-8", post("/v1/families", "application/json", b"{\"episode\": \"\xff\xfe\"}"), 400),
        ("huge body", post("/v1/families", "application/json", &vec![b' '; 300 * 1024]), 413),
        ("not JSON", post("/v1/families", "text/plain", b"hello"), 415),
        ("SQL in a reference", http::get(a, "/v1/families/F-%27%20OR%201%3D1%20--", Some(&ams)), 404),
        ("SQL in a value", post(&format!("/v1/checkins/{c}/record"), "application/json",
            json!({"at": "2026-12-19T10:00:00+01:00", "outcome": "reached'; DROP TABLE families; --", "mode": "phone"}).to_string().as_bytes()), 400),
        ("mismatched check-in", post(&format!("/v1/checkins/{c}/record"), "application/json",
            json!({"checkin": "C-2345678923", "at": "2026-12-19T10:00:00+01:00", "outcome": "reached", "mode": "phone"}).to_string().as_bytes()), 400),
        ("unknown query key", http::get(a, "/v1/checkins/due?befor=x", Some(&ams)), 400),
        ("bad instant", http::get(a, "/v1/checkins/due?before=yesterday", Some(&ams)), 400),
        ("unknown route", http::get(a, "/v1/../../etc/passwd", Some(&ams)), 404),
        (
            "SQL as a flag id",
            post("/v1/flags/1%20OR%201=1/ack", "application/json", br#"{"note": "x"}"#),
            404,
        ),
        (
            "empty flag note",
            post(&format!("/v1/flags/{flag}/ack"), "application/json", br#"{"note": " "}"#),
            400,
        ),
    ];
    for (what, r, want) in cases {
        assert_eq!(r.status, want, "{what}: {}", r.text());
        let e = r.json();
        assert!(e["error"]["code"].is_string(), "{what}: {e}");
        assert!(
            !r.text().contains("HOSTILE2") && !r.text().contains("123456789"),
            "{what}: {}",
            r.text()
        );
    }
    assert_eq!(data_counts(&env), before);
    assert_eq!(env.sql("SELECT COUNT(*) FROM families"), "1");
}

#[test]
fn rate_limit_answers_429_with_retry_after() {
    let env =
        TestEnv::with_changes(&[("rate_limit = 50\nburst = 100", "rate_limit = 1\nburst = 3")]);
    let (_, ams) = token(&env, &["--municipality", AMSTERDAM]);
    let api = start(&env);
    let statuses: Vec<Response> = (0..6)
        .map(|_| http::get(api.addr, "/v1/checkins/due", Some(&ams)))
        .collect();
    let limited: Vec<&Response> = statuses.iter().filter(|r| r.status == 429).collect();
    assert!(
        !limited.is_empty(),
        "{:?}",
        statuses.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    assert!(limited[0].header("retry-after").is_some());
    assert_eq!(limited[0].json()["error"]["code"], "rate_limited");
}

/// Tampering with one audit entry (edit, delete, swap) is found and named.
#[test]
fn audit_verify_names_tampered_entries() {
    let env = TestEnv::new();
    for i in 0..3 {
        let fam = env.enrol(
            "2026-12-02T10:00:00+01:00",
            &enrol_body(AMSTERDAM, &format!("AUD{i}")),
        );
        env.ok(&["family", "show", fam["family"].as_str().unwrap()]);
    }
    let ok = env.json(&["audit", "verify"]);
    assert_eq!(ok["entries"], 6);
    assert!(ok["problems"].as_array().unwrap().is_empty());
    // An attacker with database access drops the append-only triggers first.
    if env.on_postgres() {
        env.sql("DROP TRIGGER audit_no_update ON audit; DROP TRIGGER audit_no_delete ON audit");
    } else {
        env.sql("DROP TRIGGER audit_no_update; DROP TRIGGER audit_no_delete");
    }
    env.sql("CREATE TABLE audit_backup AS SELECT * FROM audit");
    let restore = || env.sql("DELETE FROM audit; INSERT INTO audit SELECT * FROM audit_backup");
    let verify = || {
        let out = env.run(&["--json", "audit", "verify"], None);
        assert_eq!(out.status.code(), Some(65));
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        v["problems"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };

    env.sql("UPDATE audit SET action = 'family.enrol' WHERE seq = 4");
    let p = verify();
    assert!(p.iter().any(|p| p.contains("entry 4 is forged")), "{p:?}");
    restore();

    env.sql("DELETE FROM audit WHERE seq = 3");
    let p = verify();
    assert!(p.iter().any(|p| p.contains("3..3 are missing")), "{p:?}");
    restore();

    env.sql("UPDATE audit SET seq = -1 WHERE seq = 2; UPDATE audit SET seq = 2 WHERE seq = 5; UPDATE audit SET seq = 5 WHERE seq = -1");
    let p = verify();
    assert!(p.iter().any(|p| p.contains("entry 2")), "{p:?}");
    assert!(p.iter().any(|p| p.contains("entry 5")), "{p:?}");
    restore();
    assert!(
        env.json(&["audit", "verify"])["problems"]
            .as_array()
            .unwrap()
            .is_empty()
    );
}

/// A researcher asks for an export of its study over HTTP and fetches its files; nobody else
/// reaches them, and no path outside the export's fixed files is ever served.
#[tokio::test]
async fn researcher_fetches_an_export_of_its_study() {
    let env = crate::export::export_env();
    crate::export::cohort(&env).await;
    let (_, res) = token(&env, &["--researcher", "cohort2027"]);
    let (_, other) = token(&env, &["--researcher", "otherstudy"]);
    let (_, ams) = token(&env, &["--municipality", AMSTERDAM]);
    let api = start(&env);
    let a = api.addr;

    assert_eq!(
        http::post_json(a, "/v1/exports", Some(&ams), &json!({})).status,
        404
    );
    let r = http::post_json(a, "/v1/exports", Some(&res), &json!({"k": 3}));
    assert_eq!(r.status, 201, "{}", r.text());
    let id = r.json()["export"].as_str().unwrap().to_string();
    let manifest = http::get(a, &format!("/v1/exports/{id}/manifest.json"), Some(&res));
    assert_eq!(manifest.status, 200);
    assert_eq!(manifest.json()["k"]["requested"], 3);
    let csv = http::get(a, &format!("/v1/exports/{id}/followup.csv"), Some(&res));
    assert_eq!(csv.status, 200);
    assert!(csv.header("content-type").unwrap().starts_with("text/csv"));
    assert!(csv.text().starts_with("child,family,wave"));
    // The fetched file is the one the manifest's hash names.
    {
        use sha2::Digest;
        let h: String = sha2::Sha256::digest(&csv.body)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(manifest.json()["files"]["followup.csv"], h.as_str());
    }
    for (who, tok) in [("other study", &other), ("a team", &ams)] {
        let r = http::get(a, &format!("/v1/exports/{id}/followup.csv"), Some(tok));
        assert_eq!(r.status, 404, "{who}");
    }
    for path in [
        format!("/v1/exports/{id}/..%2F..%2Fnazorg.key"),
        format!("/v1/exports/{id}/nazorg.db"),
        format!("/v1/exports/..%2F{id}/followup.csv"),
        "/v1/exports/X-2345678923/followup.csv".to_string(),
    ] {
        let r = http::get(a, &path, Some(&res));
        assert_eq!(r.status, 404, "{path}: {}", r.text());
        assert!(!r.text().contains("AGE-SECRET-KEY"));
    }
    // An impossible k is refused, nothing recorded.
    let before = env.sql("SELECT COUNT(*) FROM exports");
    let r = http::post_json(a, "/v1/exports", Some(&res), &json!({"k": 500}));
    assert_eq!(r.status, 422, "{}", r.text());
    assert_eq!(env.sql("SELECT COUNT(*) FROM exports"), before);
    // The refusal says k cannot be reached, without a count of children (44 in, none 500).
    let message = r.json()["error"]["message"].as_str().unwrap().to_string();
    assert!(message.contains("k = 500 cannot be reached"), "{message}");
    assert!(
        !message
            .replace("k = 500", "")
            .chars()
            .any(|c| c.is_ascii_digit()),
        "{message}"
    );
    let trail = env.json(&["audit", "list"]);
    assert!(
        trail
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "export.fetch")
    );
}

/// `GET /v1/families`: a team pages through its own families (filtered by state) and no
/// other team's, without sealed data; an admin sees all; a researcher nothing.
#[test]
fn a_team_lists_its_own_families_page_by_page() {
    let env = TestEnv::new();
    let at = "2026-12-02T10:00:00+01:00";
    let mut ours: Vec<String> = (0..3)
        .map(|i| {
            env.enrol(at, &enrol_body(AMSTERDAM, &format!("LISTED{i}")))["family"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    ours.sort();
    let theirs = env.enrol(at, &enrol_body(ROTTERDAM, "LISTEDR"))["family"]
        .as_str()
        .unwrap()
        .to_string();
    env.ok(&[
        "--at",
        at,
        "family",
        "close",
        &ours[1],
        "--reason",
        "family_moved_abroad",
        "--safety-improved",
        "yes",
        "--professionals",
        "2",
    ]);
    let (_, ams) = token(&env, &["--municipality", AMSTERDAM]);
    let (_, rot) = token(&env, &["--municipality", ROTTERDAM]);
    let (_, admin) = token(&env, &["--admin"]);
    let (_, res) = token(&env, &["--researcher", "cohort2027"]);
    let api = start(&env);
    let a = api.addr;
    let refs = |v: &Value| -> Vec<String> {
        v["families"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["family"].as_str().unwrap().to_string())
            .collect()
    };

    // Two pages of two and one, in reference order; asking for another municipality
    // changes nothing for a team.
    let r = http::get(a, "/v1/families?limit=2&municipality=GM0599", Some(&ams));
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        !r.text().contains("LISTED"),
        "sealed data in a list: {}",
        r.text()
    );
    let first = r.json();
    assert_eq!(refs(&first), ours[..2]);
    assert_eq!(first["families"][0]["municipality"], AMSTERDAM);
    assert_eq!(first["families"][0]["status"], "running");
    let cursor = first["next_cursor"].as_str().unwrap();
    let r = http::get(
        a,
        &format!("/v1/families?limit=2&cursor={cursor}"),
        Some(&ams),
    );
    let second = r.json();
    assert_eq!(refs(&second), ours[2..]);
    assert_eq!(second["next_cursor"], Value::Null);

    // By state.
    let r = http::get(a, "/v1/families?state=closed_early", Some(&ams));
    assert_eq!(refs(&r.json()), [ours[1].clone()]);
    assert_eq!(
        r.json()["families"][0]["close_reason"],
        "family_moved_abroad"
    );
    let r = http::get(a, "/v1/families?state=running", Some(&ams));
    assert_eq!(refs(&r.json()), [ours[0].clone(), ours[2].clone()]);

    // Another team sees only its own; an admin all (or one municipality's); a researcher
    // nothing.
    assert_eq!(
        refs(&http::get(a, "/v1/families", Some(&rot)).json()),
        std::slice::from_ref(&theirs)
    );
    let mut all = ours.clone();
    all.push(theirs.clone());
    all.sort();
    assert_eq!(
        refs(&http::get(a, "/v1/families", Some(&admin)).json()),
        all
    );
    assert_eq!(
        refs(&http::get(a, "/v1/families?municipality=GM0599", Some(&admin)).json()),
        [theirs]
    );
    assert_eq!(http::get(a, "/v1/families", Some(&res)).status, 404);

    // Bad parameters name their field.
    for (q, field) in [
        ("state=calm", "state"),
        ("limit=0", "limit"),
        ("limit=many", "limit"),
        ("cursor=x", "cursor"),
        ("colour=blue", "colour"),
    ] {
        let r = http::get(a, &format!("/v1/families?{q}"), Some(&ams));
        assert_eq!(r.status, 400, "{q}: {}", r.text());
        assert_eq!(r.json()["error"]["field"], field, "{q}: {}", r.text());
    }
}
