//! Relapse signals: indicator definitions, observation checks against them, and the rules
//! that turn a child's (or family's) course over the check-ins into flags. Pure: the
//! service hands in a subject's history, this module says whether a rule fires and why.
//!
//! A rule is evaluated *at* one check-in (the trigger) over the history up to and including
//! it. Whether a firing rule raises a new flag (nothing open for the same rule and subject,
//! never raised for this trigger before) is decided by the service with the store.

use super::FieldError;
use super::enrolment::Observations;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::types::signals::check_value;
pub use crate::types::signals::{
    Baseline, Better, Catalog, Condition, Indicator, IndicatorType, Op, Rule, RuleKind, Scope,
    Severity, check_condition,
};

// ---- checking recorded observations ----------------------------------------------------------

/// Checks observations against the definitions; `field` is the JSON path of the map (e.g.
/// `children[0].observations`). Messages name the indicator, never the value.
pub fn check_observations(
    catalog: &Catalog,
    scope: Scope,
    field: &str,
    obs: &Observations,
    errors: &mut Vec<FieldError>,
) {
    for (code, v) in obs {
        let f = format!("{field}.{}", code.chars().take(40).collect::<String>());
        let Some(ind) = catalog.indicators.get(code) else {
            errors.push(FieldError::new(f, "unknown indicator"));
            continue;
        };
        if ind.applies_to != scope {
            errors.push(FieldError::new(
                f,
                format!(
                    "indicator applies to {}, not to {}",
                    ind.applies_to.code(),
                    scope.code()
                ),
            ));
            continue;
        }
        if let IndicatorType::Enum {
            values,
            multiple: true,
            ..
        } = &ind.kind
        {
            if let Err((at, m)) = check_entries(values, v) {
                errors.push(FieldError::new(format!("{f}{at}"), m));
            }
        } else if let Err(m) = check_value(&ind.kind, v) {
            errors.push(FieldError::new(f, m));
        }
    }
}

/// The levels a listed value (a stressor) may carry, lightest first; `1`–`3` mean the same.
pub const LEVELS: [&str; 3] = ["mild", "serious", "severe"];

/// A level given as `mild|serious|severe` or `1..3`, as a number 1–3.
fn level_of(v: &Value) -> Option<u8> {
    if let Some(s) = v.as_str() {
        return LEVELS
            .iter()
            .position(|l| *l == s)
            .and_then(|p| u8::try_from(p + 1).ok());
    }
    v.as_u64()
        .filter(|n| (1..=3).contains(n))
        .and_then(|n| u8::try_from(n).ok())
}

/// The entries of a multi-valued observation: each a code (present, no level) or an
/// object `{code, level}`. `None` when the value is not such a list.
pub fn entries(v: &Value) -> Option<Vec<(&str, Option<u8>)>> {
    v.as_array()?
        .iter()
        .map(|i| match i {
            Value::String(s) => Some((s.as_str(), None)),
            Value::Object(o) => {
                let code = o.get("code")?.as_str()?;
                match o.get("level") {
                    None => Some((code, None)),
                    Some(l) => level_of(l).map(|n| (code, Some(n))),
                }
            }
            _ => None,
        })
        .collect()
}

/// Checks a multi-valued observation: a list of distinct allowed codes, each given as the
/// code or as `{code, level}`. The error carries the path inside the value (`[1].level`).
fn check_entries(values: &[String], v: &Value) -> Result<(), (String, String)> {
    let allowed = || format!("expected one of: {}", values.join(", "));
    let Some(items) = v.as_array() else {
        return Err((String::new(), format!("expected a list; {}", allowed())));
    };
    let mut seen = std::collections::BTreeSet::new();
    for (n, i) in items.iter().enumerate() {
        let code = match i {
            Value::String(s) => s.as_str(),
            Value::Object(o) => {
                if let Some(k) = o.keys().find(|k| *k != "code" && *k != "level") {
                    let k: String = k.chars().take(40).collect();
                    return Err((
                        format!("[{n}].{k}"),
                        "unknown field; expected code and level".into(),
                    ));
                }
                if let Some(l) = o.get("level")
                    && level_of(l).is_none()
                {
                    return Err((
                        format!("[{n}].level"),
                        format!("expected one of: {}, or 1 to 3", LEVELS.join(", ")),
                    ));
                }
                match o.get("code").and_then(Value::as_str) {
                    Some(c) => c,
                    None => return Err((format!("[{n}].code"), allowed())),
                }
            }
            _ => {
                return Err((
                    format!("[{n}]"),
                    format!("a value is not allowed; {}", allowed()),
                ));
            }
        };
        if !values.iter().any(|x| x == code) {
            return Err((
                format!("[{n}]"),
                format!("a value is not allowed; {}", allowed()),
            ));
        }
        if !seen.insert(code) {
            return Err((format!("[{n}]"), "a value is listed twice".into()));
        }
    }
    Ok(())
}

/// Whether the condition holds for these observations (a missing value never holds).
pub fn holds(catalog: &Catalog, c: &Condition, obs: &Observations) -> bool {
    let (Some(ind), Some(v)) = (catalog.indicators.get(&c.indicator), obs.get(&c.indicator)) else {
        return false;
    };
    let cmp = |a: f64, b: f64| match c.op {
        Op::Lt => a < b,
        Op::Le => a <= b,
        Op::Gt => a > b,
        Op::Ge => a >= b,
        _ => false,
    };
    match c.op {
        Op::Eq => v == &c.value || (v.as_f64().is_some() && v.as_f64() == c.value.as_f64()),
        Op::Ne => !(v == &c.value || (v.as_f64().is_some() && v.as_f64() == c.value.as_f64())),
        Op::In => c.value.as_array().is_some_and(|a| a.contains(v)),
        Op::Contains => c.value.as_str().is_some_and(|want| {
            entries(v).is_some_and(|e| e.iter().any(|(code, _)| *code == want))
        }),
        Op::Lt | Op::Le | Op::Gt | Op::Ge => match &ind.kind {
            // Ordered enums compare by rank: `ge "reduced"` = reduced or worse.
            IndicatorType::Enum { .. } => match (ind.kind.badness(v), ind.kind.badness(&c.value)) {
                (Some(a), Some(b)) => cmp(a, b),
                _ => false,
            },
            _ => match (v.as_f64(), c.value.as_f64()) {
                (Some(a), Some(b)) => cmp(a, b),
                _ => false,
            },
        },
    }
}

// ---- histories and evaluation ----------------------------------------------------------------

/// What became of one check-in, as far as reaching the family goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Contact {
    Reached,
    NotReached,
    Declined,
    /// Open and past its overdue moment without a record.
    Overdue,
    /// Open and not overdue yet, or lapsed/cancelled: says nothing.
    Pending,
}

impl Contact {
    pub fn code(&self) -> &'static str {
        match self {
            Contact::Reached => "reached",
            Contact::NotReached => "not_reached",
            Contact::Declined => "declined",
            Contact::Overdue => "overdue",
            Contact::Pending => "pending",
        }
    }
}

/// One check-in of a subject's history, in wave order.
#[derive(Clone, Debug)]
pub struct Visit<'a> {
    pub checkin: &'a str,
    pub contact: Contact,
    /// The subject's observations at this check-in, if any were recorded.
    pub observations: Option<&'a Observations>,
}

/// Why a flag was raised: the check-ins and values that made the rule fire. Contains
/// observation values, so it is sealed in the store.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Evidence {
    pub items: Vec<EvidenceItem>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<f64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EvidenceItem {
    pub checkin: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub indicator: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact: Option<Contact>,
}

fn item(v: &Visit, indicator: &str) -> EvidenceItem {
    EvidenceItem {
        checkin: v.checkin.to_string(),
        indicator: Some(indicator.to_string()),
        value: v.observations.and_then(|o| o.get(indicator)).cloned(),
        contact: None,
    }
}

/// The entries a visit lists for a multi-valued indicator, if it observed it.
fn listed<'o>(v: &Visit<'o>, indicator: &str) -> Option<Vec<(&'o str, Option<u8>)>> {
    v.observations?.get(indicator).and_then(entries)
}

/// The check-in an `out_of_sight` rule is evaluated at: the latest one that says
/// something about contact (recorded, or overdue without a record).
pub fn last_contact_point(history: &[Visit]) -> Option<usize> {
    history.iter().rposition(|v| v.contact != Contact::Pending)
}

/// Whether `rule` fires at `history[at]`, with the evidence. Observation rules need
/// observations at `at`; `out_of_sight` looks at contact only.
pub fn evaluate(catalog: &Catalog, rule: &Rule, history: &[Visit], at: usize) -> Option<Evidence> {
    let upto = history.get(..=at)?;
    let current = upto.last()?;
    match &rule.kind {
        // A time rule, evaluated by the service with `out_of_sight` (not per check-in).
        RuleKind::OutOfSight { .. } => None,
        RuleKind::Threshold(c) => {
            let obs = current.observations?;
            holds(catalog, c, obs).then(|| Evidence {
                items: vec![item(current, &c.indicator)],
                baseline: None,
            })
        }
        RuleKind::AllOf(cs) => {
            let obs = current.observations?;
            (!cs.is_empty() && cs.iter().all(|c| holds(catalog, c, obs))).then(|| Evidence {
                items: cs.iter().map(|c| item(current, &c.indicator)).collect(),
                baseline: None,
            })
        }
        RuleKind::NewValue { indicator } => {
            let now = listed(current, indicator)?;
            let previous = upto[..upto.len() - 1]
                .iter()
                .rev()
                .find_map(|v| listed(v, indicator).map(|vals| (v, vals)))?;
            // New, or at a higher level than before (levels compare only when both given).
            let worse = |(code, level): &(&str, Option<u8>)| match previous
                .1
                .iter()
                .find(|(c, _)| c == code)
            {
                None => true,
                Some((_, before)) => matches!((before, level), (Some(b), Some(l)) if l > b),
            };
            now.iter().any(worse).then(|| Evidence {
                items: vec![item(previous.0, indicator), item(current, indicator)],
                baseline: None,
            })
        }
        RuleKind::Streak { condition, count } => {
            current.observations?;
            let observed: Vec<&Visit> = upto.iter().filter(|v| v.observations.is_some()).collect();
            if *count == 0 || observed.len() < *count {
                return None;
            }
            let window = &observed[observed.len() - count..];
            window
                .iter()
                .all(|v| v.observations.is_some_and(|o| holds(catalog, condition, o)))
                .then(|| Evidence {
                    items: window
                        .iter()
                        .map(|v| item(v, &condition.indicator))
                        .collect(),
                    baseline: None,
                })
        }
        RuleKind::Worsening {
            indicator,
            baseline,
            n,
            delta,
        } => {
            let ind = catalog.indicators.get(indicator)?;
            let value_at = |v: &Visit| {
                v.observations
                    .and_then(|o| o.get(indicator))
                    .and_then(|x| ind.kind.badness(x))
            };
            let now = value_at(current)?;
            let series: Vec<(&Visit, f64)> = upto[..upto.len() - 1]
                .iter()
                .filter_map(|v| value_at(v).map(|b| (v, b)))
                .collect();
            if *n == 0 || series.len() < *n {
                return None;
            }
            let base = match baseline {
                Baseline::First => &series[..*n],
                Baseline::Previous => &series[series.len() - n..],
            };
            let mean = base.iter().map(|(_, b)| b).sum::<f64>() / base.len() as f64;
            (now - mean >= *delta).then(|| {
                // Report the baseline in the indicator's own terms (a scale mean, not badness).
                let shown = match ind.kind {
                    IndicatorType::Scale {
                        better: Better::High,
                        ..
                    } => -mean,
                    _ => mean,
                };
                let mut items: Vec<EvidenceItem> =
                    base.iter().map(|(v, _)| item(v, indicator)).collect();
                items.push(item(current, indicator));
                Evidence {
                    items,
                    baseline: Some((shown * 100.0).round() / 100.0),
                }
            })
        }
    }
}

/// How severe `out_of_sight` is at `now` for a subject last reached (or enrolled) at
/// `since`: amber from `amber_after`, red from `red_after`, never above `ceiling` (the
/// rule's configured severity). `None` while the family is in sight.
pub fn out_of_sight(
    amber_after: super::duration::IsoDuration,
    red_after: super::duration::IsoDuration,
    ceiling: Severity,
    since: chrono::DateTime<chrono::Utc>,
    now: chrono::DateTime<chrono::Utc>,
) -> Option<Severity> {
    let passed = |d: super::duration::IsoDuration| d.add_to(since).is_some_and(|t| t <= now);
    let severity = if passed(red_after) {
        Severity::Red
    } else if passed(amber_after) {
        Severity::Amber
    } else {
        return None;
    };
    Some(severity.min(ceiling))
}

/// Walks a whole history check-in by check-in the way the service does, with flags that
/// stay open: returns `(rule, check-in)` for every flag raised. Used by tests and benches.
pub fn replay(catalog: &Catalog, scope: Scope, history: &[Visit]) -> Vec<(String, String)> {
    let mut open: std::collections::BTreeSet<&str> = std::collections::BTreeSet::new();
    let mut raised = Vec::new();
    for at in 0..history.len() {
        for rule in catalog.rules.iter().filter(|r| r.applies_to == scope) {
            if open.contains(rule.code.as_str()) {
                continue;
            }
            // Time, not check-ins, decides `out_of_sight` (see `out_of_sight`).
            if let RuleKind::OutOfSight { .. } = rule.kind {
                continue;
            }
            if evaluate(catalog, rule, history, at).is_some() {
                open.insert(rule.code.as_str());
                raised.push((rule.code.clone(), history[at].checkin.to_string()));
            }
        }
    }
    raised
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ind(code: &str, scope: Scope, kind: IndicatorType) -> (String, Indicator) {
        (
            code.to_string(),
            Indicator {
                code: code.into(),
                label_nl: code.into(),
                label_en: code.into(),
                value_labels: std::collections::BTreeMap::new(),
                applies_to: scope,
                kind,
            },
        )
    }

    fn cond(i: &str, op: Op, v: Value) -> Condition {
        Condition {
            indicator: i.into(),
            op,
            value: v,
        }
    }

    fn catalog(rules: Vec<(&str, RuleKind)>) -> Catalog {
        let order = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        Catalog {
            indicators: [
                ind("new_incident", Scope::Child, IndicatorType::Bool),
                ind(
                    "wellbeing",
                    Scope::Child,
                    IndicatorType::Scale {
                        min: 0.0,
                        max: 10.0,
                        better: Better::High,
                    },
                ),
                ind(
                    "school_attendance",
                    Scope::Child,
                    IndicatorType::Enum {
                        values: order(&["normal", "reduced", "absent", "n/a"]),
                        order: order(&["normal", "reduced", "absent"]),
                        multiple: false,
                    },
                ),
                ind(
                    "perpetrator_contact",
                    Scope::Child,
                    IndicatorType::Enum {
                        values: order(&["none", "supervised", "unsupervised"]),
                        order: order(&["none", "supervised", "unsupervised"]),
                        multiple: false,
                    },
                ),
                ind(
                    "stressors",
                    Scope::Family,
                    IndicatorType::Enum {
                        values: order(&["debts", "housing", "work"]),
                        order: vec![],
                        multiple: true,
                    },
                ),
            ]
            .into_iter()
            .collect(),
            rules: rules
                .into_iter()
                .map(|(code, kind)| Rule {
                    code: code.into(),
                    severity: Severity::Amber,
                    applies_to: Scope::Child,
                    kind,
                })
                .collect(),
        }
    }

    /// A history from (contact, observations) pairs; check-ins are named c1, c2, …
    fn run(cat: &Catalog, steps: &[(Contact, Value)]) -> Vec<(String, String)> {
        let names: Vec<String> = (1..=steps.len()).map(|i| format!("c{i}")).collect();
        let obs: Vec<Option<Observations>> = steps
            .iter()
            .map(|(_, v)| serde_json::from_value(v.clone()).ok())
            .collect();
        let history: Vec<Visit> = steps
            .iter()
            .zip(&names)
            .zip(&obs)
            .map(|(((c, _), n), o)| Visit {
                checkin: n,
                contact: *c,
                observations: o.as_ref(),
            })
            .collect();
        replay(cat, Scope::Child, &history)
    }

    fn flags(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    use Contact::*;

    type Steps = Vec<(Contact, Value)>;
    type Want = Vec<(&'static str, &'static str)>;
    type Case = (&'static str, Steps, Want);

    #[test]
    fn threshold_fires_when_the_bound_is_crossed_once_while_it_persists() {
        let cat = catalog(vec![(
            "incident",
            RuleKind::Threshold(cond("new_incident", Op::Eq, json!(true))),
        )]);
        let cases: Vec<Case> = vec![
            (
                "never",
                vec![(Reached, json!({"new_incident": false}))],
                vec![],
            ),
            (
                "at the second",
                vec![
                    (Reached, json!({"new_incident": false})),
                    (Reached, json!({"new_incident": true})),
                ],
                vec![("incident", "c2")],
            ),
            (
                "persisting: one flag",
                vec![
                    (Reached, json!({"new_incident": true})),
                    (Reached, json!({"new_incident": true})),
                ],
                vec![("incident", "c1")],
            ),
            (
                "missing value",
                vec![(Reached, json!({"wellbeing": 5}))],
                vec![],
            ),
            ("not reached", vec![(NotReached, Value::Null)], vec![]),
        ];
        for (name, steps, want) in cases {
            assert_eq!(run(&cat, &steps), flags(&want), "{name}");
        }
    }

    #[test]
    fn worsening_against_first_and_previous_baselines() {
        let first = catalog(vec![(
            "drop",
            RuleKind::Worsening {
                indicator: "wellbeing".into(),
                baseline: Baseline::First,
                n: 2,
                delta: 3.0,
            },
        )]);
        let prev = catalog(vec![(
            "drop",
            RuleKind::Worsening {
                indicator: "wellbeing".into(),
                baseline: Baseline::Previous,
                n: 2,
                delta: 3.0,
            },
        )]);
        let w = |v: i64| (Reached, json!({ "wellbeing": v }));
        let cases: Vec<(&str, &Catalog, Steps, Want)> = vec![
            ("too short", &first, vec![w(8), w(2)], vec![]),
            ("stable", &first, vec![w(8), w(8), w(7), w(6)], vec![]),
            (
                "drop of 3 from 8",
                &first,
                vec![w(8), w(8), w(5)],
                vec![("drop", "c3")],
            ),
            (
                "slow slide vs first",
                &first,
                vec![w(8), w(8), w(7), w(6), w(5)],
                vec![("drop", "c5")],
            ),
            (
                "slow slide vs previous",
                &prev,
                vec![w(8), w(8), w(7), w(6), w(5)],
                vec![],
            ),
            (
                "sudden drop vs previous",
                &prev,
                vec![w(4), w(4), w(8), w(8), w(4)],
                vec![("drop", "c5")],
            ),
            ("improvement", &first, vec![w(2), w(2), w(9)], vec![]),
            (
                "gaps skipped",
                &first,
                vec![w(8), (NotReached, Value::Null), w(8), w(4)],
                vec![("drop", "c4")],
            ),
        ];
        for (name, cat, steps, want) in cases {
            assert_eq!(run(cat, &steps), flags(&want), "{name}");
        }
        let ordinal = catalog(vec![(
            "school",
            RuleKind::Worsening {
                indicator: "school_attendance".into(),
                baseline: Baseline::Previous,
                n: 1,
                delta: 2.0,
            },
        )]);
        let s = |v: &str| (Reached, json!({ "school_attendance": v }));
        assert_eq!(run(&ordinal, &[s("normal"), s("reduced")]), vec![]);
        assert_eq!(
            run(&ordinal, &[s("normal"), s("n/a"), s("absent")]),
            flags(&[("school", "c3")])
        );
    }

    #[test]
    fn streak_needs_k_consecutive_observed_checkins() {
        let cat = catalog(vec![(
            "low",
            RuleKind::Streak {
                condition: cond("wellbeing", Op::Le, json!(4)),
                count: 3,
            },
        )]);
        let w = |v: i64| (Reached, json!({ "wellbeing": v }));
        let cases: Vec<Case> = vec![
            ("two", vec![w(3), w(3)], vec![]),
            ("three", vec![w(3), w(4), w(2)], vec![("low", "c3")]),
            ("broken", vec![w(3), w(3), w(6), w(3), w(3)], vec![]),
            (
                "after a break",
                vec![w(3), w(6), w(3), w(3), w(3)],
                vec![("low", "c5")],
            ),
            (
                "missing value breaks",
                vec![w(3), (Reached, json!({})), w(3), w(3)],
                vec![],
            ),
        ];
        for (name, steps, want) in cases {
            assert_eq!(run(&cat, &steps), flags(&want), "{name}");
        }
    }

    #[test]
    fn all_of_needs_every_condition_at_the_same_checkin() {
        let cat = catalog(vec![(
            "combo",
            RuleKind::AllOf(vec![
                cond("perpetrator_contact", Op::Eq, json!("unsupervised")),
                cond("school_attendance", Op::Ge, json!("reduced")),
            ]),
        )]);
        let o = |p: &str, s: &str| {
            (
                Reached,
                json!({"perpetrator_contact": p, "school_attendance": s}),
            )
        };
        let cases: Vec<Case> = vec![
            ("neither", vec![o("none", "normal")], vec![]),
            ("one", vec![o("unsupervised", "normal")], vec![]),
            ("other", vec![o("supervised", "absent")], vec![]),
            (
                "both",
                vec![o("unsupervised", "absent")],
                vec![("combo", "c1")],
            ),
            (
                "n/a does not compare",
                vec![o("unsupervised", "n/a")],
                vec![],
            ),
            (
                "spread over two check-ins",
                vec![o("unsupervised", "normal"), o("none", "absent")],
                vec![],
            ),
        ];
        for (name, steps, want) in cases {
            assert_eq!(run(&cat, &steps), flags(&want), "{name}");
        }
    }

    #[test]
    fn new_value_fires_on_a_new_or_worsened_stressor_only() {
        let cat = catalog(vec![(
            "stressor",
            RuleKind::NewValue {
                indicator: "stressors".into(),
            },
        )]);
        let s = |v: Value| (Reached, json!({ "stressors": v }));
        let cases: Vec<Case> = vec![
            (
                "new (old form)",
                vec![s(json!(["debts"])), s(json!(["debts", "work"]))],
                vec![("stressor", "c2")],
            ),
            (
                "new (with a level)",
                vec![
                    s(json!([{"code": "debts", "level": "mild"}])),
                    s(json!([{"code": "debts", "level": 1}, {"code": "work", "level": 1}])),
                ],
                vec![("stressor", "c2")],
            ),
            (
                "worsened",
                vec![
                    s(json!([{"code": "debts", "level": "mild"}])),
                    s(json!([{"code": "debts", "level": "serious"}])),
                ],
                vec![("stressor", "c2")],
            ),
            (
                "worsened, numbers and words mixed",
                vec![
                    s(json!([{"code": "debts", "level": 2}, "work"])),
                    s(json!(["work", {"code": "debts", "level": "severe"}])),
                ],
                vec![("stressor", "c2")],
            ),
            (
                "unchanged",
                vec![
                    s(json!([{"code": "debts", "level": "serious"}])),
                    s(json!([{"code": "debts", "level": 2}])),
                ],
                vec![],
            ),
            (
                "improved",
                vec![
                    s(json!([{"code": "debts", "level": "severe"}, "work"])),
                    s(json!([{"code": "debts", "level": "mild"}])),
                ],
                vec![],
            ),
            (
                "a level first given does not compare",
                vec![
                    s(json!(["debts"])),
                    s(json!([{"code": "debts", "level": 3}])),
                ],
                vec![],
            ),
        ];
        for (name, steps, want) in cases {
            assert_eq!(run(&cat, &steps), flags(&want), "{name}");
        }
    }

    #[test]
    fn out_of_sight_is_a_time_rule() {
        use chrono::{TimeDelta, TimeZone, Utc};
        let since = Utc.with_ymd_and_hms(2027, 1, 4, 8, 0, 0).unwrap();
        let (a, r) = ("P8W".parse().unwrap(), "P16W".parse().unwrap());
        let at = |weeks: i64, secs: i64| since + TimeDelta::weeks(weeks) + TimeDelta::seconds(secs);
        let sev = |now, ceiling| out_of_sight(a, r, ceiling, since, now);
        assert_eq!(sev(at(8, -1), Severity::Red), None);
        assert_eq!(sev(at(8, 0), Severity::Red), Some(Severity::Amber));
        assert_eq!(sev(at(16, -1), Severity::Red), Some(Severity::Amber));
        assert_eq!(sev(at(16, 0), Severity::Red), Some(Severity::Red));
        // An amber rule never turns red.
        assert_eq!(sev(at(40, 0), Severity::Amber), Some(Severity::Amber));
        // And the per-check-in evaluation leaves it alone.
        let cat = catalog(vec![(
            "gone",
            RuleKind::OutOfSight {
                amber_after: a,
                red_after: r,
            },
        )]);
        let n = |c: Contact| (c, Value::Null);
        assert!(run(&cat, &[n(NotReached), n(Overdue), n(Declined), n(Overdue)]).is_empty());
    }

    #[test]
    fn observations_are_checked_against_the_definitions() {
        let cat = catalog(vec![]);
        let check = |scope, v: Value| {
            let obs: Observations = serde_json::from_value(v).unwrap();
            let mut e = Vec::new();
            check_observations(&cat, scope, "o", &obs, &mut e);
            e.into_iter().map(|e| e.field).collect::<Vec<_>>()
        };
        assert!(
            check(
                Scope::Child,
                json!({"wellbeing": 0, "new_incident": true, "school_attendance": "n/a"})
            )
            .is_empty()
        );
        assert_eq!(check(Scope::Child, json!({"mood": 3})), ["o.mood"]);
        assert_eq!(
            check(Scope::Child, json!({"wellbeing": 11})),
            ["o.wellbeing"]
        );
        assert_eq!(
            check(Scope::Child, json!({"wellbeing": "good"})),
            ["o.wellbeing"]
        );
        assert_eq!(
            check(Scope::Child, json!({"new_incident": 1})),
            ["o.new_incident"]
        );
        assert_eq!(
            check(Scope::Child, json!({"school_attendance": "sometimes"})),
            ["o.school_attendance"]
        );
        assert_eq!(
            check(Scope::Child, json!({"stressors": ["debts"]})),
            ["o.stressors"]
        );
        assert!(check(Scope::Family, json!({"stressors": ["debts", "work"]})).is_empty());
        assert_eq!(
            check(Scope::Family, json!({"stressors": ["debts", "debts"]})),
            ["o.stressors[1]"]
        );
        assert_eq!(
            check(Scope::Family, json!({"stressors": "debts"})),
            ["o.stressors"]
        );
        assert!(
            check(
                Scope::Family,
                json!({"stressors": [{"code": "debts", "level": "severe"}, "work", {"code": "housing", "level": 1}]})
            )
            .is_empty()
        );
        assert_eq!(
            check(
                Scope::Family,
                json!({"stressors": ["work", {"code": "debts", "level": "extreme"}]})
            ),
            ["o.stressors[1].level"]
        );
        assert_eq!(
            check(
                Scope::Family,
                json!({"stressors": [{"code": "debts", "level": 4}]})
            ),
            ["o.stressors[0].level"]
        );
        assert_eq!(
            check(
                Scope::Family,
                json!({"stressors": [{"code": "gambling", "level": 1}]})
            ),
            ["o.stressors[0]"]
        );
        assert_eq!(
            check(
                Scope::Family,
                json!({"stressors": ["debts", {"code": "debts", "level": 1}]})
            ),
            ["o.stressors[1]"]
        );
    }

    #[test]
    fn conditions_must_fit_the_indicator_type() {
        let cat = catalog(vec![]);
        let i = |c: &str| cat.indicators.get(c).unwrap();
        assert!(check_condition(i("new_incident"), Op::Eq, &json!(true)).is_ok());
        assert!(check_condition(i("new_incident"), Op::Ge, &json!(true)).is_err());
        assert!(check_condition(i("wellbeing"), Op::Le, &json!(4)).is_ok());
        assert!(check_condition(i("wellbeing"), Op::Le, &json!(40)).is_err());
        assert!(check_condition(i("wellbeing"), Op::Contains, &json!(4)).is_err());
        assert!(check_condition(i("school_attendance"), Op::Ge, &json!("reduced")).is_ok());
        assert!(check_condition(i("school_attendance"), Op::Ge, &json!("n/a")).is_err());
        assert!(
            check_condition(
                i("school_attendance"),
                Op::In,
                &json!(["absent", "reduced"])
            )
            .is_ok()
        );
        assert!(check_condition(i("stressors"), Op::Contains, &json!("debts")).is_ok());
        assert!(check_condition(i("stressors"), Op::Eq, &json!("debts")).is_err());
    }
}
