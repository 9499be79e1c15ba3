//! Group commit for SQLite. Every write transaction of the process runs on one writer
//! connection, one at a time, inside a SAVEPOINT of a shared `BEGIN IMMEDIATE … COMMIT` (a
//! batch). A writer that finds others queued behind it releases its savepoint and lets them
//! join the batch; the batch commits when the first finished writer's turn comes round again,
//! when it holds [`MAX_JOBS`] writers, or once it is older than [`MAX_AGE`]. Every writer is
//! answered only after that COMMIT returned, with its result: commits stay as durable as one
//! transaction each (same connection pragmas), and cost one WAL append for the whole batch.
//!
//! A writer that fails (or is dropped) rolls back its own savepoint only; the others commit.
//! Whenever the state of the writer connection's transaction is in doubt (a savepoint step
//! or the COMMIT failed, SQLite rolled the transaction back itself), every writer still
//! waiting in the batch is told it failed and the connection is replaced.

use super::{StoreError, WRITE_WAIT};
use sqlx::{
    Any, AnyConnection, ConnectOptions, Connection, Database, Executor, TransactionManager,
};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::{Mutex, OwnedMappedMutexGuard, OwnedMutexGuard, watch};

type Manager = <Any as Database>::TransactionManager;

/// Most writers one COMMIT answers.
pub const MAX_JOBS: usize = 64;

/// A batch older than this commits at its next writer's end, queued writers or not, so a
/// writer's answer waits at most about this long for others.
pub const MAX_AGE: Duration = Duration::from_millis(5);

/// What every writer of a batch is told: its COMMIT returned, or why not.
type Outcome = Result<(), String>;

/// The writer connection of one SQLite file, shared by every pool on it.
pub(crate) struct Gate {
    /// The URL the writer connection opens (without `mode=rwc`: the file exists by then).
    url: String,
    /// Whoever holds it is the one writer running now; waiters queue in arrival order.
    writer: Arc<Mutex<Option<Writer>>>,
    /// Writers waiting for the writer connection (to decide whether a batch waits for them).
    queued: AtomicUsize,
    /// The bound on a batch's writers ([`MAX_JOBS`]; 1 turns group commit off).
    max_jobs: AtomicUsize,
    /// The bound on a batch's age, in microseconds ([`MAX_AGE`]).
    max_age_us: AtomicU64,
    /// COMMITs of batches so far.
    commits: AtomicU64,
    /// Set by [`Gate::close`]: no writer connection is opened again.
    closed: AtomicBool,
}

impl std::fmt::Debug for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gate")
            .field("queued", &self.queued.load(Ordering::Relaxed))
            .field("commits", &self.commits.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

struct Writer {
    conn: AnyConnection,
    /// The batch open on `conn`, if any.
    batch: Option<Batch>,
    /// A rollback was queued on `conn` without waiting for it: check before the next step.
    dirty: bool,
    /// The transaction state of `conn` is unknown: the next writer opens a new connection.
    broken: bool,
    /// Numbers the batches, so a waiting writer knows whether its own is still open.
    serial: u64,
}

struct Batch {
    serial: u64,
    outcome: watch::Sender<Option<Outcome>>,
    started: Instant,
    /// Writers that began in this batch.
    jobs: usize,
    /// Writers whose savepoint is released, waiting for the COMMIT.
    waiting: usize,
}

/// Decrements the queue count however the wait for the writer ends.
struct Queued<'a>(&'a AtomicUsize);

impl<'a> Queued<'a> {
    fn new(n: &'a AtomicUsize) -> Queued<'a> {
        n.fetch_add(1, Ordering::AcqRel);
        Queued(n)
    }
}

impl Drop for Queued<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Gate {
    pub(crate) fn new(url: String) -> Gate {
        Gate {
            url,
            writer: Arc::default(),
            queued: AtomicUsize::new(0),
            max_jobs: AtomicUsize::new(MAX_JOBS),
            max_age_us: AtomicU64::new(MAX_AGE.as_micros() as u64),
            commits: AtomicU64::new(0),
            closed: AtomicBool::new(false),
        }
    }

    pub(crate) fn commits(&self) -> u64 {
        self.commits.load(Ordering::Relaxed)
    }

    pub(crate) fn set_max_jobs(&self, n: usize) {
        self.max_jobs.store(n.max(1), Ordering::Relaxed);
    }

    #[cfg(test)]
    fn set_max_age(&self, age: Duration) {
        self.max_age_us
            .store(age.as_micros() as u64, Ordering::Relaxed);
    }

    /// Writers waiting for the writer connection now.
    pub(crate) fn queued(&self) -> usize {
        self.queued.load(Ordering::Acquire)
    }

    /// Closes the writer connection for good (at shutdown): waits for the writer running now
    /// (by `deadline`), commits the batch whose writers handed the connection on and wait
    /// for its COMMIT, and returns once the connection is closed. A broken one is closed
    /// too (closing rolls back what it may still hold), never merely dropped: its worker
    /// thread would close the file at some later moment. Writers that come after are
    /// refused.
    pub(crate) async fn close(&self, deadline: tokio::time::Instant) -> Result<(), StoreError> {
        self.closed.store(true, Ordering::Release);
        let mut g = tokio::time::timeout_at(deadline, self.writer.lock())
            .await
            .map_err(|_| StoreError::StillOpen("a write transaction holds the writer".into()))?;
        let Some(mut w) = g.take() else {
            return Ok(());
        };
        if w.batch.is_some() {
            // Failing, it tells the batch's writers so and leaves the connection broken.
            let _ = w.commit_batch(self).await;
        }
        match tokio::time::timeout_at(deadline, w.conn.close()).await {
            Ok(Ok(())) => Ok(()),
            // The worker thread is gone already, and the handle with it.
            Ok(Err(sqlx::Error::WorkerCrashed)) => Ok(()),
            Ok(Err(e)) => Err(e.into()),
            Err(_) => Err(StoreError::StillOpen(
                "the writer connection did not close".into(),
            )),
        }
    }

    fn refuse_if_closed(&self) -> Result<(), StoreError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(StoreError::Sql(sqlx::Error::PoolClosed));
        }
        Ok(())
    }
}

/// The writer's page cache, larger than SQLite's default 2 MB: every write lands on random
/// pages of the reference indexes, which a large import or a sweep's batch otherwise read
/// again from the operating system for every row (perf of a bulk import: the `pread`
/// copies). Pages take memory only once touched, and only on this one connection.
const WRITER_PRAGMAS: &str = "PRAGMA cache_size = -16384;";

impl Writer {
    async fn open(url: &str) -> Result<Writer, StoreError> {
        let mut conn = url
            .parse::<sqlx::any::AnyConnectOptions>()?
            .connect()
            .await?;
        Executor::execute(&mut conn, super::SQLITE_PRAGMAS).await?;
        Executor::execute(&mut conn, WRITER_PRAGMAS).await?;
        Ok(Writer {
            conn,
            batch: None,
            dirty: false,
            broken: false,
            serial: 0,
        })
    }

    /// Tells every writer of the open batch that it failed, and gives up the connection.
    fn fail(&mut self, why: String) {
        tracing::error!(error = %why, "a group commit of write transactions failed");
        if let Some(b) = self.batch.take() {
            b.outcome.send_replace(Some(Err(why)));
        }
        self.broken = true;
    }

    /// [`Writer::fail`], and ends whatever transaction the connection may still hold, so
    /// SQLite's write lock is not kept until the next writer replaces the connection.
    async fn abandon(&mut self, why: String) {
        self.fail(why);
        let _ = Executor::execute(&mut self.conn, "ROLLBACK").await;
    }

    /// After a rollback queued by a dropped writer: waits for it and checks that the
    /// connection is where the bookkeeping says (in the open batch, or in none).
    async fn settle(&mut self) {
        if !self.dirty || self.broken {
            return;
        }
        self.dirty = false;
        if let Err(e) = self.conn.ping().await {
            self.abandon(format!("the writer connection failed: {e}"))
                .await;
            return;
        }
        let expected = usize::from(self.batch.is_some());
        let depth = Manager::get_transaction_depth(&self.conn);
        if depth != expected {
            self.abandon(format!(
                "the writer connection is at transaction depth {depth}, not {expected}"
            ))
            .await;
        }
    }

    /// Commits the open batch and answers its writers.
    async fn commit_batch(&mut self, gate: &Gate) -> Outcome {
        self.settle().await;
        if self.broken {
            return Err("the batch was rolled back".into());
        }
        let depth = Manager::get_transaction_depth(&self.conn);
        if depth != 1 {
            let why = format!("the writer connection is at transaction depth {depth}, not 1");
            self.abandon(why.clone()).await;
            return Err(why);
        }
        let result = Manager::commit(&mut self.conn).await;
        gate.commits.fetch_add(1, Ordering::Relaxed);
        match result {
            Ok(()) => {
                if let Some(b) = self.batch.take() {
                    b.outcome.send_replace(Some(Ok(())));
                }
                Ok(())
            }
            Err(e) => {
                let why = format!("COMMIT failed: {e}");
                self.abandon(why.clone()).await;
                Err(why)
            }
        }
    }
}

/// One writer's turn on the writer connection: its savepoint in the open batch.
pub(crate) struct Job {
    guard: OwnedMappedMutexGuard<Option<Writer>, Writer>,
    gate: Arc<Gate>,
    /// The savepoint is begun and neither released nor rolled back.
    open: bool,
    serial: u64,
    outcome: Option<watch::Receiver<Option<Outcome>>>,
}

/// Waits for the writer connection (in arrival order, at most [`WRITE_WAIT`]) and begins a
/// savepoint in its open batch, opening a batch (`BEGIN IMMEDIATE`) if none is.
pub(crate) async fn begin(gate: &Arc<Gate>) -> Result<Job, StoreError> {
    gate.refuse_if_closed()?;
    let mut g: OwnedMutexGuard<Option<Writer>> = {
        let _queued = Queued::new(&gate.queued);
        tokio::time::timeout(WRITE_WAIT, gate.writer.clone().lock_owned())
            .await
            .map_err(|_| StoreError::Busy)?
    };
    // Closed while this writer waited: the connection is not opened again.
    gate.refuse_if_closed()?;
    if let Some(w) = g.as_mut() {
        w.settle().await;
    }
    if g.as_ref().is_some_and(|w| w.broken) {
        // Closing the connection rolls back whatever it still held.
        *g = None;
    }
    if g.is_none() {
        *g = Some(Writer::open(&gate.url).await?);
    }
    let guard = OwnedMutexGuard::try_map(g, Option::as_mut)
        .map_err(|_| StoreError::Corrupt("the writer connection vanished".into()))?;
    // From here a dropped `Job` (a failure, or this future cancelled) cleans up after itself.
    let mut job = Job {
        guard,
        gate: gate.clone(),
        open: false,
        serial: 0,
        outcome: None,
    };
    let w = &mut *job.guard;
    if w.batch.is_none() {
        Manager::begin(&mut w.conn, Some("BEGIN IMMEDIATE".into())).await?;
        w.serial += 1;
        w.batch = Some(Batch {
            serial: w.serial,
            outcome: watch::Sender::new(None),
            started: Instant::now(),
            jobs: 0,
            waiting: 0,
        });
    }
    if let Err(e) = Manager::begin(&mut w.conn, None).await {
        w.abandon(format!("SAVEPOINT failed: {e}")).await;
        return Err(e.into());
    }
    job.open = true;
    if let Some(b) = w.batch.as_mut() {
        b.jobs += 1;
        job.serial = b.serial;
        job.outcome = Some(b.outcome.subscribe());
    }
    Ok(job)
}

impl Job {
    pub(crate) fn conn(&self) -> &AnyConnection {
        &self.guard.conn
    }

    pub(crate) fn conn_mut(&mut self) -> &mut AnyConnection {
        &mut self.guard.conn
    }

    /// Releases the savepoint and answers once the batch holding it committed. Run as a
    /// task of its own, so that a caller that stops waiting cannot leave a batch open.
    pub(crate) async fn finish(mut self, hook: Option<Arc<dyn super::BeforeCommit>>) -> Outcome {
        if let Some(h) = &hook {
            // On failure the dropped job rolls its savepoint back.
            h.before_commit(self.conn_mut())
                .await
                .map_err(|e| e.to_string())?;
        }
        let gate = self.gate.clone();
        let serial = self.serial;
        let Some(mut outcome) = self.outcome.take() else {
            return Err("the write transaction has no batch".into());
        };
        let w = &mut *self.guard;
        if let Err(e) = Manager::commit(&mut w.conn).await {
            self.open = false;
            let why = format!("RELEASE failed: {e}");
            w.abandon(why.clone()).await;
            return Err(why);
        }
        self.open = false;
        let Some(b) = w.batch.as_mut() else {
            return Err("the batch was rolled back".into());
        };
        b.waiting += 1;
        let more = gate.queued.load(Ordering::Acquire) > 0
            && b.jobs < gate.max_jobs.load(Ordering::Relaxed)
            && b.started.elapsed().as_micros()
                < u128::from(gate.max_age_us.load(Ordering::Relaxed));
        if !more {
            return w.commit_batch(&gate).await;
        }
        // Hand the connection on to the writers queued behind; commit when it comes back.
        drop(self);
        let mut turn = tokio::select! {
            r = outcome.wait_for(Option::is_some) => {
                return match r {
                    Ok(o) => o.clone().unwrap_or(Err("no outcome".into())),
                    Err(_) => Err("the writer connection closed".into()),
                };
            }
            g = gate.writer.clone().lock_owned() => g,
        };
        match turn.as_mut() {
            Some(w) if !w.broken && w.batch.as_ref().is_some_and(|b| b.serial == serial) => {
                w.commit_batch(&gate).await
            }
            // Committed or failed by another writer of the batch: its outcome is set.
            _ => {
                drop(turn);
                let o = outcome.borrow().clone();
                o.unwrap_or(Err("the batch ended without an outcome".into()))
            }
        }
    }
}

impl Drop for Job {
    /// A writer that stops without committing: its savepoint is rolled back (queued on the
    /// connection, checked by the next writer), and a batch nobody waits for is rolled back
    /// whole, so SQLite's write lock is never left held.
    fn drop(&mut self) {
        let w = &mut *self.guard;
        if self.open {
            Manager::start_rollback(&mut w.conn);
            w.dirty = true;
        }
        if w.batch.as_ref().is_some_and(|b| b.waiting == 0) {
            Manager::start_rollback(&mut w.conn);
            w.dirty = true;
            if let Some(b) = w.batch.take() {
                b.outcome
                    .send_replace(Some(Err("the batch was rolled back".into())));
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::config::DatabaseConfig;
    use crate::store::{OpenMode, Store, StoreError};

    /// A migrated store in `dir`, with a probe table and a deferred reference (which makes
    /// a COMMIT fail while every savepoint before it succeeded).
    async fn store(dir: &std::path::Path) -> Store {
        let cfg = DatabaseConfig::from_url("sqlite://t.db", dir).unwrap();
        let store = Store::open(&cfg, OpenMode::CreateAndMigrate).await.unwrap();
        sqlx::raw_sql(
            "CREATE TABLE probe (job BIGINT NOT NULL, step BIGINT NOT NULL); \
             CREATE TABLE parent (id BIGINT PRIMARY KEY); \
             CREATE TABLE child (parent BIGINT REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED);",
        )
        .execute(store.pool())
        .await
        .unwrap();
        let gate = store.gate.as_ref().unwrap();
        gate.set_max_age(Duration::from_secs(60));
        store
    }

    async fn rows(store: &Store, job: i64) -> i64 {
        sqlx::query_scalar("SELECT COUNT(*) FROM probe WHERE job = $1")
            .bind(job)
            .fetch_one(store.pool())
            .await
            .unwrap()
    }

    #[derive(Clone, Copy, PartialEq)]
    enum Fate {
        Commit,
        /// Writes, then stops without committing (an operation failing midway).
        FailMidway,
        /// Leaves a dangling deferred reference: its own steps succeed, the COMMIT fails.
        BreakCommit,
    }

    /// One writer: two rows, then its fate. After a successful commit its rows must already
    /// be visible to another connection (the pool): nobody hears "committed" before it is.
    async fn writer(store: Store, job: i64, fate: Fate) -> Result<(), StoreError> {
        let mut tx = store.write().await?;
        for step in 0..2 {
            sqlx::query("INSERT INTO probe (job, step) VALUES ($1, $2)")
                .bind(job)
                .bind(step)
                .execute(&mut *tx)
                .await?;
        }
        match fate {
            Fate::FailMidway => return Err(StoreError::Corrupt("failed midway".into())),
            Fate::BreakCommit => {
                sqlx::query("INSERT INTO child (parent) VALUES (999)")
                    .execute(&mut *tx)
                    .await?;
            }
            Fate::Commit => {}
        }
        tx.commit().await?;
        assert_eq!(
            rows(&store, job).await,
            2,
            "job {job} answered before its commit"
        );
        Ok(())
    }

    /// Holds the writer connection while `fates.len()` writers queue behind it, then lets
    /// them run: all of them and the holder (job 0) form one batch.
    async fn batch_of(store: &Store, fates: &[Fate]) -> Vec<Result<(), StoreError>> {
        let mut first = store.write().await.unwrap();
        sqlx::query("INSERT INTO probe (job, step) VALUES (0, 0), (0, 1)")
            .execute(&mut *first)
            .await
            .unwrap();
        let tasks: Vec<_> = fates
            .iter()
            .enumerate()
            .map(|(i, f)| tokio::spawn(writer(store.clone(), i as i64 + 1, *f)))
            .collect();
        let mut spins = 0;
        while store.queued_writers() < fates.len() {
            spins += 1;
            assert!(spins < 100_000, "writers did not queue");
            tokio::task::yield_now().await;
        }
        let mut out = vec![first.commit().await];
        for t in tasks {
            out.push(t.await.unwrap());
        }
        out
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_writer_failing_midway_rolls_back_only_its_own_work() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path()).await;
        let mut fates = vec![Fate::Commit; 15];
        fates[6] = Fate::FailMidway;
        let commits = store.write_commits();
        let out = batch_of(&store, &fates).await;
        assert_eq!(store.write_commits() - commits, 1, "16 writers, one COMMIT");
        for (job, r) in out.iter().enumerate() {
            if job == 7 {
                assert!(r.is_err(), "job 7 failed");
                assert_eq!(
                    rows(&store, 7).await,
                    0,
                    "nothing of the failed job remains"
                );
            } else {
                assert!(r.is_ok(), "job {job}: {r:?}");
                assert_eq!(rows(&store, job as i64).await, 2, "job {job}");
            }
        }
        // The connection goes on: the next writer commits on its own.
        writer(store.clone(), 99, Fate::Commit).await.unwrap();
        store.close().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_commit_is_reported_to_every_writer_of_its_batch() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path()).await;
        let mut fates = vec![Fate::Commit; 9];
        fates[3] = Fate::BreakCommit;
        let out = batch_of(&store, &fates).await;
        for (job, r) in out.iter().enumerate() {
            let e = r
                .as_ref()
                .expect_err("no writer of a failed batch hears success");
            assert!(matches!(e, StoreError::Commit(_)), "job {job}: {e}");
            assert_eq!(rows(&store, job as i64).await, 0, "job {job}");
        }
        let children: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM child")
            .fetch_one(store.pool())
            .await
            .unwrap();
        assert_eq!(children, 0);
        // A new connection replaces the failed one; writers commit again.
        writer(store.clone(), 99, Fate::Commit).await.unwrap();
        store.close().await;
    }

    /// Close comes while a writer has handed the connection on and waits for its batch's
    /// COMMIT: close commits the batch (the writer hears success, its rows are there), and
    /// the writer queued before close is refused instead of opening the file again. One
    /// thread, so the order in which they queue is the order of the steps here.
    #[tokio::test]
    async fn close_commits_the_batch_its_writers_wait_for_and_refuses_later_writers() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path()).await;
        let mut first = store.write().await.unwrap();
        sqlx::query("INSERT INTO probe (job, step) VALUES (0, 0)")
            .execute(&mut *first)
            .await
            .unwrap();
        let queued = tokio::spawn(writer(store.clone(), 1, Fate::Commit));
        let mut spins = 0;
        while store.queued_writers() < 1 {
            spins += 1;
            assert!(spins < 100_000, "the writer did not queue");
            tokio::task::yield_now().await;
        }
        let closing = {
            let store = store.clone();
            tokio::spawn(async move { store.close_within(Duration::from_secs(10)).await })
        };
        // Close marks the gate and waits for the writer connection in the same step.
        let gate = store.gate.clone().unwrap();
        while !gate.closed.load(Ordering::Acquire) {
            spins += 1;
            assert!(spins < 100_000, "close did not begin");
            tokio::task::yield_now().await;
        }
        // Job 1 is queued, close behind it: the first writer hands the connection on.
        first.commit().await.unwrap();
        assert!(matches!(
            queued.await.unwrap(),
            Err(StoreError::Sql(sqlx::Error::PoolClosed))
        ));
        closing.await.unwrap().unwrap();
        let store = Store::open(
            &DatabaseConfig::from_url("sqlite://t.db", dir.path()).unwrap(),
            OpenMode::Existing,
        )
        .await
        .unwrap();
        assert_eq!(
            rows(&store, 0).await,
            1,
            "the batch close found open committed"
        );
        assert_eq!(rows(&store, 1).await, 0);
        store.close().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn without_group_commit_each_writer_commits_alone() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path()).await;
        store.limit_group_commit(1);
        let commits = store.write_commits();
        let out = batch_of(&store, &[Fate::Commit; 5]).await;
        assert!(out.iter().all(Result::is_ok));
        assert_eq!(store.write_commits() - commits, 6);
        store.close().await;
    }
}
