//! Rendering an [`OutgoingMessage`] into an RFC 5322 message.

use chrono::{DateTime, Utc};
use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart, SinglePart};
use sha2::{Digest, Sha256};

use super::MailError;

/// Fallback domain for Message-IDs when the from-address has none we can use.
const FALLBACK_DOMAIN: &str = "nazorg.invalid";

/// Name of the header that carries the outbox key.
pub(crate) const KEY_HEADER: &str = "X-Nazorg-Key";

/// What the outbox hands the dispatcher: already rendered, no personal data.
#[derive(Clone, Debug)]
pub struct OutgoingMessage {
    /// Stable key of the outbox entry; drives the Message-ID and the file name.
    pub outbox_key: String,
    pub from: String,
    pub to: Vec<String>,
    pub cc: Vec<String>,
    pub subject: String,
    pub body_text: String,
    pub attachments: Vec<Attachment>,
}

#[derive(Clone, Debug)]
pub struct Attachment {
    pub filename: String,
    pub content_type: String,
    pub bytes: Vec<u8>,
}

/// Lowercase hex of SHA-256 over `data`.
pub(crate) fn sha256_hex(data: &[u8]) -> String {
    use std::fmt::Write as _;
    let digest = Sha256::digest(data);
    let mut out = String::with_capacity(64);
    for b in digest {
        // Writing to a String cannot fail.
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// Deterministic Message-ID from the outbox key:
/// `<HEX(sha256(key))[..32]@DOMAIN>` with DOMAIN from the from-address
/// (fallback `nazorg.invalid`). A retried or re-dispatched message gets the same
/// id so receivers can de-duplicate.
pub fn message_id(outbox_key: &str, from: &str) -> String {
    let hex = sha256_hex(outbox_key.as_bytes());
    let domain = from
        .parse::<Mailbox>()
        .ok()
        .map(|mb| mb.email.domain().to_ascii_lowercase())
        .filter(|d| !d.is_empty() && d.chars().all(|c| c.is_ascii_graphic() && c != '>'))
        .unwrap_or_else(|| FALLBACK_DOMAIN.to_owned());
    format!("<{}@{}>", &hex[..32], domain)
}

fn parse_mailbox(field: &str, value: &str) -> Result<Mailbox, MailError> {
    value
        .trim()
        .parse::<Mailbox>()
        .map_err(|e| MailError::BadAddress {
            field: field.to_owned(),
            reason: format!("{value:?}: {e}"),
        })
}

/// Build the RFC 5322 message: From, To, Cc, Subject, Date = `date`, Message-ID,
/// `X-Nazorg-Key: <outbox_key>`, a `text/plain; charset=utf-8` body and the
/// attachments (as `multipart/mixed` when there are any).
pub fn build(msg: &OutgoingMessage, date: DateTime<Utc>) -> Result<lettre::Message, MailError> {
    if msg.outbox_key.is_empty() || msg.outbox_key.chars().any(char::is_control) {
        return Err(MailError::Build(
            "outbox key must be non-empty and free of control characters".to_owned(),
        ));
    }
    if msg.to.is_empty() {
        return Err(MailError::BadAddress {
            field: "to".to_owned(),
            reason: "no recipients".to_owned(),
        });
    }

    let key_header = HeaderName::new_from_ascii(KEY_HEADER.to_owned())
        .map_err(|e| MailError::Build(e.to_string()))?;

    let mut builder = lettre::Message::builder()
        .from(parse_mailbox("from", &msg.from)?)
        .subject(msg.subject.clone())
        .date(date.into())
        .message_id(Some(message_id(&msg.outbox_key, &msg.from)))
        .raw_header(HeaderValue::new(key_header, msg.outbox_key.clone()));
    for to in &msg.to {
        builder = builder.to(parse_mailbox("to", to)?);
    }
    for cc in &msg.cc {
        builder = builder.cc(parse_mailbox("cc", cc)?);
    }

    let text = SinglePart::plain(msg.body_text.clone());
    let built = if msg.attachments.is_empty() {
        builder.singlepart(text)
    } else {
        // Deterministic boundary: the same message renders to the same bytes.
        // Derived from a hash over all content, so it cannot occur in it by accident.
        let mut h = Sha256::new();
        h.update(msg.outbox_key.as_bytes());
        h.update(msg.body_text.as_bytes());
        for a in &msg.attachments {
            h.update((a.bytes.len() as u64).to_le_bytes());
            h.update(&a.bytes);
        }
        let digest = h.finalize();
        let boundary: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
        let mut mixed = MultiPart::mixed()
            .boundary(format!("=_nazorg_{boundary}"))
            .singlepart(text);
        for a in &msg.attachments {
            if a.filename.is_empty() || a.filename.chars().any(char::is_control) {
                return Err(MailError::Build(format!(
                    "attachment file name {:?} is empty or has control characters",
                    a.filename
                )));
            }
            let ct = ContentType::parse(&a.content_type).map_err(|e| {
                MailError::Build(format!(
                    "attachment {:?}: bad content type {:?}: {e}",
                    a.filename, a.content_type
                ))
            })?;
            mixed = mixed.singlepart(
                lettre::message::Attachment::new(a.filename.clone()).body(a.bytes.clone(), ct),
            );
        }
        builder.multipart(mixed)
    };
    built.map_err(|e| MailError::Build(e.to_string()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn sample(key: &str) -> OutgoingMessage {
        OutgoingMessage {
            outbox_key: key.to_owned(),
            from: "Nazorg <nazorg@veiligthuis.example>".to_owned(),
            to: vec!["wijkteam@gemeente.example".to_owned()],
            cc: vec!["coordinator@veiligthuis.example".to_owned()],
            subject: "[Nazorg] Contactmoment F-7Q2K9X gepland op 2027-01-15".to_owned(),
            body_text: "Regiecoördinator: zie Nazorg.\n".to_owned(),
            attachments: vec![],
        }
    }

    fn date() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2027, 1, 14, 8, 0, 0).unwrap()
    }

    #[test]
    fn message_id_is_deterministic_and_per_key() {
        let a = message_id("reminder:C-1:due", "nazorg@veiligthuis.example");
        let b = message_id("reminder:C-1:due", "nazorg@veiligthuis.example");
        let c = message_id("reminder:C-1:overdue:1", "nazorg@veiligthuis.example");
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert!(
            a.starts_with('<') && a.ends_with("@veiligthuis.example>"),
            "{a}"
        );
        assert_eq!(a.find('@'), Some(33));
        assert!(a[1..33].chars().all(|c| c.is_ascii_hexdigit()));
    }

    #[test]
    fn message_id_domain_from_display_address_and_fallback() {
        let a = message_id("k", "Nazorg <x@Gemeente.Example>");
        assert!(a.ends_with("@gemeente.example>"), "{a}");
        let b = message_id("k", "not an address");
        assert!(b.ends_with("@nazorg.invalid>"), "{b}");
        // Same key, same hash part, whatever the domain.
        assert_eq!(a[..33], b[..33]);
    }

    #[test]
    fn build_includes_headers() {
        let m = sample("reminder:C-1:due");
        let raw = String::from_utf8(build(&m, date()).unwrap().formatted()).unwrap();
        let id = message_id(&m.outbox_key, &m.from);
        assert!(raw.contains(&format!("Message-ID: {id}\r\n")), "{raw}");
        assert!(raw.contains("X-Nazorg-Key: reminder:C-1:due\r\n"), "{raw}");
        assert!(raw.contains("To: wijkteam@gemeente.example\r\n"), "{raw}");
        assert!(
            raw.contains("Cc: coordinator@veiligthuis.example\r\n"),
            "{raw}"
        );
        assert!(
            raw.contains("From: Nazorg <nazorg@veiligthuis.example>\r\n"),
            "{raw}"
        );
        assert!(
            raw.contains("Subject: [Nazorg] Contactmoment F-7Q2K9X"),
            "{raw}"
        );
        assert!(
            raw.contains("Date: Thu, 14 Jan 2027 08:00:00 +0000\r\n"),
            "{raw}"
        );
        assert!(
            raw.contains("Content-Type: text/plain; charset=utf-8"),
            "{raw}"
        );
        assert!(!raw.contains("multipart"), "{raw}");
    }

    #[test]
    fn build_is_deterministic() {
        let m = sample("k1");
        let a = build(&m, date()).unwrap().formatted();
        let b = build(&m, date()).unwrap().formatted();
        assert_eq!(a, b);
    }

    #[test]
    fn build_with_attachment_is_multipart_mixed() {
        let mut m = sample("k2");
        m.attachments.push(Attachment {
            filename: "plan.ics".to_owned(),
            content_type: "text/calendar; charset=utf-8".to_owned(),
            bytes: b"BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n".to_vec(),
        });
        let raw = String::from_utf8(build(&m, date()).unwrap().formatted()).unwrap();
        assert_eq!(raw.as_bytes(), build(&m, date()).unwrap().formatted());
        assert!(raw.contains("multipart/mixed"), "{raw}");
        assert!(raw.contains("filename=\"plan.ics\""), "{raw}");
        assert!(raw.contains("text/calendar"), "{raw}");
    }

    #[test]
    fn bad_addresses_are_rejected() {
        let mut m = sample("k");
        m.from = "nazorg-at-nowhere".to_owned();
        assert!(
            matches!(build(&m, date()), Err(MailError::BadAddress { field, .. }) if field == "from")
        );

        let mut m = sample("k");
        m.to = vec!["wijkteam@".to_owned()];
        assert!(
            matches!(build(&m, date()), Err(MailError::BadAddress { field, .. }) if field == "to")
        );

        let mut m = sample("k");
        m.cc = vec!["a b c".to_owned()];
        assert!(
            matches!(build(&m, date()), Err(MailError::BadAddress { field, .. }) if field == "cc")
        );

        let mut m = sample("k");
        m.to.clear();
        assert!(
            matches!(build(&m, date()), Err(MailError::BadAddress { field, .. }) if field == "to")
        );
    }

    #[test]
    fn bad_key_or_content_type_is_a_build_error() {
        let mut m = sample("line\r\nBcc: evil@example.com");
        assert!(matches!(build(&m, date()), Err(MailError::Build(_))));
        m = sample("k");
        m.attachments.push(Attachment {
            filename: "x.bin".to_owned(),
            content_type: "not a content type".to_owned(),
            bytes: vec![1, 2, 3],
        });
        assert!(matches!(build(&m, date()), Err(MailError::Build(_))));
    }
}
