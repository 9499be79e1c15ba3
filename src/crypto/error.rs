//! The one error type of the crypto module.
//!
//! Invariant: no variant holds plaintext, ciphertext or key material. Paths, family
//! references, table and column names are allowed; a rejected recipient string is
//! reduced to its first 8 characters.

use std::path::PathBuf;

/// Everything that can go wrong while handling identities and keys or sealing fields.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    /// The identity file does not exist.
    #[error(
        "age identity file {} does not exist; restore it from your backup, or for a new installation create one with `nazorg keygen --out {}` (under systemd, pass it with LoadCredential=nazorg.key:…)",
        .path.display(),
        .path.display()
    )]
    IdentityMissing {
        /// Where the identity was looked for.
        path: PathBuf,
    },

    /// The identity file can be read or written by group or others.
    #[error(
        "age identity file {} is accessible by group or others (mode {:03o}); \
         fix with: chmod 600 {}",
        .path.display(),
        .mode & 0o777,
        .path.display()
    )]
    IdentityPermissions {
        /// The identity file.
        path: PathBuf,
        /// Its permission bits (`st_mode & 0o7777`).
        mode: u32,
    },

    /// The identity file could not be read or does not hold one age X25519 secret key.
    #[error("age identity file {} cannot be used: {reason}", .path.display())]
    IdentityUnreadable {
        /// The identity file.
        path: PathBuf,
        /// Why; never contains the file's content.
        reason: String,
    },

    /// `keygen` refuses to overwrite an existing file.
    #[error("age identity file {} already exists; refusing to overwrite it", .path.display())]
    IdentityExists {
        /// The existing file.
        path: PathBuf,
    },

    /// Writing a new identity file failed (the partial file was removed).
    #[error("cannot write age identity file {}: {source}", .path.display())]
    IdentityWrite {
        /// The identity file.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },

    /// A string is not an age X25519 recipient (`age1…`).
    #[error("not an age X25519 recipient (value starts with {value_prefix:?}); expected age1…")]
    BadRecipient {
        /// At most the first 8 characters of the rejected value.
        value_prefix: String,
    },

    /// The KEK must be wrapped to at least one recipient.
    #[error("the key-encryption key needs at least one age recipient")]
    NoRecipients,

    /// age refused to produce the KEK file.
    #[error("cannot wrap the key-encryption key with age: {reason}")]
    KekWrap {
        /// age's reason; never contains key material.
        reason: String,
    },

    /// age refused to encrypt a file (a dossier) to a recipient.
    #[error("cannot encrypt with age: {reason}")]
    Encrypt {
        /// age's reason; never contains the plaintext.
        reason: String,
    },

    /// The KEK file does not open: wrong identity, or a truncated or corrupted file.
    #[error(
        "the key-encryption key does not open with this identity \
         (wrong identity, or the KEK file is truncated or corrupted)"
    )]
    KekUnwrap,

    /// The KEK file opened but does not hold exactly 32 bytes.
    #[error("the age file opened, but it does not hold a 32-byte key-encryption key")]
    KekMalformed,

    /// A family's wrapped data key does not open under this KEK.
    #[error(
        "the data key of family {family} does not open under this key-encryption key \
         (wrong KEK, wrong family, or truncated or corrupted)"
    )]
    DekUnwrap {
        /// The family reference.
        family: String,
    },

    /// A sealed field does not open at this place.
    #[error(
        "field {table}.{column} of family {family} does not open \
         (wrong key or place, or truncated or corrupted)"
    )]
    FieldOpen {
        /// The family reference.
        family: String,
        /// The table.
        table: String,
        /// The column.
        column: String,
    },

    /// A field value is beyond what XChaCha20-Poly1305 can seal in one message (256 GiB).
    #[error("field {table}.{column} of family {family} is too large to seal")]
    FieldTooLarge {
        /// The family reference.
        family: String,
        /// The table.
        table: String,
        /// The column.
        column: String,
    },

    /// Any other I/O error.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}
