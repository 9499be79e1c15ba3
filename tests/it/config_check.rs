//! The shipped configs parse, and every kind of mistake is reported with its key path.
//!
//! These tests go through `Config::parse` with an explicit environment, so the real
//! process environment (`NAZORG_*` in a CI job) cannot change their outcome.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use nazorg::config::{Config, ConfigError, ConfigIssue, MailTransport};

const EXAMPLE: &str = include_str!("../../config/nazorg.example.toml");
const PRODUCTION: &str = include_str!("../../config/nazorg.production.toml");
const EXAMPLE_PATH: &str = "config/nazorg.example.toml";

fn no_env() -> BTreeMap<String, String> {
    BTreeMap::new()
}

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::parse(text, Path::new(EXAMPLE_PATH), &no_env())
}

fn parse_ok(text: &str) -> Config {
    parse(text).unwrap_or_else(|e| panic!("config should parse, got: {e}"))
}

fn issues(text: &str) -> Vec<ConfigIssue> {
    match parse(text) {
        Ok(_) => panic!("config should be rejected"),
        Err(e) => {
            assert!(matches!(e, ConfigError::Invalid { .. }), "{e:?}");
            e.issues()
        }
    }
}

fn keys(issues: &[ConfigIssue]) -> Vec<&str> {
    issues.iter().map(|i| i.key.as_str()).collect()
}

/// The example with `from` replaced by `to` exactly once (so a test cannot silently
/// edit nothing when the example changes).
fn edit(text: &str, from: &str, to: &str) -> String {
    assert_eq!(
        text.matches(from).count(),
        1,
        "`{from}` should occur exactly once in the config under test"
    );
    text.replacen(from, to, 1)
}

/// Asserts the config is rejected with exactly one issue, at `key`, and returns it.
fn single_issue(text: &str, key: &str) -> ConfigIssue {
    let found = issues(text);
    assert_eq!(keys(&found), vec![key], "issues: {found:?}");
    found.into_iter().next().unwrap()
}

fn config_dir() -> PathBuf {
    std::path::absolute("config").unwrap()
}

// ---- the shipped files ----------------------------------------------------------------

#[test]
fn example_config_parses_with_the_documented_values() {
    let cfg = parse_ok(EXAMPLE);
    assert_eq!(cfg.path, Path::new(EXAMPLE_PATH));
    assert!(cfg.crypto.create_identity);
    assert!(cfg.crypto.recipients.is_empty());
    assert_eq!(cfg.timezone, chrono_tz::Europe::Amsterdam);
    assert_eq!(cfg.sweep_cron, "0 */5 * * * *");
    assert_eq!(cfg.mail.from, "Nazorg <nazorg@example.org>");
    assert_eq!(cfg.mail.language, nazorg::mail::Language::Nl);

    assert_eq!(
        cfg.plans.keys().map(String::as_str).collect::<Vec<_>>(),
        ["intensive", "standard"]
    );
    let standard = &cfg.plans["standard"];
    let expected: Vec<nazorg::domain::duration::IsoDuration> = [
        "P3D", "P14D", "P6W", "P3M", "P6M", "P9M", "P12M", "P18M", "P24M",
    ]
    .iter()
    .map(|s| s.parse().unwrap())
    .collect();
    assert_eq!(standard.offsets, expected);
    assert!(standard.cron.is_none());
    assert_eq!(
        standard.local_time,
        chrono::NaiveTime::from_hms_opt(9, 0, 0).unwrap()
    );
    let intensive = &cfg.plans["intensive"];
    assert!(intensive.cron.is_some());
    assert_eq!(intensive.duration, Some("P3M".parse().unwrap()));
    assert!(!intensive.offsets.is_empty());

    // Weekly on Monday 09:00 local for three months, plus the offsets.
    let start = chrono::NaiveDate::from_ymd_opt(2027, 3, 1).unwrap(); // a Monday
    let slots = intensive.slots(start, cfg.timezone).unwrap();
    assert!(slots.len() >= 13, "{} slots", slots.len());
    let standard_slots = standard.slots(start, cfg.timezone).unwrap();
    assert_eq!(standard_slots.len(), 9);

    assert_eq!(cfg.reminders.lead, "P2D".parse().unwrap());
    assert_eq!(cfg.reminders.overdue_after, "P3D".parse().unwrap());
    assert_eq!(cfg.reminders.repeat_every, "P7D".parse().unwrap());
    assert_eq!(cfg.reminders.max_overdue, 3);
    assert_eq!(cfg.dispatch.max_attempts, 12);
    assert_eq!(cfg.dispatch.backoff, "PT1M".parse().unwrap());
    assert_eq!(cfg.dispatch.backoff_max, "PT6H".parse().unwrap());
    assert_eq!(cfg.dispatch.interval, "PT30S".parse().unwrap());

    let codes: Vec<&str> = cfg.municipalities.keys().map(String::as_str).collect();
    assert_eq!(codes, ["GM0363", "GM0518", "GM0599"]);
    let ams = cfg.municipality("GM0363").unwrap();
    assert_eq!(ams.name, "Amsterdam");
    assert_eq!(ams.region, "VR13");
    assert_eq!(ams.team_email, "wijkteam@amsterdam.example.org");
    assert!(ams.age_recipient.is_none());
    assert_eq!(cfg.municipality("GM0599").unwrap().region, "VR17");
    let hague = cfg.municipality("GM0518").unwrap();
    assert_eq!(hague.name, "'s-Gravenhage");
    assert_eq!(hague.region, "VR15");
}

#[test]
fn example_config_spells_out_the_defaults() {
    // The example documents every default by setting it; the values must be the
    // ones config.rs falls back to when a key is left out.
    let stripped: String = EXAMPLE
        .lines()
        .filter(|l| {
            let l = l.trim_start();
            ![
                "state_dir",
                "recipients",
                "language",
                "timezone",
                "sweep",
                "local_time",
                "lead",
                "overdue_after",
                "repeat_every",
                "max_overdue",
                "max_attempts",
                "backoff",
                "interval",
            ]
            .iter()
            .any(|k| l.starts_with(&format!("{k} ")))
        })
        .map(|l| format!("{l}\n"))
        .collect();
    let full = parse_ok(EXAMPLE);
    let defaults = parse_ok(&stripped);
    assert_eq!(defaults.mail.language, full.mail.language);
    assert_eq!(defaults.timezone, full.timezone);
    assert_eq!(defaults.sweep_cron, full.sweep_cron);
    for (name, plan) in &full.plans {
        assert_eq!(defaults.plans[name].local_time, plan.local_time, "{name}");
    }
    assert_eq!(defaults.reminders.lead, full.reminders.lead);
    assert_eq!(
        defaults.reminders.overdue_after,
        full.reminders.overdue_after
    );
    assert_eq!(defaults.reminders.repeat_every, full.reminders.repeat_every);
    assert_eq!(defaults.reminders.max_overdue, full.reminders.max_overdue);
    assert_eq!(defaults.dispatch.max_attempts, full.dispatch.max_attempts);
    assert_eq!(defaults.dispatch.backoff, full.dispatch.backoff);
    assert_eq!(defaults.dispatch.backoff_max, full.dispatch.backoff_max);
    assert_eq!(defaults.dispatch.interval, full.dispatch.interval);
    // state_dir is the one documented default the example deliberately changes.
    assert_eq!(defaults.state_dir, config_dir().join("var"));
}

#[test]
fn production_template_parses() {
    let cfg = Config::parse(PRODUCTION, Path::new("/etc/nazorg/nazorg.toml"), &no_env())
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(cfg.state_dir, Path::new("/var/lib/nazorg"));
    assert_eq!(
        cfg.database.sqlite_path,
        Path::new("/var/lib/nazorg/nazorg.db")
    );
    assert_eq!(cfg.database.url, "sqlite:///var/lib/nazorg/nazorg.db");
    assert_eq!(
        cfg.crypto.identity_file,
        Path::new("/run/credentials/nazorg.service/nazorg.key")
    );
    assert!(!cfg.crypto.create_identity);
    assert_eq!(
        cfg.mail.transport,
        MailTransport::Smtp {
            url: "smtps://mail.example.org".into(),
            password: None
        }
    );
    assert!(cfg.plans.contains_key("standard"));
    assert!(!cfg.municipalities.is_empty());
}

#[test]
fn production_template_takes_the_unit_environment() {
    // What systemd/nazorg.service sets: NAZORG_IDENTITY_FILE=%d/nazorg.key.
    let env = BTreeMap::from([(
        "NAZORG_IDENTITY_FILE".to_string(),
        "/run/credentials/nazorg.service/nazorg.key".to_string(),
    )]);
    let cfg = Config::parse(PRODUCTION, Path::new("/etc/nazorg/nazorg.toml"), &env).unwrap();
    assert_eq!(
        cfg.crypto.identity_file,
        Path::new("/run/credentials/nazorg.service/nazorg.key")
    );
}

// ---- paths ----------------------------------------------------------------------------

#[test]
fn relative_paths_resolve_against_the_config_folder() {
    let cfg = parse_ok(EXAMPLE);
    let dir = config_dir();
    assert!(dir.is_absolute());
    assert_eq!(cfg.state_dir, dir.parent().unwrap().join("var"));
    assert_eq!(
        cfg.database.sqlite_path,
        dir.parent().unwrap().join("var/nazorg.db")
    );
    assert_eq!(
        cfg.database.url,
        format!(
            "sqlite://{}",
            dir.parent().unwrap().join("var/nazorg.db").display()
        )
    );
    assert_eq!(
        cfg.crypto.identity_file,
        dir.parent().unwrap().join("var/nazorg.key")
    );
    assert_eq!(
        cfg.mail.transport,
        MailTransport::File {
            dir: dir.parent().unwrap().join("var/outbox")
        }
    );

    // The same file elsewhere resolves against that folder, whatever the working dir.
    let elsewhere =
        Config::parse(EXAMPLE, Path::new("/srv/nazorg/etc/nazorg.toml"), &no_env()).unwrap();
    assert_eq!(
        elsewhere.database.sqlite_path,
        Path::new("/srv/nazorg/var/nazorg.db")
    );
    assert_eq!(
        elsewhere.crypto.identity_file,
        Path::new("/srv/nazorg/var/nazorg.key")
    );

    // A bare file name means the working directory.
    let bare = Config::parse(EXAMPLE, Path::new("nazorg.toml"), &no_env()).unwrap();
    assert!(bare.database.sqlite_path.is_absolute());
    assert_eq!(
        bare.database.sqlite_path,
        std::env::current_dir()
            .unwrap()
            .parent()
            .unwrap()
            .join("var/nazorg.db")
    );
}

#[test]
fn absolute_paths_are_kept() {
    let text = edit(
        EXAMPLE,
        "url = \"sqlite://../var/nazorg.db\"",
        "url = \"sqlite:///data/nazorg.db?mode=rwc\"",
    );
    let cfg = parse_ok(&text);
    assert_eq!(cfg.database.sqlite_path, Path::new("/data/nazorg.db"));
}

// ---- unknown keys ---------------------------------------------------------------------

fn assert_unknown(text: &str, key: &str, field: &str) {
    let found = issues(text);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].key, key, "{found:?}");
    assert!(
        found[0]
            .message
            .contains(&format!("unknown field `{field}`")),
        "message should name the unknown key: {found:?}"
    );
}

#[test]
fn unknown_top_level_key_is_rejected() {
    let text = format!("colour = \"blue\"\n{EXAMPLE}");
    assert_unknown(&text, "colour", "colour");
}

#[test]
fn unknown_key_in_reminders_is_rejected() {
    // A typo must not silently fall back to the default lead.
    let text = edit(EXAMPLE, "lead = \"P2D\"", "lead_time = \"P2D\"");
    assert_unknown(&text, "reminders.lead_time", "lead_time");
}

#[test]
fn unknown_key_in_a_municipality_is_rejected() {
    let text = edit(
        EXAMPLE,
        "region = \"VR17\"",
        "region = \"VR17\"\nphone = \"010-1234567\"",
    );
    assert_unknown(&text, "municipalities[1].phone", "phone");
}

#[test]
fn unknown_key_in_a_plan_is_rejected() {
    let text = edit(
        EXAMPLE,
        "[plans.standard]\n",
        "[plans.standard]\ncheckin = [\"P1D\"]\n",
    );
    assert_unknown(&text, "plans.standard.checkin", "checkin");
}

#[test]
fn wrong_type_names_the_key() {
    let text = edit(EXAMPLE, "max_overdue = 3", "max_overdue = \"3\"");
    let issue = single_issue(&text, "reminders.max_overdue");
    assert!(issue.message.contains("invalid type"), "{issue:?}");
}

#[test]
fn missing_required_section_is_named() {
    let start = EXAMPLE.find("[mail]").unwrap();
    let end = EXAMPLE.find("[schedule]").unwrap();
    let text = format!("{}{}", &EXAMPLE[..start], &EXAMPLE[end..]);
    let found = issues(&text);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].message.contains("mail"), "{found:?}");
}

#[test]
fn toml_syntax_error_says_where() {
    let text = edit(EXAMPLE, "max_overdue = 3", "max_overdue = = 3");
    let found = issues(&text);
    assert_eq!(keys(&found), ["(file)"], "{found:?}");
    let line = EXAMPLE
        .lines()
        .position(|l| l.starts_with("max_overdue"))
        .unwrap()
        + 1;
    assert!(
        found[0].message.contains(&format!("line {line}")),
        "a syntax error should give its line ({line}): {found:?}"
    );
}

// ---- one mistake, one key path --------------------------------------------------------

#[test]
fn bad_checkin_duration_names_its_index() {
    let text = edit(
        EXAMPLE,
        "checkins = [\"P3D\", \"P14D\", \"P6W\", \"P3M\",",
        "checkins = [\"P3D\", \"P14D\", \"P6W\", \"3 months\",",
    );
    let issue = single_issue(&text, "plans.standard.checkins[3]");
    assert!(issue.message.contains("3 months"), "{issue:?}");
}

#[test]
fn bad_plan_cron_is_rejected() {
    let text = edit(
        EXAMPLE,
        "cron = \"0 9 * * MON\"",
        "cron = \"0 9 * * FUNDAY\"",
    );
    single_issue(&text, "plans.intensive.cron");
}

#[test]
fn bad_cron_in_a_cron_only_plan_is_one_issue() {
    // Without offsets, a broken cron must not also be reported as "no check-ins".
    let text = edit(EXAMPLE, "checkins = [\"P3D\", \"P3M\"]", "");
    parse_ok(&text);
    let text = edit(&text, "cron = \"0 9 * * MON\"", "cron = \"61 9 * * MON\"");
    single_issue(&text, "plans.intensive.cron");
}

#[test]
fn cron_without_duration_is_rejected() {
    let text = edit(EXAMPLE, "duration = \"P3M\"", "");
    single_issue(&text, "plans.intensive.duration");
}

#[test]
fn bad_local_time_is_rejected() {
    // Both plans set local_time = "09:00"; break the one in [plans.standard].
    let pos = EXAMPLE.find("[plans.standard]").unwrap();
    let (head, tail) = EXAMPLE.split_at(pos);
    let tail = tail.replacen("local_time = \"09:00\"", "local_time = \"9 uur\"", 1);
    single_issue(&format!("{head}{tail}"), "plans.standard.local_time");
}

#[test]
fn sweep_with_five_fields_is_rejected() {
    let text = edit(
        EXAMPLE,
        "sweep = \"0 */5 * * * *\"",
        "sweep = \"*/5 * * * *\"",
    );
    let issue = single_issue(&text, "schedule.sweep");
    assert!(issue.message.contains("seconds"), "{issue:?}");
}

#[test]
fn bad_timezone_is_rejected() {
    let text = edit(
        EXAMPLE,
        "timezone = \"Europe/Amsterdam\"",
        "timezone = \"Europe/Amsterdamm\"",
    );
    let issue = single_issue(&text, "schedule.timezone");
    assert!(issue.message.contains("Europe/Amsterdamm"), "{issue:?}");
}

#[test]
fn duplicate_municipality_code_is_rejected() {
    let text = edit(EXAMPLE, "code = \"GM0599\"", "code = \"GM0363\"");
    let issue = single_issue(&text, "municipalities[1].code");
    assert!(issue.message.contains("GM0363"), "{issue:?}");
}

#[test]
fn non_cbs_code_is_rejected() {
    for bad in ["0363", "GM363", "GM03633", "gm0363", "GMabcd"] {
        let text = edit(EXAMPLE, "code = \"GM0518\"", &format!("code = \"{bad}\""));
        single_issue(&text, "municipalities[2].code");
    }
}

#[test]
fn bad_email_is_rejected() {
    for bad in [
        "wijkteam",
        "wijkteam@localhost",
        "wijk team@amsterdam.example.org",
        "@amsterdam.example.org",
    ] {
        let text = edit(
            EXAMPLE,
            "team_email = \"wijkteam@amsterdam.example.org\"",
            &format!("team_email = \"{bad}\""),
        );
        single_issue(&text, "municipalities[0].team_email");
    }
    let text = edit(
        EXAMPLE,
        "coordinator_email = \"coordinator@rotterdam.example.org\"",
        "coordinator_email = \"coordinator.rotterdam.example.org\"",
    );
    single_issue(&text, "municipalities[1].coordinator_email");
    let text = edit(
        EXAMPLE,
        "from = \"Nazorg <nazorg@example.org>\"",
        "from = \"Nazorg <nazorg>\"",
    );
    single_issue(&text, "mail.from");
}

#[test]
fn postgres_url_is_rejected() {
    for url in ["postgres://nazorg@db/nazorg", "postgresql://db/nazorg"] {
        let text = edit(
            EXAMPLE,
            "url = \"sqlite://../var/nazorg.db\"",
            &format!("url = \"{url}\""),
        );
        let issue = single_issue(&text, "database.url");
        assert!(issue.message.contains("PostgreSQL"), "{issue:?}");
    }
    let text = edit(
        EXAMPLE,
        "url = \"sqlite://../var/nazorg.db\"",
        "url = \"sqlite://:memory:\"",
    );
    single_issue(&text, "database.url");
}

#[test]
fn unknown_mail_transport_is_rejected() {
    let text = edit(
        EXAMPLE,
        "\ntransport = \"file\"",
        "\ntransport = \"sendmail\"",
    );
    let issue = single_issue(&text, "mail.transport");
    assert!(issue.message.contains("sendmail"), "{issue:?}");
}

#[test]
fn smtp_transport_needs_a_valid_url() {
    let text = edit(EXAMPLE, "\ntransport = \"file\"", "\ntransport = \"smtp\"");
    single_issue(&text, "mail.url");
    let text = edit(
        &text,
        "# url = \"smtps://nazorg@mail.example.org\"",
        "url = \"smtp://mail.example.org?tls=none\"",
    );
    single_issue(&text, "mail.url");
}

#[test]
fn bad_age_recipient_is_rejected() {
    let text = edit(
        EXAMPLE,
        "region = \"VR15\"",
        "region = \"VR15\"\nage_recipient = \"age1notakey\"",
    );
    single_issue(&text, "municipalities[2].age_recipient");
}

#[test]
fn several_mistakes_are_reported_together() {
    let mut text = EXAMPLE.to_string();
    for (from, to) in [
        ("\"P6W\", \"P3M\",", "\"P6W\", \"P3X\","),
        ("cron = \"0 9 * * MON\"", "cron = \"every monday\""),
        ("sweep = \"0 */5 * * * *\"", "sweep = \"*/5 * * * *\""),
        (
            "timezone = \"Europe/Amsterdam\"",
            "timezone = \"Mars/Olympus\"",
        ),
        ("code = \"GM0599\"", "code = \"GM0363\""),
        ("code = \"GM0518\"", "code = \"0518\""),
        (
            "team_email = \"wijkteam@amsterdam.example.org\"",
            "team_email = \"wijkteam\"",
        ),
        (
            "url = \"sqlite://../var/nazorg.db\"",
            "url = \"postgres://db/nazorg\"",
        ),
        ("\ntransport = \"file\"", "\ntransport = \"pigeon\""),
        ("max_attempts = 12", "max_attempts = 0"),
    ] {
        text = edit(&text, from, to);
    }
    let found = issues(&text);
    let mut got = keys(&found);
    got.sort();
    let mut want = vec![
        "plans.standard.checkins[3]",
        "plans.intensive.cron",
        "schedule.sweep",
        "schedule.timezone",
        "municipalities[1].code",
        "municipalities[2].code",
        "municipalities[0].team_email",
        "database.url",
        "mail.transport",
        "dispatch.max_attempts",
    ];
    want.sort();
    assert_eq!(got, want, "{found:?}");
    // The error's display lists them all, for the operator's one round of fixes.
    let shown = parse(&text).unwrap_err().to_string();
    for key in want {
        assert!(shown.contains(key), "{shown}");
    }
}

#[test]
fn empty_plans_and_municipalities_are_rejected() {
    let cut = EXAMPLE.find("# Follow-up plans").unwrap();
    let resume = EXAMPLE.find("[reminders]").unwrap();
    let tail = &EXAMPLE[resume..];
    let tail = &tail[..tail.find("[[municipalities]]").unwrap()];
    // The indicators stay: the export's codebook refers to them.
    let signals = &EXAMPLE[EXAMPLE.find("\n[[indicators]]").unwrap()..];
    let text = format!("{}{}{}", &EXAMPLE[..cut], tail, signals);
    let found = issues(&text);
    let mut got = keys(&found);
    got.sort();
    assert_eq!(got, ["municipalities", "plans"], "{found:?}");
}

// ---- environment overrides ------------------------------------------------------------

#[test]
fn env_overrides_database_url_and_mail_dir() {
    let env = BTreeMap::from([
        (
            "NAZORG_DATABASE_URL".to_string(),
            "sqlite:///tmp/nazorg-ci/other.db".to_string(),
        ),
        (
            "NAZORG_MAIL_DIR".to_string(),
            "/tmp/nazorg-ci/mail".to_string(),
        ),
    ]);
    let cfg = Config::parse(EXAMPLE, Path::new(EXAMPLE_PATH), &env).unwrap();
    assert_eq!(
        cfg.database.sqlite_path,
        Path::new("/tmp/nazorg-ci/other.db")
    );
    assert_eq!(cfg.database.url, "sqlite:///tmp/nazorg-ci/other.db");
    assert_eq!(
        cfg.mail.transport,
        MailTransport::File {
            dir: PathBuf::from("/tmp/nazorg-ci/mail")
        }
    );
    // Untouched keys keep the file's values.
    assert_eq!(
        cfg.crypto.identity_file,
        config_dir().parent().unwrap().join("var/nazorg.key")
    );
}

#[test]
fn env_overrides_are_validated_like_the_file() {
    let env = BTreeMap::from([(
        "NAZORG_DATABASE_URL".to_string(),
        "postgres://db/nazorg".to_string(),
    )]);
    let err = Config::parse(EXAMPLE, Path::new(EXAMPLE_PATH), &env).unwrap_err();
    assert_eq!(keys(&err.issues()), ["database.url"]);
}

#[test]
fn env_switches_the_transport_to_smtp() {
    let env = BTreeMap::from([
        ("NAZORG_MAIL_TRANSPORT".to_string(), "smtp".to_string()),
        (
            "NAZORG_MAIL_URL".to_string(),
            "smtp://127.0.0.1:2525?tls=none".to_string(),
        ),
        ("NAZORG_STATE_DIR".to_string(), "/tmp/nazorg-ci".to_string()),
    ]);
    let cfg = Config::parse(EXAMPLE, Path::new(EXAMPLE_PATH), &env).unwrap();
    assert_eq!(
        cfg.mail.transport,
        MailTransport::Smtp {
            url: "smtp://127.0.0.1:2525?tls=none".into(),
            password: None
        }
    );
    assert_eq!(cfg.state_dir, Path::new("/tmp/nazorg-ci"));
}

#[test]
fn other_environment_variables_are_ignored() {
    let env = BTreeMap::from([
        ("NAZORG_DATABASE".to_string(), "postgres://x".to_string()),
        ("DATABASE_URL".to_string(), "postgres://x".to_string()),
    ]);
    Config::parse(EXAMPLE, Path::new(EXAMPLE_PATH), &env).unwrap();
}
