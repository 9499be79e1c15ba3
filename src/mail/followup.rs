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
                 Signaal:              #{id} {rule}\n\
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
                 Flag:                 #{id} {rule}\n\
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
    /// The day of the digest in words ("dinsdag 15 december 2026").
    pub date: &'a str,
    /// Every unresolved red flag.
    pub red: &'a [DigestLine],
    /// Amber and info flags raised or acknowledged since the previous digest.
    pub changed: &'a [DigestLine],
    /// On the first working day of the week: the other unresolved amber and info flags.
    pub weekly: &'a [DigestLine],
}

/// A digest line as the template shows it: words, not codes.
struct LineView<'a> {
    id: i64,
    severity: &'a str,
    status: &'a str,
    raised: &'a str,
    family: &'a str,
    child: Option<&'a str>,
    adult: bool,
    rule: &'a str,
}

struct SectionView<'a> {
    title: &'static str,
    lines: Vec<LineView<'a>>,
}

struct DigestView<'a> {
    team_name: &'a str,
    team_code: &'a str,
    date: &'a str,
    red: usize,
    total: usize,
    sections: Vec<SectionView<'a>>,
}

#[derive(askama::Template)]
#[template(path = "mail/digest.nl.txt", escape = "none")]
struct DigestNl<'a> {
    v: &'a DigestView<'a>,
}

#[derive(askama::Template)]
#[template(path = "mail/digest.en.txt", escape = "none")]
struct DigestEn<'a> {
    v: &'a DigestView<'a>,
}

/// A flag status in words.
fn status_name(code: &str, lang: Language) -> &str {
    match (lang, code) {
        (Language::Nl, "acknowledged") => "bevestigd",
        (Language::Nl, "resolved") => "afgesloten",
        (_, other) => other,
    }
}

/// Render the sectioned digest: `(subject, body)`, from `templates/mail/digest.*.txt`;
/// three short lines per flag, so nothing wraps.
pub fn digest_sections(lang: Language, f: &DigestSections) -> (String, String) {
    use askama::Template;
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
    let v = DigestView {
        team_name: f.municipality_name,
        team_code: f.municipality_code,
        date: f.date,
        red: f.red.len(),
        total: f.red.len() + f.changed.len() + f.weekly.len(),
        sections: sections
            .into_iter()
            .filter(|(lines, ..)| !lines.is_empty())
            .map(|(lines, nl, en)| SectionView {
                title: if lang == Language::Nl { nl } else { en },
                lines: lines
                    .iter()
                    .map(|l| LineView {
                        id: l.flag_id,
                        severity: super::templates::severity_name(&l.severity, lang),
                        status: status_name(&l.status, lang),
                        raised: &l.raised_local,
                        family: &l.family,
                        child: l.child.as_deref(),
                        adult: l.adult,
                        rule: &l.rule,
                    })
                    .collect(),
            })
            .collect(),
    };
    super::templates::finish(match lang {
        Language::Nl => DigestNl { v: &v }.render(),
        Language::En => DigestEn { v: &v }.render(),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    /// The digest from its template: every section, words instead of codes, no ISO dates,
    /// no line over 78 characters (three short lines per flag).
    #[test]
    fn digest_template_lines_fit_and_read_in_words() {
        let line = |id: i64, severity: &str, status: &str, child: Option<&str>| DigestLine {
            flag_id: id,
            family: "F-7Q2K9XM4".into(),
            child: child.map(String::from),
            adult: false,
            rule: "Gedragsverandering en contact met de pleger".into(),
            severity: severity.into(),
            status: status.into(),
            raised_local: "woensdag 29 september 2027".into(),
        };
        let red = vec![line(123456, "red", "acknowledged", Some("M-3H8M2P9Q2K"))];
        let changed = vec![line(8, "amber", "open", None)];
        let weekly = vec![
            line(9, "info", "open", None),
            DigestLine {
                adult: true,
                ..line(10, "amber", "open", Some("M-4J9N3R8T2V"))
            },
        ];
        for lang in [Language::Nl, Language::En] {
            let (subject, body) = digest_sections(
                lang,
                &DigestSections {
                    municipality_code: "GM0363",
                    municipality_name: "Amsterdam",
                    date: "woensdag 29 september 2027",
                    red: &red,
                    changed: &changed,
                    weekly: &weekly,
                },
            );
            let ctx = format!("{subject}\n{body}");
            for id in [123456, 8, 9, 10] {
                assert!(body.contains(&format!("#{id} ")), "{ctx}");
            }
            for s in [&subject, &body] {
                assert!(!s.contains("{{") && !s.contains("{%"), "{ctx}");
                assert!(!crate::mail::templates::tests::has_iso_date(s), "{ctx}");
            }
            for l in body.lines() {
                assert!(l.chars().count() <= 78, "{l:?} in {ctx}");
            }
            // A child's flag names the child, an adult rule's flag the adult.
            let (kid, adult) = match lang {
                Language::Nl => ("kind", "volwassene"),
                Language::En => ("child", "adult"),
            };
            assert!(
                body.contains(&format!("F-7Q2K9XM4, {kid} M-3H8M2P9Q2K\n")),
                "{ctx}"
            );
            assert!(
                body.contains(&format!("F-7Q2K9XM4, {adult} M-4J9N3R8T2V\n")),
                "{ctx}"
            );
            assert!(!body.contains(&format!("{kid} M-4J9N3R8T2V")), "{ctx}");
            if lang == Language::Nl {
                assert!(body.contains("#123456 rood, bevestigd,"), "{ctx}");
                assert!(body.contains("#8 oranje, open,"), "{ctx}");
                for code in [" red", " amber", "acknowledged"] {
                    assert!(!body.contains(code), "{code} in {ctx}");
                }
                assert!(subject.contains("1 rood, 4 in totaal"), "{subject}");
            } else {
                assert!(body.contains("Red flags") && body.contains("New or changed"));
                assert!(body.contains("Weekly summary"), "{ctx}");
            }
        }
    }
}
