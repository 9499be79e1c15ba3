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
    /// `YYYY-MM-DD`, local.
    pub closed_on: &'a str,
    /// A red flag was still open, so a coordinator approved the closure.
    pub approved_over_red_flag: bool,
    pub checkins_cancelled: u64,
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

/// `(subject, body)` of the notice.
pub fn closure_notice(lang: Language, f: &ClosureFacts) -> (String, String) {
    let words = reason_words(lang, f.reason);
    match lang {
        Language::Nl => {
            let subject = format!("[Nazorg] Nazorg {} voortijdig beëindigd", f.family);
            let approval = if f.approved_over_red_flag {
                "Er stond nog een rood signaal open; een coördinator heeft de beëindiging goedgekeurd.\n"
            } else {
                ""
            };
            let body = format!(
                "Aan de coördinator nazorg van {name} ({code}),\n\n\
                 Het nazorgplan van gezin {fam} is op {date} voortijdig beëindigd.\n\
                 Reden: {words} ({reason}).\n{approval}\
                 Geannuleerde contactmomenten: {n}.\n\n\
                 Nazorg loopt normaal de volle termijn: geweld keert vaak terug. Controleer of \
                 de beëindiging terecht is en of het gezin elders in beeld blijft.\n\n\
                 Dit bericht bevat bewust geen persoonsgegevens; de gegevens staan in Nazorg.\n",
                name = f.municipality_name,
                code = f.municipality_code,
                fam = f.family,
                date = f.closed_on,
                reason = f.reason,
                n = f.checkins_cancelled,
            );
            (subject, body)
        }
        Language::En => {
            let subject = format!("[Nazorg] Aftercare of {} closed early", f.family);
            let approval = if f.approved_over_red_flag {
                "A red flag was still open; a coordinator approved the closure.\n"
            } else {
                ""
            };
            let body = format!(
                "To the aftercare coordinator of {name} ({code}),\n\n\
                 The aftercare plan of family {fam} was closed before its term on {date}.\n\
                 Reason: {words} ({reason}).\n{approval}\
                 Check-ins cancelled: {n}.\n\n\
                 Aftercare normally runs its full term: violence often recurs. Please check \
                 that the closure is right and that the family stays in sight elsewhere.\n\n\
                 This message deliberately holds no personal data; the details are in Nazorg.\n",
                name = f.municipality_name,
                code = f.municipality_code,
                fam = f.family,
                date = f.closed_on,
                reason = f.reason,
                n = f.checkins_cancelled,
            );
            (subject, body)
        }
    }
}
