//! The reminder that a family's safety plan (veiligheidsplan) is due for review. Only the
//! family reference, the municipality and the date: never the plan, never anyone's name.

use super::Language;

/// The outbox kind of the reminder.
pub const SAFETY_REVIEW_KIND: &str = "safety_plan_review";

#[derive(Clone, Copy, Debug)]
pub struct SafetyReviewFacts<'a> {
    pub family: &'a str,
    pub municipality_code: &'a str,
    pub municipality_name: &'a str,
    /// The local day in words ("dinsdag 15 december 2026").
    pub review_on: &'a str,
    /// The family's page in the workspace (`/team/families/F-…`).
    pub link: Option<&'a str>,
}

#[derive(askama::Template)]
#[template(path = "mail/safety_plan_review.nl.txt", escape = "none")]
struct ReviewNl<'a> {
    f: &'a SafetyReviewFacts<'a>,
}

#[derive(askama::Template)]
#[template(path = "mail/safety_plan_review.en.txt", escape = "none")]
struct ReviewEn<'a> {
    f: &'a SafetyReviewFacts<'a>,
}

/// `(subject, body)` of the reminder, from `templates/mail/safety_plan_review.*.txt`.
pub fn safety_plan_review(lang: Language, f: &SafetyReviewFacts) -> (String, String) {
    use askama::Template;
    super::templates::finish(match lang {
        Language::Nl => ReviewNl { f }.render(),
        Language::En => ReviewEn { f }.render(),
    })
}
