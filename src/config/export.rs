//! `[export]`: how anonymous the research export must be and how values generalise.

use super::*;

#[derive(Debug, Deserialize)]
pub(super) struct RawExport {
    #[serde(default = "d_export_k")]
    pub(super) k: u32,
    #[serde(default = "d_max_suppression")]
    pub(super) max_suppression: f64,
    #[serde(default = "d_family_k")]
    pub(super) family_k: u32,
    #[serde(default = "d_age_bands")]
    pub(super) age_bands: Vec<Vec<[u32; 2]>>,
    #[serde(default)]
    pub(super) areas: BTreeMap<String, String>,
    #[serde(default)]
    pub(super) indicators: Vec<String>,
    #[serde(default)]
    pub(super) values: BTreeMap<String, Vec<String>>,
    #[serde(default = "d_export_keep")]
    pub(super) keep: String,
}

pub(super) fn d_export_keep() -> String {
    "P30D".into()
}

pub(super) fn d_export_k() -> u32 {
    10
}

pub(super) fn d_max_suppression() -> f64 {
    0.05
}

pub(super) fn d_family_k() -> u32 {
    2
}

pub(super) fn d_age_bands() -> Vec<Vec<[u32; 2]>> {
    vec![vec![[0, 3], [4, 11], [12, 17]], vec![[0, 11], [12, 17]]]
}

impl Default for RawExport {
    fn default() -> Self {
        RawExport {
            k: d_export_k(),
            max_suppression: d_max_suppression(),
            family_k: d_family_k(),
            age_bands: d_age_bands(),
            areas: BTreeMap::new(),
            indicators: Vec::new(),
            values: BTreeMap::new(),
            keep: d_export_keep(),
        }
    }
}

/// The research export: how anonymous it must be and how values may be generalised.
#[derive(Clone, Debug)]
pub struct ExportConfig {
    /// Every quasi-identifier signature is shared by at least `k` distinct children; also
    /// the lowest `--k` an export may ask for.
    pub k: u32,
    /// Largest share of children that may be suppressed to reach `k` (0.0–1.0).
    pub max_suppression: f64,
    /// Every family's combined signature (its children's signatures together) is shared by
    /// at least this many families, so siblings cannot single a family out.
    pub family_k: u32,
    /// Age-band levels, finest first, each a list of inclusive `[from, to]` years; a last
    /// level "all ages" is implicit.
    pub age_bands: Vec<Vec<(u32, u32)>>,
    /// Region → larger area; empty: the hierarchy goes from region straight to national.
    pub areas: BTreeMap<String, String>,
    /// The indicator columns, in order.
    pub indicators: Vec<String>,
    /// The allowed (coded) values of each indicator.
    pub values: BTreeMap<String, Vec<String>>,
    /// How long export folders in `state_dir/exports` are kept before the sweep deletes them.
    pub keep: IsoDuration,
}

/// Column names of the export that an indicator may not take.
pub const EXPORT_FIXED_COLUMNS: &[&str] = &[
    "child",
    "family",
    "wave",
    "months_since_start",
    "episode_kind",
    "start_period",
    "age_band_at_start",
    "sex",
    "region",
    "moves_so_far",
    "outcome",
    "mode",
    "flags",
    "plan",
    "plan_status",
    "safety_improved",
    "professionals",
];

pub(super) fn validate_export(
    is: &mut Issues,
    raw: RawExport,
    municipalities: &BTreeMap<String, Municipality>,
    signals: &Catalog,
) -> ExportConfig {
    if raw.k == 0 {
        is.push("export.k", "must be at least 1");
    }
    if !(0.0..=1.0).contains(&raw.max_suppression) || raw.max_suppression.is_nan() {
        is.push(
            "export.max_suppression",
            "a share between 0.0 and 1.0, e.g. 0.05",
        );
    }
    if raw.family_k == 0 {
        is.push("export.family_k", "must be at least 1");
    }
    let mut age_bands = Vec::new();
    if raw.age_bands.is_empty() {
        is.push("export.age_bands", "at least one level of bands is needed");
    }
    for (l, level) in raw.age_bands.iter().enumerate() {
        let key = format!("export.age_bands[{l}]");
        let mut bands: Vec<(u32, u32)> = level.iter().map(|b| (b[0], b[1])).collect();
        bands.sort();
        if bands.is_empty() {
            is.push(&key, "a level needs at least one band");
        }
        for (i, (from, to)) in bands.iter().enumerate() {
            if from > to {
                is.push(format!("{key}[{i}]"), "from is after to");
            }
            if i > 0 && bands[i - 1].1 >= *from {
                is.push(format!("{key}[{i}]"), "overlaps the band before it");
            }
        }
        age_bands.push(bands);
    }
    // Each level must be a coarsening of the one before: every finer band lies inside one
    // band of the next level.
    for l in 1..age_bands.len() {
        for (from, to) in &age_bands[l - 1] {
            if !age_bands[l].iter().any(|(f, t)| f <= from && to <= t) {
                is.push(
                    format!("export.age_bands[{l}]"),
                    format!("does not contain the band {from}-{to} of the level before"),
                );
            }
        }
    }
    if !raw.areas.is_empty() {
        for m in municipalities.values() {
            if !raw.areas.contains_key(&m.region) {
                is.push(
                    "export.areas",
                    format!("region {} (of {}) has no area", m.region, m.code),
                );
            }
        }
    }
    for (region, area) in &raw.areas {
        if !crate::types::is_code(&area.to_lowercase().replace('-', "_")) || area == "national" {
            is.push(
                format!("export.areas.{region}"),
                "expected a short code such as \"noord-west\" (not \"national\")",
            );
        }
    }
    let mut seen = BTreeSet::new();
    for (i, ind) in raw.indicators.iter().enumerate() {
        let key = format!("export.indicators[{i}]");
        if !crate::types::is_code(ind) {
            is.push(&key, "expected a code such as wellbeing");
        } else if EXPORT_FIXED_COLUMNS.contains(&ind.as_str()) {
            is.push(&key, format!("`{ind}` is already a column of the export"));
        } else if !seen.insert(ind.clone()) {
            is.push(&key, format!("`{ind}` is listed twice"));
        }
        match raw.values.get(ind) {
            None => is.push(
                format!("export.values.{ind}"),
                "every indicator needs its list of allowed values",
            ),
            Some(v) if v.is_empty() => {
                is.push(format!("export.values.{ind}"), "at least one allowed value")
            }
            Some(v) => {
                if let Err(m) = export_values_match(signals, ind, v) {
                    is.push(format!("export.values.{ind}"), m);
                }
                for (j, value) in v.iter().enumerate() {
                    let ok = !value.is_empty()
                        && value.len() <= 40
                        && value
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b"_-./".contains(&b));
                    if !ok {
                        is.push(
                            format!("export.values.{ind}[{j}]"),
                            "expected a short code (letters, digits, _ - . /)",
                        );
                    }
                }
            }
        }
    }
    for name in raw.values.keys() {
        if !raw.indicators.contains(name) {
            is.push(
                format!("export.values.{name}"),
                "not listed in export.indicators",
            );
        }
    }
    let keep = is
        .duration("export.keep", &raw.keep)
        .unwrap_or(IsoDuration::days(30));
    if keep.is_zero() {
        is.push("export.keep", "must be longer than zero");
    }
    ExportConfig {
        keep,
        k: raw.k,
        max_suppression: raw.max_suppression,
        family_k: raw.family_k,
        age_bands,
        areas: raw.areas,
        indicators: raw.indicators,
        values: raw.values,
    }
}

/// The codes an indicator can take in `followup.csv`: its enum values, `true`/`false`, or
/// every whole number of its scale (values are rounded to whole numbers on export). `Err`
/// says why the indicator cannot be an export column.
pub fn export_codes_of(signals: &Catalog, indicator: &str) -> Result<Vec<String>, String> {
    let Some(ind) = signals.indicators.get(indicator) else {
        return Err(format!("`{indicator}` is not one of the [[indicators]]"));
    };
    if ind.applies_to != Scope::Child {
        return Err(format!(
            "`{indicator}` applies to {}; the export has one row per child, so only child indicators can be columns",
            ind.applies_to.code()
        ));
    }
    match &ind.kind {
        IndicatorType::Bool => Ok(vec!["true".into(), "false".into()]),
        IndicatorType::Scale { min, max, .. } => {
            if min.fract() != 0.0 || max.fract() != 0.0 || max - min > 100.0 {
                return Err(format!(
                    "`{indicator}` is a scale from {min} to {max}; an exported scale needs whole-number bounds at most 100 apart"
                ));
            }
            let (lo, hi) = (*min as i64, *max as i64);
            Ok((lo..=hi).map(|n| n.to_string()).collect())
        }
        IndicatorType::Count => Err(format!(
            "`{indicator}` is a count without a fixed list of values; it cannot be an export column"
        )),
        IndicatorType::Enum {
            values, multiple, ..
        } => {
            if *multiple {
                Err(format!(
                    "`{indicator}` takes several values at once; it cannot be an export column"
                ))
            } else {
                Ok(values.clone())
            }
        }
    }
}

/// The codebook of an indicator must list exactly the values the indicator can take, so
/// that no recorded observation can stop an export.
pub(super) fn export_values_match(
    signals: &Catalog,
    indicator: &str,
    listed: &[String],
) -> Result<(), String> {
    let codes = export_codes_of(signals, indicator)?;
    let want: BTreeSet<&str> = codes.iter().map(String::as_str).collect();
    let have: BTreeSet<&str> = listed.iter().map(String::as_str).collect();
    let missing: Vec<&str> = want.difference(&have).copied().collect();
    let unknown: Vec<&str> = have.difference(&want).copied().collect();
    if missing.is_empty() && unknown.is_empty() {
        return Ok(());
    }
    let mut m = format!(
        "does not match the indicator `{indicator}` (its values: {})",
        codes.join(", ")
    );
    if !unknown.is_empty() {
        m.push_str(&format!("; not values of it: {}", unknown.join(", ")));
    }
    if !missing.is_empty() {
        m.push_str(&format!("; missing: {}", missing.join(", ")));
    }
    Err(m)
}
