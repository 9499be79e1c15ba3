//! `[crypto]`: the age identity and extra recipients of the key-encryption key.

use super::*;

#[derive(Debug, Deserialize)]
pub(super) struct RawCrypto {
    pub(super) identity_file: PathBuf,
    #[serde(default)]
    pub(super) create_identity: bool,
    #[serde(default)]
    pub(super) recipients: Vec<String>,
}

#[derive(Clone, Debug)]
pub struct CryptoConfig {
    pub identity_file: PathBuf,
    /// Create the identity on first start (embedded default only; production uses a
    /// systemd credential).
    pub create_identity: bool,
    /// Extra age recipients the key-encryption key is wrapped to (e.g. an offline recovery key).
    pub recipients: Vec<String>,
}

/// Checks `[crypto]`: every extra recipient is an age X25519 recipient.
pub(super) fn validate_crypto(raw: RawCrypto, base: &Path, is: &mut Issues) -> CryptoConfig {
    for (i, r) in raw.recipients.iter().enumerate() {
        if crate::crypto::parse_recipient(r).is_err() {
            is.push(
                format!("crypto.recipients[{i}]"),
                "not an age X25519 recipient (age1…)",
            );
        }
    }
    CryptoConfig {
        identity_file: resolve(base, &raw.identity_file),
        create_identity: raw.create_identity,
        recipients: raw.recipients,
    }
}
