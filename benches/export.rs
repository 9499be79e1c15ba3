//! The research export at scale: N children (3 per family) × 8 recorded check-ins, each
//! with sealed per-child observations, and flags at one check-in in eight (one for the
//! family, one for a child). Export time and peak memory (VmHWM of a child process that
//! only exports), next to `sqlite3 -csv` dumping the same number of rows from the same
//! database in the same run, with the ratio of their rows/s.
//!
//! `cargo bench --bench export` runs 30,000 and 300,000 children (`BENCH_CHILDREN=N` for
//! one size). Without `--bench` (as `cargo test --all-targets` runs it) a smoke run of
//! 300 children checks the output. The database is synthesised with direct inserts (much
//! faster than the service's one-transaction-per-family path), but every personal field is
//! sealed the real way: a fresh data key per family, wrapped under the KEK, JSON sealed at
//! its place. Full-size SQLite installations are made once and cached in
//! `$CARGO_TARGET_DIR/bench-cache/export-N` (or `BENCH_CACHE`); the export only adds its
//! own record to them.
//!
//! With `NAZORG_BENCH_DATABASE_URL` set (see `scripts/bench-postgres`) the same runs on
//! PostgreSQL, next to `psql` copying the same rows out as CSV.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::BenchDb;

use chrono::{TimeZone, Utc};
use nazorg::clock::{FixedClock, SharedClock};
use nazorg::config::Config;
use nazorg::crypto::{Dek, FieldPlace};
use nazorg::service::{App, seal_json};
use nazorg::store::{self, OpenMode};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

const MUNICIPALITIES: &[(&str, &str)] = &[
    ("GM0363", "VR13"),
    ("GM0599", "VR17"),
    ("GM0518", "VR15"),
    ("GM0344", "VR09"),
    ("GM0772", "VR22"),
    ("GM0014", "VR01"),
];
const OFFSETS_DAYS: [i64; 8] = [14, 42, 91, 182, 273, 365, 547, 730];

fn config_text() -> String {
    let mut s = String::from(
        r#"state_dir = "var"
[database]
url = "sqlite://var/nazorg.db"
[crypto]
identity_file = "var/nazorg.key"
create_identity = true
[mail]
transport = "file"
dir = "var/outbox"
from = "nazorg@example.org"
[plans.standard]
checkins = ["P14D", "P6W", "P3M", "P6M", "P9M", "P12M", "P18M", "P24M"]
[export]
k = 10
max_suppression = 0.05
indicators = ["wellbeing", "school_attendance"]
[export.values]
wellbeing = ["good", "fair", "poor"]
school_attendance = ["regular", "irregular", "none"]
[export.areas]
VR13 = "noord-west"
VR17 = "zuid-west"
VR15 = "zuid-west"
VR09 = "midden"
VR22 = "zuid"
VR01 = "noord"
"#,
    );
    for (code, region) in MUNICIPALITIES {
        s.push_str(&format!(
            "[[municipalities]]\ncode = \"{code}\"\nname = \"M{code}\"\nteam_email = \"t@{code}.example.org\"\ncoordinator_email = \"c@{code}.example.org\"\nregion = \"{region}\"\n"
        ));
    }
    // The indicators the codebook is checked against (check-config insists they match).
    s.push_str(
        r#"[[indicators]]
code = "wellbeing"
labels = { nl = "Welbevinden", en = "Wellbeing" }
applies_to = "child"
type = "enum"
values = ["good", "fair", "poor"]
[[indicators]]
code = "school_attendance"
labels = { nl = "Schoolbezoek", en = "School attendance" }
applies_to = "child"
type = "enum"
values = ["regular", "irregular", "none"]
[[indicators]]
code = "stressors"
labels = { nl = "Stressoren", en = "Stressors" }
applies_to = "family"
type = "enum"
values = ["debts", "housing"]
multiple = true
[[rules]]
code = "wellbeing_poor"
severity = "amber"
kind = "threshold"
indicator = "wellbeing"
op = "eq"
value = "poor"
[[rules]]
code = "stressor_new"
severity = "amber"
kind = "new_value"
indicator = "stressors"
"#,
    );
    s
}

fn export_instant() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2028, 1, 15, 12, 0, 0).unwrap()
}

async fn open(config: &Path, mode: OpenMode) -> App {
    let cfg = Config::load(config).unwrap();
    let clock: SharedClock = Arc::new(FixedClock(export_instant()));
    App::open(cfg, clock, mode).await.unwrap()
}

/// Inserts `families` families of 1 adult and 3 children, all 8 check-ins recorded.
async fn synthesise(app: &App, families: usize) {
    let mut rng = StdRng::seed_from_u64(0x6578706f7274);
    let start0 = chrono::NaiveDate::from_ymd_opt(2025, 1, 1).unwrap();
    let mut done = 0;
    while done < families {
        let mut tx = app.store.write().await.unwrap();
        let (kek_id, kek) = app.keyring.current(&mut tx, 0).await.unwrap();
        for i in done..(done + 2000).min(families) {
            let fref = format!("F-{i:08}");
            let dek = Dek::generate();
            let episode = start0 + chrono::Days::new(rng.gen_range(0..365));
            let start = episode.and_hms_opt(9, 0, 0).unwrap().and_utc().timestamp();
            let place = |table: &'static str, row: &str| -> (String, String) {
                (table.to_string(), row.to_string())
            };
            let (t, r) = place("families", &fref);
            let details = serde_json::json!({"case_director": {"name": format!("Director {i}"), "email": "d@x.example.org"}, "address": format!("Straat {i}"), "notes": "synthetic", "stressors": []});
            let sealed = seal_json(
                &dek,
                &details,
                &FieldPlace {
                    family: &fref,
                    table: &t,
                    column: "sealed_details",
                    row: &r,
                },
            )
            .unwrap();
            let wrapped = kek.wrap_dek(&dek, &fref);
            let fid = store::families::insert_many(
                &mut tx,
                &[store::families::NewFamily {
                    reference: &fref,
                    episode_kind: if rng.gen_bool(0.7) {
                        "shelter_exit"
                    } else {
                        "case_closed"
                    },
                    episode_date: &episode.to_string(),
                    plan: "standard",
                    plan_end: start + 731 * 86400,
                    language: "nl",
                    interpreter_needed: false,
                    enrolled_at: start,
                    kek_id,
                    wrapped_dek: &wrapped,
                    sealed_details: &sealed,
                }],
            )
            .await
            .unwrap()[&fref];
            let (m, _) = MUNICIPALITIES[rng.gen_range(0..MUNICIPALITIES.len())];
            store::families::insert_responsibility(&mut tx, fid, m, start)
                .await
                .unwrap();
            let mut kids = Vec::new();
            for pos in 0..4i64 {
                let mref = format!("M-{i:08}{pos}");
                let child = pos > 0;
                let birth = if child {
                    episode - chrono::Days::new(rng.gen_range(0..18 * 365))
                } else {
                    chrono::NaiveDate::from_ymd_opt(1990, 1, 1).unwrap()
                };
                let d = serde_json::json!({"name": format!("Person {i} {pos}"), "birth_date": birth, "sex": if rng.gen_bool(0.5) {"f"} else {"m"}});
                let sealed = seal_json(
                    &dek,
                    &d,
                    &FieldPlace {
                        family: &fref,
                        table: "members",
                        column: "sealed_details",
                        row: &mref,
                    },
                )
                .unwrap();
                let id = store::families::insert_member(
                    &mut tx,
                    fid,
                    &mref,
                    if child { "child" } else { "adult" },
                    pos,
                    &sealed,
                )
                .await
                .unwrap();
                if child {
                    kids.push((id, mref));
                }
            }
            for (w, days) in OFFSETS_DAYS.iter().enumerate() {
                let cref = format!("C-{i:08}{w}");
                let due = start + days * 86400;
                let cid: i64 = sqlx::query_scalar(
                    "INSERT INTO checkins (ref, family_id, wave, due_at, status, contact_at, recorded_at, outcome, mode) \
                     VALUES ($1, $2, $3, $4, 'recorded', $4, $4, 'reached', 'phone') RETURNING id",
                )
                .bind(&cref)
                .bind(fid)
                .bind(w as i64 + 1)
                .bind(due)
                .fetch_one(&mut *tx)
                .await
                .unwrap();
                // Flags at one check-in in eight: the family's and its first child's.
                if (i + w) % 8 == 3 {
                    for (member, subject, rule) in [
                        (None, fref.as_str(), "stressor_new"),
                        (Some(kids[0].0), kids[0].1.as_str(), "wellbeing_poor"),
                    ] {
                        store::flags::insert(
                            &mut tx,
                            &store::flags::NewFlag {
                                family_id: fid,
                                member_id: member,
                                subject,
                                rule,
                                kind: "threshold",
                                severity: "amber",
                                trigger_checkin_id: cid,
                                raised_at: due,
                                sealed_evidence: &[],
                            },
                        )
                        .await
                        .unwrap();
                    }
                }
                let mut observed = Vec::with_capacity(kids.len());
                for (mid, mref) in &kids {
                    let row = format!("{cref}/{mref}");
                    let wellbeing = ["good", "fair", "poor"][rng.gen_range(0..3)];
                    let obs =
                        serde_json::json!({"wellbeing": wellbeing, "school_attendance": "regular"});
                    let sealed = seal_json(
                        &dek,
                        &obs,
                        &FieldPlace {
                            family: &fref,
                            table: "observations",
                            column: "sealed_values",
                            row: &row,
                        },
                    )
                    .unwrap();
                    observed.push((*mid, sealed));
                }
                store::checkins::insert_observations(&mut tx, cid, &observed)
                    .await
                    .unwrap();
            }
        }
        tx.commit().await.unwrap();
        done = (done + 2000).min(families);
    }
}

fn vm_hwm_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// The child process: one export, then its time and VmHWM on stdout.
async fn child_export(config: PathBuf, out: PathBuf) {
    let app = open(&config, OpenMode::Existing).await;
    let t = Instant::now();
    let s = nazorg::export::export(
        &app,
        &nazorg::export::ExportRequest {
            out,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    println!(
        "RESULT {} {} {} {}",
        t.elapsed().as_secs_f64(),
        vm_hwm_kib(),
        s.rows_out,
        s.children_out
    );
}

/// Synthesises the installation of `families` families in `dir` (its config and state).
async fn generate(dir: &Path, families: usize, pg: Option<&BenchDb>) {
    std::fs::create_dir_all(dir).unwrap();
    let config = dir.join("nazorg.toml");
    std::fs::write(&config, common::on_database(&config_text(), pg)).unwrap();
    let app = open(&config, OpenMode::CreateAndMigrate).await;
    let t = Instant::now();
    synthesise(&app, families).await;
    app.store.checkpoint().await.unwrap();
    app.store.close().await;
    println!(
        "synthesised {families} families, {} children, {} check-ins in {:.1} s",
        families * 3,
        families * 8,
        t.elapsed().as_secs_f64()
    );
}

/// The installation's folder: cached for a full-size SQLite run, fresh otherwise (a
/// PostgreSQL bench database is dropped at the end of its run).
async fn installation(
    families: usize,
    full: bool,
    pg: Option<&BenchDb>,
    scratch: &Path,
) -> PathBuf {
    if !full || pg.is_some() {
        let dir = scratch.join("installation");
        generate(&dir, families, pg).await;
        return dir;
    }
    let dir = common::cache_root().join(format!("export-{}", families * 3));
    if dir.join("complete").exists() {
        println!("using the cached installation {}", dir.display());
        return dir;
    }
    let partial = common::cache_root().join(format!("export-{}.partial", families * 3));
    let _ = std::fs::remove_dir_all(&partial);
    generate(&partial, families, None).await;
    std::fs::write(partial.join("complete"), "").unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::rename(&partial, &dir).unwrap();
    dir
}

async fn run(children: usize, full: bool) {
    let families = children.div_ceil(3);
    let dir = tempfile::tempdir().unwrap();
    let pg = BenchDb::from_env();
    let installed = installation(families, full, pg.as_ref(), dir.path()).await;
    let config = installed.join("nazorg.toml");
    let out = dir.path().join("export");
    let me = std::env::current_exe().unwrap();
    let o = Command::new(me)
        .env("BENCH_EXPORT_CHILD", &config)
        .env("BENCH_EXPORT_OUT", &out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let stdout = String::from_utf8_lossy(&o.stdout);
    let line = stdout.lines().find(|l| l.starts_with("RESULT")).unwrap();
    let f: Vec<&str> = line.split_whitespace().collect();
    let (secs, hwm, rows, kids): (f64, u64, u64, u64) = (
        f[1].parse().unwrap(),
        f[2].parse().unwrap(),
        f[3].parse().unwrap(),
        f[4].parse().unwrap(),
    );
    // Smoke checks: the files exist and every row has the codebook's columns.
    let csv = std::fs::read_to_string(out.join("followup.csv")).unwrap();
    let mut lines = csv.lines();
    let cols = lines.next().unwrap().split(',').count();
    assert!(lines.clone().all(|l| l.split(',').count() == cols));
    assert_eq!(lines.count() as u64, rows);
    assert!(!csv.contains("Person") && !csv.contains("Straat"));
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
    assert!(manifest["k"]["achieved"].as_u64().unwrap() >= 10);

    // The baseline: the backend's CLI dumping the same number of rows (observations joined
    // to their check-ins, sealed blobs as hex) from the same database.
    let select = |hex: &str| {
        format!(
            "SELECT c.ref, c.wave, c.due_at, c.outcome, c.mode, o.member_id, {hex} \
             FROM observations o JOIN checkins c ON c.id = o.checkin_id LIMIT {rows}"
        )
    };
    let t = Instant::now();
    let (cli, dump) = match &pg {
        Some(pg) => (
            "psql COPY … CSV",
            Command::new("psql")
                .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", &pg.url, "-c"])
                .arg(format!(
                    "COPY ({}) TO STDOUT WITH (FORMAT csv)",
                    select("encode(o.sealed_values, 'hex')")
                ))
                .stdout(std::process::Stdio::piped())
                .output()
                .unwrap(),
        ),
        None => (
            "sqlite3 -csv",
            Command::new(common::SQLITE3)
                .arg("-csv")
                .arg(installed.join("var/nazorg.db"))
                .arg(select("hex(o.sealed_values)"))
                .stdout(std::process::Stdio::piped())
                .output()
                .unwrap(),
        ),
    };
    let cli_secs = t.elapsed().as_secs_f64();
    assert!(dump.status.success(), "{cli} failed");
    let dumped = dump.stdout.iter().filter(|b| **b == b'\n').count();
    let flagged = csv
        .lines()
        .skip(1)
        .filter(|l| l.contains("stressor_new"))
        .count();
    assert!(flagged > 0, "the flags reach the export");
    println!(
        "| {} | {} children | {rows} rows, {kids} children out, {flagged} rows with flags | export {secs:.2} s ({:.0} rows/s), peak RSS {:.1} MiB | {cli} {dumped} rows {cli_secs:.2} s ({:.0} rows/s) | rows/s ours / CLI {:.3} (time ratio {:.1}) | load {} | generalisation {} |",
        common::backend_name(pg.as_ref()),
        families * 3,
        rows as f64 / secs,
        hwm as f64 / 1024.0,
        dumped as f64 / cli_secs.max(1e-9),
        (rows as f64 / secs) / (dumped as f64 / cli_secs.max(1e-9)),
        secs / cli_secs.max(1e-9),
        common::load_average(),
        manifest["generalisation"]["age_band_at_start"]["applied"]
            .as_str()
            .unwrap_or("")
            .to_string()
            + " / "
            + manifest["generalisation"]["region"]["applied"]
                .as_str()
                .unwrap_or("")
            + " / "
            + manifest["generalisation"]["start_period"]["applied"]
                .as_str()
                .unwrap_or("")
    );
    if !full {
        assert!(rows > 0);
    }
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    if let (Ok(config), Ok(out)) = (
        std::env::var("BENCH_EXPORT_CHILD"),
        std::env::var("BENCH_EXPORT_OUT"),
    ) {
        rt.block_on(child_export(config.into(), out.into()));
        return;
    }
    let full = std::env::args().any(|a| a == "--bench");
    let sizes: Vec<usize> = match std::env::var("BENCH_CHILDREN")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        Some(n) => vec![n],
        None if full => vec![30_000, 300_000],
        None => vec![300],
    };
    for n in sizes {
        rt.block_on(run(n, full));
    }
}
