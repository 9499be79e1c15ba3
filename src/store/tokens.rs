//! API tokens, stored only as the SHA-256 of their secret.

use super::{Conn, StoreError};

#[derive(Clone, Debug, serde::Serialize, sqlx::FromRow)]
pub struct TokenRow {
    pub id: String,
    pub role: String,
    pub municipality: Option<String>,
    pub study: Option<String>,
    pub label: Option<String>,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
    pub last_used_at: Option<i64>,
}

const COLUMNS: &str =
    "id, role, municipality, study, label, created_at, expires_at, revoked_at, last_used_at";

pub struct NewToken<'a> {
    pub id: &'a str,
    pub secret_hash: &'a [u8],
    pub role: &'a str,
    pub municipality: Option<&'a str>,
    pub study: Option<&'a str>,
    pub label: Option<&'a str>,
    pub created_at: i64,
    pub expires_at: Option<i64>,
}

pub async fn insert(conn: &mut Conn, t: &NewToken<'_>) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO api_tokens (id, secret_hash, role, municipality, study, label, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(t.id)
    .bind(t.secret_hash)
    .bind(t.role)
    .bind(t.municipality)
    .bind(t.study)
    .bind(t.label)
    .bind(t.created_at)
    .bind(t.expires_at)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn by_hash(conn: &mut Conn, hash: &[u8]) -> Result<Option<TokenRow>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM api_tokens WHERE secret_hash = $1");
    Ok(sqlx::query_as(&sql).bind(hash).fetch_optional(conn).await?)
}

pub async fn list(conn: &mut Conn) -> Result<Vec<TokenRow>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM api_tokens ORDER BY created_at, id");
    Ok(sqlx::query_as(&sql).fetch_all(conn).await?)
}

pub async fn revoke(conn: &mut Conn, id: &str, now: i64) -> Result<bool, StoreError> {
    let done =
        sqlx::query("UPDATE api_tokens SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL")
            .bind(id)
            .bind(now)
            .execute(conn)
            .await?;
    Ok(done.rows_affected() == 1)
}

/// Records a use of token `id` at `now`; never moves `last_used_at` back (deferred writes
/// may land out of order).
pub async fn touch(conn: &mut Conn, id: &str, now: i64) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE api_tokens SET last_used_at = $2 \
         WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < $2)",
    )
    .bind(id)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// SHA-256 hashes of the secrets of tokens not revoked (the API's in-memory gate for clients
/// that used up their allowance of failed requests).
pub async fn active_hashes(conn: &mut Conn, now: i64) -> Result<Vec<Vec<u8>>, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT secret_hash FROM api_tokens WHERE revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $1)",
    )
    .bind(now)
    .fetch_all(conn)
    .await?)
}
