//! Issue 14 item 3: commands refuse to run as root on a SQLite database another user owns,
//! so root never leaves files (a write-ahead log, a lock, a migrated schema) the service
//! user cannot open. The CI runs as root; elsewhere the test says it is skipped.

use crate::support::env::*;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

const NOBODY: u32 = 65534;

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .is_some_and(|l| l.split_whitespace().nth(2) == Some("0"))
}

/// Names, sizes and owners of every file in `dir`: what a refused command must not change.
fn listing(dir: &Path) -> Vec<(String, u64, u32)> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let m = e.metadata().unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                m.len(),
                m.uid(),
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn root_is_refused_on_a_database_another_user_owns() {
    if !is_root() {
        eprintln!("skipped: the refusal concerns root, and this test does not run as root");
        return;
    }
    let env = TestEnv::new();
    if env.skip_on_postgres("the refusal concerns the SQLite file's owner") {
        return;
    }
    let body = family_body(AMSTERDAM, "standard", "2026-12-01", "OWNER1");
    env.enrol("2026-12-02T10:00:00+01:00", &body);
    let db = env.db_path();
    std::os::unix::fs::chown(&db, Some(NOBODY), Some(NOBODY)).unwrap();
    let var = db.parent().unwrap().to_path_buf();
    let before_bytes = std::fs::read(&db).unwrap();
    let before = listing(&var);
    let backup = env.path("copy.db");
    let backup_arg = backup.to_str().unwrap().to_string();

    let body_bytes =
        serde_json::to_vec(&family_body(AMSTERDAM, "standard", "2026-12-01", "OWNER2")).unwrap();
    let commands: Vec<(Vec<&str>, Option<&[u8]>)> = vec![
        (vec!["status"], None),
        (
            vec![
                "--at",
                "2026-12-03T10:00:00+01:00",
                "family",
                "enroll",
                "--file",
                "-",
            ],
            Some(&body_bytes),
        ),
        (vec!["--at", "2026-12-20T10:00:00+01:00", "sweep"], None),
        (vec!["migrate"], None),
        (vec!["backup", "--out", &backup_arg], None),
        (vec!["--at", "2026-12-20T10:00:00+01:00", "serve"], None),
    ];
    for (args, stdin) in &commands {
        let out = env.run(args, *stdin);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(77), "{args:?}: {stderr}");
        assert!(
            stderr.contains("refusing to run as root")
                && stderr.contains("belongs to nobody (uid 65534)")
                && stderr.contains("systemd-run --pipe --wait -q -p User=nobody"),
            "{args:?}: {stderr}"
        );
    }

    // Nothing changed: the same bytes, no new file (journal, lock, backup), owner kept.
    assert_eq!(std::fs::read(&db).unwrap(), before_bytes, "database bytes");
    assert_eq!(listing(&var), before, "files next to the database");
    assert!(!backup.exists(), "no backup written");

    // The refusal is about the owner: the database's own user (here root again) goes on.
    std::os::unix::fs::chown(&db, Some(0), Some(0)).unwrap();
    let status = env.ok(&["status"]);
    assert!(status.contains("families running: 1"), "{status}");
}

/// Before the database exists, the folder it would be created in counts: root does not
/// create a root-owned database in the service user's state folder.
#[test]
fn root_does_not_create_a_database_in_another_users_folder() {
    if !is_root() {
        eprintln!("skipped: the refusal concerns root, and this test does not run as root");
        return;
    }
    let env = TestEnv::new();
    if env.skip_on_postgres("the refusal concerns the SQLite file's owner") {
        return;
    }
    let db = env.db_path();
    let fresh = db.parent().unwrap().join("fresh");
    std::fs::create_dir(&fresh).unwrap();
    std::os::unix::fs::chown(&fresh, Some(NOBODY), Some(NOBODY)).unwrap();
    let config = std::fs::read_to_string(env.path("nazorg.toml"))
        .unwrap()
        .replace(
            "url = \"sqlite://var/nazorg.db\"",
            "url = \"sqlite://var/fresh/nazorg.db\"",
        );
    std::fs::write(env.path("fresh.toml"), config).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_nazorg"))
        .current_dir(env.dir.path())
        .args(["--config", "fresh.toml", "migrate"])
        .env_remove("NAZORG_CONFIG")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(77), "{stderr}");
    assert!(stderr.contains("belongs to nobody"), "{stderr}");
    assert_eq!(
        std::fs::read_dir(&fresh).unwrap().count(),
        0,
        "nothing created"
    );
}
