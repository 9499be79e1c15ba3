//! Sustained check-in recording over HTTP on SQLite: each request authenticates a token,
//! checks scope, seals the observations, stores them with an audit entry in one durable
//! commit. Throughput and latency percentiles, with a small Rust client over loopback.
//!
//! `cargo bench --bench api` runs the full size; without `--bench` (as
//! `cargo test --all-targets` runs it) a small smoke version checks that every request
//! succeeded. `BENCH_FAMILIES` and `BENCH_CLIENTS` override the size.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "../tests/it/support/http.rs"]
#[allow(dead_code)]
mod http;

use chrono::{TimeZone, Utc};
use common::*;
use nazorg::api::{self, ApiState};
use nazorg::clock::ManualClock;
use nazorg::service::family;
use nazorg::store::OpenMode;
use nazorg::tokens::{self, Scope};
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde_json::json;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const FULL_FAMILIES: usize = 1_000;
const SMOKE_FAMILIES: usize = 12;
const CLIENTS: usize = 4;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let families = env_usize(
        "BENCH_FAMILIES",
        if full { FULL_FAMILIES } else { SMOKE_FAMILIES },
    );
    let clients = env_usize("BENCH_CLIENTS", CLIENTS);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("nazorg.toml");
    let mut text = config_text();
    text.push_str("[api]\nlisten = \"127.0.0.1:0\"\nrate_limit = 1000000\nburst = 1000000\n");
    std::fs::write(&config_path, &text).unwrap();

    // Enrol every family the day after its episode, so all eight slots are open; then move the
    // clock past the last slot so each record's contact instant lies in the past.
    let enrol_at = Utc.with_ymd_and_hms(2027, 1, 2, 9, 0, 0).unwrap();
    let clock = ManualClock::new(enrol_at);
    let (app, work, token) = rt.block_on(async {
        let app = open_app(&config_path, Arc::new(clock.clone()), OpenMode::CreateAndMigrate).await;
        let mut rng = StdRng::seed_from_u64(7);
        let today = enrol_at.date_naive();
        let mut work = Vec::new();
        for i in 0..families {
            let e = synthetic_family(&mut rng, i, today, 1);
            let out = family::enrol(&app, &e).await.unwrap();
            let children: Vec<String> = out.members.iter().filter(|m| m.role == "child").map(|m| m.reference.clone()).collect();
            for c in &out.checkins {
                assert_eq!(c.status, "open");
                let body = json!({
                    "at": c.due.to_rfc3339(),
                    "outcome": "reached",
                    "mode": "home_visit",
                    "family_observations": {"stressors": ["debts"]},
                    "children": children.iter().map(|m| json!({"member": m, "observations": {"wellbeing": 7, "school_attendance": "normal"}})).collect::<Vec<_>>(),
                    "notes": "Huisbezoek; moeder en kinderen thuis, afspraken over school besproken."
                });
                work.push((c.id.clone(), body.to_string()));
            }
        }
        // Valid past the clock jump below (a default token lives api.token_lifetime).
        let lifetime = nazorg::domain::duration::IsoDuration::months(120);
        let token = tokens::create(&app, &Scope::Admin, Some(lifetime), None).await.unwrap().token;
        (app, work, token)
    });
    clock.set(Utc.with_ymd_and_hms(2029, 6, 1, 9, 0, 0).unwrap());
    let requests = work.len();

    let listener = rt
        .block_on(api::bind("127.0.0.1:0".parse().unwrap()))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    // No reloads in the benchmark: the sender stays alive and silent.
    let state = ApiState::new(app.clone());
    let (_reload_tx, routers) = tokio::sync::watch::channel(api::router(state.clone()));
    let server = rt.spawn(api::serve(listener, state, routers, async move {
        let _ = stop_rx.await;
    }));

    let queue = Arc::new(Mutex::new(work));
    let latencies = Arc::new(Mutex::new(Vec::with_capacity(requests)));
    let started = Instant::now();
    let threads: Vec<_> = (0..clients)
        .map(|_| {
            let (queue, latencies, token) = (queue.clone(), latencies.clone(), token.clone());
            std::thread::spawn(move || {
                loop {
                    let Some((id, body)) = queue.lock().unwrap().pop() else {
                        break;
                    };
                    let t = Instant::now();
                    let r = http::request(
                        addr,
                        "POST",
                        &format!("/v1/checkins/{id}/record"),
                        Some(&token),
                        Some(("application/json", body.as_bytes())),
                    );
                    let took = t.elapsed();
                    assert_eq!(r.status, 200, "{}", r.text());
                    latencies.lock().unwrap().push(took);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let wall = started.elapsed();
    let _ = stop_tx.send(());
    rt.block_on(server).unwrap().unwrap();

    let mut lat = latencies.lock().unwrap().clone();
    lat.sort();
    assert_eq!(lat.len(), requests);
    let recorded: i64 = rt.block_on(async {
        sqlx::query_scalar("SELECT COUNT(*) FROM checkins WHERE status = 'recorded'")
            .fetch_one(app.store.pool())
            .await
            .unwrap()
    });
    assert_eq!(
        recorded as usize, requests,
        "every request recorded its check-in"
    );
    let ms = |d: Duration| format!("{:.2} ms", d.as_secs_f64() * 1e3);
    table(
        &format!(
            "Check-in recording over HTTP ({requests} requests, {clients} clients, {families} families)"
        ),
        &[
            (
                "throughput".into(),
                format!("{:.0} requests/s", requests as f64 / wall.as_secs_f64()),
            ),
            ("wall time".into(), format!("{:.2} s", wall.as_secs_f64())),
            ("p50".into(), ms(percentile(&lat, 0.50))),
            ("p90".into(), ms(percentile(&lat, 0.90))),
            ("p99".into(), ms(percentile(&lat, 0.99))),
            ("max".into(), ms(lat.last().copied().unwrap_or_default())),
        ],
    );
}
