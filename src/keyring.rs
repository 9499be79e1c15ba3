//! The daemon's keys at run time: the age identity on disk (or systemd credential) unwraps
//! the key-encryption key once at start; the KEK then unwraps each family's data key.

use crate::config::CryptoConfig;
use crate::crypto::{self, CryptoError, Dek, Kek};
use crate::store::{self, Store, StoreError};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum KeyringError {
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("key work was interrupted: {0}")]
    Join(String),
}

/// The unwrapped KEK in memory (zeroized on drop) and its id in the database.
pub struct Keyring {
    kek_id: i64,
    kek: Kek,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Keyring(kek {})", self.kek_id)
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

impl Keyring {
    /// Loads the identity (creating it first when the config allows), then unwraps the KEK,
    /// creating and storing the first KEK on a new database. The X25519 work runs off the
    /// async threads.
    pub async fn open(
        cfg: &CryptoConfig,
        store: &Store,
        now: i64,
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
            tokio::task::spawn_blocking(move || crypto::load_identity(&path))
                .await
                .map_err(|e| KeyringError::Join(e.to_string()))??
        };
        let mut tx = store.write().await?;
        let (kek_id, kek) = match store::keys::current(&mut tx).await? {
            Some(stored) => {
                let kek = tokio::task::spawn_blocking(move || {
                    Kek::unwrap_with(&stored.wrapped, &identity)
                })
                .await
                .map_err(|e| KeyringError::Join(e.to_string()))??;
                (stored.id, kek)
            }
            None => {
                let mut recipients = vec![identity.to_public()];
                for r in &cfg.recipients {
                    recipients.push(crypto::parse_recipient(r)?);
                }
                let kek = Kek::generate();
                let (kek, wrapped) = tokio::task::spawn_blocking(move || {
                    let wrapped = kek.wrap_for(&recipients);
                    (kek, wrapped)
                })
                .await
                .map_err(|e| KeyringError::Join(e.to_string()))?;
                let id = store::keys::insert(&mut tx, &wrapped?, now).await?;
                (id, kek)
            }
        };
        tx.commit().await.map_err(StoreError::from)?;
        Ok(Keyring { kek_id, kek })
    }

    pub fn kek_id(&self) -> i64 {
        self.kek_id
    }

    pub fn wrap_dek(&self, dek: &Dek, family: &str) -> Vec<u8> {
        self.kek.wrap_dek(dek, family)
    }

    pub fn unwrap_dek(&self, wrapped: &[u8], family: &str) -> Result<Dek, CryptoError> {
        self.kek.unwrap_dek(wrapped, family)
    }
}
