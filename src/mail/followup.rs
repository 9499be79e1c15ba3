//! Red signals followed through: the daily repeat of an unacknowledged red alert, its
//! escalation to the coordinator, and the digest in sections (red every day; amber and info
//! when new or changed; the rest once a week). Like every template: references, rule codes
//! and dates only.

use super::Language;
use super::signals::{AlertFacts, DigestLine};

#[derive(askama::Template)]
#[template(path = "mail/alert_repeat.nl.txt", escape = "none")]
struct RepeatNl<'a> {
    f: &'a AlertFacts<'a>,
    severity: &'a str,
    date: &'a str,
    escalate_after: u32,
}

#[derive(askama::Template)]
#[template(path = "mail/alert_repeat.en.txt", escape = "none")]
struct RepeatEn<'a> {
    f: &'a AlertFacts<'a>,
    severity: &'a str,
    date: &'a str,
    escalate_after: u32,
}

/// The red alert again, on a later working day (`date`, in words), while nobody
/// acknowledged it; `escalate_after` working days after it was raised the coordinator is
/// told. From `templates/mail/alert_repeat.*.txt`.
pub fn red_repeat(
    lang: Language,
    f: &AlertFacts,
    date: &str,
    escalate_after: u32,
) -> (String, String) {
    use askama::Template;
    let severity = super::templates::severity_name(f.severity, lang);
    super::templates::finish(match lang {
        Language::Nl => RepeatNl {
            f,
            severity,
            date,
            escalate_after,
        }
        .render(),
        Language::En => RepeatEn {
            f,
            severity,
            date,
            escalate_after,
        }
        .render(),
    })
}

#[derive(askama::Template)]
#[template(path = "mail/alert_escalation.nl.txt", escape = "none")]
struct RedEscalationNl<'a> {
    f: &'a AlertFacts<'a>,
    coordinator: &'a str,
    working_days: u32,
}

#[derive(askama::Template)]
#[template(path = "mail/alert_escalation.en.txt", escape = "none")]
struct RedEscalationEn<'a> {
    f: &'a AlertFacts<'a>,
    coordinator: &'a str,
    working_days: u32,
}

/// The configured coordinator an escalation goes to.
#[derive(Clone, Copy, Debug)]
pub struct Coordinator<'a> {
    /// `municipalities.coordinator_name`, optional.
    pub name: Option<&'a str>,
    pub email: &'a str,
}

/// To the coordinator (cc the team): a red flag stayed unacknowledged for `working_days`.
/// From `templates/mail/alert_escalation.*.txt`; the subject names the family only.
pub fn red_escalation(
    lang: Language,
    f: &AlertFacts,
    working_days: u32,
    to: Coordinator,
) -> (String, String) {
    use askama::Template;
    let coordinator =
        &super::templates::coordinator_line(lang, to.name, to.email, f.municipality_name);
    super::templates::finish(match lang {
        Language::Nl => RedEscalationNl {
            f,
            coordinator,
            working_days,
        }
        .render(),
        Language::En => RedEscalationEn {
            f,
            coordinator,
            working_days,
        }
        .render(),
    })
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
    link: Option<&'a str>,
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
    /// Every line has its workspace link: the team acts there, not with commands.
    linked: bool,
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
        linked: f
            .red
            .iter()
            .chain(f.changed)
            .chain(f.weekly)
            .all(|l| l.link.is_some()),
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
                        link: l.link.as_deref(),
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
            link: Some(format!("https://nazorg.example.org/team/flags/{id}")),
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
