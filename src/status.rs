//! `nazorg status`: what an operator checks first. Counts and times only, no references.

use crate::store::{Conn, StoreError};
use sqlx::Row;

#[derive(Debug, serde::Serialize)]
pub struct Status {
    /// Messages waiting to be sent, and the age of the oldest (seconds).
    pub outbox_pending: i64,
    pub outbox_oldest_pending_secs: i64,
    /// Messages that failed for good (`nazorg outbox list --failed`).
    pub outbox_failed: i64,
    /// The instant of the latest sweep (RFC 3339), if any ran.
    pub last_sweep: Option<String>,
    pub families_running: i64,
    pub handovers_pending: i64,
    pub flags_open: Vec<(String, i64)>,
}

pub async fn status(conn: &mut Conn, now: i64) -> Result<Status, StoreError> {
    let count = |sql: &'static str| sqlx::query_scalar::<_, i64>(sql);
    let outbox_pending = count("SELECT COUNT(*) FROM outbox WHERE status = 'pending'")
        .fetch_one(&mut *conn)
        .await?;
    let outbox_failed = count("SELECT COUNT(*) FROM outbox WHERE status = 'failed'")
        .fetch_one(&mut *conn)
        .await?;
    let outbox_oldest_pending_secs = crate::store::outbox::oldest_pending_age(conn, now).await?;
    let last: Option<i64> = sqlx::query_scalar("SELECT MAX(at) FROM sweeps")
        .fetch_one(&mut *conn)
        .await?;
    let last_sweep = match last {
        Some(s) => Some(crate::store::from_secs(s)?.to_rfc3339()),
        None => None,
    };
    let families_running = count("SELECT COUNT(*) FROM families WHERE status = 'running'")
        .fetch_one(&mut *conn)
        .await?;
    let handovers_pending =
        count("SELECT COUNT(*) FROM handovers WHERE status IN ('pending', 'escalated')")
            .fetch_one(&mut *conn)
            .await?;
    let rows = sqlx::query(
        "SELECT severity, COUNT(*) FROM flags WHERE status != 'resolved' GROUP BY severity ORDER BY severity",
    )
    .fetch_all(&mut *conn)
    .await?;
    let flags_open = rows
        .iter()
        .map(|r| Ok((r.try_get::<String, _>(0)?, r.try_get::<i64, _>(1)?)))
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
    Ok(Status {
        outbox_pending,
        outbox_oldest_pending_secs,
        outbox_failed,
        last_sweep,
        families_running,
        handovers_pending,
        flags_open,
    })
}
