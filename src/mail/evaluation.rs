//! Asking for the evaluation of a plan that ended at its term: once when the sweep sees it
//! ended without one, and one reminder a few working days later. References, the plan's
//! label, dates in words and the workspace link only.

use super::Language;
use super::templates::finish;
use askama::Template;

/// The outbox kind of the first request.
pub const REQUEST_KIND: &str = "evaluation_request";
/// The outbox kind of the one reminder.
pub const REMINDER_KIND: &str = "evaluation_reminder";

/// What an evaluation request may say. No personal data.
#[derive(Clone, Copy, Debug)]
pub struct EvaluationFacts<'a> {
    pub family: &'a str,
    /// The plan's label in the mail's language.
    pub plan: &'a str,
    pub municipality_code: &'a str,
    pub municipality_name: &'a str,
    /// When the plan ended, in words.
    pub ended: &'a str,
    /// When the evaluation was first asked for, in words (used by the reminder).
    pub asked: &'a str,
    /// The workspace page that records the evaluation.
    pub link: &'a str,
}

#[derive(Template)]
#[template(path = "mail/evaluation_request.nl.txt", escape = "none")]
struct RequestNl<'a> {
    f: &'a EvaluationFacts<'a>,
}

#[derive(Template)]
#[template(path = "mail/evaluation_request.en.txt", escape = "none")]
struct RequestEn<'a> {
    f: &'a EvaluationFacts<'a>,
}

#[derive(Template)]
#[template(path = "mail/evaluation_reminder.nl.txt", escape = "none")]
struct ReminderNl<'a> {
    f: &'a EvaluationFacts<'a>,
}

#[derive(Template)]
#[template(path = "mail/evaluation_reminder.en.txt", escape = "none")]
struct ReminderEn<'a> {
    f: &'a EvaluationFacts<'a>,
}

/// Render the request (`reminder = false`) or the reminder: `(subject, body)`, from
/// `templates/mail/evaluation_{request,reminder}.*.txt`.
pub fn evaluation_request(lang: Language, f: &EvaluationFacts, reminder: bool) -> (String, String) {
    finish(match (lang, reminder) {
        (Language::Nl, false) => RequestNl { f }.render(),
        (Language::En, false) => RequestEn { f }.render(),
        (Language::Nl, true) => ReminderNl { f }.render(),
        (Language::En, true) => ReminderEn { f }.render(),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn request_and_reminder_read_in_words_with_the_link_and_the_routes() {
        let link = "https://nazorg.example.org/team/families/F-7Q2K9X/evaluation";
        let f = EvaluationFacts {
            family: "F-7Q2K9X",
            plan: "standaardplan (24 maanden)",
            municipality_code: "GM0363",
            municipality_name: "Amsterdam",
            ended: "woensdag 29 september 2027",
            asked: "donderdag 30 september 2027",
            link,
        };
        for lang in [Language::Nl, Language::En] {
            for reminder in [false, true] {
                let (s, b) = evaluation_request(lang, &f, reminder);
                let ctx = format!("{lang:?} reminder={reminder}\n{s}\n{b}");
                crate::mail::templates::tests::check_mail(lang, &s, &b, &ctx);
                assert!(b.contains(&format!("    {link}\n")), "{ctx}");
                assert!(
                    b.contains("nazorg family evaluate F-7Q2K9X --file"),
                    "{ctx}"
                );
                assert!(b.contains("POST /v1/families/F-7Q2K9X/evaluation"), "{ctx}");
                assert!(b.contains("woensdag 29 september 2027"), "{ctx}");
                assert_eq!(b.contains("donderdag 30 september 2027"), reminder, "{ctx}");
                for l in b.lines().filter(|l| !l.contains(link)) {
                    assert!(l.chars().count() <= 78, "{l:?} in {ctx}");
                }
            }
        }
    }
}
