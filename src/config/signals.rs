//! `[[indicators]]`, `[[rules]]`, `[flags]` and `[digest]`: the relapse-signal catalog and its checks.

use super::*;

#[derive(Debug, Deserialize)]
pub(super) struct RawFlags {
    #[serde(default = "d_red_escalate_after")]
    pub(super) red_escalate_after: u32,
    #[serde(default = "d_measure_notice")]
    pub(super) measure_notice: String,
}

pub(super) fn d_measure_notice() -> String {
    "P14D".into()
}

pub(super) fn d_red_escalate_after() -> u32 {
    1
}

impl Default for RawFlags {
    fn default() -> Self {
        RawFlags {
            red_escalate_after: d_red_escalate_after(),
            measure_notice: d_measure_notice(),
        }
    }
}

#[derive(Debug, Deserialize)]
pub(super) struct RawIndicator {
    pub(super) code: String,
    pub(super) labels: RawLabels,
    pub(super) applies_to: String,
    #[serde(rename = "type")]
    pub(super) kind: String,
    pub(super) min: Option<f64>,
    pub(super) max: Option<f64>,
    pub(super) better: Option<String>,
    pub(super) values: Option<Vec<String>>,
    pub(super) order: Option<Vec<String>>,
    pub(super) multiple: Option<bool>,
    /// type = "enum": how values are shown, `{ value = { nl, en } }`.
    pub(super) value_labels: Option<BTreeMap<String, RawLabels>>,
}

#[derive(Debug, Deserialize)]
pub(super) struct RawCondition {
    pub(super) indicator: String,
    pub(super) op: String,
    pub(super) value: toml::Value,
}

#[derive(Debug, Deserialize)]
pub(super) struct RawRule {
    pub(super) code: String,
    /// How the rule is named in mails; default: its code.
    #[serde(default)]
    pub(super) labels: Option<RawLabels>,
    pub(super) severity: String,
    pub(super) applies_to: Option<String>,
    pub(super) kind: String,
    pub(super) indicator: Option<String>,
    pub(super) op: Option<String>,
    pub(super) value: Option<toml::Value>,
    pub(super) baseline: Option<String>,
    pub(super) n: Option<u32>,
    pub(super) delta: Option<f64>,
    pub(super) count: Option<u32>,
    pub(super) conditions: Option<Vec<RawCondition>>,
    pub(super) amber_after: Option<String>,
    pub(super) red_after: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(super) struct RawDigest {
    #[serde(default = "d_digest_time")]
    pub(super) local_time: String,
}

pub(super) fn d_digest_time() -> String {
    "08:00".into()
}

impl Default for RawDigest {
    fn default() -> Self {
        RawDigest {
            local_time: d_digest_time(),
        }
    }
}

pub(super) fn is_code(s: &str) -> bool {
    crate::types::is_code(s)
}

pub(super) fn toml_to_json(v: &toml::Value) -> serde_json::Value {
    serde_json::to_value(v).unwrap_or(serde_json::Value::Null)
}

pub(super) fn validate_indicator(
    i: &RawIndicator,
    key: &str,
    is: &mut Issues,
) -> Option<Indicator> {
    let before = is.0.len();
    if !is_code(&i.code) {
        is.push(
            format!("{key}.code"),
            "expected a lowercase code such as wellbeing",
        );
    }
    if i.labels.nl.trim().is_empty() {
        is.push(format!("{key}.labels.nl"), "must not be empty");
    }
    if i.labels.en.trim().is_empty() {
        is.push(format!("{key}.labels.en"), "must not be empty");
    }
    let applies_to = Scope::from_code(&i.applies_to);
    if applies_to.is_none() {
        is.push(
            format!("{key}.applies_to"),
            "expected child, adult or family",
        );
    }
    let only = |is: &mut Issues, name: &str, present: bool, for_type: &str| {
        if present {
            is.push(
                format!("{key}.{name}"),
                format!("only for type = \"{for_type}\""),
            );
        }
    };
    let kind = match i.kind.as_str() {
        "bool" | "count" => {
            only(is, "min", i.min.is_some(), "scale");
            only(is, "max", i.max.is_some(), "scale");
            only(is, "better", i.better.is_some(), "scale");
            only(is, "values", i.values.is_some(), "enum");
            only(is, "order", i.order.is_some(), "enum");
            only(is, "multiple", i.multiple.is_some(), "enum");
            only(is, "value_labels", i.value_labels.is_some(), "enum");
            if i.kind == "bool" {
                IndicatorType::Bool
            } else {
                IndicatorType::Count
            }
        }
        "scale" => {
            only(is, "values", i.values.is_some(), "enum");
            only(is, "order", i.order.is_some(), "enum");
            only(is, "multiple", i.multiple.is_some(), "enum");
            only(is, "value_labels", i.value_labels.is_some(), "enum");
            let (min, max) = match (i.min, i.max) {
                (Some(a), Some(b)) if a < b => (a, b),
                (Some(_), Some(_)) => {
                    is.push(format!("{key}.max"), "must be larger than min");
                    (0.0, 1.0)
                }
                _ => {
                    is.push(key, "a scale needs min and max");
                    (0.0, 1.0)
                }
            };
            let better = match i.better.as_deref() {
                Some("high") => Better::High,
                Some("low") => Better::Low,
                _ => {
                    is.push(format!("{key}.better"), "expected \"high\" or \"low\"");
                    Better::High
                }
            };
            IndicatorType::Scale { min, max, better }
        }
        "enum" => {
            only(is, "min", i.min.is_some(), "scale");
            only(is, "max", i.max.is_some(), "scale");
            only(is, "better", i.better.is_some(), "scale");
            let values = i.values.clone().unwrap_or_default();
            if values.is_empty() {
                is.push(format!("{key}.values"), "an enum needs at least one value");
            }
            let mut seen = BTreeSet::new();
            for (j, v) in values.iter().enumerate() {
                if v.trim().is_empty() || v.len() > 40 {
                    is.push(format!("{key}.values[{j}]"), "1 to 40 characters");
                }
                if !seen.insert(v) {
                    is.push(format!("{key}.values[{j}]"), "listed twice");
                }
            }
            let order = i.order.clone().unwrap_or_default();
            let multiple = i.multiple.unwrap_or(false);
            if multiple && !order.is_empty() {
                is.push(format!("{key}.order"), "not with multiple = true");
            }
            let mut seen = BTreeSet::new();
            for (j, v) in order.iter().enumerate() {
                if !values.contains(v) {
                    is.push(format!("{key}.order[{j}]"), "not one of the values");
                }
                if !seen.insert(v) {
                    is.push(format!("{key}.order[{j}]"), "listed twice");
                }
            }
            for (v, l) in i.value_labels.iter().flatten() {
                if !values.contains(v) {
                    is.push(format!("{key}.value_labels.{v}"), "not one of the values");
                }
                if l.nl.trim().is_empty() || l.en.trim().is_empty() {
                    is.push(
                        format!("{key}.value_labels.{v}"),
                        "nl and en must not be empty",
                    );
                }
            }
            IndicatorType::Enum {
                values,
                order,
                multiple,
            }
        }
        other => {
            is.push(
                format!("{key}.type"),
                format!("`{other}` is not a type; use bool, scale, count or enum"),
            );
            return None;
        }
    };
    (is.0.len() == before).then(|| Indicator {
        code: i.code.clone(),
        label_nl: i.labels.nl.clone(),
        label_en: i.labels.en.clone(),
        applies_to: applies_to.unwrap_or(Scope::Child),
        kind,
        value_labels: i
            .value_labels
            .iter()
            .flatten()
            .map(|(v, l)| (v.clone(), (l.nl.clone(), l.en.clone())))
            .collect(),
    })
}

/// Resolves a condition against the indicators; `None` (with issues) if it cannot work.
pub(super) fn condition(
    indicators: &BTreeMap<String, Indicator>,
    key: &str,
    indicator: &str,
    op: &str,
    value: &toml::Value,
    is: &mut Issues,
) -> Option<(Condition, Scope)> {
    let Some(ind) = indicators.get(indicator) else {
        is.push(
            format!("{key}.indicator"),
            format!("unknown indicator `{indicator}`"),
        );
        return None;
    };
    let Some(op) = Op::from_code(op) else {
        is.push(
            format!("{key}.op"),
            "expected eq, ne, lt, le, gt, ge, in or contains",
        );
        return None;
    };
    let value = toml_to_json(value);
    if let Err(m) = check_condition(ind, op, &value) {
        is.push(format!("{key}.value"), m);
        return None;
    }
    Some((
        Condition {
            indicator: indicator.to_string(),
            op,
            value,
        },
        ind.applies_to,
    ))
}

pub(super) fn validate_rule(
    r: &RawRule,
    key: &str,
    indicators: &BTreeMap<String, Indicator>,
    is: &mut Issues,
) -> Option<Rule> {
    let before = is.0.len();
    if !is_code(&r.code) {
        is.push(
            format!("{key}.code"),
            "expected a lowercase code such as wellbeing_drop",
        );
    }
    let severity = Severity::from_code(&r.severity);
    if severity.is_none() {
        is.push(
            format!("{key}.severity"),
            format!("`{}` is not a severity; use info, amber or red", r.severity),
        );
    }
    let declared = match r.applies_to.as_deref() {
        None => None,
        Some(s) => {
            let scope = Scope::from_code(s);
            if scope.is_none() {
                is.push(
                    format!("{key}.applies_to"),
                    "expected child, adult or family",
                );
            }
            scope
        }
    };
    let unused = |is: &mut Issues, name: &str, present: bool| {
        if present {
            is.push(
                format!("{key}.{name}"),
                format!("not used by kind = \"{}\"", r.kind),
            );
        }
    };
    let single = |is: &mut Issues| -> Option<(Condition, Scope)> {
        match (&r.indicator, &r.op, &r.value) {
            (Some(i), Some(op), Some(v)) => condition(indicators, key, i, op, v, is),
            _ => {
                is.push(
                    key,
                    format!("kind = \"{}\" needs indicator, op and value", r.kind),
                );
                None
            }
        }
    };
    if r.kind != "out_of_sight" {
        unused(is, "amber_after", r.amber_after.is_some());
        unused(is, "red_after", r.red_after.is_some());
    }
    let (kind, scopes): (Option<RuleKind>, Vec<Scope>) = match r.kind.as_str() {
        "threshold" => {
            unused(is, "baseline", r.baseline.is_some());
            unused(is, "n", r.n.is_some());
            unused(is, "delta", r.delta.is_some());
            unused(is, "count", r.count.is_some());
            unused(is, "conditions", r.conditions.is_some());
            match single(is) {
                Some((c, s)) => (Some(RuleKind::Threshold(c)), vec![s]),
                None => (None, vec![]),
            }
        }
        "streak" => {
            unused(is, "baseline", r.baseline.is_some());
            unused(is, "n", r.n.is_some());
            unused(is, "delta", r.delta.is_some());
            unused(is, "conditions", r.conditions.is_some());
            let count = match r.count {
                Some(k) if (2..=52).contains(&k) => k as usize,
                _ => {
                    is.push(format!("{key}.count"), "required: 2 to 52 check-ins");
                    2
                }
            };
            match single(is) {
                Some((c, s)) => (
                    Some(RuleKind::Streak {
                        condition: c,
                        count,
                    }),
                    vec![s],
                ),
                None => (None, vec![]),
            }
        }
        "all_of" => {
            unused(is, "indicator", r.indicator.is_some());
            unused(is, "op", r.op.is_some());
            unused(is, "value", r.value.is_some());
            unused(is, "baseline", r.baseline.is_some());
            unused(is, "n", r.n.is_some());
            unused(is, "delta", r.delta.is_some());
            unused(is, "count", r.count.is_some());
            let raw = r.conditions.as_deref().unwrap_or_default();
            if raw.len() < 2 {
                is.push(format!("{key}.conditions"), "at least two conditions");
            }
            let mut cs = Vec::new();
            let mut scopes = Vec::new();
            for (j, c) in raw.iter().enumerate() {
                if let Some((c, s)) = condition(
                    indicators,
                    &format!("{key}.conditions[{j}]"),
                    &c.indicator,
                    &c.op,
                    &c.value,
                    is,
                ) {
                    cs.push(c);
                    scopes.push(s);
                }
            }
            (Some(RuleKind::AllOf(cs)), scopes)
        }
        "worsening" => {
            unused(is, "op", r.op.is_some());
            unused(is, "value", r.value.is_some());
            unused(is, "count", r.count.is_some());
            unused(is, "conditions", r.conditions.is_some());
            let baseline = match r.baseline.as_deref() {
                Some("first") => Baseline::First,
                Some("previous") => Baseline::Previous,
                _ => {
                    is.push(
                        format!("{key}.baseline"),
                        "expected \"first\" or \"previous\"",
                    );
                    Baseline::First
                }
            };
            let n = match r.n {
                Some(n) if (1..=12).contains(&n) => n as usize,
                _ => {
                    is.push(format!("{key}.n"), "required: 1 to 12 observations");
                    1
                }
            };
            let delta = match r.delta {
                Some(d) if d > 0.0 && d.is_finite() => d,
                _ => {
                    is.push(format!("{key}.delta"), "required: a number above 0");
                    1.0
                }
            };
            match r.indicator.as_deref() {
                None => {
                    is.push(
                        format!("{key}.indicator"),
                        "required for kind = \"worsening\"",
                    );
                    (None, vec![])
                }
                Some(i) => match indicators.get(i) {
                    None => {
                        is.push(
                            format!("{key}.indicator"),
                            format!("unknown indicator `{i}`"),
                        );
                        (None, vec![])
                    }
                    Some(ind) if !ind.kind.ordered() => {
                        is.push(
                            format!("{key}.kind"),
                            format!(
                                "worsening needs a scale, count or ordered enum indicator; `{i}` is a {}{}",
                                ind.kind.code(),
                                if ind.kind.code() == "enum" { " without order" } else { "" }
                            ),
                        );
                        (None, vec![])
                    }
                    Some(ind) => (
                        Some(RuleKind::Worsening {
                            indicator: i.to_string(),
                            baseline,
                            n,
                            delta,
                        }),
                        vec![ind.applies_to],
                    ),
                },
            }
        }
        "new_value" => {
            for (k, set) in [
                ("op", r.op.is_some()),
                ("value", r.value.is_some()),
                ("baseline", r.baseline.is_some()),
                ("n", r.n.is_some()),
                ("delta", r.delta.is_some()),
                ("count", r.count.is_some()),
                ("conditions", r.conditions.is_some()),
            ] {
                unused(is, k, set);
            }
            match r.indicator.as_deref().map(|i| (i, indicators.get(i))) {
                None => {
                    is.push(
                        format!("{key}.indicator"),
                        "required for kind = \"new_value\"",
                    );
                    (None, vec![])
                }
                Some((i, None)) => {
                    is.push(
                        format!("{key}.indicator"),
                        format!("unknown indicator `{i}`"),
                    );
                    (None, vec![])
                }
                Some((i, Some(ind))) => {
                    if matches!(ind.kind, IndicatorType::Enum { multiple: true, .. }) {
                        (
                            Some(RuleKind::NewValue {
                                indicator: i.to_string(),
                            }),
                            vec![ind.applies_to],
                        )
                    } else {
                        is.push(
                            format!("{key}.kind"),
                            format!("new_value needs an enum indicator with multiple = true; `{i}` is not"),
                        );
                        (None, vec![])
                    }
                }
            }
        }
        "out_of_sight" => {
            unused(is, "indicator", r.indicator.is_some());
            unused(is, "op", r.op.is_some());
            unused(is, "value", r.value.is_some());
            unused(is, "baseline", r.baseline.is_some());
            unused(is, "n", r.n.is_some());
            unused(is, "delta", r.delta.is_some());
            unused(is, "conditions", r.conditions.is_some());
            if r.count.is_some() {
                is.push(
                    format!("{key}.count"),
                    "out_of_sight is a time rule: use amber_after (default \"P8W\") and \
                     red_after (default \"P16W\") instead of count",
                );
            }
            let amber_after = is
                .duration(
                    &format!("{key}.amber_after"),
                    r.amber_after.as_deref().unwrap_or("P8W"),
                )
                .unwrap_or(IsoDuration::ZERO);
            let red_after = is
                .duration(
                    &format!("{key}.red_after"),
                    r.red_after.as_deref().unwrap_or("P16W"),
                )
                .unwrap_or(IsoDuration::ZERO);
            let sample = chrono::NaiveDate::from_ymd_opt(2027, 1, 1);
            let on = |d: IsoDuration| sample.and_then(|s| d.add_to_date(s));
            if amber_after.is_zero() {
                is.push(format!("{key}.amber_after"), "must be longer than zero");
            } else if on(red_after) <= on(amber_after) {
                is.push(
                    format!("{key}.red_after"),
                    "must be longer than amber_after",
                );
            }
            (
                Some(RuleKind::OutOfSight {
                    amber_after,
                    red_after,
                }),
                vec![declared.unwrap_or(Scope::Family)],
            )
        }
        other => {
            is.push(
                format!("{key}.kind"),
                format!(
                    "`{other}` is not a rule kind; use threshold, worsening, streak, all_of, new_value or out_of_sight"
                ),
            );
            (None, vec![])
        }
    };
    let scope = declared.or_else(|| scopes.first().copied());
    if let Some(s) = scope
        && scopes.iter().any(|x| *x != s)
    {
        is.push(
            format!("{key}.applies_to"),
            format!("the rule's indicators must all apply to {}", s.code()),
        );
    }
    if is.0.len() != before {
        return None;
    }
    Some(Rule {
        code: r.code.clone(),
        severity: severity?,
        applies_to: scope?,
        kind: kind?,
    })
}

pub(super) fn validate_signals(
    raw_i: &[RawIndicator],
    raw_r: &[RawRule],
    is: &mut Issues,
) -> Catalog {
    let mut indicators = BTreeMap::new();
    for (i, ind) in raw_i.iter().enumerate() {
        let key = format!("indicators[{i}]");
        if indicators.contains_key(&ind.code) {
            is.push(
                format!("{key}.code"),
                format!("{} is listed twice", ind.code),
            );
            continue;
        }
        if let Some(v) = validate_indicator(ind, &key, is) {
            indicators.insert(v.code.clone(), v);
        }
    }
    let mut rules: Vec<Rule> = Vec::new();
    let mut seen = BTreeSet::new();
    for (i, r) in raw_r.iter().enumerate() {
        let key = format!("rules[{i}]");
        if !seen.insert(r.code.clone()) {
            is.push(format!("{key}.code"), format!("{} is listed twice", r.code));
            continue;
        }
        if let Some(rule) = validate_rule(r, &key, &indicators, is) {
            rules.push(rule);
        }
    }
    Catalog { indicators, rules }
}

/// Checks `[flags]`: the red-flag escalation delay and how long before a court measure
/// ends it is signalled (returned).
pub(super) fn validate_flags(raw: &RawFlags, is: &mut Issues) -> IsoDuration {
    if !(1..=20).contains(&raw.red_escalate_after) {
        is.push("flags.red_escalate_after", "1 to 20 working days");
    }
    is.duration("flags.measure_notice", &raw.measure_notice)
        .unwrap_or(IsoDuration::ZERO)
}

/// Checks `[digest]`: the local time of the daily digest.
pub(super) fn validate_digest(raw: &RawDigest, is: &mut Issues) -> NaiveTime {
    match NaiveTime::parse_from_str(&raw.local_time, "%H:%M") {
        Ok(t) => t,
        Err(_) => {
            is.push("digest.local_time", "expected HH:MM, e.g. \"08:00\"");
            NaiveTime::MIN
        }
    }
}
