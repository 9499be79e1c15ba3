//! P1: one sweep over a large installation (300,000 families, 1,000,000 children, 2.4M
//! check-in slots, ~1% of them owing a notice), beside the same reads and writes done as
//! plain SQL by the `sqlite3` CLI in the same run: the candidate query, the INSERTs of the
//! very messages the sweep rendered (and their calendar attachments), the UPDATEs of the
//! slots, in one committed transaction with the daemon's pragmas.
//!
//! The installation is generated through the Store API (`family import`: validated, sealed
//! under a fresh data key per family, audited) once and cached in
//! `$CARGO_TARGET_DIR/bench-cache/sweep-N` (or `BENCH_CACHE`); every run works on copies.
//!
//! `cargo bench --bench sweep` runs the full size; without `--bench` (as
//! `cargo test --all-targets` runs it) a smoke run of 300 families, uncached, with the same
//! assertions. `BENCH_FAMILIES=N` overrides the size.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::*;

use chrono::{DateTime, TimeZone, Utc};
use nazorg::clock::{ManualClock, SharedClock};
use nazorg::service::import;
use nazorg::store::OpenMode;
use rand::SeedableRng;
use rand::rngs::StdRng;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

const FULL_FAMILIES: usize = 300_000;
const SMOKE_FAMILIES: usize = 300;
/// Families per `import` call while generating (one progress line each).
const CHUNK: usize = 10_000;
const OWED_SHARE: f64 = 0.01;
const SPREAD_DAYS: i64 = 730;

/// Every third family has four children, the others three: 300,000 families hold
/// 1,000,000 children.
fn children_of(i: usize) -> usize {
    if i.is_multiple_of(3) { 4 } else { 3 }
}

fn reference() -> DateTime<Utc> {
    // A Monday: the calibrated sweep instant (about 3 days later) falls on a working day,
    // so no notice is held for the next one.
    Utc.with_ymd_and_hms(2027, 6, 14, 10, 0, 0).unwrap()
}

/// Copies an installation. A closed store's `-wal` and `-shm` files (checkpointed, so
/// empty) may be deleted by SQLite's worker thread just after the listing, as its last
/// connection closes: one that is gone by then is not needed. Anything else must copy.
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let dest = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &dest);
            continue;
        }
        let name = entry.file_name().to_string_lossy().into_owned();
        match std::fs::copy(entry.path(), &dest) {
            Ok(_) => {}
            Err(e)
                if e.kind() == std::io::ErrorKind::NotFound
                    && (name.ends_with("-wal") || name.ends_with("-shm")) => {}
            Err(e) => panic!("copying {name}: {e}"),
        }
    }
}

/// Generates the installation in `dir` through `family import`, with a progress line.
async fn generate(dir: &Path, n: usize, progress: bool) {
    std::fs::create_dir_all(dir).unwrap();
    let config_path = dir.join("nazorg.toml");
    std::fs::write(&config_path, config_text()).unwrap();
    let clock: SharedClock = Arc::new(ManualClock::new(reference()));
    let app = open_app(&config_path, clock, OpenMode::CreateAndMigrate).await;
    let today = reference().with_timezone(&app.config.timezone).date_naive();
    let mut rng = StdRng::seed_from_u64(0x0073_7765_6570);
    let started = Instant::now();
    let mut done = 0;
    while done < n {
        let upto = (done + CHUNK).min(n);
        let mut jsonl = Vec::new();
        for i in done..upto {
            let e = synthetic_family_with(&mut rng, i, today, SPREAD_DAYS, children_of(i));
            serde_json::to_writer(&mut jsonl, &e).unwrap();
            jsonl.push(b'\n');
        }
        let t = Instant::now();
        let out = import::import(&app, std::io::Cursor::new(&jsonl))
            .await
            .expect("import runs");
        assert_eq!(out.enrolled.len(), upto - done, "every line enrolled");
        if progress {
            println!(
                "  generated {upto:>7} / {n} families  {:>7.1} s  ({:.0} families/s in this chunk)",
                started.elapsed().as_secs_f64(),
                (upto - done) as f64 / t.elapsed().as_secs_f64()
            );
        }
        done = upto;
    }
    app.store.checkpoint().await.unwrap();
    app.store.close().await;
}

/// The installation of `n` families: cached for the full size, fresh for a smoke run.
async fn installation(n: usize, full: bool, scratch: &Path) -> PathBuf {
    if !full {
        let dir = scratch.join("generated");
        generate(&dir, n, false).await;
        return dir;
    }
    let dir = cache_root().join(format!("sweep-{n}"));
    if dir.join("complete").exists() {
        println!("using the cached installation {}", dir.display());
        return dir;
    }
    let partial = cache_root().join(format!("sweep-{n}.partial"));
    let _ = std::fs::remove_dir_all(&partial);
    println!(
        "generating {n} families through `family import` into {} (cached for later runs)",
        dir.display()
    );
    let t = Instant::now();
    generate(&partial, n, true).await;
    std::fs::write(
        partial.join("complete"),
        format!("{:.1} s\n", t.elapsed().as_secs_f64()),
    )
    .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::rename(&partial, &dir).unwrap();
    dir
}

/// The sweep's candidate query (`store::checkins::notice_candidates`) with `t` inlined and
/// without its batch LIMIT.
fn candidate_sql(t: i64) -> String {
    format!(
        "SELECT c.id, c.ref, c.family_id, c.wave, c.due_at, c.notice_stage, c.overdue_count, c.last_notice_at, \
                f.ref, f.plan, f.language, f.interpreter_needed, COALESCE(\
             (SELECT r.municipality FROM responsibilities r \
              WHERE r.family_id = c.family_id AND r.valid_from <= c.due_at \
              ORDER BY r.valid_from DESC LIMIT 1), \
             (SELECT r.municipality FROM responsibilities r \
              WHERE r.family_id = c.family_id ORDER BY r.valid_from LIMIT 1)), \
                (SELECT h.from_municipality FROM handovers h WHERE h.family_id = c.family_id \
                 AND h.kind = 'move' AND h.status IN ('pending', 'escalated')), \
                c.attempts, c.retry_due_at \
         FROM checkins c JOIN families f ON f.id = c.family_id \
         WHERE c.status = 'open' AND c.next_notice_at <= {t} AND f.status = 'running' \
         ORDER BY c.next_notice_at, c.id"
    )
}

async fn run(n: usize, full: bool) {
    let root = if full {
        cache_root()
    } else {
        std::env::temp_dir()
    };
    std::fs::create_dir_all(&root).unwrap();
    let scratch = tempfile::tempdir_in(&root).unwrap();
    let source = installation(n, full, scratch.path()).await;

    // Two copies of the same installation: one for the sweep, one for the sqlite3 CLI.
    let ours = scratch.path().join("ours");
    copy_dir(&source, &ours);
    let plain_dir = scratch.path().join("plain");
    copy_dir(&source.join("var"), &plain_dir);
    let plain_db = plain_dir.join("nazorg.db");

    let clock = ManualClock::new(reference());
    let shared: SharedClock = Arc::new(clock.clone());
    let app = open_app(&ours.join("nazorg.toml"), shared, OpenMode::Existing).await;
    let families = scalar(&app, "SELECT COUNT(*) FROM families").await;
    let children = scalar(&app, "SELECT COUNT(*) FROM members WHERE role = 'child'").await;
    let slots = scalar(&app, "SELECT COUNT(*) FROM checkins").await;
    assert_eq!(families as usize, n);
    let expected_children: usize = (0..n).map(children_of).sum();
    assert_eq!(children as usize, expected_children);
    assert_eq!(slots as usize, n * 8);

    // The sweep instant t: the (1% of slots)-th smallest next_notice_at among open slots,
    // rounded up to the next 5-minute tick.
    let (_, t_secs, owed) = calibrate(&app, slots, OWED_SHARE).await;
    let t: DateTime<Utc> = DateTime::from_timestamp(t_secs, 0).unwrap();
    let share = owed as f64 / slots as f64;
    assert!(
        (0.005..0.03).contains(&share),
        "calibration off: {owed} of {slots} slots owe a notice at {t}"
    );
    let outbox_before = scalar(&app, "SELECT COALESCE(MAX(id), 0) FROM outbox").await;

    // One sweep at t, timed as the daemon runs it.
    clock.set(t);
    let load_before = load_average();
    let t0 = Instant::now();
    let summary = nazorg::sweep::sweep(&app, t).await.expect("sweep");
    let sweep_time = t0.elapsed();
    let notices = summary.upcoming + summary.due + summary.overdue + summary.escalation;
    assert_eq!(summary.examined as i64, owed, "{summary:?}");
    assert_eq!(notices as i64, owed, "{summary:?}");
    assert_eq!(summary.already_queued, 0);
    assert_eq!(summary.unroutable, 0);
    assert_eq!(scalar(&app, &count_sql(t_secs)).await, 0);
    let queued = scalar(
        &app,
        &format!("SELECT COUNT(*) FROM outbox WHERE id > {outbox_before}"),
    )
    .await;
    assert!(queued >= owed, "one message per notice (and digests)");
    let t0 = Instant::now();
    let again = nazorg::sweep::sweep(&app, t).await.expect("second sweep");
    let idle_sweep = t0.elapsed();
    assert_eq!(again.examined, 0, "{again:?}");
    app.store.checkpoint().await.unwrap();
    let ours_db = ours.join("var/nazorg.db");

    // The same writes as plain SQL: the messages exactly as the sweep rendered them, and
    // each slot's new notice state.
    let mut script = String::from(
        "PRAGMA journal_mode = WAL;\nPRAGMA synchronous = NORMAL;\nPRAGMA foreign_keys = ON;\n\
         PRAGMA secure_delete = ON;\n.output /dev/null\nBEGIN IMMEDIATE;\n",
    );
    script.push_str(&candidate_sql(t_secs));
    script.push_str(";\n");
    let dump = |mode: &str, sql: String| {
        String::from_utf8(sqlite3(
            &ours_db,
            &["-readonly", "-cmd", &format!(".mode insert {mode}")],
            sql.as_bytes(),
        ))
        .unwrap()
    };
    let messages = dump(
        "outbox",
        format!("SELECT * FROM outbox WHERE id > {outbox_before};"),
    );
    let attachments = dump(
        "outbox_attachments",
        format!("SELECT * FROM outbox_attachments WHERE outbox_id > {outbox_before};"),
    );
    let updates = String::from_utf8(sqlite3(
        &ours_db,
        &["-readonly"],
        format!(
            "SELECT 'UPDATE checkins SET notice_stage = ' || notice_stage || ', overdue_count = ' \
             || overdue_count || ', last_notice_at = ' || last_notice_at || ', next_notice_at = ' \
             || COALESCE(next_notice_at, 'NULL') || ' WHERE id = ' || id || ' AND status = ''open'';' \
             FROM checkins WHERE last_notice_at = {t_secs};"
        )
        .as_bytes(),
    ))
    .unwrap();
    app.store.close().await;
    let update_count = updates.lines().count() as i64;
    assert_eq!(update_count, owed, "every notified slot has its new state");
    script.push_str(&messages);
    script.push_str(&attachments);
    script.push_str(&updates);
    script.push_str("COMMIT;\n");
    let t0 = Instant::now();
    sqlite3(&plain_db, &[], script.as_bytes());
    let plain = t0.elapsed();
    let load_after = load_average();
    let plain_queued = String::from_utf8(sqlite3(
        &plain_db,
        &["-readonly"],
        format!("SELECT COUNT(*) FROM outbox WHERE id > {outbox_before};").as_bytes(),
    ))
    .unwrap();
    assert_eq!(plain_queued.trim(), queued.to_string());

    let profile = if cfg!(debug_assertions) {
        "debug (test profile)"
    } else {
        "release (bench profile)"
    };
    let ms = |d: Duration| format!("{:.0} ms", d.as_secs_f64() * 1e3);
    table(
        &format!("P1 sweep, {profile}"),
        &[
            (
                "installation".into(),
                format!("{families} families, {children} children, {slots} slots"),
            ),
            ("sweep instant t".into(), t.to_string()),
            (
                "notices owed at t".into(),
                format!("{owed} ({:.2}% of slots)", share * 100.0),
            ),
            (
                "messages queued".into(),
                format!(
                    "{queued} (upcoming {}, due {}, overdue {}, escalation {}, digests {})",
                    summary.upcoming,
                    summary.due,
                    summary.overdue,
                    summary.escalation,
                    summary.digests
                ),
            ),
            ("nazorg sweep".into(), ms(sweep_time)),
            (
                "sqlite3 CLI: same query, INSERTs and UPDATEs, one tx".into(),
                ms(plain),
            ),
            (
                "ratio (ours / sqlite3), goal ≤ 2×".into(),
                format!("{:.2}×", sweep_time.as_secs_f64() / plain.as_secs_f64()),
            ),
            ("second sweep at t (nothing owed)".into(), ms(idle_sweep)),
            (
                "load average (1, 5, 15 min) before / after".into(),
                format!("{load_before} / {load_after}"),
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
        println!("sweep smoke run ({n} families); `cargo bench --bench sweep` for the full size");
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run(n, full));
}
