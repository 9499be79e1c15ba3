//! The append-only, MAC-chained audit trail. Every read of personal data, every change,
//! every export, token use and denied attempt appends an entry (references and codes only)
//! whose HMAC-SHA256 under the audit key (random, wrapped by the KEK) covers the previous
//! entry's MAC, so an edited, deleted or reordered entry is found by `nazorg audit verify`,
//! even when someone with database access recomputed every hash: without the KEK they cannot
//! make a MAC. Database triggers refuse UPDATE and DELETE on the table; the head logged by
//! each sweep (`SEQ:MAC`) lets `audit verify --head` detect a removed tail. Entries are
//! appended inside the transaction of the change they record.
//!
//! Entries written before the audit key existed (an upgraded installation) keep their plain
//! SHA-256 hash (version 1): rows are immutable and are never re-chained. The first keyed
//! entry's MAC covers the last plain hash, so those entries are protected from then on.

use crate::keyring::{AuditKey, Keyring, KeyringError, LastEntry};
use crate::store::round_trip::{Script, Value};
use crate::store::{Conn, StoreError};
use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::digest::Update;
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
    /// A team member signed in to the workspace, by their member reference.
    Member(String),
}

impl Actor {
    pub fn label(&self) -> String {
        match self {
            Actor::Operator => "operator".into(),
            Actor::System => "system".into(),
            Actor::Token(id) => id.clone(),
            Actor::Anonymous => "anonymous".into(),
            Actor::Member(m) => m.clone(),
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

/// The audit entry of one API request (`api.request`, subject `METHOD /route`, detail the
/// status answered). A write route's operation appends it in its own transaction, just
/// before the commit (the API's [`crate::store::BeforeCommit`] hook), so a request that
/// changes something costs one write transaction; for every other request (reads,
/// refusals, errors) the API appends it afterwards.
#[derive(Debug)]
pub struct RequestEntry {
    pub subject: String,
    /// The status the committed entry names (0: none committed yet).
    written: std::sync::atomic::AtomicU16,
}

impl RequestEntry {
    pub fn new(subject: String) -> std::sync::Arc<RequestEntry> {
        std::sync::Arc::new(RequestEntry {
            subject,
            written: std::sync::atomic::AtomicU16::new(0),
        })
    }

    /// The status of this request's entry in a committed transaction, if one holds it.
    pub fn written(&self) -> Option<u16> {
        match self.written.load(std::sync::atomic::Ordering::Acquire) {
            0 => None,
            status => Some(status),
        }
    }

    pub(crate) fn mark_written(&self, status: u16) {
        self.written
            .store(status, std::sync::atomic::Ordering::Release);
    }
}

/// Chain format of an entry: `1` plain SHA-256 (entries written before the installation had
/// an audit key; anyone can recompute these), `2` HMAC-SHA256 under the audit key.
const PLAIN: i64 = 1;
const KEYED: i64 = 2;

fn field(h: &mut impl Update, v: &[u8]) {
    h.update(&(v.len() as u64).to_be_bytes());
    h.update(v);
}

/// Feeds an entry's canonical, length-prefixed encoding to a hash or a MAC.
fn encode(
    h: &mut impl Update,
    domain: &[u8],
    prev: &[u8],
    seq: i64,
    at: i64,
    actor: &str,
    e: &Entry<'_>,
) {
    h.update(domain);
    field(h, prev);
    h.update(&seq.to_be_bytes());
    h.update(&at.to_be_bytes());
    field(h, actor.as_bytes());
    field(h, e.action.as_bytes());
    for opt in [e.family, e.subject, e.detail] {
        match opt {
            Some(v) => {
                h.update(&[1]);
                field(h, v.as_bytes());
            }
            None => h.update(&[0]),
        }
    }
}

/// Version 1: plain SHA-256, as every entry before the audit key existed.
fn plain_hash(prev: &[u8], seq: i64, at: i64, actor: &str, e: &Entry<'_>) -> Vec<u8> {
    let mut h = Sha256::new();
    encode(&mut h, b"nazorg/audit/v1", prev, seq, at, actor, e);
    h.finalize().to_vec()
}

/// Version 2: HMAC-SHA256 under the audit key; nobody without the KEK can recompute it.
fn keyed_mac(
    key: &AuditKey,
    prev: &[u8],
    seq: i64,
    at: i64,
    actor: &str,
    e: &Entry<'_>,
) -> Hmac<Sha256> {
    let mut m = key.key.mac();
    encode(&mut m, b"nazorg/audit/v2", prev, seq, at, actor, e);
    m
}

fn key_error(e: KeyringError) -> StoreError {
    match e {
        KeyringError::Store(s) => s,
        other => StoreError::AuditKey(other.to_string()),
    }
}

/// Appends an entry in the caller's (write) transaction, MAC'd under the audit key (made on
/// first use): [`append_many`] of one.
pub async fn append(
    conn: &mut Conn,
    keys: &Keyring,
    actor: &Actor,
    at: i64,
    e: &Entry<'_>,
) -> Result<i64, StoreError> {
    let seqs = append_many(conn, keys, actor, &[(at, e.clone())]).await?;
    Ok(seqs.start)
}

/// Appends entries, in order and each at its own instant, in the caller's (write)
/// transaction, chained exactly as that many appends one by one would chain them. Answers
/// their sequence numbers.
///
/// When the chain's head is the entry this process appended last, the first entry is one
/// statement: an INSERT chained to that entry that applies only if the head's MAC is still
/// that entry's (a rolled-back append, or another process's since, make it a no-op). Else
/// the head and the audit key are read (one statement) and the entries chained to them.
/// The rest go in multi-row INSERTs (bulk enrolment appends a batch's entries so): the
/// caller's write transaction holds the write lock, so nothing appends in between.
pub async fn append_many(
    conn: &mut Conn,
    keys: &Keyring,
    actor: &Actor,
    entries: &[(i64, Entry<'_>)],
) -> Result<std::ops::Range<i64>, StoreError> {
    let Some(((first_at, first), rest)) = entries.split_first() else {
        return Ok(0..0);
    };
    let actor = actor.label();
    if let Some(last) = keys.last_entry() {
        let seq = last.seq + 1;
        let hash = mac_of(&last.key, &last.hash, seq, *first_at, &actor, first);
        let row = NewRow {
            seq,
            at: *first_at,
            e: first,
            prev_hash: &last.hash,
            hash: &hash,
        };
        if insert_after_head(conn, &actor, &row).await? {
            let end = insert_chained(conn, keys, &last.key, &actor, (seq, hash), rest).await?;
            return Ok(seq..end);
        }
    }
    // The chain's head and the audit key's row in one statement (one round trip on the
    // writer connection instead of two).
    let head = sqlx::query(
        "SELECT h.seq, h.hash, k.kek_id, k.wrapped_key, k.first_seq FROM (SELECT 1 AS one) x \
         LEFT JOIN (SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1) h ON 1 = 1 \
         LEFT JOIN audit_key k ON k.id = 1",
    )
    .fetch_one(&mut *conn)
    .await?;
    let prev: (i64, Vec<u8>) = match (head.try_get::<Option<i64>, _>(0)?, head.try_get(1)?) {
        (Some(seq), Some(hash)) => (seq, hash),
        _ => (0, vec![0u8; 32]),
    };
    let stored = match (head.try_get(2)?, head.try_get(3)?, head.try_get(4)?) {
        (Some(kek_id), Some(wrapped), Some(first_seq)) => {
            Some(crate::store::keys::StoredAuditKey {
                kek_id,
                wrapped,
                first_seq,
            })
        }
        _ => None,
    };
    let seq = prev.0 + 1;
    let key = keys
        .audit_key_for_append(conn, stored, seq, *first_at)
        .await
        .map_err(key_error)?;
    let end = insert_chained(conn, keys, &key, &actor, prev, entries).await?;
    Ok(seq..end)
}

fn mac_of(key: &AuditKey, prev: &[u8], seq: i64, at: i64, actor: &str, e: &Entry<'_>) -> Vec<u8> {
    keyed_mac(key, prev, seq, at, actor, e)
        .finalize()
        .into_bytes()
        .to_vec()
}

/// One keyed entry to insert.
struct NewRow<'a> {
    seq: i64,
    at: i64,
    e: &'a Entry<'a>,
    prev_hash: &'a [u8],
    hash: &'a [u8],
}

/// Inserts a keyed entry only if the head's MAC is its `prev_hash`; answers whether it did.
async fn insert_after_head(
    conn: &mut Conn,
    actor: &str,
    r: &NewRow<'_>,
) -> Result<bool, StoreError> {
    let mut s = Script::new();
    let row = Chained {
        seq: r.seq,
        at: r.at,
        prev_hash: r.prev_hash.to_vec(),
        hash: r.hash.to_vec(),
    };
    push_after_head(&mut s, actor.to_owned(), r.e, row);
    Ok(s.run(conn).await?.first() == Some(&1))
}

/// Where a new entry goes in the chain: its number and instant, the MAC it follows, its own.
struct Chained {
    seq: i64,
    at: i64,
    prev_hash: Vec<u8>,
    hash: Vec<u8>,
}

/// The statement of [`insert_after_head`], in a [`Script`].
fn push_after_head<'a>(s: &mut Script<'a>, actor: String, e: &Entry<'a>, r: Chained) -> usize {
    s.push(
        "INSERT INTO audit (seq, at, actor, action, family_ref, subject, detail, prev_hash, hash, version) \
         SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10 \
         WHERE (SELECT a.hash FROM audit a ORDER BY a.seq DESC LIMIT 1) = $8",
        vec![
            Value::int(r.seq),
            Value::int(r.at),
            Value::Text(Some(actor.into())),
            Value::text(e.action),
            Value::maybe_text(e.family),
            Value::maybe_text(e.subject),
            Value::maybe_text(e.detail),
            Value::Blob(r.prev_hash.into()),
            Value::Blob(r.hash.into()),
            Value::int(KEYED),
        ],
    )
}

/// An entry appended as a statement of the caller's [`Script`] (see [`push_append`]).
#[must_use = "the entry is only known appended once settled"]
pub struct Pushed {
    at: usize,
    next: LastEntry,
}

/// Adds the append of one entry to `script` when this process knows the chain's head: the
/// guarded INSERT of [`append_many`]'s first step, so the entry costs no round trip of its
/// own. `None` when the head is not known: then [`append`] it after the script. Whatever is
/// answered must be [`Pushed::settle`]d with the script's answer.
pub fn push_append<'a>(
    script: &mut Script<'a>,
    keys: &Keyring,
    actor: &Actor,
    at: i64,
    e: &Entry<'a>,
) -> Option<Pushed> {
    let last = keys.last_entry()?;
    let actor = actor.label();
    let seq = last.seq + 1;
    let hash = mac_of(&last.key, &last.hash, seq, at, &actor, e);
    let row = Chained {
        seq,
        at,
        prev_hash: last.hash.clone(),
        hash: hash.clone(),
    };
    let index = push_after_head(script, actor, e, row);
    Some(Pushed {
        at: index,
        next: LastEntry {
            seq,
            hash,
            key: last.key,
        },
    })
}

impl Pushed {
    /// After the script ran (`changed`: its answer): remembers the entry as the head, or,
    /// when the guard found another head (a rolled-back append, another process's entry),
    /// appends the entry the long way, as [`append`] would have.
    pub async fn settle(
        self,
        changed: &[u64],
        conn: &mut Conn,
        keys: &Keyring,
        actor: &Actor,
        at: i64,
        e: &Entry<'_>,
    ) -> Result<(), StoreError> {
        if changed.get(self.at) == Some(&1) {
            keys.remember_entry(self.next);
            return Ok(());
        }
        append(conn, keys, actor, at, e).await?;
        Ok(())
    }
}

/// Inserts `entries` chained after `prev` (its sequence number and MAC) in multi-row
/// statements, and remembers the last entry for the next append. Answers the sequence
/// number after the last one.
async fn insert_chained(
    conn: &mut Conn,
    keys: &Keyring,
    key: &std::sync::Arc<AuditKey>,
    actor: &str,
    prev: (i64, Vec<u8>),
    entries: &[(i64, Entry<'_>)],
) -> Result<i64, StoreError> {
    let (mut seq, mut prev_hash) = prev;
    // Each row: its sequence number, instant and entry, the MAC it follows and its own.
    let mut chained = Vec::with_capacity(entries.len());
    for (at, e) in entries {
        seq += 1;
        let hash = mac_of(key, &prev_hash, seq, *at, actor, e);
        chained.push((
            seq,
            *at,
            e,
            std::mem::replace(&mut prev_hash, hash.clone()),
            hash,
        ));
    }
    const COLS: usize = 10;
    for (chunk, values) in crate::store::rows::chunked(&chained, COLS) {
        let sql = format!(
            "INSERT INTO audit (seq, at, actor, action, family_ref, subject, detail, prev_hash, hash, version) \
             VALUES {values}"
        );
        let mut q = sqlx::query(&sql);
        for (seq, at, e, prev, hash) in chunk {
            q = q
                .bind(*seq)
                .bind(*at)
                .bind(actor)
                .bind(e.action)
                .bind(e.family)
                .bind(e.subject)
                .bind(e.detail)
                .bind(prev)
                .bind(hash)
                .bind(KEYED);
        }
        q.execute(&mut *conn).await?;
    }
    keys.remember_entry(LastEntry {
        seq,
        hash: prev_hash,
        key: key.clone(),
    });
    Ok(seq + 1)
}

/// The chain's head, `SEQ:MAC` in hex: what the sweep logs to the journal and
/// `audit verify --head` checks later. `None` while the trail is empty.
pub async fn head(conn: &mut Conn) -> Result<Option<Head>, StoreError> {
    let row = sqlx::query("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1")
        .fetch_optional(conn)
        .await?;
    row.map(|r| {
        Ok(Head {
            seq: r.try_get(0)?,
            mac: r.try_get(1)?,
        })
    })
    .transpose()
}

/// A chain head recorded elsewhere (the journal): an entry's sequence number and its MAC.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Head {
    pub seq: i64,
    pub mac: Vec<u8>,
}

impl std::fmt::Display for Head {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.seq, hex(&self.mac))
    }
}

impl std::str::FromStr for Head {
    type Err = String;

    /// `SEQ:MAC`, the MAC as 64 hex digits.
    fn from_str(s: &str) -> Result<Head, String> {
        let (seq, mac) = s
            .split_once(':')
            .ok_or("expected SEQ:MAC, e.g. 42:9f86d0…")?;
        let seq: i64 = seq
            .trim()
            .parse()
            .ok()
            .filter(|n| *n > 0)
            .ok_or("SEQ must be a positive entry number")?;
        let mac = mac.trim();
        if mac.len() != 64 || !mac.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err("MAC must be 64 hex digits".into());
        }
        let mac = (0..32)
            .map(|i| u8::from_str_radix(&mac[2 * i..2 * i + 2], 16))
            .collect::<Result<Vec<u8>, _>>()
            .map_err(|_| "MAC must be 64 hex digits".to_string())?;
        Ok(Head { seq, mac })
    }
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
    version: i64,
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
        version: r.try_get(9)?,
    })
}

const SELECT: &str = "SELECT seq, at, actor, action, family_ref, subject, detail, prev_hash, hash, version FROM audit";

pub async fn list(conn: &mut Conn, family: Option<&str>) -> Result<Vec<AuditLine>, StoreError> {
    let sql = format!("{SELECT} WHERE ($1 IS NULL OR family_ref = $1) ORDER BY seq");
    let rows = sqlx::query(&sql).bind(family).fetch_all(conn).await?;
    rows.iter().map(|r| Ok(stored(r)?.line)).collect()
}

/// What `audit verify` found.
#[derive(Debug, Serialize)]
pub struct Verification {
    pub entries: u64,
    /// `SEQ:MAC` of the last entry: record it elsewhere (the sweep logs it to the journal)
    /// and pass it to `--head` later to detect a removed tail or a rewritten chain.
    pub head: String,
    /// The first entry under the audit key; older entries are plain SHA-256.
    pub keyed_from: Option<i64>,
    /// The lowest-numbered entry found forged, removed or out of place.
    pub first_forged: Option<i64>,
    pub problems: Vec<String>,
}

impl Verification {
    fn forged(&mut self, seq: i64, problem: String) {
        self.first_forged = Some(self.first_forged.map_or(seq, |f| f.min(seq)));
        self.problems.push(problem);
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Walks the chain from the first entry; names every entry that was edited, removed or
/// moved. Entries from the audit key's `first_seq` on must carry a valid MAC (an attacker
/// without the KEK cannot make one); older ones a valid plain hash, and the first keyed
/// entry's MAC covers the last of those. With `head`, the entry `head.seq` must still exist
/// with exactly that MAC.
pub async fn verify(
    conn: &mut Conn,
    keys: &Keyring,
    head: Option<&Head>,
) -> Result<Verification, StoreError> {
    let key = keys.audit_key(&mut *conn).await.map_err(key_error)?;
    let sql = format!("{SELECT} ORDER BY seq");
    let rows = sqlx::query(&sql).fetch_all(conn).await?;
    let mut v = Verification {
        entries: 0,
        head: String::new(),
        keyed_from: key.as_ref().map(|k| k.first_seq),
        first_forged: None,
        problems: Vec::new(),
    };
    let mut expected_prev = vec![0u8; 32];
    let mut expected_seq = 1;
    let mut head_found = false;
    for r in &rows {
        let s = stored(r)?;
        let l = &s.line;
        v.entries += 1;
        if l.seq != expected_seq {
            v.forged(
                l.seq,
                format!(
                    "entries {expected_seq}..{} are missing (deleted)",
                    l.seq - 1
                ),
            );
        } else if s.prev_hash != expected_prev {
            v.forged(
                l.seq,
                format!(
                    "entry {} does not follow entry {}: an entry was deleted, replaced or moved",
                    l.seq,
                    l.seq - 1
                ),
            );
        }
        let entry = Entry {
            action: &l.action,
            family: l.family.as_deref(),
            subject: l.subject.as_deref(),
            detail: l.detail.as_deref(),
        };
        let must_be_keyed = key.as_ref().is_some_and(|k| l.seq >= k.first_seq);
        let intact = match (s.version, &key) {
            (KEYED, Some(k)) if must_be_keyed => {
                keyed_mac(k, &s.prev_hash, l.seq, l.at, &l.actor, &entry)
                    .verify_slice(&s.hash)
                    .is_ok()
            }
            (PLAIN, _) if !must_be_keyed => {
                plain_hash(&s.prev_hash, l.seq, l.at, &l.actor, &entry) == s.hash
            }
            _ => false,
        };
        if !intact {
            let problem = if key
                .as_ref()
                .is_some_and(|k| k.first_seq == l.seq && l.seq > 1)
            {
                format!(
                    "entry {} is forged, or a plain (unkeyed) entry before it was rewritten: its MAC covers them",
                    l.seq
                )
            } else {
                format!(
                    "entry {} is forged (its {} does not match its content)",
                    l.seq,
                    if must_be_keyed { "MAC" } else { "hash" }
                )
            };
            v.forged(l.seq, problem);
        }
        if let Some(h) = head
            && h.seq == l.seq
        {
            head_found = true;
            if h.mac != s.hash {
                v.forged(
                    l.seq,
                    format!(
                        "entry {} does not have the recorded head's MAC: the chain was rewritten",
                        l.seq
                    ),
                );
            }
        }
        expected_prev = s.hash.clone();
        expected_seq = l.seq + 1;
    }
    if let Some(k) = &key
        && k.first_seq >= expected_seq
    {
        v.forged(
            expected_seq,
            format!(
                "the audit key covers entries from {} on, but the trail ends at {}: the tail was removed",
                k.first_seq,
                expected_seq - 1
            ),
        );
    }
    if let Some(h) = head
        && !head_found
    {
        v.forged(
            expected_seq.min(h.seq),
            format!(
                "the recorded head entry {} is missing: entries from {expected_seq} on were removed",
                h.seq
            ),
        );
    }
    v.head = format!("{}:{}", expected_seq - 1, hex(&expected_prev));
    Ok(v)
}
