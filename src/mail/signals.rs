//! Templates for relapse-signal mail: the immediate red alert and the daily digest of amber
//! and info flags, Dutch and English. Like the reminders they see only pseudonymous
//! references, rule codes and severities, never observation values or notes.

use super::Language;

/// Everything a red alert may mention. No personal data.
#[derive(Clone, Copy, Debug)]
pub struct AlertFacts<'a> {
    pub flag_id: i64,
    pub family: &'a str,
    /// The child's member reference; `None` for a family-level flag.
    pub child: Option<&'a str>,
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
}

#[derive(Clone, Copy, Debug)]
pub struct DigestFacts<'a> {
    pub municipality_code: &'a str,
    pub municipality_name: &'a str,
    /// The local date of the digest, `YYYY-MM-DD`.
    pub date: &'a str,
    pub lines: &'a [DigestLine],
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

/// Render the daily digest: `(subject, body)`.
pub fn digest(lang: Language, f: &DigestFacts) -> (String, String) {
    let nl = lang == Language::Nl;
    let mut lines = String::new();
    for l in f.lines {
        lines.push_str(&format!(
            "  #{:<6} {:<6} {:<14} {:<12} {:<14} {:<28} {}\n",
            l.flag_id,
            l.severity,
            l.status,
            l.family,
            l.child.as_deref().unwrap_or("-"),
            l.rule,
            l.raised_local
        ));
    }
    let n = f.lines.len();
    if nl {
        (
            format!(
                "[Nazorg] Dagoverzicht signalen {} {}: {n} open",
                f.municipality_code, f.date
            ),
            format!(
                "Aan: het wijkteam van gemeente {name} (gemeentecode {code})\n\n\
                 Dagoverzicht van {date}: {n} signa{plural} (oranje of info) van gezinnen waarvoor\n\
                 u verantwoordelijk bent, nog niet afgesloten.\n\n\
                 \x20 nr.     ernst  status         gezin        kind           regel                        afgegeven\n\
                 {lines}\n\
                 Wat vragen wij van u?\n\
                 1. Bespreek de signalen in het team en bekijk de onderbouwing in Nazorg:\n\
                 \x20      nazorg flags list --municipality {code} --open\n\
                 2. Bevestig wat u oppakt en sluit af wat is opgelost:\n\
                 \x20      nazorg flags ack NR --note TEKST\n\
                 \x20      nazorg flags resolve NR --note TEKST\n\n\
                 -- \n\
                 Dit bericht bevat bewust geen persoonsgegevens.\n\
                 Dit is een automatisch bericht van Nazorg.\n",
                name = f.municipality_name,
                code = f.municipality_code,
                date = f.date,
                plural = if n == 1 { "al" } else { "len" },
            ),
        )
    } else {
        (
            format!(
                "[Nazorg] Daily digest of signals {} {}: {n} open",
                f.municipality_code, f.date
            ),
            format!(
                "To: the municipal team (wijkteam) of {name} (municipality code {code})\n\n\
                 Digest of {date}: {n} flag{plural} (amber or info) of families you are\n\
                 responsible for, not resolved yet.\n\n\
                 \x20 no.     sev.   status         family       child          rule                         raised\n\
                 {lines}\n\
                 What we ask of you\n\
                 1. Discuss the flags in the team and look at their evidence in Nazorg:\n\
                 \x20      nazorg flags list --municipality {code} --open\n\
                 2. Acknowledge what you act on and resolve what is dealt with:\n\
                 \x20      nazorg flags ack NO --note TEXT\n\
                 \x20      nazorg flags resolve NO --note TEXT\n\n\
                 -- \n\
                 This message deliberately contains no personal data.\n\
                 This is an automated message from Nazorg.\n",
                name = f.municipality_name,
                code = f.municipality_code,
                date = f.date,
                plural = if n == 1 { "" } else { "s" },
            ),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alert_and_digest_carry_references_and_actions_in_both_languages() {
        let a = AlertFacts {
            flag_id: 7,
            family: "F-7Q2K9XM4",
            child: Some("M-3H8M2P9Q2K"),
            rule: "new_incident",
            kind: "threshold",
            severity: "red",
            checkin: "C-3H8M2P9Q2K",
            municipality_code: "GM0363",
            municipality_name: "Amsterdam",
            raised_local: "2027-01-15 09:00 (Europe/Amsterdam)",
        };
        let lines = vec![DigestLine {
            flag_id: 8,
            family: "F-7Q2K9XM4".into(),
            child: None,
            adult: false,
            rule: "wellbeing_drop".into(),
            severity: "amber".into(),
            status: "open".into(),
            raised_local: "2027-01-14 10:00 (Europe/Amsterdam)".into(),
        }];
        let d = DigestFacts {
            municipality_code: "GM0363",
            municipality_name: "Amsterdam",
            date: "2027-01-15",
            lines: &lines,
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
            assert!(b.contains("flags ack 7"), "{b}");
            assert!(!s.contains('\n'));
            if lang == Language::Nl {
                assert!(b.contains("zorgsignaal") && b.contains("herhaling"), "{b}");
                assert!(b.contains("Ernst:                rood\n"), "{b}");
            }
            let (s, b) = digest(lang, &d);
            assert!(s.contains("GM0363 2027-01-15"), "{s}");
            assert!(b.contains("#8") && b.contains("wellbeing_drop"), "{b}");
            for t in [&s, &b] {
                assert!(!t.contains('{') && !t.contains('}'), "{t}");
            }
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
                rule: "Onbegeleid contact met de pleger",
                kind: "threshold",
                severity: "red",
                checkin: "C-3H8M2P9Q2K",
                municipality_code: "GM0363",
                municipality_name: "Amsterdam",
                raised_local: "dinsdag 15 december 2026, 09:00",
            };
            let (s, b) = alert(lang, &a);
            let ctx = format!("{s}\n{b}");
            crate::mail::templates::tests::check_mail(lang, &s, &b, &ctx);
            assert!(b.contains("#7 Onbegeleid contact met de pleger\n"), "{ctx}");
        }
    }
}
