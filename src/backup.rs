//! `nazorg backup`: a consistent copy of the SQLite database while the daemon runs.
//!
//! `VACUUM INTO` reads one snapshot (a read transaction), so a sweep or a recording that
//! commits meanwhile is either wholly in the copy or not at all. The copy is then opened on
//! its own and checked with `PRAGMA integrity_check`. Restoring is copying the file back in
//! place of the database while the daemon is stopped (see README "Backup and restore").
//! Personal data stays sealed in the copy: without the age identity it cannot be read.

use crate::store::{Store, StoreError};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("{0} already exists; choose a new file name (a backup never overwrites)")]
    Exists(PathBuf),
    #[error("cannot create {path}: {source}")]
    Create {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(
        "nazorg backup copies a SQLite database; on PostgreSQL use pg_dump (or `nazorg copy-database` to a sqlite:// URL)"
    )]
    Postgres,
    #[error("the copy at {path} failed its integrity check: {result}")]
    Corrupt { path: PathBuf, result: String },
}

impl From<sqlx::Error> for BackupError {
    fn from(e: sqlx::Error) -> Self {
        BackupError::Store(StoreError::Sql(e))
    }
}

/// What a backup holds, checked on the copy itself.
#[derive(Debug, serde::Serialize)]
pub struct BackupReport {
    pub out: PathBuf,
    pub bytes: u64,
    pub integrity: String,
    pub families: i64,
    pub audit_entries: i64,
}

/// Writes a consistent snapshot of `store` to `out` (mode 0600, must not exist) and checks it.
pub async fn backup(store: &Store, out: &Path) -> Result<BackupReport, BackupError> {
    if store.backend() != crate::store::Backend::Sqlite {
        return Err(BackupError::Postgres);
    }
    // VACUUM INTO needs a missing or empty file; making it empty first fixes its mode.
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(out)
        .map_err(|source| match source.kind() {
            std::io::ErrorKind::AlreadyExists => BackupError::Exists(out.to_path_buf()),
            _ => BackupError::Create {
                path: out.to_path_buf(),
                source,
            },
        })?;
    let result = copy_and_check(store, out).await;
    if result.is_err() {
        let _ = std::fs::remove_file(out);
    }
    result
}

async fn copy_and_check(store: &Store, out: &Path) -> Result<BackupReport, BackupError> {
    let target = out.to_string_lossy().into_owned();
    sqlx::query("VACUUM INTO $1")
        .bind(&target)
        .execute(store.pool())
        .await?;
    let mut copy = SqliteConnectOptions::new()
        .filename(out)
        .read_only(true)
        .connect()
        .await?;
    let integrity: String = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_one(&mut copy)
        .await?;
    let families: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM families")
        .fetch_one(&mut copy)
        .await?;
    let audit_entries: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit")
        .fetch_one(&mut copy)
        .await?;
    copy.close().await?;
    if integrity != "ok" {
        return Err(BackupError::Corrupt {
            path: out.to_path_buf(),
            result: integrity,
        });
    }
    let bytes = std::fs::metadata(out).map(|m| m.len()).unwrap_or(0);
    Ok(BackupReport {
        out: out.to_path_buf(),
        bytes,
        integrity,
        families,
        audit_entries,
    })
}
