//! The key-encryption key (KEK), the per-family data keys (DEK) and sealed fields.
//!
//! Wire formats (all integers big-endian):
//!
//! * KEK file: a standard binary age file whose plaintext is the 32 key bytes.
//! * Wrapped DEK: `0x01 || nonce[24] || XChaCha20-Poly1305(KEK, dek[32])`, associated
//!   data `u64 len || "nazorg/dek" || 0x01 || u64 len || family`.
//! * Sealed field: `0x01 || nonce[24] || XChaCha20-Poly1305(DEK, value)`, associated
//!   data `u64 len || "nazorg/field" || 0x01 || u64 len || family || u64 len || table ||
//!   u64 len || column || u64 len || row`. The length prefixes make the encoding
//!   injective, so a value cannot be moved to another place, not even one whose
//!   concatenated names happen to be equal.

use std::fmt;
use std::io::{Read, Write};

use chacha20poly1305::aead::{Aead, AeadCore, AeadInPlace, KeyInit, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use rand::RngCore;
use rand::rngs::OsRng;
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, Zeroizing};

use super::CryptoError;

/// Length of the KEK and of every DEK, in bytes.
const KEY_LEN: usize = 32;
/// XChaCha20 nonce length.
const NONCE_LEN: usize = 24;
/// Poly1305 tag length.
const TAG_LEN: usize = 16;

/// Format version of a wrapped DEK.
const DEK_WRAP_V1: u8 = 1;
/// Format version of a sealed field.
const FIELD_V1: u8 = 1;

const DEK_DOMAIN: &[u8] = b"nazorg/dek";
const FIELD_DOMAIN: &[u8] = b"nazorg/field";

/// HMAC-SHA256 built from SHA-256 (RFC 2104), 64-byte blocks; pads are zeroized.
fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut block = Zeroizing::new([0u8; 64]);
    if key.len() > 64 {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let mut ipad = Zeroizing::new([0x36u8; 64]);
    let mut opad = Zeroizing::new([0x5cu8; 64]);
    for i in 0..64 {
        ipad[i] ^= block[i];
        opad[i] ^= block[i];
    }
    let inner = Sha256::new()
        .chain_update(&ipad[..])
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(&opad[..])
        .chain_update(inner)
        .finalize()
        .into()
}

/// 32 key bytes on the heap, so that moving a key moves only a pointer; zeroized on drop.
struct KeyBytes(Box<[u8; KEY_LEN]>);

impl KeyBytes {
    fn random() -> Self {
        let mut key = KeyBytes(Box::new([0u8; KEY_LEN]));
        OsRng.fill_bytes(&mut key.0[..]);
        key
    }

    /// Copies `bytes` if it is exactly 32 bytes long.
    fn from_slice(bytes: &[u8]) -> Option<Self> {
        if bytes.len() != KEY_LEN {
            return None;
        }
        let mut key = KeyBytes(Box::new([0u8; KEY_LEN]));
        key.0.copy_from_slice(bytes);
        Some(key)
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        // The cipher zeroizes its copy of the key when dropped.
        XChaCha20Poly1305::new(Key::from_slice(&self.0[..]))
    }
}

impl Drop for KeyBytes {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

/// Seals `plaintext` as `version || nonce || ciphertext+tag`.
///
/// Fails only if the plaintext exceeds the XChaCha20-Poly1305 limit of 256 GiB.
fn seal_with(key: &KeyBytes, version: u8, aad: &[u8], plaintext: &[u8]) -> Option<Vec<u8>> {
    let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
    let mut out = Vec::with_capacity(1 + NONCE_LEN + plaintext.len() + TAG_LEN);
    out.push(version);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(plaintext);
    // The capacity above is exact, so the plaintext copy is encrypted where it lies and
    // no reallocation leaves a stray copy behind.
    match key
        .cipher()
        .encrypt_in_place_detached(&nonce, aad, &mut out[1 + NONCE_LEN..])
    {
        Ok(tag) => {
            out.extend_from_slice(&tag);
            Some(out)
        }
        Err(_) => {
            out.zeroize();
            None
        }
    }
}

/// Opens `version || nonce || ciphertext+tag`; `None` on any mismatch, never a panic.
fn open_with(key: &KeyBytes, version: u8, aad: &[u8], sealed: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    let (&found_version, rest) = sealed.split_first()?;
    if found_version != version || rest.len() < NONCE_LEN + TAG_LEN {
        return None;
    }
    let (nonce, body) = rest.split_at_checked(NONCE_LEN)?;
    let plaintext = key
        .cipher()
        .decrypt(XNonce::from_slice(nonce), Payload { msg: body, aad })
        .ok()?;
    Some(Zeroizing::new(plaintext))
}

/// Appends `len(part) as u64 || part`.
fn push_part(out: &mut Vec<u8>, part: &[u8]) {
    out.extend_from_slice(&(part.len() as u64).to_be_bytes());
    out.extend_from_slice(part);
}

fn dek_aad(family: &str) -> Vec<u8> {
    let mut aad = Vec::with_capacity(8 + DEK_DOMAIN.len() + 1 + 8 + family.len());
    push_part(&mut aad, DEK_DOMAIN);
    aad.push(DEK_WRAP_V1);
    push_part(&mut aad, family.as_bytes());
    aad
}

/// 256-bit key-encryption key. Lives in memory only and is zeroized on drop; its
/// `Debug` shows no key bytes.
pub struct Kek(KeyBytes);

impl fmt::Debug for Kek {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Kek(<redacted>)")
    }
}

impl Kek {
    /// A fresh random KEK from the operating system's CSPRNG.
    pub fn generate() -> Kek {
        Kek(KeyBytes::random())
    }

    /// SHA-256 of the key bytes: lets an operator or a test check that two copies of the
    /// KEK are the same without showing the key.
    pub fn fingerprint(&self) -> [u8; 32] {
        Sha256::digest(&self.0.0[..]).into()
    }

    /// The KEK as a standard binary age file encrypted to every recipient, readable with
    /// `age -d -i IDENTITY`. At least one recipient is required.
    pub fn wrap_for(&self, recipients: &[age::x25519::Recipient]) -> Result<Vec<u8>, CryptoError> {
        if recipients.is_empty() {
            return Err(CryptoError::NoRecipients);
        }
        let encryptor =
            age::Encryptor::with_recipients(recipients.iter().map(|r| r as &dyn age::Recipient))
                .map_err(|e| CryptoError::KekWrap {
                    reason: e.to_string(),
                })?;
        let io_err = |e: std::io::Error| CryptoError::KekWrap {
            reason: e.to_string(),
        };
        let mut out = Vec::with_capacity(512);
        let mut writer = encryptor.wrap_output(&mut out).map_err(io_err)?;
        writer.write_all(&self.0.0[..]).map_err(io_err)?;
        writer.finish().map_err(io_err)?;
        Ok(out)
    }

    /// Opens a KEK file made by [`Kek::wrap_for`] (or by `age -r RECIPIENT`) with
    /// `identity`. The plaintext must be exactly 32 bytes.
    pub fn unwrap_with(
        age_file: &[u8],
        identity: &age::x25519::Identity,
    ) -> Result<Kek, CryptoError> {
        let decryptor =
            age::Decryptor::new_buffered(age_file).map_err(|_| CryptoError::KekUnwrap)?;
        let reader = decryptor
            .decrypt(std::iter::once(identity as &dyn age::Identity))
            .map_err(|_| CryptoError::KekUnwrap)?;
        // Read one byte more than a key, so that a longer file is noticed without
        // reading all of it.
        let mut plaintext = Zeroizing::new(Vec::with_capacity(KEY_LEN + 1));
        reader
            .take(KEY_LEN as u64 + 1)
            .read_to_end(&mut plaintext)
            .map_err(|_| CryptoError::KekUnwrap)?;
        KeyBytes::from_slice(&plaintext)
            .map(Kek)
            .ok_or(CryptoError::KekMalformed)
    }

    /// Wraps a family's data key under this KEK (XChaCha20-Poly1305, family reference as
    /// associated data): `0x01 || nonce[24] || ciphertext+tag` (73 bytes).
    pub fn wrap_dek(&self, dek: &Dek, family: &str) -> Vec<u8> {
        match seal_with(&self.0, DEK_WRAP_V1, &dek_aad(family), &dek.0.0[..]) {
            Some(wrapped) => wrapped,
            // 32 bytes of plaintext are far below the 256 GiB limit of the AEAD.
            None => unreachable!("XChaCha20-Poly1305 cannot fail on a 32-byte plaintext"),
        }
    }

    /// Unwraps a data key made by [`Kek::wrap_dek`] for the same family.
    ///
    /// A wrong KEK, wrong family, or truncated or corrupted input gives
    /// [`CryptoError::DekUnwrap`].
    pub fn unwrap_dek(&self, wrapped: &[u8], family: &str) -> Result<Dek, CryptoError> {
        open_with(&self.0, DEK_WRAP_V1, &dek_aad(family), wrapped)
            .and_then(|plaintext| KeyBytes::from_slice(&plaintext))
            .map(Dek)
            .ok_or_else(|| CryptoError::DekUnwrap {
                family: family.to_owned(),
            })
    }
}

/// Where a sealed value lives. All four parts are bound to the ciphertext, so a value
/// only opens at the place it was sealed for.
#[derive(Clone, Copy, Debug)]
pub struct FieldPlace<'a> {
    /// The family reference.
    pub family: &'a str,
    /// The table.
    pub table: &'a str,
    /// The column.
    pub column: &'a str,
    /// The row's stable key (not its content).
    pub row: &'a str,
}

impl FieldPlace<'_> {
    fn aad(&self) -> Vec<u8> {
        let mut aad = Vec::new();
        self.aad_into(&mut aad);
        aad
    }

    /// Writes the associated data into `aad` (cleared first), so a bulk reader can reuse
    /// one buffer.
    fn aad_into(&self, aad: &mut Vec<u8>) {
        let parts = [self.family, self.table, self.column, self.row];
        let len = FIELD_DOMAIN.len() + 1 + parts.iter().map(|p| 8 + p.len()).sum::<usize>() + 8;
        aad.clear();
        aad.reserve(len);
        push_part(aad, FIELD_DOMAIN);
        aad.push(FIELD_V1);
        for part in parts {
            push_part(aad, part.as_bytes());
        }
    }

    fn open_error(&self) -> CryptoError {
        CryptoError::FieldOpen {
            family: self.family.to_owned(),
            table: self.table.to_owned(),
            column: self.column.to_owned(),
        }
    }
}

/// 256-bit data key of one family. Zeroized on drop; its `Debug` shows no key bytes.
pub struct Dek(KeyBytes);

impl fmt::Debug for Dek {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Dek(<redacted>)")
    }
}

impl Dek {
    /// A fresh random data key from the operating system's CSPRNG.
    pub fn generate() -> Dek {
        Dek(KeyBytes::random())
    }

    /// Seals `plaintext` for `place`: `0x01 || random nonce[24] || ciphertext+tag`.
    ///
    /// # Panics
    ///
    /// Only if `plaintext` is larger than 256 GiB, the limit of XChaCha20-Poly1305 for
    /// one message (far beyond anything SQLite can store). Use [`Dek::try_seal`] where
    /// the size is not bounded.
    pub fn seal(&self, plaintext: &[u8], place: &FieldPlace) -> Vec<u8> {
        match self.try_seal(plaintext, place) {
            Ok(sealed) => sealed,
            Err(e) => panic!("{e}"),
        }
    }

    /// Like [`Dek::seal`], but a value beyond the 256 GiB AEAD limit gives
    /// [`CryptoError::FieldTooLarge`] instead of a panic.
    pub fn try_seal(&self, plaintext: &[u8], place: &FieldPlace) -> Result<Vec<u8>, CryptoError> {
        seal_with(&self.0, FIELD_V1, &place.aad(), plaintext).ok_or_else(|| {
            CryptoError::FieldTooLarge {
                family: place.family.to_owned(),
                table: place.table.to_owned(),
                column: place.column.to_owned(),
            }
        })
    }

    /// Opens a value sealed by [`Dek::seal`] for the same place.
    ///
    /// Any failure (wrong key or place, unknown version, truncated or corrupted input)
    /// gives [`CryptoError::FieldOpen`].
    pub fn open(
        &self,
        sealed: &[u8],
        place: &FieldPlace,
    ) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        open_with(&self.0, FIELD_V1, &place.aad(), sealed).ok_or_else(|| place.open_error())
    }

    /// HMAC-SHA256 (RFC 2104) of `message` under this key: the research export's
    /// pseudonyms, keyed by a one-off or a per-study key. The key bytes never leave.
    pub fn hmac_sha256(&self, message: &[u8]) -> [u8; 32] {
        hmac_sha256(&self.0.0[..], message)
    }

    /// A keyed HMAC-SHA256 (the `hmac` crate) under this key, to be fed in parts and checked
    /// in constant time: the audit chain's MAC. The key bytes never leave.
    pub fn mac(&self) -> hmac::Hmac<Sha256> {
        use hmac::Mac;
        match <hmac::Hmac<Sha256> as Mac>::new_from_slice(&self.0.0[..]) {
            Ok(mac) => mac,
            // HMAC accepts keys of every length.
            Err(_) => unreachable!("HMAC-SHA256 accepts a 32-byte key"),
        }
    }

    /// [`Dek::seal`] for a string (its UTF-8 bytes).
    pub fn seal_str(&self, s: &str, place: &FieldPlace) -> Vec<u8> {
        self.seal(s.as_bytes(), place)
    }

    /// [`Dek::open`] for a value sealed with [`Dek::seal_str`]; a value that is not UTF-8
    /// gives [`CryptoError::FieldOpen`] too.
    pub fn open_string(
        &self,
        sealed: &[u8],
        place: &FieldPlace,
    ) -> Result<Zeroizing<String>, CryptoError> {
        let mut bytes = self.open(sealed, place)?;
        match String::from_utf8(std::mem::take(&mut *bytes)) {
            Ok(s) => Ok(Zeroizing::new(s)),
            Err(e) => {
                e.into_bytes().zeroize();
                Err(place.open_error())
            }
        }
    }
}

/// Opens many sealed fields one after the other into one reused buffer: the research
/// export opens millions of small values, and a fresh allocation for each value's
/// associated data, ciphertext copy and plaintext cost as much as the decryption itself.
/// Each plaintext lives in the buffer until the next [`FieldOpener::open`]; the buffer's
/// whole capacity is zeroized when the opener is dropped.
#[derive(Default)]
pub struct FieldOpener {
    aad: Vec<u8>,
    plaintext: Zeroizing<Vec<u8>>,
}

impl FieldOpener {
    pub fn new() -> Self {
        Self::default()
    }

    /// [`Dek::open`] into this opener's buffer: the same checks, the same errors.
    pub fn open(
        &mut self,
        dek: &Dek,
        sealed: &[u8],
        place: &FieldPlace,
    ) -> Result<&[u8], CryptoError> {
        place.aad_into(&mut self.aad);
        let body = match sealed.split_first() {
            Some((&FIELD_V1, rest)) if rest.len() >= NONCE_LEN + TAG_LEN => rest,
            _ => return Err(place.open_error()),
        };
        let (nonce, ciphertext) = body.split_at(NONCE_LEN);
        let (ciphertext, tag) = ciphertext.split_at(ciphertext.len() - TAG_LEN);
        // The buffer only ever holds this opener's plaintexts; zeroized on drop.
        self.plaintext.clear();
        self.plaintext.extend_from_slice(ciphertext);
        dek.0
            .cipher()
            .decrypt_in_place_detached(
                XNonce::from_slice(nonce),
                &self.aad,
                &mut self.plaintext[..],
                chacha20poly1305::Tag::from_slice(tag),
            )
            .map_err(|_| place.open_error())?;
        Ok(&self.plaintext[..])
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use age::x25519::Identity;

    const MARKER: &str = "PLAINTEXT-MARKER-Jansen-0612345678";

    #[test]
    fn export_hmac_matches_rfc4231() {
        let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
        // RFC 4231 test case 2 (short key) and 6 (key longer than a block).
        assert_eq!(
            hex(&hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(
            hex(&hmac_sha256(
                &[0xaa; 131],
                b"Test Using Larger Than Block-Size Key - Hash Key First"
            )),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    fn place<'a>(family: &'a str, table: &'a str, column: &'a str, row: &'a str) -> FieldPlace<'a> {
        FieldPlace {
            family,
            table,
            column,
            row,
        }
    }

    fn here() -> FieldPlace<'static> {
        place("F-2024-0042", "persons", "name", "17")
    }

    fn open_err(dek: &Dek, sealed: &[u8], at: &FieldPlace) -> CryptoError {
        match dek.open(sealed, at) {
            Ok(_) => panic!("opened at {at:?}"),
            Err(e) => e,
        }
    }

    fn assert_no_marker(e: &CryptoError) {
        let shown = format!("{e} {e:?}");
        assert!(!shown.contains(MARKER), "{shown}");
        assert!(!shown.contains("Jansen"), "{shown}");
    }

    #[test]
    fn seal_open_roundtrip_0_16_4096_bytes() {
        let dek = Dek::generate();
        for len in [0usize, 16, 4096] {
            let plaintext: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
            let sealed = dek.seal(&plaintext, &here());
            assert_eq!(sealed.len(), 1 + NONCE_LEN + len + TAG_LEN);
            assert_eq!(sealed[0], FIELD_V1);
            if len >= 16 {
                assert!(!sealed.windows(16).any(|w| w == &plaintext[..16]));
            }
            let opened = dek.open(&sealed, &here()).unwrap();
            assert_eq!(&opened[..], &plaintext[..]);
        }
    }

    /// The bulk opener accepts exactly what `Dek::open` accepts, with the same plaintext,
    /// and refuses the same moved, truncated, tampered or foreign-key values.
    #[test]
    fn field_opener_agrees_with_open() {
        let dek = Dek::generate();
        let mut opener = FieldOpener::new();
        for len in [0usize, 16, 4096, 3] {
            let plaintext: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
            let sealed = dek.seal(&plaintext, &here());
            assert_eq!(opener.open(&dek, &sealed, &here()).unwrap(), &plaintext[..]);
        }
        let sealed = dek.seal_str(MARKER, &here());
        let mut tampered = sealed.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        let mut wrong_version = sealed.clone();
        wrong_version[0] = 2;
        let other = Dek::generate();
        let refused: [(&Dek, &[u8], FieldPlace); 6] = [
            (&dek, &sealed, place("F-2024-0042", "persons", "nam", "e17")),
            (&dek, &sealed[..sealed.len() - 1], here()),
            (&dek, &sealed[..1 + NONCE_LEN + TAG_LEN - 1], here()),
            (&dek, &tampered, here()),
            (&dek, &wrong_version, here()),
            (&other, &sealed, here()),
        ];
        for (key, bytes, at) in &refused {
            assert!(key.open(bytes, at).is_err());
            let err = opener.open(key, bytes, at).unwrap_err();
            assert!(matches!(err, CryptoError::FieldOpen { .. }), "{err:?}");
            assert_no_marker(&err);
        }
        assert_eq!(
            opener.open(&dek, &sealed, &here()).unwrap(),
            MARKER.as_bytes()
        );
    }

    #[test]
    fn nonces_are_random() {
        let dek = Dek::generate();
        let a = dek.seal(b"same", &here());
        let b = dek.seal(b"same", &here());
        assert_ne!(a, b);
    }

    #[test]
    fn string_roundtrip_and_non_utf8_is_field_open() {
        let dek = Dek::generate();
        let sealed = dek.seal_str(MARKER, &here());
        assert_eq!(dek.open_string(&sealed, &here()).unwrap().as_str(), MARKER);

        let sealed = dek.seal(&[0xff, 0xfe, 0x80], &here());
        let err = dek.open_string(&sealed, &here()).unwrap_err();
        assert!(matches!(err, CryptoError::FieldOpen { .. }), "{err:?}");
    }

    #[test]
    fn moved_values_do_not_open() {
        let dek = Dek::generate();
        let sealed = dek.seal_str(MARKER, &here());
        let elsewhere = [
            place("F-2024-0042", "persons", "name", "18"),
            place("F-2024-0042", "persons", "phone", "17"),
            place("F-2024-0042", "contacts", "name", "17"),
            place("F-2024-0043", "persons", "name", "17"),
            // Same concatenation of names, different split: the length prefixes matter.
            place("F-2024-0042p", "ersons", "name", "17"),
            place("F-2024-0042", "personsname", "", "17"),
            place("F-2024-0042", "persons", "nam", "e17"),
        ];
        for at in &elsewhere {
            let err = open_err(&dek, &sealed, at);
            assert!(matches!(err, CryptoError::FieldOpen { .. }), "{err:?}");
            assert_no_marker(&err);
        }
        // And another family's key does not open it at the right place either.
        let other = Dek::generate();
        let err = open_err(&other, &sealed, &here());
        assert!(matches!(err, CryptoError::FieldOpen { .. }));
    }

    #[test]
    fn truncated_and_flipped_ciphertexts_fail_with_field_open() {
        let dek = Dek::generate();
        let sealed = dek.seal_str(MARKER, &here());
        for len in 0..sealed.len() {
            let err = open_err(&dek, &sealed[..len], &here());
            assert!(
                matches!(err, CryptoError::FieldOpen { .. }),
                "len {len}: {err:?}"
            );
        }
        for byte in 0..sealed.len() {
            for bit in 0..8 {
                let mut bad = sealed.clone();
                bad[byte] ^= 1 << bit;
                let err = open_err(&dek, &bad, &here());
                assert!(matches!(err, CryptoError::FieldOpen { .. }));
            }
        }
        let mut longer = sealed.clone();
        longer.push(0);
        open_err(&dek, &longer, &here());

        let err = open_err(&dek, &sealed[..10], &here());
        let msg = err.to_string();
        assert!(msg.contains("persons.name"), "{msg}");
        assert!(msg.contains("F-2024-0042"), "{msg}");
        assert!(
            !msg.contains("17"),
            "row must not be needed in the message: {msg}"
        );
        assert_no_marker(&err);
    }

    #[test]
    fn dek_wrap_unwrap_and_wrong_family_or_kek_fails() {
        let kek = Kek::generate();
        let dek = Dek::generate();
        let wrapped = kek.wrap_dek(&dek, "F-1");
        assert_eq!(wrapped.len(), 1 + NONCE_LEN + KEY_LEN + TAG_LEN);
        assert_eq!(wrapped[0], DEK_WRAP_V1);

        let back = kek.unwrap_dek(&wrapped, "F-1").unwrap();
        let sealed = dek.seal_str(MARKER, &here());
        assert_eq!(back.open_string(&sealed, &here()).unwrap().as_str(), MARKER);

        let err = kek.unwrap_dek(&wrapped, "F-2").unwrap_err();
        assert!(matches!(&err, CryptoError::DekUnwrap { family } if family == "F-2"));
        assert!(err.to_string().contains("F-2"));
        assert!(matches!(
            Kek::generate().unwrap_dek(&wrapped, "F-1"),
            Err(CryptoError::DekUnwrap { .. })
        ));
        for len in 0..wrapped.len() {
            assert!(matches!(
                kek.unwrap_dek(&wrapped[..len], "F-1"),
                Err(CryptoError::DekUnwrap { .. })
            ));
        }
        let mut bad = wrapped.clone();
        bad[40] ^= 0x20;
        assert!(kek.unwrap_dek(&bad, "F-1").is_err());
        // A sealed field is not a wrapped DEK, even with the right key and length.
        let as_field = kek_as_dek(&kek).seal(&[7u8; KEY_LEN], &here());
        assert!(kek.unwrap_dek(&as_field, "F-1").is_err());
    }

    fn kek_as_dek(kek: &Kek) -> Dek {
        Dek(KeyBytes::from_slice(&kek.0.0[..]).unwrap())
    }

    #[test]
    fn kek_wraps_to_two_recipients_and_not_a_third() {
        let a = Identity::generate();
        let b = Identity::generate();
        let c = Identity::generate();
        let kek = Kek::generate();
        let file = kek.wrap_for(&[a.to_public(), b.to_public()]).unwrap();
        assert!(file.starts_with(b"age-encryption.org/v1\n"));

        for id in [&a, &b] {
            let back = Kek::unwrap_with(&file, id).unwrap();
            assert_eq!(back.fingerprint(), kek.fingerprint());
        }
        let err = Kek::unwrap_with(&file, &c).unwrap_err();
        assert!(matches!(err, CryptoError::KekUnwrap), "{err:?}");
        assert!(
            err.to_string()
                .contains("the key-encryption key does not open with this identity")
        );
        assert_ne!(Kek::generate().fingerprint(), kek.fingerprint());
    }

    #[test]
    fn kek_needs_a_recipient() {
        let err = Kek::generate().wrap_for(&[]).unwrap_err();
        assert!(matches!(err, CryptoError::NoRecipients));
    }

    #[test]
    fn truncated_or_garbage_kek_file_gives_kek_unwrap() {
        let id = Identity::generate();
        let file = Kek::generate().wrap_for(&[id.to_public()]).unwrap();
        for len in [0, 1, 20, file.len() / 2, file.len() - 17, file.len() - 1] {
            let err = Kek::unwrap_with(&file[..len], &id).unwrap_err();
            assert!(matches!(err, CryptoError::KekUnwrap), "len {len}: {err:?}");
        }
        let mut flipped = file.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert!(matches!(
            Kek::unwrap_with(&flipped, &id),
            Err(CryptoError::KekUnwrap)
        ));
        assert!(matches!(
            Kek::unwrap_with(MARKER.as_bytes(), &id),
            Err(CryptoError::KekUnwrap)
        ));
    }

    #[test]
    fn age_file_of_wrong_length_is_kek_malformed() {
        let id = Identity::generate();
        for len in [0usize, 31, 33, 1000] {
            let plaintext = vec![1u8; len];
            let file = age::encrypt(&id.to_public(), &plaintext).unwrap();
            let err = Kek::unwrap_with(&file, &id).unwrap_err();
            assert!(
                matches!(err, CryptoError::KekMalformed),
                "len {len}: {err:?}"
            );
        }
        let file = age::encrypt(&id.to_public(), &[9u8; 32]).unwrap();
        let kek = Kek::unwrap_with(&file, &id).unwrap();
        let expected: [u8; 32] = Sha256::digest([9u8; 32]).into();
        assert_eq!(kek.fingerprint(), expected);
    }

    #[test]
    fn debug_output_shows_no_key_bytes() {
        let kek = Kek::generate();
        let dek = Dek::generate();
        assert_eq!(format!("{kek:?}"), "Kek(<redacted>)");
        assert_eq!(format!("{dek:?}"), "Dek(<redacted>)");
    }

    #[test]
    fn error_messages_carry_no_plaintext() {
        let dek = Dek::generate();
        let kek = Kek::generate();
        let sealed = dek.seal_str(MARKER, &here());
        let wrapped = kek.wrap_dek(&dek, "F-2024-0042");
        let errors = vec![
            dek.open(&sealed, &place("F-2024-0042", "persons", "name", "99"))
                .unwrap_err(),
            dek.open_string(&sealed[..30], &here()).unwrap_err(),
            kek.unwrap_dek(&wrapped, "F-other").unwrap_err(),
            Kek::unwrap_with(&sealed, &Identity::generate()).unwrap_err(),
            CryptoError::FieldTooLarge {
                family: "F".into(),
                table: "t".into(),
                column: "c".into(),
            },
        ];
        for err in &errors {
            assert_no_marker(err);
            // Nor any 8-byte window of the ciphertext, in hex or raw.
            let shown = format!("{err} {err:?}");
            let hex: String = sealed[1..9].iter().map(|b| format!("{b:02x}")).collect();
            assert!(!shown.contains(&hex), "{shown}");
        }
    }
}
