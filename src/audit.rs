//! The append-only, hash-chained audit trail. Every read of personal data, every change,
//! every export, token use and denied attempt appends an entry (references and codes only)
//! whose hash covers the previous entry's hash, so an edited, deleted or reordered entry is
//! found by `nazorg audit verify`. Entries are appended inside the transaction of the change
//! they record.

use crate::store::{Conn, StoreError};
use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::Row;

/// Who acted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Actor {
    /// The operator at the command line.
    Operator,
    /// The daemon itself (sweep, retention).
    System,
    /// An API token, by its id (never the secret).
    Token(String),
    /// An API request without a valid token.
    Anonymous,
}

impl Actor {
    pub fn label(&self) -> String {
        match self {
            Actor::Operator => "operator".into(),
            Actor::System => "system".into(),
            Actor::Token(id) => id.clone(),
            Actor::Anonymous => "anonymous".into(),
        }
    }
}

/// One entry to append.
#[derive(Clone, Debug, Default)]
pub struct Entry<'a> {
    pub action: &'a str,
    pub family: Option<&'a str>,
    pub subject: Option<&'a str>,
    pub detail: Option<&'a str>,
}

fn field(h: &mut Sha256, v: &[u8]) {
    h.update((v.len() as u64).to_be_bytes());
    h.update(v);
}

fn entry_hash(prev: &[u8], seq: i64, at: i64, actor: &str, e: &Entry<'_>) -> Vec<u8> {
    let mut h = Sha256::new();
    h.update(b"nazorg/audit/v1");
    field(&mut h, prev);
    h.update(seq.to_be_bytes());
    h.update(at.to_be_bytes());
    field(&mut h, actor.as_bytes());
    field(&mut h, e.action.as_bytes());
    for opt in [e.family, e.subject, e.detail] {
        match opt {
            Some(v) => {
                h.update([1]);
                field(&mut h, v.as_bytes());
            }
            None => h.update([0]),
        }
    }
    h.finalize().to_vec()
}

/// Appends an entry in the caller's (write) transaction.
pub async fn append(
    conn: &mut Conn,
    actor: &Actor,
    at: i64,
    e: &Entry<'_>,
) -> Result<i64, StoreError> {
    let last = sqlx::query("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1")
        .fetch_optional(&mut *conn)
        .await?;
    let (prev_seq, prev_hash): (i64, Vec<u8>) = match last {
        Some(r) => (r.try_get(0)?, r.try_get(1)?),
        None => (0, vec![0u8; 32]),
    };
    let seq = prev_seq + 1;
    let actor = actor.label();
    let hash = entry_hash(&prev_hash, seq, at, &actor, e);
    sqlx::query(
        "INSERT INTO audit (seq, at, actor, action, family_ref, subject, detail, prev_hash, hash) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(seq)
    .bind(at)
    .bind(&actor)
    .bind(e.action)
    .bind(e.family)
    .bind(e.subject)
    .bind(e.detail)
    .bind(&prev_hash)
    .bind(&hash)
    .execute(conn)
    .await?;
    Ok(seq)
}

#[derive(Debug, Serialize)]
pub struct AuditLine {
    pub seq: i64,
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub family: Option<String>,
    pub subject: Option<String>,
    pub detail: Option<String>,
}

struct Stored {
    line: AuditLine,
    prev_hash: Vec<u8>,
    hash: Vec<u8>,
}

fn stored(r: &sqlx::any::AnyRow) -> Result<Stored, StoreError> {
    Ok(Stored {
        line: AuditLine {
            seq: r.try_get(0)?,
            at: r.try_get(1)?,
            actor: r.try_get(2)?,
            action: r.try_get(3)?,
            family: r.try_get(4)?,
            subject: r.try_get(5)?,
            detail: r.try_get(6)?,
        },
        prev_hash: r.try_get(7)?,
        hash: r.try_get(8)?,
    })
}

const SELECT: &str =
    "SELECT seq, at, actor, action, family_ref, subject, detail, prev_hash, hash FROM audit";

pub async fn list(conn: &mut Conn, family: Option<&str>) -> Result<Vec<AuditLine>, StoreError> {
    let sql = format!("{SELECT} WHERE ($1 IS NULL OR family_ref = $1) ORDER BY seq");
    let rows = sqlx::query(&sql).bind(family).fetch_all(conn).await?;
    rows.iter().map(|r| Ok(stored(r)?.line)).collect()
}

/// What `audit verify` found.
#[derive(Debug, Serialize)]
pub struct Verification {
    pub entries: u64,
    /// Hex SHA-256 of the last entry: record it elsewhere to detect a cut-off tail later.
    pub head: String,
    pub problems: Vec<String>,
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Walks the chain from the first entry; names every entry that was edited, removed or
/// moved.
pub async fn verify(conn: &mut Conn) -> Result<Verification, StoreError> {
    let sql = format!("{SELECT} ORDER BY seq");
    let rows = sqlx::query(&sql).fetch_all(conn).await?;
    let mut problems = Vec::new();
    let mut expected_prev = vec![0u8; 32];
    let mut expected_seq = 1;
    let mut entries = 0;
    for r in &rows {
        let s = stored(r)?;
        let l = &s.line;
        entries += 1;
        if l.seq != expected_seq {
            problems.push(format!(
                "entries {expected_seq}..{} are missing (deleted)",
                l.seq - 1
            ));
        } else if s.prev_hash != expected_prev {
            problems.push(format!(
                "entry {} does not follow entry {}: an entry was deleted, replaced or moved",
                l.seq,
                l.seq - 1
            ));
        }
        let entry = Entry {
            action: &l.action,
            family: l.family.as_deref(),
            subject: l.subject.as_deref(),
            detail: l.detail.as_deref(),
        };
        let recomputed = entry_hash(&s.prev_hash, l.seq, l.at, &l.actor, &entry);
        if recomputed != s.hash {
            problems.push(format!(
                "entry {} was edited (its hash does not match its content)",
                l.seq
            ));
        }
        expected_prev = s.hash.clone();
        expected_seq = l.seq + 1;
    }
    Ok(Verification {
        entries,
        head: hex(&expected_prev),
        problems,
    })
}
