//! The key-encryption keys, stored only as age files (see `crypto`), and the per-family
//! wrapped data keys that rotation rewraps.

use super::{Conn, StoreError, StringList};

/// A live KEK: its id, its age-wrapped bytes and the recipients it is wrapped to.
#[derive(sqlx::FromRow)]
pub struct StoredKek {
    pub id: i64,
    pub wrapped: Vec<u8>,
    #[sqlx(try_from = "StringList")]
    pub recipients: Vec<String>,
}

/// The KEK new data keys are wrapped with: the newest live one.
pub async fn current(conn: &mut Conn) -> Result<Option<StoredKek>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT id, wrapped, recipients FROM keks WHERE retired_at IS NULL ORDER BY id DESC LIMIT 1",
    )
    .fetch_optional(conn)
    .await?)
}

pub async fn by_id(conn: &mut Conn, id: i64) -> Result<Option<StoredKek>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT id, wrapped, recipients FROM keks WHERE id = $1 AND retired_at IS NULL",
    )
    .bind(id)
    .fetch_optional(conn)
    .await?)
}

/// Every live KEK, oldest first (more than one only while a `--new-kek` rotation runs).
pub async fn live(conn: &mut Conn) -> Result<Vec<StoredKek>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT id, wrapped, recipients FROM keks WHERE retired_at IS NULL ORDER BY id",
    )
    .fetch_all(conn)
    .await?)
}

pub async fn insert(
    conn: &mut Conn,
    wrapped: &[u8],
    recipients: &[String],
    now: i64,
) -> Result<i64, StoreError> {
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO keks (wrapped, recipients, created_at) VALUES ($1, $2, $3) RETURNING id",
    )
    .bind(wrapped)
    .bind(json(recipients)?)
    .bind(now)
    .fetch_one(conn)
    .await?;
    Ok(id)
}

fn json(v: &[String]) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// Replaces a KEK's age file (same key, new recipient set).
pub async fn rewrap(
    conn: &mut Conn,
    id: i64,
    wrapped: &[u8],
    recipients: &[String],
) -> Result<(), StoreError> {
    sqlx::query("UPDATE keks SET wrapped = $2, recipients = $3 WHERE id = $1")
        .bind(id)
        .bind(wrapped)
        .bind(json(recipients)?)
        .execute(conn)
        .await?;
    Ok(())
}

/// Retires every live KEK but `keep`, emptying its wrapped bytes.
pub async fn retire_all_but(conn: &mut Conn, keep: i64, now: i64) -> Result<u64, StoreError> {
    let done = sqlx::query(
        "UPDATE keks SET retired_at = $2, wrapped = $3 WHERE id != $1 AND retired_at IS NULL",
    )
    .bind(keep)
    .bind(now)
    .bind(Vec::<u8>::new())
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}

/// A family whose data key is still wrapped by another KEK than `target`.
#[derive(sqlx::FromRow)]
pub struct WrappedDek {
    pub family_id: i64,
    pub family_ref: String,
    pub kek_id: i64,
    pub wrapped: Vec<u8>,
}

pub async fn deks_not_under(
    conn: &mut Conn,
    target: i64,
    limit: i64,
) -> Result<Vec<WrappedDek>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT id AS family_id, ref AS family_ref, kek_id, wrapped_dek AS wrapped FROM families \
         WHERE kek_id != $1 AND wrapped_dek IS NOT NULL ORDER BY id LIMIT $2",
    )
    .bind(target)
    .bind(limit)
    .fetch_all(conn)
    .await?)
}

/// Stores a rewrapped data key, only if the family is still under `from` (so a concurrent
/// rotation or erasure wins cleanly).
pub async fn set_dek(
    conn: &mut Conn,
    family_id: i64,
    from: i64,
    to: i64,
    wrapped: &[u8],
) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "UPDATE families SET kek_id = $3, wrapped_dek = $4 WHERE id = $1 AND kek_id = $2 AND wrapped_dek IS NOT NULL",
    )
    .bind(family_id)
    .bind(from)
    .bind(to)
    .bind(wrapped)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The stored audit key: the KEK it is wrapped under, the wrapped bytes, and the first audit
/// entry it covers.
#[derive(sqlx::FromRow)]
pub struct StoredAuditKey {
    pub kek_id: i64,
    pub wrapped: Vec<u8>,
    pub first_seq: i64,
}

pub async fn audit_key(conn: &mut Conn) -> Result<Option<StoredAuditKey>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT kek_id, wrapped_key AS wrapped, first_seq FROM audit_key WHERE id = 1",
    )
    .fetch_optional(conn)
    .await?)
}

pub async fn insert_audit_key(
    conn: &mut Conn,
    key: &StoredAuditKey,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO audit_key (id, kek_id, wrapped_key, first_seq, created_at) VALUES (1, $1, $2, $3, $4)",
    )
    .bind(key.kek_id)
    .bind(&key.wrapped)
    .bind(key.first_seq)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// Stores the audit key rewrapped under another KEK (rotation; the key itself is unchanged).
pub async fn set_audit_key(conn: &mut Conn, kek_id: i64, wrapped: &[u8]) -> Result<(), StoreError> {
    sqlx::query("UPDATE audit_key SET kek_id = $1, wrapped_key = $2 WHERE id = 1")
        .bind(kek_id)
        .bind(wrapped)
        .execute(conn)
        .await?;
    Ok(())
}
