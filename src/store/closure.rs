//! Closing on purpose: the evaluation of an ended plan, the sealed approval of an early
//! closure, and the red flags that block one.

use super::{Conn, StoreError};
use sqlx::Row;

/// Red flags of a family that are not resolved (open or acknowledged).
pub async fn unresolved_red_flags(conn: &mut Conn, family_id: i64) -> Result<i64, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT COUNT(*) FROM flags WHERE family_id = $1 AND severity = 'red' \
         AND status != 'resolved'",
    )
    .bind(family_id)
    .fetch_one(conn)
    .await?)
}

pub async fn set_close_approval(
    conn: &mut Conn,
    family_id: i64,
    sealed: &[u8],
) -> Result<(), StoreError> {
    sqlx::query("UPDATE families SET sealed_close_approval = $2 WHERE id = $1")
        .bind(family_id)
        .bind(sealed)
        .execute(conn)
        .await?;
    Ok(())
}

/// A family's evaluation.
pub struct NewEvaluation<'a> {
    pub family_id: i64,
    pub recorded_at: i64,
    pub safety_improved: &'a str,
    pub professionals: i64,
    pub sealed_view: Option<&'a [u8]>,
}

/// Inserts the evaluation; `false` when the family has one already.
pub async fn insert_evaluation(conn: &mut Conn, e: &NewEvaluation<'_>) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "INSERT INTO evaluations (family_id, recorded_at, safety_improved, professionals, sealed_view) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (family_id) DO NOTHING",
    )
    .bind(e.family_id)
    .bind(e.recorded_at)
    .bind(e.safety_improved)
    .bind(e.professionals)
    .bind(e.sealed_view)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// `(family_id, safety_improved, professionals)` of the evaluations of the families with ids
/// in `[lo, hi]` (for the export: codes only, the view stays sealed).
pub async fn evaluations_between(
    conn: &mut Conn,
    lo: i64,
    hi: i64,
) -> Result<Vec<(i64, String, i64)>, StoreError> {
    let rows = sqlx::query(
        "SELECT family_id, safety_improved, professionals FROM evaluations \
         WHERE family_id BETWEEN $1 AND $2",
    )
    .bind(lo)
    .bind(hi)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
        .collect()
}

/// `(safety_improved, professionals, sealed_view)` of a family's evaluation.
pub async fn evaluation_of(
    conn: &mut Conn,
    family_id: i64,
) -> Result<Option<(String, i64, Option<Vec<u8>>)>, StoreError> {
    let row = sqlx::query(
        "SELECT safety_improved, professionals, sealed_view FROM evaluations WHERE family_id = $1",
    )
    .bind(family_id)
    .fetch_optional(conn)
    .await?;
    row.map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
        .transpose()
}

/// The sealed approval of a family's early closure, if any.
pub async fn close_approval(
    conn: &mut Conn,
    family_id: i64,
) -> Result<Option<Vec<u8>>, StoreError> {
    let v: Option<Option<Vec<u8>>> =
        sqlx::query_scalar("SELECT sealed_close_approval FROM families WHERE id = $1")
            .bind(family_id)
            .fetch_optional(conn)
            .await?;
    Ok(v.flatten())
}

/// Erasure: the evaluation (codes and sealed view) and the sealed approval go.
pub async fn erase(conn: &mut Conn, family_id: i64) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM evaluations WHERE family_id = $1")
        .bind(family_id)
        .execute(&mut *conn)
        .await?;
    sqlx::query("UPDATE families SET sealed_close_approval = NULL WHERE id = $1")
        .bind(family_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Families whose plan ended at its term (`completed`) without an evaluation that are owed
/// the request (never asked) or may be owed the one reminder (asked at or before
/// `asked_by`), with ids above `after`, in id order: `(family_id, asked_at)`.
pub async fn evaluations_owed(
    conn: &mut Conn,
    asked_by: i64,
    after: i64,
    limit: i64,
) -> Result<Vec<(i64, Option<i64>)>, StoreError> {
    let rows = sqlx::query(
        "SELECT f.id, f.evaluation_asked_at FROM families f \
         WHERE f.status = 'completed' AND f.evaluation_reminded_at IS NULL \
         AND (f.evaluation_asked_at IS NULL OR f.evaluation_asked_at <= $1) \
         AND f.id > $2 \
         AND NOT EXISTS (SELECT 1 FROM evaluations e WHERE e.family_id = f.id) \
         ORDER BY f.id LIMIT $3",
    )
    .bind(asked_by)
    .bind(after)
    .bind(limit)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
        .collect()
}

/// The evaluation was asked for (`reminder = false`) or reminded at `now`.
pub async fn mark_evaluation_asked(
    conn: &mut Conn,
    family_id: i64,
    now: i64,
    reminder: bool,
) -> Result<(), StoreError> {
    let sql = if reminder {
        "UPDATE families SET evaluation_reminded_at = $2 WHERE id = $1"
    } else {
        "UPDATE families SET evaluation_asked_at = $2 WHERE id = $1"
    };
    sqlx::query(sql)
        .bind(family_id)
        .bind(now)
        .execute(conn)
        .await?;
    Ok(())
}
