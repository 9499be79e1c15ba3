//! Root must not open a SQLite database that another user owns: what root writes next to it
//! (the write-ahead log, the daemon lock, a new database file) would belong to root, and the
//! service user could no longer open its own database. Admin commands run as the owner
//! instead, the way systemd/README.md shows with `systemd-run`.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Why a command refuses to go on: root (effective uid 0) on a database owned by `uid`.
#[derive(Debug)]
pub struct ForeignOwner {
    /// The database file, or the folder it would be created in.
    pub path: PathBuf,
    pub uid: u32,
    /// The owner's login name from /etc/passwd, when it has one.
    pub user: Option<String>,
}

impl std::fmt::Display for ForeignOwner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = self.user.clone().unwrap_or_else(|| self.uid.to_string());
        write!(
            f,
            "refusing to run as root on {}, which belongs to {name} (uid {}): files root \
             writes there (the write-ahead log, the lock) would shut that user out of its own \
             database. Run the command as {name}, as systemd/README.md shows:\n  \
             systemd-run --pipe --wait -q -p User={name} -p Group={name} \
             -p LoadCredential=nazorg.key:/etc/nazorg/credentials/nazorg.key \
             -p Environment=NAZORG_IDENTITY_FILE=%d/nazorg.key -p StateDirectory=nazorg \
             /usr/bin/nazorg --config /etc/nazorg/nazorg.toml COMMAND",
            self.path.display(),
            self.uid,
        )
    }
}

/// Refuses root on a database file owned by another user, or, before the file exists, on
/// the folder it would be created in. Anyone else may go on (the file system decides).
pub fn refuse_root_on_foreign(file: &Path, folder: &Path) -> Result<(), ForeignOwner> {
    if effective_uid() != 0 {
        return Ok(());
    }
    let folder = if folder.as_os_str().is_empty() {
        Path::new(".")
    } else {
        folder
    };
    let target = if file.exists() { file } else { folder };
    let Ok(meta) = std::fs::metadata(target) else {
        return Ok(());
    };
    match meta.uid() {
        0 => Ok(()),
        uid => Err(ForeignOwner {
            path: target.to_path_buf(),
            uid,
            user: user_name(uid),
        }),
    }
}

fn effective_uid() -> u32 {
    // SAFETY: geteuid takes no arguments, cannot fail and touches no memory of ours.
    unsafe { libc::geteuid() }
}

/// The login name of `uid` from /etc/passwd (`name:x:uid:…`).
fn user_name(uid: u32) -> Option<String> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        let id: u32 = fields.nth(1)?.parse().ok()?;
        (id == uid).then(|| name.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_has_a_name() {
        assert_eq!(user_name(0).as_deref(), Some("root"));
    }

    #[test]
    fn the_refusal_names_the_owner_and_the_way_out() {
        let text = ForeignOwner {
            path: PathBuf::from("/var/lib/nazorg/nazorg.db"),
            uid: 998,
            user: Some("nazorg".into()),
        }
        .to_string();
        assert!(text.contains("belongs to nazorg (uid 998)"), "{text}");
        assert!(text.contains("systemd-run --pipe"), "{text}");
        assert!(text.contains("-p User=nazorg"), "{text}");
    }
}
