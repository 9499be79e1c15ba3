//! Words the mail templates need in the reader's language: dates written out ("dinsdag
//! 15 december 2026, 09:00"), language names for ISO 639-1 codes ("Arabisch", not "ar"),
//! and the subject/body split of a rendered template file.

use chrono::{DateTime, Datelike, Timelike, Utc, Weekday};
use chrono_tz::Tz;

use super::Language;

const MONTHS_NL: [&str; 12] = [
    "januari",
    "februari",
    "maart",
    "april",
    "mei",
    "juni",
    "juli",
    "augustus",
    "september",
    "oktober",
    "november",
    "december",
];
const MONTHS_EN: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

fn weekday(w: Weekday, lang: Language) -> &'static str {
    match (lang, w) {
        (Language::Nl, Weekday::Mon) => "maandag",
        (Language::Nl, Weekday::Tue) => "dinsdag",
        (Language::Nl, Weekday::Wed) => "woensdag",
        (Language::Nl, Weekday::Thu) => "donderdag",
        (Language::Nl, Weekday::Fri) => "vrijdag",
        (Language::Nl, Weekday::Sat) => "zaterdag",
        (Language::Nl, Weekday::Sun) => "zondag",
        (Language::En, Weekday::Mon) => "Monday",
        (Language::En, Weekday::Tue) => "Tuesday",
        (Language::En, Weekday::Wed) => "Wednesday",
        (Language::En, Weekday::Thu) => "Thursday",
        (Language::En, Weekday::Fri) => "Friday",
        (Language::En, Weekday::Sat) => "Saturday",
        (Language::En, Weekday::Sun) => "Sunday",
    }
}

/// The calendar day in words, in the configured zone: "dinsdag 15 december 2026".
pub fn day(t: DateTime<Utc>, tz: Tz, lang: Language) -> String {
    let l = t.with_timezone(&tz);
    let months = match lang {
        Language::Nl => &MONTHS_NL,
        Language::En => &MONTHS_EN,
    };
    let month = months.get(l.month0() as usize).copied().unwrap_or("");
    format!(
        "{} {} {month} {}",
        weekday(l.weekday(), lang),
        l.day(),
        l.year()
    )
}

/// Day and local wall time: "dinsdag 15 december 2026, 09:00".
pub fn when(t: DateTime<Utc>, tz: Tz, lang: Language) -> String {
    let l = t.with_timezone(&tz);
    format!("{}, {:02}:{:02}", day(t, tz, lang), l.hour(), l.minute())
}

/// ISO 639-1 codes of languages families in aftercare speak, with their Dutch and English
/// names. A code not in the table is shown as it is.
const LANGUAGES: &[(&str, &str, &str)] = &[
    ("am", "Amhaars", "Amharic"),
    ("ar", "Arabisch", "Arabic"),
    ("bg", "Bulgaars", "Bulgarian"),
    ("bs", "Bosnisch", "Bosnian"),
    ("de", "Duits", "German"),
    ("en", "Engels", "English"),
    ("es", "Spaans", "Spanish"),
    ("fa", "Perzisch (Farsi)", "Persian (Farsi)"),
    ("fr", "Frans", "French"),
    ("fy", "Fries", "Frisian"),
    ("hi", "Hindi", "Hindi"),
    ("hr", "Kroatisch", "Croatian"),
    ("hu", "Hongaars", "Hungarian"),
    ("it", "Italiaans", "Italian"),
    ("ku", "Koerdisch", "Kurdish"),
    ("lt", "Litouws", "Lithuanian"),
    ("lv", "Lets", "Latvian"),
    ("nl", "Nederlands", "Dutch"),
    ("pl", "Pools", "Polish"),
    ("ps", "Pasjtoe", "Pashto"),
    ("pt", "Portugees", "Portuguese"),
    ("ro", "Roemeens", "Romanian"),
    ("ru", "Russisch", "Russian"),
    ("so", "Somalisch", "Somali"),
    ("sq", "Albanees", "Albanian"),
    ("sr", "Servisch", "Serbian"),
    ("ti", "Tigrinya", "Tigrinya"),
    ("tr", "Turks", "Turkish"),
    ("uk", "Oekraïens", "Ukrainian"),
    ("ur", "Urdu", "Urdu"),
    ("vi", "Vietnamees", "Vietnamese"),
    ("zh", "Chinees", "Chinese"),
];

/// The name of an ISO 639-1 language code in the reader's language ("ar" → "Arabisch").
pub fn language_name(code: &str, lang: Language) -> String {
    let code = code.trim().to_ascii_lowercase();
    LANGUAGES
        .iter()
        .find(|(c, _, _)| *c == code)
        .map(|(_, nl, en)| match lang {
            Language::Nl => (*nl).to_string(),
            Language::En => (*en).to_string(),
        })
        .unwrap_or(code)
}

/// Splits a rendered mail template: its first line is the subject, the text after the
/// blank line the body (always ending in a newline).
pub fn split(rendered: &str) -> (String, String) {
    let (subject, body) = rendered.split_once('\n').unwrap_or((rendered, ""));
    let body = body.strip_prefix('\n').unwrap_or(body);
    let mut body = body.to_string();
    if !body.ends_with('\n') {
        body.push('\n');
    }
    (subject.trim().to_string(), body)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_languages_in_words() {
        let t: DateTime<Utc> = "2026-12-15T08:00:00Z".parse().unwrap();
        let tz = chrono_tz::Europe::Amsterdam;
        assert_eq!(when(t, tz, Language::Nl), "dinsdag 15 december 2026, 09:00");
        assert_eq!(when(t, tz, Language::En), "Tuesday 15 December 2026, 09:00");
        assert_eq!(language_name("ar", Language::Nl), "Arabisch");
        assert_eq!(language_name("AR", Language::En), "Arabic");
        assert_eq!(language_name("xx", Language::Nl), "xx");
        assert_eq!(
            split("Onderwerp\n\nTekst"),
            ("Onderwerp".into(), "Tekst\n".into())
        );
    }
}
