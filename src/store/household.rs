//! Members leaving, the ex-partner and the safety plan: the rows `family update` changes and
//! the sweep reads (plain instants only; everything personal is sealed).

use super::{Conn, StoreError};

/// The next free member position of a family (members added later come last).
pub async fn next_position(conn: &mut Conn, family_id: i64) -> Result<i64, StoreError> {
    let n: Option<i64> =
        sqlx::query_scalar("SELECT MAX(position) FROM members WHERE family_id = $1")
            .bind(family_id)
            .fetch_one(conn)
            .await?;
    Ok(n.map_or(0, |p| p + 1))
}

/// Marks a member as having left: kept for history, no longer observed.
pub async fn member_left(
    conn: &mut Conn,
    member_id: i64,
    at: i64,
    reason: &str,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE members SET left_at = $2, left_reason = $3 WHERE id = $1")
        .bind(member_id)
        .bind(at)
        .bind(reason)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn set_member_details(
    conn: &mut Conn,
    member_id: i64,
    sealed: &[u8],
) -> Result<(), StoreError> {
    sqlx::query("UPDATE members SET sealed_details = $2 WHERE id = $1")
        .bind(member_id)
        .bind(sealed)
        .execute(conn)
        .await?;
    Ok(())
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct ExPartnerRow {
    pub id: i64,
    #[sqlx(rename = "ref")]
    pub reference: String,
    pub sealed_details: Option<Vec<u8>>,
    pub measure_ends_at: Option<i64>,
    pub measure_noticed_at: Option<i64>,
    pub added_at: i64,
    pub left_at: Option<i64>,
}

pub async fn ex_partners(conn: &mut Conn, family_id: i64) -> Result<Vec<ExPartnerRow>, StoreError> {
    Ok(sqlx::query_as(&ex_partners_sql("$1"))
        .bind(family_id)
        .fetch_all(conn)
        .await?)
}

/// [`ex_partners`] of the family whose id the SQL expression `family` gives.
pub(crate) fn ex_partners_sql(family: &str) -> String {
    format!(
        "SELECT id, ref, sealed_details, measure_ends_at, measure_noticed_at, added_at, left_at \
         FROM ex_partners WHERE family_id = {family} ORDER BY id"
    )
}

pub async fn insert_ex_partner(
    conn: &mut Conn,
    family_id: i64,
    reference: &str,
    sealed: &[u8],
    measure_ends_at: Option<i64>,
    now: i64,
) -> Result<i64, StoreError> {
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO ex_partners (family_id, ref, sealed_details, measure_ends_at, added_at) \
         VALUES ($1, $2, $3, $4, $5) RETURNING id",
    )
    .bind(family_id)
    .bind(reference)
    .bind(sealed)
    .bind(measure_ends_at)
    .bind(now)
    .fetch_one(conn)
    .await?;
    Ok(id)
}

/// A changed measure: a new end date is signalled again (once) ahead of its end.
pub async fn set_measure(
    conn: &mut Conn,
    id: i64,
    sealed: &[u8],
    measure_ends_at: Option<i64>,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE ex_partners SET sealed_details = $2, measure_ends_at = $3, \
         measure_noticed_at = NULL WHERE id = $1",
    )
    .bind(id)
    .bind(sealed)
    .bind(measure_ends_at)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn ex_partner_left(conn: &mut Conn, id: i64, at: i64) -> Result<(), StoreError> {
    sqlx::query("UPDATE ex_partners SET left_at = $2 WHERE id = $1")
        .bind(id)
        .bind(at)
        .execute(conn)
        .await?;
    Ok(())
}

/// Measures of running families ending before `until` and not yet signalled: `(ex-partner
/// id, ex-partner ref, family id)`.
pub async fn measures_to_signal(
    conn: &mut Conn,
    until: i64,
    limit: i64,
) -> Result<Vec<(i64, String, i64)>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT x.id, x.ref, x.family_id FROM ex_partners x JOIN families f ON f.id = x.family_id \
         WHERE x.measure_noticed_at IS NULL AND x.measure_ends_at IS NOT NULL \
         AND x.measure_ends_at <= $1 AND x.left_at IS NULL AND f.status = 'running' \
         ORDER BY x.id LIMIT $2",
    )
    .bind(until)
    .bind(limit)
    .fetch_all(conn)
    .await?)
}

pub async fn mark_measure_noticed(conn: &mut Conn, id: i64, now: i64) -> Result<(), StoreError> {
    sqlx::query("UPDATE ex_partners SET measure_noticed_at = $2 WHERE id = $1")
        .bind(id)
        .bind(now)
        .execute(conn)
        .await?;
    Ok(())
}

/// The sealed safety plan and its review instant.
pub async fn safety_plan(
    conn: &mut Conn,
    family_id: i64,
) -> Result<(Option<Vec<u8>>, Option<i64>), StoreError> {
    Ok(sqlx::query_as(
        "SELECT sealed_safety_plan, safety_plan_review_at FROM families WHERE id = $1",
    )
    .bind(family_id)
    .fetch_one(conn)
    .await?)
}

/// A new safety plan (or review date) is reminded again at its review date.
pub async fn set_safety_plan(
    conn: &mut Conn,
    family_id: i64,
    sealed: &[u8],
    review_at: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE families SET sealed_safety_plan = $2, safety_plan_review_at = $3, \
         safety_plan_reminded_at = NULL WHERE id = $1",
    )
    .bind(family_id)
    .bind(sealed)
    .bind(review_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Running families whose safety plan review fell due and was not yet reminded:
/// `(family id, review instant)`.
pub async fn safety_reviews_due(
    conn: &mut Conn,
    at: i64,
    limit: i64,
) -> Result<Vec<(i64, i64)>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT id, safety_plan_review_at FROM families WHERE safety_plan_reminded_at IS NULL \
         AND safety_plan_review_at IS NOT NULL AND safety_plan_review_at <= $1 \
         AND status = 'running' ORDER BY id LIMIT $2",
    )
    .bind(at)
    .bind(limit)
    .fetch_all(conn)
    .await?)
}

pub async fn mark_safety_reminded(
    conn: &mut Conn,
    family_id: i64,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE families SET safety_plan_reminded_at = $2 WHERE id = $1")
        .bind(family_id)
        .bind(now)
        .execute(conn)
        .await?;
    Ok(())
}

/// The id the next referral gets: its sealed detail is bound to it.
pub async fn next_referral_id(conn: &mut Conn) -> Result<i64, StoreError> {
    let n: Option<i64> = sqlx::query_scalar("SELECT MAX(id) FROM referrals")
        .fetch_one(conn)
        .await?;
    Ok(n.map_or(1, |n| n + 1))
}

pub async fn insert_referral(
    conn: &mut Conn,
    id: i64,
    family_id: i64,
    now: i64,
    sealed: &[u8],
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO referrals (id, family_id, recorded_at, sealed_details) \
         VALUES ($1, $2, $3, $4)",
    )
    .bind(id)
    .bind(family_id)
    .bind(now)
    .bind(sealed)
    .execute(conn)
    .await?;
    Ok(())
}

/// A family's referrals, oldest first: `(id, recorded_at, sealed)`.
pub async fn referrals(
    conn: &mut Conn,
    family_id: i64,
) -> Result<Vec<(i64, i64, Vec<u8>)>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT id, recorded_at, sealed_details FROM referrals WHERE family_id = $1 ORDER BY id",
    )
    .bind(family_id)
    .fetch_all(conn)
    .await?)
}
