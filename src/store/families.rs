//! Families, their members and who is responsible for them.

use super::{Conn, StoreError};
use sqlx::Row;
use std::collections::HashMap;

pub struct NewFamily<'a> {
    pub reference: &'a str,
    pub episode_kind: &'a str,
    pub episode_date: &'a str,
    pub plan: &'a str,
    pub plan_end: i64,
    pub language: &'a str,
    pub interpreter_needed: bool,
    pub enrolled_at: i64,
    pub kek_id: i64,
    pub wrapped_dek: &'a [u8],
    pub sealed_details: &'a [u8],
}

/// Inserts families in multi-row statements, skipping any whose reference is taken (a
/// clash of random references, which the caller retries under a new one). Answers the id
/// of each family inserted, by reference: a reference missing from it was taken.
pub async fn insert_many(
    conn: &mut Conn,
    fs: &[NewFamily<'_>],
) -> Result<HashMap<String, i64>, StoreError> {
    const COLS: usize = 11;
    let mut ids = HashMap::with_capacity(fs.len());
    for (chunk, values) in super::rows::chunked(fs, COLS) {
        let sql = format!(
            "INSERT INTO families (ref, episode_kind, episode_date, plan, plan_end, language, \
             interpreter_needed, enrolled_at, kek_id, wrapped_dek, sealed_details) VALUES {values} \
             ON CONFLICT (ref) DO NOTHING RETURNING id, ref"
        );
        let mut q = sqlx::query(&sql);
        for f in chunk {
            q = q
                .bind(f.reference)
                .bind(f.episode_kind)
                .bind(f.episode_date)
                .bind(f.plan)
                .bind(f.plan_end)
                .bind(f.language)
                .bind(i64::from(f.interpreter_needed))
                .bind(f.enrolled_at)
                .bind(f.kek_id)
                .bind(f.wrapped_dek)
                .bind(f.sealed_details);
        }
        for row in q.fetch_all(&mut *conn).await? {
            ids.insert(row.try_get(1)?, row.try_get(0)?);
        }
    }
    Ok(ids)
}

/// A member to insert with [`insert_members`].
pub struct NewMember<'a> {
    pub family_id: i64,
    pub reference: &'a str,
    pub role: &'a str,
    pub position: i64,
    pub sealed_details: &'a [u8],
}

/// Inserts members in multi-row statements (bulk enrolment).
pub async fn insert_members(conn: &mut Conn, ms: &[NewMember<'_>]) -> Result<(), StoreError> {
    const COLS: usize = 5;
    for (chunk, values) in super::rows::chunked(ms, COLS) {
        let sql = format!(
            "INSERT INTO members (family_id, ref, role, position, sealed_details) VALUES {values}"
        );
        let mut q = sqlx::query(&sql);
        for m in chunk {
            q = q
                .bind(m.family_id)
                .bind(m.reference)
                .bind(m.role)
                .bind(m.position)
                .bind(m.sealed_details);
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

/// A family's first responsibility, inserted with [`insert_responsibilities`].
pub struct NewResponsibility<'a> {
    pub family_id: i64,
    pub municipality: &'a str,
    pub valid_from: i64,
}

/// Inserts responsibilities in multi-row statements (bulk enrolment).
pub async fn insert_responsibilities(
    conn: &mut Conn,
    rs: &[NewResponsibility<'_>],
) -> Result<(), StoreError> {
    const COLS: usize = 3;
    for (chunk, values) in super::rows::chunked(rs, COLS) {
        let sql = format!(
            "INSERT INTO responsibilities (family_id, municipality, valid_from) VALUES {values}"
        );
        let mut q = sqlx::query(&sql);
        for r in chunk {
            q = q.bind(r.family_id).bind(r.municipality).bind(r.valid_from);
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

pub async fn insert_member(
    conn: &mut Conn,
    family_id: i64,
    reference: &str,
    role: &str,
    position: i64,
    sealed_details: &[u8],
) -> Result<i64, StoreError> {
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO members (family_id, ref, role, position, sealed_details) \
         VALUES ($1, $2, $3, $4, $5) RETURNING id",
    )
    .bind(family_id)
    .bind(reference)
    .bind(role)
    .bind(position)
    .bind(sealed_details)
    .fetch_one(conn)
    .await?;
    Ok(id)
}

pub async fn insert_responsibility(
    conn: &mut Conn,
    family_id: i64,
    municipality: &str,
    valid_from: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO responsibilities (family_id, municipality, valid_from) VALUES ($1, $2, $3)",
    )
    .bind(family_id)
    .bind(municipality)
    .bind(valid_from)
    .execute(conn)
    .await?;
    Ok(())
}

/// A family row as stored (sealed columns still sealed).
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct FamilyRow {
    pub id: i64,
    #[sqlx(rename = "ref")]
    pub reference: String,
    pub episode_kind: String,
    pub episode_date: String,
    pub plan: String,
    pub plan_end: i64,
    pub status: String,
    pub close_reason: Option<String>,
    pub closed_at: Option<i64>,
    pub language: String,
    #[sqlx(try_from = "super::IntBool")]
    pub interpreter_needed: bool,
    pub enrolled_at: i64,
    pub kek_id: Option<i64>,
    pub wrapped_dek: Option<Vec<u8>>,
    pub sealed_details: Option<Vec<u8>>,
    /// The municipality responsible at the instant the row was read for (see [`by_ref`]).
    pub municipality: String,
}

const FAMILY_COLUMNS: &str = "f.id, f.ref, f.episode_kind, f.episode_date, f.plan, f.plan_end, \
    f.status, f.close_reason, f.closed_at, f.language, f.interpreter_needed, f.enrolled_at, \
    f.kek_id, f.wrapped_dek, f.sealed_details";

/// The municipality responsible at instant `$AT`: the responsibility that began last at
/// or before it (intervals are contiguous, so that is the one containing it), or the first
/// one for an instant before the family's first responsibility began. The same rule as
/// the check-in reminders' `RESPONSIBLE_AT_DUE`. An erased family has none: `''`.
const RESPONSIBLE_AT: &str = "COALESCE(\
     (SELECT r.municipality FROM responsibilities r \
      WHERE r.family_id = f.id AND r.valid_from <= $2 \
      ORDER BY r.valid_from DESC LIMIT 1), \
     (SELECT r.municipality FROM responsibilities r \
      WHERE r.family_id = f.id ORDER BY r.valid_from LIMIT 1), '') AS municipality";

/// A family by reference, with the municipality responsible at `at` (unix seconds; pass
/// "now"). A move with a future date has already opened the receiving municipality's
/// responsibility (from the move date on), so "responsible now" is never simply the
/// open-ended row.
pub async fn by_ref(
    conn: &mut Conn,
    reference: &str,
    at: i64,
) -> Result<Option<FamilyRow>, StoreError> {
    let sql = format!("SELECT {FAMILY_COLUMNS}, {RESPONSIBLE_AT} FROM families f WHERE f.ref = $1");
    Ok(sqlx::query_as(&sql)
        .bind(reference)
        .bind(at)
        .fetch_optional(conn)
        .await?)
}

/// A family by id, with the municipality responsible at `at` (see [`by_ref`]).
pub async fn by_id(conn: &mut Conn, id: i64, at: i64) -> Result<Option<FamilyRow>, StoreError> {
    Ok(sqlx::query_as(&by_id_sql("$1"))
        .bind(id)
        .bind(at)
        .fetch_optional(conn)
        .await?)
}

/// [`by_id`] of the family whose id the SQL expression `id` gives, responsible at `$2`.
pub(crate) fn by_id_sql(id: &str) -> String {
    format!("SELECT {FAMILY_COLUMNS}, {RESPONSIBLE_AT} FROM families f WHERE f.id = {id}")
}

/// What a mail needs to name a family's case director: the sealed details with the data
/// key they are sealed under, and whether a move leaves the family without a director.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct DirectorSource {
    pub id: i64,
    #[sqlx(rename = "ref")]
    pub reference: String,
    pub kek_id: Option<i64>,
    pub wrapped_dek: Option<Vec<u8>>,
    pub sealed_details: Option<Vec<u8>>,
    /// See `handovers::lacks_case_director`.
    #[sqlx(try_from = "super::IntBool")]
    pub lacks_director: bool,
}

/// [`DirectorSource`] of each of these families (a statement per
/// [`super::rows::BINDS_PER_STATEMENT`] ids), for a batch of mails; families that do not
/// exist are left out.
pub async fn director_sources(
    conn: &mut Conn,
    ids: &[i64],
) -> Result<Vec<DirectorSource>, StoreError> {
    let mut out = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(super::rows::per_statement(1)) {
        let sql = format!(
            "SELECT f.id, f.ref, f.kek_id, f.wrapped_dek, f.sealed_details, \
             (SELECT COUNT(*) FROM handovers h WHERE h.family_id = f.id AND {}) AS lacks_director \
             FROM families f WHERE f.id IN ({})",
            super::handovers::LACKS_DIRECTOR,
            super::rows::list(chunk.len())
        );
        let mut q = sqlx::query_as(&sql);
        for id in chunk {
            q = q.bind(*id);
        }
        out.extend(q.fetch_all(&mut *conn).await?);
    }
    Ok(out)
}

/// One page of families in reference order after `after` (`""`: from the start), at most
/// `limit`, with the municipality responsible at `at`; only those `municipality` is
/// responsible for and with `status` when given (`""`: any).
pub async fn page(
    conn: &mut Conn,
    municipality: &str,
    status: &str,
    after: &str,
    limit: i64,
    at: i64,
) -> Result<Vec<FamilyRow>, StoreError> {
    let sql = format!(
        "SELECT * FROM (SELECT {FAMILY_COLUMNS}, {RESPONSIBLE_AT} \
         FROM families f WHERE f.ref > $1) x \
         WHERE ($3 = '' OR x.municipality = $3) AND ($4 = '' OR x.status = $4) \
         ORDER BY x.ref LIMIT $5"
    );
    Ok(sqlx::query_as(&sql)
        .bind(after)
        .bind(at)
        .bind(municipality)
        .bind(status)
        .bind(limit)
        .fetch_all(conn)
        .await?)
}

/// One responsibility interval.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, sqlx::FromRow)]
pub struct Responsibility {
    pub municipality: String,
    pub valid_from: i64,
    pub valid_to: Option<i64>,
}

/// Every responsibility of a family, in time order.
pub async fn responsibilities(
    conn: &mut Conn,
    family_id: i64,
) -> Result<Vec<Responsibility>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT municipality, valid_from, valid_to FROM responsibilities \
         WHERE family_id = $1 ORDER BY valid_from",
    )
    .bind(family_id)
    .fetch_all(conn)
    .await?)
}

/// Ends the open-ended responsibility at `at`; returns whether there was one.
pub async fn end_responsibility(
    conn: &mut Conn,
    family_id: i64,
    at: i64,
) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "UPDATE responsibilities SET valid_to = $2 WHERE family_id = $1 AND valid_to IS NULL",
    )
    .bind(family_id)
    .bind(at)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Replaces a family's sealed details (a new address, a new case director).
pub async fn set_sealed_details(
    conn: &mut Conn,
    family_id: i64,
    sealed_details: &[u8],
) -> Result<(), StoreError> {
    sqlx::query("UPDATE families SET sealed_details = $2 WHERE id = $1")
        .bind(family_id)
        .bind(sealed_details)
        .execute(conn)
        .await?;
    Ok(())
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct MemberRow {
    pub id: i64,
    #[sqlx(rename = "ref")]
    pub reference: String,
    pub role: String,
    pub sealed_details: Option<Vec<u8>>,
    /// When the member left the household (kept for history, no longer followed).
    pub left_at: Option<i64>,
    pub left_reason: Option<String>,
}

pub async fn members(conn: &mut Conn, family_id: i64) -> Result<Vec<MemberRow>, StoreError> {
    Ok(sqlx::query_as(&members_sql("$1"))
        .bind(family_id)
        .fetch_all(conn)
        .await?)
}

/// [`members`] of the family whose id the SQL expression `family` gives.
pub(crate) fn members_sql(family: &str) -> String {
    format!(
        "SELECT id, ref, role, sealed_details, left_at, left_reason FROM members \
         WHERE family_id = {family} ORDER BY position"
    )
}

/// Marks a family closed before its term: its open check-ins are cancelled and so stop
/// being reminded. Returns the number of check-ins cancelled.
pub async fn close_early(
    conn: &mut Conn,
    family_id: i64,
    reason: &str,
    now: i64,
) -> Result<u64, StoreError> {
    sqlx::query(
        "UPDATE families SET status = 'closed_early', close_reason = $2, closed_at = $3 WHERE id = $1",
    )
    .bind(family_id)
    .bind(reason)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    let cancelled = sqlx::query(
        "UPDATE checkins SET status = 'cancelled', next_notice_at = NULL \
         WHERE family_id = $1 AND status = 'open'",
    )
    .bind(family_id)
    .execute(conn)
    .await?;
    Ok(cancelled.rows_affected())
}

/// Marks a running family completed once no check-in is left open.
pub async fn complete_if_done(
    conn: &mut Conn,
    family_id: i64,
    now: i64,
) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "UPDATE families SET status = 'completed', closed_at = $2 \
         WHERE id = $1 AND status = 'running' \
         AND NOT EXISTS (SELECT 1 FROM checkins c WHERE c.family_id = $1 AND c.status = 'open')",
    )
    .bind(family_id)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// Erases a family down to a tombstone, in the caller's transaction: its wrapped data key
/// and sealed values, and with them every plain quasi-identifier (episode, plan, language,
/// interpreter need, times), its members, responsibility history, check-ins and
/// observations, handovers and flags. What remains is the reference, status `erased`,
/// `erased_at` and the reason; the NOT NULL plan columns hold one constant placeholder
/// (`shelter_exit`, `''`, `0`), the same for every erased family, so they tell nothing. The family's messages are handled by
/// [`super::outbox::erase_family`]; audit rows stay (they hold references and codes only).
pub async fn erase(
    conn: &mut Conn,
    family_id: i64,
    reason: &str,
    now: i64,
) -> Result<(), StoreError> {
    // Children before parents: flags point at members and check-ins, observations at both.
    for sql in [
        "DELETE FROM flags WHERE family_id = $1",
        "DELETE FROM observations WHERE checkin_id IN (SELECT id FROM checkins WHERE family_id = $1)",
        "DELETE FROM checkin_attempts WHERE checkin_id IN (SELECT id FROM checkins WHERE family_id = $1)",
        "DELETE FROM checkins WHERE family_id = $1",
        "DELETE FROM handovers WHERE family_id = $1",
        "DELETE FROM members WHERE family_id = $1",
        "DELETE FROM ex_partners WHERE family_id = $1",
        "DELETE FROM referrals WHERE family_id = $1",
        "DELETE FROM case_numbers WHERE family_id = $1",
        "DELETE FROM responsibilities WHERE family_id = $1",
    ] {
        sqlx::query(sql).bind(family_id).execute(&mut *conn).await?;
    }
    sqlx::query(
        "UPDATE families SET status = 'erased', erase_reason = $2, erased_at = $3, \
         episode_kind = 'shelter_exit', episode_date = '', plan = '', plan_end = 0, \
         close_reason = NULL, closed_at = NULL, language = '', interpreter_needed = 0, \
         enrolled_at = 0, wrapped_dek = NULL, kek_id = NULL, sealed_details = NULL, \
         sealed_safety_plan = NULL, safety_plan_review_at = NULL, safety_plan_reminded_at = NULL \
         WHERE id = $1",
    )
    .bind(family_id)
    .bind(reason)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    super::closure::erase(conn, family_id).await?;
    Ok(())
}

/// A family's change mark (see `migrations/sqlite/0015_family_version.sql`) and when it was
/// last reached, as a check-in's record reads them.
#[derive(Clone, Copy, Debug, sqlx::FromRow)]
pub struct Mark {
    pub version: i64,
    pub last_reached_at: Option<i64>,
}

/// The [`Mark`] of the family whose id the SQL expression `id` gives.
pub(crate) fn mark_sql(id: &str) -> String {
    format!("SELECT version, last_reached_at FROM families WHERE id = {id}")
}

/// Claims the family for a change computed from what was read at `version`: moves the
/// version on, and notes a reached contact at `reached_at` (`out_of_sight` counts from the
/// latest one). `false` if the family changed since (another version): then nothing changed.
pub async fn claim(
    conn: &mut Conn,
    family_id: i64,
    version: i64,
    reached_at: Option<i64>,
) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "UPDATE families SET version = version + 1, last_reached_at = CASE \
         WHEN $3 IS NOT NULL AND (last_reached_at IS NULL OR last_reached_at < $3) THEN $3 \
         ELSE last_reached_at END WHERE id = $1 AND version = $2",
    )
    .bind(family_id)
    .bind(version)
    .bind(reached_at)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// When a family was last reached (or enrolled, if never): where `out_of_sight` counts from.
pub async fn in_sight_since(conn: &mut Conn, family_id: i64) -> Result<Option<i64>, StoreError> {
    let t: Option<i64> = sqlx::query_scalar(
        "SELECT COALESCE(last_reached_at, enrolled_at) FROM families WHERE id = $1",
    )
    .bind(family_id)
    .fetch_optional(conn)
    .await?;
    Ok(t)
}

/// Families whose plan ended (closed, or past its end) on or before `cutoff` and that are
/// not erased yet: due for erasure under the retention rule.
pub async fn past_retention(
    conn: &mut Conn,
    cutoff: i64,
    limit: i64,
) -> Result<Vec<(i64, String)>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT id, ref FROM families WHERE status != 'erased' \
         AND COALESCE(closed_at, plan_end) <= $1 ORDER BY id LIMIT $2",
    )
    .bind(cutoff)
    .bind(limit)
    .fetch_all(conn)
    .await?)
}
