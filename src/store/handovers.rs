//! Handovers between teams: a move to another municipality, or a new case director.

use super::{Conn, StoreError};

pub struct NewHandover<'a> {
    pub reference: &'a str,
    pub family_id: i64,
    pub kind: &'a str,
    pub from_municipality: &'a str,
    pub to_municipality: &'a str,
    pub effective_at: i64,
    pub created_at: i64,
    pub dossier: &'a str,
}

pub async fn reference_taken(conn: &mut Conn, reference: &str) -> Result<bool, StoreError> {
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM handovers WHERE ref = $1")
        .bind(reference)
        .fetch_one(conn)
        .await?;
    Ok(n > 0)
}

pub async fn insert(conn: &mut Conn, h: &NewHandover<'_>) -> Result<i64, StoreError> {
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO handovers (ref, family_id, kind, from_municipality, to_municipality, \
         effective_at, created_at, dossier) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
    )
    .bind(h.reference)
    .bind(h.family_id)
    .bind(h.kind)
    .bind(h.from_municipality)
    .bind(h.to_municipality)
    .bind(h.effective_at)
    .bind(h.created_at)
    .bind(h.dossier)
    .fetch_one(conn)
    .await?;
    Ok(id)
}

/// A handover as stored, with its family's reference and status.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct HandoverRow {
    pub id: i64,
    #[sqlx(rename = "ref")]
    pub reference: String,
    pub family_id: i64,
    pub family_ref: String,
    pub family_status: String,
    pub kind: String,
    pub from_municipality: String,
    pub to_municipality: String,
    pub effective_at: i64,
    pub created_at: i64,
    pub status: String,
    pub dossier: String,
    pub reminded_at: Option<i64>,
    pub escalated_at: Option<i64>,
    pub acknowledged_at: Option<i64>,
    pub superseded_by: Option<String>,
}

const COLUMNS: &str = "h.id, h.ref, h.family_id, f.ref AS family_ref, f.status AS family_status, \
    h.kind, h.from_municipality, h.to_municipality, h.effective_at, h.created_at, h.status, \
    h.dossier, h.reminded_at, h.escalated_at, h.acknowledged_at, \
    (SELECT s.ref FROM handovers s WHERE s.id = h.superseded_by) AS superseded_by";

const FROM: &str = "FROM handovers h JOIN families f ON f.id = h.family_id";

pub async fn by_ref(conn: &mut Conn, reference: &str) -> Result<Option<HandoverRow>, StoreError> {
    let sql = format!("SELECT {COLUMNS} {FROM} WHERE h.ref = $1");
    Ok(sqlx::query_as(&sql)
        .bind(reference)
        .fetch_optional(conn)
        .await?)
}

/// The unacknowledged move of a family, if any (at most one: a unique index).
pub async fn open_move(conn: &mut Conn, family_id: i64) -> Result<Option<HandoverRow>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} {FROM} WHERE h.family_id = $1 AND h.kind = 'move' \
         AND h.status IN ('pending', 'escalated')"
    );
    Ok(sqlx::query_as(&sql)
        .bind(family_id)
        .fetch_optional(conn)
        .await?)
}

/// Every handover of a family, oldest first.
pub async fn of_family(conn: &mut Conn, family_id: i64) -> Result<Vec<HandoverRow>, StoreError> {
    let sql = format!("SELECT {COLUMNS} {FROM} WHERE h.family_id = $1 ORDER BY h.id");
    Ok(sqlx::query_as(&sql).bind(family_id).fetch_all(conn).await?)
}

/// Handovers for `handover list`: all, only open ones, or only those whose dossier was
/// withheld; optionally only those involving one municipality (sending or receiving).
pub async fn list(
    conn: &mut Conn,
    open_only: bool,
    withheld_only: bool,
    municipality: Option<&str>,
) -> Result<Vec<HandoverRow>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} {FROM} \
         WHERE ($1 = 0 OR h.status IN ('pending', 'escalated')) \
         AND ($2 = 0 OR h.dossier = 'withheld') \
         AND ($3 IS NULL OR h.to_municipality = $3 OR h.from_municipality = $3) \
         ORDER BY h.id"
    );
    Ok(sqlx::query_as(&sql)
        .bind(i64::from(open_only))
        .bind(i64::from(withheld_only))
        .bind(municipality)
        .fetch_all(conn)
        .await?)
}

/// Open handovers of running families that still owe a reminder or an escalation.
pub async fn to_chase(conn: &mut Conn, limit: i64) -> Result<Vec<HandoverRow>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} {FROM} WHERE h.status IN ('pending', 'escalated') \
         AND f.status = 'running' AND (h.reminded_at IS NULL OR h.escalated_at IS NULL) \
         ORDER BY h.created_at, h.id LIMIT $1"
    );
    Ok(sqlx::query_as(&sql).bind(limit).fetch_all(conn).await?)
}

/// Marks an open handover superseded by a further move. Done before the new handover is
/// inserted (the one-open-move index allows only one), so `by` is set afterwards with
/// [`set_superseded_by`].
pub async fn supersede(conn: &mut Conn, id: i64) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE handovers SET status = 'superseded' \
         WHERE id = $1 AND status IN ('pending', 'escalated')",
    )
    .bind(id)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn set_superseded_by(conn: &mut Conn, id: i64, by: i64) -> Result<(), StoreError> {
    sqlx::query("UPDATE handovers SET superseded_by = $2 WHERE id = $1")
        .bind(id)
        .bind(by)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn mark_reminded(conn: &mut Conn, id: i64, at: i64) -> Result<(), StoreError> {
    sqlx::query("UPDATE handovers SET reminded_at = $2 WHERE id = $1 AND reminded_at IS NULL")
        .bind(id)
        .bind(at)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn mark_escalated(conn: &mut Conn, id: i64, at: i64) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE handovers SET escalated_at = $2, \
         status = CASE WHEN status = 'pending' THEN 'escalated' ELSE status END \
         WHERE id = $1 AND escalated_at IS NULL",
    )
    .bind(id)
    .bind(at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Acknowledges an open handover; `false` if it was not open any more.
pub async fn acknowledge(
    conn: &mut Conn,
    id: i64,
    at: i64,
    sealed_by: Option<&[u8]>,
) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "UPDATE handovers SET status = 'acknowledged', acknowledged_at = $2, sealed_ack_by = $3 \
         WHERE id = $1 AND status IN ('pending', 'escalated')",
    )
    .bind(id)
    .bind(at)
    .bind(sealed_by)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// A withheld dossier was sent after all (`handover resend` once the receiver has a key).
pub async fn set_dossier_attached(conn: &mut Conn, id: i64) -> Result<(), StoreError> {
    sqlx::query("UPDATE handovers SET dossier = 'attached' WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Whether the handover's acknowledgement named the new case director (moves start
/// without: the previous one is no longer theirs).
pub async fn set_director_named(conn: &mut Conn, id: i64, named: bool) -> Result<(), StoreError> {
    sqlx::query("UPDATE handovers SET director_named = $2 WHERE id = $1")
        .bind(id)
        .bind(i64::from(named))
        .execute(conn)
        .await?;
    Ok(())
}

/// A new case director was named for the family (at an acknowledgement or a reassignment).
pub async fn director_named_for_family(conn: &mut Conn, family_id: i64) -> Result<(), StoreError> {
    sqlx::query("UPDATE handovers SET director_named = 1 WHERE family_id = $1")
        .bind(family_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// The handovers of a family that leave it without a case director: a move waiting for the
/// acknowledgement that names the new one (or acknowledged without naming one).
pub(super) const LACKS_DIRECTOR: &str =
    "kind = 'move' AND director_named = 0 AND status != 'superseded'";

/// True while a move of the family waits for the acknowledgement that names its new case
/// director (or was acknowledged without naming one).
pub async fn lacks_case_director(conn: &mut Conn, family_id: i64) -> Result<bool, StoreError> {
    let sql = format!("SELECT COUNT(*) FROM handovers WHERE family_id = $1 AND {LACKS_DIRECTOR}");
    let n: i64 = sqlx::query_scalar(&sql)
        .bind(family_id)
        .fetch_one(conn)
        .await?;
    Ok(n > 0)
}
