//! Templates for the contact loop: the reminder for the next attempt after a family was not
//! reached, and the escalation when every attempt failed. Dutch and English; like the other
//! reminders they see only references, codes, dates and counts.

use super::{Language, ReminderFacts};

/// Which contact-loop message to render.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContactMail {
    /// To the team: the previous attempt did not reach the family; the next one is due.
    Retry,
    /// To the coordinator (cc the team): every allowed attempt failed; the check-in is missed.
    Missed,
}

impl ContactMail {
    pub fn code(&self) -> &'static str {
        match self {
            ContactMail::Retry => "retry",
            ContactMail::Missed => "missed",
        }
    }
}

/// What a contact-loop message says beyond the reminder facts.
#[derive(Clone, Copy, Debug)]
pub struct AttemptFacts<'a> {
    pub reminder: &'a ReminderFacts<'a>,
    /// Attempts made so far (all of them failed).
    pub attempts: u32,
    /// Attempts allowed per check-in.
    pub max_attempts: u32,
}

use super::templates::{ReminderView, finish, mail_template};

use askama::Template;

mail_template!(RetryNl, "mail/reminder_retry.nl.txt", ReminderView);
mail_template!(RetryEn, "mail/reminder_retry.en.txt", ReminderView);
mail_template!(MissedNl, "mail/reminder_missed.nl.txt", ReminderView);
mail_template!(MissedEn, "mail/reminder_missed.en.txt", ReminderView);

/// Render a contact-loop message: `(subject, body)`, from `templates/mail/reminder_retry.*`
/// and `reminder_missed.*`.
pub fn contact(kind: ContactMail, lang: Language, a: &AttemptFacts) -> (String, String) {
    let mut view = ReminderView::new(lang, a.reminder);
    view.attempts = a.attempts;
    view.max_attempts = a.max_attempts;
    let v = &view;
    finish(match (kind, lang) {
        (ContactMail::Retry, Language::Nl) => RetryNl { v }.render(),
        (ContactMail::Retry, Language::En) => RetryEn { v }.render(),
        (ContactMail::Missed, Language::Nl) => MissedNl { v }.render(),
        (ContactMail::Missed, Language::En) => MissedEn { v }.render(),
    })
}

/// What the "new family" notice at enrolment may say: references, codes and a date.
#[derive(Clone, Copy, Debug)]
pub struct NewFamilyFacts<'a> {
    pub family: &'a str,
    /// The plan's label in the mail's language.
    pub plan: &'a str,
    pub municipality_code: &'a str,
    pub municipality_name: &'a str,
    /// The first open check-in and its due day in words, if any.
    pub first_checkin: Option<(&'a str, &'a str)>,
    /// Contact hints, as in the reminders.
    pub contact_language: &'a str,
    pub interpreter_needed: bool,
    /// Named at enrolment: who the team can ask about the family.
    pub case_director: Option<super::templates::CaseDirectorContact<'a>>,
    /// The family's page in the workspace (`/team/families/F-…`).
    pub link: Option<&'a str>,
}

#[derive(askama::Template)]
#[template(path = "mail/new_family.nl.txt", escape = "none")]
struct NewFamilyNl<'a> {
    f: &'a NewFamilyFacts<'a>,
    language: &'a str,
}

#[derive(askama::Template)]
#[template(path = "mail/new_family.en.txt", escape = "none")]
struct NewFamilyEn<'a> {
    f: &'a NewFamilyFacts<'a>,
    language: &'a str,
}

/// Render the notice the responsible team gets at once when a family is enrolled:
/// `(subject, body)`, from `templates/mail/new_family.*.txt`. Help accepted soonest after a
/// crisis works best.
pub fn new_family(lang: Language, f: &NewFamilyFacts) -> (String, String) {
    let language = &super::words::language_name(f.contact_language, lang);
    finish(match lang {
        Language::Nl => NewFamilyNl { f, language }.render(),
        Language::En => NewFamilyEn { f, language }.render(),
    })
}
