//! Typed, validated configuration: TOML file → `NAZORG_*` environment overrides → checks.
//!
//! Every problem is reported with its key path (`plans.standard.checkins[2]`), all at once,
//! so an operator fixes a config in one round. Unknown keys are rejected, listed with the
//! other problems: a typo in a reminder setting must not silently fall back to a default.

mod api;
mod crypto;
mod database;
mod export;
mod handover;
mod mail;
mod municipalities;
mod plans;
mod schedule;
mod signals;

pub use self::api::*;
pub use self::crypto::*;
pub use self::database::*;
pub use self::export::*;
pub use self::handover::*;
pub use self::mail::*;
pub use self::municipalities::*;
pub use self::plans::*;
use self::schedule::*;
use self::signals::*;

use crate::mail::Language;
use crate::types::duration::IsoDuration;
use crate::types::plan::PlanRule;
use crate::types::reminder::ReminderPolicy;
use crate::types::signals::{
    Baseline, Better, Catalog, Condition, Indicator, IndicatorType, Op, Rule, RuleKind, Scope,
    Severity, check_condition,
};
use chrono::NaiveTime;
use chrono_tz::Tz;
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

/// Where the config is looked for when `--config` is not given and `$NAZORG_CONFIG` is unset.
pub const DEFAULT_PATH: &str = "/etc/nazorg/nazorg.toml";

/// One problem in the config, with the key it concerns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigIssue {
    pub key: String,
    pub message: String,
}

impl fmt::Display for ConfigIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {}", issues.iter().map(|i| i.to_string()).collect::<Vec<_>>().join("; "))]
    Invalid {
        path: PathBuf,
        issues: Vec<ConfigIssue>,
    },
}

impl ConfigError {
    pub fn issues(&self) -> Vec<ConfigIssue> {
        match self {
            ConfigError::Read { source, .. } => vec![ConfigIssue {
                key: "(file)".into(),
                message: source.to_string(),
            }],
            ConfigError::Invalid { issues, .. } => issues.clone(),
        }
    }
}

// ---- the file as written ------------------------------------------------------------------

#[derive(Debug, Deserialize)]
struct RawConfig {
    #[serde(default = "default_state_dir")]
    state_dir: PathBuf,
    database: RawDatabase,
    crypto: RawCrypto,
    mail: RawMail,
    #[serde(default)]
    schedule: RawSchedule,
    #[serde(default)]
    plans: BTreeMap<String, RawPlan>,
    #[serde(default)]
    reminders: RawReminders,
    #[serde(default)]
    dispatch: RawDispatch,
    #[serde(default)]
    retention: RawRetention,
    #[serde(default)]
    api: RawApi,
    #[serde(default)]
    web: RawWeb,
    #[serde(default)]
    handover: RawHandover,
    #[serde(default)]
    export: RawExport,
    #[serde(default)]
    municipalities: Vec<RawMunicipality>,
    #[serde(default)]
    indicators: Vec<RawIndicator>,
    #[serde(default)]
    rules: Vec<RawRule>,
    #[serde(default)]
    digest: RawDigest,
    #[serde(default)]
    flags: RawFlags,
}

#[derive(Debug, Deserialize)]
struct RawLabels {
    nl: String,
    en: String,
}

fn default_state_dir() -> PathBuf {
    PathBuf::from("var")
}

// ---- the validated config -------------------------------------------------------------------

/// The validated configuration. Paths are absolute (resolved against the config's folder).
#[derive(Clone, Debug)]
pub struct Config {
    pub path: PathBuf,
    pub state_dir: PathBuf,
    pub database: DatabaseConfig,
    pub crypto: CryptoConfig,
    pub mail: MailConfig,
    pub timezone: Tz,
    /// The sweep's wake-up rule (cron syntax with seconds first, UTC; parsed by croner).
    pub sweep_cron: String,
    pub plans: BTreeMap<String, PlanRule>,
    pub reminders: ReminderPolicy,
    pub dispatch: DispatchConfig,
    /// How long after the end of a plan a family's data is kept before the sweep erases it.
    pub retention_after: IsoDuration,
    pub api: ApiConfig,
    pub web: WebConfig,
    pub handover: HandoverConfig,
    pub export: ExportConfig,
    pub municipalities: BTreeMap<String, Municipality>,
    /// `[[indicators]]` and `[[rules]]`: what is observed and when it raises a flag.
    pub signals: Catalog,
    /// Local wall time of the daily digest of amber and info flags (working days).
    pub digest_local_time: NaiveTime,
    /// Working days an unacknowledged red flag waits before the coordinator is told.
    pub red_escalate_after: u32,
    /// How long before a court measure against an ex-partner ends the family is flagged.
    pub measure_notice: IsoDuration,
}

/// The config path from `--config`, else `$NAZORG_CONFIG`, else the system default.
pub fn resolve_path(flag: Option<PathBuf>) -> PathBuf {
    flag.or_else(|| std::env::var_os("NAZORG_CONFIG").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(DEFAULT_PATH))
}

impl Config {
    /// Reads, overrides from the process environment and validates.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let env: BTreeMap<String, String> = std::env::vars()
            .filter(|(k, _)| k.starts_with("NAZORG_") || k == CREDENTIALS_DIRECTORY)
            .collect();
        Self::parse(&text, path, &env)
    }

    /// Parses config text; `env` holds the `NAZORG_*` overrides to apply.
    pub fn parse(
        text: &str,
        path: &Path,
        env: &BTreeMap<String, String>,
    ) -> Result<Config, ConfigError> {
        let invalid = |issues| ConfigError::Invalid {
            path: path.to_path_buf(),
            issues,
        };
        let de = toml::Deserializer::new(text);
        // Unknown keys are collected, not fatal: they are reported with every other problem.
        let mut unknown = Vec::new();
        let parsed: Result<RawConfig, _> = serde_path_to_error::deserialize(
            serde_ignored::Deserializer::new(de, &mut |p: serde_ignored::Path| {
                unknown.push(key_path(&p))
            }),
        );
        let mut unknown: Vec<ConfigIssue> = unknown
            .into_iter()
            .map(|key| ConfigIssue {
                message: format!(
                    "unknown field `{}`",
                    key.rsplit(['.', '[']).next().unwrap_or(&key)
                ),
                key,
            })
            .collect();
        let mut raw = parsed.map_err(|e| {
            let key = e.path().to_string();
            let inner = e.into_inner();
            let message = match inner.span() {
                // A syntax error has no key path; say where it is instead.
                Some(span) if key == "." => format!(
                    "line {}: {}",
                    text[..span.start.min(text.len())].matches('\n').count() + 1,
                    inner.message().trim_end().replace('\n', "; ")
                ),
                _ => inner.message().to_string(),
            };
            let mut issues = std::mem::take(&mut unknown);
            issues.push(ConfigIssue {
                key: if key == "." { "(file)".into() } else { key },
                message,
            });
            invalid(issues)
        })?;
        apply_env(&mut raw, env);
        let base = path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        let base = if base.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            base
        };
        let base = std::path::absolute(&base).unwrap_or(base);
        match validate(raw, path, &base) {
            Ok(cfg) if unknown.is_empty() => Ok(cfg),
            Ok(_) => Err(invalid(unknown)),
            Err(issues) => {
                unknown.extend(issues);
                Err(invalid(unknown))
            }
        }
    }

    pub fn municipality(&self, code: &str) -> Option<&Municipality> {
        self.municipalities.get(code)
    }

    /// Where mail about `code` goes: the configured municipality, or, for a well-formed CBS
    /// code outside the configured region, the `handover.outside_region_email` desk (as
    /// team and coordinator, without a key: dossiers are withheld). `None` otherwise.
    pub fn addressee(&self, code: &str) -> Option<std::borrow::Cow<'_, Municipality>> {
        if let Some(m) = self.municipalities.get(code) {
            return Some(std::borrow::Cow::Borrowed(m));
        }
        let desk = self.handover.outside_region_email.as_ref()?;
        is_cbs_code(code).then(|| {
            std::borrow::Cow::Owned(Municipality {
                code: code.to_string(),
                name: code.to_string(),
                team_email: desk.clone(),
                coordinator_email: desk.clone(),
                region: "outside".into(),
                age_recipient: None,
                coordinator_name: None,
            })
        })
    }
}

/// A key path as the issues name it: `plans.standard.checkin`, `municipalities[1].phone`.
fn key_path(p: &serde_ignored::Path) -> String {
    use serde_ignored::Path as P;
    match p {
        P::Root => String::new(),
        P::Seq { parent, index } => format!("{}[{index}]", key_path(parent)),
        P::Map { parent, key } => match key_path(parent) {
            s if s.is_empty() => key.clone(),
            s => format!("{s}.{key}"),
        },
        P::Some { parent } | P::NewtypeStruct { parent } | P::NewtypeVariant { parent } => {
            key_path(parent)
        }
    }
}

/// `NAZORG_API_LISTEN`, `NAZORG_DATABASE_URL`, `NAZORG_MAIL_TRANSPORT`, `NAZORG_MAIL_URL`, `NAZORG_MAIL_DIR`,
/// `NAZORG_STATE_DIR`, `NAZORG_IDENTITY_FILE` override the file, for containers and units.
fn apply_env(raw: &mut RawConfig, env: &BTreeMap<String, String>) {
    if let Some(v) = env.get("NAZORG_STATE_DIR") {
        raw.state_dir = PathBuf::from(v);
    }
    if let Some(v) = env.get("NAZORG_API_LISTEN") {
        raw.api.listen = v.clone();
    }
    if let Some(v) = env.get("NAZORG_DATABASE_URL") {
        raw.database.url = v.clone();
    }
    if let Some(v) = env.get("NAZORG_IDENTITY_FILE") {
        raw.crypto.identity_file = PathBuf::from(v);
    }
    if let Some(v) = env.get("NAZORG_MAIL_TRANSPORT") {
        raw.mail.transport = v.clone();
    }
    if let Some(v) = env.get("NAZORG_MAIL_URL") {
        raw.mail.url = Some(v.clone());
    }
    if let Some(v) = env.get("NAZORG_MAIL_DIR") {
        raw.mail.dir = Some(PathBuf::from(v));
    }
    // systemd's LoadCredential=smtp-password:… lands in $CREDENTIALS_DIRECTORY.
    if raw.mail.password_file.is_none()
        && let Some(dir) = env.get(CREDENTIALS_DIRECTORY)
    {
        let p = Path::new(dir).join("smtp-password");
        if p.is_file() {
            raw.mail.password_file = Some(p);
        }
    }
}

/// Passed to [`Config::parse`] with the `NAZORG_*` overrides: where systemd puts credentials.
pub const CREDENTIALS_DIRECTORY: &str = "CREDENTIALS_DIRECTORY";

struct Issues(Vec<ConfigIssue>);

impl Issues {
    fn push(&mut self, key: impl Into<String>, message: impl Into<String>) {
        self.0.push(ConfigIssue {
            key: key.into(),
            message: message.into(),
        });
    }

    fn duration(&mut self, key: &str, value: &str) -> Option<IsoDuration> {
        match value.parse::<IsoDuration>() {
            Ok(d) => Some(d),
            Err(e) => {
                self.push(key, e.to_string());
                None
            }
        }
    }
}

fn resolve(base: &Path, p: &Path) -> PathBuf {
    let joined = if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    };
    // Fold `..` and `.` lexically so logs show `/srv/nazorg/var`, not `/srv/nazorg/config/../var`.
    let mut out = PathBuf::new();
    for c in joined.components() {
        match c {
            std::path::Component::ParentDir => {
                if !out.pop() {
                    out.push(c);
                }
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// A plausible email address or `Name <address>`; the real check is the SMTP server's.
pub fn plausible_email(s: &str) -> bool {
    let addr = match (s.rfind('<'), s.ends_with('>')) {
        (Some(i), true) => &s[i + 1..s.len() - 1],
        _ => s,
    };
    let Some((local, domain)) = addr.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.is_empty()
        && !domain.contains('@')
        && !addr.chars().any(|c| c.is_whitespace() || c.is_control())
        && domain.contains('.')
}

/// CBS municipality codes: `GM` and four digits.
pub fn is_cbs_code(s: &str) -> bool {
    s.len() == 6 && s.starts_with("GM") && s[2..].chars().all(|c| c.is_ascii_digit())
}

fn validate(raw: RawConfig, path: &Path, base: &Path) -> Result<Config, Vec<ConfigIssue>> {
    let mut is = Issues(Vec::new());
    let state_dir = resolve(base, &raw.state_dir);

    // database
    let url = raw.database.url.trim().to_string();
    let (backend, sqlite_path) = match parse_database_url(&url, base) {
        Ok(found) => found,
        Err(message) => {
            is.push("database.url", message);
            (Backend::Sqlite, PathBuf::new())
        }
    };
    let password_file = raw
        .database
        .password_file
        .as_deref()
        .map(|p| resolve(base, p));
    if password_file.is_some() && backend != Backend::Postgres {
        is.push(
            "database.password_file",
            "only used with a postgres:// database.url",
        );
    }

    // crypto
    for (i, r) in raw.crypto.recipients.iter().enumerate() {
        if crate::crypto::parse_recipient(r).is_err() {
            is.push(
                format!("crypto.recipients[{i}]"),
                "not an age X25519 recipient (age1…)",
            );
        }
    }

    // mail
    let transport = match raw.mail.transport.as_str() {
        "file" => match &raw.mail.dir {
            Some(d) => Some(MailTransport::File {
                dir: resolve(base, d),
            }),
            None => {
                is.push("mail.dir", "required when mail.transport = \"file\"");
                None
            }
        },
        "smtp" => match &raw.mail.url {
            Some(u) => {
                let password = match &raw.mail.password_file {
                    None => Ok(None),
                    Some(p) => read_password(&resolve(base, p)).map(Some),
                };
                match password {
                    Err(e) => {
                        is.push("mail.password_file", e);
                        None
                    }
                    Ok(password) => match crate::mail::Transport::smtp_with(u, password.as_ref()) {
                        Ok(_) => Some(MailTransport::Smtp {
                            url: u.clone(),
                            password,
                        }),
                        Err(e) => {
                            is.push("mail.url", e.to_string());
                            None
                        }
                    },
                }
            }
            None => {
                is.push("mail.url", "required when mail.transport = \"smtp\"");
                None
            }
        },
        other => {
            is.push(
                "mail.transport",
                format!("`{other}` is not a transport; use \"file\" or \"smtp\""),
            );
            None
        }
    };
    if !plausible_email(&raw.mail.from) {
        is.push("mail.from", "not an email address");
    }
    let language = match raw.mail.language.as_deref() {
        None | Some("nl") => Language::Nl,
        Some("en") => Language::En,
        Some(other) => {
            is.push(
                "mail.language",
                format!("`{other}` is not supported; use nl or en"),
            );
            Language::Nl
        }
    };
    let keep_sent = is
        .duration("mail.keep_sent", &raw.mail.keep_sent)
        .unwrap_or(IsoDuration::days(30));
    if keep_sent.is_zero() {
        is.push("mail.keep_sent", "must be longer than zero");
    }

    // schedule
    let timezone = match raw.schedule.timezone.parse::<Tz>() {
        Ok(tz) => tz,
        Err(_) => {
            is.push(
                "schedule.timezone",
                format!("`{}` is not an IANA time zone", raw.schedule.timezone),
            );
            chrono_tz::Europe::Amsterdam
        }
    };
    let sweep_parse = croner::parser::CronParser::builder()
        .seconds(croner::parser::Seconds::Required)
        .build()
        .parse(&raw.schedule.sweep);
    if let Err(e) = sweep_parse {
        is.push(
            "schedule.sweep",
            format!("not a cron expression with a seconds field first: {e}"),
        );
    }

    // plans
    let mut plans = BTreeMap::new();
    if raw.plans.is_empty() {
        is.push(
            "plans",
            "at least one plan is needed, e.g. [plans.standard]",
        );
    }
    for (name, p) in &raw.plans {
        let key = format!("plans.{name}");
        let issues_before = is.0.len();
        let offsets: Vec<IsoDuration> = p
            .checkins
            .iter()
            .enumerate()
            .filter_map(|(i, c)| is.duration(&format!("{key}.checkins[{i}]"), c))
            .collect();
        let local_time = match NaiveTime::parse_from_str(&p.local_time, "%H:%M") {
            Ok(t) => t,
            Err(_) => {
                is.push(
                    format!("{key}.local_time"),
                    "expected HH:MM, e.g. \"09:00\"",
                );
                NaiveTime::MIN
            }
        };
        let cron = match &p.cron {
            Some(c) => match plan_cron_parser().parse(c) {
                Ok(c) => Some(c),
                Err(e) => {
                    is.push(format!("{key}.cron"), format!("not a cron expression: {e}"));
                    None
                }
            },
            None => None,
        };
        let duration = p
            .duration
            .as_ref()
            .and_then(|d| is.duration(&format!("{key}.duration"), d));
        if p.checkins.is_empty() && p.cron.is_none() {
            is.push(&key, "a plan needs `checkins` offsets or a `cron` rule");
        }
        if p.cron.is_some() && p.duration.is_none() {
            is.push(
                format!("{key}.duration"),
                "required with `cron`, e.g. \"P24M\"",
            );
        }
        let rule = PlanRule {
            offsets,
            cron,
            duration,
            local_time,
            // The configured extra closing days are filled in with `handover.holidays` below.
            working_days: p
                .working_days_only
                .then(|| crate::types::calendar::WorkingDays {
                    holidays: BTreeSet::new(),
                    dutch_holidays: true,
                }),
        };
        // Try the plan on a sample start so runaway cron rules are caught at start-up.
        // Only a plan without other issues: a broken rule would otherwise also be
        // reported as "yields no check-ins".
        if let Some(sample) = chrono::NaiveDate::from_ymd_opt(2027, 1, 1)
            && is.0.len() == issues_before
            && let Err(e) = rule.slots(sample, timezone)
        {
            is.push(&key, e.to_string());
        }
        plans.insert(name.clone(), rule);
    }

    // reminders
    let r = &raw.reminders;
    let reminders = ReminderPolicy {
        lead: is
            .duration("reminders.lead", &r.lead)
            .unwrap_or(IsoDuration::ZERO),
        overdue_after: is
            .duration("reminders.overdue_after", &r.overdue_after)
            .unwrap_or(IsoDuration::ZERO),
        repeat_every: is
            .duration("reminders.repeat_every", &r.repeat_every)
            .unwrap_or(IsoDuration::ZERO),
        max_overdue: r.max_overdue,
        retry_after: is
            .duration("reminders.retry_after", &r.retry_after)
            .unwrap_or(IsoDuration::ZERO),
        max_attempts: r.max_attempts,
        lead_interpreter: is
            .duration("reminders.lead_interpreter", &r.lead_interpreter)
            .unwrap_or(IsoDuration::ZERO),
    };
    if !(1..=12).contains(&r.max_attempts) {
        is.push("reminders.max_attempts", "1 to 12 attempts");
    }
    if reminders.retry_after.is_zero() && r.max_attempts > 1 {
        is.push("reminders.retry_after", "must be longer than zero");
    }
    if reminders.repeat_every.is_zero() && r.max_overdue > 0 {
        is.push("reminders.repeat_every", "must be longer than zero");
    }
    if r.max_overdue > 52 {
        is.push("reminders.max_overdue", "at most 52");
    }

    // dispatch
    let d = &raw.dispatch;
    let dispatch = DispatchConfig {
        max_attempts: d.max_attempts,
        backoff: is
            .duration("dispatch.backoff", &d.backoff)
            .unwrap_or(IsoDuration::ZERO),
        backoff_max: is
            .duration("dispatch.backoff_max", &d.backoff_max)
            .unwrap_or(IsoDuration::ZERO),
        interval: is
            .duration("dispatch.interval", &d.interval)
            .unwrap_or(IsoDuration::ZERO),
    };
    if d.max_attempts == 0 {
        is.push("dispatch.max_attempts", "must be at least 1");
    }
    if dispatch.interval.is_zero() {
        is.push("dispatch.interval", "must be longer than zero");
    }

    // retention
    let retention_after = is
        .duration("retention.after", &raw.retention.after)
        .unwrap_or(IsoDuration::months(60));
    if retention_after.is_zero() {
        is.push("retention.after", "must be longer than zero");
    }

    // api
    let listen = match raw.api.listen.parse::<std::net::SocketAddr>() {
        Ok(a) => a,
        Err(_) => {
            is.push("api.listen", "expected IP:PORT, e.g. \"127.0.0.1:8080\"");
            std::net::SocketAddr::from(([127, 0, 0, 1], 8080))
        }
    };
    if raw.api.rate_limit == 0 {
        is.push("api.rate_limit", "must be at least 1");
    }
    if raw.api.burst == 0 {
        is.push("api.burst", "must be at least 1");
    }
    if raw.api.max_connections == 0 {
        is.push("api.max_connections", "must be at least 1");
    }
    let header_timeout = match is.duration("api.header_timeout", &raw.api.header_timeout) {
        Some(d) if d.nominal_seconds() >= 1 && d.nominal_seconds() <= 300 => {
            std::time::Duration::from_secs(d.nominal_seconds().unsigned_abs())
        }
        Some(_) => {
            is.push(
                "api.header_timeout",
                "must be between PT1S and PT5M, e.g. \"PT10S\"",
            );
            std::time::Duration::from_secs(10)
        }
        None => std::time::Duration::from_secs(10),
    };
    let token_lifetime = is
        .duration("api.token_lifetime", &raw.api.token_lifetime)
        .unwrap_or(IsoDuration::days(90));
    if token_lifetime.is_zero() {
        is.push("api.token_lifetime", "must be longer than zero");
    }
    let api = ApiConfig {
        listen,
        rate_limit: raw.api.rate_limit,
        burst: raw.api.burst,
        max_connections: raw.api.max_connections,
        header_timeout,
        token_lifetime,
        metrics_admin_only: raw.api.metrics_admin_only,
    };

    // web
    let base_url = match &raw.web.base_url {
        None => format!("http://{listen}"),
        Some(u) => {
            let u = u.trim_end_matches('/').to_string();
            let rest = u
                .strip_prefix("https://")
                .or_else(|| u.strip_prefix("http://"));
            match rest {
                Some(host) if !host.is_empty() && !host.contains(['/', '?', '#', ' ']) => {}
                _ => is.push(
                    "web.base_url",
                    "expected http(s)://HOST[:PORT] without a path, e.g. \"https://nazorg.example.nl\"",
                ),
            }
            u
        }
    };
    let session_idle = is
        .duration("web.session_idle", &raw.web.session_idle)
        .unwrap_or(IsoDuration::ZERO);
    if session_idle.is_zero() {
        is.push("web.session_idle", "must be longer than zero, e.g. PT30M");
    }
    let web = WebConfig {
        base_url,
        session_idle,
    };

    // handover
    let h = &raw.handover;
    let max_move_ahead = is
        .duration("handover.max_move_ahead", &h.max_move_ahead)
        .unwrap_or(IsoDuration::months(3));
    if max_move_ahead.is_zero() {
        is.push("handover.max_move_ahead", "must be longer than zero");
    }
    if h.remind_after == 0 {
        is.push("handover.remind_after", "must be at least 1 working day");
    }
    if h.escalate_after <= h.remind_after {
        is.push(
            "handover.escalate_after",
            "must be more working days than handover.remind_after",
        );
    }
    if h.escalate_after > 60 {
        is.push("handover.escalate_after", "at most 60 working days");
    }
    let mut holidays = BTreeSet::new();
    for (i, day) in h.holidays.iter().enumerate() {
        match chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d") {
            Ok(d) => {
                holidays.insert(d);
            }
            Err(_) => is.push(
                format!("handover.holidays[{i}]"),
                "expected a date YYYY-MM-DD",
            ),
        }
    }
    if let Some(e) = &h.outside_region_email
        && !plausible_email(e)
    {
        is.push("handover.outside_region_email", "not an email address");
    }
    let intro = is
        .duration("handover.intro", &h.intro)
        .unwrap_or(IsoDuration::ZERO);
    let handover = HandoverConfig {
        intro,
        outside_region_email: h.outside_region_email.clone(),
        remind_after: h.remind_after,
        escalate_after: h.escalate_after,
        max_move_ahead,
        working_days: crate::types::calendar::WorkingDays {
            holidays: holidays.clone(),
            dutch_holidays: true,
        },
    };
    // The extra closing days apply to due moments too.
    for plan in plans.values_mut() {
        if let Some(w) = &mut plan.working_days {
            w.holidays = holidays.clone();
        }
    }

    // municipalities
    let mut municipalities = BTreeMap::new();
    if raw.municipalities.is_empty() {
        is.push(
            "municipalities",
            "at least one [[municipalities]] entry is needed",
        );
    }
    let mut seen = BTreeSet::new();
    for (i, m) in raw.municipalities.into_iter().enumerate() {
        let key = format!("municipalities[{i}]");
        if !is_cbs_code(&m.code) {
            is.push(format!("{key}.code"), "expected a CBS code such as GM0363");
        }
        if !seen.insert(m.code.clone()) {
            is.push(format!("{key}.code"), format!("{} is listed twice", m.code));
        }
        if m.name.trim().is_empty() {
            is.push(format!("{key}.name"), "must not be empty");
        }
        if !plausible_email(&m.team_email) {
            is.push(format!("{key}.team_email"), "not an email address");
        }
        if !plausible_email(&m.coordinator_email) {
            is.push(format!("{key}.coordinator_email"), "not an email address");
        }
        if m.region.trim().is_empty() {
            is.push(format!("{key}.region"), "must not be empty");
        }
        if let Some(r) = &m.age_recipient
            && crate::crypto::parse_recipient(r).is_err()
        {
            is.push(
                format!("{key}.age_recipient"),
                "not an age X25519 recipient (age1…)",
            );
        }
        municipalities.insert(m.code.clone(), m_into(m));
    }

    let signals = validate_signals(&raw.indicators, &raw.rules, &mut is);
    if !(1..=20).contains(&raw.flags.red_escalate_after) {
        is.push("flags.red_escalate_after", "1 to 20 working days");
    }
    let measure_notice = is
        .duration("flags.measure_notice", &raw.flags.measure_notice)
        .unwrap_or(IsoDuration::ZERO);
    let digest_local_time = match NaiveTime::parse_from_str(&raw.digest.local_time, "%H:%M") {
        Ok(t) => t,
        Err(_) => {
            is.push("digest.local_time", "expected HH:MM, e.g. \"08:00\"");
            NaiveTime::MIN
        }
    };
    let export = validate_export(&mut is, raw.export, &municipalities, &signals);

    if !is.0.is_empty() {
        return Err(is.0);
    }
    let Some(transport) = transport else {
        return Err(vec![ConfigIssue {
            key: "mail.transport".into(),
            message: "missing".into(),
        }]);
    };
    Ok(Config {
        path: path.to_path_buf(),
        state_dir,
        database: DatabaseConfig {
            url: match backend {
                Backend::Sqlite => format!("sqlite://{}", sqlite_path.display()),
                Backend::Postgres => url,
            },
            backend,
            sqlite_path,
            password_file,
        },
        crypto: CryptoConfig {
            identity_file: resolve(base, &raw.crypto.identity_file),
            create_identity: raw.crypto.create_identity,
            recipients: raw.crypto.recipients,
        },
        mail: MailConfig {
            transport,
            from: raw.mail.from,
            language,
            keep_sent,
            talking_points: match raw.mail.talking_points {
                Some(t) => (t.nl, t.en),
                None => default_talking_points(),
            },
            plan_labels: raw
                .plans
                .iter()
                .filter_map(|(name, p)| {
                    p.labels
                        .as_ref()
                        .map(|l| (name.clone(), (l.nl.clone(), l.en.clone())))
                })
                .collect(),
            rule_labels: raw
                .rules
                .iter()
                .filter_map(|r| {
                    r.labels
                        .as_ref()
                        .map(|l| (r.code.clone(), (l.nl.clone(), l.en.clone())))
                })
                .collect(),
        },
        timezone,
        sweep_cron: raw.schedule.sweep,
        plans,
        reminders,
        dispatch,
        retention_after,
        api,
        web,
        handover,
        export,
        municipalities,
        signals,
        digest_local_time,
        red_escalate_after: raw.flags.red_escalate_after,
        measure_notice,
    })
}
