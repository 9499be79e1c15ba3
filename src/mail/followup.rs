//! Red signals followed through: the daily repeat of an unacknowledged red alert, its
//! escalation to the coordinator, and the digest in sections (red every day; amber and info
//! when new or changed; the rest once a week). Like every template: references, rule codes
//! and dates only.

use super::Language;
use super::signals::{AlertFacts, DigestLine, alert};

/// The red alert again, on a later working day, while nobody acknowledged it.
pub fn red_repeat(lang: Language, f: &AlertFacts, date: &str) -> (String, String) {
    let (subject, body) = alert(lang, f);
    let subject = match lang {
        Language::Nl => format!("{subject} (herhaling {date}: nog niet bevestigd)"),
        Language::En => format!("{subject} (repeated {date}: not acknowledged yet)"),
    };
    let note = match lang {
        Language::Nl => {
            "Dit rode signaal is nog niet bevestigd. Het wordt elke werkdag opnieuw gestuurd\n\
             tot iemand het bevestigt; daarna hoort de regiecoördinator ervan.\n\n"
        }
        Language::En => {
            "This red flag has not been acknowledged yet. It is sent again every working day\n\
             until someone acknowledges it; the coordinator is told as well.\n\n"
        }
    };
    (subject, format!("{note}{body}"))
}

/// To the coordinator (cc the team): a red flag stayed unacknowledged for `working_days`.
pub fn red_escalation(lang: Language, f: &AlertFacts, working_days: u32) -> (String, String) {
    // The subject names the family only: no rule, no child (like the alert's).
    let fam = f.family;
    match lang {
        Language::Nl => (
            format!("[Nazorg] Escalatie: rood signaal voor gezin {fam} niet bevestigd"),
            format!(
                "Aan: de regiecoördinator nazorg van gemeente {name} (gemeentecode {code})\n\n\
                 Het rode signaal hieronder is na {n} werkdag{pl} nog niet bevestigd door het\n\
                 wijkteam. Wilt u zorgen dat iemand vandaag actie onderneemt?\n\n\
                 Signaal:              #{id} {rule} ({kind})\n\
                 Gezin (referentie):   {fam}\n\
                 Kind:                 {child}\n\
                 Afgegeven:            {raised}\n\n\
                 Bevestigen met:\n\
                 \x20      nazorg flags ack {id} --note TEKST\n\n\
                 -- \n\
                 Dit bericht bevat bewust geen persoonsgegevens.\n\
                 Dit is een automatisch bericht van Nazorg.\n",
                name = f.municipality_name,
                code = f.municipality_code,
                n = working_days,
                pl = if working_days == 1 { "" } else { "en" },
                id = f.flag_id,
                rule = f.rule,
                kind = f.kind,
                fam = f.family,
                child = f.child.unwrap_or("-"),
                raised = f.raised_local,
            ),
        ),
        Language::En => (
            format!("[Nazorg] Escalation: red flag for family {fam} not acknowledged"),
            format!(
                "To: the aftercare coordinator of {name} (municipality code {code})\n\n\
                 The red flag below has not been acknowledged by the municipal team after {n}\n\
                 working day{pl}. Please make sure someone acts on it today.\n\n\
                 Flag:                 #{id} {rule} ({kind})\n\
                 Family (reference):   {fam}\n\
                 Child:                {child}\n\
                 Raised:               {raised}\n\n\
                 Acknowledge with:\n\
                 \x20      nazorg flags ack {id} --note TEXT\n\n\
                 -- \n\
                 This message deliberately contains no personal data.\n\
                 This is an automated message from Nazorg.\n",
                name = f.municipality_name,
                code = f.municipality_code,
                n = working_days,
                pl = if working_days == 1 { "" } else { "s" },
                id = f.flag_id,
                rule = f.rule,
                kind = f.kind,
                fam = f.family,
                child = f.child.unwrap_or("-"),
                raised = f.raised_local,
            ),
        ),
    }
}

/// The digest of one team on one working day, in sections.
#[derive(Clone, Copy, Debug)]
pub struct DigestSections<'a> {
    pub municipality_code: &'a str,
    pub municipality_name: &'a str,
    /// `YYYY-MM-DD`.
    pub date: &'a str,
    /// Every unresolved red flag.
    pub red: &'a [DigestLine],
    /// Amber and info flags raised or acknowledged since the previous digest.
    pub changed: &'a [DigestLine],
    /// On the first working day of the week: the other unresolved amber and info flags.
    pub weekly: &'a [DigestLine],
}

/// One line, short enough not to wrap (under 80 characters for usual codes).
fn line(l: &DigestLine) -> String {
    let raised = l.raised_local.split_whitespace().next().unwrap_or("");
    format!(
        "  #{} {} {} {} {} {} {}\n",
        l.flag_id,
        l.severity,
        l.status,
        l.family,
        l.child.as_deref().unwrap_or("-"),
        l.rule,
        raised
    )
}

/// Render the sectioned digest: `(subject, body)`.
pub fn digest_sections(lang: Language, f: &DigestSections) -> (String, String) {
    let nl = lang == Language::Nl;
    let mut body = if nl {
        format!(
            "Aan: het wijkteam van gemeente {} (gemeentecode {})\n\n\
             Signalen van gezinnen waarvoor u verantwoordelijk bent, {}.\n\
             Per regel: nummer, ernst, status, gezin, kind, regel, datum.\n",
            f.municipality_name, f.municipality_code, f.date
        )
    } else {
        format!(
            "To: the municipal team of {} (municipality code {})\n\n\
             Flags of families you are responsible for, {}.\n\
             Each line: number, severity, status, family, child, rule, date.\n",
            f.municipality_name, f.municipality_code, f.date
        )
    };
    let sections = [
        (
            f.red,
            "Rode signalen (actie vandaag)",
            "Red flags (act today)",
        ),
        (
            f.changed,
            "Nieuw of veranderd sinds het vorige overzicht",
            "New or changed since the previous digest",
        ),
        (
            f.weekly,
            "Weekoverzicht: verder nog open",
            "Weekly summary: still open",
        ),
    ];
    for (lines, title_nl, title_en) in sections {
        if lines.is_empty() {
            continue;
        }
        body.push_str(&format!("\n{}:\n", if nl { title_nl } else { title_en }));
        for l in lines {
            body.push_str(&line(l));
        }
    }
    body.push_str(if nl {
        "\nWat vragen wij van u?\n\
         Bespreek de signalen in het team, bevestig wat u oppakt en sluit af wat is opgelost:\n\
         \x20      nazorg flags ack NR --note TEKST\n\
         \x20      nazorg flags resolve NR --note TEKST\n\n\
         -- \n\
         Dit bericht bevat bewust geen persoonsgegevens.\n\
         Dit is een automatisch bericht van Nazorg.\n"
    } else {
        "\nWhat we ask of you\n\
         Discuss the flags in the team, acknowledge what you act on, resolve what is dealt with:\n\
         \x20      nazorg flags ack NO --note TEXT\n\
         \x20      nazorg flags resolve NO --note TEXT\n\n\
         -- \n\
         This message deliberately contains no personal data.\n\
         This is an automated message from Nazorg.\n"
    });
    let n = f.red.len() + f.changed.len() + f.weekly.len();
    let subject = if nl {
        format!(
            "[Nazorg] Overzicht signalen {} {}: {} rood, {n} in totaal",
            f.municipality_code,
            f.date,
            f.red.len()
        )
    } else {
        format!(
            "[Nazorg] Digest of flags {} {}: {} red, {n} in all",
            f.municipality_code,
            f.date,
            f.red.len()
        )
    };
    (subject, body)
}
