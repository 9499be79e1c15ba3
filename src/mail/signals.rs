//! Relapse-signal mail: the immediate red alert (`templates/mail/alert.*.txt`) and the line
//! a digest shows per flag (rendered by [`super::followup::digest_sections`]), Dutch and
//! English. Like the reminders they see only pseudonymous
//! references, rule codes and severities, never observation values or notes.

use super::Language;

/// Everything a red alert may mention. No personal data.
#[derive(Clone, Copy, Debug)]
pub struct AlertFacts<'a> {
    pub flag_id: i64,
    pub family: &'a str,
    /// The member the flag is about (a child, or an adult for an adult rule); `None` for
    /// a family-level flag.
    pub child: Option<&'a str>,
    /// Whether `child` is an adult (an adult rule's flag): labelled so, not as a child.
    pub adult: bool,
    /// The rule's label in the mail's language (`[[rules]] labels`), else its code.
    pub rule: &'a str,
    pub kind: &'a str,
    pub severity: &'a str,
    /// The check-in at which the rule fired.
    pub checkin: &'a str,
    pub municipality_code: &'a str,
    pub municipality_name: &'a str,
    /// In words, e.g. `dinsdag 15 december 2026, 09:00`.
    pub raised_local: &'a str,
    /// The flag's page in the workspace (`/team/flags/N`).
    pub link: Option<&'a str>,
}

/// One line of a digest.
#[derive(Clone, Debug)]
pub struct DigestLine {
    pub flag_id: i64,
    pub family: String,
    /// The member the flag is about (a child, or an adult for an adult rule); `None` for
    /// a family-level flag.
    pub child: Option<String>,
    /// Whether `child` is an adult (an adult rule's flag): labelled so, not as a child.
    pub adult: bool,
    pub rule: String,
    pub severity: String,
    pub status: String,
    pub raised_local: String,
    /// The flag's page in the workspace (`/team/flags/N`).
    pub link: Option<String>,
}

#[derive(askama::Template)]
#[template(path = "mail/alert.nl.txt", escape = "none")]
struct AlertNl<'a> {
    f: &'a AlertFacts<'a>,
    severity: &'a str,
}

#[derive(askama::Template)]
#[template(path = "mail/alert.en.txt", escape = "none")]
struct AlertEn<'a> {
    f: &'a AlertFacts<'a>,
    severity: &'a str,
}

/// Render a red alert: `(subject, body)`, from `templates/mail/alert.*.txt`. The subject
/// names the family only: no rule, no child, nothing of the evidence.
pub fn alert(lang: Language, f: &AlertFacts) -> (String, String) {
    use askama::Template;
    let severity = super::templates::severity_name(f.severity, lang);
    super::templates::finish(match lang {
        Language::Nl => AlertNl { f, severity }.render(),
        Language::En => AlertEn { f, severity }.render(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alert_carries_references_and_actions_in_both_languages() {
        let a = AlertFacts {
            flag_id: 7,
            family: "F-7Q2K9XM4",
            child: Some("M-3H8M2P9Q2K"),
            adult: false,
            rule: "new_incident",
            kind: "threshold",
            severity: "red",
            checkin: "C-3H8M2P9Q2K",
            municipality_code: "GM0363",
            municipality_name: "Amsterdam",
            raised_local: "dinsdag 15 december 2026, 09:00",
            link: None,
        };
        for lang in [Language::Nl, Language::En] {
            let (s, b) = alert(lang, &a);
            // The subject names the family only: no rule, severity or child.
            assert!(
                s.starts_with("[Nazorg] ") && s.ends_with(" F-7Q2K9XM4"),
                "{s}"
            );
            for word in ["new_incident", "threshold", "red", "M-3H8M2P9Q2K"] {
                assert!(!s.to_lowercase().contains(word), "{s}");
            }
            assert!(
                b.contains("F-7Q2K9XM4") && b.contains("M-3H8M2P9Q2K"),
                "{b}"
            );
            assert!(
                b.contains("flags ack 7"),
                "without a link, the command: {b}"
            );
            assert!(!s.contains('\n'));
            if lang == Language::Nl {
                assert!(b.contains("zorgsignaal") && b.contains("herhaling"), "{b}");
                assert!(b.contains("Ernst:                rood\n"), "{b}");
            }
            let link = "https://nazorg.example.org/team/flags/7";
            let (_, b) = alert(
                lang,
                &AlertFacts {
                    link: Some(link),
                    ..a
                },
            );
            assert!(b.contains(&format!("       {link}\n")), "{b}");
            assert!(!b.contains("nazorg flags"), "with a link, no command: {b}");
            // A flag of an adult rule names the member as an adult, not as a child.
            let (child, adult) = match lang {
                Language::Nl => ("Kind (referentie):", "Volwassene (ref.):"),
                Language::En => ("Child (reference):", "Adult (reference):"),
            };
            assert!(b.contains(child) && !b.contains(adult), "{b}");
            let (_, b) = alert(lang, &AlertFacts { adult: true, ..a });
            assert!(b.contains(adult) && !b.contains(child), "{b}");
        }
    }

    /// The red alert from its template: the rule's label and the date in words, no codes,
    /// lines within 78 characters.
    #[test]
    fn alert_template_reads_in_words() {
        for lang in [Language::Nl, Language::En] {
            let a = AlertFacts {
                flag_id: 7,
                family: "F-7Q2K9X",
                child: None,
                adult: false,
                rule: "Onbegeleid contact met de pleger",
                kind: "threshold",
                severity: "red",
                checkin: "C-3H8M2P9Q2K",
                municipality_code: "GM0363",
                municipality_name: "Amsterdam",
                raised_local: "dinsdag 15 december 2026, 09:00",
                link: Some("https://nazorg.example.org/team/flags/7"),
            };
            let (s, b) = alert(lang, &a);
            let ctx = format!("{s}\n{b}");
            crate::mail::templates::tests::check_mail(lang, &s, &b, &ctx);
            assert!(b.contains("#7 Onbegeleid contact met de pleger\n"), "{ctx}");
        }
    }
}
