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

fn date(local: &str) -> &str {
    local.split_whitespace().next().unwrap_or(local)
}
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
    pub plan: &'a str,
    pub municipality_code: &'a str,
    pub municipality_name: &'a str,
    /// The first open check-in and its preformatted local due time, if any.
    pub first_checkin: Option<(&'a str, &'a str)>,
    /// Contact hints, as in the reminders.
    pub contact_language: &'a str,
    pub interpreter_needed: bool,
}

/// Render the notice the responsible team gets at once when a family is enrolled:
/// `(subject, body)`. Help accepted soonest after a crisis works best.
pub fn new_family(lang: Language, f: &NewFamilyFacts) -> (String, String) {
    let fam = f.family;
    match lang {
        Language::Nl => {
            let first = f
                .first_checkin
                .map(|(c, due)| format!("{c}, uiterlijk {}", date(due)))
                .unwrap_or_else(|| "geen gepland".to_owned());
            let subject =
                format!("[Nazorg] Nieuw gezin {fam} in nazorg: eerste contact binnen enkele dagen");
            let body = format!(
                "Aan: het wijkteam van gemeente {name} (gemeentecode {code})\n\n\
                 Een gezin is zojuist aangemeld voor nazorg en uw team is verantwoordelijk.\n\
                 Hulp die snel na een crisis komt, wordt het vaakst aanvaard: neem binnen enkele\n\
                 dagen contact op.\n\n\
                 Gezin (referentie):   {fam}\n\
                 Plan:                 {plan}\n\
                 Eerste contact:       {first}\n\
                 Taal voor contact:    {taal}\n\
                 Tolk nodig:           {tolk}\n\n\
                 Wat vragen wij van u?\n\
                 1. Wijs een regievoerder aan en plan het eerste contact.\n\
                 2. Leg elke poging vast, ook als het gezin niet bereikt is:\n\
                 \n\
                 \x20      nazorg checkin attempt --file FILE.json\n\
                 \n\
                 -- \n\
                 Dit bericht bevat bewust geen persoonsgegevens.\n\
                 Dit is een automatisch bericht van Nazorg.\n",
                name = f.municipality_name,
                code = f.municipality_code,
                plan = f.plan,
                taal = f.contact_language,
                tolk = if f.interpreter_needed { "ja" } else { "nee" },
            );
            (subject, body)
        }
        Language::En => {
            let first = f
                .first_checkin
                .map(|(c, due)| format!("{c}, by {}", date(due)))
                .unwrap_or_else(|| "none scheduled".to_owned());
            let subject =
                format!("[Nazorg] New family {fam} in aftercare: first contact within days");
            let body = format!(
                "To: the municipal team of {name} (municipality code {code})\n\n\
                 A family has just been enrolled in aftercare and your team is responsible.\n\
                 Help offered soon after a crisis is accepted most often: please make contact\n\
                 within a few days.\n\n\
                 Family (reference):   {fam}\n\
                 Plan:                 {plan}\n\
                 First contact:        {first}\n\
                 Contact language:     {lang}\n\
                 Interpreter needed:   {interpreter}\n\n\
                 What we ask of you\n\
                 1. Name a case director and plan the first contact.\n\
                 2. Record every attempt, even if the family is not reached:\n\
                 \n\
                 \x20      nazorg checkin attempt --file FILE.json\n\
                 \n\
                 -- \n\
                 This message deliberately contains no personal data.\n\
                 This is an automated message from Nazorg.\n",
                name = f.municipality_name,
                code = f.municipality_code,
                plan = f.plan,
                lang = f.contact_language,
                interpreter = if f.interpreter_needed { "yes" } else { "no" },
            );
            (subject, body)
        }
    }
}
