//! The caseload of a municipality in one query: every running family it is responsible
//! for now, or that is moving to it, with its next contact, open flags and pending move.

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
    let rows = sqlx::query(
        "WITH resp AS ( \
           SELECT f.id AS family_id, COALESCE( \
             (SELECT r.municipality FROM responsibilities r \
              WHERE r.family_id = f.id AND r.valid_from <= $2 ORDER BY r.valid_from DESC LIMIT 1), \
             (SELECT r.municipality FROM responsibilities r \
              WHERE r.family_id = f.id ORDER BY r.valid_from LIMIT 1)) AS municipality \
           FROM families f WHERE f.status = 'running'), \
         moving AS ( \
           SELECT h.family_id, h.ref, h.to_municipality FROM handovers h \
           WHERE h.kind = 'move' AND h.status IN ('pending', 'escalated')), \
         nextc AS ( \
           SELECT c.family_id, c.ref, c.due_at, c.notice_stage, c.overdue_count, \
             ROW_NUMBER() OVER (PARTITION BY c.family_id ORDER BY c.due_at) AS n \
           FROM checkins c WHERE c.status = 'open') \
         SELECT f.id, f.ref, f.kek_id, f.wrapped_dek, f.sealed_details, \
           CASE WHEN resp.municipality = $1 THEN 1 ELSE 0 END, \
           nextc.ref, nextc.due_at, COALESCE(nextc.notice_stage, 0), COALESCE(nextc.overdue_count, 0), \
           (SELECT COUNT(*) FROM flags fl WHERE fl.family_id = f.id AND fl.status != 'resolved' AND fl.severity = 'red'), \
           (SELECT COUNT(*) FROM flags fl WHERE fl.family_id = f.id AND fl.status != 'resolved' AND fl.severity = 'amber'), \
           (SELECT COUNT(*) FROM flags fl WHERE fl.family_id = f.id AND fl.status != 'resolved' AND fl.severity = 'info'), \
           moving.ref \
         FROM families f \
         JOIN resp ON resp.family_id = f.id \
         LEFT JOIN moving ON moving.family_id = f.id \
         LEFT JOIN nextc ON nextc.family_id = f.id AND nextc.n = 1 \
         WHERE resp.municipality = $1 OR moving.to_municipality = $1 \
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
            })
        })
        .collect()
}
