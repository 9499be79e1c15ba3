//! The fallback for a safety notice that could not be delivered: a red alert or an
//! escalation that failed for good goes once more, to the municipality's coordinator, so it
//! is never silently lost. Like every template it sees only what the original carried
//! (references and codes), plus the delivery error.

use super::Language;

/// Outbox kinds that are safety notices: a permanent failure re-queues them to the
/// coordinator (see the dispatcher).
pub const SAFETY_KINDS: &[&str] = &[
    "alert",
    "escalation",
    "handover_escalation",
    // The contact loop and red signals followed through (issue 11).
    "alert_repeat",
    "alert_escalation",
    "missed",
];

/// The outbox kind of the fallback itself (never a safety kind, so it cannot cascade).
pub const SAFETY_FALLBACK_KIND: &str = "safety_fallback";

/// Whether an outbox kind is a safety notice.
pub fn is_safety_notice(kind: &str) -> bool {
    SAFETY_KINDS.contains(&kind)
}

/// What the fallback says about the failed original.
#[derive(Clone, Copy, Debug)]
pub struct FallbackFacts<'a> {
    pub original_subject: &'a str,
    pub original_recipients: &'a [String],
    pub error: &'a str,
    pub original_body: &'a str,
}

#[derive(askama::Template)]
#[template(path = "mail/safety_fallback.nl.txt", escape = "none")]
struct FallbackNl<'a> {
    f: &'a FallbackFacts<'a>,
}

#[derive(askama::Template)]
#[template(path = "mail/safety_fallback.en.txt", escape = "none")]
struct FallbackEn<'a> {
    f: &'a FallbackFacts<'a>,
}

/// Render the fallback: `(subject, body)`, from `templates/mail/safety_fallback.*.txt`.
pub fn safety_fallback(lang: Language, f: &FallbackFacts) -> (String, String) {
    use askama::Template;
    super::templates::finish(match lang {
        Language::Nl => FallbackNl { f }.render(),
        Language::En => FallbackEn { f }.render(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn red_alerts_and_escalations_are_safety_notices_and_the_fallback_is_not() {
        for k in ["alert", "escalation", "handover_escalation"] {
            assert!(is_safety_notice(k), "{k}");
        }
        for k in ["due", "overdue", "digest", "handover", SAFETY_FALLBACK_KIND] {
            assert!(!is_safety_notice(k), "{k}");
        }
        let to = vec!["wijkteam@example.org".to_string()];
        for lang in [Language::Nl, Language::En] {
            let (s, b) = safety_fallback(
                lang,
                &FallbackFacts {
                    original_subject: "[Nazorg] S",
                    original_recipients: &to,
                    error: "permanent failure: 550",
                    original_body: "BODY",
                },
            );
            assert!(
                s.starts_with("[Nazorg] ") && s.ends_with("[Nazorg] S"),
                "{s}"
            );
            assert!(
                b.contains("wijkteam@example.org") && b.contains("550") && b.ends_with("BODY\n"),
                "{b}"
            );
        }
    }
}
