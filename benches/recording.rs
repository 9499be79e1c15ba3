//! Sustained check-in recording over HTTP on SQLite: each request authenticates a token,
//! checks scope, seals the observations, stores them with an audit entry in one durable
//! commit. Throughput and latency percentiles, with a small Rust client over loopback.
//!
//! `cargo bench --bench recording` runs the full size; without `--bench` (as
//! `cargo test --all-targets` runs it) a small smoke version checks that every request
//! succeeded, each in exactly one write transaction. `BENCH_FAMILIES` and `BENCH_CLIENTS`
//! override the size.
//!
//! The raw primitive in the same run: the rows the requests wrote (attempt, check-in,
//! observations, family, audit entries), replayed by the `sqlite3` CLI into a copy of the
//! database taken before the requests, one transaction per request.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "common/clients.rs"]
mod clients;
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
use std::sync::Arc;
use std::time::{Duration, Instant};

const FULL_FAMILIES: usize = 1_000;
const SMOKE_FAMILIES: usize = 12;
const CLIENTS: usize = 16;

/// `key<TAB>statement` lines: each row of `table` matching `filter` as an INSERT (or, with
/// `update`, an UPDATE of every column by id), keyed by the check-in it belongs to.
fn statements(
    db: &std::path::Path,
    table: &str,
    key: &str,
    joined: &str,
    filter: &str,
    update: bool,
) -> String {
    let cols = utf8(sqlite3(
        db,
        &["-readonly"],
        format!("SELECT name FROM pragma_table_info('{table}');").as_bytes(),
    ));
    let cols: Vec<&str> = cols.lines().collect();
    let expr = if update {
        let sets: Vec<String> = cols
            .iter()
            .filter(|c| **c != "id")
            .map(|c| format!("'{c} = ' || quote({table}.{c})"))
            .collect();
        format!(
            "'UPDATE {table} SET ' || {} || ' WHERE id = ' || {table}.id || ';'",
            sets.join(" || ', ' || ")
        )
    } else {
        let vals: Vec<String> = cols.iter().map(|c| format!("quote({table}.{c})")).collect();
        format!(
            "'INSERT INTO {table} VALUES(' || {} || ');'",
            vals.join(" || ',' || ")
        )
    };
    utf8(sqlite3(
        db,
        &["-readonly", "-separator", "\t"],
        format!("SELECT {key}, {expr} FROM {table} {joined} WHERE {filter};").as_bytes(),
    ))
}

fn utf8(out: Vec<u8>) -> String {
    String::from_utf8(out).expect("sqlite3 prints UTF-8")
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
            for (wave, c) in out.checkins.iter().enumerate() {
                assert_eq!(c.status, "open");
                let body = json!({
                    "at": c.due.to_rfc3339(),
                    "outcome": "reached",
                    "mode": "home_visit",
                    "family_observations": {"stressors": ["debts"]},
                    "children": children.iter().map(|m| json!({"member": m, "observations": {"wellbeing": 7, "school_attendance": "normal"}})).collect::<Vec<_>>(),
                    "notes": "Huisbezoek; moeder en kinderen thuis, afspraken over school besproken."
                });
                work.push((wave, c.id.clone(), body.to_string()));
            }
        }
        // Valid past the clock jump below (a default token lives api.token_lifetime).
        let lifetime = nazorg::domain::duration::IsoDuration::months(120);
        let token = tokens::create(&app, &Scope::Admin, Some(lifetime), None).await.unwrap().token;
        // Wave by wave, as check-ins fall due: the clients record different families at
        // the same time, each family's check-ins in order. (A record whose family another
        // record changed after it read it reads it again inside its write transaction: see
        // `service::checkin::record`.)
        work.sort_by_key(|w| w.0);
        let work: Vec<(String, String)> = work.into_iter().map(|(_, id, body)| (id, body)).collect();
        (app, work, token)
    });
    clock.set(Utc.with_ymd_and_hms(2029, 6, 1, 9, 0, 0).unwrap());
    let requests = work.len();
    // The raw primitive's starting point: the database as the requests find it.
    let db = dir.path().join("var/nazorg.db");
    let plain_db = dir.path().join("plain.db");
    let audit_before: i64 = rt.block_on(async {
        app.store.checkpoint().await.unwrap();
        sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) FROM audit")
            .fetch_one(app.store.pool())
            .await
            .unwrap()
    });
    std::fs::copy(&db, &plain_db).unwrap();

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

    // Before and after in one run: the first half of the requests with every write
    // transaction committing on its own, the second half with group commit.
    let mut alone = work;
    let grouped = alone.split_off(alone.len() / 2);
    let group_commit_bound = 64;
    let mut passes = Vec::new();
    for (label, max_jobs, part) in [
        ("one COMMIT per transaction", 1, alone),
        ("group commit", group_commit_bound, grouped),
    ] {
        app.store.limit_group_commit(max_jobs);
        let n = part.len();
        let writes_before = app.store.write_transactions();
        let commits_before = app.store.write_commits();
        let load_before = load_average();
        let (wall, lat) = clients::record_from_clients(&[addr], part, clients, &token);
        let load_after = load_average();
        let writes = app.store.write_transactions() - writes_before;
        let commits = app.store.write_commits() - commits_before;
        assert_eq!(
            writes as usize, n,
            "one write transaction per request (operation, its audit entries and the request's)"
        );
        passes.push((
            label,
            n,
            wall,
            lat,
            writes,
            commits,
            load_before,
            load_after,
        ));
    }
    let _ = stop_tx.send(());
    rt.block_on(server).unwrap().unwrap();

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
    // The raw primitive: the same rows, one sqlite3 transaction per request.
    rt.block_on(app.store.checkpoint()).unwrap();
    let mut per_checkin: std::collections::BTreeMap<i64, Vec<String>> = Default::default();
    let recorded_filter = "status = 'recorded'";
    let sources = [
        statements(&db, "checkin_attempts", "checkin_id", "", "1", false),
        statements(&db, "checkins", "id", "", recorded_filter, true),
        statements(&db, "observations", "checkin_id", "", "1", false),
        // Each recording updates its family (the last reached contact).
        statements(
            &db,
            "families",
            "c.id",
            "JOIN checkins c ON c.family_id = families.id",
            "c.status = 'recorded'",
            true,
        ),
        statements(
            &db,
            "audit",
            "(SELECT c.id FROM checkins c WHERE c.ref = audit.subject OR c.ref = \
             (SELECT p.subject FROM audit p WHERE p.seq = audit.seq - 1))",
            "",
            &format!("seq > {audit_before}"),
            false,
        ),
    ];
    // Rows of no one check-in (e.g. a flag's audit entry) go into the last transaction.
    let mut stray = Vec::new();
    for out in &sources {
        for line in out.lines() {
            let (key, stmt) = line.split_once('\t').expect("key and statement");
            match key.parse::<i64>() {
                Ok(k) => per_checkin.entry(k).or_default().push(stmt.to_string()),
                Err(_) => stray.push(stmt.to_string()),
            }
        }
    }
    if let Some(last) = per_checkin.values_mut().last() {
        last.append(&mut stray);
    }
    let mut script = String::from(
        "PRAGMA journal_mode = WAL;\nPRAGMA synchronous = NORMAL;\nPRAGMA foreign_keys = ON;\n\
         PRAGMA secure_delete = ON;\n",
    );
    let mut replayed = 0;
    for stmts in per_checkin.values() {
        script.push_str("BEGIN IMMEDIATE;\n");
        for st in stmts {
            script.push_str(st);
            script.push('\n');
        }
        script.push_str("COMMIT;\n");
        replayed += 1;
    }
    assert_eq!(replayed, requests, "one replayed transaction per request");
    let t = Instant::now();
    sqlite3(&plain_db, &[], script.as_bytes());
    let plain = t.elapsed();
    let plain_recorded = utf8(sqlite3(
        &plain_db,
        &["-readonly"],
        b"SELECT COUNT(*) FROM checkins WHERE status = 'recorded';",
    ));
    assert_eq!(plain_recorded.trim(), requests.to_string());
    let ms = |d: Duration| format!("{:.2} ms", d.as_secs_f64() * 1e3);
    for (label, n, wall, lat, writes, commits, load_before, load_after) in &passes {
        table(
            &format!(
                "Check-in recording over HTTP, {label} ({n} requests, {clients} clients, {families} families)"
            ),
            &[
                (
                    "throughput".into(),
                    format!("{:.0} requests/s", *n as f64 / wall.as_secs_f64()),
                ),
                ("wall time".into(), format!("{:.2} s", wall.as_secs_f64())),
                ("p50".into(), ms(percentile(lat, 0.50))),
                ("p90".into(), ms(percentile(lat, 0.90))),
                ("p95".into(), ms(percentile(lat, 0.95))),
                ("p99".into(), ms(percentile(lat, 0.99))),
                ("max".into(), ms(lat.last().copied().unwrap_or_default())),
                (
                    "write transactions".into(),
                    format!("{writes} ({:.2} per request)", *writes as f64 / *n as f64),
                ),
                (
                    "COMMITs".into(),
                    format!("{commits} ({:.2} per request)", *commits as f64 / *n as f64),
                ),
                (
                    "ratio (sqlite3 tx/s / our requests/s)".into(),
                    format!(
                        "{:.2}×",
                        (requests as f64 / plain.as_secs_f64()) / (*n as f64 / wall.as_secs_f64())
                    ),
                ),
                ("goal".into(), "≥ 2,000 requests/s, p99 ≤ 20 ms".into()),
                (
                    "load average before / after".into(),
                    format!("{load_before} / {load_after}"),
                ),
            ],
        );
    }
    table(
        &format!("The same rows replayed by the sqlite3 CLI ({requests} transactions)"),
        &[(
            "sqlite3 CLI, same rows, one tx per request".into(),
            format!(
                "{:.2} s = {:.0} tx/s",
                plain.as_secs_f64(),
                requests as f64 / plain.as_secs_f64()
            ),
        )],
    );
}
