//! The configured indicators' values picked out of an opened observation, borrowed from its
//! plaintext. Pass 2 opens one observation per exported row; decoding each into a map of
//! owned keys and values (`Observations`) was an allocation per key and value of every
//! row, for the two or three values a row exports.
//!
//! The result is what `serde_json::from_slice::<Observations>` followed by a lookup per
//! indicator gives: the same JSON is accepted and refused (a JSON object, nothing after
//! it), keys are compared unescaped, and a key given twice counts with its last value.

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, Visitor};
use std::borrow::Cow;
use std::fmt;

/// One indicator's value in an observation. Strings are borrowed unless JSON escapes
/// them; numbers are kept as `serde_json::Number`, so they print as they did from a
/// `serde_json::Value`.
#[derive(Debug, PartialEq)]
pub(super) enum Observed<'a> {
    Text(Cow<'a, str>),
    Bool(bool),
    Number(serde_json::Number),
    /// Null, an array or an object: not a single coded value.
    Other,
}

/// Fills `out` (one entry per indicator, `None` if absent) from the JSON object `json`.
pub(super) fn pick<'a>(
    json: &'a [u8],
    indicators: &[String],
    out: &mut Vec<Option<Observed<'a>>>,
) -> Result<(), serde_json::Error> {
    out.clear();
    out.resize_with(indicators.len(), || None);
    let mut de = serde_json::Deserializer::from_slice(json);
    Picker { indicators, out }.deserialize(&mut de)?;
    de.end()
}

/// Walks the object once: an indicator's value is decoded, every other value skipped.
struct Picker<'o, 'a> {
    indicators: &'o [String],
    out: &'o mut Vec<Option<Observed<'a>>>,
}

impl<'de> DeserializeSeed<'de> for Picker<'_, 'de> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Picker<'_, 'de> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object of observed values")
    }
    fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<(), M::Error> {
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            match self.indicators.iter().position(|i| *i == *key) {
                Some(i) => {
                    let v = map.next_value_seed(ValueSeed)?;
                    if let Some(slot) = self.out.get_mut(i) {
                        *slot = Some(v);
                    }
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

/// Decodes one value as `serde_json::Value`'s visitor does, without owning strings.
struct ValueSeed;

impl<'de> DeserializeSeed<'de> for ValueSeed {
    type Value = Observed<'de>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Observed<'de>, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ValueSeed {
    type Value = Observed<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Observed<'de>, E> {
        Ok(Observed::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Observed<'de>, E> {
        Ok(Observed::Number(v.into()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Observed<'de>, E> {
        Ok(Observed::Number(v.into()))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Observed<'de>, E> {
        // As `serde_json::Value`: a number that is not finite becomes null.
        Ok(serde_json::Number::from_f64(v).map_or(Observed::Other, Observed::Number))
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Observed<'de>, E> {
        Ok(Observed::Text(Cow::Borrowed(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<Observed<'de>, E> {
        Ok(Observed::Text(Cow::Owned(v.to_owned())))
    }
    fn visit_string<E>(self, v: String) -> Result<Observed<'de>, E> {
        Ok(Observed::Text(Cow::Owned(v)))
    }
    fn visit_unit<E>(self) -> Result<Observed<'de>, E> {
        Ok(Observed::Other)
    }
    fn visit_none<E>(self) -> Result<Observed<'de>, E> {
        Ok(Observed::Other)
    }
    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Observed<'de>, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Observed::Other)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Observed<'de>, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Observed::Other)
    }
}

/// Appends an indicator's value as its export code to `cell`: text as is, true/false,
/// numbers in their shortest form, a scale's value rounded to the whole number (as
/// `indicator_code` did from a `serde_json::Value`). `false` if it is not a single coded
/// value.
pub(super) fn push_code(cell: &mut String, scale: bool, v: &Observed) -> bool {
    use std::fmt::Write as _;
    match v {
        Observed::Number(n) if scale => match n.as_f64() {
            Some(x) => write!(cell, "{}", x.round() as i64).is_ok(),
            None => false,
        },
        Observed::Text(s) => {
            cell.push_str(s);
            true
        }
        Observed::Bool(b) => {
            cell.push_str(if *b { "true" } else { "false" });
            true
        }
        Observed::Number(n) => write!(cell, "{n}").is_ok(),
        Observed::Other => false,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::domain::enrolment::Observations;

    /// What the export wrote before: the map, a lookup, `indicator_code`.
    fn by_map(
        json: &[u8],
        indicators: &[String],
        scale: bool,
    ) -> Result<Vec<Option<Option<String>>>, ()> {
        let m: Observations = serde_json::from_slice(json).map_err(|_| ())?;
        Ok(indicators
            .iter()
            .map(|i| {
                m.get(i).map(|v| match v {
                    serde_json::Value::Number(n) if scale => {
                        n.as_f64().map(|x| format!("{}", x.round() as i64))
                    }
                    serde_json::Value::String(s) => Some(s.clone()),
                    serde_json::Value::Bool(b) => Some(b.to_string()),
                    serde_json::Value::Number(n) => Some(n.to_string()),
                    _ => None,
                })
            })
            .collect())
    }

    fn by_pick(
        json: &[u8],
        indicators: &[String],
        scale: bool,
    ) -> Result<Vec<Option<Option<String>>>, ()> {
        let mut out = Vec::new();
        pick(json, indicators, &mut out).map_err(|_| ())?;
        Ok(out
            .iter()
            .map(|v| {
                v.as_ref().map(|v| {
                    let mut cell = String::new();
                    push_code(&mut cell, scale, v).then_some(cell)
                })
            })
            .collect())
    }

    #[test]
    fn picks_what_the_map_gave() {
        let ind = vec!["wellbeing".to_string(), "school_attendance".to_string()];
        let cases: &[&str] = &[
            r#"{"wellbeing": "good", "school_attendance": "regular"}"#,
            r#"{"wellbeing": "fair"}"#,
            r#"{}"#,
            r#"{"other": [1, {"a": null}], "wellbeing": "poor"}"#,
            r#"{"wellbeing": "good", "wellbeing": "poor"}"#,
            r#"{"well\u0062eing": "p\u006for", "school_attendance": "a\"b"}"#,
            r#"{"wellbeing": 2.5, "school_attendance": -3}"#,
            r#"{"wellbeing": 18446744073709551615, "school_attendance": 1e3}"#,
            r#"{"wellbeing": true, "school_attendance": false}"#,
            r#"{"wellbeing": null, "school_attendance": ["good"]}"#,
            r#"{"wellbeing": {"x": 1}}"#,
            r#"{"wellbeing": "good"} trailing"#,
            r#"["wellbeing", "good"]"#,
            r#""good""#,
            r#"{"wellbeing": "good""#,
            r#"{"wellbeing": "good",}"#,
            "",
        ];
        for json in cases {
            for scale in [false, true] {
                assert_eq!(
                    by_pick(json.as_bytes(), &ind, scale),
                    by_map(json.as_bytes(), &ind, scale),
                    "{json} (scale {scale})"
                );
            }
        }
    }

    #[test]
    fn unescaped_text_is_borrowed() {
        let ind = vec!["wellbeing".to_string()];
        let mut out = Vec::new();
        pick(br#"{"wellbeing": "good"}"#, &ind, &mut out).unwrap();
        assert!(matches!(
            &out[0],
            Some(Observed::Text(Cow::Borrowed("good")))
        ));
    }
}
