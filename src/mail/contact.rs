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

fn date(local: &str) -> &str {
    local.split_whitespace().next().unwrap_or(local)
}

/// Render a contact-loop message: `(subject, body)`.
pub fn contact(kind: ContactMail, lang: Language, a: &AttemptFacts) -> (String, String) {
    let f = a.reminder;
    let fam = f.family;
    let day = date(f.due_local);
    let (subject, addressee, intro, steps, footer, facts) = match lang {
        Language::Nl => {
            let subject = match kind {
                ContactMail::Retry => format!(
                    "[Nazorg] Nieuwe poging {n} van {m}: contactmoment {fam} uiterlijk {day}",
                    n = a.attempts + 1,
                    m = a.max_attempts
                ),
                ContactMail::Missed => format!(
                    "[Nazorg] Escalatie: gezin {fam} na {n} pogingen niet bereikt",
                    n = a.attempts
                ),
            };
            let team = format!(
                "het wijkteam van gemeente {} (gemeentecode {})",
                f.municipality_name, f.municipality_code
            );
            let addressee = match kind {
                ContactMail::Retry => team.clone(),
                ContactMail::Missed => format!(
                    "de regiecoördinator nazorg van gemeente {}",
                    f.municipality_name
                ),
            };
            let intro = match kind {
                ContactMail::Retry => format!(
                    "Bij de vorige poging is het gezin niet bereikt ({n} van {m} pogingen gedaan).\n\
                     Blijf het proberen: een andere dag, een ander tijdstip of een andere manier\n\
                     (huisbezoek, bellen, beeldbellen, samen wandelen).",
                    n = a.attempts,
                    m = a.max_attempts
                ),
                ContactMail::Missed => format!(
                    "Het wijkteam van gemeente {name} heeft het gezin hieronder bij alle {n}\n\
                     pogingen van dit contactmoment niet bereikt. Ook de eerdere pogingen zijn\n\
                     mislukt. Wilt u met het wijkteam bespreken hoe het contact wordt hersteld?",
                    name = f.municipality_name,
                    n = a.attempts
                ),
            };
            let steps = match kind {
                ContactMail::Retry => format!(
                    "Wat vragen wij van u?\n\
                     1. Probeer het gezin opnieuw te bereiken.\n\
                     2. Leg elke poging vast, ook als het gezin weer niet bereikt is:\n\
                     \n\
                     \x20      nazorg checkin attempt --file FILE.json\n\
                     \x20      (met \"checkin\": \"{c}\")\n",
                    c = f.checkin
                ),
                ContactMail::Missed => "Wat vragen wij van u?\n\
                     1. Neem contact op met het verantwoordelijke wijkteam (zie hierboven).\n\
                     2. Beoordeel of er aanleiding is voor verdere actie vanuit Veilig Thuis.\n"
                    .to_owned(),
            };
            let tolk = if f.interpreter_needed { "ja" } else { "nee" };
            let facts = format!(
                "Gezin (referentie):   {fam}\n\
                 Contactmoment:        {c} (ronde {w})\n\
                 Uiterlijk:            {due}\n\
                 Pogingen:             {n} van {m}\n\
                 Taal voor contact:    {taal}\n\
                 Tolk nodig:           {tolk}\n\
                 Verantwoordelijk:     {team}\n",
                c = f.checkin,
                w = f.wave,
                due = day,
                n = a.attempts,
                m = a.max_attempts,
                taal = f.contact_language,
            );
            let footer = "-- \n\
                          Dit bericht bevat bewust geen persoonsgegevens.\n\
                          Dit is een automatisch bericht van Nazorg.\n";
            (subject, addressee, intro, steps, footer, facts)
        }
        Language::En => {
            let subject = match kind {
                ContactMail::Retry => format!(
                    "[Nazorg] New attempt {n} of {m}: check-in {fam} by {day}",
                    n = a.attempts + 1,
                    m = a.max_attempts
                ),
                ContactMail::Missed => format!(
                    "[Nazorg] Escalation: family {fam} not reached after {n} attempts",
                    n = a.attempts
                ),
            };
            let team = format!(
                "the municipal team of {} (municipality code {})",
                f.municipality_name, f.municipality_code
            );
            let addressee = match kind {
                ContactMail::Retry => team.clone(),
                ContactMail::Missed => format!(
                    "the aftercare coordinator of the municipality of {}",
                    f.municipality_name
                ),
            };
            let intro = match kind {
                ContactMail::Retry => format!(
                    "The family was not reached at the previous attempt ({n} of {m} attempts made).\n\
                     Keep trying: another day, another time or another way (home visit, phone,\n\
                     video call, a walk together).",
                    n = a.attempts,
                    m = a.max_attempts
                ),
                ContactMail::Missed => format!(
                    "The municipal team of {name} did not reach the family below at any of the\n\
                     {n} attempts of this check-in; the earlier attempts failed too. Please\n\
                     discuss with the team how contact is restored.",
                    name = f.municipality_name,
                    n = a.attempts
                ),
            };
            let steps = match kind {
                ContactMail::Retry => format!(
                    "What we ask of you\n\
                     1. Try to reach the family again.\n\
                     2. Record every attempt, even if the family is not reached again:\n\
                     \n\
                     \x20      nazorg checkin attempt --file FILE.json\n\
                     \x20      (with \"checkin\": \"{c}\")\n",
                    c = f.checkin
                ),
                ContactMail::Missed => "What we ask of you\n\
                     1. Contact the responsible municipal team (see above).\n\
                     2. Assess whether further action by Veilig Thuis is needed.\n"
                    .to_owned(),
            };
            let interpreter = if f.interpreter_needed { "yes" } else { "no" };
            let facts = format!(
                "Family (reference):   {fam}\n\
                 Check-in:             {c} (wave {w})\n\
                 By:                   {due}\n\
                 Attempts:             {n} of {m}\n\
                 Contact language:     {lang}\n\
                 Interpreter needed:   {interpreter}\n\
                 Responsible:          {team}\n",
                c = f.checkin,
                w = f.wave,
                due = day,
                n = a.attempts,
                m = a.max_attempts,
                lang = f.contact_language,
            );
            let footer = "-- \n\
                          This message deliberately contains no personal data.\n\
                          This is an automated message from Nazorg.\n";
            (subject, addressee, intro, steps, footer, facts)
        }
    };
    let to = if lang == Language::Nl { "Aan" } else { "To" };
    let body = format!("{to}: {addressee}\n\n{intro}\n\n{facts}\n{steps}\n{footer}");
    (subject, body)
}
