//! Team members of the workspace, their one-time sign-in links and their browser sessions.
//! Link tokens and session ids are stored only as SHA-256.

use super::{Conn, StoreError};

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct MemberRow {
    pub id: i64,
    pub reference: String,
    pub municipality: String,
    pub email: String,
    pub name: String,
    pub created_at: i64,
    pub removed_at: Option<i64>,
}

const COLUMNS: &str = "id, reference, municipality, email, name, created_at, removed_at";

pub struct NewMember<'a> {
    pub reference: &'a str,
    pub municipality: &'a str,
    pub email: &'a str,
    pub name: &'a str,
    pub created_at: i64,
}

pub async fn insert(conn: &mut Conn, m: &NewMember<'_>) -> Result<i64, StoreError> {
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO team_members (reference, municipality, email, name, created_at) \
         VALUES ($1, $2, $3, $4, $5) RETURNING id",
    )
    .bind(m.reference)
    .bind(m.municipality)
    .bind(m.email)
    .bind(m.name)
    .bind(m.created_at)
    .fetch_one(conn)
    .await?;
    Ok(id)
}

/// The active member with this (lowercase) address.
pub async fn active_by_email(
    conn: &mut Conn,
    email: &str,
) -> Result<Option<MemberRow>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM team_members WHERE email = $1 AND removed_at IS NULL");
    Ok(sqlx::query_as(&sql)
        .bind(email)
        .fetch_optional(conn)
        .await?)
}

pub async fn by_ref(conn: &mut Conn, reference: &str) -> Result<Option<MemberRow>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM team_members WHERE reference = $1");
    Ok(sqlx::query_as(&sql)
        .bind(reference)
        .fetch_optional(conn)
        .await?)
}

/// Members, active and removed, optionally of one municipality.
pub async fn list(
    conn: &mut Conn,
    municipality: Option<&str>,
) -> Result<Vec<MemberRow>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM team_members WHERE ($1 IS NULL OR municipality = $1) ORDER BY id"
    );
    Ok(sqlx::query_as(&sql)
        .bind(municipality)
        .fetch_all(conn)
        .await?)
}

/// Marks a member removed and ends their sessions; false if there was no active member.
pub async fn remove(conn: &mut Conn, reference: &str, at: i64) -> Result<bool, StoreError> {
    let id: Option<i64> = sqlx::query_scalar(
        "UPDATE team_members SET removed_at = $2 WHERE reference = $1 AND removed_at IS NULL \
         RETURNING id",
    )
    .bind(reference)
    .bind(at)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(id) = id else {
        return Ok(false);
    };
    sqlx::query("UPDATE web_sessions SET ended_at = $2 WHERE member_id = $1 AND ended_at IS NULL")
        .bind(id)
        .bind(at)
        .execute(conn)
        .await?;
    Ok(true)
}

pub struct NewLink<'a> {
    pub token_hash: &'a [u8],
    pub member_id: i64,
    pub browser_hash: &'a [u8],
    pub next_path: Option<&'a str>,
    pub created_at: i64,
    pub expires_at: i64,
}

pub async fn insert_link(conn: &mut Conn, l: &NewLink<'_>) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO signin_links (token_hash, member_id, browser_hash, next_path, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(l.token_hash)
    .bind(l.member_id)
    .bind(l.browser_hash)
    .bind(l.next_path)
    .bind(l.created_at)
    .bind(l.expires_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// How many links were made for a member since `since` (a flood guard).
pub async fn links_since(conn: &mut Conn, member_id: i64, since: i64) -> Result<i64, StoreError> {
    let n: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM signin_links WHERE member_id = $1 AND created_at >= $2",
    )
    .bind(member_id)
    .bind(since)
    .fetch_one(conn)
    .await?;
    Ok(n)
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct LinkRow {
    pub member_id: i64,
    pub browser_hash: Vec<u8>,
    pub next_path: Option<String>,
    pub expires_at: i64,
    pub used_at: Option<i64>,
}

pub async fn link(conn: &mut Conn, token_hash: &[u8]) -> Result<Option<LinkRow>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT member_id, browser_hash, next_path, expires_at, used_at FROM signin_links \
         WHERE token_hash = $1",
    )
    .bind(token_hash)
    .fetch_optional(conn)
    .await?)
}

/// Uses a link once: false when it was used already (by a concurrent request, say).
pub async fn use_link(conn: &mut Conn, token_hash: &[u8], at: i64) -> Result<bool, StoreError> {
    let r = sqlx::query(
        "UPDATE signin_links SET used_at = $2 WHERE token_hash = $1 AND used_at IS NULL",
    )
    .bind(token_hash)
    .bind(at)
    .execute(conn)
    .await?;
    Ok(r.rows_affected() == 1)
}

pub async fn insert_session(
    conn: &mut Conn,
    id_hash: &[u8],
    member_id: i64,
    csrf: &str,
    at: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO web_sessions (id_hash, member_id, csrf, created_at, last_seen_at) \
         VALUES ($1, $2, $3, $4, $4)",
    )
    .bind(id_hash)
    .bind(member_id)
    .bind(csrf)
    .bind(at)
    .execute(conn)
    .await?;
    Ok(())
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct SessionRow {
    #[sqlx(flatten)]
    pub member: MemberRow,
    pub csrf: String,
    pub last_seen_at: i64,
}

/// A session that has not ended, with its (active) member.
pub async fn session(conn: &mut Conn, id_hash: &[u8]) -> Result<Option<SessionRow>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT m.id, m.reference, m.municipality, m.email, m.name, m.created_at, m.removed_at, \
                s.csrf, s.last_seen_at \
         FROM web_sessions s JOIN team_members m ON m.id = s.member_id \
         WHERE s.id_hash = $1 AND s.ended_at IS NULL AND m.removed_at IS NULL",
    )
    .bind(id_hash)
    .fetch_optional(conn)
    .await?)
}

pub async fn touch_session(conn: &mut Conn, id_hash: &[u8], at: i64) -> Result<(), StoreError> {
    sqlx::query("UPDATE web_sessions SET last_seen_at = $2 WHERE id_hash = $1")
        .bind(id_hash)
        .bind(at)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn end_session(conn: &mut Conn, id_hash: &[u8], at: i64) -> Result<(), StoreError> {
    sqlx::query("UPDATE web_sessions SET ended_at = $2 WHERE id_hash = $1 AND ended_at IS NULL")
        .bind(id_hash)
        .bind(at)
        .execute(conn)
        .await?;
    Ok(())
}
