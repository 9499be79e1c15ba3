//! Outgoing mail: reminder templates, RFC 5322 message building and transports.
//!
//! HARD RULE: nothing in this module ever receives personal data. Templates take
//! pseudonymous references, codes and dates only; the outbox hands the dispatcher
//! already-rendered [`OutgoingMessage`]s.

pub mod closure;
pub mod contact;
pub mod evaluation;
pub mod fallback;
pub mod followup;
pub mod ics;
mod message;
pub mod record;
pub mod signals;
pub mod templates;
mod transport;
pub mod words;
pub mod workspace;

pub use fallback::{SAFETY_FALLBACK_KIND, is_safety_notice};
pub use message::{Attachment, OutgoingMessage, build, message_id};
pub use templates::{HandoverFacts, HandoverMail, ReminderFacts, ReminderKind, handover, reminder};
pub use transport::{Password, Transport, eml_file_name};

/// Language of a rendered mail. Dutch is the default.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    #[default]
    Nl,
    En,
}

impl Language {
    /// ISO 639-1 code, as used in configuration (`"nl"`, `"en"`).
    pub fn code(&self) -> &'static str {
        match self {
            Language::Nl => "nl",
            Language::En => "en",
        }
    }
}

impl std::str::FromStr for Language {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "nl" => Ok(Language::Nl),
            "en" => Ok(Language::En),
            other => Err(format!(
                "unsupported language {other:?} (expected nl or en)"
            )),
        }
    }
}

/// Errors while building a message or configuring a transport.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// An address (`from`, `to`, `cc`) could not be parsed or is missing.
    #[error("bad address in {field}: {reason}")]
    BadAddress { field: String, reason: String },
    /// The transport URL is invalid. The reason never contains credentials.
    #[error("bad mail transport URL: {reason}")]
    BadUrl { reason: String },
    /// The message could not be assembled (content type, key, lettre builder error).
    #[error("could not build message: {0}")]
    Build(String),
    #[error("mail I/O error: {0}")]
    Io(#[from] std::io::Error),
}

/// Outcome of a failed send, as the outbox needs it: retry later, or give up.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("temporary failure: {0}")]
    Transient(String),
    #[error("permanent failure: {0}")]
    Permanent(String),
}

impl SendError {
    pub fn is_transient(&self) -> bool {
        matches!(self, SendError::Transient(_))
    }
}
