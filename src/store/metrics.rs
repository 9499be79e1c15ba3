//! Counts for `/metrics`: how many, never which.

use super::{Conn, StoreError};

type Series = Vec<(Option<(&'static str, String)>, i64)>;

async fn grouped(conn: &mut Conn, sql: &str, label: &'static str) -> Result<Series, StoreError> {
    let rows: Vec<(String, i64)> = sqlx::query_as(sql).fetch_all(conn).await?;
    Ok(rows
        .into_iter()
        .map(|(value, n)| (Some((label, value)), n))
        .collect())
}

/// (metric name, help, series).
pub async fn counts(
    conn: &mut Conn,
) -> Result<Vec<(&'static str, &'static str, Series)>, StoreError> {
    Ok(vec![
        (
            "families",
            "Families by plan status",
            grouped(
                conn,
                "SELECT status, COUNT(*) FROM families GROUP BY status",
                "status",
            )
            .await?,
        ),
        (
            "checkins",
            "Check-ins by status",
            grouped(
                conn,
                "SELECT status, COUNT(*) FROM checkins GROUP BY status",
                "status",
            )
            .await?,
        ),
        (
            "outbox_messages",
            "Outbox messages by delivery status",
            grouped(
                conn,
                "SELECT status, COUNT(*) FROM outbox GROUP BY status",
                "status",
            )
            .await?,
        ),
        (
            "audit_entries",
            "Entries in the audit trail",
            vec![(
                None,
                sqlx::query_scalar("SELECT COUNT(*) FROM audit")
                    .fetch_one(&mut *conn)
                    .await?,
            )],
        ),
    ])
}

/// Safety notices re-sent to a coordinator after failing for good: every fallback is an
/// outbox row that is never deleted, so the count only grows (a counter).
pub async fn safety_fallbacks(conn: &mut Conn) -> Result<i64, StoreError> {
    Ok(
        sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE kind = $1")
            .bind(crate::mail::SAFETY_FALLBACK_KIND)
            .fetch_one(conn)
            .await?,
    )
}
