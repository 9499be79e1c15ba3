//! The KEK file is a plain age file: the real `age` CLI (Debian package `age`) must read
//! what `Kek::wrap_for` writes, and `Kek::unwrap_with` must read what `age` writes.
//!
//! These tests fail, rather than skip, when the `age` binary is missing: without it the
//! promise "an operator can recover the KEK with stock age" is untested.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

use nazorg::crypto::{Kek, keygen, load_identity, parse_recipient};
use rand::RngCore;
use sha2::{Digest, Sha256};

fn age(args: &[&std::ffi::OsStr]) -> Output {
    let output = Command::new("age").args(args).output().unwrap_or_else(|e| {
        panic!("cannot run the `age` CLI ({e}); install it with `apt-get install -y age`")
    });
    assert!(
        output.status.success(),
        "age {:?} failed: {}\n{}",
        args,
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn os(s: &str) -> &std::ffi::OsStr {
    s.as_ref()
}

fn path(p: &Path) -> &std::ffi::OsStr {
    p.as_os_str()
}

#[test]
fn age_cli_decrypts_a_wrapped_kek() {
    let dir = tempfile::tempdir().unwrap();
    let identity_path = dir.path().join("identity.txt");
    let recipient = keygen(&identity_path).unwrap();

    let kek = Kek::generate();
    let file = kek
        .wrap_for(&[parse_recipient(&recipient).unwrap()])
        .unwrap();
    let kek_path = dir.path().join("kek.age");
    fs::write(&kek_path, &file).unwrap();

    let out = age(&[os("-d"), os("-i"), path(&identity_path), path(&kek_path)]);
    assert_eq!(
        out.stdout.len(),
        32,
        "age should print exactly the 32 key bytes"
    );
    let printed: [u8; 32] = Sha256::digest(&out.stdout).into();
    assert_eq!(printed, kek.fingerprint());

    // Our own loader reads the same identity file and the same KEK file.
    let identity = load_identity(&identity_path).unwrap();
    let back = Kek::unwrap_with(&fs::read(&kek_path).unwrap(), &identity).unwrap();
    assert_eq!(back.fingerprint(), kek.fingerprint());
}

#[test]
fn kek_unwrap_reads_a_file_made_by_age_cli() {
    let dir = tempfile::tempdir().unwrap();
    let identity_path = dir.path().join("identity.txt");
    let recipient = keygen(&identity_path).unwrap();

    let mut key = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut key);
    let plain_path = dir.path().join("kek.bin");
    fs::write(&plain_path, key).unwrap();
    let kek_path = dir.path().join("kek.age");
    age(&[
        os("-r"),
        os(&recipient),
        os("-o"),
        path(&kek_path),
        path(&plain_path),
    ]);

    let identity = load_identity(&identity_path).unwrap();
    let kek = Kek::unwrap_with(&fs::read(&kek_path).unwrap(), &identity).unwrap();
    let expected: [u8; 32] = Sha256::digest(key).into();
    assert_eq!(kek.fingerprint(), expected);

    // A different identity cannot open it.
    let other_path = dir.path().join("other.txt");
    keygen(&other_path).unwrap();
    let other = load_identity(&other_path).unwrap();
    assert!(Kek::unwrap_with(&fs::read(&kek_path).unwrap(), &other).is_err());
}
