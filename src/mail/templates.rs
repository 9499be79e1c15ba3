//! Reminder and handover texts, Dutch (default) and English.
//!
//! The reminder texts live in template files under `templates/mail/` (one per message kind
//! and language, compiled into the binary by askama, the engine of the workspace pages), so
//! a text can be edited without touching Rust. The first line of a file is the subject, the
//! text after the blank line the body. Templates only ever see pseudonymous references,
//! labels, team addresses and dates ([`ReminderFacts`] has no field that could hold a name
//! or address of the family).

use askama::Template;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use super::Language;
use super::words;

/// Which reminder to render.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReminderKind {
    /// Advance notice: a check-in is coming up.
    Upcoming,
    /// The check-in is due now.
    Due,
    /// The due time has passed and no outcome was recorded.
    Overdue,
    /// Sent to the region coordinator (Veilig Thuis) after repeated overdue reminders.
    Escalation,
}

impl ReminderKind {
    pub fn code(&self) -> &'static str {
        match self {
            ReminderKind::Upcoming => "upcoming",
            ReminderKind::Due => "due",
            ReminderKind::Overdue => "overdue",
            ReminderKind::Escalation => "escalation",
        }
    }
}

/// Everything a reminder may mention. Deliberately no personal data.
#[derive(Clone, Copy, Debug)]
pub struct ReminderFacts<'a> {
    /// Pseudonymous family reference, e.g. `F-7Q2K9X`.
    pub family: &'a str,
    /// Check-in id.
    pub checkin: &'a str,
    /// 1-based index of the check-in in the plan.
    pub wave: u32,
    /// The plan's label in the mail's language (`plans.NAME.labels`), else its name.
    pub plan: &'a str,
    pub municipality_code: &'a str,
    pub municipality_name: &'a str,
    /// The due instant (target date) of the check-in or of its next attempt.
    pub due: DateTime<Utc>,
    /// After this instant it counts as overdue: due + `reminders.overdue_after`.
    pub deadline: DateTime<Utc>,
    /// The zone dates are shown in (`schedule.timezone`).
    pub timezone: Tz,
    /// ISO 639-1 code of the language for contacting the family, e.g. `nl`, `ar`.
    pub contact_language: &'a str,
    pub interpreter_needed: bool,
    /// Which overdue reminder this is (1..) for `Overdue`; total sent for `Escalation`.
    pub overdue_count: u32,
    /// The coordinator escalations go to (`municipalities.coordinator_name`, optional).
    pub coordinator_name: Option<&'a str>,
    pub coordinator_email: &'a str,
    /// What to talk about (`mail.talking_points` in the mail's language).
    pub talking_points: &'a [String],
    /// The workspace page of the check-in, when `web.base_url` is set.
    pub link: Option<&'a str>,
    /// The family's case director, unsealed for this mail; `None` while nobody is named
    /// (after a move, until the receiving team names one).
    pub case_director: Option<CaseDirectorContact<'a>>,
}

/// Who a team can ask about the family: the professional directing the case. Their name
/// and work address, never the family's data.
#[derive(Clone, Copy, Debug)]
pub struct CaseDirectorContact<'a> {
    pub name: &'a str,
    pub email: &'a str,
}

/// Who an escalation is addressed to: the configured coordinator of the municipality
/// (`coordinator_name` when set, always `coordinator_email`).
pub(crate) fn coordinator_line(
    lang: Language,
    name: Option<&str>,
    email: &str,
    municipality_name: &str,
) -> String {
    match (lang, name) {
        (Language::Nl, Some(name)) => format!("{name}, regiecoördinator nazorg ({email})"),
        (Language::En, Some(name)) => format!("{name}, aftercare coordinator ({email})"),
        (Language::Nl, None) => {
            format!("de regiecoördinator nazorg van gemeente {municipality_name} ({email})")
        }
        (Language::En, None) => {
            format!("the aftercare coordinator of {municipality_name} ({email})")
        }
    }
}

/// What the reminder templates see: the facts in words of the mail's language.
pub(crate) struct ReminderView<'a> {
    pub family: &'a str,
    pub checkin: &'a str,
    pub wave: u32,
    pub plan: &'a str,
    pub team_name: &'a str,
    pub team_code: &'a str,
    /// "dinsdag 15 december 2026, 09:00".
    pub due: String,
    /// "dinsdag 15 december 2026".
    pub due_day: String,
    pub deadline: String,
    pub deadline_day: String,
    /// "Arabisch".
    pub language: String,
    pub interpreter: bool,
    pub overdue_count: u32,
    /// Who an escalation is addressed to.
    pub coordinator: String,
    pub talking_points: &'a [String],
    pub link: Option<&'a str>,
    pub case_director: Option<CaseDirectorContact<'a>>,
    pub attempts: u32,
    pub max_attempts: u32,
}

impl<'a> ReminderView<'a> {
    pub(crate) fn new(lang: Language, f: &ReminderFacts<'a>) -> Self {
        let coordinator = coordinator_line(
            lang,
            f.coordinator_name,
            f.coordinator_email,
            f.municipality_name,
        );
        ReminderView {
            family: f.family,
            checkin: f.checkin,
            wave: f.wave,
            plan: f.plan,
            team_name: f.municipality_name,
            team_code: f.municipality_code,
            due: words::when(f.due, f.timezone, lang),
            due_day: words::day(f.due, f.timezone, lang),
            deadline: words::when(f.deadline, f.timezone, lang),
            deadline_day: words::day(f.deadline, f.timezone, lang),
            language: words::language_name(f.contact_language, lang),
            interpreter: f.interpreter_needed,
            overdue_count: f.overdue_count,
            coordinator,
            talking_points: f.talking_points,
            link: f.link,
            case_director: f.case_director,
            attempts: 0,
            max_attempts: 0,
        }
    }
}

/// One template struct per file: `$name` renders `$path` with the view `v`.
macro_rules! mail_template {
    ($name:ident, $path:tt, $view:ident) => {
        #[derive(askama::Template)]
        #[template(path = $path, escape = "none")]
        pub(crate) struct $name<'a> {
            pub v: &'a $view<'a>,
        }
    };
}
pub(crate) use mail_template;

mail_template!(UpcomingNl, "mail/reminder_upcoming.nl.txt", ReminderView);
mail_template!(UpcomingEn, "mail/reminder_upcoming.en.txt", ReminderView);
mail_template!(DueNl, "mail/reminder_due.nl.txt", ReminderView);
mail_template!(DueEn, "mail/reminder_due.en.txt", ReminderView);
mail_template!(OverdueNl, "mail/reminder_overdue.nl.txt", ReminderView);
mail_template!(OverdueEn, "mail/reminder_overdue.en.txt", ReminderView);
mail_template!(
    EscalationNl,
    "mail/reminder_escalation.nl.txt",
    ReminderView
);
mail_template!(
    EscalationEn,
    "mail/reminder_escalation.en.txt",
    ReminderView
);

/// Renders a template into `(subject, body)`. A template that fails to render (it cannot
/// for these fixed views, but askama's API is fallible) yields its error text as the body,
/// so a reminder is never silently lost.
pub(crate) fn finish(rendered: Result<String, askama::Error>) -> (String, String) {
    match rendered {
        Ok(text) => words::split(&text),
        Err(e) => {
            tracing::error!(error = %e, "mail template failed to render");
            ("[Nazorg]".to_string(), format!("{e}\n"))
        }
    }
}

/// Render a reminder: `(subject, body)`.
pub fn reminder(kind: ReminderKind, lang: Language, f: &ReminderFacts) -> (String, String) {
    let v = &ReminderView::new(lang, f);
    finish(match (kind, lang) {
        (ReminderKind::Upcoming, Language::Nl) => UpcomingNl { v }.render(),
        (ReminderKind::Upcoming, Language::En) => UpcomingEn { v }.render(),
        (ReminderKind::Due, Language::Nl) => DueNl { v }.render(),
        (ReminderKind::Due, Language::En) => DueEn { v }.render(),
        (ReminderKind::Overdue, Language::Nl) => OverdueNl { v }.render(),
        (ReminderKind::Overdue, Language::En) => OverdueEn { v }.render(),
        (ReminderKind::Escalation, Language::Nl) => EscalationNl { v }.render(),
        (ReminderKind::Escalation, Language::En) => EscalationEn { v }.render(),
    })
}

// ---- handovers -----------------------------------------------------------------------------

/// Which handover message to render.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HandoverMail {
    /// To the receiving team: take the family over, dossier attached (or withheld).
    Handover,
    /// To the sending team: the handover was registered; you stay informed until it is
    /// acknowledged.
    Notice,
    /// To the receiving team: not acknowledged after `handover.remind_after` working days.
    Reminder,
    /// To the receiving municipality's coordinator and the sending team: not acknowledged
    /// after `handover.escalate_after` working days.
    Escalation,
}

impl HandoverMail {
    pub fn code(&self) -> &'static str {
        match self {
            HandoverMail::Handover => "handover",
            HandoverMail::Notice => "handover_notice",
            HandoverMail::Reminder => "handover_reminder",
            HandoverMail::Escalation => "handover_escalation",
        }
    }
}

/// Everything a handover message may mention. Deliberately no personal data: references,
/// codes, team addresses, dates and counts.
#[derive(Clone, Copy, Debug)]
pub struct HandoverFacts<'a> {
    /// Handover id, e.g. `H-7Q2K9XM4`.
    pub handover: &'a str,
    pub family: &'a str,
    /// A new case director within one municipality instead of a move.
    pub reassign: bool,
    pub from_code: &'a str,
    pub from_name: &'a str,
    /// The sending team's address: the contact for questions.
    pub from_team_email: &'a str,
    pub to_code: &'a str,
    pub to_name: &'a str,
    /// `YYYY-MM-DD`: from when the receiving team is responsible.
    pub effective_date: &'a str,
    pub children: usize,
    /// Preformatted local due time of the next open check-in.
    pub next_checkin_due: Option<&'a str>,
    /// Open flags counted per severity, e.g. `[("red", 1)]`.
    pub flags_by_severity: &'a [(String, usize)],
    /// `Some(file name)` when the dossier is attached; `None` when it was withheld.
    pub dossier_file: Option<&'a str>,
    /// `YYYY-MM-DD` the handover was registered.
    pub registered: &'a str,
    /// Working days waited, for reminders and escalations.
    pub working_days: u32,
    /// Whom an escalation is addressed to: the receiving municipality's coordinator, or
    /// the sending one's when the family moved outside the configured region
    /// (`coordinator_name` optional, `coordinator_email`, and that municipality's name).
    pub coordinator_name: Option<&'a str>,
    pub coordinator_email: &'a str,
    pub coordinator_of: &'a str,
    /// The handover's page in the workspace (`/team/handovers/H-…`), where the receiving
    /// team reads the dossier and acknowledges.
    pub link: Option<&'a str>,
}

/// What the handover templates see: the facts and the open flags in words.
pub(crate) struct HandoverView<'a> {
    pub f: &'a HandoverFacts<'a>,
    /// "rood: 1, oranje: 2", or "geen".
    pub flags: String,
}

macro_rules! handover_template {
    ($name:ident, $path:tt) => {
        #[derive(askama::Template)]
        #[template(path = $path, escape = "none")]
        struct $name<'a> {
            f: &'a HandoverFacts<'a>,
            flags: &'a str,
        }
    };
}

handover_template!(HandoverNl, "mail/handover.nl.txt");
handover_template!(HandoverEn, "mail/handover.en.txt");
handover_template!(NoticeNl, "mail/handover_notice.nl.txt");
handover_template!(NoticeEn, "mail/handover_notice.en.txt");
handover_template!(HandoverReminderNl, "mail/handover_reminder.nl.txt");
handover_template!(HandoverReminderEn, "mail/handover_reminder.en.txt");
handover_template!(HandoverEscalationNl, "mail/handover_escalation.nl.txt");
handover_template!(HandoverEscalationEn, "mail/handover_escalation.en.txt");

/// A flag severity in words: "rood", "oranje", "info" (English: red, amber, info).
pub fn severity_name(code: &str, lang: Language) -> &str {
    match (lang, code) {
        (Language::Nl, "red") => "rood",
        (Language::Nl, "amber") => "oranje",
        (Language::Nl, "info") => "ter informatie",
        (_, other) => other,
    }
}

/// Render a handover message: `(subject, body)`, from `templates/mail/handover*.txt`.
pub fn handover(kind: HandoverMail, lang: Language, f: &HandoverFacts) -> (String, String) {
    let flags = if f.flags_by_severity.is_empty() {
        match lang {
            Language::Nl => "geen".to_string(),
            Language::En => "none".to_string(),
        }
    } else {
        f.flags_by_severity
            .iter()
            .map(|(sev, n)| format!("{}: {n}", severity_name(sev, lang)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let view = HandoverView { f, flags };
    let (f, flags) = (view.f, view.flags.as_str());
    finish(match (kind, lang) {
        (HandoverMail::Handover, Language::Nl) => HandoverNl { f, flags }.render(),
        (HandoverMail::Handover, Language::En) => HandoverEn { f, flags }.render(),
        (HandoverMail::Notice, Language::Nl) => NoticeNl { f, flags }.render(),
        (HandoverMail::Notice, Language::En) => NoticeEn { f, flags }.render(),
        (HandoverMail::Reminder, Language::Nl) => HandoverReminderNl { f, flags }.render(),
        (HandoverMail::Reminder, Language::En) => HandoverReminderEn { f, flags }.render(),
        (HandoverMail::Escalation, Language::Nl) => HandoverEscalationNl { f, flags }.render(),
        (HandoverMail::Escalation, Language::En) => HandoverEscalationEn { f, flags }.render(),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
pub(crate) mod tests {
    use super::*;

    const KINDS: [ReminderKind; 4] = [
        ReminderKind::Upcoming,
        ReminderKind::Due,
        ReminderKind::Overdue,
        ReminderKind::Escalation,
    ];

    fn points() -> &'static [String] {
        static P: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
        P.get_or_init(|| vec!["het veiligheidsplan".into(), "elk kind apart".into()])
    }

    fn facts() -> ReminderFacts<'static> {
        ReminderFacts {
            family: "F-7Q2K9X",
            checkin: "C-3H8M2P",
            wave: 2,
            plan: "Standaardplan",
            municipality_code: "GM0363",
            municipality_name: "Amsterdam",
            due: "2026-12-15T08:00:00Z".parse().unwrap(),
            deadline: "2026-12-18T08:00:00Z".parse().unwrap(),
            timezone: chrono_tz::Europe::Amsterdam,
            contact_language: "ar",
            interpreter_needed: true,
            overdue_count: 3,
            coordinator_name: Some("J. de Vries"),
            coordinator_email: "coordinator@vt.example.org",
            talking_points: points(),
            link: Some("https://nazorg.example.org/team/checkins/C-3H8M2P"),
            case_director: Some(CaseDirectorContact {
                name: "R. de Casusregisseur",
                email: "r.casusregisseur@wijkteam.example.org",
            }),
        }
    }

    #[test]
    fn codes() {
        let codes: Vec<_> = KINDS.iter().map(ReminderKind::code).collect();
        assert_eq!(codes, ["upcoming", "due", "overdue", "escalation"]);
    }

    #[test]
    fn dutch_wording() {
        let f = facts();
        let (subject, body) = reminder(ReminderKind::Upcoming, Language::Nl, &f);
        assert_eq!(
            subject,
            "[Nazorg] Contactmoment F-7Q2K9X rond dinsdag 15 december 2026"
        );
        assert!(
            body.starts_with("Aan: het wijkteam van gemeente Amsterdam (gemeentecode GM0363)\n\n"),
            "{body}"
        );
        assert!(body.contains("Tolk nodig:           ja\n"), "{body}");
        assert!(body.contains("Taal voor contact:    Arabisch\n"), "{body}");
        assert!(
            body.contains("Contact gewenst rond: dinsdag 15 december 2026, 09:00\n"),
            "{body}"
        );
        assert!(
            body.contains("Uiterlijk:            vrijdag 18 december 2026, 09:00\n"),
            "{body}"
        );
        assert!(body.contains("ronde 2, Standaardplan"), "{body}");
        assert!(
            body.contains("Bespreek in elk geval:\n- het veiligheidsplan\n- elk kind apart\n"),
            "{body}"
        );
        assert!(body.contains("niet bereikt is ook informatie"), "{body}");
        assert!(body.contains("huisbezoek"), "{body}");
        assert!(body.contains("bewust geen persoonsgegevens"), "{body}");
        assert!(body.contains("\n-- \n"), "signature separator: {body}");

        let (subject, body) = reminder(ReminderKind::Overdue, Language::Nl, &f);
        assert!(subject.contains("Herinnering 3"), "{subject}");
        assert!(body.contains("Dit is herinnering 3."), "{body}");

        let (subject, body) = reminder(ReminderKind::Escalation, Language::Nl, &f);
        assert!(subject.starts_with("[Nazorg] Escalatie"), "{subject}");
        assert!(
            body.starts_with(
                "Aan: J. de Vries, regiecoördinator nazorg (coordinator@vt.example.org)\n"
            ),
            "{body}"
        );
        assert!(body.contains("na 3 keer herinneren"), "{body}");
        let mut f = facts();
        f.coordinator_name = None;
        let (_, body) = reminder(ReminderKind::Escalation, Language::Nl, &f);
        assert!(
            body.starts_with(
                "Aan: de regiecoördinator nazorg van gemeente Amsterdam (coordinator@vt.example.org)\n"
            ),
            "{body}"
        );
    }

    #[test]
    fn english_wording() {
        let mut f = facts();
        f.interpreter_needed = false;
        f.link = None;
        let (subject, body) = reminder(ReminderKind::Due, Language::En, &f);
        assert_eq!(
            subject,
            "[Nazorg] Check-in F-7Q2K9X due, at the latest Friday 18 December 2026"
        );
        assert!(body.contains("Interpreter needed:   no"), "{body}");
        assert!(body.contains("Contact language:     Arabic"), "{body}");
        assert!(
            body.contains("Target date:          Tuesday 15 December 2026, 09:00"),
            "{body}"
        );
        assert!(body.contains("wave 2, Standaardplan"), "{body}");
        assert!(
            body.contains("\"checkin\": \"C-3H8M2P\""),
            "without a link, the command: {body}"
        );
        assert!(
            body.contains("deliberately contains no personal data"),
            "{body}"
        );
        f.overdue_count = 1;
        let (_, body) = reminder(ReminderKind::Escalation, Language::En, &f);
        assert!(body.contains("after 1 reminder.\n"), "{body}");
    }

    /// Every message kind rendered from `templates/mail/` in both languages, with and
    /// without a workspace link: no template syntax left, no codes or ISO dates in the
    /// text, the link where there is one (and no command then), body lines of at most 78
    /// characters.
    #[test]
    fn every_mail_template_renders_in_both_languages() {
        use crate::mail::closure::{ClosureFacts, closure_notice};
        use crate::mail::contact::{
            AttemptFacts, ContactMail, NewFamilyFacts, contact, new_family,
        };
        use crate::mail::fallback::{FallbackFacts, safety_fallback};
        use crate::mail::followup::{
            Coordinator, DigestSections, digest_sections, red_escalation, red_repeat,
        };
        use crate::mail::ics::{Why, cancel_mail};
        use crate::mail::record::{SafetyReviewFacts, safety_plan_review};
        use crate::mail::signals::{AlertFacts, DigestLine, alert};
        const LINK: &str = "https://nazorg.example.org/team/checkins/C-3H8M2P";
        // What each rendered mail must show: its link (when given) or nothing of the kind.
        struct Mail {
            name: String,
            subject: String,
            body: String,
            /// The link the body must carry.
            link: Option<String>,
            /// Whether the subject names the family (the sign-in mail and an erased
            /// family's cancel must not).
            about_family: bool,
        }
        let mut kinds = std::collections::BTreeSet::new();
        let mut rendered = 0;
        for lang in [Language::Nl, Language::En] {
            for linked in [true, false] {
                let at =
                    |path: &str| linked.then(|| format!("https://nazorg.example.org/team/{path}"));
                let mut mails: Vec<Mail> = Vec::new();
                let mut push = |name: &str,
                                (subject, body): (String, String),
                                link: Option<String>,
                                about_family: bool| {
                    mails.push(Mail {
                        name: name.to_string(),
                        subject,
                        body,
                        link,
                        about_family,
                    });
                };
                let mut f = facts();
                f.link = linked.then_some(LINK);
                for kind in KINDS {
                    push(
                        kind.code(),
                        reminder(kind, lang, &f),
                        f.link.map(String::from),
                        true,
                    );
                }
                for kind in [ContactMail::Retry, ContactMail::Missed] {
                    let a = AttemptFacts {
                        reminder: &f,
                        attempts: 2,
                        max_attempts: 3,
                    };
                    push(
                        kind.code(),
                        contact(kind, lang, &a),
                        f.link.map(String::from),
                        true,
                    );
                }
                for why in [Why::Recorded, Why::Missed, Why::Moved, Why::Closed] {
                    let m = cancel_mail(
                        lang,
                        Some("F-7Q2K9X"),
                        "C-3H8M2P",
                        "Amsterdam",
                        "GM0363",
                        why,
                    );
                    push("invite_cancel", m, None, true);
                }
                let m = cancel_mail(lang, None, "C-3H8M2P", "Amsterdam", "GM0363", Why::Erased);
                assert!(
                    !m.0.contains("F-7Q2K9X") && !m.1.contains("F-7Q2K9X"),
                    "{m:?}"
                );
                push("invite_cancel_erased", m, None, false);
                let family_link = at("families/F-7Q2K9X");
                let nf = NewFamilyFacts {
                    family: "F-7Q2K9X",
                    plan: "Standaardplan",
                    municipality_code: "GM0363",
                    municipality_name: "Amsterdam",
                    first_checkin: Some(("C-3H8M2P", "woensdag 29 september 2027")),
                    contact_language: "ar",
                    interpreter_needed: true,
                    case_director: f.case_director,
                    link: family_link.as_deref(),
                };
                push(
                    "new_family",
                    new_family(lang, &nf),
                    family_link.clone(),
                    true,
                );
                let flag_link = at("flags/7");
                let a = AlertFacts {
                    flag_id: 7,
                    family: "F-7Q2K9X",
                    child: Some("M-3H8M2P9Q"),
                    adult: false,
                    rule: "Onbegeleid contact met de pleger",
                    kind: "threshold",
                    severity: "red",
                    checkin: "C-3H8M2P",
                    municipality_code: "GM0363",
                    municipality_name: "Amsterdam",
                    raised_local: "dinsdag 15 december 2026, 09:00",
                    link: flag_link.as_deref(),
                };
                push("alert", alert(lang, &a), flag_link.clone(), true);
                push(
                    "alert_repeat",
                    red_repeat(lang, &a, "woensdag 16 december 2026", 2),
                    flag_link.clone(),
                    true,
                );
                let to = Coordinator {
                    name: Some("J. de Vries"),
                    email: "coordinator@vt.example.org",
                };
                push(
                    "alert_escalation",
                    red_escalation(lang, &a, 2, to),
                    flag_link.clone(),
                    true,
                );
                let line = DigestLine {
                    flag_id: 7,
                    family: "F-7Q2K9X".into(),
                    child: None,
                    adult: false,
                    rule: "Welbevinden daalt".into(),
                    severity: "amber".into(),
                    status: "open".into(),
                    raised_local: "dinsdag 15 december 2026".into(),
                    link: flag_link.clone(),
                };
                let lines = [line];
                let d = DigestSections {
                    municipality_code: "GM0363",
                    municipality_name: "Amsterdam",
                    date: "woensdag 16 december 2026",
                    red: &[],
                    changed: &lines,
                    weekly: &lines,
                };
                let (subject, body) = digest_sections(lang, &d);
                // A digest is about a team's day; its lines name the families.
                assert!(body.contains("F-7Q2K9X"), "{body}");
                push("digest", (subject, body), flag_link.clone(), false);
                for reassign in [false, true] {
                    let flags = vec![("red".to_string(), 1usize)];
                    let handover_link = at("handovers/H-ABCDEFGH");
                    let hf = HandoverFacts {
                        reassign,
                        flags_by_severity: &flags,
                        link: handover_link.as_deref(),
                        ..handover_facts(Some("dossier-F-7Q2K9X.age"))
                    };
                    for kind in HANDOVER_KINDS {
                        push(
                            kind.code(),
                            handover(kind, lang, &hf),
                            handover_link.clone(),
                            true,
                        );
                    }
                }
                for approved_over_red_flag in [false, true] {
                    let c = ClosureFacts {
                        family: "F-7Q2K9X",
                        municipality_code: "GM0363",
                        municipality_name: "Amsterdam",
                        reason: "family_declined_aftercare",
                        closed_on: "dinsdag 15 december 2026",
                        approved_over_red_flag,
                        checkins_cancelled: 3,
                        coordinator_name: Some("J. de Vries"),
                        coordinator_email: "coordinator@vt.example.org",
                    };
                    let m = closure_notice(lang, &c);
                    assert!(!m.1.contains("family_declined_aftercare"), "{m:?}");
                    push(crate::mail::closure::KIND, m, None, true);
                }
                let r = SafetyReviewFacts {
                    family: "F-7Q2K9X",
                    municipality_code: "GM0363",
                    municipality_name: "Amsterdam",
                    review_on: "dinsdag 15 december 2026",
                    link: family_link.as_deref(),
                };
                push(
                    crate::mail::record::SAFETY_REVIEW_KIND,
                    safety_plan_review(lang, &r),
                    family_link.clone(),
                    true,
                );
                let (os, ob) = alert(lang, &a);
                let to = vec!["wijkteam@amsterdam.example.org".to_string()];
                let fb = FallbackFacts {
                    original_subject: &os,
                    original_recipients: &to,
                    error: "permanent failure: 550 mailbox unavailable",
                    original_body: &ob,
                };
                push(
                    crate::mail::SAFETY_FALLBACK_KIND,
                    safety_fallback(lang, &fb),
                    flag_link.clone(),
                    true,
                );
                let signin = "https://nazorg.example.org/team/signin/abcdef0123456789";
                let m = crate::mail::workspace::signin_link(lang, signin, 15);
                push("signin_link", m, Some(signin.to_string()), false);
                for m in mails {
                    rendered += 1;
                    kinds.insert(m.name.clone());
                    let ctx = format!(
                        "{lang:?} {} linked={linked}:\n{}\n{}",
                        m.name, m.subject, m.body
                    );
                    if m.about_family {
                        check_mail(lang, &m.subject, &m.body, &ctx);
                    } else {
                        check_text(lang, &m.subject, &m.body, &ctx);
                        assert!(!m.subject.contains("F-7Q2K9X"), "{ctx}");
                    }
                    match &m.link {
                        Some(link) => {
                            assert!(
                                m.body.contains(&format!("    {link}\n")),
                                "link missing: {ctx}"
                            );
                            if m.name != crate::mail::SAFETY_FALLBACK_KIND {
                                assert!(
                                    !m.body.contains("       nazorg "),
                                    "a command beside the link: {ctx}"
                                );
                            }
                        }
                        None => assert!(
                            !m.body.contains("https://"),
                            "a link without one given: {ctx}"
                        ),
                    }
                }
            }
        }
        // Every kind the outbox knows, in both languages, with and without links.
        let expected = [
            "upcoming",
            "due",
            "overdue",
            "escalation",
            "retry",
            "missed",
            "invite_cancel",
            "invite_cancel_erased",
            "new_family",
            "alert",
            "alert_repeat",
            "alert_escalation",
            "digest",
            "handover",
            "handover_notice",
            "handover_reminder",
            "handover_escalation",
            "closure_notice",
            "safety_plan_review",
            "safety_fallback",
            "signin_link",
        ];
        assert_eq!(kinds, expected.iter().map(|k| k.to_string()).collect());
        assert_eq!(
            rendered,
            2 * 2 * (6 + 4 + 1 + 1 + 4 + 2 * 4 + 2 + 1 + 1 + 1)
        );
    }

    /// Reminders name the case director (a professional: name and work address), or say
    /// that nobody is named yet.
    #[test]
    fn reminders_name_the_case_director() {
        for lang in [Language::Nl, Language::En] {
            let mut f = facts();
            for kind in KINDS {
                let (_, body) = reminder(kind, lang, &f);
                let line = match lang {
                    Language::Nl => "Casusregisseur:       R. de Casusregisseur\n",
                    Language::En => "Case director:        R. de Casusregisseur\n",
                };
                assert!(body.contains(line), "{body}");
                assert!(
                    body.contains("                      r.casusregisseur@wijkteam.example.org\n"),
                    "{body}"
                );
            }
            f.case_director = None;
            let (_, body) = reminder(ReminderKind::Due, lang, &f);
            let none = match lang {
                Language::Nl => "Casusregisseur:       nog geen casusregisseur\n",
                Language::En => "Case director:        no case director yet\n",
            };
            assert!(body.contains(none), "{body}");
        }
    }

    /// What every rendered mail about one family must hold to: [`check_text`], and the
    /// family reference in the subject.
    pub(crate) fn check_mail(lang: Language, subject: &str, body: &str, ctx: &str) {
        check_text(lang, subject, body, ctx);
        assert!(
            subject.contains("F-7Q2K9X"),
            "family reference in the subject: {ctx}"
        );
    }

    /// What every rendered mail must hold to: a `[Nazorg]` subject on one line, no template
    /// syntax, no ISO date or zone name, no codes in Dutch text, lines of at most 78
    /// characters.
    pub(crate) fn check_text(lang: Language, subject: &str, body: &str, ctx: &str) {
        assert!(subject.starts_with("[Nazorg] "), "{ctx}");
        assert!(!subject.contains('\n'), "{ctx}");
        for s in [subject, body] {
            for bad in ["{{", "}}", "{%", "%}", "Europe/Amsterdam"] {
                assert!(!s.contains(bad), "{bad:?} in {ctx}");
            }
            assert!(!has_iso_date(s), "ISO date in {ctx}");
        }
        if lang == Language::Nl {
            let text = format!("{subject}\n{body}");
            let words: Vec<&str> = text
                .split(|c: char| !c.is_alphanumeric() && c != '_')
                .collect();
            for code in [
                "unsupervised_contact",
                "threshold",
                "red",
                "amber",
                "high",
                "standard",
                "ar",
                "acknowledged",
                "family_declined_aftercare",
            ] {
                assert!(!words.contains(&code), "code {code:?} in Dutch text: {ctx}");
            }
        }
        for line in body.lines() {
            assert!(
                line.chars().count() <= 78,
                "line over 78 characters ({}): {line:?} in {ctx}",
                line.chars().count()
            );
        }
    }

    pub(crate) fn has_iso_date(s: &str) -> bool {
        let b = s.as_bytes();
        b.windows(10).any(|w| {
            w[..4].iter().all(u8::is_ascii_digit)
                && w[4] == b'-'
                && w[5..7].iter().all(u8::is_ascii_digit)
                && w[7] == b'-'
                && w[8..].iter().all(u8::is_ascii_digit)
        })
    }

    #[test]
    fn default_language_is_dutch() {
        assert_eq!(Language::default(), Language::Nl);
        assert_eq!(serde_json::to_string(&Language::En).unwrap(), "\"en\"");
        assert_eq!(
            serde_json::from_str::<Language>("\"nl\"").unwrap(),
            Language::Nl
        );
    }

    const HANDOVER_KINDS: [HandoverMail; 4] = [
        HandoverMail::Handover,
        HandoverMail::Notice,
        HandoverMail::Reminder,
        HandoverMail::Escalation,
    ];

    fn handover_facts(dossier: Option<&'static str>) -> HandoverFacts<'static> {
        HandoverFacts {
            handover: "H-ABCDEFGH",
            family: "F-7Q2K9X",
            reassign: false,
            from_code: "GM0363",
            from_name: "Amsterdam",
            from_team_email: "wijkteam@amsterdam.example.org",
            to_code: "GM0599",
            to_name: "Rotterdam",
            effective_date: "maandag 1 maart 2027",
            children: 2,
            next_checkin_due: Some("maandag 15 maart 2027, 09:00"),
            flags_by_severity: &[],
            dossier_file: dossier,
            registered: "zaterdag 20 februari 2027",
            working_days: 2,
            coordinator_name: Some("J. de Vries"),
            coordinator_email: "coordinator@vt.example.org",
            coordinator_of: "Rotterdam",
            link: None,
        }
    }

    #[test]
    fn handover_templates_have_the_facts_and_no_placeholders() {
        let flags = vec![("red".to_string(), 1usize)];
        for dossier in [Some("dossier-F-7Q2K9X.age"), None] {
            let f = HandoverFacts {
                flags_by_severity: &flags,
                ..handover_facts(dossier)
            };
            for lang in [Language::Nl, Language::En] {
                for kind in HANDOVER_KINDS {
                    let (subject, body) = handover(kind, lang, &f);
                    let ctx = format!("{lang:?}/{kind:?}:\n{subject}\n{body}");
                    assert!(subject.starts_with("[Nazorg] ") && subject.contains("F-7Q2K9X"));
                    assert!(!subject.contains('\n'), "{ctx}");
                    for needle in [
                        "H-ABCDEFGH",
                        "1 maart 2027",
                        "GM0599",
                        "wijkteam@amsterdam.example.org",
                        "15 maart 2027, 09:00",
                        "nazorg handover ack H-ABCDEFGH --municipality GM0599",
                    ] {
                        assert!(body.contains(needle), "{needle} missing in {ctx}");
                    }
                    assert_eq!(
                        body.contains("dossier-F-7Q2K9X.age"),
                        dossier.is_some(),
                        "{ctx}"
                    );
                    assert!(!body.contains('{') && !body.contains('}'), "{ctx}");
                    let flags = if lang == Language::Nl {
                        "rood: 1"
                    } else {
                        "red: 1"
                    };
                    assert!(body.contains(flags), "{ctx}");
                    assert!(!body.contains(" hem"), "no gendered pronoun: {ctx}");
                    if kind == HandoverMail::Escalation {
                        // Addressed to the coordinator by name, municipality and address.
                        let to = body.lines().next().unwrap_or_default();
                        assert!(
                            to.contains("J. de Vries") && to.contains("Rotterdam"),
                            "{ctx}"
                        );
                        assert!(
                            body.lines()
                                .nth(1)
                                .is_some_and(|l| l.trim() == "coordinator@vt.example.org"),
                            "{ctx}"
                        );
                    }
                    check_mail(lang, &subject, &body, &ctx);
                }
            }
        }
    }
}
