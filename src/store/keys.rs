//! The key-encryption keys, stored only as age files (see `crypto`).

use super::{Conn, StoreError};
use sqlx::Row;

/// The KEK in use: its id and its age-wrapped bytes.
pub struct StoredKek {
    pub id: i64,
    pub wrapped: Vec<u8>,
}

pub async fn current(conn: &mut Conn) -> Result<Option<StoredKek>, StoreError> {
    let row = sqlx::query(
        "SELECT id, wrapped FROM keks WHERE retired_at IS NULL ORDER BY id DESC LIMIT 1",
    )
    .fetch_optional(conn)
    .await?;
    Ok(match row {
        Some(r) => Some(StoredKek {
            id: r.try_get("id")?,
            wrapped: r.try_get("wrapped")?,
        }),
        None => None,
    })
}

pub async fn insert(conn: &mut Conn, wrapped: &[u8], now: i64) -> Result<i64, StoreError> {
    let id: i64 =
        sqlx::query_scalar("INSERT INTO keks (wrapped, created_at) VALUES ($1, $2) RETURNING id")
            .bind(wrapped)
            .bind(now)
            .fetch_one(conn)
            .await?;
    Ok(id)
}
