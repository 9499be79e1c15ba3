//! age X25519 identity files: create, load (with a permission check), parse recipients.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use age::secrecy::ExposeSecret;
use age::x25519::{Identity, Recipient};
use zeroize::Zeroizing;

use super::CryptoError;

/// An identity file is a few hundred bytes; refuse to read more than this.
const MAX_IDENTITY_FILE: u64 = 64 * 1024;

/// How many characters of a rejected recipient an error may show.
const RECIPIENT_PREFIX_CHARS: usize = 8;

const SECRET_KEY_PREFIX: &str = "AGE-SECRET-KEY-1";

/// Creates a new age X25519 identity at `path` and returns its public recipient (`age1…`).
///
/// The file is in the format of `age-keygen` (`# created:` and `# public key:` comment
/// lines, then the `AGE-SECRET-KEY-1…` line), created with mode 0600. An existing file
/// is never overwritten ([`CryptoError::IdentityExists`]); if writing fails, the partial
/// file is removed.
pub fn keygen(path: &Path) -> Result<String, CryptoError> {
    let identity = Identity::generate();
    let recipient = identity.to_public().to_string();
    let created = chrono::Local::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);

    let mut contents = Zeroizing::new(String::with_capacity(256));
    contents.push_str("# created: ");
    contents.push_str(&created);
    contents.push_str("\n# public key: ");
    contents.push_str(&recipient);
    contents.push('\n');
    contents.push_str(identity.to_string().expose_secret());
    contents.push('\n');

    let mut file = match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            return Err(CryptoError::IdentityExists {
                path: path.to_path_buf(),
            });
        }
        Err(source) => {
            return Err(CryptoError::IdentityWrite {
                path: path.to_path_buf(),
                source,
            });
        }
    };

    let written = file
        .write_all(contents.as_bytes())
        .and_then(|()| file.sync_all());
    drop(file);
    if let Err(source) = written {
        // Best effort: a half-written identity is worse than none. The removal error,
        // if any, is less useful than the write error we report.
        let _ = fs::remove_file(path);
        return Err(CryptoError::IdentityWrite {
            path: path.to_path_buf(),
            source,
        });
    }
    sync_parent_dir(path);

    Ok(recipient)
}

/// Best effort: make the new directory entry durable. Failure is not fatal (the file
/// content itself was synced), so it is ignored.
fn sync_parent_dir(path: &Path) {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if let Ok(dir) = File::open(parent) {
        let _ = dir.sync_all();
    }
}

/// Loads the age X25519 identity at `path`.
///
/// Refuses a missing file, a file that group or others may access (`mode & 0o077 != 0`),
/// and a file that does not hold exactly one `AGE-SECRET-KEY-1…` line (blank lines and
/// `#` comments are skipped). Error messages never echo the file's content.
pub fn load_identity(path: &Path) -> Result<Identity, CryptoError> {
    let unreadable = |reason: String| CryptoError::IdentityUnreadable {
        path: path.to_path_buf(),
        reason,
    };

    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(CryptoError::IdentityMissing {
                path: path.to_path_buf(),
            });
        }
        Err(e) => return Err(unreadable(e.to_string())),
    };

    // Check the permissions of the file we actually opened, not of the path again.
    let meta = file.metadata().map_err(|e| unreadable(e.to_string()))?;
    if !meta.is_file() {
        return Err(unreadable("not a regular file".to_owned()));
    }
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(CryptoError::IdentityPermissions {
            path: path.to_path_buf(),
            mode,
        });
    }

    let mut raw = Zeroizing::new(Vec::new());
    file.take(MAX_IDENTITY_FILE + 1)
        .read_to_end(&mut raw)
        .map_err(|e| unreadable(e.to_string()))?;
    if raw.len() as u64 > MAX_IDENTITY_FILE {
        return Err(unreadable(format!(
            "larger than {MAX_IDENTITY_FILE} bytes, not an age identity file"
        )));
    }
    let text = std::str::from_utf8(&raw).map_err(|_| unreadable("not UTF-8 text".to_owned()))?;

    let mut found: Option<Identity> = None;
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line_no = index + 1;
        if !line.starts_with(SECRET_KEY_PREFIX) {
            return Err(unreadable(format!(
                "line {line_no} is neither a comment nor an age X25519 secret key \
                 (AGE-SECRET-KEY-1…); plugin and SSH identities are not supported"
            )));
        }
        let identity: Identity = line.parse().map_err(|_| {
            unreadable(format!(
                "line {line_no} is not a valid age X25519 secret key"
            ))
        })?;
        if found.is_some() {
            return Err(unreadable(
                "holds more than one secret key; expected exactly one".to_owned(),
            ));
        }
        found = Some(identity);
    }
    found.ok_or_else(|| unreadable("holds no age X25519 secret key".to_owned()))
}

/// Parses an age X25519 recipient (`age1…`); surrounding whitespace is ignored.
///
/// The error shows at most the first 8 characters of `s`.
pub fn parse_recipient(s: &str) -> Result<Recipient, CryptoError> {
    s.trim().parse().map_err(|_| CryptoError::BadRecipient {
        value_prefix: s.trim().chars().take(RECIPIENT_PREFIX_CHARS).collect(),
    })
}

/// Encrypts `plaintext` to one recipient as a standard binary age file, readable with
/// `age -d -i IDENTITY`. Synchronous (X25519 and ChaCha20): run it on a blocking thread.
pub fn encrypt_to(recipient: &Recipient, plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
    let encryptor =
        age::Encryptor::with_recipients(std::iter::once(recipient as &dyn age::Recipient))
            .map_err(|e| CryptoError::Encrypt {
                reason: e.to_string(),
            })?;
    let io_err = |e: io::Error| CryptoError::Encrypt {
        reason: e.kind().to_string(),
    };
    let mut out = Vec::with_capacity(plaintext.len() + 512);
    let mut writer = encryptor.wrap_output(&mut out).map_err(io_err)?;
    writer.write_all(plaintext).map_err(io_err)?;
    writer.finish().map_err(io_err)?;
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use std::fs::Permissions;

    fn identity_of(path: &Path) -> Identity {
        match load_identity(path) {
            Ok(id) => id,
            Err(e) => panic!("load_identity failed: {e}"),
        }
    }

    fn load_err(path: &Path) -> CryptoError {
        match load_identity(path) {
            Ok(_) => panic!("load_identity unexpectedly succeeded"),
            Err(e) => e,
        }
    }

    #[test]
    fn keygen_writes_0600_in_age_keygen_format_and_loads_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("identity.txt");
        let recipient = keygen(&path).unwrap();
        assert!(recipient.starts_with("age1"));

        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o600);

        let text = fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].starts_with("# created: "));
        assert_eq!(lines[1], format!("# public key: {recipient}"));
        assert!(lines[2].starts_with("AGE-SECRET-KEY-1"));

        let identity = identity_of(&path);
        assert_eq!(identity.to_public().to_string(), recipient);
        assert_eq!(parse_recipient(&recipient).unwrap().to_string(), recipient);
    }

    #[test]
    fn keygen_refuses_to_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("identity.txt");
        let first = keygen(&path).unwrap();
        let before = fs::read(&path).unwrap();
        let err = keygen(&path).unwrap_err();
        assert!(matches!(err, CryptoError::IdentityExists { .. }), "{err:?}");
        assert_eq!(fs::read(&path).unwrap(), before);
        assert_eq!(identity_of(&path).to_public().to_string(), first);
    }

    #[test]
    fn load_identity_refuses_missing_file() {
        let dir = tempfile::tempdir().unwrap();
        let err = load_err(&dir.path().join("nope.txt"));
        assert!(
            matches!(err, CryptoError::IdentityMissing { .. }),
            "{err:?}"
        );
    }

    #[test]
    fn load_identity_refuses_mode_0644_and_says_how_to_fix() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("identity.txt");
        keygen(&path).unwrap();
        let secret_line = fs::read_to_string(&path)
            .unwrap()
            .lines()
            .last()
            .unwrap()
            .to_owned();
        fs::set_permissions(&path, Permissions::from_mode(0o644)).unwrap();

        let err = load_err(&path);
        assert!(
            matches!(err, CryptoError::IdentityPermissions { mode: 0o644, .. }),
            "{err:?}"
        );
        let msg = err.to_string();
        assert!(
            msg.contains(&format!("chmod 600 {}", path.display())),
            "{msg}"
        );
        assert!(msg.contains("644"), "{msg}");
        assert!(!msg.contains(&secret_line));
        assert!(!format!("{err:?}").contains(&secret_line));

        // Group-only access is refused as well; 0600 and 0400 load.
        fs::set_permissions(&path, Permissions::from_mode(0o640)).unwrap();
        assert!(matches!(
            load_err(&path),
            CryptoError::IdentityPermissions { .. }
        ));
        fs::set_permissions(&path, Permissions::from_mode(0o400)).unwrap();
        identity_of(&path);
    }

    #[test]
    fn load_identity_refuses_garbage_without_echoing_it() {
        let dir = tempfile::tempdir().unwrap();
        let marker = "PLAINTEXT-MARKER-7f3a";
        let key_a = Identity::generate().to_string();
        let key_b = Identity::generate().to_string();
        let (key_a, key_b) = (key_a.expose_secret(), key_b.expose_secret());
        let cases: [(&str, Vec<u8>); 5] = [
            ("text", format!("# comment\n{marker} hello\n").into_bytes()),
            ("empty", b"# only a comment\n\n".to_vec()),
            (
                "bad-key",
                format!("AGE-SECRET-KEY-1{marker}QQQQQQQQQQQQ\n").into_bytes(),
            ),
            ("binary", vec![0xff, 0xfe, 0x00, 0x9c, 0x42]),
            ("two-keys", format!("{key_a}\n{key_b}\n").into_bytes()),
        ];
        for (name, content) in cases {
            let path = dir.path().join(name);
            fs::write(&path, &content).unwrap();
            fs::set_permissions(&path, Permissions::from_mode(0o600)).unwrap();
            let err = load_err(&path);
            assert!(
                matches!(err, CryptoError::IdentityUnreadable { .. }),
                "{name}: {err:?}"
            );
            let shown = format!("{err} {err:?}");
            for secret in [marker, "hello", &key_a[16..], &key_b[16..]] {
                assert!(!shown.contains(secret), "{name}: {shown}");
            }
        }
    }

    #[test]
    fn load_identity_skips_comments_and_blank_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("identity.txt");
        let identity = Identity::generate();
        let text = format!(
            "\n# a comment\n\n   {}   \n\n# trailing\n",
            identity.to_string().expose_secret()
        );
        fs::write(&path, text).unwrap();
        fs::set_permissions(&path, Permissions::from_mode(0o600)).unwrap();
        assert_eq!(
            identity_of(&path).to_public().to_string(),
            identity.to_public().to_string()
        );
    }

    #[test]
    fn parse_recipient_rejects_nonsense_and_empty() {
        for bad in [
            "age1nonsense",
            "",
            "   ",
            "AGE-SECRET-KEY-1QQQQ",
            "ssh-ed25519 AAAA",
        ] {
            let err = parse_recipient(bad).unwrap_err();
            let CryptoError::BadRecipient { value_prefix } = &err else {
                panic!("{err:?}");
            };
            assert!(value_prefix.chars().count() <= 8);
        }
        let err = parse_recipient("age1nonsense-and-a-long-tail-SECRET").unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("\"age1nons\""), "{msg}");
        assert!(!msg.contains("SECRET"), "{msg}");
        // Multi-byte characters are cut on character boundaries, never mid-byte.
        let err = parse_recipient("ééééééééééé").unwrap_err();
        assert!(
            matches!(err, CryptoError::BadRecipient { value_prefix } if value_prefix == "éééééééé")
        );
    }
}
