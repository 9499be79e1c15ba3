//! What the benchmark binaries share: the synthetic installation (config, municipalities,
//! families with plausible but invented personal data) and small measuring helpers.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use chrono::{NaiveDate, TimeDelta};
use nazorg::clock::SharedClock;
use nazorg::config::Config;
use nazorg::domain::enrolment::{
    CaseDirector, Enrolment, Episode, EpisodeKind, MemberInput, Role, Sex,
};
use nazorg::service::App;
use nazorg::store::OpenMode;
use rand::Rng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

/// (code, name, region)
pub const MUNICIPALITIES: &[(&str, &str, &str)] = &[
    ("GM0363", "Amsterdam", "VR13"),
    ("GM0599", "Rotterdam", "VR17"),
    ("GM0518", "'s-Gravenhage", "VR15"),
    ("GM0344", "Utrecht", "VR09"),
    ("GM0772", "Eindhoven", "VR22"),
    ("GM0014", "Groningen", "VR01"),
    ("GM0080", "Leeuwarden", "VR02"),
    ("GM0193", "Zwolle", "VR04"),
    ("GM0200", "Apeldoorn", "VR06"),
    ("GM0268", "Nijmegen", "VR08"),
    ("GM0935", "Maastricht", "VR24"),
    ("GM0034", "Almere", "VR25"),
];

pub fn config_text() -> String {
    let mut s = String::from(
        r#"state_dir = "var"
[database]
url = "sqlite://var/nazorg.db"
[crypto]
identity_file = "var/nazorg.key"
create_identity = true
[mail]
transport = "file"
dir = "var/outbox"
from = "Nazorg <nazorg@example.org>"
language = "en"
[schedule]
timezone = "Europe/Amsterdam"
sweep = "0 */5 * * * *"
[plans.standard]
checkins = ["P14D", "P6W", "P3M", "P6M", "P9M", "P12M", "P18M", "P24M"]
local_time = "09:00"
[reminders]
lead = "P2D"
overdue_after = "P3D"
repeat_every = "P7D"
max_overdue = 3
"#,
    );
    for (code, name, region) in MUNICIPALITIES {
        let slug = name.to_lowercase().replace(['\'', ' '], "");
        s.push_str(&format!(
            "[[municipalities]]\ncode = \"{code}\"\nname = \"{name}\"\n\
             team_email = \"wijkteam@{slug}.example.org\"\n\
             coordinator_email = \"coordinator@vt-{slug}.example.org\"\nregion = \"{region}\"\n"
        ));
    }
    // The relapse-signal indicators and rules exactly as the example config ships them.
    let example = include_str!("../../config/nazorg.example.toml");
    if let Some(i) = example.find("\n[[indicators]]") {
        s.push_str(&example[i + 1..]);
    }
    s
}

// ---- synthetic families --------------------------------------------------------------------

pub const GIVEN: &[&str] = &[
    "Noor", "Sem", "Emma", "Mohammed", "Julia", "Daan", "Fatima", "Lucas", "Aya", "Finn", "Sara",
    "Yusuf", "Tess", "Milan", "Amira", "Levi", "Zoë", "Adam", "Lotte", "Bram", "Ilse", "Omar",
    "Nina", "Thijs",
];
pub const FAMILY_NAMES: &[&str] = &[
    "de Jong",
    "Jansen",
    "de Vries",
    "van den Berg",
    "Bakker",
    "El Amrani",
    "Yılmaz",
    "Visser",
    "Smit",
    "Meijer",
    "de Boer",
    "Mulder",
    "Bouali",
    "Kaya",
    "Dekker",
    "Vermeulen",
    "Brouwer",
    "van Dijk",
    "Hoekstra",
    "Öztürk",
];
pub const STREETS: &[&str] = &[
    "Kerkstraat",
    "Dorpsstraat",
    "Molenweg",
    "Stationsplein",
    "Schoolstraat",
    "Julianalaan",
    "Beatrixstraat",
    "Industrieweg",
    "Parallelweg",
    "Lindelaan",
];
pub const WORDS: &[&str] = &[
    "moeder",
    "kinderen",
    "school",
    "woning",
    "schulden",
    "contact",
    "wijkteam",
    "veilig",
    "afspraak",
    "huisbezoek",
    "rustig",
    "spanning",
    "ex-partner",
    "omgangsregeling",
    "werk",
    "slaap",
    "huisarts",
    "jeugdhulp",
    "budgetcoach",
    "sport",
    "oma",
    "buurvrouw",
    "signalen",
    "gesprek",
    "goed",
    "zorgen",
];
pub const STRESSORS: &[&str] = &[
    "debts",
    "housing",
    "work",
    "mental_health",
    "addiction",
    "isolation",
    "custody",
];
pub const LANGUAGES: &[&str] = &["nl", "nl", "nl", "ar", "tr", "en", "pl", "ti", "so"];

pub fn pick<'a>(rng: &mut StdRng, from: &[&'a str]) -> &'a str {
    from.choose(rng).copied().unwrap_or("x")
}

pub fn sentence(rng: &mut StdRng, words: usize) -> String {
    let mut s = String::new();
    for i in 0..words {
        if i > 0 {
            s.push(' ');
        }
        s.push_str(pick(rng, WORDS));
    }
    s.push('.');
    s
}

pub fn date_between(rng: &mut StdRng, from_year: i32, to_year: i32) -> NaiveDate {
    let from = NaiveDate::from_ymd_opt(from_year, 1, 1).unwrap();
    let days = NaiveDate::from_ymd_opt(to_year, 12, 31)
        .unwrap()
        .signed_duration_since(from)
        .num_days();
    from + TimeDelta::days(rng.gen_range(0..=days))
}

pub fn synthetic_family(
    rng: &mut StdRng,
    i: usize,
    today: NaiveDate,
    spread_days: i64,
) -> Enrolment {
    synthetic_family_with(rng, i, today, spread_days, 3)
}

/// A synthetic family of one adult and `children` children.
pub fn synthetic_family_with(
    rng: &mut StdRng,
    i: usize,
    today: NaiveDate,
    spread_days: i64,
    children: usize,
) -> Enrolment {
    let surname = pick(rng, FAMILY_NAMES);
    let municipality = MUNICIPALITIES[i % MUNICIPALITIES.len()].0;
    let episode_date = today - TimeDelta::days(rng.gen_range(0..spread_days));
    let mut members = vec![MemberInput {
        role: Role::Adult,
        name: format!("{} {surname}", pick(rng, GIVEN)),
        birth_date: Some(date_between(rng, 1970, 2002)),
        phone: Some(format!("+31 6 {:08}", rng.gen_range(0..100_000_000u32))),
        email: Some(format!("ouder{i}@mail.example.org")),
        sex: Some(Sex::F),
    }];
    for _ in 0..children {
        members.push(MemberInput {
            role: Role::Child,
            name: format!("{} {surname}", pick(rng, GIVEN)),
            birth_date: Some(date_between(rng, 2009, 2024)),
            phone: None,
            email: None,
            sex: Some(if rng.gen_bool(0.5) { Sex::F } else { Sex::M }),
        });
    }
    let how_many = rng.gen_range(0..4);
    let mut stressors: Vec<String> = STRESSORS
        .choose_multiple(rng, how_many)
        .map(|s| s.to_string())
        .collect();
    stressors.sort();
    let words = rng.gen_range(15..60);
    Enrolment {
        episode: Episode {
            kind: if i.is_multiple_of(3) {
                EpisodeKind::CaseClosed
            } else {
                EpisodeKind::ShelterExit
            },
            date: episode_date,
        },
        municipality: municipality.to_string(),
        plan: "standard".into(),
        language: pick(rng, LANGUAGES).to_string(),
        interpreter_needed: rng.gen_bool(0.25),
        case_director: CaseDirector {
            name: format!("{} {}", pick(rng, GIVEN), pick(rng, FAMILY_NAMES)),
            email: format!("regie{}@team.example.org", i % 500),
        },
        address: Some(format!(
            "{} {}, {:04} {}{}",
            pick(rng, STREETS),
            rng.gen_range(1..300),
            rng.gen_range(1000..9999),
            char::from(b'A' + rng.gen_range(0..26u8)),
            char::from(b'A' + rng.gen_range(0..26u8)),
        )),
        notes: Some(sentence(rng, words)),
        stressors,
        members,
    }
}

// ---- measuring -----------------------------------------------------------------------------

pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

pub fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3)
}

pub fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

pub fn table(title: &str, rows: &[(String, String)]) {
    let w = rows
        .iter()
        .map(|(k, _)| k.chars().count())
        .max()
        .unwrap_or(0);
    println!("\n{title}");
    println!("{}", "-".repeat(title.chars().count()));
    for (k, v) in rows {
        println!("{k:<w$}  {v}");
    }
}

pub async fn open_app(config_path: &Path, clock: SharedClock, mode: OpenMode) -> App {
    let text = std::fs::read_to_string(config_path).unwrap();
    // No NAZORG_* overrides: the benchmark's config is exactly the file.
    let cfg = Config::parse(&text, config_path, &BTreeMap::new()).expect("valid config");
    App::open(cfg, clock, mode).await.expect("app opens")
}

// ---- PostgreSQL ----------------------------------------------------------------------------

/// `NAZORG_BENCH_DATABASE_URL`: a PostgreSQL server to run on instead of SQLite (e.g.
/// `postgres://postgres@localhost/postgres?host=/tmp/x&port=5432`, as
/// `scripts/bench-postgres` starts one). Each run gets a fresh database of its own there,
/// dropped at the end.
pub const BENCH_DATABASE_VAR: &str = "NAZORG_BENCH_DATABASE_URL";

/// A fresh database on the benchmark's PostgreSQL server, dropped on drop.
pub struct BenchDb {
    admin: String,
    pub name: String,
    pub url: String,
}

impl BenchDb {
    /// `None` when `NAZORG_BENCH_DATABASE_URL` is unset or empty: the bench runs on SQLite.
    pub fn from_env() -> Option<BenchDb> {
        let admin = std::env::var(BENCH_DATABASE_VAR).ok()?;
        if admin.trim().is_empty() {
            return None;
        }
        let name = format!(
            "nazorg_bench_{}_{:08x}",
            std::process::id(),
            rand::random::<u32>()
        );
        psql(&admin, &format!("CREATE DATABASE {name}"));
        let url = url_with_database(&admin, &name);
        Some(BenchDb { admin, name, url })
    }

    /// Runs SQL with `psql` on this database; rows as `a|b` lines.
    pub fn psql(&self, sql: &str) -> String {
        psql(&self.url, sql)
    }
}

impl Drop for BenchDb {
    fn drop(&mut self) {
        let _ = std::process::Command::new("psql")
            .args(["-X", "-q", "-d", &self.admin, "-c"])
            .arg(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .output();
    }
}

/// The same server URL naming another database.
pub fn url_with_database(url: &str, name: &str) -> String {
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

/// Runs SQL with `psql` (no psqlrc, stop on the first error), output `a|b`, one row a line.
pub fn psql(url: &str, sql: &str) -> String {
    let out = std::process::Command::new("psql")
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
            sql,
        ])
        .env("PGOPTIONS", "-c client_min_messages=warning")
        .output()
        .expect("psql starts");
    assert!(
        out.status.success(),
        "psql: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// Runs a psql script from stdin (`-f -`) with its output to /dev/null and `\timing` lines
/// collected: what psql prints as `Time: 1.234 ms`, per statement, in order.
pub fn psql_script(url: &str, script: &str) -> (Duration, Vec<Duration>) {
    use std::io::Write;
    let t = std::time::Instant::now();
    let mut child = std::process::Command::new("psql")
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url, "-f", "-"])
        .env("PGOPTIONS", "-c client_min_messages=warning")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("psql starts");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(script.as_bytes())
        .expect("script written");
    let out = child.wait_with_output().expect("psql runs");
    let took = t.elapsed();
    assert!(
        out.status.success(),
        "psql: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let timings = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.strip_prefix("Time: "))
        .filter_map(|l| l.split_whitespace().next())
        .filter_map(|ms| ms.parse::<f64>().ok())
        .map(|ms| Duration::from_secs_f64(ms / 1e3))
        .collect();
    (took, timings)
}

/// The config text with its `database.url` pointing at `db` (unchanged without one).
pub fn on_database(text: &str, db: Option<&BenchDb>) -> String {
    match db {
        Some(db) => text.replace(
            "url = \"sqlite://var/nazorg.db\"",
            &format!("url = \"{}\"", db.url),
        ),
        None => text.to_string(),
    }
}

/// "SQLite" or "PostgreSQL", for the report.
pub fn backend_name(db: Option<&BenchDb>) -> &'static str {
    if db.is_some() { "PostgreSQL" } else { "SQLite" }
}

/// A PostgreSQL bytea literal for `bytes` (`'\x…'`), for the psql baselines.
pub fn bytea_literal(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2 + 4);
    s.push_str("'\\x");
    for b in bytes {
        s.push_str(&format!("{b:02x}"));
    }
    s.push('\'');
    s
}

/// A size from the environment (`BENCH_FAMILIES`, …), or the default.
pub fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The machine's load averages (1, 5, 15 min), printed beside each number: on a shared
/// machine a time means little without them.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

/// CPU time (user + system) used so far by this process (`children: false`, every thread)
/// or by its waited-for children (`true`): on a loaded machine the wall time of a step
/// includes waiting for a core, its CPU time does not.
pub fn cpu_time(children: bool) -> std::time::Duration {
    let who = if children {
        libc::RUSAGE_CHILDREN
    } else {
        libc::RUSAGE_SELF
    };
    // SAFETY: getrusage writes one plain struct we own.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(who, &mut u) } != 0 {
        return std::time::Duration::ZERO;
    }
    let t = |v: libc::timeval| {
        std::time::Duration::from_secs(v.tv_sec as u64)
            + std::time::Duration::from_micros(v.tv_usec as u64)
    };
    t(u.ru_utime) + t(u.ru_stime)
}

/// The `sqlite3` CLI the plain-SQL comparisons run.
pub const SQLITE3: &str = "/usr/bin/sqlite3";

/// Runs `sqlite3 OPTIONS DB` with `stdin` as its script; its standard output, or a panic
/// with its standard error when it fails.
pub fn sqlite3(db: &std::path::Path, options: &[&str], stdin: &[u8]) -> Vec<u8> {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new(SQLITE3)
        .args(options)
        .arg(db)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sqlite3 starts");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin)
        .expect("script written");
    let out = child.wait_with_output().expect("sqlite3 runs");
    assert!(
        out.status.success(),
        "sqlite3 failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Where benches cache generated installations between runs: `BENCH_CACHE`, else
/// `$CARGO_TARGET_DIR/bench-cache` (the crate's `target/` without it).
pub fn cache_root() -> std::path::PathBuf {
    use std::path::{Path, PathBuf};
    if let Some(p) = std::env::var_os("BENCH_CACHE") {
        return PathBuf::from(p);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    target.join("bench-cache")
}

/// One number from the installation's database (a count, an instant).
pub async fn scalar(app: &App, sql: &str) -> i64 {
    sqlx::query_scalar::<_, i64>(sql)
        .fetch_one(app.store.pool())
        .await
        .unwrap()
}

/// How many open slots of running families owe a notice at `t` (epoch seconds).
pub fn count_sql(t: i64) -> String {
    format!(
        "SELECT COUNT(*) FROM checkins c JOIN families f ON f.id = c.family_id \
         WHERE c.status = 'open' AND c.next_notice_at <= {t} AND f.status = 'running'"
    )
}

/// The sweep instant at which about `share` of the `slots` owe a notice: the
/// (share × slots)-th smallest `next_notice_at` among open slots of running families,
/// rounded up to the next 5-minute tick. Returns (that target count, t in epoch seconds,
/// the slots owed at t).
pub async fn calibrate(app: &App, slots: i64, share: f64) -> (i64, i64, i64) {
    let target = ((slots as f64) * share).round().max(1.0) as i64;
    let kth = scalar(
        app,
        &format!(
            "SELECT c.next_notice_at FROM checkins c JOIN families f ON f.id = c.family_id \
             WHERE c.status = 'open' AND c.next_notice_at IS NOT NULL AND f.status = 'running' \
             ORDER BY c.next_notice_at LIMIT 1 OFFSET {}",
            target - 1
        ),
    )
    .await;
    let t_secs = (kth + 299) / 300 * 300;
    (target, t_secs, scalar(app, &count_sql(t_secs)).await)
}
