//! Write requests commit once: every write route's operation carries the request's own
//! `api.request` entry in its transaction (one write transaction per successful request),
//! and concurrent writers share SQLite commits without losing or leaking anyone's work.
//! The API runs in-process here, so the store's transaction counters can be read.

use crate::support::env::*;
use crate::support::http::{self, Response};
use chrono::{DateTime, Utc};
use nazorg::api::{self, ApiState};
use nazorg::audit::Entry;
use nazorg::clock::ManualClock;
use nazorg::service::App;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::Arc;

/// The in-process daemon's clock, and when its tokens are made.
const AT: &str = "2027-01-14T10:00:00+01:00";

fn at() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(AT)
        .unwrap()
        .with_timezone(&Utc)
}

struct InProcess {
    rt: tokio::runtime::Runtime,
    app: App,
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl InProcess {
    fn start(env: &TestEnv) -> InProcess {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let app = rt.block_on(env.app(Arc::new(ManualClock::new(at()))));
        let listener = rt
            .block_on(api::bind("127.0.0.1:0".parse().unwrap()))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let state = ApiState::new(app.clone());
        let (_reload, routers) = tokio::sync::watch::channel(api::router(state.clone()));
        let server = rt.spawn(async move {
            let _reload = _reload;
            api::serve(listener, state, routers, async move {
                let _ = stopped.await;
            })
            .await
        });
        InProcess {
            rt,
            app,
            addr,
            stop: Some(stop),
            server: Some(server),
        }
    }

    /// Sends one request; returns the answer and the write transactions it began.
    fn send(&self, method: &str, path: &str, token: &str, body: &Value) -> (Response, u64) {
        let before = self.app.store.write_transactions();
        let body = body.to_string();
        let r = http::request(
            self.addr,
            method,
            path,
            Some(token),
            Some(("application/json", body.as_bytes())),
        );
        (r, self.app.store.write_transactions() - before)
    }
}

impl Drop for InProcess {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            let _ = self.rt.block_on(server);
        }
        self.rt.block_on(self.app.store.close());
    }
}

fn token(env: &TestEnv, scope: &[&str]) -> String {
    let mut args = vec!["token", "create", "--at", AT];
    args.extend_from_slice(scope);
    env.json(&args)["token"].as_str().unwrap().to_string()
}

fn api_requests(env: &TestEnv) -> Vec<(String, String)> {
    env.json(&["audit", "list"])
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "api.request")
        .map(|e| {
            (
                e["subject"].as_str().unwrap().to_string(),
                e["detail"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Flag ack, move, handover ack, enrolment, member add and remove, close: each successful
/// request is exactly one write transaction, with its `api.request` entry (naming the
/// status answered, 200 or 201) inside it; a refused write is still audited, with its own
/// status; reads keep their own entry; the chain verifies.
#[test]
fn every_write_route_commits_its_request_entry_with_the_operation() {
    let env = TestEnv::new();
    let fam = env.enrol(
        "2026-12-02T10:00:00+01:00",
        &family_body(AMSTERDAM, "standard", "2026-12-01", "ONECOMMIT"),
    );
    let f = fam["family"].as_str().unwrap().to_string();
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
    let ams = token(&env, &["--municipality", AMSTERDAM]);
    let rot = token(&env, &["--municipality", ROTTERDAM]);
    let admin = token(&env, &["--admin"]);
    let before = api_requests(&env).len();
    let api = InProcess::start(&env);

    let mut answered: Vec<(String, u16)> = Vec::new();
    let mut ok = |method: &str, route: &str, path: &str, tok: &str, body: Value, want: u16| {
        let (r, writes) = api.send(method, path, tok, &body);
        assert_eq!(r.status, want, "{method} {path}: {}", r.text());
        assert_eq!(writes, 1, "{method} {route}: one write transaction");
        answered.push((format!("{method} {route}"), r.status));
        r.json()
    };
    ok(
        "POST",
        "/v1/flags/{id}/ack",
        &format!("/v1/flags/{flag}/ack"),
        &ams,
        json!({"note": "seen"}),
        200,
    );
    let moved = ok(
        "POST",
        "/v1/families/{ref}/moves",
        &format!("/v1/families/{f}/moves"),
        &ams,
        json!({"to": ROTTERDAM, "date": "2027-01-14"}),
        201,
    );
    let h = moved["handover"].as_str().unwrap().to_string();
    ok(
        "POST",
        "/v1/handovers/{id}/ack",
        &format!("/v1/handovers/{h}/ack"),
        &rot,
        json!({"case_director": {"name": "Regie Rotterdam", "email": "regie@rotterdam.example.org"}}),
        200,
    );
    let enrolled = ok(
        "POST",
        "/v1/families",
        "/v1/families",
        &ams,
        family_body(AMSTERDAM, "standard", "2027-01-10", "ONECOMMIT2"),
        201,
    );
    let f2 = enrolled["family"].as_str().unwrap().to_string();
    let member = ok(
        "POST",
        "/v1/members",
        "/v1/members",
        &admin,
        json!({"municipality": AMSTERDAM, "email": "carla@amsterdam.example.org", "name": "Carla"}),
        201,
    );
    let m = member["id"].as_str().unwrap().to_string();
    ok(
        "POST",
        "/v1/members/{id}/remove",
        &format!("/v1/members/{m}/remove"),
        &admin,
        json!({}),
        200,
    );
    ok(
        "POST",
        "/v1/families/{ref}/close",
        &format!("/v1/families/{f2}/close"),
        &ams,
        json!({"reason": "family_moved_abroad", "safety_improved": "yes", "professionals": 2}),
        200,
    );

    // A refused write changes nothing and is audited with its own status.
    let (r, _) = api.send(
        "POST",
        &format!("/v1/families/{f2}/close"),
        &ams,
        &json!({"reason": "family_moved_abroad", "safety_improved": "yes", "professionals": 2}),
    );
    assert!((400..500).contains(&r.status), "{}", r.text());
    answered.push(("POST /v1/families/{ref}/close".into(), r.status));
    // A read keeps its own entry: the audited read's, then the request's.
    let before_read = api.app.store.write_transactions();
    let r = http::get(api.addr, "/v1/flags", Some(&ams));
    assert_eq!(r.status, 200);
    assert_eq!(api.app.store.write_transactions() - before_read, 2);
    answered.push(("GET /v1/flags".into(), 200));
    drop(api);

    let trail = api_requests(&env);
    let got: Vec<(String, String)> = trail[before..].to_vec();
    let want: Vec<(String, String)> = answered
        .iter()
        .map(|(s, st)| (s.clone(), st.to_string()))
        .collect();
    assert_eq!(got, want, "one api.request entry per request, in order");
    let v = env.json(&["audit", "verify"]);
    assert!(v["problems"].as_array().unwrap().is_empty(), "{v}");
}

/// Sixteen writers at once, each appending to the audit chain and one failing midway after
/// its append: the others commit (on SQLite in fewer COMMITs than writers), nothing of the
/// failed one remains, and the chain verifies.
#[test]
fn concurrent_writers_commit_together_and_a_failing_one_leaves_nothing() {
    let env = TestEnv::new();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let app = rt.block_on(env.app(Arc::new(ManualClock::new(at()))));
    let commits = app.store.write_commits();
    let results: Vec<bool> = rt.block_on(async {
        // The first writer holds the connection until the others queue behind it.
        let mut first = app.store.write().await.unwrap();
        let entry = |s: &'static str| Entry {
            action: "test.write",
            subject: Some(s),
            ..Default::default()
        };
        app.audit(&mut first, &entry("W-00")).await.unwrap();
        let names: Vec<&'static str> = vec![
            "W-01", "W-02", "W-03", "W-04", "W-05", "W-06", "W-07", "W-08", "W-09", "W-10", "W-11",
            "W-12", "W-13", "W-14", "W-15",
        ];
        let tasks: Vec<_> = names
            .iter()
            .map(|&name| {
                let app = app.clone();
                tokio::spawn(async move {
                    let mut tx = app.store.write().await?;
                    app.audit(
                        &mut tx,
                        &Entry {
                            action: "test.write",
                            subject: Some(name),
                            ..Default::default()
                        },
                    )
                    .await?;
                    if name == "W-07" {
                        // Fails midway: its entry was appended, it never commits.
                        return Err(nazorg::service::OpError::Conflict("midway".into()));
                    }
                    tx.commit().await?;
                    Ok::<_, nazorg::service::OpError>(())
                })
            })
            .collect();
        if !env.on_postgres() {
            let mut spins = 0;
            while app.store.queued_writers() < names.len() {
                spins += 1;
                assert!(spins < 100_000, "writers did not queue");
                tokio::task::yield_now().await;
            }
        }
        first.commit().await.unwrap();
        let mut out = vec![true];
        for t in tasks {
            out.push(t.await.unwrap().is_ok());
        }
        out
    });
    let failed: Vec<usize> = (0..results.len()).filter(|i| !results[*i]).collect();
    assert_eq!(failed, [7], "only the writer that failed midway failed");
    if !env.on_postgres() {
        let used = app.store.write_commits() - commits;
        assert!(used < 16, "16 writers took {used} COMMITs");
    }
    rt.block_on(app.store.close());
    let written: Vec<String> = env
        .json(&["audit", "list"])
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "test.write")
        .map(|e| e["subject"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(written.len(), 15, "{written:?}");
    assert!(!written.contains(&"W-07".to_string()), "{written:?}");
    let v = env.json(&["audit", "verify"]);
    assert!(v["problems"].as_array().unwrap().is_empty(), "{v}");
}
