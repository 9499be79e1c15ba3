//! The caseload of a municipality in one query: every running family it is responsible
//! for now, or that is moving to it, with its next contact (and the attempts made at it),
//! open flags, pending move and the municipality's own case number.

use super::{Conn, StoreError};
use sqlx::Row;

#[derive(Clone, Debug)]
pub struct CaseloadRow {
    pub family_id: i64,
    pub reference: String,
    pub kek_id: Option<i64>,
    pub wrapped_dek: Option<Vec<u8>>,
    pub sealed_details: Option<Vec<u8>>,
    /// Responsible now (false: the family is moving here).
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

pub async fn of_municipality(
    conn: &mut Conn,
    municipality: &str,
    at: i64,
) -> Result<Vec<CaseloadRow>, StoreError> {
    // The responsibility in force at $2 per family (the latest that began by then, else
    // the first: the rule of `families::by_ref`) in one window, open moves, each family's
    // next open check-in by index, the unresolved flags counted by severity in one pass.
    let rows = sqlx::query(
        "WITH ranked AS ( \
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
         SELECT f.id, f.ref, f.kek_id, f.wrapped_dek, f.sealed_details, \
           CASE WHEN resp.municipality = $1 THEN 1 ELSE 0 END, \
           nc.ref, nc.due_at, COALESCE(nc.notice_stage, 0), COALESCE(nc.overdue_count, 0), \
           COALESCE(fl.red, 0), COALESCE(fl.amber, 0), COALESCE(fl.info, 0), moving.ref, \
           COALESCE(nc.attempts, 0), cn.sealed_number \
         FROM families f \
         JOIN ranked resp ON resp.family_id = f.id AND resp.n = 1 \
         LEFT JOIN moving ON moving.family_id = f.id \
         LEFT JOIN checkins nc ON nc.id = ( \
           SELECT c.id FROM checkins c WHERE c.family_id = f.id AND c.status = 'open' \
           ORDER BY c.due_at LIMIT 1) \
         LEFT JOIN fl ON fl.family_id = f.id \
         LEFT JOIN case_numbers cn ON cn.family_id = f.id AND cn.municipality = $1 \
         WHERE f.status = 'running' AND (resp.municipality = $1 OR moving.to_municipality = $1) \
         ORDER BY f.ref",
    )
    .bind(municipality)
    .bind(at)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(CaseloadRow {
                family_id: r.try_get(0)?,
                reference: r.try_get(1)?,
                kek_id: r.try_get(2)?,
                wrapped_dek: r.try_get(3)?,
                sealed_details: r.try_get(4)?,
                responsible: r.try_get::<i64, _>(5)? == 1,
                next_checkin: r.try_get(6)?,
                next_due_at: r.try_get(7)?,
                notice_stage: r.try_get(8)?,
                overdue_count: r.try_get(9)?,
                red: r.try_get(10)?,
                amber: r.try_get(11)?,
                info: r.try_get(12)?,
                pending_handover: r.try_get(13)?,
                attempts: r.try_get(14)?,
                sealed_case_number: r.try_get(15)?,
            })
        })
        .collect()
}
