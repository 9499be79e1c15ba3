//! The signal catalog as configured: indicators, their types, rules and their conditions.
//! Shared by `config` (which reads and checks it) and `domain::signals` (which evaluates it).

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// Whom an indicator or rule is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    Child,
    Adult,
    Family,
}

impl Scope {
    pub fn code(&self) -> &'static str {
        match self {
            Scope::Child => "child",
            Scope::Adult => "adult",
            Scope::Family => "family",
        }
    }

    pub fn from_code(s: &str) -> Option<Scope> {
        match s {
            "child" => Some(Scope::Child),
            "adult" => Some(Scope::Adult),
            "family" => Some(Scope::Family),
            _ => None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Amber,
    Red,
}

impl Severity {
    pub fn code(&self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Amber => "amber",
            Severity::Red => "red",
        }
    }

    pub fn from_code(s: &str) -> Option<Severity> {
        match s {
            "info" => Some(Severity::Info),
            "amber" => Some(Severity::Amber),
            "red" => Some(Severity::Red),
            _ => None,
        }
    }
}

/// Which direction of a scale is the good one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Better {
    High,
    Low,
}

#[derive(Clone, Debug, PartialEq)]
pub enum IndicatorType {
    Bool,
    Scale {
        min: f64,
        max: f64,
        better: Better,
    },
    /// A non-negative whole number; more is worse.
    Count,
    /// One of `values` (or, with `multiple`, a list of distinct values). `order` lists the
    /// comparable values from best to worst; values outside it (e.g. `n/a`) never compare.
    Enum {
        values: Vec<String>,
        order: Vec<String>,
        multiple: bool,
    },
}

impl IndicatorType {
    pub fn code(&self) -> &'static str {
        match self {
            IndicatorType::Bool => "bool",
            IndicatorType::Scale { .. } => "scale",
            IndicatorType::Count => "count",
            IndicatorType::Enum { .. } => "enum",
        }
    }

    /// Whether values can be compared as better/worse (needed by `worsening`).
    pub fn ordered(&self) -> bool {
        match self {
            IndicatorType::Scale { .. } | IndicatorType::Count => true,
            IndicatorType::Enum {
                order, multiple, ..
            } => !order.is_empty() && !multiple,
            IndicatorType::Bool => false,
        }
    }

    /// How bad a value is on a line where larger is worse; `None` when not comparable.
    pub fn badness(&self, v: &Value) -> Option<f64> {
        match self {
            IndicatorType::Scale { better, .. } => v.as_f64().map(|x| match better {
                Better::High => -x,
                Better::Low => x,
            }),
            IndicatorType::Count => v.as_f64(),
            IndicatorType::Enum {
                order,
                multiple: false,
                ..
            } => {
                let s = v.as_str()?;
                order.iter().position(|o| o == s).map(|p| p as f64)
            }
            _ => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Indicator {
    pub code: String,
    pub label_nl: String,
    pub label_en: String,
    pub applies_to: Scope,
    pub kind: IndicatorType,
    /// An enum's values as shown (Dutch, English), where the config names them
    /// (`value_labels`); a value without one is shown as it is.
    pub value_labels: BTreeMap<String, (String, String)>,
}

/// A comparison of one indicator's value at one check-in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    In,
    Contains,
}

impl Op {
    pub fn from_code(s: &str) -> Option<Op> {
        Some(match s {
            "eq" => Op::Eq,
            "ne" => Op::Ne,
            "lt" => Op::Lt,
            "le" => Op::Le,
            "gt" => Op::Gt,
            "ge" => Op::Ge,
            "in" => Op::In,
            "contains" => Op::Contains,
            _ => return None,
        })
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Condition {
    pub indicator: String,
    pub op: Op,
    pub value: Value,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Baseline {
    /// Mean of the subject's first N observations.
    First,
    /// Mean of the N observations before the current one.
    Previous,
}

#[derive(Clone, Debug, PartialEq)]
pub enum RuleKind {
    Threshold(Condition),
    Worsening {
        indicator: String,
        baseline: Baseline,
        n: usize,
        delta: f64,
    },
    Streak {
        condition: Condition,
        count: usize,
    },
    AllOf(Vec<Condition>),
    /// A multi-valued enum (the family's stressors) lists a value its previous observation
    /// did not, or lists one at a higher level than before: a new or worsened stressor.
    NewValue {
        indicator: String,
    },
    /// A time rule: no `reached` contact for `amber_after` raises amber, for `red_after`
    /// red (up to the rule's severity), counted from the last reached contact or enrolment.
    OutOfSight {
        amber_after: super::duration::IsoDuration,
        red_after: super::duration::IsoDuration,
    },
}

impl RuleKind {
    pub fn code(&self) -> &'static str {
        match self {
            RuleKind::Threshold(_) => "threshold",
            RuleKind::Worsening { .. } => "worsening",
            RuleKind::Streak { .. } => "streak",
            RuleKind::AllOf(_) => "all_of",
            RuleKind::NewValue { .. } => "new_value",
            RuleKind::OutOfSight { .. } => "out_of_sight",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Rule {
    pub code: String,
    pub severity: Severity,
    pub applies_to: Scope,
    pub kind: RuleKind,
}

/// The configured indicators and rules.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Catalog {
    pub indicators: BTreeMap<String, Indicator>,
    pub rules: Vec<Rule>,
}

// ---- checking values against an indicator -----------------------------------------------------

/// Whether a value fits the indicator type; the message names the expectation, never the value.
pub(crate) fn check_value(t: &IndicatorType, v: &Value) -> Result<(), String> {
    match t {
        IndicatorType::Bool => v
            .as_bool()
            .map(|_| ())
            .ok_or_else(|| "expected true or false".to_string()),
        IndicatorType::Scale { min, max, .. } => match v.as_f64() {
            None => Err(format!("expected a number from {min} to {max}")),
            Some(x) if x < *min || x > *max => Err(format!("out of range {min}–{max}")),
            Some(_) => Ok(()),
        },
        IndicatorType::Count => match v.as_u64() {
            Some(n) if n <= 1_000_000 => Ok(()),
            Some(_) => Err("out of range 0–1000000".into()),
            None => Err("expected a whole number of at least 0".into()),
        },
        IndicatorType::Enum {
            values, multiple, ..
        } => {
            let allowed = || format!("expected one of: {}", values.join(", "));
            if *multiple {
                let Some(items) = v.as_array() else {
                    return Err(format!("expected a list; {}", allowed()));
                };
                let mut seen = std::collections::BTreeSet::new();
                for i in items {
                    match i.as_str() {
                        Some(s) if values.iter().any(|x| x == s) => {
                            if !seen.insert(s) {
                                return Err("a value is listed twice".into());
                            }
                        }
                        _ => return Err(format!("a value is not allowed; {}", allowed())),
                    }
                }
                Ok(())
            } else {
                match v.as_str() {
                    Some(s) if values.iter().any(|x| x == s) => Ok(()),
                    _ => Err(allowed()),
                }
            }
        }
    }
}

// ---- a rule's condition ----------------------------------------------------------------------

/// Checks that `op value` makes sense for the indicator's type; the message for the config.
pub fn check_condition(ind: &Indicator, op: Op, value: &Value) -> Result<(), String> {
    let t = &ind.kind;
    let numeric = |v: &Value| v.as_f64().is_some();
    match (t, op) {
        (IndicatorType::Bool, Op::Eq | Op::Ne) if value.is_boolean() => Ok(()),
        (IndicatorType::Bool, Op::Eq | Op::Ne) => Err("expected true or false".into()),
        (IndicatorType::Scale { .. } | IndicatorType::Count, Op::In | Op::Contains)
        | (IndicatorType::Bool, _) => Err(format!("op not usable with a {} indicator", t.code())),
        (IndicatorType::Scale { .. } | IndicatorType::Count, _) if numeric(value) => {
            check_value(t, value).map_err(|m| format!("value {m}"))
        }
        (IndicatorType::Scale { .. } | IndicatorType::Count, _) => Err("expected a number".into()),
        (
            IndicatorType::Enum {
                values, multiple, ..
            },
            op,
        ) => {
            let known = |v: &Value| v.as_str().is_some_and(|s| values.iter().any(|x| x == s));
            match (multiple, op) {
                (true, Op::Contains) | (false, Op::Eq | Op::Ne) if known(value) => Ok(()),
                (false, Op::In)
                    if value
                        .as_array()
                        .is_some_and(|a| !a.is_empty() && a.iter().all(known)) =>
                {
                    Ok(())
                }
                (false, Op::Lt | Op::Le | Op::Gt | Op::Ge) if t.ordered() => {
                    if t.badness(value).is_some() {
                        Ok(())
                    } else {
                        Err("value is not in the indicator's order".into())
                    }
                }
                (false, Op::Lt | Op::Le | Op::Gt | Op::Ge) => {
                    Err("comparing needs an `order` on the indicator".into())
                }
                (true, Op::Contains) | (false, Op::Eq | Op::Ne | Op::In) => {
                    Err(format!("value not allowed; expected {}", values.join(", ")))
                }
                (true, _) => Err("a multiple-choice indicator only supports `contains`".into()),
                (false, _) => Err("op not usable with a single-choice indicator".into()),
            }
        }
    }
}
