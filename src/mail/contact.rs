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
