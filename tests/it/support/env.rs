//! A fresh Nazorg installation per test: a temp folder with its own config, SQLite file,
//! identity and mail folder; the real `nazorg` binary run against it.
//!
//! With `NAZORG_TEST_DATABASE_URL` set (a PostgreSQL server, as `scripts/test` starts one),
//! each installation gets its own fresh database `nazorg_t_…` on that server instead of the
//! SQLite file, dropped when the test ends; the same tests then run on PostgreSQL.

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
/// The case director of [`family_body`]'s families.
pub const CASE_DIRECTOR: &str = "R. de Regisseur";
pub const CASE_DIRECTOR_EMAIL: &str = "regie@wijkteam.example.org";

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
        let mut text = format!("{base}{}", extra(dir.path()));
        if let Some(url) = fresh_postgres_database() {
            text = text.replace(
                "url = \"sqlite://var/nazorg.db\"",
                &format!("url = \"{url}\""),
            );
        }
        std::fs::write(&config_path, text).unwrap();
        let env = TestEnv { dir, config_path };
        env.ok(&["migrate"]);
        env
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// The PostgreSQL URL of this installation's own database, when the tests run there.
    pub fn postgres_url(&self) -> Option<String> {
        let text = std::fs::read_to_string(&self.config_path).ok()?;
        text.lines().find_map(|l| {
            let url = l.trim().strip_prefix("url = \"")?.strip_suffix('"')?;
            (url.starts_with("postgres://") && database_name(url).starts_with(TEST_DB_PREFIX))
                .then(|| url.to_string())
        })
    }

    /// True when this installation lives on PostgreSQL.
    pub fn on_postgres(&self) -> bool {
        self.postgres_url().is_some()
    }

    /// For the few checks that read SQLite's file itself: prints why they are skipped on
    /// PostgreSQL and returns true there.
    pub fn skip_on_postgres(&self, why: &str) -> bool {
        let skip = self.on_postgres();
        if skip {
            eprintln!("skipped on PostgreSQL: {why}");
        }
        skip
    }

    /// For tests of what only PostgreSQL offers (several daemons): prints why they are
    /// skipped on SQLite and returns true there.
    pub fn skip_unless_postgres(&self, why: &str) -> bool {
        let skip = !self.on_postgres();
        if skip {
            eprintln!("skipped on SQLite: {why}");
        }
        skip
    }

    /// Everything the database holds at rest, for scanning for planted markers: the SQLite
    /// file with its WAL, or a `pg_dump` of the PostgreSQL database with every BYTEA value
    /// also decoded from its hex form (so raw bytes are scanned, not only their spelling).
    pub fn stored_bytes(&self) -> Vec<u8> {
        let Some(url) = self.postgres_url() else {
            let mut all = bytes_of(&self.db_path());
            all.extend(bytes_of(&self.path("var/nazorg.db-wal")));
            return all;
        };
        let out = Command::new("pg_dump")
            .args(["--no-owner", "--data-only", "--dbname", &url])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "pg_dump: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut all = out.stdout.clone();
        all.extend(decode_hex_runs(&out.stdout));
        all
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

    /// Row counts of every table, read with the `sqlite3` CLI (independent of our code),
    /// or `psql` on PostgreSQL (the same columns, rows in id order).
    pub fn counts(&self) -> String {
        if self.on_postgres() {
            return self.sql(
                "SELECT (SELECT COUNT(*) FROM families), (SELECT COUNT(*) FROM members), \
                 (SELECT COUNT(*) FROM responsibilities), (SELECT COUNT(*) FROM checkins), \
                 (SELECT COUNT(*) FROM observations), (SELECT COUNT(*) FROM outbox), \
                 (SELECT COUNT(*) FROM keks), (SELECT COUNT(*) FROM checkins WHERE status != 'open'), \
                 (SELECT string_agg(status || notice_stage, '' ORDER BY id) FROM checkins), \
                 (SELECT COUNT(*) FROM handovers), \
                 (SELECT string_agg(status || COALESCE(CAST(acknowledged_at AS TEXT), '-'), '' ORDER BY id) FROM handovers), \
                 (SELECT string_agg(municipality || valid_from || '-' || COALESCE(CAST(valid_to AS TEXT), ''), ',' ORDER BY id) FROM responsibilities), \
                 (SELECT string_agg(hex(sealed_details), '' ORDER BY id) FROM families), \
                 (SELECT COUNT(*) FROM flags), \
                 (SELECT string_agg(status, '' ORDER BY id) FROM flags)",
            ) + "\n";
        }
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

    /// Runs SQL against the installation's database with the engine's own CLI (`sqlite3`,
    /// or `psql` with the same `a|b` output and booleans as `1`/`0`; `hex`, `instr`,
    /// `group_concat` and `strftime('%s', …)` exist there too, see [`PG_TEST_HELPERS`]).
    pub fn sql(&self, query: &str) -> String {
        if let Some(url) = self.postgres_url() {
            return sqlite_style(&psql(&url, query));
        }
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

    /// Writes the bytes a `SELECT hex(…)` query returns to `path` (as the sqlite3 CLI's
    /// `writefile`, on either engine).
    pub fn save_blob(&self, hex_query: &str, path: &Path) {
        let hexed = self.sql(hex_query);
        let bytes: Vec<u8> = (0..hexed.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hexed[i..i + 2], 16).unwrap())
            .collect();
        std::fs::write(path, bytes).unwrap();
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
        // A professional, not the family: reminders name them (issue 12 item 5), so they
        // carry no family marker.
        "case_director": {"name": CASE_DIRECTOR, "email": CASE_DIRECTOR_EMAIL},
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

/// Test databases on PostgreSQL are named with this prefix (and dropped by [`TestEnv`]'s
/// `Drop`).
const TEST_DB_PREFIX: &str = "nazorg_t_";

/// SQLite's functions the tests' SQL uses, defined in each test database so one query text
/// serves both engines. Test support only: the product's SQL needs none of them.
const PG_TEST_HELPERS: &str = "
CREATE FUNCTION hex(bytea) RETURNS text LANGUAGE sql IMMUTABLE AS $$ SELECT upper(encode($1, 'hex')) $$;
CREATE FUNCTION hex(text) RETURNS text LANGUAGE sql IMMUTABLE AS $$ SELECT upper(encode(convert_to($1, 'UTF8'), 'hex')) $$;
CREATE FUNCTION instr(text, text) RETURNS bigint LANGUAGE sql IMMUTABLE AS $$ SELECT CAST(strpos($1, $2) AS bigint) $$;
CREATE FUNCTION instr(bytea, text) RETURNS bigint LANGUAGE sql IMMUTABLE AS $$ SELECT CAST(position(convert_to($2, 'UTF8') IN $1) AS bigint) $$;
CREATE FUNCTION nz_concat(acc text, v text, sep text) RETURNS text LANGUAGE sql IMMUTABLE AS
  $$ SELECT CASE WHEN v IS NULL THEN acc WHEN acc IS NULL THEN v ELSE acc || sep || v END $$;
CREATE FUNCTION nz_concat1(acc text, v text) RETURNS text LANGUAGE sql IMMUTABLE AS
  $$ SELECT CASE WHEN v IS NULL THEN acc WHEN acc IS NULL THEN v ELSE acc || ',' || v END $$;
CREATE AGGREGATE group_concat(text, text) (SFUNC = nz_concat, STYPE = text);
CREATE AGGREGATE group_concat(text) (SFUNC = nz_concat1, STYPE = text);
CREATE FUNCTION strftime(text, text) RETURNS bigint LANGUAGE sql IMMUTABLE AS
  $$ SELECT CASE WHEN $1 = '%s' THEN CAST(extract(epoch FROM CAST($2 AS timestamptz)) AS bigint) END $$;
";

/// A new, empty database on the server named by `NAZORG_TEST_DATABASE_URL` (none when the
/// variable is unset: the tests run on SQLite).
fn fresh_postgres_database() -> Option<String> {
    let admin = std::env::var("NAZORG_TEST_DATABASE_URL").ok()?;
    if admin.trim().is_empty() {
        return None;
    }
    let name = format!("{TEST_DB_PREFIX}{:016x}", rand::random::<u64>());
    psql(&admin, &format!("CREATE DATABASE {name}"));
    let url = with_database(&admin, &name);
    psql(&url, PG_TEST_HELPERS);
    Some(url)
}

/// The database name in a `postgres://…/NAME?…` URL.
pub fn database_name(url: &str) -> &str {
    let no_query = url.split('?').next().unwrap_or(url);
    no_query.rsplit('/').next().unwrap_or("")
}

/// The same server URL naming another database.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (url, String::new()),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let server = match base[scheme_end..].find('/') {
        Some(i) => &base[..scheme_end + i],
        None => base,
    };
    format!("{server}/{name}{query}")
}

/// Runs SQL with `psql`, output like the `sqlite3` CLI's (`a|b`, one row a line).
pub fn psql(url: &str, query: &str) -> String {
    let out = Command::new("psql")
        .args([
            "-X",
            "-q",
            "-A",
            "-t",
            "-F",
            "|",
            "-v",
            "ON_ERROR_STOP=1",
            "-d",
            url,
            "-c",
            query,
        ])
        .env("PGOPTIONS", "-c client_min_messages=warning")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "psql: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// psql prints booleans as `t`/`f` where sqlite3 prints `1`/`0`; the tests' expectations
/// are written for the latter (no text column of ours holds a bare `t` or `f`).
fn sqlite_style(out: &str) -> String {
    out.lines()
        .map(|line| {
            line.split('|')
                .map(|v| match v {
                    "t" => "1",
                    "f" => "0",
                    v => v,
                })
                .collect::<Vec<_>>()
                .join("|")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The bytes of every `\x…` hex run in a `pg_dump` (BYTEA values in COPY text).
fn decode_hex_runs(dump: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut i = 0;
    while i + 2 < dump.len() {
        if dump[i] == b'\\' && dump[i + 1] == b'x' {
            let mut j = i + 2;
            while j + 1 < dump.len()
                && dump[j].is_ascii_hexdigit()
                && dump[j + 1].is_ascii_hexdigit()
            {
                let hi = (dump[j] as char).to_digit(16).unwrap();
                let lo = (dump[j + 1] as char).to_digit(16).unwrap();
                out.push((hi * 16 + lo) as u8);
                j += 2;
            }
            out.push(b'\n');
            i = j;
        } else {
            i += 1;
        }
    }
    out
}

impl Drop for TestEnv {
    /// A test database on PostgreSQL goes with its test (daemons still connected are
    /// disconnected by `WITH (FORCE)`).
    fn drop(&mut self) {
        let (Some(url), Ok(admin)) = (
            self.postgres_url(),
            std::env::var("NAZORG_TEST_DATABASE_URL"),
        ) else {
            return;
        };
        let name = database_name(&url).to_string();
        let _ = Command::new("psql")
            .args(["-X", "-q", "-d", &admin, "-c"])
            .arg(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .output();
    }
}
