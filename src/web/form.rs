//! The record form: generated from the configured indicators (per child, and for the
//! family), parsed back into the same [`CheckinRecord`] the CLI and API send, with an
//! error per field. Nothing is stored unless the service accepts the whole record.

use super::i18n::T;
use super::views::{ChildFormVm, FieldVm, FormError, OptionVm};
use crate::domain::enrolment::Observations;
use crate::domain::recording::{CheckinRecord, ChildObservations};
use crate::domain::signals::{Catalog, Indicator, IndicatorType, Scope};
use serde_json::Value;

/// The posted form as name/value pairs (a name repeats for checkboxes).
pub struct Posted(pub Vec<(String, String)>);

impl Posted {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

fn label(t: T, ind: &Indicator) -> String {
    super::labels::indicator(t, ind)
}

fn indicators(catalog: &Catalog, scope: Scope) -> impl Iterator<Item = &Indicator> {
    catalog
        .indicators
        .values()
        .filter(move |i| i.applies_to == scope)
}

/// The form field id of an indicator: `f-CODE` for the family, `cN-CODE` for child N.
pub fn field_id(child: Option<usize>, code: &str) -> String {
    match child {
        Some(i) => format!("c{i}-{code}"),
        None => format!("f-{code}"),
    }
}

/// Fields for one subject, filled from `posted` when re-showing a form with errors.
pub fn fields(
    t: T,
    catalog: &Catalog,
    scope: Scope,
    child: Option<usize>,
    posted: Option<&Posted>,
    errors: &[FormError],
) -> Vec<FieldVm> {
    indicators(catalog, scope)
        .map(|ind| {
            let id = field_id(child, &ind.code);
            let given = posted.map(|p| p.all(&id)).unwrap_or_default();
            let first = given.first().copied().unwrap_or("").to_string();
            let opt = |value: &str, label: String| OptionVm {
                selected: given.contains(&value),
                value: value.to_string(),
                label,
            };
            let (kind, options) = match &ind.kind {
                IndicatorType::Bool => (
                    "select",
                    vec![
                        opt("true", t.s("yes").into()),
                        opt("false", t.s("no").into()),
                    ],
                ),
                IndicatorType::Scale { .. } | IndicatorType::Count => ("number", vec![]),
                IndicatorType::Enum {
                    values, multiple, ..
                } => (
                    if *multiple { "multi" } else { "select" },
                    values
                        .iter()
                        .map(|v| opt(v, super::labels::value(t, ind, v)))
                        .collect(),
                ),
            };
            FieldVm {
                error: errors
                    .iter()
                    .find(|e| e.id == id)
                    .map(|e| e.message.clone()),
                id,
                name: field_id(child, &ind.code),
                label: label(t, ind),
                kind,
                value: first,
                options,
            }
        })
        .collect()
}

fn num(s: &str) -> Option<f64> {
    s.trim()
        .replace(',', ".")
        .parse::<f64>()
        .ok()
        .filter(|x| x.is_finite())
}

/// Reads one subject's observations; a wrong value becomes an error for its field.
fn observations(
    t: T,
    catalog: &Catalog,
    scope: Scope,
    child: Option<usize>,
    subject: &str,
    p: &Posted,
    errors: &mut Vec<FormError>,
) -> Observations {
    let mut out = Observations::new();
    for ind in indicators(catalog, scope) {
        let id = field_id(child, &ind.code);
        let mut fail = |message: String| {
            errors.push(FormError {
                id: id.clone(),
                label: format!("{subject} – {}", label(t, ind)),
                message,
            })
        };
        let given = p.all(&id);
        let one = given.first().map(|s| s.trim()).unwrap_or("");
        match &ind.kind {
            IndicatorType::Enum {
                values,
                multiple: true,
                ..
            } => {
                if given.is_empty() {
                    continue;
                }
                if given.iter().all(|g| values.iter().any(|v| v == g)) {
                    out.insert(
                        ind.code.clone(),
                        Value::Array(given.iter().map(|g| Value::String(g.to_string())).collect()),
                    );
                } else {
                    fail(t.s("field.invalid").into());
                }
            }
            _ if one.is_empty() => {}
            IndicatorType::Bool => match one {
                "true" => {
                    out.insert(ind.code.clone(), Value::Bool(true));
                }
                "false" => {
                    out.insert(ind.code.clone(), Value::Bool(false));
                }
                _ => fail(t.s("field.invalid").into()),
            },
            IndicatorType::Scale { min, max, .. } => match num(one) {
                Some(x) if x >= *min && x <= *max => {
                    let v = if x.fract() == 0.0 && x.abs() < 1e15 {
                        Value::from(x as i64)
                    } else {
                        serde_json::Number::from_f64(x)
                            .map(Value::Number)
                            .unwrap_or(Value::Null)
                    };
                    out.insert(ind.code.clone(), v);
                }
                _ => fail(format!(
                    "{} {min} {} {max}",
                    t.s("field.range"),
                    t.s("field.to")
                )),
            },
            IndicatorType::Count => match one.parse::<u64>() {
                Ok(n) => {
                    out.insert(ind.code.clone(), Value::from(n));
                }
                Err(_) => fail(t.s("field.whole").into()),
            },
            IndicatorType::Enum { values, .. } => {
                if values.iter().any(|v| v == one) {
                    out.insert(ind.code.clone(), Value::String(one.to_string()));
                } else {
                    fail(t.s("field.invalid").into());
                }
            }
        }
    }
    out
}

/// A child as the form shows it.
pub struct FormChild {
    pub reference: String,
    pub name: String,
}

/// The whole posted form as a record, or the errors per field.
pub fn parse(
    t: T,
    catalog: &Catalog,
    tz: chrono_tz::Tz,
    checkin: &str,
    children: &[FormChild],
    p: &Posted,
) -> Result<CheckinRecord, Vec<FormError>> {
    let mut errors = Vec::new();
    let at_raw = p.get("at").unwrap_or("").trim();
    let at = chrono::NaiveDateTime::parse_from_str(at_raw, "%Y-%m-%dT%H:%M")
        .or_else(|_| chrono::NaiveDateTime::parse_from_str(at_raw, "%Y-%m-%dT%H:%M:%S"))
        .ok()
        .and_then(|n| n.and_local_timezone(tz).earliest())
        .map(|d| d.fixed_offset());
    if at.is_none() {
        errors.push(FormError {
            id: "at".into(),
            label: t.s("record.at").into(),
            message: t.s("field.datetime").into(),
        });
    }
    let outcome = p
        .get("outcome")
        .and_then(|o| serde_json::from_value(Value::String(o.to_string())).ok());
    if outcome.is_none() {
        errors.push(FormError {
            id: "outcome".into(),
            label: t.s("record.outcome").into(),
            message: t.s("field.required").into(),
        });
    }
    let mode = p
        .get("mode")
        .and_then(|o| serde_json::from_value(Value::String(o.to_string())).ok());
    if mode.is_none() {
        errors.push(FormError {
            id: "mode".into(),
            label: t.s("record.mode").into(),
            message: t.s("field.required").into(),
        });
    }
    let family_observations = observations(
        t,
        catalog,
        Scope::Family,
        None,
        t.s("record.family"),
        p,
        &mut errors,
    );
    let mut kids = Vec::with_capacity(children.len());
    for (i, c) in children.iter().enumerate() {
        let obs = observations(t, catalog, Scope::Child, Some(i), &c.name, p, &mut errors);
        kids.push(ChildObservations {
            member: c.reference.clone(),
            observations: obs,
        });
    }
    let notes = p.get("notes").map(str::trim).filter(|n| !n.is_empty());
    match (at, outcome, mode) {
        (Some(at), Some(outcome), Some(mode)) if errors.is_empty() => Ok(CheckinRecord {
            checkin: checkin.to_string(),
            at,
            outcome,
            mode,
            family_observations,
            children: kids,
            // The web form records children and the family; adults go through the CLI/API.
            adults: Vec::new(),
            notes: notes.map(str::to_string),
            by: None,
            referrals: Vec::new(),
        }),
        _ => Err(errors),
    }
}

/// Where a service's field error belongs on the form (`children[1].observations.x` is
/// field `c1-x`).
pub fn service_field(field: &str) -> String {
    if let Some(rest) = field.strip_prefix("children[")
        && let Some((i, tail)) = rest.split_once(']')
    {
        let code = tail.rsplit('.').next().unwrap_or("");
        return match tail.strip_prefix(".observations.") {
            Some(_) => format!("c{i}-{code}"),
            None => "at".into(),
        };
    }
    if let Some(code) = field.strip_prefix("family_observations.") {
        return format!("f-{code}");
    }
    match field {
        "outcome" | "mode" | "notes" => field.to_string(),
        _ => "at".to_string(),
    }
}

/// The children's parts of the form.
pub fn child_forms(
    t: T,
    catalog: &Catalog,
    children: &[FormChild],
    posted: Option<&Posted>,
    errors: &[FormError],
) -> Vec<ChildFormVm> {
    children
        .iter()
        .enumerate()
        .map(|(i, c)| ChildFormVm {
            reference: c.reference.clone(),
            name: c.name.clone(),
            fields: fields(t, catalog, Scope::Child, Some(i), posted, errors),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_fields_map_to_form_fields() {
        assert_eq!(
            service_field("children[1].observations.wellbeing"),
            "c1-wellbeing"
        );
        assert_eq!(
            service_field("family_observations.stressors"),
            "f-stressors"
        );
        assert_eq!(service_field("outcome"), "outcome");
        assert_eq!(service_field("at"), "at");
    }
}
