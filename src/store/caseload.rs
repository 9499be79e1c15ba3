//! The caseload of a municipality in one query: every running family it is responsible
//! for now, or that is moving to it, with its next contact (and the attempts made at it),
//! open flags, pending move and the municipality's own case number.

use super::{Conn, StoreError};

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct CaseloadRow {
    pub family_id: i64,
    #[sqlx(rename = "ref")]
    pub reference: String,
    pub kek_id: Option<i64>,
    pub wrapped_dek: Option<Vec<u8>>,
    pub sealed_details: Option<Vec<u8>>,
    /// Responsible now (false: the family is moving here).
    #[sqlx(try_from = "super::IntBool")]
    pub responsible: bool,
    pub next_checkin: Option<String>,
    pub next_due_at: Option<i64>,
    pub notice_stage: i64,
    pub overdue_count: i64,
    /// Failed attempts so far at the next contact.
    pub attempts: i64,
    /// This municipality's own case number, sealed with the family's key.
    pub sealed_case_number: Option<Vec<u8>>,
    pub red: i64,
    pub amber: i64,
    pub info: i64,
    pub pending_handover: Option<String>,
}

/// The caseload's rows: every running family the municipality `$1` is responsible for at
/// `$2` (the latest responsibility that began by then, else the first: the rule of
/// `families::by_ref`), or that is moving to it, by family reference.
///
/// The responsibility in force per family in one window, open moves, each family's next
/// open check-in by index, the unresolved flags counted by severity in one pass. Public so
/// `benches/workspace.rs` can time the same text in the `sqlite3` CLI.
pub const ROWS: &str = "WITH ranked AS ( \
       SELECT r.family_id, r.municipality, ROW_NUMBER() OVER ( \
         PARTITION BY r.family_id \
         ORDER BY CASE WHEN r.valid_from <= $2 THEN 0 ELSE 1 END, \
                  CASE WHEN r.valid_from <= $2 THEN -r.valid_from ELSE r.valid_from END) AS n \
       FROM responsibilities r), \
     moving AS ( \
       SELECT h.family_id, h.ref, h.to_municipality FROM handovers h \
       WHERE h.kind = 'move' AND h.status IN ('pending', 'escalated')), \
     fl AS ( \
       SELECT fl.family_id, \
         SUM(CASE WHEN fl.severity = 'red' THEN 1 ELSE 0 END) AS red, \
         SUM(CASE WHEN fl.severity = 'amber' THEN 1 ELSE 0 END) AS amber, \
         SUM(CASE WHEN fl.severity = 'info' THEN 1 ELSE 0 END) AS info \
       FROM flags fl WHERE fl.status != 'resolved' GROUP BY fl.family_id) \
     SELECT f.id AS family_id, f.ref, f.kek_id, f.wrapped_dek, f.sealed_details, \
       CASE WHEN resp.municipality = $1 THEN 1 ELSE 0 END AS responsible, \
       nc.ref AS next_checkin, nc.due_at AS next_due_at, \
       COALESCE(nc.notice_stage, 0) AS notice_stage, \
       COALESCE(nc.overdue_count, 0) AS overdue_count, COALESCE(fl.red, 0) AS red, \
       COALESCE(fl.amber, 0) AS amber, COALESCE(fl.info, 0) AS info, \
       moving.ref AS pending_handover, COALESCE(nc.attempts, 0) AS attempts, \
       cn.sealed_number AS sealed_case_number \
     FROM families f \
     JOIN ranked resp ON resp.family_id = f.id AND resp.n = 1 \
     LEFT JOIN moving ON moving.family_id = f.id \
     LEFT JOIN checkins nc ON nc.id = ( \
       SELECT c.id FROM checkins c WHERE c.family_id = f.id AND c.status = 'open' \
       ORDER BY c.due_at LIMIT 1) \
     LEFT JOIN fl ON fl.family_id = f.id \
     LEFT JOIN case_numbers cn ON cn.family_id = f.id AND cn.municipality = $1 \
     WHERE f.status = 'running' AND (resp.municipality = $1 OR moving.to_municipality = $1) \
     ORDER BY f.ref";

/// The caseload of `municipality` at `at`, all rows at once.
pub async fn of_municipality(
    conn: &mut Conn,
    municipality: &str,
    at: i64,
) -> Result<Vec<CaseloadRow>, StoreError> {
    Ok(sqlx::query_as::<_, CaseloadRow>(ROWS)
        .bind(municipality)
        .bind(at)
        .fetch_all(conn)
        .await?)
}

/// The same rows as they come. The caseload page opens each row while the next ones are
/// read: on SQLite, sqlx hands rows from its worker thread one at a time, and a reader
/// that only collects them waits for a wake-up per row (on a quiet machine that cost as
/// much as the query).
pub fn stream<'c>(
    conn: &'c mut Conn,
    municipality: &'c str,
    at: i64,
) -> futures_util::stream::BoxStream<'c, Result<CaseloadRow, sqlx::Error>> {
    sqlx::query_as::<_, CaseloadRow>(ROWS)
        .bind(municipality)
        .bind(at)
        .fetch(conn)
}
