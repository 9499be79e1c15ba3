//! Issue 10 item 8: SMTP credentials stay secret. A password is only sent over TLS
//! (`smtps://` or `tls=required`); plain loopback never authenticates; the password can
//! come from `mail.password_file` or the systemd credential `smtp-password`, and `Debug`
//! never prints it.
//!
//! An end-to-end AUTH exchange is not tested: aiosmtpd only offers AUTH over TLS, and the
//! daemon (rightly) trusts only the system's root certificates, so a test server would need
//! a certificate from a real CA. The tests check the config resolution instead.

use crate::support::env::{TestEnv, config_text};
use nazorg::config::{Config, MailTransport};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Output;

const CONFIG: i32 = 78;

fn smtp_mail(url: &str, extra: &str) -> String {
    format!("transport = \"smtp\"\nurl = \"{url}\"\n{extra}")
}

/// `check-config` on the test config with this `[mail]` section.
fn check(env: &TestEnv, mail: &str, credentials_dir: Option<&Path>) -> Output {
    std::fs::write(&env.config_path, config_text(mail)).unwrap();
    let mut cmd = env.command(&["check-config"]);
    if let Some(d) = credentials_dir {
        cmd.env("CREDENTIALS_DIRECTORY", d);
    }
    cmd.output().unwrap()
}

fn refused(out: &Output, key: &str, why: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(CONFIG), "{err}");
    assert!(err.contains(&format!("  {key}: ")), "{err}");
    assert!(err.contains(why), "{err}");
    assert!(!err.contains("geheim"), "the password was printed: {err}");
}

fn accepted(out: &Output) {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn credentials_without_tls_are_refused_at_config_check() {
    let env = TestEnv::new();
    for url in [
        "smtp://nazorg:geheim@relay.example.org:587",
        "smtp://nazorg:geheim@relay.example.org:587?tls=opportunistic",
        "smtp://nazorg:geheim@127.0.0.1:2525?tls=none",
    ] {
        refused(
            &check(&env, &smtp_mail(url, ""), None),
            "mail.url",
            "credentials need TLS",
        );
    }
    // With a password file the same rule holds.
    std::fs::write(env.path("smtp-password"), "geheim\n").unwrap();
    refused(
        &check(
            &env,
            &smtp_mail(
                "smtp://nazorg@relay.example.org:587",
                "password_file = \"smtp-password\"",
            ),
            None,
        ),
        "mail.url",
        "credentials need TLS",
    );
    // TLS with credentials, and plain loopback without them, are fine.
    for url in [
        "smtp://nazorg:geheim@relay.example.org:587?tls=required",
        "smtps://nazorg:geheim@relay.example.org",
        "smtp://127.0.0.1:2525?tls=none",
    ] {
        accepted(&check(&env, &smtp_mail(url, ""), None));
    }
}

#[test]
fn the_password_comes_from_a_file_or_the_systemd_credential() {
    let env = TestEnv::new();
    let url = "smtp://nazorg@relay.example.org:587?tls=required";
    // No password anywhere: the user alone is refused, saying where the password goes.
    refused(
        &check(&env, &smtp_mail(url, ""), None),
        "mail.url",
        "mail.password_file",
    );
    // mail.password_file, relative to the config.
    std::fs::write(env.path("smtp-password"), "geheim\n").unwrap();
    accepted(&check(
        &env,
        &smtp_mail(url, "password_file = \"smtp-password\""),
        None,
    ));
    refused(
        &check(&env, &smtp_mail(url, "password_file = \"missing\""), None),
        "mail.password_file",
        "cannot read",
    );
    // Given twice (URL and file) is ambiguous.
    refused(
        &check(
            &env,
            &smtp_mail(
                "smtps://nazorg:geheim@relay.example.org",
                "password_file = \"smtp-password\"",
            ),
            None,
        ),
        "mail.url",
        "twice",
    );
    // The systemd credential is the default when it exists.
    let creds = env.path("credentials");
    std::fs::create_dir_all(&creds).unwrap();
    refused(
        &check(&env, &smtp_mail(url, ""), Some(&creds)),
        "mail.url",
        "password",
    );
    std::fs::write(creds.join("smtp-password"), "geheim").unwrap();
    accepted(&check(&env, &smtp_mail(url, ""), Some(&creds)));
}

#[test]
fn the_password_is_read_trimmed_and_never_shown() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nazorg.toml");
    let url = "smtps://nazorg@relay.example.org";
    for (content, expected) in [
        ("geheim\n", "geheim"),
        ("ge heim\r\n", "ge heim"),
        ("geheim", "geheim"),
    ] {
        std::fs::write(dir.path().join("smtp-password"), content).unwrap();
        for (text, env) in [
            (
                config_text(&smtp_mail(url, "password_file = \"smtp-password\"")),
                BTreeMap::new(),
            ),
            (
                config_text(&smtp_mail(url, "")),
                BTreeMap::from([(
                    "CREDENTIALS_DIRECTORY".to_string(),
                    dir.path().display().to_string(),
                )]),
            ),
        ] {
            let cfg = Config::parse(&text, &path, &env).unwrap();
            let MailTransport::Smtp { url: u, password } = &cfg.mail.transport else {
                panic!("not smtp");
            };
            assert_eq!(u, url);
            assert_eq!(password.as_ref().unwrap().expose(), expected);
            let shown = format!("{:?} {:?}", cfg.mail, cfg.mail.transport);
            assert!(!shown.contains("heim"), "{shown}");
            assert!(nazorg::mail::Transport::smtp_with(u, password.as_ref()).is_ok());
        }
    }
    // A password inside the URL is not printed by Debug either.
    let text = config_text(&smtp_mail("smtps://nazorg:geheim@relay.example.org", ""));
    let cfg = Config::parse(&text, &path, &BTreeMap::new()).unwrap();
    assert!(!format!("{:?}", cfg.mail).contains("geheim"));
}
