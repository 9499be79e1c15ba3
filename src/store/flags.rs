//! Flags: rules that fired for a child or a family, and their lifecycle.

use super::{Conn, StoreError};

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
#[derive(Clone, Debug, sqlx::FromRow)]
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

const SELECT: &str = "SELECT fl.id, fl.family_id, f.ref AS family_ref, m.ref AS member_ref, \
     fl.rule, fl.kind, fl.severity, fl.status, c.ref AS trigger_checkin, fl.raised_at, fl.sealed_evidence, fl.acknowledged_at, fl.sealed_ack, \
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

pub async fn by_id(conn: &mut Conn, id: i64, at: i64) -> Result<Option<FlagRow>, StoreError> {
    let sql = format!("{} WHERE fl.id = $1", select_at(2));
    Ok(sqlx::query_as(&sql)
        .bind(id)
        .bind(at)
        .fetch_optional(conn)
        .await?)
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
    Ok(sqlx::query_as(&sql)
        .bind(municipality)
        .bind(i64::from(unresolved_only))
        .bind(at)
        .fetch_all(conn)
        .await?)
}

pub async fn of_family(
    conn: &mut Conn,
    family_id: i64,
    at: i64,
) -> Result<Vec<FlagRow>, StoreError> {
    let sql = format!("{} WHERE fl.family_id = $1 ORDER BY fl.id", select_at(2));
    Ok(sqlx::query_as(&sql)
        .bind(family_id)
        .bind(at)
        .fetch_all(conn)
        .await?)
}

/// Unresolved flags of running families (every severity), for the digest.
pub async fn for_digest(conn: &mut Conn, at: i64) -> Result<Vec<FlagRow>, StoreError> {
    let sql = format!(
        "{} WHERE fl.status != 'resolved' \
         AND f.status = 'running' ORDER BY r.municipality, fl.id",
        select_at(1)
    );
    Ok(sqlx::query_as(&sql).bind(at).fetch_all(conn).await?)
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
    Ok(sqlx::query_as(
        "SELECT id, severity FROM flags WHERE rule = $1 AND subject = $2 AND status != 'resolved'",
    )
    .bind(rule)
    .bind(subject)
    .fetch_optional(conn)
    .await?)
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
#[derive(sqlx::FromRow)]
pub struct RedToFollow {
    #[sqlx(flatten)]
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
    Ok(sqlx::query_as(&sql).bind(at).fetch_all(conn).await?)
}
