//! Stopping the daemon: a message being handed to the relay at SIGTERM is finished and
//! recorded, so the next start does not send it again; no further message is begun.

use crate::support::daemon::Daemon;
use crate::support::env::*;
use crate::support::smtp::SmtpServer;
use std::time::{Duration, Instant};

const EPISODE: &str = "2026-01-05";
const ENROL_AT: &str = "2026-01-06T10:00:00+01:00";
/// Two slots of each family are overdue at this instant.
const SERVE_AT: &str = "2026-03-02T10:00:00+01:00";

fn poll(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn with_status(env: &TestEnv, status: &str) -> Vec<String> {
    env.outbox()
        .iter()
        .filter(|m| m["status"] == status)
        .map(|m| m["key"].as_str().unwrap().to_string())
        .collect()
}

/// The outbox keys of the messages the relay received, in order.
fn received_keys(server: &SmtpServer) -> Vec<String> {
    server
        .messages()
        .iter()
        .filter_map(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("X-Nazorg-Key: "))
                .map(|k| k.trim().to_string())
        })
        .collect()
}

/// The relay has stored the first message and not yet confirmed it when SIGTERM comes: the
/// daemon waits for the confirmation (within its grace), records the message sent, begins
/// no other, and exits 0. The next start sends the others and not that one again.
#[test]
fn a_message_being_sent_at_sigterm_is_finished_and_never_sent_twice() {
    let hold = tempfile::tempdir().unwrap();
    let release = hold.path().join("release");
    let server = SmtpServer::start_holding(&release);
    let env = TestEnv::with_mail(&format!("transport = \"smtp\"\nurl = \"{}\"", server.url()));
    for i in 0..2 {
        env.enrol(
            ENROL_AT,
            &family_body(AMSTERDAM, "standard", EPISODE, &format!("STOP{i}")),
        );
    }
    env.ok(&["--at", SERVE_AT, "sweep", "--no-dispatch"]);
    let queued = with_status(&env, "pending");
    assert_eq!(
        queued.len(),
        6,
        "two overdue notices and the new-family notice each"
    );

    let mut d = Daemon::spawn(&env, "first", &["--at", SERVE_AT, "serve"], None);
    // The relay holds the first message, stored but not yet answered.
    poll(
        "the relay to store a message",
        Duration::from_secs(20),
        || !server.messages().is_empty(),
    );
    d.signal("-TERM");
    d.wait_log(
        "stopping: finishing the message being sent",
        Duration::from_secs(10),
    );
    std::fs::write(&release, b"").unwrap();
    let log = d.exits_cleanly();
    assert!(log.contains("nazorg daemon stopping"), "{log}");

    let in_flight = received_keys(&server);
    assert_eq!(in_flight.len(), 1, "no message begun after SIGTERM");
    assert_eq!(
        with_status(&env, "sent"),
        in_flight,
        "the message the relay confirmed is recorded sent"
    );
    assert_eq!(with_status(&env, "pending").len(), 5, "the others wait");

    // The next start sends the other five, and not the first again.
    let d = Daemon::spawn(&env, "second", &["--at", SERVE_AT, "serve"], None);
    poll("the rest to be sent", Duration::from_secs(30), || {
        with_status(&env, "pending").is_empty()
    });
    d.terminate();
    let mut received = received_keys(&server);
    assert_eq!(received.len(), 6, "{received:?}");
    received.sort();
    received.dedup();
    let mut expected = queued;
    expected.sort();
    assert_eq!(
        received, expected,
        "each message reached the relay exactly once"
    );
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn clock() -> nazorg::clock::SharedClock {
    let at = chrono::DateTime::parse_from_rfc3339(SERVE_AT)
        .unwrap()
        .with_timezone(&chrono::Utc);
    std::sync::Arc::new(nazorg::clock::ManualClock::new(at))
}

/// The files of this process's open descriptors that are the database or its `-wal`/`-shm`.
fn open_database_files(db: &std::path::Path) -> Vec<std::path::PathBuf> {
    let db = db.to_string_lossy().into_owned();
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter(|target| target.to_string_lossy().starts_with(&db))
        .collect()
}

/// When `close` returns, every connection is closed, the writer's and those of both pools
/// (as the daemon has them: its own and the API's), also those still on their way back to
/// the pool from the reads just done: no descriptor of the file is left, and on SQLite the
/// last connection folded the WAL into the database and removed `-wal` and `-shm`. A write
/// after close is refused and opens nothing. Ten rounds, as a connection on its way back
/// is a matter of a moment.
#[test]
fn a_closed_store_has_let_go_of_the_database() {
    let env = TestEnv::new();
    let rt = runtime();
    for round in 0..10 {
        rt.block_on(async {
            let app = env.app(clock()).await;
            let api = app.store.separate_pool(4).await.unwrap();
            // A write through the writer connection: the WAL holds something.
            nazorg::tokens::create(&app, &nazorg::tokens::Scope::Admin, None, None)
                .await
                .unwrap();
            // Reads on both pools at once, the last ones just before close.
            let reads: Vec<_> = (0..16)
                .map(|i| {
                    let store = if i % 2 == 0 {
                        app.store.clone()
                    } else {
                        api.clone()
                    };
                    tokio::spawn(async move {
                        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM api_tokens")
                            .fetch_one(store.pool())
                            .await
                            .unwrap();
                        assert!(n > round);
                    })
                })
                .collect();
            for r in reads {
                r.await.unwrap();
            }
            for store in [&app.store, &api] {
                sqlx::query("SELECT 1").execute(store.pool()).await.unwrap();
            }
            api.close().await;
            app.store.close().await;
            assert!(app.store.write().await.is_err(), "a write after close");
            assert!(api.write().await.is_err(), "a write after close");
        });
        if env.on_postgres() {
            continue;
        }
        let db = env.db_path();
        assert_eq!(
            open_database_files(&db),
            Vec::<std::path::PathBuf>::new(),
            "round {round}"
        );
        for side in ["-wal", "-shm"] {
            let mut name = db.clone().into_os_string();
            name.push(side);
            assert!(
                !std::path::Path::new(&name).exists(),
                "round {round}: {side} left, a connection was still open"
            );
        }
    }
}

/// Closing within `limit` while something is kept in use answers `StillOpen`, and within
/// `guard` (it does not hang).
async fn still_open(app: &nazorg::service::App, limit: Duration, guard: Duration) {
    let r = tokio::time::timeout(guard, app.store.close_within(limit))
        .await
        .expect("close returned");
    assert!(
        matches!(r, Err(nazorg::store::StoreError::StillOpen(_))),
        "{r:?}"
    );
}

/// Close is bounded: a pool connection somebody keeps, or a write transaction left open,
/// holds it only up to its limit, and the error says what is still open. Handed back after
/// all, the connection is closed then: closing again finds nothing open.
#[test]
fn close_is_bounded_by_connections_kept_in_use() {
    let env = TestEnv::new();
    runtime().block_on(async {
        let limit = Duration::from_millis(200);
        let guard = Duration::from_secs(30);
        let app = env.app(clock()).await;
        let kept = app.store.conn().await.unwrap();
        still_open(&app, limit, guard).await;
        drop(kept);
        app.store.close_within(guard).await.unwrap();

        let app = env.app(clock()).await;
        let held = app.store.write().await.unwrap();
        still_open(&app, limit, guard).await;
        held.rollback().await.unwrap();
        app.store.close_within(guard).await.unwrap();
    });
}
