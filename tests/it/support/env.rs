//! A fresh Nazorg installation per test: a temp folder with its own config, SQLite file,
//! identity and mail folder; the real `nazorg` binary run against it.

use nazorg::clock::SharedClock;
use nazorg::config::Config;
use nazorg::service::App;
use nazorg::store::OpenMode;
use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use tempfile::TempDir;

pub const AMSTERDAM: &str = "GM0363";
pub const ROTTERDAM: &str = "GM0599";
pub const TEAM_AMSTERDAM: &str = "wijkteam@amsterdam.example.org";
pub const COORD_AMSTERDAM: &str = "coordinator@vt-amsterdam.example.org";
pub const TEAM_ROTTERDAM: &str = "wijkteam@rotterdam.example.org";
pub const COORD_ROTTERDAM: &str = "coordinator@vt-rotterdam.example.org";

/// The test config: four plans, two municipalities, file transport unless `mail` says else.
/// The scenarios pin calendar dates, so their plans keep weekends (`working_days_only =
/// false`); `workdays` has the default (weekends and holidays move to the next working
/// day, no notices on those days), exercised in `working_days`.
pub fn config_text(mail: &str) -> String {
    let signals = shipped_signals();
    format!(
        r#"state_dir = "var"
[database]
url = "sqlite://var/nazorg.db"
[crypto]
identity_file = "var/nazorg.key"
create_identity = true
[mail]
{mail}
from = "Nazorg <nazorg@example.org>"
language = "en"
[schedule]
timezone = "Europe/Amsterdam"
# Never during a test run (real wall-clock time): tests sweep with `nazorg sweep --at`,
# and a daemon sweeps once at start.
sweep = "0 0 3 1 1 *"
[plans.standard]
checkins = ["P14D", "P6W", "P3M", "P6M", "P9M", "P12M", "P18M", "P24M"]
local_time = "09:00"
working_days_only = false
[plans.daily3]
checkins = ["P1D", "P2D", "P3D"]
working_days_only = false
[plans.monthly]
cron = "0 9 1 * *"
duration = "P12M"
local_time = "09:00"
working_days_only = false
[plans.workdays]
checkins = ["P14D", "P6W", "P3M"]
local_time = "09:00"
[reminders]
lead = "P2D"
overdue_after = "P3D"
repeat_every = "P7D"
max_overdue = 3
lead_interpreter = "P2D"
[dispatch]
max_attempts = 6
backoff = "PT1M"
backoff_max = "PT1H"
interval = "PT30S"
{signals}
[api]
listen = "127.0.0.1:0"
rate_limit = 50
burst = 100
[[municipalities]]
code = "GM0363"
name = "Amsterdam"
team_email = "{TEAM_AMSTERDAM}"
coordinator_email = "{COORD_AMSTERDAM}"
region = "VR13"
[[municipalities]]
code = "GM0599"
name = "Rotterdam"
team_email = "{TEAM_ROTTERDAM}"
coordinator_email = "{COORD_ROTTERDAM}"
region = "VR17"
"#
    )
}

/// The relapse-signal indicators, rules and digest exactly as the example config ships them,
/// so the tests exercise the shipped defaults.
pub fn shipped_signals() -> &'static str {
    let example = include_str!("../../../config/nazorg.example.toml");
    match example.find("\n[[indicators]]") {
        Some(i) => &example[i + 1..],
        None => "",
    }
}

pub struct TestEnv {
    pub dir: TempDir,
    pub config_path: PathBuf,
}

impl TestEnv {
    /// File transport into `var/outbox`, database migrated.
    pub fn new() -> TestEnv {
        Self::with_mail("transport = \"file\"\ndir = \"var/outbox\"")
    }

    pub fn with_mail(mail: &str) -> TestEnv {
        Self::with_config(mail, |_| String::new())
    }

    /// Like [`TestEnv::with_mail`], with `extra(dir)` appended to the config. The config
    /// ends inside Rotterdam's `[[municipalities]]` table, so leading keys of `extra`
    /// (e.g. `age_recipient = "…"`) belong to Rotterdam; `extra` may then open further
    /// tables. `dir` is the test's folder, e.g. for an identity made with `nazorg keygen`.
    /// The default config with each `(from, to)` text replacement applied.
    pub fn with_changes(changes: &[(&str, &str)]) -> TestEnv {
        let mut text = config_text("transport = \"file\"\ndir = \"var/outbox\"");
        for (from, to) in changes {
            assert!(text.contains(from), "config has no {from:?}");
            text = text.replace(from, to);
        }
        Self::with_config(&text, |_| String::new())
    }

    pub fn with_config(mail: &str, extra: impl FnOnce(&Path) -> String) -> TestEnv {
        let dir = tempfile::tempdir().unwrap();
        let config_path = dir.path().join("nazorg.toml");
        // A whole config (from `with_changes`) or the mail section of the default one.
        let base = if mail.contains("[database]") {
            mail.to_string()
        } else {
            config_text(mail)
        };
        let text = format!("{base}{}", extra(dir.path()));
        std::fs::write(&config_path, text).unwrap();
        let env = TestEnv { dir, config_path };
        env.ok(&["migrate"]);
        env
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn db_path(&self) -> PathBuf {
        self.path("var/nazorg.db")
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_nazorg"));
        cmd.arg("--config")
            .arg(&self.config_path)
            .args(args)
            .env("NAZORG_LOG", "info")
            // `--at` (the simulated clock) is only accepted in a simulation.
            .env("NAZORG_SIMULATION", "1")
            .env_remove("NAZORG_CONFIG")
            .env_remove("CREDENTIALS_DIRECTORY")
            .stdin(Stdio::null());
        cmd
    }

    /// Runs the CLI; returns the raw output.
    pub fn run(&self, args: &[&str], stdin: Option<&[u8]>) -> Output {
        let mut cmd = self.command(args);
        match stdin {
            None => cmd.output().unwrap(),
            Some(input) => {
                cmd.stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped());
                let mut child = cmd.spawn().unwrap();
                child.stdin.take().unwrap().write_all(input).unwrap();
                child.wait_with_output().unwrap()
            }
        }
    }

    /// Runs the CLI and insists on success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args, None);
        assert!(
            out.status.success(),
            "nazorg {args:?} failed: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    pub fn json(&self, args: &[&str]) -> Value {
        let mut a = args.to_vec();
        a.push("--json");
        serde_json::from_str(&self.ok(&a)).unwrap()
    }

    /// Enrols a family at `at` from a JSON value.
    pub fn enrol(&self, at: &str, body: &Value) -> Value {
        let out = self.run(
            &["--at", at, "--json", "family", "enroll", "--file", "-"],
            Some(body.to_string().as_bytes()),
        );
        assert!(
            out.status.success(),
            "enrol failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    pub fn record(&self, at: &str, body: &Value) -> Output {
        self.run(
            &["--at", at, "--json", "checkin", "record", "--file", "-"],
            Some(body.to_string().as_bytes()),
        )
    }

    pub fn sweep(&self, at: &str) -> Value {
        serde_json::from_str(&self.ok(&["--at", at, "sweep"])).unwrap()
    }

    /// `outbox list --json`.
    pub fn outbox(&self) -> Vec<Value> {
        self.json(&["outbox", "list"]).as_array().unwrap().clone()
    }

    pub fn eml_files(&self) -> Vec<PathBuf> {
        let dir = self.path("var/outbox");
        let Ok(rd) = std::fs::read_dir(&dir) else {
            return Vec::new();
        };
        let mut v: Vec<PathBuf> = rd
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "eml"))
            .collect();
        v.sort();
        v
    }

    /// Row counts of every table, read with the `sqlite3` CLI (independent of our code).
    pub fn counts(&self) -> String {
        let out = Command::new("sqlite3")
            .arg(self.db_path())
            .arg(
                "SELECT (SELECT COUNT(*) FROM families), (SELECT COUNT(*) FROM members), \
                 (SELECT COUNT(*) FROM responsibilities), (SELECT COUNT(*) FROM checkins), \
                 (SELECT COUNT(*) FROM observations), (SELECT COUNT(*) FROM outbox), \
                 (SELECT COUNT(*) FROM keks), (SELECT COUNT(*) FROM checkins WHERE status != 'open'), \
                 (SELECT group_concat(status || notice_stage, '') FROM checkins), \
                 (SELECT COUNT(*) FROM handovers), \
                 (SELECT group_concat(status || COALESCE(acknowledged_at, '-'), '') FROM handovers), \
                 (SELECT group_concat(municipality || valid_from || '-' || COALESCE(valid_to, ''), ',') FROM responsibilities), \
                 (SELECT group_concat(hex(sealed_details), '') FROM families), \
                 (SELECT COUNT(*) FROM flags), \
                 (SELECT group_concat(status, '') FROM flags)",
            )
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "sqlite3: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    pub fn sql(&self, query: &str) -> String {
        let out = Command::new("sqlite3")
            .arg(self.db_path())
            .arg(query)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "sqlite3: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }

    /// The library's view of this installation, driven by `clock`.
    pub async fn app(&self, clock: SharedClock) -> App {
        let cfg = Config::load(&self.config_path).unwrap();
        App::open(cfg, clock, OpenMode::Existing).await.unwrap()
    }
}

/// A standard enrolment body; `marker` is planted in every personal field.
pub fn family_body(municipality: &str, plan: &str, episode_date: &str, marker: &str) -> Value {
    serde_json::json!({
        "episode": {"kind": "shelter_exit", "date": episode_date},
        "municipality": municipality,
        "plan": plan,
        "language": "ar",
        "interpreter_needed": true,
        "case_director": {"name": format!("{marker}-director"), "email": format!("director.{}@team.example.org", marker.to_lowercase())},
        "address": format!("{marker}-address 12, 1011 AB"),
        "notes": format!("{marker}-family-note"),
        "stressors": ["debts", "housing"],
        "members": [
            {"role": "adult", "name": format!("{marker}-adult-name"), "birth_date": "1990-04-02", "phone": "+31 6 11112222"},
            {"role": "child", "name": format!("{marker}-child-one"), "birth_date": "2016-07-19", "sex": "f"},
            {"role": "child", "name": format!("{marker}-child-two"), "birth_date": "2019-02-03", "sex": "m"}
        ]
    })
}

/// Reads a file's bytes, or nothing if it does not exist.
pub fn bytes_of(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_default()
}
