//! How codes read on the pages: an indicator's values (its `value_labels` from the config),
//! stressors, rules (`[[rules]] labels`, else a built-in word), and a flag's evidence, in
//! the reader's language. A code without a configured label is shown as it is, with
//! underscores as spaces, never as a raw code with underscores.

use super::i18n::T;
use crate::config::Config;
use crate::domain::signals::{Catalog, Indicator, IndicatorType, Scope};
use crate::mail::Language;
use serde_json::Value;

/// A code made readable when nothing names it: `mental_health` → `mental health`.
fn plain(code: &str) -> String {
    code.replace('_', " ")
}

/// An indicator's name in the reader's language.
pub fn indicator(t: T, ind: &Indicator) -> String {
    match t.0 {
        Language::Nl => ind.label_nl.clone(),
        Language::En => ind.label_en.clone(),
    }
}

/// One value of an enum indicator as shown: its configured label, else the value itself.
pub fn value(t: T, ind: &Indicator, v: &str) -> String {
    match (ind.value_labels.get(v), t.0) {
        (Some((nl, _)), Language::Nl) => nl.clone(),
        (Some((_, en)), Language::En) => en.clone(),
        (None, _) => plain(v),
    }
}

/// An observed value as shown: yes/no, a number, an enum value's label, a list of labels.
pub fn observed(t: T, ind: Option<&Indicator>, v: &Value) -> String {
    match (v, ind) {
        (Value::Bool(b), _) => t.s(if *b { "yes" } else { "no" }).to_string(),
        (Value::String(s), Some(i)) => value(t, i, s),
        (Value::String(s), None) => plain(s),
        (Value::Array(items), _) => items
            .iter()
            .map(|x| observed(t, ind, x))
            .collect::<Vec<_>>()
            .join(", "),
        (other, _) => other.to_string(),
    }
}

/// A stressor named at enrolment: the label of that value in a family indicator's
/// `value_labels` (the `stressors` indicator), else the built-in word, else the code.
pub fn stressor(t: T, catalog: &Catalog, code: &str) -> String {
    for ind in catalog.indicators.values() {
        if ind.applies_to == Scope::Family
            && matches!(ind.kind, IndicatorType::Enum { .. })
            && ind.value_labels.contains_key(code)
        {
            return value(t, ind, code);
        }
    }
    match t.word(&format!("stressor.{code}")) {
        Some(w) => w.to_string(),
        None => plain(code),
    }
}

/// A rule's name: `[[rules]] labels` in the reader's language, else the built-in word of a
/// rule the daemon raises itself (`measure_notice`), else the code made readable.
pub fn rule(t: T, cfg: &Config, code: &str) -> String {
    if cfg.mail.rule_labels.contains_key(code) {
        return cfg.mail.rule_label(code, t.0).to_string();
    }
    match t.word(&format!("rule.{code}")) {
        Some(w) => w.to_string(),
        None => plain(code),
    }
}

/// A flag's evidence in words: "C-… · Contact met de pleger: zonder toezicht; …".
pub fn evidence(t: T, catalog: &Catalog, e: &Option<crate::domain::signals::Evidence>) -> String {
    let Some(e) = e else {
        return String::new();
    };
    e.items
        .iter()
        .map(|i| {
            let ind = i.indicator.as_ref().and_then(|c| catalog.indicators.get(c));
            let shown = match (&i.value, &i.contact) {
                (Some(v), _) => observed(t, ind, v),
                (None, Some(c)) => serde_json::to_value(c)
                    .ok()
                    .and_then(|v| v.as_str().map(|s| t.code("outcome", s)))
                    .unwrap_or_default(),
                (None, None) => "–".to_string(),
            };
            match (ind, &i.indicator) {
                (Some(ind), _) => format!("{}: {}: {shown}", i.checkin, indicator(t, ind)),
                (None, Some(code)) => format!("{}: {}: {shown}", i.checkin, plain(code)),
                (None, None) => format!("{}: {shown}", i.checkin),
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn values_read_as_configured_and_codes_lose_their_underscores() {
        let ind = Indicator {
            code: "perpetrator_contact".into(),
            label_nl: "Contact met de pleger".into(),
            label_en: "Contact with the perpetrator".into(),
            applies_to: Scope::Child,
            kind: IndicatorType::Enum {
                values: vec!["none".into(), "unsupervised".into()],
                order: vec![],
                multiple: false,
            },
            value_labels: BTreeMap::from([(
                "unsupervised".to_string(),
                ("zonder toezicht".to_string(), "unsupervised".to_string()),
            )]),
        };
        let nl = T(Language::Nl);
        assert_eq!(value(nl, &ind, "unsupervised"), "zonder toezicht");
        assert_eq!(value(nl, &ind, "n/a_x"), "n/a x");
        assert_eq!(observed(nl, Some(&ind), &Value::Bool(true)), "ja");
        assert_eq!(
            observed(
                T(Language::En),
                Some(&ind),
                &serde_json::json!(["unsupervised", "none"])
            ),
            "unsupervised, none"
        );
    }
}
