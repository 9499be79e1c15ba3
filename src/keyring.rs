//! The daemon's keys at run time. The age identity (file, or systemd credential) unwraps
//! key-encryption keys; a KEK unwraps each family's data key. KEKs are unwrapped once and
//! kept in memory (zeroized on drop); one created by a rotation in another process is
//! loaded from the database the first time a family needs it.

use crate::config::CryptoConfig;
use crate::crypto::{self, CryptoError, Dek, Kek};
use crate::store::{self, Conn, Store, StoreError};
use age::x25519::Identity;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

#[derive(Debug, thiserror::Error)]
pub enum KeyringError {
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("key work was interrupted: {0}")]
    Join(String),
    #[error("key-encryption key {0} is not in the database (retired or missing)")]
    UnknownKek(i64),
}

pub struct Keyring {
    identity: Identity,
    /// `crypto.recipients`: wrapped to as well when the first KEK is made.
    extra_recipients: Vec<String>,
    keks: RwLock<HashMap<i64, Arc<Kek>>>,
    /// The unwrapped audit key, with the wrapped bytes it came from (a rotation rewraps it;
    /// the key itself never changes).
    audit: RwLock<Option<(Vec<u8>, Arc<AuditKey>)>>,
    /// The audit entry this process appended last (see `audit::append`).
    last_entry: std::sync::Mutex<Option<LastEntry>>,
}

/// An audit entry as appended: its number, its MAC and the key that made it. The next
/// append chains to it without reading the head, if it is still the head then.
#[derive(Clone)]
pub struct LastEntry {
    pub seq: i64,
    pub hash: Vec<u8>,
    pub key: Arc<AuditKey>,
}

/// The key of the audit chain's MAC and the first entry it covers (entries before it are
/// plain SHA-256, written before the installation had an audit key).
pub struct AuditKey {
    pub key: Dek,
    pub first_seq: i64,
}

/// The associated data an audit key is wrapped with: binds `first_seq`, so it cannot be
/// moved to pass keyed entries off as plain ones.
pub fn audit_key_label(first_seq: i64) -> String {
    format!("audit:{first_seq}")
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Keyring(<redacted>)")
    }
}

/// The identity file in force: systemd's `$CREDENTIALS_DIRECTORY/nazorg.key` when present,
/// else `crypto.identity_file`.
pub fn identity_path(cfg: &CryptoConfig) -> PathBuf {
    if let Some(dir) = std::env::var_os("CREDENTIALS_DIRECTORY") {
        let p = Path::new(&dir).join("nazorg.key");
        if p.exists() {
            return p;
        }
    }
    cfg.identity_file.clone()
}

/// Runs X25519/scrypt-free but still CPU-bound age work off the async threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, KeyringError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| KeyringError::Join(e.to_string()))
}

/// Unwraps an age-wrapped KEK with the identity.
pub async fn unwrap_kek(identity: &Identity, wrapped: Vec<u8>) -> Result<Kek, KeyringError> {
    let identity = identity.clone();
    Ok(blocking(move || Kek::unwrap_with(&wrapped, &identity)).await??)
}

/// Wraps a KEK to the given recipients (age file).
pub async fn wrap_kek(kek: Arc<Kek>, recipients: &[String]) -> Result<Vec<u8>, KeyringError> {
    let parsed = recipients
        .iter()
        .map(|r| crypto::parse_recipient(r))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(blocking(move || kek.wrap_for(&parsed)).await??)
}

impl Keyring {
    /// Loads the identity (creating it first when the config allows) and unwraps the
    /// current KEK, which proves at start that the identity is the right one. On a database
    /// without a KEK, `create_kek` makes the first one now (`serve`); otherwise the first
    /// enrolment makes it inside its own transaction, so a refused command writes nothing.
    pub async fn open(
        cfg: &CryptoConfig,
        store: &Store,
        now: i64,
        create_kek: bool,
    ) -> Result<Keyring, KeyringError> {
        let path = identity_path(cfg);
        if cfg.create_identity && !path.exists() {
            if let Some(parent) = path.parent() {
                crate::service::create_private_dir(parent).map_err(CryptoError::Io)?;
            }
            let recipient = crypto::keygen(&path)?;
            tracing::warn!(
                identity = %path.display(),
                %recipient,
                "created a new age identity: back it up offline now; without it no personal data in this database can ever be read again"
            );
        }
        let identity = {
            let path = path.clone();
            blocking(move || crypto::load_identity(&path)).await??
        };
        let mut extra_recipients = Vec::new();
        for r in &cfg.recipients {
            extra_recipients.push(crypto::parse_recipient(r)?.to_string());
        }
        let keyring = Keyring {
            identity,
            extra_recipients,
            keks: RwLock::new(HashMap::new()),
            audit: RwLock::new(None),
            last_entry: std::sync::Mutex::new(None),
        };
        if create_kek {
            let mut tx = store.write().await?;
            keyring.current(&mut tx, now).await?;
            tx.commit().await?;
        } else {
            let mut conn = store.conn().await?;
            if let Some(stored) = store::keys::current(&mut conn).await? {
                keyring.kek(&mut conn, stored.id).await?;
            }
        }
        Ok(keyring)
    }

    /// The audit entry this process appended last, if any (it may have been rolled back,
    /// or followed by another process's: the append checks).
    pub fn last_entry(&self) -> Option<LastEntry> {
        match self.last_entry.lock() {
            Ok(l) => l.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    pub fn remember_entry(&self, entry: LastEntry) {
        match self.last_entry.lock() {
            Ok(mut l) => *l = Some(entry),
            Err(poisoned) => *poisoned.into_inner() = Some(entry),
        }
    }

    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    fn remember(&self, id: i64, kek: Arc<Kek>) {
        match self.keks.write() {
            Ok(mut m) => {
                m.insert(id, kek);
            }
            Err(poisoned) => {
                poisoned.into_inner().insert(id, kek);
            }
        }
    }

    fn cached(&self, id: i64) -> Option<Arc<Kek>> {
        match self.keks.read() {
            Ok(m) => m.get(&id).cloned(),
            Err(poisoned) => poisoned.into_inner().get(&id).cloned(),
        }
    }

    /// The KEK with this id, unwrapping it from the database on first use.
    pub async fn kek(&self, conn: &mut Conn, id: i64) -> Result<Arc<Kek>, KeyringError> {
        if let Some(k) = self.cached(id) {
            return Ok(k);
        }
        let stored = store::keys::by_id(conn, id)
            .await?
            .ok_or(KeyringError::UnknownKek(id))?;
        let kek = Arc::new(unwrap_kek(&self.identity, stored.wrapped).await?);
        self.remember(id, kek.clone());
        Ok(kek)
    }

    /// The KEK new data keys are wrapped with, as the database says now (a rotation in
    /// another process may have made a newer one). On a database without one, the first KEK
    /// is made and stored in the caller's transaction.
    pub async fn current(
        &self,
        conn: &mut Conn,
        now: i64,
    ) -> Result<(i64, Arc<Kek>), KeyringError> {
        if let Some(stored) = store::keys::current(conn).await? {
            let kek = self.kek(conn, stored.id).await?;
            return Ok((stored.id, kek));
        }
        let mut recipients = vec![self.identity.to_public().to_string()];
        for r in &self.extra_recipients {
            if !recipients.contains(r) {
                recipients.push(r.clone());
            }
        }
        let kek = Arc::new(Kek::generate());
        let wrapped = wrap_kek(kek.clone(), &recipients).await?;
        let id = store::keys::insert(conn, &wrapped, &recipients, now).await?;
        self.remember(id, kek.clone());
        Ok((id, kek))
    }

    /// The audit key as the database holds it now, unwrapped (cached by its wrapped bytes,
    /// so a key rolled back with its transaction is never used); `None` before the first
    /// keyed entry.
    pub async fn audit_key(&self, conn: &mut Conn) -> Result<Option<Arc<AuditKey>>, KeyringError> {
        let stored = store::keys::audit_key(conn).await?;
        self.audit_key_of(conn, stored).await
    }

    /// The audit key from its `stored` row (read by the caller, e.g. with the chain's head),
    /// unwrapped or from the cache; `None` before the first keyed entry.
    async fn audit_key_of(
        &self,
        conn: &mut Conn,
        stored: Option<store::keys::StoredAuditKey>,
    ) -> Result<Option<Arc<AuditKey>>, KeyringError> {
        let Some(stored) = stored else {
            return Ok(None);
        };
        let cached = match self.audit.read() {
            Ok(a) => a.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        if let Some((wrapped, key)) = cached
            && wrapped == stored.wrapped
            && key.first_seq == stored.first_seq
        {
            return Ok(Some(key));
        }
        let kek = self.kek(conn, stored.kek_id).await?;
        let key = Arc::new(AuditKey {
            key: kek.unwrap_dek(&stored.wrapped, &audit_key_label(stored.first_seq))?,
            first_seq: stored.first_seq,
        });
        let fresh = Some((stored.wrapped, key.clone()));
        match self.audit.write() {
            Ok(mut a) => *a = fresh,
            Err(poisoned) => *poisoned.into_inner() = fresh,
        }
        Ok(Some(key))
    }

    /// The audit key for appending entry `next_seq`. The first time (a new installation, or
    /// the first entry after the upgrade that introduced it) a random key is made, wrapped by
    /// the current KEK and stored in the caller's transaction, covering `next_seq` on.
    /// `stored`: the audit key's row as the caller's transaction holds it now.
    pub async fn audit_key_for_append(
        &self,
        conn: &mut Conn,
        stored: Option<store::keys::StoredAuditKey>,
        next_seq: i64,
        now: i64,
    ) -> Result<Arc<AuditKey>, KeyringError> {
        if let Some(key) = self.audit_key_of(conn, stored).await? {
            return Ok(key);
        }
        let (kek_id, kek) = self.current(conn, now).await?;
        let key = Dek::generate();
        let wrapped = kek.wrap_dek(&key, &audit_key_label(next_seq));
        store::keys::insert_audit_key(
            conn,
            &store::keys::StoredAuditKey {
                kek_id,
                wrapped,
                first_seq: next_seq,
            },
            now,
        )
        .await?;
        tracing::info!(
            first_seq = next_seq,
            "created the audit key: audit entries from here on carry a keyed MAC"
        );
        // Not cached: the next append reads it back once this transaction committed.
        Ok(Arc::new(AuditKey {
            key,
            first_seq: next_seq,
        }))
    }

    /// A family's data key.
    pub async fn dek(
        &self,
        conn: &mut Conn,
        kek_id: i64,
        wrapped: &[u8],
        family: &str,
    ) -> Result<Dek, KeyringError> {
        let kek = self.kek(conn, kek_id).await?;
        Ok(kek.unwrap_dek(wrapped, family)?)
    }
}
