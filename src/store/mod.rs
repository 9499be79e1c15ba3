//! The one Store API over the database. SQLite is the embedded default; the SQL is kept to
//! what PostgreSQL also speaks (`$N` placeholders, partial indexes, `ON CONFLICT DO NOTHING`)
//! so a second backend can follow behind the same functions.
//!
//! Each statement is a small function taking the connection of an open transaction, so the
//! callers decide what commits together (a state change and its outbox message).

pub mod caseload;
pub mod checkins;
pub mod closure;
pub mod export;
pub mod families;
pub mod flags;
pub mod handovers;
pub mod household;
pub mod keys;
pub mod members;
pub mod metrics;
pub mod outbox;
pub mod sweeps;
pub mod tokens;

use crate::config::DatabaseConfig;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Sqlite, SqlitePool};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub type Conn = sqlx::SqliteConnection;
pub type Tx = sqlx::Transaction<'static, Sqlite>;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

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
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database error: {0}")]
    Sql(#[from] sqlx::Error),
    #[error("stored data is inconsistent: {0}")]
    Corrupt(String),
    #[error("the audit key is not usable: {0}")]
    AuditKey(String),
}

impl StoreError {
    /// True for a uniqueness violation (a clash of random references, or a repeat).
    pub fn is_unique_violation(&self) -> bool {
        matches!(self, StoreError::Sql(sqlx::Error::Database(e)) if e.is_unique_violation())
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
    pool: SqlitePool,
    path: PathBuf,
}

/// Held by `serve` for its whole life; a second daemon on the same file is refused.
#[derive(Debug)]
pub struct DaemonLock {
    _file: File,
}

impl Store {
    pub async fn open(cfg: &DatabaseConfig, mode: OpenMode) -> Result<Store, StoreError> {
        let path = cfg.sqlite_path.clone();
        let folder = path.parent().unwrap_or(Path::new("."));
        if !folder.as_os_str().is_empty() && !folder.is_dir() {
            return Err(StoreError::NoFolder(folder.to_path_buf()));
        }
        if mode == OpenMode::Existing && !path.is_file() {
            return Err(StoreError::Missing(path));
        }
        let options = connect_options(&path, mode == OpenMode::CreateAndMigrate);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await?;
        let store = Store { pool, path };
        if mode == OpenMode::CreateAndMigrate {
            MIGRATOR.run(&store.pool).await?;
        }
        Ok(store)
    }

    /// The same database through a pool of its own, so one user of it (the HTTP API) cannot
    /// take every connection from another (the sweep and the dispatcher).
    pub async fn separate_pool(&self, max_connections: u32) -> Result<Store, StoreError> {
        let pool = SqlitePoolOptions::new()
            .max_connections(max_connections.max(1))
            .connect_with(connect_options(&self.path, false))
            .await?;
        Ok(Store {
            pool,
            path: self.path.clone(),
        })
    }

    /// Applies pending migrations (idempotent).
    pub async fn migrate(&self) -> Result<(), StoreError> {
        MIGRATOR.run(&self.pool).await?;
        Ok(())
    }

    /// A write transaction. `BEGIN IMMEDIATE` takes SQLite's write lock up front, so two
    /// writers queue on the busy timeout instead of failing halfway.
    pub async fn write(&self) -> Result<Tx, StoreError> {
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
    }

    /// A read transaction (a consistent snapshot).
    pub async fn read(&self) -> Result<Tx, StoreError> {
        Ok(self.pool.begin().await?)
    }

    /// A connection for reads outside a transaction.
    pub async fn conn(&self) -> Result<sqlx::pool::PoolConnection<Sqlite>, StoreError> {
        Ok(self.pool.acquire().await?)
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Takes the daemon lock next to the database file (`<db>.daemon.lock`).
    pub fn lock_daemon(&self) -> Result<DaemonLock, StoreError> {
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
            Ok(()) => Ok(DaemonLock { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => Err(StoreError::Locked(self.path.clone())),
            Err(std::fs::TryLockError::Error(source)) => Err(StoreError::LockFile {
                path: lock_path,
                source,
            }),
        }
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
    /// the `-wal` file.
    pub async fn checkpoint(&self) -> Result<(), StoreError> {
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

fn connect_options(path: &Path, create: bool) -> SqliteConnectOptions {
    SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(create)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(15))
        // Erased data is overwritten, not merely unlinked from the b-tree.
        .pragma("secure_delete", "ON")
}

/// Unix seconds ↔ UTC instants, the one representation of time in the database.
pub fn to_secs(t: chrono::DateTime<chrono::Utc>) -> i64 {
    t.timestamp()
}

pub fn from_secs(s: i64) -> Result<chrono::DateTime<chrono::Utc>, StoreError> {
    chrono::DateTime::from_timestamp(s, 0)
        .ok_or_else(|| StoreError::Corrupt(format!("timestamp {s} out of range")))
}
