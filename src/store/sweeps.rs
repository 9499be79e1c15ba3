//! When the sweep ran, so time-driven checks can look only at what changed since.

use super::{Conn, StoreError};

/// The latest sweep instant at or before `now` (a simulated clock may go back in time).
pub async fn last_before(conn: &mut Conn, now: i64) -> Result<Option<i64>, StoreError> {
    let at: Option<i64> = sqlx::query_scalar("SELECT MAX(at) FROM sweeps WHERE at <= $1")
        .bind(now)
        .fetch_one(conn)
        .await?;
    Ok(at)
}

pub async fn record(conn: &mut Conn, at: i64, notices: i64) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO sweeps (at, started_at, notices) VALUES ($1, $1, $2)")
        .bind(at)
        .bind(notices)
        .execute(conn)
        .await?;
    Ok(())
}
