//! The team workspace's caseload page for one municipality with many families: the caseload
//! query, decrypting each case director's name (and, for half of the families, the team's
//! own case number), the audit entry and the template, as
//! `GET /team/` does for a signed-in member. Latency percentiles over repeated renders.
//!
//! `cargo bench --bench workspace` runs the full size (2,000 families); without `--bench`
//! (as `cargo test --all-targets` runs it) a small smoke version checks the page renders.
//! `BENCH_FAMILIES` and `BENCH_RENDERS` override the size; `BENCH_KEEP=1` keeps the
//! installation (its folder is printed) to inspect the database with `sqlite3`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use chrono::{TimeZone, Utc};
use common::*;
use nazorg::clock::ManualClock;
use nazorg::domain::household::FamilyUpdate;
use nazorg::mail::Language;
use nazorg::service::family;
use nazorg::store::OpenMode;
use nazorg::web::i18n::T;
use rand::SeedableRng;
use rand::rngs::StdRng;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let families = env_usize("BENCH_FAMILIES", if full { 2_000 } else { 20 });
    let renders = env_usize("BENCH_RENDERS", if full { 200 } else { 3 });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("nazorg.toml");
    std::fs::write(&config_path, config_text()).unwrap();
    let enrol_at = Utc.with_ymd_and_hms(2027, 1, 2, 9, 0, 0).unwrap();
    let clock = ManualClock::new(enrol_at);
    rt.block_on(async {
        let app = open_app(
            &config_path,
            Arc::new(clock.clone()),
            OpenMode::CreateAndMigrate,
        )
        .await;
        let mut rng = StdRng::seed_from_u64(12);
        let today = enrol_at.date_naive();
        let started = Instant::now();
        for i in 0..families {
            let mut e = synthetic_family(&mut rng, i, today, 60);
            e.municipality = "GM0363".into();
            let enrolled = family::enrol(&app, &e).await.unwrap();
            // Half of the families carry the team's own case number (sealed, opened too).
            if i % 2 == 0 {
                let u = FamilyUpdate {
                    case_number: Some(format!("AMS-2027-{i:05}")),
                    ..Default::default()
                };
                nazorg::service::record::update(&app, &enrolled.family, &u)
                    .await
                    .unwrap();
            }
        }
        let enrol_time = started.elapsed();
        // A few weeks on, so the caseload has due and overdue contacts.
        clock.set(Utc.with_ymd_and_hms(2027, 2, 10, 9, 0, 0).unwrap());
        let t = T(Language::Nl);
        let first = nazorg::web::caseload_html(&app, t, "GM0363").await.unwrap();
        assert_eq!(first.matches("/team/families/F-").count(), families);
        let cpu = cpu_time(false);
        let mut took: Vec<Duration> = Vec::with_capacity(renders);
        for _ in 0..renders {
            let s = Instant::now();
            let html = nazorg::web::caseload_html(&app, t, "GM0363").await.unwrap();
            took.push(s.elapsed());
            assert!(html.len() > 1000);
        }
        took.sort();
        let page_cpu = (cpu_time(false) - cpu) / renders as u32;
        // The rows without the template (query, decryption, audit), and the query alone, to
        // see where the time goes.
        let cpu = cpu_time(false);
        let mut data: Vec<Duration> = Vec::with_capacity(renders);
        for _ in 0..renders {
            let s = Instant::now();
            let n = nazorg::web::caseload_data(&app, t, "GM0363").await.unwrap();
            data.push(s.elapsed());
            assert_eq!(n, families);
        }
        data.sort();
        let data_cpu = (cpu_time(false) - cpu) / renders as u32;
        let cpu = cpu_time(false);
        let mut query: Vec<Duration> = Vec::with_capacity(renders);
        for _ in 0..renders {
            let s = Instant::now();
            let mut tx = app.store.read().await.unwrap();
            let rows =
                nazorg::store::caseload::of_municipality(&mut tx, "GM0363", app.now().timestamp())
                    .await
                    .unwrap();
            tx.commit().await.unwrap();
            query.push(s.elapsed());
            assert_eq!(rows.len(), families);
        }
        query.sort();
        let query_cpu = (cpu_time(false) - cpu) / renders as u32;
        // The same SQL text in the sqlite3 CLI (20 runs in one process), for the ratio.
        let at = app.now().timestamp();
        let (cli, cli_cpu) = sqlite3_per_run(&dir.path().join("var/nazorg.db"), at, 20);
        table(
            &format!("Caseload page, {families} families of one municipality, {renders} renders"),
            &[
                (
                    "setup: enrolment".into(),
                    format!("{:.1} s", enrol_time.as_secs_f64()),
                ),
                (
                    "page size".into(),
                    format!("{:.0} KiB", first.len() as f64 / 1024.0),
                ),
                ("p50".into(), ms(percentile(&took, 0.50))),
                ("p95".into(), ms(percentile(&took, 0.95))),
                ("p99".into(), ms(percentile(&took, 0.99))),
                ("max".into(), ms(*took.last().unwrap())),
                ("CPU time per page (every thread)".into(), ms(page_cpu)),
                (
                    "rows without the template (query, decryption, audit), p50".into(),
                    ms(percentile(&data, 0.50)),
                ),
                (
                    "rows without the template, p99".into(),
                    ms(percentile(&data, 0.99)),
                ),
                ("rows without the template, CPU time".into(), ms(data_cpu)),
                (
                    "of which the query (rows collected), p50".into(),
                    ms(percentile(&query, 0.50)),
                ),
                (
                    "of which the query, p99".into(),
                    ms(percentile(&query, 0.99)),
                ),
                ("of which the query, CPU time".into(), ms(query_cpu)),
                ("the same SQL in the sqlite3 CLI, per run".into(), ms(cli)),
                (
                    "the same SQL in the sqlite3 CLI, CPU time".into(),
                    ms(cli_cpu),
                ),
                (
                    "ratio: query CPU / sqlite3 CPU".into(),
                    format!("{:.2}", query_cpu.as_secs_f64() / cli_cpu.as_secs_f64()),
                ),
                (
                    "ratio: query p50 / sqlite3".into(),
                    format!(
                        "{:.2}",
                        percentile(&query, 0.50).as_secs_f64() / cli.as_secs_f64()
                    ),
                ),
            ],
        );
    });
    if std::env::var_os("BENCH_KEEP").is_some() {
        println!("kept: {}", dir.keep().display());
    }
}

/// The caseload's SQL text with its two parameters written in, run `runs` times by the
/// `sqlite3` CLI in one process: the time of one run and its CPU time, process start
/// included.
fn sqlite3_per_run(db: &std::path::Path, at: i64, runs: u32) -> (Duration, Duration) {
    let sql = nazorg::store::caseload::ROWS
        .replace("$1", "'GM0363'")
        .replace("$2", &at.to_string());
    let script = format!(
        ".output /dev/null\n{}",
        format!("{sql};\n").repeat(runs as usize)
    );
    let started = Instant::now();
    let cpu = cpu_time(true);
    sqlite3(db, &[], script.as_bytes());
    (started.elapsed() / runs, (cpu_time(true) - cpu) / runs)
}
