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
    // Each section checks itself, in this order (the order issues are reported in).
    let database = validate_database(&raw.database, base, &mut is);
    let crypto = validate_crypto(raw.crypto, base, &mut is);
    let mail = validate_mail(raw.mail, base, &mut is);
    let timezone = validate_schedule(&raw.schedule, &mut is);
    let mut plans = validate_plans(&raw.plans, timezone, &mut is);
    let reminders = validate_reminders(&raw.reminders, &mut is);
    let dispatch = validate_dispatch(&raw.dispatch, &mut is);
    let retention_after = validate_retention(&raw.retention, &mut is);
    let api = validate_api(&raw.api, &mut is);
    let web = validate_web(&raw.web, api.listen, &mut is);
    let handover = validate_handover(&raw.handover, &mut is);
    let municipalities = validate_municipalities(raw.municipalities, &mut is);
    let signals = validate_signals(&raw.indicators, &raw.rules, &mut is);
    let measure_notice = validate_flags(&raw.flags, &mut is);
    let digest_local_time = validate_digest(&raw.digest, &mut is);
    let export = validate_export(&mut is, raw.export, &municipalities, &signals);

    if !is.0.is_empty() {
        return Err(is.0);
    }
    let Some(mut mail) = mail else {
        return Err(vec![ConfigIssue {
            key: "mail.transport".into(),
            message: "missing".into(),
        }]);
    };
    across_sections(&raw.plans, &raw.rules, &handover, &mut plans, &mut mail);
    Ok(Config {
        path: path.to_path_buf(),
        state_dir,
        database,
        crypto,
        mail,
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

/// What one section takes from another: the extra closing days of `[handover]` apply to
/// the plans' due moments too, and the mails name plans and rules by their labels.
fn across_sections(
    raw_plans: &BTreeMap<String, RawPlan>,
    raw_rules: &[RawRule],
    handover: &HandoverConfig,
    plans: &mut BTreeMap<String, PlanRule>,
    mail: &mut MailConfig,
) {
    for plan in plans.values_mut() {
        if let Some(w) = &mut plan.working_days {
            w.holidays = handover.working_days.holidays.clone();
        }
    }
    mail.plan_labels = raw_plans
        .iter()
        .filter_map(|(name, p)| {
            p.labels
                .as_ref()
                .map(|l| (name.clone(), (l.nl.clone(), l.en.clone())))
        })
        .collect();
    mail.rule_labels = raw_rules
        .iter()
        .filter_map(|r| {
            r.labels
                .as_ref()
                .map(|l| (r.code.clone(), (l.nl.clone(), l.en.clone())))
        })
        .collect();
}
