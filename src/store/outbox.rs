//! The durable outbox: messages written with their cause, claimed and sent by the dispatcher.

use super::{Conn, StoreError, StringList};
use std::collections::{HashMap, HashSet};

pub struct NewMessage<'a> {
    pub key: &'a str,
    pub kind: &'a str,
    pub family_ref: Option<&'a str>,
    pub recipients: &'a [String],
    pub cc: &'a [String],
    pub subject: &'a str,
    pub body: &'a str,
    pub attachments: &'a [crate::mail::Attachment],
    pub now: i64,
}

fn json_list(v: &[String]) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// Enqueues a message unless one with the same key exists. Returns whether it was new.
pub async fn enqueue(conn: &mut Conn, m: &NewMessage<'_>) -> Result<bool, StoreError> {
    let fresh = enqueue_many(conn, std::slice::from_ref(m)).await?;
    Ok(fresh.first() == Some(&true))
}

/// [`enqueue`] for many messages in a few statements: the messages in multi-row INSERTs
/// (`ON CONFLICT (key) DO NOTHING RETURNING id, key`), then the attachments of the new ones
/// in multi-row INSERTs. Returns, in the order given, whether each message was new: `false`
/// for a key that existed before, and for a key repeated in `messages` after its first
/// occurrence (that one alone is enqueued). Every key is still enqueued at most once.
pub async fn enqueue_many(
    conn: &mut Conn,
    messages: &[NewMessage<'_>],
) -> Result<Vec<bool>, StoreError> {
    const WIDTH: usize = 9;
    // The first occurrence of each key; later ones are repeats, never inserted.
    let mut seen = HashSet::with_capacity(messages.len());
    let first: Vec<&NewMessage<'_>> = messages.iter().filter(|m| seen.insert(m.key)).collect();
    let mut ids: HashMap<String, i64> = HashMap::with_capacity(first.len());
    for (chunk, values) in super::rows::chunked(&first, WIDTH) {
        let sql = format!(
            "INSERT INTO outbox (key, kind, family_ref, recipients, cc, subject, body, created_at, next_attempt_at) \
             VALUES {values} ON CONFLICT (key) DO NOTHING RETURNING id, key"
        );
        let mut q = sqlx::query_as::<_, (i64, String)>(&sql);
        for m in chunk {
            q = q
                .bind(m.key)
                .bind(m.kind)
                .bind(m.family_ref)
                .bind(json_list(m.recipients)?)
                .bind(json_list(m.cc)?)
                .bind(m.subject)
                .bind(m.body)
                .bind(m.now)
                .bind(m.now);
        }
        ids.extend(
            q.fetch_all(&mut *conn)
                .await?
                .into_iter()
                .map(|(id, key)| (key, id)),
        );
    }
    // Each new key once, in the order given; its id taken out so a repeat is not new.
    let mut fresh = Vec::with_capacity(messages.len());
    let mut attachments = Vec::new();
    for m in messages {
        let id = ids.remove(m.key);
        if let Some(id) = id {
            for (i, a) in m.attachments.iter().enumerate() {
                attachments.push((id, i64::try_from(i).unwrap_or(i64::MAX), a));
            }
        }
        fresh.push(id.is_some());
    }
    const ATTACHMENT_WIDTH: usize = 5;
    for (chunk, values) in super::rows::chunked(&attachments, ATTACHMENT_WIDTH) {
        let sql = format!(
            "INSERT INTO outbox_attachments (outbox_id, position, filename, content_type, bytes) VALUES {values}"
        );
        let mut q = sqlx::query(&sql);
        for (id, position, a) in chunk {
            q = q
                .bind(*id)
                .bind(*position)
                .bind(&a.filename)
                .bind(&a.content_type)
                .bind(&a.bytes);
        }
        q.execute(&mut *conn).await?;
    }
    Ok(fresh)
}

/// Claims up to `limit` pending messages whose attempt is due, for `claim_secs` seconds.
/// A claim is a row update, so two dispatchers never take the same message.
pub async fn claim(
    conn: &mut Conn,
    now: i64,
    claim_secs: i64,
    limit: i64,
) -> Result<Vec<i64>, StoreError> {
    // On PostgreSQL the rows are locked as they are picked, and rows another daemon is
    // claiming right now are skipped rather than waited for.
    let lock = match super::backend_of(conn) {
        super::Backend::Postgres => " FOR UPDATE SKIP LOCKED",
        super::Backend::Sqlite => "",
    };
    let ids: Vec<i64> = sqlx::query_scalar(&format!(
        "SELECT id FROM outbox WHERE status = 'pending' AND next_attempt_at <= $1 \
         AND (claimed_until IS NULL OR claimed_until <= $1) ORDER BY next_attempt_at, id LIMIT $2{lock}"
    ))
    .bind(now)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    let mut claimed = Vec::with_capacity(ids.len());
    for id in ids {
        let done = sqlx::query(
            "UPDATE outbox SET claimed_until = $2 WHERE id = $1 AND status = 'pending' \
             AND (claimed_until IS NULL OR claimed_until <= $3)",
        )
        .bind(id)
        .bind(now + claim_secs)
        .bind(now)
        .execute(&mut *conn)
        .await?;
        if done.rows_affected() == 1 {
            claimed.push(id);
        }
    }
    Ok(claimed)
}

/// A message as the dispatcher needs it.
#[derive(sqlx::FromRow)]
pub struct StoredMessage {
    pub id: i64,
    pub key: String,
    pub kind: String,
    pub family_ref: Option<String>,
    #[sqlx(try_from = "StringList")]
    pub recipients: Vec<String>,
    #[sqlx(try_from = "StringList")]
    pub cc: Vec<String>,
    pub subject: String,
    pub body: String,
    pub attempts: i64,
    /// From `outbox_attachments`, read after the row.
    #[sqlx(skip)]
    pub attachments: Vec<crate::mail::Attachment>,
}

pub async fn load(conn: &mut Conn, id: i64) -> Result<Option<StoredMessage>, StoreError> {
    let Some(mut message) = sqlx::query_as::<_, StoredMessage>(
        "SELECT id, key, recipients, cc, subject, body, attempts, kind, family_ref \
         FROM outbox WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?
    else {
        return Ok(None);
    };
    let attachments: Vec<(String, String, Vec<u8>)> = sqlx::query_as(
        "SELECT filename, content_type, bytes FROM outbox_attachments WHERE outbox_id = $1 ORDER BY position",
    )
    .bind(id)
    .fetch_all(&mut *conn)
    .await?;
    message.attachments = attachments
        .into_iter()
        .map(|(filename, content_type, bytes)| crate::mail::Attachment {
            filename,
            content_type,
            bytes,
        })
        .collect();
    Ok(Some(message))
}

/// Records a delivery. Only a pending message changes: one cancelled (its family erased)
/// while it was being sent stays cancelled.
pub async fn mark_sent(conn: &mut Conn, id: i64, now: i64) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE outbox SET status = 'sent', sent_at = $2, attempts = attempts + 1, \
         claimed_until = NULL, last_error = NULL WHERE id = $1 AND status = 'pending'",
    )
    .bind(id)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// A failed attempt: retried at `retry_at`, or given up (`None`) and marked failed.
pub async fn mark_attempt_failed(
    conn: &mut Conn,
    id: i64,
    error: &str,
    retry_at: Option<i64>,
) -> Result<(), StoreError> {
    match retry_at {
        Some(at) => {
            sqlx::query(
                "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = $2, \
                 claimed_until = NULL, last_error = $3 WHERE id = $1 AND status = 'pending'",
            )
            .bind(id)
            .bind(at)
            .bind(error)
            .execute(conn)
            .await?;
        }
        None => {
            sqlx::query(
                "UPDATE outbox SET status = 'failed', attempts = attempts + 1, \
                 claimed_until = NULL, last_error = $2 WHERE id = $1 AND status = 'pending'",
            )
            .bind(id)
            .bind(error)
            .execute(conn)
            .await?;
        }
    }
    Ok(())
}

/// One line of `outbox list`.
#[derive(Clone, Debug, serde::Serialize, sqlx::FromRow)]
pub struct OutboxEntry {
    pub id: i64,
    pub key: String,
    pub kind: String,
    pub family: Option<String>,
    #[sqlx(try_from = "StringList")]
    pub recipients: Vec<String>,
    #[sqlx(try_from = "StringList")]
    pub cc: Vec<String>,
    pub subject: String,
    pub status: String,
    pub attempts: i64,
    pub created_at: i64,
    pub next_attempt_at: i64,
    pub sent_at: Option<i64>,
    pub last_error: Option<String>,
}

pub async fn list(conn: &mut Conn, failed_only: bool) -> Result<Vec<OutboxEntry>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT id, key, kind, family_ref AS family, recipients, cc, subject, status, attempts, \
         created_at, next_attempt_at, sent_at, last_error FROM outbox \
         WHERE ($1 = 0 OR status = 'failed') ORDER BY id",
    )
    .bind(i64::from(failed_only))
    .fetch_all(conn)
    .await?)
}

/// When the latest message whose key starts with `key_prefix` was queued (e.g. a team's
/// previous digest), if any.
pub async fn last_queued(conn: &mut Conn, key_prefix: &str) -> Result<Option<i64>, StoreError> {
    let t: Option<i64> = sqlx::query_scalar(
        "SELECT MAX(created_at) FROM outbox WHERE substr(key, 1, length($1)) = $1",
    )
    .bind(key_prefix)
    .fetch_one(conn)
    .await?;
    Ok(t)
}

/// Messages about several families (a digest) that name this one and are no longer
/// pending: erasure drops their bodies too. A pending one is left to go out, since it also
/// serves other families; its body then goes after `mail.keep_sent`.
const NAMING_FAMILY: &str =
    "family_ref IS NULL AND status != 'pending' AND body LIKE '%' || $1 || '%'";

/// The keys of every message about a family (to find its copies in a mail folder).
pub async fn keys_of_family(conn: &mut Conn, family_ref: &str) -> Result<Vec<String>, StoreError> {
    Ok(sqlx::query_scalar(&format!(
        "SELECT key FROM outbox WHERE family_ref = $1 OR ({NAMING_FAMILY}) ORDER BY id"
    ))
    .bind(family_ref)
    .fetch_all(conn)
    .await?)
}

/// What erasure did to a family's messages.
#[derive(Clone, Copy, Debug, Default, serde::Serialize)]
pub struct MessagesErased {
    /// Pending messages that will now never be sent.
    pub cancelled: u64,
    /// Attachments (the age dossier of a handover) deleted.
    pub attachments_deleted: u64,
    /// Bodies (and subjects) dropped; the metadata rows (kind, times, status, team
    /// addresses) stay.
    pub bodies_dropped: u64,
}

/// Part of erasure: the family's pending messages are cancelled, their attachments deleted
/// and every subject and body dropped (subjects name due dates and the receiving
/// municipality of a move), in the caller's transaction. Digests that named the family
/// lose their bodies too.
pub async fn erase_family(
    conn: &mut Conn,
    family_ref: &str,
    now: i64,
) -> Result<MessagesErased, StoreError> {
    let cancelled = sqlx::query(
        "UPDATE outbox SET status = 'cancelled', claimed_until = NULL \
         WHERE family_ref = $1 AND status = 'pending'",
    )
    .bind(family_ref)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    let attachments_deleted = sqlx::query(
        "DELETE FROM outbox_attachments WHERE outbox_id IN \
         (SELECT id FROM outbox WHERE family_ref = $1)",
    )
    .bind(family_ref)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    let mut bodies_dropped = sqlx::query(
        "UPDATE outbox SET subject = '', body = '', body_dropped_at = COALESCE(body_dropped_at, $2) \
         WHERE family_ref = $1 AND (body_dropped_at IS NULL OR subject != '')",
    )
    .bind(family_ref)
    .bind(now)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    bodies_dropped += sqlx::query(&format!(
        "UPDATE outbox SET body = '', body_dropped_at = $2 \
         WHERE body_dropped_at IS NULL AND {NAMING_FAMILY}"
    ))
    .bind(family_ref)
    .bind(now)
    .execute(conn)
    .await?
    .rows_affected();
    Ok(MessagesErased {
        cancelled,
        attachments_deleted,
        bodies_dropped,
    })
}

/// Drops the bodies and attachments of messages sent on or before `cutoff` (the sweep,
/// after `mail.keep_sent`), keeping their metadata. Returns the bodies dropped.
pub async fn drop_sent_bodies(conn: &mut Conn, cutoff: i64, now: i64) -> Result<u64, StoreError> {
    sqlx::query(
        "DELETE FROM outbox_attachments WHERE outbox_id IN (SELECT id FROM outbox \
         WHERE status = 'sent' AND body_dropped_at IS NULL AND sent_at <= $1)",
    )
    .bind(cutoff)
    .execute(&mut *conn)
    .await?;
    let done = sqlx::query(
        "UPDATE outbox SET body = '', body_dropped_at = $2 \
         WHERE status = 'sent' AND body_dropped_at IS NULL AND sent_at <= $1",
    )
    .bind(cutoff)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}

/// Drops the body of message `id` at once, keeping its metadata: for a message whose text
/// is a secret spent by sending it (the one-time sign-in link).
pub async fn drop_body(conn: &mut Conn, id: i64, now: i64) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE outbox SET body = '', body_dropped_at = $2 WHERE id = $1 AND body_dropped_at IS NULL",
    )
    .bind(id)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// Messages of `kind` whose text is spent once `key` (a used link) or anything queued on
/// or before `cutoff` (an expired link) is: bodies dropped, and the ones still pending
/// cancelled, since they would only carry a dead link. Returns the bodies dropped.
pub async fn drop_spent(
    conn: &mut Conn,
    kind: &str,
    key: Option<&str>,
    cutoff: i64,
    now: i64,
) -> Result<u64, StoreError> {
    let done = sqlx::query(
        "UPDATE outbox SET body = '', body_dropped_at = $4, claimed_until = NULL, \
         status = CASE WHEN status = 'pending' THEN 'cancelled' ELSE status END \
         WHERE kind = $1 AND body_dropped_at IS NULL AND (key = $2 OR created_at <= $3)",
    )
    .bind(kind)
    .bind(key)
    .bind(cutoff)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}

/// Gives claims back without counting an attempt: a dispatch round that stopped early
/// (shutdown, time budget) leaves the rest for the next round instead of waiting out the
/// claim.
pub async fn release_claims(conn: &mut Conn, ids: &[i64]) -> Result<(), StoreError> {
    for id in ids {
        sqlx::query("UPDATE outbox SET claimed_until = NULL WHERE id = $1 AND status = 'pending'")
            .bind(id)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// Releases every claim at once. Only for a daemon starting on SQLite: the daemon lock
/// proves no other daemon holds a claim, so claims left by a killed process are stale.
pub async fn release_all_claims(conn: &mut Conn) -> Result<u64, StoreError> {
    let done = sqlx::query(
        "UPDATE outbox SET claimed_until = NULL WHERE status = 'pending' AND claimed_until IS NOT NULL",
    )
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}

/// Seconds since the oldest pending message was created (0 when none is pending), for
/// readiness and metrics.
pub async fn oldest_pending_age(conn: &mut Conn, now: i64) -> Result<i64, StoreError> {
    let oldest: Option<i64> =
        sqlx::query_scalar("SELECT MIN(created_at) FROM outbox WHERE status = 'pending'")
            .fetch_one(conn)
            .await?;
    Ok(oldest.map(|t| (now - t).max(0)).unwrap_or(0))
}
