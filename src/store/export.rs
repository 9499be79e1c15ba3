//! What the research export reads (families in id batches, so memory stays bounded) and
//! what it records (the export, the sealed per-study pseudonym key).

use super::{Conn, StoreError};

/// A family as the export needs it (sealed columns still sealed).
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct ExportFamily {
    pub id: i64,
    #[sqlx(rename = "ref")]
    pub reference: String,
    pub episode_kind: String,
    pub episode_date: String,
    pub plan: String,
    pub plan_end: i64,
    pub status: String,
    pub close_reason: Option<String>,
    pub kek_id: Option<i64>,
    pub wrapped_dek: Option<Vec<u8>>,
}

/// The next `limit` families after `after_id` that are not erased and were not enrolled in
/// error (such a family was never really followed: it is never exported), by id.
pub async fn families_after(
    conn: &mut Conn,
    after_id: i64,
    limit: i64,
) -> Result<Vec<ExportFamily>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT id, ref, episode_kind, episode_date, plan_end, status, close_reason, kek_id, \
         wrapped_dek, plan FROM families WHERE id > $1 AND status != 'erased' \
         AND COALESCE(close_reason, '') != 'enrolled_in_error' ORDER BY id LIMIT $2",
    )
    .bind(after_id)
    .bind(limit)
    .fetch_all(conn)
    .await?)
}

/// Erased families (not exported: nothing is left to export), for the manifest.
pub async fn erased_families(conn: &mut Conn) -> Result<i64, StoreError> {
    Ok(
        sqlx::query_scalar("SELECT COUNT(*) FROM families WHERE status = 'erased'")
            .fetch_one(conn)
            .await?,
    )
}

/// A child member (its details still sealed).
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct ExportChild {
    pub family_id: i64,
    pub id: i64,
    #[sqlx(rename = "ref")]
    pub reference: String,
    pub sealed_details: Option<Vec<u8>>,
}

/// The children of the families with ids in `[lo, hi]`, by family and position.
pub async fn children_between(
    conn: &mut Conn,
    lo: i64,
    hi: i64,
) -> Result<Vec<ExportChild>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT family_id, id, ref, sealed_details FROM members \
         WHERE family_id BETWEEN $1 AND $2 AND role = 'child' ORDER BY family_id, position",
    )
    .bind(lo)
    .bind(hi)
    .fetch_all(conn)
    .await?)
}

/// `(family_id, municipality, valid_from)` of every responsibility of the families with ids
/// in `[lo, hi]`, by family and start. The first is where the plan started; every further
/// one is a move, so `moves_so_far` at an instant is the number that started by then minus
/// one (see `domain::anonymise::moves_so_far`).
pub async fn responsibilities_between(
    conn: &mut Conn,
    lo: i64,
    hi: i64,
) -> Result<Vec<(i64, String, i64)>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT family_id, municipality, valid_from FROM responsibilities \
         WHERE family_id BETWEEN $1 AND $2 ORDER BY family_id, valid_from, id",
    )
    .bind(lo)
    .bind(hi)
    .fetch_all(conn)
    .await?)
}

/// A check-in as exported (no sealed record: family notes never leave).
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct ExportCheckin {
    pub id: i64,
    #[sqlx(rename = "ref")]
    pub reference: String,
    pub family_id: i64,
    pub wave: i64,
    pub due_at: i64,
    pub status: String,
    pub outcome: Option<String>,
    pub mode: Option<String>,
}

/// The check-ins of the families with ids in `[lo, hi]` that fell due in `[from, to]` and
/// were not cancelled, by family and due instant. Introduction contacts after a move
/// (waves from `plan::INTRO_WAVE_BASE`) are not plan waves and stay out of research data.
pub async fn checkins_between(
    conn: &mut Conn,
    lo: i64,
    hi: i64,
    from: i64,
    to: i64,
) -> Result<Vec<ExportCheckin>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT id, ref, family_id, wave, due_at, status, outcome, mode FROM checkins \
         WHERE family_id BETWEEN $1 AND $2 AND due_at >= $3 AND due_at <= $4 \
         AND status != 'cancelled' AND wave < 1000 ORDER BY family_id, due_at, id",
    )
    .bind(lo)
    .bind(hi)
    .bind(from)
    .bind(to)
    .fetch_all(conn)
    .await?)
}

/// A check-in as [`checkins_between`] gives it, with its observations.
pub struct CheckinObserved {
    pub checkin: ExportCheckin,
    /// `(member_id, sealed_values)`, in no particular order.
    pub observations: Vec<(i64, Vec<u8>)>,
}

#[derive(sqlx::FromRow)]
struct CheckinObservedRow {
    #[sqlx(flatten)]
    checkin: ExportCheckin,
    observed: Option<String>,
}

/// [`checkins_between`] with each check-in's observations in the same row
/// (`member_id:hex,…`). Pass 2 of the export reads about three observations per check-in;
/// one row each made the database driver's per-row hand-off between its thread and ours
/// the export's bottleneck (this is a third of the rows).
pub async fn checkins_observed_between(
    conn: &mut Conn,
    lo: i64,
    hi: i64,
    from: i64,
    to: i64,
) -> Result<Vec<CheckinObserved>, StoreError> {
    let observed = match super::backend_of(conn) {
        super::Backend::Sqlite => {
            "(SELECT group_concat(o.member_id || ':' || hex(o.sealed_values), ',') \
             FROM observations o WHERE o.checkin_id = c.id)"
        }
        super::Backend::Postgres => {
            "(SELECT string_agg(o.member_id::text || ':' || encode(o.sealed_values, 'hex'), ',') \
             FROM observations o WHERE o.checkin_id = c.id)"
        }
    };
    let rows: Vec<CheckinObservedRow> = sqlx::query_as(&format!(
        "SELECT c.id, c.ref, c.family_id, c.wave, c.due_at, c.status, c.outcome, c.mode, \
         {observed} AS observed FROM checkins c \
         WHERE c.family_id BETWEEN $1 AND $2 AND c.due_at >= $3 AND c.due_at <= $4 \
         AND c.status != 'cancelled' AND c.wave < 1000 ORDER BY c.family_id, c.due_at, c.id"
    ))
    .bind(lo)
    .bind(hi)
    .bind(from)
    .bind(to)
    .fetch_all(conn)
    .await?;
    rows.into_iter()
        .map(|r| {
            Ok(CheckinObserved {
                observations: match &r.observed {
                    Some(list) => observed_list(list)?,
                    None => Vec::new(),
                },
                checkin: r.checkin,
            })
        })
        .collect()
}

/// Decodes `member_id:hex,…` (hex in either case, as SQLite and PostgreSQL write it).
fn observed_list(list: &str) -> Result<Vec<(i64, Vec<u8>)>, StoreError> {
    let corrupt = || StoreError::Corrupt("observations of a check-in do not decode".into());
    list.split(',')
        .map(|pair| {
            let (member, hex) = pair.split_once(':').ok_or_else(corrupt)?;
            let member = member.parse().map_err(|_| corrupt())?;
            Ok((member, unhex(hex).ok_or_else(corrupt)?))
        })
        .collect()
}

fn unhex(hex: &str) -> Option<Vec<u8>> {
    let digit = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let bytes = hex.as_bytes();
    if !bytes.len().is_multiple_of(2) {
        return None;
    }
    bytes
        .chunks_exact(2)
        .map(|p| Some((digit(p[0])? << 4) | digit(p[1])?))
        .collect()
}

/// `(trigger_checkin_id, member_id, rule)` of every flag raised for the families with ids in
/// `[lo, hi]` (one query per batch, by the `flags_family` index): a child's flags at a
/// check-in are those of its member id and the family-level ones (no member id).
pub async fn flags_between(
    conn: &mut Conn,
    lo: i64,
    hi: i64,
) -> Result<Vec<(i64, Option<i64>, String)>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT trigger_checkin_id, member_id, rule FROM flags \
         WHERE family_id BETWEEN $1 AND $2",
    )
    .bind(lo)
    .bind(hi)
    .fetch_all(conn)
    .await?)
}

/// `(kek_id, wrapped_key)` of a study's pseudonym key.
pub async fn study_key(conn: &mut Conn, code: &str) -> Result<Option<(i64, Vec<u8>)>, StoreError> {
    Ok(
        sqlx::query_as("SELECT kek_id, wrapped_key FROM export_studies WHERE code = $1")
            .bind(code)
            .fetch_optional(conn)
            .await?,
    )
}

pub async fn insert_study_key(
    conn: &mut Conn,
    code: &str,
    kek_id: i64,
    wrapped: &[u8],
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO export_studies (code, kek_id, wrapped_key, created_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(code)
    .bind(kek_id)
    .bind(wrapped)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// `(code, kek_id, wrapped_key)` of study keys not wrapped under `kek_id` (for rotation).
pub async fn study_keys_not_under(
    conn: &mut Conn,
    kek_id: i64,
) -> Result<Vec<(String, i64, Vec<u8>)>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT code, kek_id, wrapped_key FROM export_studies WHERE kek_id != $1 ORDER BY code",
    )
    .bind(kek_id)
    .fetch_all(conn)
    .await?)
}

pub async fn set_study_key(
    conn: &mut Conn,
    code: &str,
    kek_id: i64,
    wrapped: &[u8],
) -> Result<(), StoreError> {
    sqlx::query("UPDATE export_studies SET kek_id = $2, wrapped_key = $3 WHERE code = $1")
        .bind(code)
        .bind(kek_id)
        .bind(wrapped)
        .execute(conn)
        .await?;
    Ok(())
}

/// The record of one export.
pub struct NewExport<'a> {
    pub id: &'a str,
    pub created_at: i64,
    pub actor: &'a str,
    pub study: Option<&'a str>,
    pub parameters: &'a str,
    pub k_requested: i64,
    pub k_achieved: i64,
    pub children_out: i64,
    pub rows_out: i64,
    pub files: &'a str,
}

pub async fn insert_export(conn: &mut Conn, e: &NewExport<'_>) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO exports (id, created_at, actor, study, parameters, k_requested, k_achieved, \
         children_out, rows_out, files) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(e.id)
    .bind(e.created_at)
    .bind(e.actor)
    .bind(e.study)
    .bind(e.parameters)
    .bind(e.k_requested)
    .bind(e.k_achieved)
    .bind(e.children_out)
    .bind(e.rows_out)
    .bind(e.files)
    .execute(conn)
    .await?;
    Ok(())
}

/// The study an export was made for: `None` if there is no such export, `Some(None)` for a
/// one-off export without a study.
pub async fn study_of(conn: &mut Conn, id: &str) -> Result<Option<Option<String>>, StoreError> {
    let row: Option<Option<String>> = sqlx::query_scalar("SELECT study FROM exports WHERE id = $1")
        .bind(id)
        .fetch_optional(conn)
        .await?;
    Ok(row)
}

/// An export that has not expired: its files may still exist.
#[derive(Clone, Debug, serde::Serialize, sqlx::FromRow)]
pub struct LiveExport {
    pub id: String,
    pub created_at: i64,
    pub study: Option<String>,
}

/// Exports made at or after `since` that have not expired (they may hold a family enrolled
/// at `since`).
pub async fn live_since(conn: &mut Conn, since: i64) -> Result<Vec<LiveExport>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT id, created_at, study FROM exports \
         WHERE expired_at IS NULL AND created_at >= $1 ORDER BY created_at, id",
    )
    .bind(since)
    .fetch_all(conn)
    .await?)
}

/// Ids of exports made on or before `cutoff` that have not expired yet.
pub async fn due_to_expire(
    conn: &mut Conn,
    cutoff: i64,
    limit: i64,
) -> Result<Vec<String>, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT id FROM exports WHERE expired_at IS NULL AND created_at <= $1 \
         ORDER BY created_at, id LIMIT $2",
    )
    .bind(cutoff)
    .bind(limit)
    .fetch_all(conn)
    .await?)
}

pub async fn mark_expired(conn: &mut Conn, id: &str, now: i64) -> Result<(), StoreError> {
    sqlx::query("UPDATE exports SET expired_at = $2 WHERE id = $1")
        .bind(id)
        .bind(now)
        .execute(conn)
        .await?;
    Ok(())
}

/// A study's sealed state (see `export` module docs): `None` before its first export.
pub async fn study_state(conn: &mut Conn, code: &str) -> Result<Option<Vec<u8>>, StoreError> {
    Ok(
        sqlx::query_scalar("SELECT sealed_state FROM export_study_releases WHERE study = $1")
            .bind(code)
            .fetch_optional(conn)
            .await?,
    )
}

pub async fn set_study_state(
    conn: &mut Conn,
    code: &str,
    sealed: &[u8],
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO export_study_releases (study, sealed_state, updated_at) VALUES ($1, $2, $3) \
         ON CONFLICT (study) DO UPDATE SET sealed_state = excluded.sealed_state, \
         updated_at = excluded.updated_at",
    )
    .bind(code)
    .bind(sealed)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn observed_lists_decode_and_refuse_garbage() {
        assert_eq!(
            observed_list("12:00FFab,7:").unwrap(),
            vec![(12, vec![0x00, 0xff, 0xab]), (7, vec![])]
        );
        for bad in ["12", "x:00", "12:0", "12:zz", "12:00,,", ""] {
            assert!(observed_list(bad).is_err(), "{bad}");
        }
    }
}
