//! The notice to the coordinator when a plan is closed before its term. Only the family
//! reference, the municipality, the date and the reason (code and words): never who
//! approved it, never anything personal.

use super::Language;

/// The outbox kind of the notice.
pub const KIND: &str = "closure_notice";

/// Everything the notice may mention.
#[derive(Clone, Copy, Debug)]
pub struct ClosureFacts<'a> {
    pub family: &'a str,
    pub municipality_code: &'a str,
    pub municipality_name: &'a str,
    /// One of `service::family::CLOSE_REASONS`.
    pub reason: &'a str,
    /// The local day in words ("dinsdag 15 december 2026").
    pub closed_on: &'a str,
    /// A red flag was still open, so a coordinator approved the closure.
    pub approved_over_red_flag: bool,
    pub checkins_cancelled: u64,
    /// The coordinator the notice goes to (`coordinator_name` is optional).
    pub coordinator_name: Option<&'a str>,
    pub coordinator_email: &'a str,
}

/// The reason code in words.
pub fn reason_words(lang: Language, code: &str) -> &'static str {
    match (lang, code) {
        (Language::Nl, "family_moved_abroad") => "het gezin is naar het buitenland verhuisd",
        (Language::Nl, "family_declined_aftercare") => "het gezin wil geen nazorg meer",
        (Language::Nl, "transferred_to_specialist_care") => "overgedragen aan specialistische zorg",
        (Language::Nl, "taken_over_by_safety_chain") => "overgenomen door de veiligheidsketen",
        (Language::Nl, "family_deceased") => "overlijden",
        (Language::Nl, "enrolled_in_error") => "ten onrechte aangemeld",
        (Language::En, "family_moved_abroad") => "the family moved abroad",
        (Language::En, "family_declined_aftercare") => "the family declined aftercare",
        (Language::En, "transferred_to_specialist_care") => "transferred to specialist care",
        (Language::En, "taken_over_by_safety_chain") => "taken over by the safety chain",
        (Language::En, "family_deceased") => "death",
        (Language::En, "enrolled_in_error") => "enrolled in error",
        (Language::Nl, _) => "andere reden",
        (Language::En, _) => "other reason",
    }
}

#[derive(askama::Template)]
#[template(path = "mail/closure_notice.nl.txt", escape = "none")]
struct ClosureNl<'a> {
    f: &'a ClosureFacts<'a>,
    reason: &'a str,
    coordinator: &'a str,
}

#[derive(askama::Template)]
#[template(path = "mail/closure_notice.en.txt", escape = "none")]
struct ClosureEn<'a> {
    f: &'a ClosureFacts<'a>,
    reason: &'a str,
    coordinator: &'a str,
}

/// `(subject, body)` of the notice, from `templates/mail/closure_notice.*.txt`.
pub fn closure_notice(lang: Language, f: &ClosureFacts) -> (String, String) {
    use askama::Template;
    let reason = reason_words(lang, f.reason);
    let coordinator = &super::templates::coordinator_line(
        lang,
        f.coordinator_name,
        f.coordinator_email,
        f.municipality_name,
    );
    super::templates::finish(match lang {
        Language::Nl => ClosureNl {
            f,
            reason,
            coordinator,
        }
        .render(),
        Language::En => ClosureEn {
            f,
            reason,
            coordinator,
        }
        .render(),
    })
}
