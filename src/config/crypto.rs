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
