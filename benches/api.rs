//! Sustained check-in recording over HTTP: each request authenticates a token, checks
//! scope, seals the observations, stores them with an audit entry in one durable commit.
//! Throughput and latency percentiles, with a small Rust client over loopback.
//!
//! Runs on SQLite, or on PostgreSQL with `NAZORG_BENCH_DATABASE_URL` set (see
//! `scripts/bench-postgres`). Each run records fresh check-ins (its own families):
//! 1. the API in this process (as before);
//! 2. one `nazorg serve` process;
//! 3. on PostgreSQL only: two `nazorg serve` processes on the one database, the clients
//!    split between them;
//! 4. the baseline: the backend's CLI (`sqlite3` or `psql`, one process, one connection)
//!    running the statements a record makes, with literal values, one transaction per
//!    request plus the request's own audit entry, in the same run.
//!
//! `cargo bench --bench api` runs the full size; without `--bench` (as
//! `cargo test --all-targets` runs it) a small smoke version checks that every request
//! succeeded. `BENCH_FAMILIES` (per run) and `BENCH_CLIENTS` override the size.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "common/clients.rs"]
mod clients;
mod common;
#[path = "../tests/it/support/http.rs"]
#[allow(dead_code)]
mod http;

use chrono::{DateTime, TimeZone, Utc};
use common::*;
use nazorg::api::{self, ApiState};
use nazorg::clock::ManualClock;
use nazorg::service::{App, family};
use nazorg::store::OpenMode;
use nazorg::tokens::{self, Scope};
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde_json::json;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const FULL_FAMILIES: usize = 1_000;
const SMOKE_FAMILIES: usize = 12;
const CLIENTS: usize = 4;
/// The instant the records are made at (every slot lies before it).
const RECORD_AT: &str = "2029-06-01T09:00:00Z";
/// `store::WRITE_LOCK`: what every write transaction takes on PostgreSQL.
const PG_WRITE_LOCK: i64 = 0x6e61_7a6f_7267_0001;

/// One request: the check-in's reference and the JSON body.
type Work = Vec<(String, String)>;

/// What one run measured.
struct Run {
    what: String,
    requests: usize,
    wall: Duration,
    latencies: Vec<Duration>,
}

impl Run {
    fn rate(&self) -> f64 {
        self.requests as f64 / self.wall.as_secs_f64()
    }
}

/// Enrols `families` families the day after their episode (all eight slots open) and
/// returns one record request per slot.
async fn enrol(app: &App, rng: &mut StdRng, families: usize, first: usize) -> (Work, Vec<String>) {
    let today = Utc
        .with_ymd_and_hms(2027, 1, 2, 9, 0, 0)
        .unwrap()
        .date_naive();
    let mut work = Vec::new();
    let mut refs = Vec::new();
    for i in first..first + families {
        let e = synthetic_family(rng, i, today, 1);
        let out = family::enrol(app, &e).await.unwrap();
        let children: Vec<String> = out
            .members
            .iter()
            .filter(|m| m.role == "child")
            .map(|m| m.reference.clone())
            .collect();
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
        refs.push(out.family);
    }
    (work, refs)
}

/// `clients` threads send the work round-robin over `addrs` (client i to daemon i mod n),
/// a fresh connection per request; every answer must be 200.
fn drive(what: String, addrs: &[SocketAddr], work: Work, clients: usize, token: &str) -> Run {
    let requests = work.len();
    let (wall, latencies) = clients::record_from_clients(addrs, work, clients, token);
    Run {
        what,
        requests,
        wall,
        latencies,
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A `nazorg serve` process on the bench's config, with the simulated clock at
/// `RECORD_AT`; killed on drop.
struct Daemon {
    child: Child,
    addr: SocketAddr,
    log: std::path::PathBuf,
}

impl Daemon {
    fn spawn(config: &Path, name: &str) -> Daemon {
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let log = config.with_file_name(format!("{name}.log"));
        let child = Command::new(env!("CARGO_BIN_EXE_nazorg"))
            .arg("--config")
            .arg(config)
            .args(["--at", RECORD_AT, "serve"])
            .env("NAZORG_SIMULATION", "1")
            .env("NAZORG_API_LISTEN", addr.to_string())
            .env("NAZORG_LOG", "warn,nazorg::daemon=debug")
            .env_remove("NAZORG_CONFIG")
            .env_remove("NOTIFY_SOCKET")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        Daemon { child, addr, log }
    }

    /// Waits (bounded) until the catch-up round is over: the API answers and the daemon
    /// reported its first idle status.
    fn wait_ready(&mut self) {
        let start = Instant::now();
        loop {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            if log.contains("ready; last sweep") {
                return;
            }
            assert!(
                self.child.try_wait().unwrap().is_none(),
                "daemon exited:\n{log}"
            );
            assert!(
                start.elapsed() < Duration::from_secs(300),
                "daemon not ready:\n{log}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn run_daemons(config: &Path, n: usize, work: Work, clients: usize, token: &str) -> Run {
    let mut daemons: Vec<Daemon> = (0..n)
        .map(|i| Daemon::spawn(config, &format!("serve-{n}-{i}")))
        .collect();
    for d in &mut daemons {
        d.wait_ready();
    }
    let addrs: Vec<SocketAddr> = daemons.iter().map(|d| d.addr).collect();
    let what = if n == 1 {
        "one `nazorg serve` process".to_string()
    } else {
        format!("{n} `nazorg serve` processes, one database")
    };
    drive(what, &addrs, work, clients, token)
}

/// A blob literal in the CLI's syntax.
fn blob(pg: bool, bytes: &[u8]) -> String {
    if pg {
        bytea_literal(bytes)
    } else {
        let mut s = String::from("X'");
        for b in bytes {
            s.push_str(&format!("{b:02X}"));
        }
        s.push('\'');
        s
    }
}

/// The statements one record makes (see `service::checkin::record`), with literal
/// values: the token lookup, the check-in, family, members and ex-partners read, the
/// attempt, the record, the reached mark, three observations, the family's observations
/// read back (the relapse rules look at the history), the completion check, the audit
/// head and entry, the family's check-ins read back; then the request's own audit entry
/// in a second transaction. Not included: HTTP, JSON, sealing, the rules themselves.
async fn baseline_script(app: &App, pg: bool, families: &[String]) -> (String, usize) {
    let pool = app.store.pool();
    let one_blob = |sql: &'static str| async move {
        sqlx::query_scalar::<_, Vec<u8>>(sql)
            .fetch_one(pool)
            .await
            .unwrap()
    };
    // Sealed values of the sizes the service wrote in the runs before.
    let record =
        one_blob("SELECT sealed_record FROM checkins WHERE sealed_record IS NOT NULL LIMIT 1")
            .await;
    let observation = one_blob("SELECT sealed_values FROM observations LIMIT 1").await;
    let attempt = one_blob(
        "SELECT sealed_details FROM checkin_attempts WHERE sealed_details IS NOT NULL LIMIT 1",
    )
    .await;
    let token_hash = one_blob("SELECT secret_hash FROM api_tokens LIMIT 1").await;
    let hash = blob(pg, &[7u8; 32]);
    let (begin, lock) = if pg {
        (
            "BEGIN;",
            format!("SELECT pg_advisory_xact_lock({PG_WRITE_LOCK});\n"),
        )
    } else {
        ("BEGIN IMMEDIATE;", String::new())
    };
    let at = DateTime::parse_from_rfc3339(RECORD_AT).unwrap().timestamp();
    let mut s = String::new();
    let mut requests = 0;
    for fref in families {
        let (fid,): (i64,) = sqlx::query_as("SELECT id FROM families WHERE ref = $1")
            .bind(fref)
            .fetch_one(pool)
            .await
            .unwrap();
        let checkins: Vec<(i64, String, i64)> = sqlx::query_as(
            "SELECT id, ref, due_at FROM checkins WHERE family_id = $1 ORDER BY due_at",
        )
        .bind(fid)
        .fetch_all(pool)
        .await
        .unwrap();
        let children: Vec<i64> = sqlx::query_scalar(
            "SELECT id FROM members WHERE family_id = $1 AND role = 'child' ORDER BY position",
        )
        .bind(fid)
        .fetch_all(pool)
        .await
        .unwrap();
        for (cid, cref, due) in checkins {
            requests += 1;
            s.push_str(&format!("{begin}\n{lock}"));
            s.push_str(&format!(
                "SELECT id, role, municipality, study, expires_at, revoked_at, last_used_at FROM api_tokens WHERE secret_hash = {};\n",
                blob(pg, &token_hash)
            ));
            s.push_str(&format!(
                "SELECT c.id, c.ref, c.family_id, c.wave, c.due_at, c.status, c.notice_stage, c.overdue_count, c.last_notice_at, c.contact_at, c.recorded_at, c.outcome, c.mode, c.sealed_record, c.attempts, c.retry_due_at, c.missed_at FROM checkins c WHERE c.ref = '{cref}';\n"
            ));
            s.push_str(&format!(
                "SELECT f.id, f.ref, f.episode_kind, f.episode_date, f.plan, f.plan_end, f.status, f.close_reason, f.closed_at, f.language, f.interpreter_needed, f.enrolled_at, f.kek_id, f.wrapped_dek, f.sealed_details, COALESCE((SELECT r.municipality FROM responsibilities r WHERE r.family_id = f.id AND r.valid_from <= {at} ORDER BY r.valid_from DESC LIMIT 1), (SELECT r.municipality FROM responsibilities r WHERE r.family_id = f.id ORDER BY r.valid_from LIMIT 1), '') FROM families f WHERE f.id = {fid};\n"
            ));
            s.push_str(&format!(
                "SELECT id, ref, role, sealed_details, left_at, left_reason FROM members WHERE family_id = {fid} ORDER BY position;\n\
                 SELECT * FROM ex_partners WHERE family_id = {fid};\n\
                 INSERT INTO checkin_attempts (checkin_id, number, at, recorded_at, outcome, mode, sealed_details) VALUES ({cid}, 1, {due}, {at}, 'reached', 'home_visit', {});\n\
                 UPDATE checkins SET attempts = 1 WHERE id = {cid};\n\
                 UPDATE checkins SET status = 'recorded', contact_at = {due}, recorded_at = {at}, outcome = 'reached', mode = 'home_visit', sealed_record = {}, next_notice_at = NULL WHERE id = {cid} AND status IN ('open', 'lapsed');\n\
                 UPDATE families SET last_reached_at = {due} WHERE id = {fid} AND (last_reached_at IS NULL OR last_reached_at < {due});\n",
                blob(pg, &attempt),
                blob(pg, &record)
            ));
            for m in &children {
                s.push_str(&format!(
                    "INSERT INTO observations (checkin_id, member_id, sealed_values) VALUES ({cid}, {m}, {});\n",
                    blob(pg, &observation)
                ));
            }
            s.push_str(&format!(
                "SELECT o.checkin_id, o.member_id, o.sealed_values FROM observations o JOIN checkins c ON c.id = o.checkin_id WHERE c.family_id = {fid};\n\
                 UPDATE families SET status = 'completed', closed_at = {at} WHERE id = {fid} AND status = 'running' AND NOT EXISTS (SELECT 1 FROM checkins c WHERE c.family_id = {fid} AND c.status = 'open');\n"
            ));
            for (action, subject) in [("checkin.record", cref.as_str()), ("", "")] {
                if action.is_empty() {
                    // The request's own entry, in a transaction of its own.
                    s.push_str(&format!("COMMIT;\n{begin}\n{lock}"));
                }
                let action = if action.is_empty() {
                    "api.request"
                } else {
                    action
                };
                s.push_str(&format!(
                    "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1;\n\
                     INSERT INTO audit (seq, at, actor, action, family_ref, subject, detail, prev_hash, hash, version) \
                     SELECT COALESCE(MAX(seq), 0) + 1, {at}, 'T-bench', '{action}', '{fref}', '{subject}', 'reached', {hash}, {hash}, 2 FROM audit;\n"
                ));
            }
            s.push_str(&format!(
                "SELECT c.id, c.ref, c.status, c.due_at FROM checkins c WHERE c.family_id = {fid} ORDER BY c.due_at, c.wave;\nCOMMIT;\n"
            ));
        }
    }
    (s, requests)
}

/// Runs the baseline script in the CLI, one process and connection; returns its wall time.
fn run_baseline(cli_pg: Option<&BenchDb>, db_file: &Path, script: &str) -> Duration {
    match cli_pg {
        Some(pg) => psql_script(&pg.url, &format!("\\o /dev/null\n{script}")).0,
        None => {
            use std::io::Write;
            let t = Instant::now();
            let mut child = Command::new("/usr/bin/sqlite3")
                .arg(db_file)
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("sqlite3 starts");
            child
                .stdin
                .take()
                .unwrap()
                .write_all(
                    format!(".bail on\nPRAGMA busy_timeout = 15000;\nPRAGMA journal_mode = WAL;\nPRAGMA synchronous = NORMAL;\nPRAGMA foreign_keys = ON;\n{script}").as_bytes(),
                )
                .unwrap();
            let out = child.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "sqlite3: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            t.elapsed()
        }
    }
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let families = env_usize(
        "BENCH_FAMILIES",
        if full { FULL_FAMILIES } else { SMOKE_FAMILIES },
    );
    let clients = env_usize("BENCH_CLIENTS", CLIENTS);
    let pg = BenchDb::from_env();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("nazorg.toml");
    let mut text = on_database(&config_text(), pg.as_ref());
    text.push_str("[api]\nlisten = \"127.0.0.1:0\"\nrate_limit = 1000000\nburst = 1000000\n");
    std::fs::write(&config_path, &text).unwrap();
    let daemon_runs: Vec<usize> = if pg.is_some() { vec![1, 2] } else { vec![1] };

    // Enrol the families of every run at once, then move the clock past the last slot so
    // each record's contact instant lies in the past.
    let enrol_at = Utc.with_ymd_and_hms(2027, 1, 2, 9, 0, 0).unwrap();
    let clock = ManualClock::new(enrol_at);
    let (app, works, baseline_families, token) = rt.block_on(async {
        let app = open_app(
            &config_path,
            Arc::new(clock.clone()),
            OpenMode::CreateAndMigrate,
        )
        .await;
        let mut rng = StdRng::seed_from_u64(7);
        let mut works = Vec::new();
        for run in 0..1 + daemon_runs.len() {
            works.push(enrol(&app, &mut rng, families, run * families).await.0);
        }
        let (_, baseline) = enrol(&app, &mut rng, families, works.len() * families).await;
        // The daemons' catch-up sweep and dispatcher stay idle during the runs: no reminder
        // is owed (they are not what is measured) and the enrolment notices count as sent.
        sqlx::query("UPDATE checkins SET next_notice_at = NULL")
            .execute(app.store.pool())
            .await
            .unwrap();
        sqlx::query("UPDATE outbox SET status = 'sent', sent_at = created_at")
            .execute(app.store.pool())
            .await
            .unwrap();
        // Valid past the clock jump below (a default token lives api.token_lifetime).
        let lifetime = nazorg::domain::duration::IsoDuration::months(120);
        let token = tokens::create(&app, &Scope::Admin, Some(lifetime), None)
            .await
            .unwrap()
            .token;
        (app, works, baseline, token)
    });
    clock.set(
        DateTime::parse_from_rfc3339(RECORD_AT)
            .unwrap()
            .with_timezone(&Utc),
    );
    let mut works = works.into_iter();
    let mut runs = Vec::new();

    // 1. The API in this process.
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
    runs.push(drive(
        "the API in the bench's process".into(),
        &[addr],
        works.next().unwrap(),
        clients,
        &token,
    ));
    let _ = stop_tx.send(());
    rt.block_on(server).unwrap().unwrap();

    // 2., 3. `nazorg serve` processes.
    for n in &daemon_runs {
        runs.push(run_daemons(
            &config_path,
            *n,
            works.next().unwrap(),
            clients,
            &token,
        ));
    }

    let recorded: i64 = rt.block_on(async {
        sqlx::query_scalar("SELECT COUNT(*) FROM checkins WHERE status = 'recorded'")
            .fetch_one(app.store.pool())
            .await
            .unwrap()
    });
    let requests: usize = runs.iter().map(|r| r.requests).sum();
    assert_eq!(
        recorded as usize, requests,
        "every request recorded its check-in"
    );

    // 4. The same statements in the CLI, on the baseline's own families.
    let (script, cli_requests) =
        rt.block_on(baseline_script(&app, pg.is_some(), &baseline_families));
    rt.block_on(app.store.close());
    let cli_wall = run_baseline(pg.as_ref(), &dir.path().join("var/nazorg.db"), &script);
    let cli_rate = cli_requests as f64 / cli_wall.as_secs_f64();
    if let Some(pg) = &pg {
        let n: i64 = pg
            .psql("SELECT COUNT(*) FROM checkins WHERE status = 'recorded'")
            .parse()
            .unwrap();
        assert_eq!(
            n as usize,
            requests + cli_requests,
            "the CLI recorded its share"
        );
    }

    let ms = |d: Duration| format!("{:.2} ms", d.as_secs_f64() * 1e3);
    let cli = if pg.is_some() { "psql" } else { "sqlite3" };
    let backend = backend_name(pg.as_ref());
    for r in &runs {
        table(
            &format!(
                "Check-in recording over HTTP, {backend}: {} ({} requests, {clients} clients, {families} families)",
                r.what, r.requests
            ),
            &[
                ("throughput".into(), format!("{:.0} requests/s", r.rate())),
                ("wall time".into(), format!("{:.2} s", r.wall.as_secs_f64())),
                ("p50".into(), ms(percentile(&r.latencies, 0.50))),
                ("p90".into(), ms(percentile(&r.latencies, 0.90))),
                ("p99".into(), ms(percentile(&r.latencies, 0.99))),
                (
                    "max".into(),
                    ms(r.latencies.last().copied().unwrap_or_default()),
                ),
                (
                    format!("ratio to {cli} (throughput ours / {cli})"),
                    format!("{:.2}", r.rate() / cli_rate),
                ),
            ],
        );
    }
    table(
        &format!("The same statements in {cli}, {backend} (one process, one connection)"),
        &[
            ("requests".into(), cli_requests.to_string()),
            (
                "wall time".into(),
                format!("{:.2} s", cli_wall.as_secs_f64()),
            ),
            ("throughput".into(), format!("{cli_rate:.0} requests/s")),
        ],
    );
}
