//! The short evaluation recorded when a plan ends (early, or at its term): did safety
//! improve, how many professionals are involved now, and the family's own view. The codes
//! go into research exports; the view is free text and stays sealed.

use super::FieldError;
use serde::{Deserialize, Serialize};

/// `safety_improved` codes.
pub const SAFETY_CODES: &[&str] = &["yes", "partly", "no"];
/// The most professionals an evaluation may count.
pub const MAX_PROFESSIONALS: u32 = 50;
/// Longest family view, in characters.
pub const MAX_VIEW: usize = 4000;
/// `professionals` as exported: buckets, never the exact number.
pub const PROFESSIONAL_BUCKETS: &[&str] = &["0", "1-2", "3-5", "6+"];

/// An evaluation as given (CLI file, API body, close flags); checked by [`validate`].
#[derive(Clone, Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EvaluationInput {
    pub safety_improved: Option<String>,
    pub professionals: Option<serde_json::Value>,
    pub family_view: Option<String>,
}

/// A checked evaluation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Evaluation {
    pub safety_improved: String,
    pub professionals: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub family_view: Option<String>,
}

/// Checks every field at once; each error names its field.
pub fn validate(input: &EvaluationInput) -> Result<Evaluation, Vec<FieldError>> {
    let mut e = Vec::new();
    let safety = match input.safety_improved.as_deref() {
        None => {
            e.push(FieldError::new(
                "safety_improved",
                "required: yes, partly or no",
            ));
            String::new()
        }
        Some(s) if SAFETY_CODES.contains(&s) => s.to_string(),
        Some(_) => {
            e.push(FieldError::new(
                "safety_improved",
                "expected one of: yes, partly, no",
            ));
            String::new()
        }
    };
    let range = format!("a whole number from 0 to {MAX_PROFESSIONALS}");
    let professionals = match &input.professionals {
        None => {
            e.push(FieldError::new(
                "professionals",
                format!("required: {range} (professionals involved now)"),
            ));
            0
        }
        Some(v) => match v.as_u64() {
            Some(n) if n <= u64::from(MAX_PROFESSIONALS) => n as u32,
            _ => {
                e.push(FieldError::new(
                    "professionals",
                    format!("expected {range}"),
                ));
                0
            }
        },
    };
    let view = input
        .family_view
        .as_ref()
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty());
    if view.as_ref().is_some_and(|v| v.chars().count() > MAX_VIEW) {
        e.push(FieldError::new(
            "family_view",
            format!("at most {MAX_VIEW} characters"),
        ));
    }
    if !e.is_empty() {
        return Err(e);
    }
    Ok(Evaluation {
        safety_improved: safety,
        professionals,
        family_view: view,
    })
}

/// The export bucket of a number of professionals.
pub fn professionals_bucket(n: u32) -> &'static str {
    match n {
        0 => PROFESSIONAL_BUCKETS[0],
        1..=2 => PROFESSIONAL_BUCKETS[1],
        3..=5 => PROFESSIONAL_BUCKETS[2],
        _ => PROFESSIONAL_BUCKETS[3],
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn evaluation_names_each_bad_field() {
        let e = validate(&EvaluationInput::default()).unwrap_err();
        let fields: Vec<&str> = e.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(fields, ["safety_improved", "professionals"]);
        let e = validate(&EvaluationInput {
            safety_improved: Some("maybe".into()),
            professionals: Some(serde_json::json!(51)),
            family_view: None,
        })
        .unwrap_err();
        assert_eq!(e.len(), 2);
        let ok = validate(&EvaluationInput {
            safety_improved: Some("partly".into()),
            professionals: Some(serde_json::json!(3)),
            family_view: Some("  ".into()),
        })
        .unwrap();
        assert_eq!(ok.family_view, None);
        assert_eq!(professionals_bucket(ok.professionals), "3-5");
        assert_eq!(professionals_bucket(0), "0");
        assert_eq!(professionals_bucket(50), "6+");
    }
}
