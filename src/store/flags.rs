//! Flags: rules that fired for a child or a family, and their lifecycle.

use super::{Conn, StoreError};
use sqlx::Row;

pub struct NewFlag<'a> {
    pub family_id: i64,
    pub member_id: Option<i64>,
    pub subject: &'a str,
    pub rule: &'a str,
    pub kind: &'a str,
    pub severity: &'a str,
    pub trigger_checkin_id: i64,
    pub raised_at: i64,
    pub sealed_evidence: &'a [u8],
}

/// True when a flag for this rule and subject is open or acknowledged, or was ever raised
/// at this trigger check-in: then nothing new is raised.
pub async fn blocks(
    conn: &mut Conn,
    rule: &str,
    subject: &str,
    trigger_checkin_id: i64,
) -> Result<bool, StoreError> {
    let n: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM flags WHERE rule = $1 AND subject = $2 \
         AND (status != 'resolved' OR trigger_checkin_id = $3)",
    )
    .bind(rule)
    .bind(subject)
    .bind(trigger_checkin_id)
    .fetch_one(conn)
    .await?;
    Ok(n > 0)
}

/// Inserts a flag unless one blocks it (see `blocks`); returns its id if new.
pub async fn insert(conn: &mut Conn, f: &NewFlag<'_>) -> Result<Option<i64>, StoreError> {
    let id: Option<i64> = sqlx::query_scalar(
        "INSERT INTO flags (family_id, member_id, subject, rule, kind, severity, \
         trigger_checkin_id, raised_at, sealed_evidence) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING RETURNING id",
    )
    .bind(f.family_id)
    .bind(f.member_id)
    .bind(f.subject)
    .bind(f.rule)
    .bind(f.kind)
    .bind(f.severity)
    .bind(f.trigger_checkin_id)
    .bind(f.raised_at)
    .bind(f.sealed_evidence)
    .fetch_optional(conn)
    .await?;
    Ok(id)
}

/// A flag as stored, with its family, member and trigger references.
#[derive(Clone, Debug)]
pub struct FlagRow {
    pub id: i64,
    pub family_id: i64,
    pub family_ref: String,
    pub member_ref: Option<String>,
    pub rule: String,
    pub kind: String,
    pub severity: String,
    pub status: String,
    pub trigger_checkin: String,
    pub raised_at: i64,
    pub sealed_evidence: Option<Vec<u8>>,
    pub acknowledged_at: Option<i64>,
    pub sealed_ack: Option<Vec<u8>>,
    pub resolved_at: Option<i64>,
    pub sealed_resolution: Option<Vec<u8>>,
    /// The municipality responsible for the family at the instant asked about.
    pub municipality: String,
}

const SELECT: &str = "SELECT fl.id, fl.family_id, f.ref, m.ref, fl.rule, fl.kind, fl.severity, \
     fl.status, c.ref, fl.raised_at, fl.sealed_evidence, fl.acknowledged_at, fl.sealed_ack, \
     fl.resolved_at, fl.sealed_resolution, r.municipality \
     FROM flags fl JOIN families f ON f.id = fl.family_id \
     JOIN checkins c ON c.id = fl.trigger_checkin_id \
     JOIN responsibilities r ON r.id = COALESCE( \
          (SELECT r2.id FROM responsibilities r2 WHERE r2.family_id = f.id AND r2.valid_from <= $AT \
           ORDER BY r2.valid_from DESC LIMIT 1), \
          (SELECT r3.id FROM responsibilities r3 WHERE r3.family_id = f.id \
           ORDER BY r3.valid_from LIMIT 1)) \
     LEFT JOIN members m ON m.id = fl.member_id";

/// The select with the responsibility instant bound to placeholder `$n`.
fn select_at(n: usize) -> String {
    SELECT.replace("$AT", &format!("${n}"))
}

fn flag_row(r: &sqlx::any::AnyRow) -> Result<FlagRow, StoreError> {
    Ok(FlagRow {
        id: r.try_get(0)?,
        family_id: r.try_get(1)?,
        family_ref: r.try_get(2)?,
        member_ref: r.try_get(3)?,
        rule: r.try_get(4)?,
        kind: r.try_get(5)?,
        severity: r.try_get(6)?,
        status: r.try_get(7)?,
        trigger_checkin: r.try_get(8)?,
        raised_at: r.try_get(9)?,
        sealed_evidence: r.try_get(10)?,
        acknowledged_at: r.try_get(11)?,
        sealed_ack: r.try_get(12)?,
        resolved_at: r.try_get(13)?,
        sealed_resolution: r.try_get(14)?,
        municipality: r.try_get(15)?,
    })
}

pub async fn by_id(conn: &mut Conn, id: i64, at: i64) -> Result<Option<FlagRow>, StoreError> {
    let sql = format!("{} WHERE fl.id = $1", select_at(2));
    let row = sqlx::query(&sql)
        .bind(id)
        .bind(at)
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(flag_row).transpose()
}

/// Flags, optionally of one municipality (responsible now) and/or only unresolved ones.
pub async fn list(
    conn: &mut Conn,
    municipality: Option<&str>,
    unresolved_only: bool,
    at: i64,
) -> Result<Vec<FlagRow>, StoreError> {
    let sql = format!(
        "{} WHERE ($1 IS NULL OR r.municipality = $1) \
         AND ($2 = 0 OR fl.status != 'resolved') ORDER BY fl.id",
        select_at(3)
    );
    let rows = sqlx::query(&sql)
        .bind(municipality)
        .bind(i64::from(unresolved_only))
        .bind(at)
        .fetch_all(conn)
        .await?;
    rows.iter().map(flag_row).collect()
}

pub async fn of_family(
    conn: &mut Conn,
    family_id: i64,
    at: i64,
) -> Result<Vec<FlagRow>, StoreError> {
    let sql = format!("{} WHERE fl.family_id = $1 ORDER BY fl.id", select_at(2));
    let rows = sqlx::query(&sql)
        .bind(family_id)
        .bind(at)
        .fetch_all(conn)
        .await?;
    rows.iter().map(flag_row).collect()
}

/// Unresolved flags of running families (every severity), for the digest.
pub async fn for_digest(conn: &mut Conn, at: i64) -> Result<Vec<FlagRow>, StoreError> {
    let sql = format!(
        "{} WHERE fl.status != 'resolved' \
         AND f.status = 'running' ORDER BY r.municipality, fl.id",
        select_at(1)
    );
    let rows = sqlx::query(&sql).bind(at).fetch_all(conn).await?;
    rows.iter().map(flag_row).collect()
}

/// open → acknowledged; `false` if the flag was not open.
pub async fn acknowledge(
    conn: &mut Conn,
    id: i64,
    now: i64,
    sealed: &[u8],
) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "UPDATE flags SET status = 'acknowledged', acknowledged_at = $2, sealed_ack = $3 \
         WHERE id = $1 AND status = 'open'",
    )
    .bind(id)
    .bind(now)
    .bind(sealed)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// open or acknowledged → resolved; `false` if it was resolved already.
pub async fn resolve(
    conn: &mut Conn,
    id: i64,
    now: i64,
    sealed: &[u8],
) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "UPDATE flags SET status = 'resolved', resolved_at = $2, sealed_resolution = $3 \
         WHERE id = $1 AND status != 'resolved'",
    )
    .bind(id)
    .bind(now)
    .bind(sealed)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Running families whose last reached contact (or enrolment) lies in `(from, upto]`:
/// those that crossed an `out_of_sight` mark since the previous sweep. Paged by id.
pub async fn out_of_sight_candidates(
    conn: &mut Conn,
    from: i64,
    upto: i64,
    after_id: i64,
    limit: i64,
) -> Result<Vec<i64>, StoreError> {
    let ids: Vec<i64> = sqlx::query_scalar(
        "SELECT f.id FROM families f WHERE f.status = 'running' \
         AND COALESCE(f.last_reached_at, f.enrolled_at) > $1 \
         AND COALESCE(f.last_reached_at, f.enrolled_at) <= $2 \
         AND f.id > $3 ORDER BY f.id LIMIT $4",
    )
    .bind(from)
    .bind(upto)
    .bind(after_id)
    .bind(limit)
    .fetch_all(conn)
    .await?;
    Ok(ids)
}

/// The open or acknowledged flag of a rule for a subject: (id, severity).
pub async fn active(
    conn: &mut Conn,
    rule: &str,
    subject: &str,
) -> Result<Option<(i64, String)>, StoreError> {
    let row = sqlx::query(
        "SELECT id, severity FROM flags WHERE rule = $1 AND subject = $2 AND status != 'resolved'",
    )
    .bind(rule)
    .bind(subject)
    .fetch_optional(conn)
    .await?;
    row.map(|r| Ok((r.try_get(0)?, r.try_get(1)?))).transpose()
}

/// A flag that became more severe (an amber `out_of_sight` turning red) is open again:
/// the acknowledgement was for the milder signal.
pub async fn set_severity(conn: &mut Conn, id: i64, severity: &str) -> Result<(), StoreError> {
    sqlx::query("UPDATE flags SET severity = $2, status = 'open' WHERE id = $1")
        .bind(id)
        .bind(severity)
        .execute(conn)
        .await?;
    Ok(())
}

/// A red alert went out for this flag (first, repeated, or after turning red).
pub async fn mark_alerted(conn: &mut Conn, id: i64, now: i64) -> Result<(), StoreError> {
    sqlx::query("UPDATE flags SET alerted_at = $2 WHERE id = $1")
        .bind(id)
        .bind(now)
        .execute(conn)
        .await?;
    Ok(())
}

/// The coordinator was told about this unacknowledged red flag.
pub async fn mark_red_escalated(conn: &mut Conn, id: i64, now: i64) -> Result<(), StoreError> {
    sqlx::query("UPDATE flags SET escalated_at = $2 WHERE id = $1")
        .bind(id)
        .bind(now)
        .execute(conn)
        .await?;
    Ok(())
}

/// An open (unacknowledged) red flag of a running family, with when it was last alerted
/// and whether it was escalated.
pub struct RedToFollow {
    pub flag: FlagRow,
    pub alerted_at: Option<i64>,
    pub escalated_at: Option<i64>,
}

/// Open red flags of running families, oldest first.
pub async fn red_to_follow(conn: &mut Conn, at: i64) -> Result<Vec<RedToFollow>, StoreError> {
    let sql = format!(
        "{} WHERE fl.status = 'open' AND fl.severity = 'red' AND f.status = 'running' \
         ORDER BY fl.id",
        select_at(1)
    )
    .replacen(
        "FROM flags fl",
        ", fl.alerted_at, fl.escalated_at FROM flags fl",
        1,
    );
    let rows = sqlx::query(&sql).bind(at).fetch_all(conn).await?;
    rows.iter()
        .map(|r| {
            Ok(RedToFollow {
                flag: flag_row(r)?,
                alerted_at: r.try_get(16)?,
                escalated_at: r.try_get(17)?,
            })
        })
        .collect()
}
