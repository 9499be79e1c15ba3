//! The spine at scale: enrolment throughput through the real service path, then one sweep
//! over a large installation, compared with the `sqlite3` CLI running the sweep's query.
//! With `NAZORG_BENCH_DATABASE_URL` set (see `scripts/bench-postgres`) the same runs on
//! PostgreSQL, compared with `psql` running the sweep's query on the same database.
//!
//! `cargo bench --bench spine` runs the full size (100,000 families with 1 adult and
//! 3 children each). Without `--bench` (as `cargo test --all-targets` runs it) a small smoke
//! version runs instead, with the same assertions. `BENCH_FAMILIES=N` overrides the size.
//!
//! Scenario: every family is enrolled at the reference instant R (a bulk intake), with
//! episode dates spread uniformly over the two years before R, so slots more than
//! `overdue_after` (3 days) before R are stored as lapsed. The sweep instant t ≥ R is then
//! calibrated with SQL so that about 1% of all slots owe a notice at t.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::*;

use chrono::{DateTime, TimeZone, Utc};
use nazorg::clock::{ManualClock, SharedClock};
use nazorg::service::{App, family};
use nazorg::store::OpenMode;
use rand::SeedableRng;
use rand::rngs::StdRng;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const FULL_FAMILIES: usize = 100_000;
const SMOKE_FAMILIES: usize = 300;
/// Share of all slots that should owe a notice at the sweep instant.
const OWED_SHARE: f64 = 0.01;
/// Episode dates lie in the `SPREAD_DAYS` days before R.
const SPREAD_DAYS: i64 = 730;
const SQLITE3: &str = "/usr/bin/sqlite3";

fn file_size(p: &Path) -> u64 {
    std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)
}

/// The database file plus its WAL and shared-memory files, if present.
fn db_sizes(db: &Path) -> (u64, u64) {
    let side = |suffix: &str| {
        let mut s = db.as_os_str().to_owned();
        s.push(suffix);
        file_size(&PathBuf::from(s))
    };
    (file_size(db), side("-wal"))
}

/// The sweep's candidate query (store::checkins::notice_candidates) with `t` inlined and
/// without its batch LIMIT.
fn candidate_sql(t: i64) -> String {
    format!(
        "SELECT c.id, c.ref, c.family_id, c.wave, c.due_at, c.notice_stage, c.overdue_count, c.last_notice_at, \
                f.ref, f.plan, f.language, f.interpreter_needed, COALESCE(\
             (SELECT r.municipality FROM responsibilities r \
              WHERE r.family_id = c.family_id AND r.valid_from <= c.due_at \
              ORDER BY r.valid_from DESC LIMIT 1), \
             (SELECT r.municipality FROM responsibilities r \
              WHERE r.family_id = c.family_id ORDER BY r.valid_from LIMIT 1)) \
         FROM checkins c JOIN families f ON f.id = c.family_id \
         WHERE c.status = 'open' AND c.next_notice_at <= {t} AND f.status = 'running' \
         ORDER BY c.next_notice_at, c.id"
    )
}

struct CliTiming {
    plan: String,
    /// Per statement as the CLI reports it (`.timer on` real, `\timing`), median.
    timer_real: Duration,
    /// `.timer on` user + sys seconds, median (sqlite3 only: psql's `\timing` is wall time).
    timer_cpu: Option<Duration>,
    /// Whole CLI process (start, open or connect, query, exit), median.
    process: Duration,
    /// Per query when one process runs it 21 times: (T(21) - T(1)) / 20, median.
    amortised: Duration,
    rows: usize,
}

/// The command-line client of the backend: the baseline for the library's queries.
enum Cli<'a> {
    Sqlite3(&'a Path),
    Psql(&'a str),
}

impl Cli<'_> {
    fn name(&self) -> &'static str {
        match self {
            Cli::Sqlite3(_) => "sqlite3",
            Cli::Psql(_) => "psql",
        }
    }

    /// Runs a script (stdin), read-only, and returns its stdout.
    fn run(&self, script: &str) -> String {
        let mut cmd = match self {
            Cli::Sqlite3(db) => {
                let mut c = Command::new(SQLITE3);
                c.arg("-readonly").arg(db);
                c
            }
            Cli::Psql(url) => {
                let mut c = Command::new("psql");
                c.args([
                    "-X",
                    "-q",
                    "-A",
                    "-t",
                    "-v",
                    "ON_ERROR_STOP=1",
                    "-d",
                    url,
                    "-f",
                    "-",
                ])
                .env(
                    "PGOPTIONS",
                    "-c client_min_messages=warning -c default_transaction_read_only=on",
                );
                c
            }
        };
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the CLI starts");
        {
            use std::io::Write;
            let mut stdin = child.stdin.take().expect("stdin");
            stdin.write_all(script.as_bytes()).expect("script written");
        }
        let out = child.wait_with_output().expect("the CLI runs");
        assert!(
            out.status.success(),
            "{} failed: {}",
            self.name(),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf-8")
    }

    fn quiet(&self) -> &'static str {
        match self {
            Cli::Sqlite3(_) => ".output /dev/null\n",
            Cli::Psql(_) => "\\o /dev/null\n",
        }
    }

    fn plan(&self, sql: &str) -> String {
        match self {
            Cli::Sqlite3(_) => self.run(&format!("EXPLAIN QUERY PLAN {sql};\n")),
            Cli::Psql(_) => self.run(&format!("EXPLAIN {sql};\n")),
        }
    }

    /// (real, user + sys) per statement, from the CLI's own timer.
    fn timed(&self, sql: &str, runs: usize) -> Vec<(Duration, Option<Duration>)> {
        let timer = match self {
            Cli::Sqlite3(_) => ".timer on\n",
            Cli::Psql(_) => "\\timing on\n",
        };
        let mut script = format!("{timer}{}", self.quiet());
        for _ in 0..runs {
            script.push_str(sql);
            script.push_str(";\n");
        }
        let out = self.run(&script);
        let mut times = Vec::new();
        for line in out.lines() {
            if let Some(rest) = line.strip_prefix("Run Time:") {
                // Run Time: real 0.012 user 0.010000 sys 0.001000
                let f: Vec<&str> = rest.split_whitespace().collect();
                let num = |i: usize| f.get(i).and_then(|s| s.parse::<f64>().ok()).unwrap_or(0.0);
                times.push((
                    Duration::from_secs_f64(num(1)),
                    Some(Duration::from_secs_f64(num(3) + num(5))),
                ));
            } else if let Some(rest) = line.strip_prefix("Time: ") {
                // Time: 12.345 ms
                let ms = rest
                    .split_whitespace()
                    .next()
                    .and_then(|s| s.parse::<f64>().ok())
                    .unwrap_or(0.0);
                times.push((Duration::from_secs_f64(ms / 1e3), None));
            }
        }
        times
    }
}

fn cli_timing(cli: &Cli, sql: &str, runs: usize) -> CliTiming {
    let plan = cli.plan(sql);
    let rows = cli.run(&format!("{sql};\n")).lines().count();
    // Statement time as the CLI reports it (results to /dev/null).
    let timed = cli.timed(sql, runs);
    let mut real: Vec<Duration> = timed.iter().map(|t| t.0).collect();
    let mut cpu: Vec<Duration> = timed.iter().filter_map(|t| t.1).collect();
    real.sort();
    cpu.sort();
    // Whole process, output discarded; and a process running the query 21 times, so the
    // difference gives the per-query time without process start and open.
    let time_script = |queries: usize| {
        let mut script = String::from(cli.quiet());
        for _ in 0..queries {
            script.push_str(sql);
            script.push_str(";\n");
        }
        let t = Instant::now();
        cli.run(&script);
        t.elapsed()
    };
    let mut process = Vec::new();
    let mut amortised = Vec::new();
    for _ in 0..runs {
        let one = time_script(1);
        let many = time_script(21);
        process.push(one);
        amortised.push(many.saturating_sub(one) / 20);
    }
    process.sort();
    amortised.sort();
    CliTiming {
        plan,
        timer_real: percentile(&real, 0.5),
        timer_cpu: (!cpu.is_empty()).then(|| percentile(&cpu, 0.5)),
        process: percentile(&process, 0.5),
        amortised: percentile(&amortised, 0.5),
        rows,
    }
}

// ---- the benchmark -------------------------------------------------------------------------

async fn checkpoint(app: &App) {
    app.store.checkpoint().await.unwrap();
}

/// (database, WAL) bytes: the SQLite files, or PostgreSQL's `pg_database_size` (its WAL is
/// the server's, shared by every database: not counted).
async fn sizes(app: &App, db: &Path) -> (u64, u64) {
    if app.store.backend() == nazorg::store::Backend::Postgres {
        let n = scalar(
            app,
            "SELECT CAST(pg_database_size(current_database()) AS BIGINT)",
        )
        .await;
        (n as u64, 0)
    } else {
        db_sizes(db)
    }
}

async fn run(n: usize, full: bool, pg: Option<&BenchDb>) {
    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("nazorg.toml");
    std::fs::write(&config_path, on_database(&config_text(), pg)).unwrap();
    let db = dir.path().join("var/nazorg.db");

    // R: a fixed reference instant, so runs are comparable.
    let reference = Utc.with_ymd_and_hms(2027, 6, 15, 10, 0, 0).unwrap();
    let clock = ManualClock::new(reference);
    let shared: SharedClock = Arc::new(clock.clone());
    let app = open_app(&config_path, shared.clone(), OpenMode::CreateAndMigrate).await;
    let today = reference.with_timezone(&app.config.timezone).date_naive();

    // 1. Enrolment, one family per transaction through the service.
    println!(
        "enrolling {n} families (1 adult + 3 children, plan `standard`, 8 slots) at R = {reference}"
    );
    let mut rng = StdRng::seed_from_u64(0x6e617a6f7267);
    let mut lat = Vec::with_capacity(n);
    let mut chunk_rows = Vec::new();
    let progress_every = (n / 10).max(1);
    let started = Instant::now();
    let mut chunk_start = Instant::now();
    let mut slots_open = 0usize;
    for i in 0..n {
        let e = synthetic_family(&mut rng, i, today, SPREAD_DAYS);
        let t = Instant::now();
        let enrolled = family::enrol(&app, &e).await.expect("enrolment succeeds");
        lat.push(t.elapsed());
        assert_eq!(enrolled.members.len(), 4);
        assert_eq!(enrolled.checkins.len(), 8);
        slots_open += enrolled
            .checkins
            .iter()
            .filter(|c| c.status == "open")
            .count();
        if full && (i + 1).is_multiple_of(progress_every) {
            let el = chunk_start.elapsed();
            let rate = progress_every as f64 / el.as_secs_f64();
            println!(
                "  {:>7} families  {:>8.1} s  last {progress_every}: {rate:>7.0} families/s",
                i + 1,
                started.elapsed().as_secs_f64()
            );
            chunk_rows.push((i + 1, rate));
            chunk_start = Instant::now();
        }
    }
    let enrol_total = started.elapsed();
    lat.sort();
    let slots = n * 8;
    let families_db = scalar(&app, "SELECT COUNT(*) FROM families").await;
    let children_db = scalar(&app, "SELECT COUNT(*) FROM members WHERE role = 'child'").await;
    let slots_db = scalar(&app, "SELECT COUNT(*) FROM checkins").await;
    let open_db = scalar(&app, "SELECT COUNT(*) FROM checkins WHERE status = 'open'").await;
    assert_eq!(families_db as usize, n);
    assert_eq!(children_db as usize, 3 * n);
    assert_eq!(slots_db as usize, slots);
    assert_eq!(open_db as usize, slots_open);

    // 2. Calibrate the sweep instant t: the (1% of slots)-th smallest next_notice_at,
    //    rounded up to the next 5-minute sweep tick.
    let (target, t_secs, owed) = calibrate(&app, slots as i64, OWED_SHARE).await;
    let t: DateTime<Utc> = DateTime::from_timestamp(t_secs, 0).unwrap();
    let share = owed as f64 / slots as f64;
    assert!(owed >= target, "calibration: {owed} < {target}");
    assert!(
        (0.005..0.03).contains(&share),
        "calibration off: {owed} of {slots} slots owe a notice at {t}"
    );

    // The plan the engine (through sqlx) chooses for the sweep's query.
    let (explain, plan_column) = if pg.is_some() {
        ("EXPLAIN", 0)
    } else {
        ("EXPLAIN QUERY PLAN", 3)
    };
    let plan_rows = sqlx::query(&format!("{explain} {} LIMIT 500", candidate_sql(t_secs)))
        .fetch_all(app.store.pool())
        .await
        .unwrap();
    let plan_lib: Vec<String> = plan_rows
        .iter()
        .map(|r| sqlx::Row::get::<String, _>(r, plan_column))
        .collect();
    assert!(
        pg.is_some() || plan_lib.iter().any(|l| l.contains("checkins_next_notice")),
        "the sweep's query does not use the partial index checkins_next_notice: {plan_lib:?}"
    );

    // The read part of the sweep alone, in process: all candidates, and one batch of 500.
    let reads = if full { 5 } else { 2 };
    let mut read_all = Vec::new();
    let mut read_batch = Vec::new();
    for _ in 0..reads {
        let mut tx = app.store.read().await.unwrap();
        let t0 = Instant::now();
        let rows = nazorg::store::checkins::notice_candidates(&mut tx, t_secs, i64::MAX)
            .await
            .unwrap();
        read_all.push(t0.elapsed());
        assert_eq!(rows.len() as i64, owed);
        let t0 = Instant::now();
        let rows = nazorg::store::checkins::notice_candidates(&mut tx, t_secs, 500)
            .await
            .unwrap();
        read_batch.push(t0.elapsed());
        assert_eq!(rows.len() as i64, owed.min(500));
        tx.commit().await.unwrap();
    }
    read_all.sort();
    read_batch.sort();
    // Sizes with the WAL folded in. The app stays open: closing the pool returns before
    // the last connection's own checkpoint has finished, which races with sqlite3 below.
    checkpoint(&app).await;
    let (db_before, wal_before) = sizes(&app, &db).await;
    // 3. The same query in the backend's CLI (sqlite3 on the same file, psql on the same
    //    database).
    let cli = match pg {
        Some(pg) => Some(Cli::Psql(&pg.url)),
        None if Path::new(SQLITE3).exists() => Some(Cli::Sqlite3(&db)),
        None => {
            println!("({SQLITE3} not found: CLI comparison skipped)");
            None
        }
    };
    let cli = cli.map(|cli| {
        let runs = if full { 7 } else { 3 };
        let rows_q = cli_timing(&cli, &candidate_sql(t_secs), runs);
        assert_eq!(rows_q.rows as i64, owed);
        // SQLite's planner must use the partial index; PostgreSQL's chooses by its
        // statistics, so there its plan is reported, not required.
        if matches!(cli, Cli::Sqlite3(_)) {
            assert!(
                rows_q.plan.contains("checkins_next_notice"),
                "sqlite3 CLI plan does not use checkins_next_notice:\n{}",
                rows_q.plan
            );
        }
        let count_q = cli_timing(&cli, &count_sql(t_secs), runs);
        (cli.name(), rows_q, count_q)
    });

    // 4. One sweep at t, then the same sweep again (nothing left to do).
    clock.set(t);
    let t0 = Instant::now();
    let summary = nazorg::sweep::sweep(&app, t).await.expect("sweep");
    let sweep_time = t0.elapsed();
    let notices = summary.upcoming + summary.due + summary.overdue + summary.escalation;
    assert_eq!(summary.examined as i64, owed, "{summary:?}");
    assert_eq!(notices as i64, owed, "{summary:?}");
    assert_eq!(summary.already_queued, 0);
    assert_eq!(summary.unroutable, 0);
    // (The new-family notices were queued at enrolment.)
    assert_eq!(
        scalar(
            &app,
            "SELECT COUNT(*) FROM outbox WHERE kind != 'new_family'"
        )
        .await,
        owed
    );
    assert_eq!(scalar(&app, &count_sql(t_secs)).await, 0);
    let t0 = Instant::now();
    let again = nazorg::sweep::sweep(&app, t).await.expect("second sweep");
    let idle_sweep = t0.elapsed();
    assert_eq!(again.examined, 0, "{again:?}");
    // Key rotation over the whole installation: a new KEK, every family's data key rewrapped
    // in batches of 500 (field ciphertexts untouched).
    let rotation_start = Instant::now();
    let rotation = nazorg::service::keys::rotate(
        &app,
        &nazorg::service::keys::RotateRequest {
            new_kek: true,
            batch: 500,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let took = rotation_start.elapsed();
    assert_eq!(
        rotation.deks_rewrapped as usize, n,
        "every family rewrapped"
    );
    assert!(!rotation.incomplete);
    checkpoint(&app).await;
    let (db_after, wal_after) = sizes(&app, &db).await;
    app.store.close().await;

    // ---- report ----
    let profile = if cfg!(debug_assertions) {
        "debug (test profile)"
    } else {
        "release (bench profile)"
    };
    let backend = backend_name(pg);
    table(
        &format!("Enrolment, {backend}, {profile}"),
        &[
            ("families".into(), format!("{n}")),
            ("members".into(), format!("{} ({} children)", 4 * n, 3 * n)),
            (
                "check-in slots".into(),
                format!(
                    "{slots} ({slots_open} open, {} lapsed at enrolment)",
                    slots - slots_open
                ),
            ),
            (
                "total time".into(),
                format!("{:.2} s", enrol_total.as_secs_f64()),
            ),
            (
                "throughput".into(),
                format!("{:.0} families/s", n as f64 / enrol_total.as_secs_f64()),
            ),
            ("latency p50".into(), ms(percentile(&lat, 0.50))),
            ("latency p90".into(), ms(percentile(&lat, 0.90))),
            ("latency p99".into(), ms(percentile(&lat, 0.99))),
            ("latency max".into(), ms(percentile(&lat, 1.0))),
        ],
    );
    if !chunk_rows.is_empty() {
        let rows: Vec<(String, String)> = chunk_rows
            .iter()
            .map(|(k, r)| (format!("up to {k}"), format!("{r:.0} families/s")))
            .collect();
        table("Enrolment rate by database size", &rows);
    }
    table(
        &format!("Sweep, {backend}"),
        &[
            ("reference instant R".into(), reference.to_string()),
            (
                "sweep instant t".into(),
                format!(
                    "{t} (R + {:.1} h)",
                    (t - reference).num_minutes() as f64 / 60.0
                ),
            ),
            (
                "notices owed at t".into(),
                format!("{owed} ({:.2}% of {slots} slots)", share * 100.0),
            ),
            ("sweep time".into(), ms(sweep_time)),
            (
                "notices enqueued".into(),
                format!(
                    "{notices} (upcoming {}, due {}, overdue {}, escalation {})",
                    summary.upcoming, summary.due, summary.overdue, summary.escalation
                ),
            ),
            (
                "sweep rate".into(),
                format!("{:.0} notices/s", notices as f64 / sweep_time.as_secs_f64()),
            ),
            ("second sweep at t (nothing owed)".into(), ms(idle_sweep)),
            (
                "candidate query, all rows (sqlx, median)".into(),
                ms(percentile(&read_all, 0.5)),
            ),
            (
                "candidate query, one batch of 500 (sqlx)".into(),
                ms(percentile(&read_batch, 0.5)),
            ),
        ],
    );
    if let Some((name, rows_q, count_q)) = &cli {
        let library = percentile(&read_all, 0.5);
        table(
            &format!("The same query in the {name} CLI (same database, read-only, median)"),
            &[
                (
                    "candidate query: CLI timer real".into(),
                    ms(rows_q.timer_real),
                ),
                (
                    "candidate query: CLI timer user+sys".into(),
                    rows_q.timer_cpu.map(ms).unwrap_or_else(|| "-".into()),
                ),
                ("candidate query: whole process".into(), ms(rows_q.process)),
                (
                    "candidate query: amortised over 21 runs".into(),
                    ms(rows_q.amortised),
                ),
                (
                    "COUNT(*) form: CLI timer real".into(),
                    ms(count_q.timer_real),
                ),
                (
                    "COUNT(*) form: amortised over 21 runs".into(),
                    ms(count_q.amortised),
                ),
                ("COUNT(*) form: whole process".into(), ms(count_q.process)),
                (
                    format!("ratio: candidate query via sqlx (all rows) / {name} amortised"),
                    format!(
                        "{:.2}",
                        library.as_secs_f64() / rows_q.amortised.as_secs_f64().max(1e-9)
                    ),
                ),
            ],
        );
        println!("\n{explain} ({name} CLI):\n{}", rows_q.plan.trim_end());
    }
    println!("{explain} (library, via sqlx):\n{}", plan_lib.join("\n"));
    table(
        "Database size",
        &[
            (
                "after enrolment".into(),
                format!("{} (+ WAL {})", mib(db_before), mib(wal_before)),
            ),
            (
                "after the sweep".into(),
                format!("{} (+ WAL {})", mib(db_after), mib(wal_after)),
            ),
            (
                "per family".into(),
                format!("{:.0} bytes", db_before as f64 / n as f64),
            ),
        ],
    );

    table(
        "keys rotate --new-kek",
        &[
            (
                "families rewrapped".into(),
                rotation.deks_rewrapped.to_string(),
            ),
            ("time".into(), ms(took)),
            (
                "per family".into(),
                format!("{:.1} µs", took.as_secs_f64() * 1e6 / n.max(1) as f64),
            ),
        ],
    );
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let n = std::env::var("BENCH_FAMILIES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if full { FULL_FAMILIES } else { SMOKE_FAMILIES });
    if !full {
        println!("spine smoke run ({n} families); `cargo bench --bench spine` for the full size");
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let started = Instant::now();
    let pg = BenchDb::from_env();
    rt.block_on(run(n, full, pg.as_ref()));
    println!(
        "\n(spine benchmark ran {:.1} s)",
        started.elapsed().as_secs_f64()
    );
}
