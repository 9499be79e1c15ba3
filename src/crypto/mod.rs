//! Envelope encryption of personal fields.
//!
//! Three layers, from the outside in:
//!
//! 1. An age X25519 **identity** on disk (mode 0600), owned by the operator
//!    ([`keygen`], [`load_identity`], [`parse_recipient`]).
//! 2. A 256-bit **key-encryption key** ([`Kek`]), kept only in memory and stored as a
//!    standard binary age file encrypted to one or more recipients, so that
//!    `age -d -i IDENTITY` can recover it without Nazorg.
//! 3. A 256-bit **data key per family** ([`Dek`]), stored wrapped under the KEK with
//!    XChaCha20-Poly1305 and the family reference as associated data; it seals each
//!    personal field with XChaCha20-Poly1305, bound to its place
//!    (family, table, column, row) through the associated data.
//!
//! Errors ([`CryptoError`]) never carry plaintext, ciphertext or key material; they
//! name at most a path, a family reference, a table and a column.
//!
//! The age functions are plain synchronous code (X25519 and file I/O); async callers
//! should run them on a blocking thread.

mod error;
mod identity;
mod keys;

pub use error::CryptoError;
pub use identity::{encrypt_to, keygen, load_identity, parse_recipient};
pub use keys::{Dek, FieldOpener, FieldPlace, Kek};
