//! Pure types and rules, no I/O: durations, plan schedules, the reminder sequence and the
//! validation of what teams send in.

pub mod anonymise;
pub use crate::types::duration;
pub mod enrolment;
pub mod evaluation;
pub mod handover;
pub mod holidays;
pub mod household;
pub mod plan;
pub mod recording;
pub mod reference;
pub mod reminder;
pub mod signals;

/// One validation problem, naming the field (JSON path) and never echoing personal values.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Parses JSON into `T`, turning serde's message into one that names the field but never
/// the offending value (which may be a name or a birth date).
pub fn parse_json<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, FieldError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." {
            "(body)".to_string()
        } else {
            path
        };
        json_error(field, &e.into_inner())
    })?;
    de.end().map_err(|e| json_error("(body)".to_string(), &e))?;
    Ok(value)
}

fn json_error(field: String, inner: &serde_json::Error) -> FieldError {
    let message = match inner.classify() {
        serde_json::error::Category::Syntax | serde_json::error::Category::Eof => format!(
            "malformed JSON at line {} column {}",
            inner.line(),
            inner.column()
        ),
        serde_json::error::Category::Io => "could not read the input".to_string(),
        serde_json::error::Category::Data => safe_data_message(&inner.to_string()),
    };
    FieldError { field, message }
}

/// Keeps serde's wording about *what was expected* and drops any quoted value it contains.
fn safe_data_message(message: &str) -> String {
    let message = message.split(" at line ").next().unwrap_or(message);
    if message.starts_with("unknown field") || message.starts_with("missing field") {
        // Field names are ours, not personal data; cut the list of expected fields.
        return message
            .split(", expected")
            .next()
            .unwrap_or(message)
            .to_string();
    }
    if message.starts_with("unknown variant") {
        return match message.split_once(", expected") {
            Some((_, expected)) => format!("not an allowed value; expected{expected}"),
            None => "not an allowed value".to_string(),
        };
    }
    if let Some((_, expected)) = message.split_once(", expected") {
        return format!("wrong type or value; expected{expected}");
    }
    "invalid value".to_string()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct T {
        name: String,
        n: u32,
    }

    #[test]
    fn errors_name_the_field_not_the_value() {
        let e = parse_json::<T>(br#"{"name": 12, "n": 1}"#).unwrap_err();
        assert_eq!(e.field, "name");
        let e = parse_json::<T>(br#"{"name": "Fatima Secret", "n": "Fatima Secret"}"#).unwrap_err();
        assert_eq!(e.field, "n");
        assert!(!e.message.contains("Fatima"), "{e}");
        let e = parse_json::<T>(br#"{"name": "x", "n": 1, "nam": 2}"#).unwrap_err();
        assert!(e.message.contains("unknown field"), "{e}");
        let e = parse_json::<T>(br#"{"name": "x", "#).unwrap_err();
        assert!(e.message.contains("malformed JSON"), "{e}");
        let e = parse_json::<T>(br#"{"name": "x", "n": 1} trailing"#).unwrap_err();
        assert!(e.message.contains("malformed JSON"), "{e}");
    }
}
