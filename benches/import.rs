//! Bulk enrolment (`family import`): families per second through the real import path
//! (parse, validate, schedule, seal with a fresh data key per family, a batch's families
//! in a few multi-row statements and one durable commit, an audit entry each), beside the
//! same rows written as plain SQL by the `sqlite3` CLI in one transaction, in the same run.
//!
//! `cargo bench --bench import` imports 20,000 families of 4 members (goal: ≥ 2,000/s).
//! Without `--bench` (as `cargo test --all-targets` runs it) a smoke run of 200 families.
//! `BENCH_FAMILIES=N` overrides the size.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::*;

use chrono::{TimeZone, Utc};
use nazorg::clock::{ManualClock, SharedClock};
use nazorg::service::import;
use nazorg::store::OpenMode;
use rand::SeedableRng;
use rand::rngs::StdRng;
use std::sync::Arc;
use std::time::Instant;

const FULL_FAMILIES: usize = 20_000;
const SMOKE_FAMILIES: usize = 200;
/// The tables an enrolment writes, in foreign-key order.
const TABLES: &[&str] = &[
    "keks",
    "families",
    "responsibilities",
    "members",
    "checkins",
    "audit",
];

async fn run(n: usize, full: bool) {
    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("nazorg.toml");
    std::fs::write(&config_path, config_text()).unwrap();
    let db = dir.path().join("var/nazorg.db");
    let reference = Utc.with_ymd_and_hms(2027, 6, 15, 10, 0, 0).unwrap();
    let clock: SharedClock = Arc::new(ManualClock::new(reference));
    let app = open_app(&config_path, clock, OpenMode::CreateAndMigrate).await;
    let today = reference.with_timezone(&app.config.timezone).date_naive();

    let mut rng = StdRng::seed_from_u64(0x696d706f7274);
    let mut jsonl = Vec::new();
    for i in 0..n {
        let e = synthetic_family(&mut rng, i, today, 60);
        serde_json::to_writer(&mut jsonl, &e).unwrap();
        jsonl.push(b'\n');
    }
    println!(
        "importing {n} families (1 adult + 3 children each, {} of JSON Lines)",
        mib(jsonl.len() as u64)
    );
    let t = Instant::now();
    let out = import::import(&app, std::io::Cursor::new(&jsonl))
        .await
        .expect("import runs");
    let ours = t.elapsed();
    assert_eq!(out.enrolled.len(), n, "every line enrolled");
    assert!(out.rejected.is_empty());
    app.store.checkpoint().await.unwrap();
    app.store.close().await;

    // The same rows as plain SQL: dump what the import wrote, replay it into an empty copy
    // of the schema in one transaction with the sqlite3 CLI.
    let schema = sqlite3(&db, &[], b".schema\n");
    let mut script = b"PRAGMA journal_mode=WAL;\nPRAGMA synchronous=NORMAL;\nBEGIN;\n".to_vec();
    for table in TABLES {
        script.extend(sqlite3(
            &db,
            &["-cmd", &format!(".mode insert {table}")],
            format!("SELECT * FROM {table};").as_bytes(),
        ));
    }
    script.extend(b"COMMIT;\n");
    let rows: usize = script
        .split(|b| *b == b'\n')
        .filter(|l| l.starts_with(b"INSERT"))
        .count();
    let plain_db = dir.path().join("plain.db");
    sqlite3(&plain_db, &[], &schema);
    let t = Instant::now();
    sqlite3(&plain_db, &[], &script);
    let plain = t.elapsed();

    let per_s = n as f64 / ours.as_secs_f64();
    table(
        &format!("family import, {n} families"),
        &[
            (
                "rows written".into(),
                format!("{rows} (families, members, responsibilities, check-ins, audit)"),
            ),
            (
                "nazorg family import".into(),
                format!("{:.2} s = {per_s:.0} families/s", ours.as_secs_f64()),
            ),
            (
                "sqlite3 CLI, same rows, one transaction".into(),
                format!(
                    "{:.2} s = {:.0} families/s",
                    plain.as_secs_f64(),
                    n as f64 / plain.as_secs_f64()
                ),
            ),
            (
                "ratio (ours / sqlite3)".into(),
                format!("{:.1}×", ours.as_secs_f64() / plain.as_secs_f64()),
            ),
            ("goal".into(), "≥ 2,000 families/s".into()),
        ],
    );
    if full {
        println!("(release numbers belong in BENCHMARKS.md)");
    }
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let n = std::env::var("BENCH_FAMILIES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if full { FULL_FAMILIES } else { SMOKE_FAMILIES });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run(n, full));
}
