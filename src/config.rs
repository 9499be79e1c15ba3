//! Typed, validated configuration: TOML file → `NAZORG_*` environment overrides → checks.
//!
//! Every problem is reported with its key path (`plans.standard.checkins[2]`), all at once,
//! so an operator fixes a config in one round. Unknown keys are rejected: a typo in a
//! reminder setting must not silently fall back to a default.

use crate::domain::duration::IsoDuration;
use crate::domain::plan::PlanRule;
use crate::domain::reminder::ReminderPolicy;
use crate::domain::signals::{
    Baseline, Better, Catalog, Condition, Indicator, IndicatorType, Op, Rule, RuleKind, Scope,
    Severity, check_condition,
};
use crate::mail::Language;
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
#[serde(deny_unknown_fields)]
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
#[serde(deny_unknown_fields)]
struct RawFlags {
    #[serde(default = "d_red_escalate_after")]
    red_escalate_after: u32,
    #[serde(default = "d_measure_notice")]
    measure_notice: String,
}

fn d_measure_notice() -> String {
    "P14D".into()
}

fn d_red_escalate_after() -> u32 {
    1
}

impl Default for RawFlags {
    fn default() -> Self {
        RawFlags {
            red_escalate_after: d_red_escalate_after(),
            measure_notice: d_measure_notice(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLabels {
    nl: String,
    en: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIndicator {
    code: String,
    labels: RawLabels,
    applies_to: String,
    #[serde(rename = "type")]
    kind: String,
    min: Option<f64>,
    max: Option<f64>,
    better: Option<String>,
    values: Option<Vec<String>>,
    order: Option<Vec<String>>,
    multiple: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCondition {
    indicator: String,
    op: String,
    value: toml::Value,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    code: String,
    /// How the rule is named in mails; default: its code.
    #[serde(default)]
    labels: Option<RawLabels>,
    severity: String,
    applies_to: Option<String>,
    kind: String,
    indicator: Option<String>,
    op: Option<String>,
    value: Option<toml::Value>,
    baseline: Option<String>,
    n: Option<u32>,
    delta: Option<f64>,
    count: Option<u32>,
    conditions: Option<Vec<RawCondition>>,
    amber_after: Option<String>,
    red_after: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDigest {
    #[serde(default = "d_digest_time")]
    local_time: String,
}

fn d_digest_time() -> String {
    "08:00".into()
}

impl Default for RawDigest {
    fn default() -> Self {
        RawDigest {
            local_time: d_digest_time(),
        }
    }
}

fn default_state_dir() -> PathBuf {
    PathBuf::from("var")
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDatabase {
    url: String,
    #[serde(default)]
    password_file: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCrypto {
    identity_file: PathBuf,
    #[serde(default)]
    create_identity: bool,
    #[serde(default)]
    recipients: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMail {
    transport: String,
    dir: Option<PathBuf>,
    url: Option<String>,
    /// A file whose content is the SMTP password (default: the systemd credential
    /// `$CREDENTIALS_DIRECTORY/smtp-password` when it exists).
    #[serde(default)]
    password_file: Option<PathBuf>,
    from: String,
    #[serde(default)]
    language: Option<String>,
    /// How long a sent message's body is kept before the sweep drops it.
    #[serde(default = "d_keep_sent")]
    keep_sent: String,
    /// What the reminders ask the team to talk about; default: safety plan, each child,
    /// stressors, contact with the ex-partner.
    #[serde(default)]
    talking_points: Option<RawTalkingPoints>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTalkingPoints {
    #[serde(default)]
    nl: Vec<String>,
    #[serde(default)]
    en: Vec<String>,
}

/// `mail.talking_points` when the file has none.
fn default_talking_points() -> (Vec<String>, Vec<String>) {
    let nl = [
        "het veiligheidsplan: wordt het gevolgd, moet het worden bijgesteld?",
        "elk kind apart: hoe gaat het thuis, op school en met vrienden?",
        "stressoren in het gezin: geld, werk, huisvesting, gezondheid",
        "contact met de ex-partner: omgang, afspraken, maatregelen",
    ];
    let en = [
        "the safety plan: is it followed, does it need changing?",
        "each child on their own: at home, at school, with friends",
        "stressors in the family: money, work, housing, health",
        "contact with the ex-partner: access, agreements, court measures",
    ];
    (
        nl.iter().map(|s| s.to_string()).collect(),
        en.iter().map(|s| s.to_string()).collect(),
    )
}

fn d_keep_sent() -> String {
    "P30D".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSchedule {
    #[serde(default = "default_timezone")]
    timezone: String,
    #[serde(default = "default_sweep")]
    sweep: String,
}

impl Default for RawSchedule {
    fn default() -> Self {
        RawSchedule {
            timezone: default_timezone(),
            sweep: default_sweep(),
        }
    }
}

fn default_timezone() -> String {
    "Europe/Amsterdam".into()
}
fn default_sweep() -> String {
    "0 */5 * * * *".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPlan {
    #[serde(default)]
    checkins: Vec<String>,
    #[serde(default = "default_local_time")]
    local_time: String,
    cron: Option<String>,
    duration: Option<String>,
    #[serde(default = "d_working_days_only")]
    working_days_only: bool,
    /// How the plan is named in mails; default: its name.
    labels: Option<RawLabels>,
}

fn d_working_days_only() -> bool {
    true
}

fn default_local_time() -> String {
    "09:00".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawReminders {
    #[serde(default = "d_lead")]
    lead: String,
    #[serde(default = "d_overdue_after")]
    overdue_after: String,
    #[serde(default = "d_repeat_every")]
    repeat_every: String,
    #[serde(default = "d_max_overdue")]
    max_overdue: u32,
    #[serde(default = "d_retry_after")]
    retry_after: String,
    #[serde(default = "d_max_attempts_contact")]
    max_attempts: u32,
    #[serde(default = "d_lead_interpreter")]
    lead_interpreter: String,
}

fn d_retry_after() -> String {
    "P7D".into()
}
fn d_max_attempts_contact() -> u32 {
    3
}
fn d_lead_interpreter() -> String {
    "P5D".into()
}

fn d_lead() -> String {
    "P2D".into()
}
fn d_overdue_after() -> String {
    "P3D".into()
}
fn d_repeat_every() -> String {
    "P7D".into()
}
fn d_max_overdue() -> u32 {
    3
}

impl Default for RawReminders {
    fn default() -> Self {
        RawReminders {
            lead: d_lead(),
            overdue_after: d_overdue_after(),
            repeat_every: d_repeat_every(),
            max_overdue: d_max_overdue(),
            retry_after: d_retry_after(),
            max_attempts: d_max_attempts_contact(),
            lead_interpreter: d_lead_interpreter(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDispatch {
    #[serde(default = "d_max_attempts")]
    max_attempts: u32,
    #[serde(default = "d_backoff")]
    backoff: String,
    #[serde(default = "d_backoff_max")]
    backoff_max: String,
    #[serde(default = "d_interval")]
    interval: String,
}

fn d_max_attempts() -> u32 {
    12
}
fn d_backoff() -> String {
    "PT1M".into()
}
fn d_backoff_max() -> String {
    "PT6H".into()
}
fn d_interval() -> String {
    "PT30S".into()
}

impl Default for RawDispatch {
    fn default() -> Self {
        RawDispatch {
            max_attempts: d_max_attempts(),
            backoff: d_backoff(),
            backoff_max: d_backoff_max(),
            interval: d_interval(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawApi {
    #[serde(default = "d_listen")]
    listen: String,
    #[serde(default = "d_rate")]
    rate_limit: u32,
    #[serde(default = "d_burst")]
    burst: u32,
    #[serde(default = "d_max_connections")]
    max_connections: u32,
    #[serde(default = "d_header_timeout")]
    header_timeout: String,
    #[serde(default = "d_token_lifetime")]
    token_lifetime: String,
    #[serde(default)]
    metrics_admin_only: bool,
}

fn d_token_lifetime() -> String {
    "P90D".into()
}

fn d_listen() -> String {
    "127.0.0.1:8080".into()
}
fn d_rate() -> u32 {
    20
}
fn d_burst() -> u32 {
    40
}
fn d_max_connections() -> u32 {
    256
}
fn d_header_timeout() -> String {
    "PT10S".into()
}

impl Default for RawApi {
    fn default() -> Self {
        RawApi {
            listen: d_listen(),
            rate_limit: d_rate(),
            burst: d_burst(),
            max_connections: d_max_connections(),
            header_timeout: d_header_timeout(),
            token_lifetime: d_token_lifetime(),
            metrics_admin_only: false,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWeb {
    #[serde(default)]
    base_url: Option<String>,
    #[serde(default = "d_session_idle")]
    session_idle: String,
}

fn d_session_idle() -> String {
    "PT30M".into()
}

impl Default for RawWeb {
    fn default() -> Self {
        RawWeb {
            base_url: None,
            session_idle: d_session_idle(),
        }
    }
}

/// The team workspace under `/team/` (served on the API listener).
#[derive(Clone, Debug)]
pub struct WebConfig {
    /// Where teams reach the daemon, without a trailing slash, e.g. `https://nazorg.example.nl`;
    /// every link in a mail starts with it. Default: `http://` + `api.listen`.
    pub base_url: String,
    /// A session ends after this long without a request.
    pub session_idle: IsoDuration,
}

impl WebConfig {
    /// Cookies get `Secure` when the workspace is reached over https.
    pub fn secure_cookies(&self) -> bool {
        self.base_url.starts_with("https://")
    }
}

/// The HTTP API: where it listens and how much one token may ask.
#[derive(Clone, Copy, Debug)]
pub struct ApiConfig {
    pub listen: std::net::SocketAddr,
    /// Sustained requests per second per token.
    pub rate_limit: u32,
    /// Requests a token may make at once before the rate applies.
    pub burst: u32,
    /// Open connections served at once; further clients wait in the listen backlog.
    pub max_connections: u32,
    /// How long a client may take to send a request's headers (slow clients hold a
    /// connection slot otherwise).
    pub header_timeout: std::time::Duration,
    /// How long a token lives when `token create` is given no `--expires`.
    pub token_lifetime: IsoDuration,
    /// `GET /metrics` needs an admin token (else it answers anyone who reaches the listener).
    pub metrics_admin_only: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRetention {
    #[serde(default = "d_retention")]
    after: String,
}

fn d_retention() -> String {
    "P5Y".into()
}

impl Default for RawRetention {
    fn default() -> Self {
        RawRetention {
            after: d_retention(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHandover {
    #[serde(default = "d_remind_after")]
    remind_after: u32,
    #[serde(default = "d_escalate_after")]
    escalate_after: u32,
    #[serde(default = "d_max_move_ahead")]
    max_move_ahead: String,
    #[serde(default)]
    holidays: Vec<String>,
    #[serde(default)]
    outside_region_email: Option<String>,
    #[serde(default = "d_intro")]
    intro: String,
}

fn d_intro() -> String {
    "P14D".into()
}

fn d_remind_after() -> u32 {
    2
}
fn d_escalate_after() -> u32 {
    5
}
fn d_max_move_ahead() -> String {
    "P3M".into()
}

impl Default for RawHandover {
    fn default() -> Self {
        RawHandover {
            remind_after: d_remind_after(),
            escalate_after: d_escalate_after(),
            max_move_ahead: d_max_move_ahead(),
            holidays: Vec::new(),
            outside_region_email: None,
            intro: d_intro(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExport {
    #[serde(default = "d_export_k")]
    k: u32,
    #[serde(default = "d_max_suppression")]
    max_suppression: f64,
    #[serde(default = "d_family_k")]
    family_k: u32,
    #[serde(default = "d_age_bands")]
    age_bands: Vec<Vec<[u32; 2]>>,
    #[serde(default)]
    areas: BTreeMap<String, String>,
    #[serde(default)]
    indicators: Vec<String>,
    #[serde(default)]
    values: BTreeMap<String, Vec<String>>,
    #[serde(default = "d_export_keep")]
    keep: String,
}

fn d_export_keep() -> String {
    "P30D".into()
}

fn d_export_k() -> u32 {
    10
}
fn d_max_suppression() -> f64 {
    0.05
}
fn d_family_k() -> u32 {
    2
}
fn d_age_bands() -> Vec<Vec<[u32; 2]>> {
    vec![vec![[0, 3], [4, 11], [12, 17]], vec![[0, 11], [12, 17]]]
}

impl Default for RawExport {
    fn default() -> Self {
        RawExport {
            k: d_export_k(),
            max_suppression: d_max_suppression(),
            family_k: d_family_k(),
            age_bands: d_age_bands(),
            areas: BTreeMap::new(),
            indicators: Vec::new(),
            values: BTreeMap::new(),
            keep: d_export_keep(),
        }
    }
}

/// The research export: how anonymous it must be and how values may be generalised.
#[derive(Clone, Debug)]
pub struct ExportConfig {
    /// Every quasi-identifier signature is shared by at least `k` distinct children; also
    /// the lowest `--k` an export may ask for.
    pub k: u32,
    /// Largest share of children that may be suppressed to reach `k` (0.0–1.0).
    pub max_suppression: f64,
    /// Every family's combined signature (its children's signatures together) is shared by
    /// at least this many families, so siblings cannot single a family out.
    pub family_k: u32,
    /// Age-band levels, finest first, each a list of inclusive `[from, to]` years; a last
    /// level "all ages" is implicit.
    pub age_bands: Vec<Vec<(u32, u32)>>,
    /// Region → larger area; empty: the hierarchy goes from region straight to national.
    pub areas: BTreeMap<String, String>,
    /// The indicator columns, in order.
    pub indicators: Vec<String>,
    /// The allowed (coded) values of each indicator.
    pub values: BTreeMap<String, Vec<String>>,
    /// How long export folders in `state_dir/exports` are kept before the sweep deletes them.
    pub keep: IsoDuration,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMunicipality {
    code: String,
    name: String,
    team_email: String,
    coordinator_email: String,
    region: String,
    age_recipient: Option<String>,
    /// The coordinator's name, for the address line of escalations. Optional.
    coordinator_name: Option<String>,
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
    /// The sweep's wake-up rule (tokio-cron-scheduler syntax, seconds first, UTC).
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

/// How handovers between teams are chased.
#[derive(Clone, Debug)]
pub struct HandoverConfig {
    /// Working days without acknowledgement before the receiving team is reminded.
    pub remind_after: u32,
    /// Working days without acknowledgement before the escalation to the receiving
    /// municipality's coordinator and the sending team.
    pub escalate_after: u32,
    /// How far after today a move date may lie.
    pub max_move_ahead: IsoDuration,
    /// Weekends and these dates are not working days.
    pub working_days: crate::domain::handover::WorkingDays,
    /// Where handovers to a municipality outside the configured region go (an intake desk
    /// such as Veilig Thuis of the new region). Without it such moves are refused.
    pub outside_region_email: Option<String>,
    /// After a move the receiving team gets an introduction contact (a check-in) this long
    /// after the move date.
    pub intro: IsoDuration,
}

#[derive(Clone, Debug)]
pub struct DatabaseConfig {
    /// `sqlite://` URL with an absolute path, or the `postgres://` URL as configured.
    pub url: String,
    /// Which engine the URL's scheme chose.
    pub backend: Backend,
    /// The SQLite file (empty for PostgreSQL).
    pub sqlite_path: PathBuf,
    /// PostgreSQL only: the password is read from this file at connect time, so it stays
    /// out of the URL, the config file and the process environment (a systemd credential).
    pub password_file: Option<PathBuf>,
}

/// The database engine, chosen by the scheme of `database.url`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// One embedded file, one daemon (`sqlite://PATH`).
    Sqlite,
    /// A server shared by several daemons (`postgres://…` or `postgresql://…`).
    Postgres,
}

impl DatabaseConfig {
    /// The URL without its password, for logs and `migrate` output.
    pub fn display_url(&self) -> String {
        match self.backend {
            Backend::Sqlite => self.url.clone(),
            Backend::Postgres => redact_password(&self.url),
        }
    }
}

/// The engine a database URL names and, for SQLite, its file (relative paths resolve
/// against `base`); the error says what is wrong with the URL.
fn parse_database_url(url: &str, base: &Path) -> Result<(Backend, PathBuf), &'static str> {
    if let Some(rest) = url.strip_prefix("sqlite://") {
        let file = rest.split('?').next().unwrap_or("");
        if file.is_empty() || file == ":memory:" {
            return Err("sqlite:// needs a file path");
        }
        Ok((Backend::Sqlite, resolve(base, Path::new(file))))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        if url.parse::<sqlx::postgres::PgConnectOptions>().is_err() {
            return Err("not a valid PostgreSQL URL (postgres://USER@HOST:PORT/DATABASE)");
        }
        Ok((Backend::Postgres, PathBuf::new()))
    } else {
        Err(
            "unknown scheme; expected sqlite://PATH (relative paths resolve against the config file's folder) or postgres://USER@HOST/DATABASE",
        )
    }
}

impl DatabaseConfig {
    /// A database named by URL alone (`nazorg copy-database --from/--to`): relative SQLite
    /// paths resolve against `base` (the working folder); a PostgreSQL password comes from
    /// the URL or PGPASSWORD.
    pub fn from_url(url: &str, base: &Path) -> Result<DatabaseConfig, String> {
        let url = url.trim();
        let (backend, sqlite_path) = parse_database_url(url, base).map_err(str::to_string)?;
        Ok(DatabaseConfig {
            url: match backend {
                Backend::Sqlite => format!("sqlite://{}", sqlite_path.display()),
                Backend::Postgres => url.to_string(),
            },
            backend,
            sqlite_path,
            password_file: None,
        })
    }
}

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db`.
fn redact_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}{tail}"),
            None => url.to_string(),
        },
        None => url.to_string(),
    }
}

#[derive(Clone, Debug)]
pub struct CryptoConfig {
    pub identity_file: PathBuf,
    /// Create the identity on first start (embedded default only; production uses a
    /// systemd credential).
    pub create_identity: bool,
    /// Extra age recipients the key-encryption key is wrapped to (e.g. an offline recovery key).
    pub recipients: Vec<String>,
}

#[derive(Clone, PartialEq, Eq)]
pub enum MailTransport {
    File {
        dir: PathBuf,
    },
    /// `password` from `mail.password_file` (or the systemd credential), for the user in
    /// the URL.
    Smtp {
        url: String,
        password: Option<crate::mail::Password>,
    },
}

/// Shows the URL without its user information, and never a password.
impl std::fmt::Debug for MailTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MailTransport::File { dir } => f.debug_struct("File").field("dir", dir).finish(),
            MailTransport::Smtp { url, password } => {
                let shown = match url.split_once("://") {
                    Some((scheme, rest)) => match rest.rsplit_once('@') {
                        Some((_, host)) => format!("{scheme}://<redacted>@{host}"),
                        None => url.clone(),
                    },
                    None => "<unparsable>".into(),
                };
                f.debug_struct("Smtp")
                    .field("url", &shown)
                    .field("password", password)
                    .finish()
            }
        }
    }
}

#[derive(Clone, Debug)]
pub struct MailConfig {
    pub transport: MailTransport,
    pub from: String,
    pub language: Language,
    /// How long a sent message's body (and attachments) is kept; then only metadata stays.
    pub keep_sent: IsoDuration,
    /// `mail.talking_points`: Dutch and English lists.
    pub talking_points: (Vec<String>, Vec<String>),
    /// `plans.NAME.labels` (Dutch, English) of plans that have one.
    pub plan_labels: BTreeMap<String, (String, String)>,
    /// `rules.labels` (Dutch, English) by rule code, of rules that have one.
    pub rule_labels: BTreeMap<String, (String, String)>,
}

impl MailConfig {
    /// What reminders ask the team to talk about, in `lang`.
    pub fn talking_points(&self, lang: Language) -> &[String] {
        match lang {
            Language::Nl => &self.talking_points.0,
            Language::En => &self.talking_points.1,
        }
    }

    /// How a relapse-signal rule is named in mails: its label in `lang`, else its code.
    pub fn rule_label<'a>(&'a self, rule: &'a str, lang: Language) -> &'a str {
        match (self.rule_labels.get(rule), lang) {
            (Some((nl, _)), Language::Nl) => nl,
            (Some((_, en)), Language::En) => en,
            (None, _) => rule,
        }
    }

    /// How a plan is named in mails: its label in `lang`, else its name.
    pub fn plan_label<'a>(&'a self, plan: &'a str, lang: Language) -> &'a str {
        match (self.plan_labels.get(plan), lang) {
            (Some((nl, _)), Language::Nl) => nl,
            (Some((_, en)), Language::En) => en,
            (None, _) => plan,
        }
    }
}

#[derive(Clone, Copy, Debug)]
pub struct DispatchConfig {
    pub max_attempts: u32,
    pub backoff: IsoDuration,
    pub backoff_max: IsoDuration,
    pub interval: IsoDuration,
}

/// A municipality (by CBS code) and its aftercare team.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Municipality {
    pub code: String,
    pub name: String,
    pub team_email: String,
    pub coordinator_email: String,
    pub region: String,
    pub age_recipient: Option<String>,
    /// `coordinator_name`: how escalations address the coordinator (optional).
    pub coordinator_name: Option<String>,
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
        let mut raw: RawConfig = serde_path_to_error::deserialize(de).map_err(|e| {
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
            invalid(vec![ConfigIssue {
                key: if key == "." { "(file)".into() } else { key },
                message,
            }])
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
        validate(raw, path, &base).map_err(invalid)
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

/// The SMTP password from its file: the whole content, one trailing newline trimmed.
fn read_password(path: &Path) -> Result<crate::mail::Password, String> {
    let text = zeroize::Zeroizing::new(
        std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?,
    );
    let trimmed = text
        .strip_suffix("\r\n")
        .or_else(|| text.strip_suffix('\n'))
        .unwrap_or(&text);
    if trimmed.is_empty() {
        return Err(format!("{} is empty", path.display()));
    }
    Ok(crate::mail::Password::new(trimmed.to_string()))
}

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

/// The parser for plan cron rules: five fields, or six with seconds first.
pub fn plan_cron_parser() -> croner::parser::CronParser {
    croner::parser::CronParser::builder()
        .seconds(croner::parser::Seconds::Optional)
        .build()
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
                .then(|| crate::domain::handover::WorkingDays {
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
        working_days: crate::domain::handover::WorkingDays {
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

/// Column names of the export that an indicator may not take.
pub const EXPORT_FIXED_COLUMNS: &[&str] = &[
    "child",
    "family",
    "wave",
    "months_since_start",
    "episode_kind",
    "start_period",
    "age_band_at_start",
    "sex",
    "region",
    "moves_so_far",
    "outcome",
    "mode",
    "flags",
    "plan",
    "plan_status",
    "safety_improved",
    "professionals",
];

fn validate_export(
    is: &mut Issues,
    raw: RawExport,
    municipalities: &BTreeMap<String, Municipality>,
    signals: &Catalog,
) -> ExportConfig {
    if raw.k == 0 {
        is.push("export.k", "must be at least 1");
    }
    if !(0.0..=1.0).contains(&raw.max_suppression) || raw.max_suppression.is_nan() {
        is.push(
            "export.max_suppression",
            "a share between 0.0 and 1.0, e.g. 0.05",
        );
    }
    if raw.family_k == 0 {
        is.push("export.family_k", "must be at least 1");
    }
    let mut age_bands = Vec::new();
    if raw.age_bands.is_empty() {
        is.push("export.age_bands", "at least one level of bands is needed");
    }
    for (l, level) in raw.age_bands.iter().enumerate() {
        let key = format!("export.age_bands[{l}]");
        let mut bands: Vec<(u32, u32)> = level.iter().map(|b| (b[0], b[1])).collect();
        bands.sort();
        if bands.is_empty() {
            is.push(&key, "a level needs at least one band");
        }
        for (i, (from, to)) in bands.iter().enumerate() {
            if from > to {
                is.push(format!("{key}[{i}]"), "from is after to");
            }
            if i > 0 && bands[i - 1].1 >= *from {
                is.push(format!("{key}[{i}]"), "overlaps the band before it");
            }
        }
        age_bands.push(bands);
    }
    // Each level must be a coarsening of the one before: every finer band lies inside one
    // band of the next level.
    for l in 1..age_bands.len() {
        for (from, to) in &age_bands[l - 1] {
            if !age_bands[l].iter().any(|(f, t)| f <= from && to <= t) {
                is.push(
                    format!("export.age_bands[{l}]"),
                    format!("does not contain the band {from}-{to} of the level before"),
                );
            }
        }
    }
    if !raw.areas.is_empty() {
        for m in municipalities.values() {
            if !raw.areas.contains_key(&m.region) {
                is.push(
                    "export.areas",
                    format!("region {} (of {}) has no area", m.region, m.code),
                );
            }
        }
    }
    for (region, area) in &raw.areas {
        if !crate::domain::enrolment::is_code(&area.to_lowercase().replace('-', "_"))
            || area == "national"
        {
            is.push(
                format!("export.areas.{region}"),
                "expected a short code such as \"noord-west\" (not \"national\")",
            );
        }
    }
    let mut seen = BTreeSet::new();
    for (i, ind) in raw.indicators.iter().enumerate() {
        let key = format!("export.indicators[{i}]");
        if !crate::domain::enrolment::is_code(ind) {
            is.push(&key, "expected a code such as wellbeing");
        } else if EXPORT_FIXED_COLUMNS.contains(&ind.as_str()) {
            is.push(&key, format!("`{ind}` is already a column of the export"));
        } else if !seen.insert(ind.clone()) {
            is.push(&key, format!("`{ind}` is listed twice"));
        }
        match raw.values.get(ind) {
            None => is.push(
                format!("export.values.{ind}"),
                "every indicator needs its list of allowed values",
            ),
            Some(v) if v.is_empty() => {
                is.push(format!("export.values.{ind}"), "at least one allowed value")
            }
            Some(v) => {
                if let Err(m) = export_values_match(signals, ind, v) {
                    is.push(format!("export.values.{ind}"), m);
                }
                for (j, value) in v.iter().enumerate() {
                    let ok = !value.is_empty()
                        && value.len() <= 40
                        && value
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b"_-./".contains(&b));
                    if !ok {
                        is.push(
                            format!("export.values.{ind}[{j}]"),
                            "expected a short code (letters, digits, _ - . /)",
                        );
                    }
                }
            }
        }
    }
    for name in raw.values.keys() {
        if !raw.indicators.contains(name) {
            is.push(
                format!("export.values.{name}"),
                "not listed in export.indicators",
            );
        }
    }
    let keep = is
        .duration("export.keep", &raw.keep)
        .unwrap_or(IsoDuration::days(30));
    if keep.is_zero() {
        is.push("export.keep", "must be longer than zero");
    }
    ExportConfig {
        keep,
        k: raw.k,
        max_suppression: raw.max_suppression,
        family_k: raw.family_k,
        age_bands,
        areas: raw.areas,
        indicators: raw.indicators,
        values: raw.values,
    }
}

/// The codes an indicator can take in `followup.csv`: its enum values, `true`/`false`, or
/// every whole number of its scale (values are rounded to whole numbers on export). `Err`
/// says why the indicator cannot be an export column.
pub fn export_codes_of(signals: &Catalog, indicator: &str) -> Result<Vec<String>, String> {
    let Some(ind) = signals.indicators.get(indicator) else {
        return Err(format!("`{indicator}` is not one of the [[indicators]]"));
    };
    if ind.applies_to != Scope::Child {
        return Err(format!(
            "`{indicator}` applies to {}; the export has one row per child, so only child indicators can be columns",
            ind.applies_to.code()
        ));
    }
    match &ind.kind {
        IndicatorType::Bool => Ok(vec!["true".into(), "false".into()]),
        IndicatorType::Scale { min, max, .. } => {
            if min.fract() != 0.0 || max.fract() != 0.0 || max - min > 100.0 {
                return Err(format!(
                    "`{indicator}` is a scale from {min} to {max}; an exported scale needs whole-number bounds at most 100 apart"
                ));
            }
            let (lo, hi) = (*min as i64, *max as i64);
            Ok((lo..=hi).map(|n| n.to_string()).collect())
        }
        IndicatorType::Count => Err(format!(
            "`{indicator}` is a count without a fixed list of values; it cannot be an export column"
        )),
        IndicatorType::Enum {
            values, multiple, ..
        } => {
            if *multiple {
                Err(format!(
                    "`{indicator}` takes several values at once; it cannot be an export column"
                ))
            } else {
                Ok(values.clone())
            }
        }
    }
}

/// The codebook of an indicator must list exactly the values the indicator can take, so
/// that no recorded observation can stop an export.
fn export_values_match(
    signals: &Catalog,
    indicator: &str,
    listed: &[String],
) -> Result<(), String> {
    let codes = export_codes_of(signals, indicator)?;
    let want: BTreeSet<&str> = codes.iter().map(String::as_str).collect();
    let have: BTreeSet<&str> = listed.iter().map(String::as_str).collect();
    let missing: Vec<&str> = want.difference(&have).copied().collect();
    let unknown: Vec<&str> = have.difference(&want).copied().collect();
    if missing.is_empty() && unknown.is_empty() {
        return Ok(());
    }
    let mut m = format!(
        "does not match the indicator `{indicator}` (its values: {})",
        codes.join(", ")
    );
    if !unknown.is_empty() {
        m.push_str(&format!("; not values of it: {}", unknown.join(", ")));
    }
    if !missing.is_empty() {
        m.push_str(&format!("; missing: {}", missing.join(", ")));
    }
    Err(m)
}

fn m_into(m: RawMunicipality) -> Municipality {
    Municipality {
        code: m.code,
        name: m.name,
        team_email: m.team_email,
        coordinator_email: m.coordinator_email,
        region: m.region,
        age_recipient: m.age_recipient,
        coordinator_name: m.coordinator_name.filter(|n| !n.trim().is_empty()),
    }
}

fn is_code(s: &str) -> bool {
    crate::domain::enrolment::is_code(s)
}

fn toml_to_json(v: &toml::Value) -> serde_json::Value {
    serde_json::to_value(v).unwrap_or(serde_json::Value::Null)
}

fn validate_indicator(i: &RawIndicator, key: &str, is: &mut Issues) -> Option<Indicator> {
    let before = is.0.len();
    if !is_code(&i.code) {
        is.push(
            format!("{key}.code"),
            "expected a lowercase code such as wellbeing",
        );
    }
    if i.labels.nl.trim().is_empty() {
        is.push(format!("{key}.labels.nl"), "must not be empty");
    }
    if i.labels.en.trim().is_empty() {
        is.push(format!("{key}.labels.en"), "must not be empty");
    }
    let applies_to = Scope::from_code(&i.applies_to);
    if applies_to.is_none() {
        is.push(
            format!("{key}.applies_to"),
            "expected child, adult or family",
        );
    }
    let only = |is: &mut Issues, name: &str, present: bool, for_type: &str| {
        if present {
            is.push(
                format!("{key}.{name}"),
                format!("only for type = \"{for_type}\""),
            );
        }
    };
    let kind = match i.kind.as_str() {
        "bool" | "count" => {
            only(is, "min", i.min.is_some(), "scale");
            only(is, "max", i.max.is_some(), "scale");
            only(is, "better", i.better.is_some(), "scale");
            only(is, "values", i.values.is_some(), "enum");
            only(is, "order", i.order.is_some(), "enum");
            only(is, "multiple", i.multiple.is_some(), "enum");
            if i.kind == "bool" {
                IndicatorType::Bool
            } else {
                IndicatorType::Count
            }
        }
        "scale" => {
            only(is, "values", i.values.is_some(), "enum");
            only(is, "order", i.order.is_some(), "enum");
            only(is, "multiple", i.multiple.is_some(), "enum");
            let (min, max) = match (i.min, i.max) {
                (Some(a), Some(b)) if a < b => (a, b),
                (Some(_), Some(_)) => {
                    is.push(format!("{key}.max"), "must be larger than min");
                    (0.0, 1.0)
                }
                _ => {
                    is.push(key, "a scale needs min and max");
                    (0.0, 1.0)
                }
            };
            let better = match i.better.as_deref() {
                Some("high") => Better::High,
                Some("low") => Better::Low,
                _ => {
                    is.push(format!("{key}.better"), "expected \"high\" or \"low\"");
                    Better::High
                }
            };
            IndicatorType::Scale { min, max, better }
        }
        "enum" => {
            only(is, "min", i.min.is_some(), "scale");
            only(is, "max", i.max.is_some(), "scale");
            only(is, "better", i.better.is_some(), "scale");
            let values = i.values.clone().unwrap_or_default();
            if values.is_empty() {
                is.push(format!("{key}.values"), "an enum needs at least one value");
            }
            let mut seen = BTreeSet::new();
            for (j, v) in values.iter().enumerate() {
                if v.trim().is_empty() || v.len() > 40 {
                    is.push(format!("{key}.values[{j}]"), "1 to 40 characters");
                }
                if !seen.insert(v) {
                    is.push(format!("{key}.values[{j}]"), "listed twice");
                }
            }
            let order = i.order.clone().unwrap_or_default();
            let multiple = i.multiple.unwrap_or(false);
            if multiple && !order.is_empty() {
                is.push(format!("{key}.order"), "not with multiple = true");
            }
            let mut seen = BTreeSet::new();
            for (j, v) in order.iter().enumerate() {
                if !values.contains(v) {
                    is.push(format!("{key}.order[{j}]"), "not one of the values");
                }
                if !seen.insert(v) {
                    is.push(format!("{key}.order[{j}]"), "listed twice");
                }
            }
            IndicatorType::Enum {
                values,
                order,
                multiple,
            }
        }
        other => {
            is.push(
                format!("{key}.type"),
                format!("`{other}` is not a type; use bool, scale, count or enum"),
            );
            return None;
        }
    };
    (is.0.len() == before).then(|| Indicator {
        code: i.code.clone(),
        label_nl: i.labels.nl.clone(),
        label_en: i.labels.en.clone(),
        applies_to: applies_to.unwrap_or(Scope::Child),
        kind,
    })
}

/// Resolves a condition against the indicators; `None` (with issues) if it cannot work.
fn condition(
    indicators: &BTreeMap<String, Indicator>,
    key: &str,
    indicator: &str,
    op: &str,
    value: &toml::Value,
    is: &mut Issues,
) -> Option<(Condition, Scope)> {
    let Some(ind) = indicators.get(indicator) else {
        is.push(
            format!("{key}.indicator"),
            format!("unknown indicator `{indicator}`"),
        );
        return None;
    };
    let Some(op) = Op::from_code(op) else {
        is.push(
            format!("{key}.op"),
            "expected eq, ne, lt, le, gt, ge, in or contains",
        );
        return None;
    };
    let value = toml_to_json(value);
    if let Err(m) = check_condition(ind, op, &value) {
        is.push(format!("{key}.value"), m);
        return None;
    }
    Some((
        Condition {
            indicator: indicator.to_string(),
            op,
            value,
        },
        ind.applies_to,
    ))
}

fn validate_rule(
    r: &RawRule,
    key: &str,
    indicators: &BTreeMap<String, Indicator>,
    is: &mut Issues,
) -> Option<Rule> {
    let before = is.0.len();
    if !is_code(&r.code) {
        is.push(
            format!("{key}.code"),
            "expected a lowercase code such as wellbeing_drop",
        );
    }
    let severity = Severity::from_code(&r.severity);
    if severity.is_none() {
        is.push(
            format!("{key}.severity"),
            format!("`{}` is not a severity; use info, amber or red", r.severity),
        );
    }
    let declared = match r.applies_to.as_deref() {
        None => None,
        Some(s) => {
            let scope = Scope::from_code(s);
            if scope.is_none() {
                is.push(
                    format!("{key}.applies_to"),
                    "expected child, adult or family",
                );
            }
            scope
        }
    };
    let unused = |is: &mut Issues, name: &str, present: bool| {
        if present {
            is.push(
                format!("{key}.{name}"),
                format!("not used by kind = \"{}\"", r.kind),
            );
        }
    };
    let single = |is: &mut Issues| -> Option<(Condition, Scope)> {
        match (&r.indicator, &r.op, &r.value) {
            (Some(i), Some(op), Some(v)) => condition(indicators, key, i, op, v, is),
            _ => {
                is.push(
                    key,
                    format!("kind = \"{}\" needs indicator, op and value", r.kind),
                );
                None
            }
        }
    };
    if r.kind != "out_of_sight" {
        unused(is, "amber_after", r.amber_after.is_some());
        unused(is, "red_after", r.red_after.is_some());
    }
    let (kind, scopes): (Option<RuleKind>, Vec<Scope>) = match r.kind.as_str() {
        "threshold" => {
            unused(is, "baseline", r.baseline.is_some());
            unused(is, "n", r.n.is_some());
            unused(is, "delta", r.delta.is_some());
            unused(is, "count", r.count.is_some());
            unused(is, "conditions", r.conditions.is_some());
            match single(is) {
                Some((c, s)) => (Some(RuleKind::Threshold(c)), vec![s]),
                None => (None, vec![]),
            }
        }
        "streak" => {
            unused(is, "baseline", r.baseline.is_some());
            unused(is, "n", r.n.is_some());
            unused(is, "delta", r.delta.is_some());
            unused(is, "conditions", r.conditions.is_some());
            let count = match r.count {
                Some(k) if (2..=52).contains(&k) => k as usize,
                _ => {
                    is.push(format!("{key}.count"), "required: 2 to 52 check-ins");
                    2
                }
            };
            match single(is) {
                Some((c, s)) => (
                    Some(RuleKind::Streak {
                        condition: c,
                        count,
                    }),
                    vec![s],
                ),
                None => (None, vec![]),
            }
        }
        "all_of" => {
            unused(is, "indicator", r.indicator.is_some());
            unused(is, "op", r.op.is_some());
            unused(is, "value", r.value.is_some());
            unused(is, "baseline", r.baseline.is_some());
            unused(is, "n", r.n.is_some());
            unused(is, "delta", r.delta.is_some());
            unused(is, "count", r.count.is_some());
            let raw = r.conditions.as_deref().unwrap_or_default();
            if raw.len() < 2 {
                is.push(format!("{key}.conditions"), "at least two conditions");
            }
            let mut cs = Vec::new();
            let mut scopes = Vec::new();
            for (j, c) in raw.iter().enumerate() {
                if let Some((c, s)) = condition(
                    indicators,
                    &format!("{key}.conditions[{j}]"),
                    &c.indicator,
                    &c.op,
                    &c.value,
                    is,
                ) {
                    cs.push(c);
                    scopes.push(s);
                }
            }
            (Some(RuleKind::AllOf(cs)), scopes)
        }
        "worsening" => {
            unused(is, "op", r.op.is_some());
            unused(is, "value", r.value.is_some());
            unused(is, "count", r.count.is_some());
            unused(is, "conditions", r.conditions.is_some());
            let baseline = match r.baseline.as_deref() {
                Some("first") => Baseline::First,
                Some("previous") => Baseline::Previous,
                _ => {
                    is.push(
                        format!("{key}.baseline"),
                        "expected \"first\" or \"previous\"",
                    );
                    Baseline::First
                }
            };
            let n = match r.n {
                Some(n) if (1..=12).contains(&n) => n as usize,
                _ => {
                    is.push(format!("{key}.n"), "required: 1 to 12 observations");
                    1
                }
            };
            let delta = match r.delta {
                Some(d) if d > 0.0 && d.is_finite() => d,
                _ => {
                    is.push(format!("{key}.delta"), "required: a number above 0");
                    1.0
                }
            };
            match r.indicator.as_deref() {
                None => {
                    is.push(
                        format!("{key}.indicator"),
                        "required for kind = \"worsening\"",
                    );
                    (None, vec![])
                }
                Some(i) => match indicators.get(i) {
                    None => {
                        is.push(
                            format!("{key}.indicator"),
                            format!("unknown indicator `{i}`"),
                        );
                        (None, vec![])
                    }
                    Some(ind) if !ind.kind.ordered() => {
                        is.push(
                            format!("{key}.kind"),
                            format!(
                                "worsening needs a scale, count or ordered enum indicator; `{i}` is a {}{}",
                                ind.kind.code(),
                                if ind.kind.code() == "enum" { " without order" } else { "" }
                            ),
                        );
                        (None, vec![])
                    }
                    Some(ind) => (
                        Some(RuleKind::Worsening {
                            indicator: i.to_string(),
                            baseline,
                            n,
                            delta,
                        }),
                        vec![ind.applies_to],
                    ),
                },
            }
        }
        "new_value" => {
            for (k, set) in [
                ("op", r.op.is_some()),
                ("value", r.value.is_some()),
                ("baseline", r.baseline.is_some()),
                ("n", r.n.is_some()),
                ("delta", r.delta.is_some()),
                ("count", r.count.is_some()),
                ("conditions", r.conditions.is_some()),
            ] {
                unused(is, k, set);
            }
            match r.indicator.as_deref().map(|i| (i, indicators.get(i))) {
                None => {
                    is.push(
                        format!("{key}.indicator"),
                        "required for kind = \"new_value\"",
                    );
                    (None, vec![])
                }
                Some((i, None)) => {
                    is.push(
                        format!("{key}.indicator"),
                        format!("unknown indicator `{i}`"),
                    );
                    (None, vec![])
                }
                Some((i, Some(ind))) => {
                    if matches!(ind.kind, IndicatorType::Enum { multiple: true, .. }) {
                        (
                            Some(RuleKind::NewValue {
                                indicator: i.to_string(),
                            }),
                            vec![ind.applies_to],
                        )
                    } else {
                        is.push(
                            format!("{key}.kind"),
                            format!("new_value needs an enum indicator with multiple = true; `{i}` is not"),
                        );
                        (None, vec![])
                    }
                }
            }
        }
        "out_of_sight" => {
            unused(is, "indicator", r.indicator.is_some());
            unused(is, "op", r.op.is_some());
            unused(is, "value", r.value.is_some());
            unused(is, "baseline", r.baseline.is_some());
            unused(is, "n", r.n.is_some());
            unused(is, "delta", r.delta.is_some());
            unused(is, "conditions", r.conditions.is_some());
            if r.count.is_some() {
                is.push(
                    format!("{key}.count"),
                    "out_of_sight is a time rule: use amber_after (default \"P8W\") and \
                     red_after (default \"P16W\") instead of count",
                );
            }
            let amber_after = is
                .duration(
                    &format!("{key}.amber_after"),
                    r.amber_after.as_deref().unwrap_or("P8W"),
                )
                .unwrap_or(IsoDuration::ZERO);
            let red_after = is
                .duration(
                    &format!("{key}.red_after"),
                    r.red_after.as_deref().unwrap_or("P16W"),
                )
                .unwrap_or(IsoDuration::ZERO);
            let sample = chrono::NaiveDate::from_ymd_opt(2027, 1, 1);
            let on = |d: IsoDuration| sample.and_then(|s| d.add_to_date(s));
            if amber_after.is_zero() {
                is.push(format!("{key}.amber_after"), "must be longer than zero");
            } else if on(red_after) <= on(amber_after) {
                is.push(
                    format!("{key}.red_after"),
                    "must be longer than amber_after",
                );
            }
            (
                Some(RuleKind::OutOfSight {
                    amber_after,
                    red_after,
                }),
                vec![declared.unwrap_or(Scope::Family)],
            )
        }
        other => {
            is.push(
                format!("{key}.kind"),
                format!(
                    "`{other}` is not a rule kind; use threshold, worsening, streak, all_of, new_value or out_of_sight"
                ),
            );
            (None, vec![])
        }
    };
    let scope = declared.or_else(|| scopes.first().copied());
    if let Some(s) = scope
        && scopes.iter().any(|x| *x != s)
    {
        is.push(
            format!("{key}.applies_to"),
            format!("the rule's indicators must all apply to {}", s.code()),
        );
    }
    if is.0.len() != before {
        return None;
    }
    Some(Rule {
        code: r.code.clone(),
        severity: severity?,
        applies_to: scope?,
        kind: kind?,
    })
}

fn validate_signals(raw_i: &[RawIndicator], raw_r: &[RawRule], is: &mut Issues) -> Catalog {
    let mut indicators = BTreeMap::new();
    for (i, ind) in raw_i.iter().enumerate() {
        let key = format!("indicators[{i}]");
        if indicators.contains_key(&ind.code) {
            is.push(
                format!("{key}.code"),
                format!("{} is listed twice", ind.code),
            );
            continue;
        }
        if let Some(v) = validate_indicator(ind, &key, is) {
            indicators.insert(v.code.clone(), v);
        }
    }
    let mut rules: Vec<Rule> = Vec::new();
    let mut seen = BTreeSet::new();
    for (i, r) in raw_r.iter().enumerate() {
        let key = format!("rules[{i}]");
        if !seen.insert(r.code.clone()) {
            is.push(format!("{key}.code"), format!("{} is listed twice", r.code));
            continue;
        }
        if let Some(rule) = validate_rule(r, &key, &indicators, is) {
            rules.push(rule);
        }
    }
    Catalog { indicators, rules }
}
