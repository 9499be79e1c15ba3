//! The one Store API over the database: SQLite (the embedded default) or PostgreSQL (several
//! daemons on one database), chosen by the scheme of `database.url`. The SQL is what both
//! speak (`$N` placeholders, partial indexes, `ON CONFLICT DO NOTHING`); each engine has its
//! own migrations with the same numbers and meaning (`migrations/sqlite`, `migrations/postgres`).
//!
//! Each statement is a small function taking the connection of an open transaction, so the
//! callers decide what commits together (a state change and its outbox message).

pub mod case_numbers;
pub mod caseload;
pub mod checkin_family;
pub mod checkins;
pub mod closure;
pub mod export;
pub mod families;
pub mod flags;
mod group;
pub mod handovers;
pub mod household;
pub mod keys;
pub mod members;
pub mod metrics;
pub mod outbox;
pub mod owner;
pub mod round_trip;
pub(crate) mod rows;
pub mod sweeps;
pub mod tokens;

pub use crate::config::Backend;
use crate::config::DatabaseConfig;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{Any, AnyPool, ConnectOptions, Connection, Executor};
use std::fs::File;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

/// One connection type for both engines (sqlx's `Any` driver): the statements use `$N`
/// placeholders and only BIGINT, TEXT and BLOB/BYTEA values, which both speak alike.
pub type Conn = sqlx::AnyConnection;

/// A transaction of the store. A write transaction on SQLite is a savepoint in the writer
/// connection's open batch (see [`Store::write`]) and holds that connection until it
/// commits or is dropped.
pub struct Tx {
    inner: TxInner,
    /// Run last before the commit: the API request's audit entry (see [`serving`]).
    hook: Option<Arc<dyn BeforeCommit>>,
}

enum TxInner {
    /// A read, or a write on PostgreSQL: a transaction of its own.
    Own(sqlx::Transaction<'static, Any>),
    /// A write on SQLite, committed with the others of its batch.
    Grouped(group::Job),
}

impl Tx {
    /// Commits; returns only once the change is as durable as a transaction commit makes
    /// it (on SQLite: once the COMMIT of the batch holding it returned).
    pub async fn commit(self) -> Result<(), StoreError> {
        let Tx { inner, hook } = self;
        match inner {
            TxInner::Own(mut tx) => {
                if let Some(h) = &hook {
                    h.before_commit(&mut tx).await?;
                }
                tx.commit().await?;
            }
            TxInner::Grouped(job) => {
                // A task of its own: a caller that stops waiting cannot leave the batch open.
                tokio::spawn(job.finish(hook.clone()))
                    .await
                    .map_err(|e| StoreError::Commit(e.to_string()))?
                    .map_err(StoreError::Commit)?;
            }
        }
        if let Some(h) = hook {
            h.committed();
        }
        Ok(())
    }

    pub async fn rollback(self) -> Result<(), StoreError> {
        match self.inner {
            TxInner::Own(tx) => tx.rollback().await?,
            // Dropping the job rolls its savepoint back.
            TxInner::Grouped(job) => drop(job),
        }
        Ok(())
    }
}

impl std::ops::Deref for Tx {
    type Target = Conn;
    fn deref(&self) -> &Conn {
        match &self.inner {
            TxInner::Own(tx) => tx,
            TxInner::Grouped(job) => job.conn(),
        }
    }
}

impl std::ops::DerefMut for Tx {
    fn deref_mut(&mut self) -> &mut Conn {
        match &mut self.inner {
            TxInner::Own(tx) => tx,
            TxInner::Grouped(job) => job.conn_mut(),
        }
    }
}

/// A future borrowing the connection it runs on.
pub type ConnFuture<'a> = Pin<Box<dyn Future<Output = Result<(), StoreError>> + Send + 'a>>;

/// Work a write transaction does last, just before it commits, for whoever began it: an API
/// request's own audit entry, so that the change and the record of the request that made it
/// are one commit.
pub trait BeforeCommit: Send + Sync {
    fn before_commit<'a>(&'a self, conn: &'a mut Conn) -> ConnFuture<'a>;
    /// Called once the transaction that ran [`BeforeCommit::before_commit`] committed.
    fn committed(&self);
}

tokio::task_local! {
    static SERVING: Option<Arc<dyn BeforeCommit>>;
}

/// Runs `work` with `hook` attached to every write transaction it begins (`None`: to none,
/// e.g. a denial audited on its own while a request is served).
pub async fn serving<F: Future>(hook: Option<Arc<dyn BeforeCommit>>, work: F) -> F::Output {
    SERVING.scope(hook, work).await
}

/// Longest a write transaction waits for the writer connection: SQLite's own `busy_timeout`.
const WRITE_WAIT: Duration = Duration::from_secs(15);

/// Longest [`Store::close`] waits for connections in use to come back and close: with the
/// dispatcher's grace and the API's drain, well inside systemd's `TimeoutStopSec=30s`.
pub const CLOSE_WAIT: Duration = Duration::from_secs(5);

static SQLITE_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// PostgreSQL advisory lock keys (one namespace per installation's database).
/// Write transactions take `WRITE_LOCK` for their duration, as SQLite's `BEGIN IMMEDIATE`
/// takes the file's write lock: the read-then-write steps (audit chain, references, claims)
/// stay correct with several daemons. `SWEEP_LOCK` is held for a whole sweep.
const WRITE_LOCK: i64 = 0x6e61_7a6f_7267_0001;
const SWEEP_LOCK: i64 = 0x6e61_7a6f_7267_0002;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("no database at {0}; run `nazorg migrate` first (or check database.url for a typo)")]
    Missing(PathBuf),
    #[error("the folder {0} for the database does not exist")]
    NoFolder(PathBuf),
    #[error(
        "another nazorg daemon already uses {0}; SQLite serves one daemon (use PostgreSQL to run several)"
    )]
    Locked(PathBuf),
    #[error("cannot create lock file {path}: {source}")]
    LockFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read database.password_file {path}: {source}")]
    PasswordFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("database.url: {0}")]
    Url(String),
    #[error(
        "no Nazorg tables in the PostgreSQL database; run `nazorg migrate` first (or check database.url for a typo)"
    )]
    NotMigrated,
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database error: {0}")]
    Sql(#[from] sqlx::Error),
    #[error("stored data is inconsistent: {0}")]
    Corrupt(String),
    #[error("the audit key is not usable: {0}")]
    AuditKey(String),
    #[error("the database stayed busy with other writes for {} s", WRITE_WAIT.as_secs())]
    Busy,
    #[error("{0}")]
    ForeignOwner(owner::ForeignOwner),
    #[error("the write was not committed: {0}")]
    Commit(String),
    #[error("the database is not closed: {0}")]
    StillOpen(String),
}

impl StoreError {
    /// True for a uniqueness violation (a clash of random references, or a repeat).
    pub fn is_unique_violation(&self) -> bool {
        matches!(self, StoreError::Sql(sqlx::Error::Database(e)) if e.is_unique_violation())
    }

    /// True when the database could not be reached (server down, connection lost): worth
    /// retrying later, unlike a constraint or a bug.
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            StoreError::Sql(
                sqlx::Error::Io(_)
                    | sqlx::Error::PoolTimedOut
                    | sqlx::Error::PoolClosed
                    | sqlx::Error::WorkerCrashed
                    | sqlx::Error::Tls(_)
            )
        )
    }
}

/// Whether opening may create a new, empty database.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpenMode {
    /// `migrate` and `serve`: create the file if its folder exists, then migrate.
    CreateAndMigrate,
    /// Every other command: the database must already exist and be migrated.
    Existing,
}

#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    path: PathBuf,
    label: String,
    cfg: DatabaseConfig,
    /// SQLite: the process's one writer connection. Write transactions queue for it in
    /// order rather than on SQLite's busy handler (which polls with sleeps of up to 100 ms)
    /// and commit in groups. Shared by every pool on the same file ([`Store::separate_pool`]).
    gate: Option<Arc<group::Gate>>,
    /// Write transactions begun through this store and its separate pools (benchmarks and
    /// tests hold the API to one per request).
    writes: Arc<std::sync::atomic::AtomicU64>,
    /// Writes begun with [`Store::write_later`] and not yet done, shared like `gate`.
    deferred: Arc<Deferred>,
}

/// The writes nobody waits for ([`Store::write_later`]), by key, and whether the store is
/// closing (then none is begun). [`Store::close`] waits until none is left.
#[derive(Debug)]
struct Deferred(tokio::sync::watch::Sender<DeferredState>);

#[derive(Debug, Default)]
struct DeferredState {
    keys: std::collections::HashSet<String>,
    closing: bool,
}

impl Default for Deferred {
    fn default() -> Deferred {
        Deferred(tokio::sync::watch::Sender::new(DeferredState::default()))
    }
}

/// Held by `serve` for its whole life; a second daemon on the same file is refused.
/// PostgreSQL needs none: several daemons share one database.
#[derive(Debug)]
pub struct DaemonLock {
    _file: Option<File>,
}

/// Held for the length of a sweep on PostgreSQL, so two daemons never sweep at once.
/// Dropping it closes its connection, which releases the session's advisory lock even
/// when the sweep stopped on an error.
pub struct SweepGuard {
    _conn: Option<sqlx::pool::PoolConnection<Any>>,
}

/// `/srv/x.db` → `sqlite:///srv/x.db?mode=rwc`, with the characters a URL would read as
/// syntax escaped.
fn sqlite_url(path: &Path, create: bool) -> String {
    let mut escaped = String::new();
    for c in path.to_string_lossy().chars() {
        match c {
            '%' | '?' | '#' | ' ' => escaped.push_str(&format!("%{:02X}", c as u32)),
            c => escaped.push(c),
        }
    }
    let mode = if create { "rwc" } else { "rw" };
    format!("sqlite://{escaped}?mode={mode}")
}

impl Store {
    pub async fn open(cfg: &DatabaseConfig, mode: OpenMode) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        match cfg.backend {
            Backend::Sqlite => Store::open_sqlite(cfg, mode).await,
            Backend::Postgres => Store::open_postgres(cfg, mode).await,
        }
    }

    async fn open_sqlite(cfg: &DatabaseConfig, mode: OpenMode) -> Result<Store, StoreError> {
        let path = cfg.sqlite_path.clone();
        let folder = path.parent().unwrap_or(Path::new("."));
        if !folder.as_os_str().is_empty() && !folder.is_dir() {
            return Err(StoreError::NoFolder(folder.to_path_buf()));
        }
        owner::refuse_root_on_foreign(&path, folder).map_err(StoreError::ForeignOwner)?;
        if mode == OpenMode::Existing && !path.is_file() {
            return Err(StoreError::Missing(path));
        }
        let pool = sqlite_pool(&path, mode == OpenMode::CreateAndMigrate, 4).await?;
        let store = Store {
            pool,
            backend: Backend::Sqlite,
            path: path.clone(),
            label: cfg.url.clone(),
            cfg: cfg.clone(),
            gate: Some(Arc::new(group::Gate::new(sqlite_url(&path, false)))),
            writes: Arc::default(),
            deferred: Arc::default(),
        };
        if mode == OpenMode::CreateAndMigrate {
            store.migrate().await?;
        }
        Ok(store)
    }

    async fn open_postgres(cfg: &DatabaseConfig, mode: OpenMode) -> Result<Store, StoreError> {
        let store = Store {
            pool: postgres_pool(cfg, 8)?,
            backend: Backend::Postgres,
            path: PathBuf::new(),
            label: cfg.display_url(),
            cfg: cfg.clone(),
            gate: None,
            writes: Arc::default(),
            deferred: Arc::default(),
        };
        match mode {
            OpenMode::CreateAndMigrate => store.migrate().await?,
            OpenMode::Existing => {
                // A typo'd database or an unmigrated one fails here, clearly, not later.
                let migrated: Option<String> =
                    sqlx::query_scalar("SELECT CAST(to_regclass('_sqlx_migrations') AS TEXT)")
                        .fetch_one(&store.pool)
                        .await?;
                if migrated.is_none() {
                    return Err(StoreError::NotMigrated);
                }
            }
        }
        Ok(store)
    }

    /// The same database through a pool of its own, so one user of it (the HTTP API) cannot
    /// take every connection from another (the sweep and the dispatcher).
    pub async fn separate_pool(&self, max_connections: u32) -> Result<Store, StoreError> {
        let max = max_connections.max(1);
        let pool = match self.backend {
            Backend::Sqlite => sqlite_pool(&self.path, false, max).await?,
            Backend::Postgres => postgres_pool(&self.cfg, max)?,
        };
        Ok(Store {
            pool,
            backend: self.backend,
            path: self.path.clone(),
            label: self.label.clone(),
            cfg: self.cfg.clone(),
            gate: self.gate.clone(),
            writes: self.writes.clone(),
            deferred: self.deferred.clone(),
        })
    }

    /// Applies pending migrations (idempotent). On PostgreSQL sqlx's migrator holds an
    /// advisory lock while it runs, so daemons starting at once migrate one after another.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        match self.backend {
            Backend::Sqlite => {
                // SQLite changes a constraint by rebuilding the table (create, copy, drop,
                // rename), which is only safe with foreign keys off: dropping the old table
                // would otherwise cascade into every row that refers to it. The switch only
                // works outside a transaction, so it is set on the one connection the
                // migrations run on, every reference is checked after, and it is set back.
                let mut conn = self.pool.acquire().await?;
                sqlx::query("PRAGMA foreign_keys = OFF")
                    .execute(&mut *conn)
                    .await?;
                let before = applied_migrations(&mut conn).await;
                let ran = SQLITE_MIGRATOR.run(&mut *conn).await;
                // The full check reads every table: only after migrations actually ran.
                let broken = if applied_migrations(&mut conn).await == before {
                    Ok(0)
                } else {
                    sqlx::query("PRAGMA foreign_key_check")
                        .fetch_all(&mut *conn)
                        .await
                        .map(|rows| rows.len())
                };
                sqlx::query("PRAGMA foreign_keys = ON")
                    .execute(&mut *conn)
                    .await?;
                ran?;
                match broken? {
                    0 => {}
                    n => {
                        return Err(StoreError::Corrupt(format!(
                            "{n} broken references after migrating"
                        )));
                    }
                }
            }
            Backend::Postgres => POSTGRES_MIGRATOR.run(&self.pool).await?,
        }
        Ok(())
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// A write transaction. On SQLite it waits, in arrival order, for the process's one
    /// writer connection and runs there as a savepoint of a `BEGIN IMMEDIATE` transaction that
    /// writers queued at the same time share (group commit, see `store::group`); `BEGIN
    /// IMMEDIATE` takes SQLite's write lock up front, so other processes (the CLI) queue on
    /// the busy timeout instead of failing halfway. On PostgreSQL it is a transaction of its
    /// own with a transaction-scoped advisory lock, shared by every daemon on the database.
    /// Inside [`serving`] the transaction carries that hook.
    pub async fn write(&self) -> Result<Tx, StoreError> {
        self.writes
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.begin_write().await
    }

    async fn begin_write(&self) -> Result<Tx, StoreError> {
        let hook = SERVING.try_with(Clone::clone).ok().flatten();
        match (&self.gate, self.backend) {
            (Some(gate), _) => Ok(Tx {
                inner: TxInner::Grouped(group::begin(gate).await?),
                hook,
            }),
            (None, _) => {
                let mut tx = self.pool.begin().await?;
                if self.backend == Backend::Postgres {
                    sqlx::query("SELECT pg_advisory_xact_lock($1)")
                        .bind(WRITE_LOCK)
                        .execute(&mut *tx)
                        .await?;
                }
                Ok(Tx {
                    inner: TxInner::Own(tx),
                    hook,
                })
            }
        }
    }

    /// Runs `work` in a write transaction of its own, in a task of its own, for a caller that
    /// must not wait for the writer (an API request recording a token's use, while a
    /// group-commit batch or another daemon's write holds the writer or the write lock). One
    /// per `key` at a time: while one waits, another with the same key is not begun (it
    /// would write the same row). [`Store::close`] waits for those begun; after close began
    /// none is. Not waited for, it is never lost silently either: a failure is logged with
    /// `what` (which names the kind of write, never data).
    pub fn write_later<F>(&self, key: String, what: &'static str, work: F)
    where
        F: for<'c> FnOnce(&'c mut Conn) -> ConnFuture<'c> + Send + 'static,
    {
        let mut closing = false;
        let begun = self.deferred.0.send_if_modified(|d| {
            closing = d.closing;
            !closing && d.keys.insert(key.clone())
        });
        if closing {
            tracing::warn!(write = what, "not written: the database is closing");
        }
        if !begun {
            return;
        }
        let store = self.clone();
        tokio::spawn(async move {
            let done = async {
                // Not counted in `write_transactions`: it is no caller's.
                let mut tx = store.begin_write().await?;
                work(&mut tx).await?;
                tx.commit().await
            };
            if let Err(e) = done.await {
                tracing::warn!(write = what, error = %e, "a deferred write failed");
            }
            store.deferred.0.send_modify(|d| {
                d.keys.remove(&key);
            });
        });
    }

    /// Until the writes begun with [`Store::write_later`] are done (new ones refused), or
    /// `deadline`.
    async fn finish_deferred(&self, deadline: tokio::time::Instant) -> Result<(), StoreError> {
        self.deferred.0.send_modify(|d| d.closing = true);
        let mut state = self.deferred.0.subscribe();
        match tokio::time::timeout_at(deadline, state.wait_for(|d| d.keys.is_empty())).await {
            Ok(_) => Ok(()),
            Err(_) => Err(StoreError::StillOpen(format!(
                "{} deferred write(s) not done",
                self.deferred.0.borrow().keys.len()
            ))),
        }
    }

    /// How many write transactions were begun on this database through this process's
    /// stores so far (not counting [`Store::write_later`]'s, which no caller waits for).
    pub fn write_transactions(&self) -> u64 {
        self.writes.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// How many COMMITs those write transactions took (on SQLite one per batch; on
    /// PostgreSQL one each, not counted here).
    pub fn write_commits(&self) -> u64 {
        self.gate.as_ref().map_or(0, |g| g.commits())
    }

    /// Write transactions waiting for SQLite's writer connection now (0 on PostgreSQL).
    pub fn queued_writers(&self) -> usize {
        self.gate.as_ref().map_or(0, |g| g.queued())
    }

    /// Bounds how many write transactions one SQLite COMMIT may carry (at least 1, which
    /// commits each on its own). For benchmarks comparing with and without group commit.
    pub fn limit_group_commit(&self, max_jobs: usize) {
        if let Some(g) = &self.gate {
            g.set_max_jobs(max_jobs);
        }
    }

    /// A read transaction (a consistent snapshot).
    pub async fn read(&self) -> Result<Tx, StoreError> {
        let inner = match self.backend {
            Backend::Sqlite => self.pool.begin().await?,
            Backend::Postgres => {
                self.pool
                    .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ")
                    .await?
            }
        };
        Ok(Tx {
            inner: TxInner::Own(inner),
            hook: None,
        })
    }

    /// A connection for reads outside a transaction.
    pub async fn conn(&self) -> Result<sqlx::pool::PoolConnection<Any>, StoreError> {
        Ok(self.pool.acquire().await?)
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// The SQLite file (empty on PostgreSQL).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Where the data lives, for logs: the file, or the URL without its password.
    pub fn describe(&self) -> &str {
        &self.label
    }

    /// Takes the daemon lock next to the database file (`<db>.daemon.lock`). On
    /// PostgreSQL several daemons may share the database: nothing to take.
    pub fn lock_daemon(&self) -> Result<DaemonLock, StoreError> {
        if self.backend == Backend::Postgres {
            return Ok(DaemonLock { _file: None });
        }
        let mut name = self.path.as_os_str().to_owned();
        name.push(".daemon.lock");
        let lock_path = PathBuf::from(name);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|source| StoreError::LockFile {
                path: lock_path.clone(),
                source,
            })?;
        match file.try_lock() {
            Ok(()) => Ok(DaemonLock { _file: Some(file) }),
            Err(std::fs::TryLockError::WouldBlock) => Err(StoreError::Locked(self.path.clone())),
            Err(std::fs::TryLockError::Error(source)) => Err(StoreError::LockFile {
                path: lock_path,
                source,
            }),
        }
    }

    /// Serialises sweeps across daemons on PostgreSQL: waits while another daemon sweeps
    /// (its sweep then leaves nothing for this one but idempotent checks). On SQLite the
    /// write lock and the daemon lock already do this.
    pub async fn sweep_lock(&self) -> Result<SweepGuard, StoreError> {
        if self.backend == Backend::Sqlite {
            return Ok(SweepGuard { _conn: None });
        }
        let mut conn = self.pool.acquire().await?;
        conn.close_on_drop();
        sqlx::query("SELECT pg_advisory_lock($1)")
            .bind(SWEEP_LOCK)
            .execute(&mut *conn)
            .await?;
        Ok(SweepGuard { _conn: Some(conn) })
    }

    /// Row counts of every table, for tests that prove bad input changed nothing and for
    /// `nazorg status`.
    pub async fn counts(&self) -> Result<Vec<(String, i64)>, StoreError> {
        let mut out = Vec::new();
        for table in [
            "families",
            "members",
            "responsibilities",
            "checkins",
            "observations",
            "outbox",
            "keks",
            "handovers",
            "flags",
        ] {
            let n: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}"))
                .fetch_one(&self.pool)
                .await?;
            out.push((table.to_string(), n));
        }
        Ok(out)
    }

    /// Moves the WAL into the database and truncates it, so erased pages do not linger in
    /// the `-wal` file. PostgreSQL's own WAL and vacuum are the operator's (see README).
    pub async fn checkpoint(&self) -> Result<(), StoreError> {
        if self.backend == Backend::Sqlite {
            sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                .execute(&self.pool)
                .await?;
        }
        Ok(())
    }

    /// Closes this store's pool and the writer connection it shares with its separate pools,
    /// waiting at most [`CLOSE_WAIT`]; what stays open then is logged. See
    /// [`Store::close_within`].
    pub async fn close(&self) {
        if let Err(e) = self.close_within(CLOSE_WAIT).await {
            tracing::warn!(error = %e, "database not closed cleanly");
        }
    }

    /// Waits for the writes begun with [`Store::write_later`], closes the writer connection
    /// (committing a batch whose writers wait for it) and every connection of this pool,
    /// and returns once each is closed: on SQLite once
    /// `sqlite3_close` returned for it. Connections in use are closed as they come back, for
    /// at most `limit`; one still out then is named in the error. Writes begun after close
    /// are refused: nothing opens the file again. On SQLite the last store to close also
    /// leaves the WAL folded into the database and the `-wal` and `-shm` files removed.
    pub async fn close_within(&self, limit: Duration) -> Result<(), StoreError> {
        let deadline = tokio::time::Instant::now() + limit;
        let deferred = self.finish_deferred(deadline).await;
        let writer = match &self.gate {
            Some(g) => g.close(deadline).await,
            None => Ok(()),
        };
        let pool = close_pool(&self.pool, deadline).await;
        deferred.and(writer).and(pool)?;
        if self.backend == Backend::Sqlite {
            tokio::time::timeout_at(deadline, self.fold_wal())
                .await
                .map_err(|_| StoreError::StillOpen("the WAL was not folded in".into()))??;
        }
        Ok(())
    }

    /// SQLite folds the WAL into the database and removes `-wal` and `-shm` when the last
    /// connection to the file closes; but two closing at the same moment (a pool's idle one
    /// and one coming back) may each still see the other and leave both files. Then one
    /// connection alone, opened and closed, does it (none if another store's pool on the
    /// file is still open: the last one to close does).
    async fn fold_wal(&self) -> Result<(), StoreError> {
        let mut wal = self.path.clone().into_os_string();
        wal.push("-wal");
        if !Path::new(&wal).exists() {
            return Ok(());
        }
        let conn = AnyConnectOptions::from_str(&sqlite_url(&self.path, false))?
            .connect()
            .await?;
        conn.close().await?;
        Ok(())
    }
}

/// Closes every connection of `pool` by `deadline`. sqlx's `Pool::close` closes the idle
/// connections (each `Connection::close` waits for its SQLite worker thread to drop the
/// handle) and then waits for those in use, which are closed as they come back; but one
/// that was on its way back (its return checked the pool open, then pinged the connection)
/// lands among the idle after `close` looked last, and stays open until the pool is dropped,
/// when its worker thread closes it later or never (the process exits first). So closing
/// goes on until the pool holds no connection.
async fn close_pool(pool: &AnyPool, deadline: tokio::time::Instant) -> Result<(), StoreError> {
    loop {
        let closed = tokio::time::timeout_at(deadline, pool.close()).await;
        if closed.is_ok() && pool.size() == 0 {
            return Ok(());
        }
        if closed.is_err() || tokio::time::Instant::now() >= deadline {
            return Err(StoreError::StillOpen(format!(
                "{} pool connection(s) still in use",
                pool.size()
            )));
        }
        // A connection between being handed back and landing idle: a moment.
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// How many migrations the database has applied (0 before the first).
async fn applied_migrations(conn: &mut sqlx::pool::PoolConnection<sqlx::Any>) -> i64 {
    sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM _sqlx_migrations")
        .fetch_one(&mut **conn)
        .await
        .unwrap_or(0)
}

/// What every SQLite connection sets: WAL, as before; erased data is overwritten, not merely
/// unlinked from the b-tree (secure_delete).
const SQLITE_PRAGMAS: &str = "PRAGMA busy_timeout = 15000; PRAGMA journal_mode = WAL; \
     PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA secure_delete = ON;";

/// A pool on the SQLite file with the pragmas every connection needs.
async fn sqlite_pool(path: &Path, create: bool, max: u32) -> Result<AnyPool, StoreError> {
    let options = AnyConnectOptions::from_str(&sqlite_url(path, create))?;
    Ok(AnyPoolOptions::new()
        .max_connections(max)
        // No reaper task: it would wake an idle daemon every ten minutes to close
        // connections to a local file, which cost nothing to keep.
        .idle_timeout(None)
        // Nor a ping before every use: a connection to a local file does not drop, and the
        // ping is a round trip to the connection's thread for every statement a pool
        // connection is taken for. A failing connection still fails its statement.
        .test_before_acquire(false)
        .max_lifetime(None)
        .after_connect(|conn, _| {
            Box::pin(async move {
                conn.execute(SQLITE_PRAGMAS).await?;
                Ok(())
            })
        })
        .connect_with(options)
        .await?)
}

/// A lazy pool on the PostgreSQL server (connections open when first needed, and again
/// after the server was lost), the password read from `database.password_file` if set.
fn postgres_pool(cfg: &DatabaseConfig, max: u32) -> Result<AnyPool, StoreError> {
    let mut options = AnyConnectOptions::from_str(&cfg.url)
        .map_err(|_| StoreError::Url("not a valid PostgreSQL URL".into()))?;
    if let Some(file) = &cfg.password_file {
        let secret = std::fs::read_to_string(file).map_err(|source| StoreError::PasswordFile {
            path: file.clone(),
            source,
        })?;
        let secret = secret.trim_end_matches(['\r', '\n']);
        options
            .database_url
            .set_password(Some(secret))
            .map_err(|()| StoreError::Url("the URL cannot carry a password".into()))?;
    }
    Ok(AnyPoolOptions::new()
        .max_connections(max)
        .acquire_timeout(Duration::from_secs(10))
        .connect_lazy_with(options))
}

/// Which engine a connection talks to, for the few statements that differ.
pub fn backend_of(conn: &Conn) -> Backend {
    if conn.backend_name() == "PostgreSQL" {
        Backend::Postgres
    } else {
        Backend::Sqlite
    }
}

/// Unix seconds ↔ UTC instants, the one representation of time in the database.
pub fn to_secs(t: chrono::DateTime<chrono::Utc>) -> i64 {
    t.timestamp()
}

pub fn from_secs(s: i64) -> Result<chrono::DateTime<chrono::Utc>, StoreError> {
    chrono::DateTime::from_timestamp(s, 0)
        .ok_or_else(|| StoreError::Corrupt(format!("timestamp {s} out of range")))
}

/// A 0/1 `BIGINT` column (both engines store flags so), read into a `bool` field of a
/// `FromRow` struct with `#[sqlx(try_from = "IntBool")]`: sqlx's `Any` driver decodes a
/// `bool` only from a boolean value, never from an integer.
pub struct IntBool(bool);

impl sqlx::Type<Any> for IntBool {
    fn type_info() -> sqlx::any::AnyTypeInfo {
        <i64 as sqlx::Type<Any>>::type_info()
    }

    fn compatible(ty: &sqlx::any::AnyTypeInfo) -> bool {
        <i64 as sqlx::Type<Any>>::compatible(ty)
    }
}

impl<'r> sqlx::Decode<'r, Any> for IntBool {
    fn decode(value: sqlx::any::AnyValueRef<'r>) -> Result<Self, sqlx::error::BoxDynError> {
        Ok(IntBool(<i64 as sqlx::Decode<'r, Any>>::decode(value)? != 0))
    }
}

impl From<IntBool> for bool {
    fn from(v: IntBool) -> bool {
        v.0
    }
}

/// A list of strings as stored (a JSON array in a TEXT column: outbox addresses, a KEK's
/// recipients), read into a `Vec<String>` field of a `FromRow` struct with
/// `#[sqlx(try_from = "StringList")]`: the `Any` driver has no JSON type.
pub struct StringList(Vec<String>);

impl sqlx::Type<Any> for StringList {
    fn type_info() -> sqlx::any::AnyTypeInfo {
        <String as sqlx::Type<Any>>::type_info()
    }

    fn compatible(ty: &sqlx::any::AnyTypeInfo) -> bool {
        <String as sqlx::Type<Any>>::compatible(ty)
    }
}

impl<'r> sqlx::Decode<'r, Any> for StringList {
    fn decode(value: sqlx::any::AnyValueRef<'r>) -> Result<Self, sqlx::error::BoxDynError> {
        let text = <&str as sqlx::Decode<'r, Any>>::decode(value)?;
        let list = serde_json::from_str(text)
            .map_err(|_| StoreError::Corrupt("not a JSON list of strings".into()))?;
        Ok(StringList(list))
    }
}

impl From<StringList> for Vec<String> {
    fn from(v: StringList) -> Vec<String> {
        v.0
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[derive(sqlx::FromRow)]
    struct Probe {
        #[sqlx(try_from = "IntBool")]
        flag: bool,
        #[sqlx(try_from = "StringList")]
        list: Vec<String>,
    }

    async fn memory() -> AnyPool {
        sqlx::any::install_default_drivers();
        AnyPoolOptions::new()
            .max_connections(1)
            .connect("sqlite::memory:")
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn integer_flags_and_json_lists_map_into_rows() {
        let pool = memory().await;
        let p: Probe = sqlx::query_as("SELECT 1 AS flag, '[\"a@x.example\",\"b\"]' AS list")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert!(p.flag);
        assert_eq!(p.list, ["a@x.example", "b"]);
        let p: Probe = sqlx::query_as("SELECT 0 AS flag, '[]' AS list")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert!(!p.flag);
        assert!(p.list.is_empty());
    }

    #[tokio::test]
    async fn a_list_column_that_is_not_json_is_an_error_naming_the_column() {
        let pool = memory().await;
        let e = sqlx::query_as::<_, Probe>("SELECT 1 AS flag, 'not json' AS list")
            .fetch_one(&pool)
            .await
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains("\"list\"") && e.contains("not a JSON list"),
            "{e}"
        );
        let e = sqlx::query_as::<_, Probe>("SELECT 'yes' AS flag, '[]' AS list")
            .fetch_one(&pool)
            .await
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("flag"), "{e}");
    }
}
