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
    /// `YYYY-MM-DD`, local.
    pub review_on: &'a str,
}

/// `(subject, body)` of the reminder.
pub fn safety_plan_review(lang: Language, f: &SafetyReviewFacts) -> (String, String) {
    match lang {
        Language::Nl => (
            format!("[Nazorg] Veiligheidsplan gezin {} evalueren", f.family),
            format!(
                "Aan het team van {name} ({code}),\n\n\
                 Het veiligheidsplan van gezin {fam} is aan een evaluatie toe (gepland op {date}).\n\n\
                 Wat vragen wij van u?\n\
                 1. Bespreek het veiligheidsplan met het gezin: werkt het nog, klopt het nog?\n\
                 2. Leg het herziene plan en de volgende evaluatiedatum vast in Nazorg.\n\n\
                 Dit bericht bevat bewust geen persoonsgegevens; de gegevens staan in Nazorg.\n",
                name = f.municipality_name,
                code = f.municipality_code,
                fam = f.family,
                date = f.review_on,
            ),
        ),
        Language::En => (
            format!("[Nazorg] Review the safety plan of family {}", f.family),
            format!(
                "To the team of {name} ({code}),\n\n\
                 The safety plan of family {fam} is due for review (planned for {date}).\n\n\
                 What we ask of you:\n\
                 1. Go through the safety plan with the family: does it still work and fit?\n\
                 2. Record the revised plan and the next review date in Nazorg.\n\n\
                 This message deliberately holds no personal data; the details are in Nazorg.\n",
                name = f.municipality_name,
                code = f.municipality_code,
                fam = f.family,
                date = f.review_on,
            ),
        ),
    }
}
