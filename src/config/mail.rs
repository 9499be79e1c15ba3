//! `[mail]` and `[dispatch]`: how messages leave and how sending is retried.

use super::*;

#[derive(Debug, Deserialize)]
pub(super) struct RawMail {
    pub(super) transport: String,
    pub(super) dir: Option<PathBuf>,
    pub(super) url: Option<String>,
    /// A file whose content is the SMTP password (default: the systemd credential
    /// `$CREDENTIALS_DIRECTORY/smtp-password` when it exists).
    #[serde(default)]
    pub(super) password_file: Option<PathBuf>,
    pub(super) from: String,
    #[serde(default)]
    pub(super) language: Option<String>,
    /// How long a sent message's body is kept before the sweep drops it.
    #[serde(default = "d_keep_sent")]
    pub(super) keep_sent: String,
    /// What the reminders ask the team to talk about; default: safety plan, each child,
    /// stressors, contact with the ex-partner.
    #[serde(default)]
    pub(super) talking_points: Option<RawTalkingPoints>,
}

#[derive(Debug, Deserialize)]
pub(super) struct RawTalkingPoints {
    #[serde(default)]
    pub(super) nl: Vec<String>,
    #[serde(default)]
    pub(super) en: Vec<String>,
}

/// `mail.talking_points` when the file has none.
pub(super) fn default_talking_points() -> (Vec<String>, Vec<String>) {
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

pub(super) fn d_keep_sent() -> String {
    "P30D".into()
}

#[derive(Debug, Deserialize)]
pub(super) struct RawDispatch {
    #[serde(default = "d_max_attempts")]
    pub(super) max_attempts: u32,
    #[serde(default = "d_backoff")]
    pub(super) backoff: String,
    #[serde(default = "d_backoff_max")]
    pub(super) backoff_max: String,
    #[serde(default = "d_interval")]
    pub(super) interval: String,
}

pub(super) fn d_max_attempts() -> u32 {
    12
}

pub(super) fn d_backoff() -> String {
    "PT1M".into()
}

pub(super) fn d_backoff_max() -> String {
    "PT6H".into()
}

pub(super) fn d_interval() -> String {
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

/// The SMTP password from its file: the whole content, one trailing newline trimmed.
pub(super) fn read_password(path: &Path) -> Result<crate::mail::Password, String> {
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

/// Checks `[mail]`: a transport that can be built, a sender address, a language, how long
/// sent bodies are kept. `None` when the transport is not usable (an issue says why). The
/// labels of plans and rules are added by the caller (they belong to those sections).
pub(super) fn validate_mail(raw: RawMail, base: &Path, is: &mut Issues) -> Option<MailConfig> {
    let transport = match raw.transport.as_str() {
        "file" => match &raw.dir {
            Some(d) => Some(MailTransport::File {
                dir: resolve(base, d),
            }),
            None => {
                is.push("mail.dir", "required when mail.transport = \"file\"");
                None
            }
        },
        "smtp" => match &raw.url {
            Some(u) => {
                let password = match &raw.password_file {
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
    if !plausible_email(&raw.from) {
        is.push("mail.from", "not an email address");
    }
    let language = match raw.language.as_deref() {
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
        .duration("mail.keep_sent", &raw.keep_sent)
        .unwrap_or(IsoDuration::days(30));
    if keep_sent.is_zero() {
        is.push("mail.keep_sent", "must be longer than zero");
    }
    Some(MailConfig {
        transport: transport?,
        from: raw.from,
        language,
        keep_sent,
        talking_points: match raw.talking_points {
            Some(t) => (t.nl, t.en),
            None => default_talking_points(),
        },
        plan_labels: BTreeMap::new(),
        rule_labels: BTreeMap::new(),
    })
}

/// Checks `[dispatch]`: attempts, backoff and the interval of the outbox's dispatcher.
pub(super) fn validate_dispatch(d: &RawDispatch, is: &mut Issues) -> DispatchConfig {
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
    dispatch
}
