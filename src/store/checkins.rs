//! Check-ins: their slots, their reminder state and what was recorded.

use super::round_trip::{Script, Value};
use super::{Conn, StoreError};

pub struct NewCheckin<'a> {
    pub reference: &'a str,
    pub family_id: i64,
    pub wave: i64,
    pub due_at: i64,
    /// `open`, or `lapsed` for a slot that fell due before enrolment.
    pub status: &'a str,
    pub next_notice_at: Option<i64>,
}

pub async fn insert(conn: &mut Conn, c: &NewCheckin<'_>) -> Result<i64, StoreError> {
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO checkins (ref, family_id, wave, due_at, status, next_notice_at) \
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
    )
    .bind(c.reference)
    .bind(c.family_id)
    .bind(c.wave)
    .bind(c.due_at)
    .bind(c.status)
    .bind(c.next_notice_at)
    .fetch_one(conn)
    .await?;
    Ok(id)
}

/// Inserts check-ins in multi-row statements (bulk enrolment).
pub async fn insert_many(conn: &mut Conn, cs: &[NewCheckin<'_>]) -> Result<(), StoreError> {
    const COLS: usize = 6;
    for (chunk, values) in super::rows::chunked(cs, COLS) {
        let sql = format!(
            "INSERT INTO checkins (ref, family_id, wave, due_at, status, next_notice_at) VALUES {values}"
        );
        let mut q = sqlx::query(&sql);
        for c in chunk {
            q = q
                .bind(c.reference)
                .bind(c.family_id)
                .bind(c.wave)
                .bind(c.due_at)
                .bind(c.status)
                .bind(c.next_notice_at);
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

/// A check-in as stored.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct CheckinRow {
    pub id: i64,
    #[sqlx(rename = "ref")]
    pub reference: String,
    pub family_id: i64,
    pub wave: i64,
    pub due_at: i64,
    pub status: String,
    pub notice_stage: i64,
    pub overdue_count: i64,
    pub last_notice_at: Option<i64>,
    pub contact_at: Option<i64>,
    pub recorded_at: Option<i64>,
    pub outcome: Option<String>,
    pub mode: Option<String>,
    pub sealed_record: Option<Vec<u8>>,
    /// Contact attempts recorded so far.
    pub attempts: i64,
    /// When the next attempt is due after a failed one.
    pub retry_due_at: Option<i64>,
    /// Set when every allowed attempt failed.
    pub missed_at: Option<i64>,
}

const COLUMNS: &str = "c.id, c.ref, c.family_id, c.wave, c.due_at, c.status, c.notice_stage, \
    c.overdue_count, c.last_notice_at, c.contact_at, c.recorded_at, c.outcome, c.mode, c.sealed_record, \
    c.attempts, c.retry_due_at, c.missed_at";

pub async fn by_ref(conn: &mut Conn, reference: &str) -> Result<Option<CheckinRow>, StoreError> {
    Ok(sqlx::query_as(&by_ref_sql())
        .bind(reference)
        .fetch_optional(conn)
        .await?)
}

/// A family's check-ins in time order (introduction contacts after a move among them).
pub async fn of_family(conn: &mut Conn, family_id: i64) -> Result<Vec<CheckinRow>, StoreError> {
    Ok(sqlx::query_as(&of_family_sql("$1"))
        .bind(family_id)
        .fetch_all(conn)
        .await?)
}

/// The check-in whose reference is `$1`.
pub(crate) fn by_ref_sql() -> String {
    format!("SELECT {COLUMNS} FROM checkins c WHERE c.ref = $1")
}

/// The check-ins of the family whose id the SQL expression `family` gives, in time order.
pub(crate) fn of_family_sql(family: &str) -> String {
    format!(
        "SELECT {COLUMNS} FROM checkins c WHERE c.family_id = {family} ORDER BY c.due_at, c.wave"
    )
}

/// The municipality responsible for a check-in: the one responsible at its due instant
/// (or the first one, for a slot due before the family's first responsibility began).
const RESPONSIBLE_AT_DUE: &str = "COALESCE(\
     (SELECT r.municipality FROM responsibilities r \
      WHERE r.family_id = c.family_id AND r.valid_from <= c.due_at \
      ORDER BY r.valid_from DESC LIMIT 1), \
     (SELECT r.municipality FROM responsibilities r \
      WHERE r.family_id = c.family_id ORDER BY r.valid_from LIMIT 1))";

/// An open check-in that the sweep must look at, with what the notice needs.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct NoticeCandidate {
    pub id: i64,
    #[sqlx(rename = "ref")]
    pub reference: String,
    pub family_id: i64,
    pub wave: i64,
    pub due_at: i64,
    pub notice_stage: i64,
    pub overdue_count: i64,
    pub last_notice_at: Option<i64>,
    pub family_ref: String,
    pub plan: String,
    pub language: String,
    #[sqlx(try_from = "super::IntBool")]
    pub interpreter_needed: bool,
    pub municipality: String,
    /// The sending municipality of the family's unacknowledged move, if one is pending:
    /// it gets copies of the family's reminders until the receiving team acknowledges.
    pub handover_from: Option<String>,
    /// Contact attempts so far; after a failed one the reminders run from `retry_due_at`.
    pub attempts: i64,
    pub retry_due_at: Option<i64>,
}

/// Open check-ins of running families whose next notice is due at `now`, oldest first.
pub async fn notice_candidates(
    conn: &mut Conn,
    now: i64,
    limit: i64,
) -> Result<Vec<NoticeCandidate>, StoreError> {
    let sql = format!(
        "SELECT c.id, c.ref, c.family_id, c.wave, c.due_at, c.notice_stage, c.overdue_count, c.last_notice_at, \
                f.ref AS family_ref, f.plan, f.language, f.interpreter_needed, \
                {RESPONSIBLE_AT_DUE} AS municipality, \
                (SELECT h.from_municipality FROM handovers h WHERE h.family_id = c.family_id \
                 AND h.kind = 'move' AND h.status IN ('pending', 'escalated')) AS handover_from, \
                c.attempts, c.retry_due_at \
         FROM checkins c JOIN families f ON f.id = c.family_id \
         WHERE c.status = 'open' AND c.next_notice_at <= $1 AND f.status = 'running' \
         ORDER BY c.next_notice_at, c.id LIMIT $2"
    );
    Ok(sqlx::query_as(&sql)
        .bind(now)
        .bind(limit)
        .fetch_all(conn)
        .await?)
}

/// Records that a notice was enqueued and when the next one can be owed.
pub async fn set_notice_state(
    conn: &mut Conn,
    id: i64,
    stage: i64,
    overdue_count: i64,
    last_notice_at: Option<i64>,
    next_notice_at: Option<i64>,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE checkins SET notice_stage = $2, overdue_count = $3, last_notice_at = $4, \
         next_notice_at = $5 WHERE id = $1 AND status = 'open'",
    )
    .bind(id)
    .bind(stage)
    .bind(overdue_count)
    .bind(last_notice_at)
    .bind(next_notice_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// The notice state one check-in gets from a sweep (see [`set_notice_state`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NoticeState {
    pub id: i64,
    pub stage: i64,
    pub overdue_count: i64,
    pub last_notice_at: Option<i64>,
    pub next_notice_at: Option<i64>,
}

/// [`set_notice_state`] for many check-ins, in a few statements (see [`super::rows`]): an
/// UPDATE joined to the new states as a `VALUES` list. As there, only open check-ins change.
pub async fn set_notice_states(conn: &mut Conn, states: &[NoticeState]) -> Result<(), StoreError> {
    const WIDTH: usize = 5;
    for (chunk, values) in super::rows::chunked(states, WIDTH) {
        // A CTE rather than `FROM (VALUES …) AS v(…)`: SQLite names no columns of a
        // subquery's alias, both engines name a CTE's.
        let sql = format!(
            "WITH v (id, stage, overdue_count, last_notice_at, next_notice_at) AS (VALUES {values}) \
             UPDATE checkins SET notice_stage = v.stage, overdue_count = v.overdue_count, \
             last_notice_at = v.last_notice_at, next_notice_at = v.next_notice_at \
             FROM v WHERE checkins.id = v.id AND checkins.status = 'open'"
        );
        let mut q = sqlx::query(&sql);
        for s in chunk {
            q = q
                .bind(s.id)
                .bind(s.stage)
                .bind(s.overdue_count)
                .bind(s.last_notice_at)
                .bind(s.next_notice_at);
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

pub struct Recorded<'a> {
    pub id: i64,
    pub contact_at: i64,
    pub recorded_at: i64,
    pub outcome: &'a str,
    pub mode: &'a str,
    pub sealed_record: &'a [u8],
    /// Contact attempts kept, this one included.
    pub attempts: i64,
}

/// Stores the outcome of an open (or lapsed) check-in, with the number of attempts kept so
/// far. The statement changes no row (answers 0) if it was neither (recorded twice, or
/// cancelled).
pub fn push_record<'a>(s: &mut Script<'a>, r: &Recorded<'a>) -> usize {
    s.push(
        "UPDATE checkins SET status = 'recorded', contact_at = $2, recorded_at = $3, \
         outcome = $4, mode = $5, sealed_record = $6, next_notice_at = NULL, attempts = $7 \
         WHERE id = $1 AND status IN ('open', 'lapsed')",
        vec![
            Value::int(r.id),
            Value::int(r.contact_at),
            Value::int(r.recorded_at),
            Value::text(r.outcome),
            Value::text(r.mode),
            Value::blob(r.sealed_record),
            Value::int(r.attempts),
        ],
    )
}

/// Stores the sealed observations of one check-in in multi-row statements (see
/// [`super::rows`]): (member id, sealed values).
pub async fn insert_observations(
    conn: &mut Conn,
    checkin_id: i64,
    rows: &[(i64, Vec<u8>)],
) -> Result<(), StoreError> {
    let mut s = Script::new();
    push_observations(&mut s, checkin_id, rows);
    s.run(conn).await?;
    Ok(())
}

/// [`insert_observations`] as statements of a [`Script`].
pub fn push_observations<'a>(s: &mut Script<'a>, checkin_id: i64, rows: &'a [(i64, Vec<u8>)]) {
    const WIDTH: usize = 3;
    for (chunk, values) in super::rows::chunked(rows, WIDTH) {
        let mut bound = Vec::with_capacity(chunk.len() * WIDTH);
        for (member_id, sealed) in chunk {
            bound.extend([
                Value::int(checkin_id),
                Value::int(*member_id),
                Value::blob(sealed),
            ]);
        }
        s.push(
            format!(
                "INSERT INTO observations (checkin_id, member_id, sealed_values) VALUES {values}"
            ),
            bound,
        );
    }
}

/// A sealed observation of a family: (check-in id, member id, member ref, sealed values).
pub type FamilyObservation = (i64, i64, String, Vec<u8>);

/// Every sealed observation of a family's check-ins, in one query (the rules read them all).
pub async fn family_observations(
    conn: &mut Conn,
    family_id: i64,
) -> Result<Vec<FamilyObservation>, StoreError> {
    Ok(sqlx::query_as(&family_observations_sql("$1"))
        .bind(family_id)
        .fetch_all(conn)
        .await?)
}

/// [`family_observations`] of the family whose id the SQL expression `family` gives.
pub(crate) fn family_observations_sql(family: &str) -> String {
    format!(
        "SELECT o.checkin_id, m.id, m.ref, o.sealed_values FROM observations o \
         JOIN checkins c ON c.id = o.checkin_id JOIN members m ON m.id = o.member_id \
         WHERE c.family_id = {family} ORDER BY o.checkin_id, m.position"
    )
}

/// Sealed observations of one check-in: (member id, member ref, sealed values).
pub async fn observations(
    conn: &mut Conn,
    checkin_id: i64,
) -> Result<Vec<(i64, String, Vec<u8>)>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT m.id, m.ref, o.sealed_values FROM observations o \
         JOIN members m ON m.id = o.member_id WHERE o.checkin_id = $1 ORDER BY m.position",
    )
    .bind(checkin_id)
    .fetch_all(conn)
    .await?)
}

/// An open check-in in the due list.
#[derive(Clone, Debug, serde::Serialize, sqlx::FromRow)]
pub struct DueCheckin {
    pub checkin: String,
    pub family: String,
    pub wave: i64,
    /// When it is due: the next attempt's instant after a failed one.
    #[sqlx(rename = "due")]
    pub due_at: i64,
    pub municipality: String,
    pub notice_stage: i64,
    pub overdue_count: i64,
}

/// Open check-ins of running families due before `before`, optionally for one municipality.
pub async fn due(
    conn: &mut Conn,
    before: i64,
    municipality: Option<&str>,
) -> Result<Vec<DueCheckin>, StoreError> {
    let sql = format!(
        "SELECT c.ref AS checkin, f.ref AS family, c.wave, COALESCE(c.retry_due_at, c.due_at) AS due, \
                {RESPONSIBLE_AT_DUE} AS municipality, c.notice_stage, c.overdue_count \
         FROM checkins c JOIN families f ON f.id = c.family_id \
         WHERE c.status = 'open' AND f.status = 'running' AND COALESCE(c.retry_due_at, c.due_at) <= $1 \
         ORDER BY due, c.id"
    );
    let rows: Vec<DueCheckin> = sqlx::query_as(&sql).bind(before).fetch_all(conn).await?;
    Ok(rows
        .into_iter()
        .filter(|d| municipality.is_none_or(|m| m == d.municipality))
        .collect())
}

/// One contact attempt, as stored.
pub struct NewAttempt<'a> {
    pub checkin_id: i64,
    pub number: i64,
    pub at: i64,
    pub recorded_at: i64,
    pub outcome: &'a str,
    pub mode: &'a str,
    pub sealed_details: &'a [u8],
}

/// Keeps one attempt; the statement changes no row if an attempt with this number exists (a
/// concurrent record). The check-in's `attempts` count is set by [`push_record`] or
/// [`push_retry`], which follow it.
pub fn push_attempt<'a>(s: &mut Script<'a>, a: &NewAttempt<'a>) -> usize {
    s.push(
        "INSERT INTO checkin_attempts (checkin_id, number, at, recorded_at, outcome, mode, \
         sealed_details) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
        vec![
            Value::int(a.checkin_id),
            Value::int(a.number),
            Value::int(a.at),
            Value::int(a.recorded_at),
            Value::text(a.outcome),
            Value::text(a.mode),
            Value::blob(a.sealed_details),
        ],
    )
}

/// A stored attempt: (number, at, outcome, mode, sealed details).
pub type AttemptRow = (i64, i64, String, String, Option<Vec<u8>>);

/// The attempts of one check-in, in order.
pub async fn attempts(conn: &mut Conn, checkin_id: i64) -> Result<Vec<AttemptRow>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT number, at, outcome, mode, sealed_details FROM checkin_attempts \
         WHERE checkin_id = $1 ORDER BY number",
    )
    .bind(checkin_id)
    .fetch_all(conn)
    .await?)
}

/// After a failed attempt the check-in stays open: the next attempt is due at `retry_due`,
/// and its reminder sequence starts again from there (the retry reminder first). `attempts`:
/// the attempts kept, this one included. Changes no row unless the check-in is open or lapsed.
pub fn push_retry(
    s: &mut Script<'_>,
    id: i64,
    contact_at: i64,
    retry_due: i64,
    attempts: i64,
) -> usize {
    // Stage 1 (upcoming) so the next notice owed is the one at the retry's due instant.
    s.push(
        "UPDATE checkins SET contact_at = $2, retry_due_at = $3, notice_stage = 1, \
         overdue_count = 0, last_notice_at = NULL, next_notice_at = $3, status = 'open', \
         attempts = $4 WHERE id = $1 AND status IN ('open', 'lapsed')",
        vec![
            Value::int(id),
            Value::int(contact_at),
            Value::int(retry_due),
            Value::int(attempts),
        ],
    )
}

/// Marks a recorded check-in as missed: every allowed attempt failed.
pub async fn mark_missed(conn: &mut Conn, id: i64, now: i64) -> Result<(), StoreError> {
    sqlx::query("UPDATE checkins SET status = 'missed', missed_at = $2 WHERE id = $1")
        .bind(id)
        .bind(now)
        .execute(conn)
        .await?;
    Ok(())
}

/// The next free introduction-contact wave of a family (see `plan::INTRO_WAVE_BASE`).
pub async fn next_intro_wave(conn: &mut Conn, family_id: i64) -> Result<i64, StoreError> {
    let base = crate::domain::plan::INTRO_WAVE_BASE;
    let max: Option<i64> =
        sqlx::query_scalar("SELECT MAX(wave) FROM checkins WHERE family_id = $1 AND wave > $2")
            .bind(family_id)
            .bind(base)
            .fetch_one(conn)
            .await?;
    Ok(max.unwrap_or(base) + 1)
}

/// A later move replaces an earlier one's introduction contact that is still ahead.
pub async fn cancel_intros_after(
    conn: &mut Conn,
    family_id: i64,
    after: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE checkins SET status = 'cancelled', next_notice_at = NULL \
         WHERE family_id = $1 AND wave > $2 AND status = 'open' AND due_at > $3",
    )
    .bind(family_id)
    .bind(crate::domain::plan::INTRO_WAVE_BASE)
    .bind(after)
    .execute(conn)
    .await?;
    Ok(())
}

/// A check-in whose reminders carried a calendar invitation, still open.
#[derive(Debug, sqlx::FromRow)]
pub struct Invited {
    #[sqlx(rename = "ref")]
    pub reference: String,
    pub attempts: i64,
    /// The instant the last invitation named (the next attempt's, after a failed one).
    #[sqlx(rename = "invited_for")]
    pub due_at: i64,
}

/// The family's open check-ins that had an invitation (a reminder went out, or an attempt
/// failed and the retry reminder carries one), so closing, erasing or moving can cancel them.
pub async fn invited_open(conn: &mut Conn, family_id: i64) -> Result<Vec<Invited>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT ref, attempts, COALESCE(retry_due_at, due_at) AS invited_for FROM checkins \
         WHERE family_id = $1 AND status IN ('open', 'lapsed') \
         AND (last_notice_at IS NOT NULL OR attempts > 0) ORDER BY due_at",
    )
    .bind(family_id)
    .fetch_all(conn)
    .await?)
}
