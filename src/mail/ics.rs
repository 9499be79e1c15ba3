//! Calendar invitations (RFC 5545 / iTIP) for check-in reminders, so the team's Outlook or
//! Google calendar shows the contact moment and drops it once it is recorded or cancelled.
//!
//! One event per check-in: UID `<checkin ref>@nazorg`, SEQUENCE raised whenever the moment
//! changes (each failed attempt moves it), METHOD:CANCEL with a higher SEQUENCE at the end.
//! Like every mail, the invitation carries only the family reference and a link.

use chrono::{DateTime, Utc};

use super::{Attachment, Language};

/// iTIP method of an invitation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// Put the check-in in the calendar (or update it).
    Request,
    /// Take it out again: recorded, moved to another team, or the family closed or erased.
    Cancel,
}

impl Method {
    fn code(self) -> &'static str {
        match self {
            Method::Request => "REQUEST",
            Method::Cancel => "CANCEL",
        }
    }
}

/// What an invitation says. No personal data: references, addresses of teams, instants.
#[derive(Clone, Copy, Debug)]
pub struct Invite<'a> {
    pub checkin: &'a str,
    /// `None` for a family that was erased: its cancel names the check-in only.
    pub family: Option<&'a str>,
    /// Raised on every change of the event; a cancel is one above the last request.
    pub sequence: u32,
    /// The due instant of the check-in (or of its next attempt).
    pub start: DateTime<Utc>,
    /// When the invitation was made (DTSTAMP).
    pub stamp: DateTime<Utc>,
    /// The sender (`mail.from`), as `address` or `Name <address>`.
    pub organizer: &'a str,
    /// The team's address.
    pub attendee: &'a str,
    /// Deep link into the workspace, when there is one.
    pub link: Option<&'a str>,
    pub language: Language,
}

/// The UID of a check-in's event: stable across reminders, retries and the cancel.
pub fn uid(checkin: &str) -> String {
    format!("{checkin}@nazorg")
}

/// The `.ics` text: CRLF line ends, lines folded at 75 octets.
pub fn calendar(method: Method, i: &Invite) -> String {
    let (summary, description) = match (i.language, i.family) {
        (Language::Nl, Some(family)) => (
            format!("Nazorg: contactmoment gezin {family}"),
            format!(
                "Contactmoment {} voor gezin {family} (streefdatum). Leg de uitkomst vast in \
                 de Nazorg-werkplek.",
                i.checkin
            ),
        ),
        (Language::En, Some(family)) => (
            format!("Nazorg: check-in family {family}"),
            format!(
                "Check-in {} for family {family} (target date). Record the outcome in the \
                 Nazorg workspace.",
                i.checkin
            ),
        ),
        (Language::Nl, None) => (
            "Nazorg: contactmoment vervallen".to_string(),
            format!("Contactmoment {} vervalt.", i.checkin),
        ),
        (Language::En, None) => (
            "Nazorg: check-in cancelled".to_string(),
            format!("Check-in {} is cancelled.", i.checkin),
        ),
    };
    let description = match i.link {
        Some(link) => format!("{description}\n{link}"),
        None => description,
    };
    let stamp = i.stamp.format("%Y%m%dT%H%M%SZ");
    let start = i.start.format("%Y%m%dT%H%M%SZ");
    let mut lines = vec![
        "BEGIN:VCALENDAR".to_string(),
        "VERSION:2.0".to_string(),
        "PRODID:-//Nazorg//Nazorg nazorg//NL".to_string(),
        "CALSCALE:GREGORIAN".to_string(),
        format!("METHOD:{}", method.code()),
        "BEGIN:VEVENT".to_string(),
        format!("UID:{}", uid(i.checkin)),
        format!("SEQUENCE:{}", i.sequence),
        format!("DTSTAMP:{stamp}"),
        format!("DTSTART:{start}"),
        "DURATION:PT1H".to_string(),
        format!("SUMMARY:{}", text(&summary)),
        format!("DESCRIPTION:{}", text(&description)),
        format!("ORGANIZER:mailto:{}", address(i.organizer)),
        format!(
            "ATTENDEE;CUTYPE=GROUP;ROLE=REQ-PARTICIPANT;RSVP=FALSE:mailto:{}",
            address(i.attendee)
        ),
        "TRANSP:TRANSPARENT".to_string(),
        format!(
            "STATUS:{}",
            match method {
                Method::Request => "CONFIRMED",
                Method::Cancel => "CANCELLED",
            }
        ),
    ];
    if let Some(link) = i.link {
        lines.push(format!("URL:{link}"));
    }
    lines.push("END:VEVENT".to_string());
    lines.push("END:VCALENDAR".to_string());
    let mut out = String::new();
    for line in lines {
        fold(&line, &mut out);
    }
    out
}

/// The invitation as a mail attachment (`text/calendar; method=…`).
pub fn attachment(method: Method, i: &Invite) -> Attachment {
    let m = method.code();
    Attachment {
        filename: match method {
            Method::Request => "contactmoment.ics".to_string(),
            Method::Cancel => "contactmoment-vervallen.ics".to_string(),
        },
        content_type: format!("text/calendar; charset=utf-8; method={m}"),
        bytes: calendar(method, i).into_bytes(),
    }
}

/// The bare address of `Name <address>` or `address`.
fn address(mailbox: &str) -> &str {
    match (mailbox.rfind('<'), mailbox.rfind('>')) {
        (Some(a), Some(b)) if a < b => mailbox[a + 1..b].trim(),
        _ => mailbox.trim(),
    }
}

/// RFC 5545 TEXT escaping.
fn text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '\\' => out.push_str("\\\\"),
            ';' => out.push_str("\\;"),
            ',' => out.push_str("\\,"),
            '\n' => out.push_str("\\n"),
            '\r' => {}
            c => out.push(c),
        }
    }
    out
}

/// Appends `line` folded at 75 octets (never inside a UTF-8 character), each with CRLF.
fn fold(line: &str, out: &mut String) {
    let mut width = 0;
    for ch in line.chars() {
        let n = ch.len_utf8();
        if width + n > 75 {
            out.push_str("\r\n ");
            width = 1;
        }
        out.push(ch);
        width += n;
    }
    out.push_str("\r\n");
}

/// Why a check-in leaves the team's calendar.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Why {
    Recorded,
    Missed,
    Moved,
    Closed,
    Erased,
}

/// What the cancel mail's template sees.
pub(crate) struct CancelView<'a> {
    /// `None` after erasure: the mail names the check-in only.
    pub family: Option<&'a str>,
    pub checkin: &'a str,
    pub team_name: &'a str,
    pub team_code: &'a str,
    pub reason: &'static str,
}

super::templates::mail_template!(CancelNl, "mail/invite_cancel.nl.txt", CancelView);
super::templates::mail_template!(CancelEn, "mail/invite_cancel.en.txt", CancelView);

/// The mail that carries a CANCEL: `(subject, body)` from `templates/mail/invite_cancel.*`.
/// `family` is `None` after erasure: then the mail names the check-in only.
pub fn cancel_mail(
    lang: Language,
    family: Option<&str>,
    checkin: &str,
    team_name: &str,
    team_code: &str,
    why: Why,
) -> (String, String) {
    use askama::Template;
    let reason = match (lang, why) {
        (Language::Nl, Why::Recorded) => "de uitkomst is vastgelegd",
        (Language::Nl, Why::Missed) => "alle pogingen zijn gedaan",
        (Language::Nl, Why::Moved) => "het gezin is overgedragen",
        (Language::Nl, Why::Closed) => "de nazorg is afgesloten",
        (Language::Nl, Why::Erased) => "de gegevens van het gezin zijn gewist",
        (Language::En, Why::Recorded) => "the outcome was recorded",
        (Language::En, Why::Missed) => "every attempt was made",
        (Language::En, Why::Moved) => "the family was handed over",
        (Language::En, Why::Closed) => "aftercare was closed",
        (Language::En, Why::Erased) => "the family's data was erased",
    };
    let v = &CancelView {
        family,
        checkin,
        team_name,
        team_code,
        reason,
    };
    super::templates::finish(match lang {
        Language::Nl => CancelNl { v }.render(),
        Language::En => CancelEn { v }.render(),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn invite(link: Option<&'static str>) -> Invite<'static> {
        Invite {
            checkin: "C-3H8M2PQRST",
            family: Some("F-7Q2K9X"),
            sequence: 2,
            start: "2027-01-15T08:00:00Z".parse().unwrap(),
            stamp: "2027-01-12T06:30:00Z".parse().unwrap(),
            organizer: "Nazorg <nazorg@example.org>",
            attendee: "wijkteam@amsterdam.example.org",
            link,
            language: Language::Nl,
        }
    }

    #[test]
    fn lines_are_crlf_and_folded_at_75_octets() {
        let long = "https://nazorg.example.org/team/checkins/C-3H8M2PQRST?with=a-very-long-query-string-that-needs-folding";
        let ics = calendar(Method::Request, &invite(Some(long)));
        assert!(ics.ends_with("END:VCALENDAR\r\n"), "{ics}");
        for line in ics.split("\r\n") {
            assert!(line.len() <= 75, "{line:?}");
            assert!(!line.contains('\n'), "{line:?}");
        }
        let unfolded = ics.replace("\r\n ", "");
        assert!(unfolded.contains(&format!("URL:{long}\r\n")), "{unfolded}");
        assert!(unfolded.contains("UID:C-3H8M2PQRST@nazorg\r\n"));
        assert!(unfolded.contains("DTSTART:20270115T080000Z\r\n"));
        assert!(unfolded.contains("SEQUENCE:2\r\n"));
        assert!(unfolded.contains("ORGANIZER:mailto:nazorg@example.org\r\n"));
        assert!(unfolded.contains("METHOD:REQUEST\r\n"));
    }

    #[test]
    fn cancel_and_escaping() {
        let ics = calendar(Method::Cancel, &invite(None));
        assert!(ics.contains("METHOD:CANCEL\r\n") && ics.contains("STATUS:CANCELLED\r\n"));
        assert_eq!(text("a;b,c\\d\ne"), "a\\;b\\,c\\\\d\\ne");
        let a = attachment(Method::Cancel, &invite(None));
        assert_eq!(
            a.content_type,
            "text/calendar; charset=utf-8; method=CANCEL"
        );
    }
}
