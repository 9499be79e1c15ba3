//! k-anonymity over children, not rows: the generalisation hierarchies, the search over
//! their lattice, the suppression decision and the risk figures of a research export.
//! Pure: the pipeline in `crate::export` gathers one [`ChildFacts`] per child and asks
//! [`decide`] how far to generalise and whom to leave out.
//!
//! A child's signature is everything fixed about the child plus the shape of its
//! trajectory: age band at start, sex, region, episode kind, start period, number of rows
//! and moves (top-coded). Five rows of one child are one child, never five.

use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

/// Sex codes as exported; the index is what [`ChildFacts::sex`] holds.
pub const SEX_CODES: &[&str] = &["f", "m", "x", "unknown"];
/// Episode kinds as exported; the index is what [`ChildFacts::episode_kind`] holds.
pub const EPISODE_CODES: &[&str] = &["shelter_exit", "case_closed"];
/// Moves are top-coded: 0, 1, 2, 3+.
pub const MOVES_TOP: u32 = 3;

/// `moves_so_far` as exported.
pub fn moves_code(moves: u32) -> String {
    if moves >= MOVES_TOP {
        format!("{MOVES_TOP}+")
    } else {
        moves.to_string()
    }
}

/// Moves so far at an instant: the responsibilities of a family that started on or before
/// `at`, minus the first. `starts` are the `valid_from` of a family's responsibility rows.
pub fn moves_so_far(starts: &[i64], at: i64) -> u32 {
    let n = starts.iter().filter(|s| **s <= at).count();
    u32::try_from(n.saturating_sub(1)).unwrap_or(u32::MAX)
}

/// The generalisation hierarchies of the three recodable quasi-identifiers.
#[derive(Clone, Debug)]
pub struct Hierarchy {
    /// Age-band levels, finest first; a last level "all ages" is implicit.
    pub age_bands: Vec<Vec<(u32, u32)>>,
    /// Region codes known to this export (interned: [`ChildFacts::region`] indexes it).
    pub regions: Vec<String>,
    /// Region → area; empty: region goes straight to national.
    pub areas: BTreeMap<String, String>,
}

/// A point in the lattice: how far each quasi-identifier is generalised (0 = as recorded).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct Levels {
    pub age: usize,
    pub region: usize,
    pub period: usize,
}

impl Levels {
    pub fn height(&self) -> usize {
        self.age + self.region + self.period
    }
}

impl Hierarchy {
    pub fn age_levels(&self) -> usize {
        self.age_bands.len() + 1
    }

    pub fn region_levels(&self) -> usize {
        if self.areas.is_empty() { 2 } else { 3 }
    }

    pub const PERIOD_LEVELS: usize = 3;

    fn age_span(&self) -> (u32, u32) {
        let first = self.age_bands.first();
        let lo = first.and_then(|l| l.iter().map(|b| b.0).min()).unwrap_or(0);
        let hi = first.and_then(|l| l.iter().map(|b| b.1).max()).unwrap_or(0);
        (lo, hi)
    }

    /// The band index of `age` at `level`; `None` when no band of the finest level holds it
    /// (such a child is suppressed at every level).
    pub fn age_index(&self, level: usize, age: u32) -> Option<usize> {
        let finest = self.age_bands.first()?;
        finest.iter().position(|(f, t)| *f <= age && age <= *t)?;
        match self.age_bands.get(level) {
            Some(bands) => bands.iter().position(|(f, t)| *f <= age && age <= *t),
            None => Some(0),
        }
    }

    pub fn age_label(&self, level: usize, index: usize) -> String {
        let (f, t) = match self.age_bands.get(level) {
            Some(bands) => bands.get(index).copied().unwrap_or_default(),
            None => self.age_span(),
        };
        format!("{f}-{t}")
    }

    /// Every band label at `level`, for the codebook.
    pub fn age_labels(&self, level: usize) -> Vec<String> {
        match self.age_bands.get(level) {
            Some(bands) => (0..bands.len()).map(|i| self.age_label(level, i)).collect(),
            None => vec![self.age_label(level, 0)],
        }
    }

    pub fn region_label(&self, level: usize, region: usize) -> String {
        let code = self.regions.get(region).map(String::as_str).unwrap_or("");
        match (level, self.areas.is_empty()) {
            (0, _) => code.to_string(),
            (1, false) => self
                .areas
                .get(code)
                .cloned()
                .unwrap_or_else(|| "national".into()),
            _ => "national".into(),
        }
    }

    pub fn period_label(level: usize, year: i32, half: u8) -> String {
        match level {
            0 => format!("{year}-H{half}"),
            1 => year.to_string(),
            _ => "all".into(),
        }
    }

    /// What each level means, for the manifest.
    pub fn describe(&self, levels: Levels) -> serde_json::Value {
        let age = match self.age_bands.get(levels.age) {
            Some(_) => format!("bands {}", self.age_labels(levels.age).join(", ")),
            None => format!("all ages ({})", self.age_label(levels.age, 0)),
        };
        let region = match (levels.region, self.areas.is_empty()) {
            (0, _) => "region",
            (1, false) => "area",
            _ => "national",
        };
        let period = ["half_year", "year", "all"][levels.period.min(2)];
        serde_json::json!({
            "age_band_at_start": {"level": levels.age, "of": self.age_levels() - 1, "applied": age},
            "region": {"level": levels.region, "of": self.region_levels() - 1, "applied": region},
            "start_period": {"level": levels.period, "of": Self::PERIOD_LEVELS - 1, "applied": period},
            "moves_so_far": {"applied": format!("top-coded at {MOVES_TOP}+")},
            "months_since_start": {"applied": "whole months, top-coded at the end of the family's plan"},
        })
    }
}

/// What is known about one child before anonymisation (all small codes; no identity).
#[derive(Clone, Copy, Debug)]
pub struct ChildFacts {
    /// Index of the child's family; children of one family must be adjacent.
    pub family: u32,
    /// Completed years at the start of the episode.
    pub age: u32,
    pub sex: u8,
    pub region: u16,
    pub episode_kind: u8,
    pub year: i32,
    pub half: u8,
    /// The child's rows in this export (its trajectory length).
    pub rows: u32,
    /// Moves by the child's last exported check-in (top-coded in the signature).
    pub moves: u32,
}

/// Why a child was left out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// The age at start lies outside every configured band.
    AgeOutsideBands,
    /// Fewer than k children share the signature.
    ClassSmallerThanK,
    /// The family's combined signature (its children together) is shared by fewer than
    /// `family_k` families.
    FamilySignatureRare,
}

#[derive(Clone, Copy, Debug)]
pub struct Params {
    pub k: u32,
    pub family_k: u32,
    pub max_suppression: f64,
}

/// Risk figures over what is kept: risk = 1 / class size.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Risk {
    pub highest: f64,
    pub average: f64,
    pub smallest_class: u32,
    pub classes: usize,
}

/// The outcome of [`decide`].
#[derive(Clone, Debug)]
pub struct Decision {
    pub levels: Levels,
    /// Per child: `None` kept, else why it was suppressed.
    pub suppressed: Vec<Option<Reason>>,
    pub why: BTreeMap<Reason, usize>,
    pub children_risk: Risk,
    pub family_risk: Risk,
    /// Lattice nodes evaluated.
    pub nodes_tried: usize,
}

impl Decision {
    pub fn suppressed_count(&self) -> usize {
        self.why.values().sum()
    }
    pub fn kept(&self, child: usize) -> bool {
        self.suppressed.get(child).is_some_and(Option::is_none)
    }
}

/// Why no point of the lattice reaches k within the suppression limit.
#[derive(Clone, Debug, thiserror::Error)]
#[error(
    "k = {k} cannot be reached: even the best generalisation ({levels}) would suppress {suppressed} of {children} children ({pct:.1}%), more than export.max_suppression allows ({allowed} children, {max_pct:.1}%); nothing was written. Collect more children, widen the period (--from/--to), or lower k (not below export.k)"
)]
pub struct Infeasible {
    pub k: u32,
    pub levels: String,
    pub suppressed: usize,
    pub children: usize,
    pub allowed: usize,
    pub pct: f64,
    pub max_pct: f64,
}

/// The signature of a child at a lattice point, packed in 64 bits; `None` when the child
/// is outside every age band.
fn key(h: &Hierarchy, area_of: &[u16], c: &ChildFacts, l: Levels) -> Option<u64> {
    let age = h.age_index(l.age, c.age)? as u64;
    let region = match (l.region, h.areas.is_empty()) {
        (0, _) => u64::from(c.region) + 1,
        (1, false) => u64::from(area_of.get(usize::from(c.region)).copied().unwrap_or(0)) + 1,
        _ => 0,
    };
    let period = match l.period {
        0 => (c.year.max(0) as u64) * 2 + u64::from(c.half),
        1 => c.year.max(0) as u64,
        _ => 0,
    };
    Some(
        (age & 0xff)
            | (u64::from(c.sex) & 0xf) << 8
            | (u64::from(c.episode_kind) & 0xf) << 12
            | (region & 0xffff) << 16
            | (period & 0xffff) << 32
            | (u64::from(c.rows.min(4095))) << 48
            | (u64::from(c.moves.min(MOVES_TOP))) << 60,
    )
}

struct Evaluation {
    suppressed: Vec<Option<Reason>>,
    count: usize,
    keys: Vec<u64>,
}

fn evaluate(
    h: &Hierarchy,
    area_of: &[u16],
    children: &[ChildFacts],
    p: Params,
    l: Levels,
) -> Evaluation {
    let mut suppressed: Vec<Option<Reason>> = vec![None; children.len()];
    let mut keys = vec![0u64; children.len()];
    for (i, c) in children.iter().enumerate() {
        match key(h, area_of, c, l) {
            Some(k) => keys[i] = k,
            None => suppressed[i] = Some(Reason::AgeOutsideBands),
        }
    }
    loop {
        let mut changed = false;
        // Children whose class is too small.
        let mut counts: HashMap<u64, u32> = HashMap::new();
        for (i, k) in keys.iter().enumerate() {
            if suppressed[i].is_none() {
                *counts.entry(*k).or_default() += 1;
            }
        }
        for (i, k) in keys.iter().enumerate() {
            if suppressed[i].is_none() && counts.get(k).copied().unwrap_or(0) < p.k {
                suppressed[i] = Some(Reason::ClassSmallerThanK);
                changed = true;
            }
        }
        // Families whose combined signature is too rare.
        let fams = family_signatures(children, &keys, &suppressed);
        let mut fcounts: HashMap<&[u64], u32> = HashMap::new();
        for (_, sig) in &fams {
            *fcounts.entry(sig.as_slice()).or_default() += 1;
        }
        let rare: Vec<(usize, usize)> = fams
            .iter()
            .filter(|(_, sig)| fcounts.get(sig.as_slice()).copied().unwrap_or(0) < p.family_k)
            .map(|(range, _)| *range)
            .collect();
        for (from, to) in rare {
            for s in &mut suppressed[from..to] {
                if s.is_none() {
                    *s = Some(Reason::FamilySignatureRare);
                    changed = true;
                }
            }
        }
        if !changed {
            break;
        }
    }
    let count = suppressed.iter().filter(|s| s.is_some()).count();
    Evaluation {
        suppressed,
        count,
        keys,
    }
}

/// Per family with kept children: its children's index range and sorted kept keys.
fn family_signatures(
    children: &[ChildFacts],
    keys: &[u64],
    suppressed: &[Option<Reason>],
) -> Vec<((usize, usize), Vec<u64>)> {
    let mut out = Vec::new();
    let mut start = 0;
    while start < children.len() {
        let fam = children[start].family;
        let mut end = start;
        while end < children.len() && children[end].family == fam {
            end += 1;
        }
        let mut sig: Vec<u64> = (start..end)
            .filter(|i| suppressed[*i].is_none())
            .map(|i| keys[i])
            .collect();
        if !sig.is_empty() {
            sig.sort_unstable();
            out.push(((start, end), sig));
        }
        start = end;
    }
    out
}

fn risk_of(sizes: impl Iterator<Item = u32>) -> Risk {
    let mut classes: HashMap<u32, usize> = HashMap::new();
    let mut n = 0usize;
    let mut sum = 0f64;
    let mut smallest = u32::MAX;
    let mut highest = 0f64;
    for s in sizes {
        n += 1;
        sum += 1.0 / f64::from(s);
        smallest = smallest.min(s);
        highest = f64::max(highest, 1.0 / f64::from(s));
        *classes.entry(s).or_default() += 1;
    }
    Risk {
        highest,
        average: if n == 0 { 0.0 } else { sum / n as f64 },
        smallest_class: if n == 0 { 0 } else { smallest },
        classes: classes
            .iter()
            .map(|(size, members)| members / *size as usize)
            .sum(),
    }
}

/// Finds the least generalisation (lowest lattice height; among equals, the fewest
/// children suppressed) at which every kept child shares its signature with at least
/// `k - 1` others and every kept family its combined signature with `family_k - 1` others,
/// suppressing at most `max_suppression` of the children. Global recoding: one level per
/// quasi-identifier for the whole export.
pub fn decide(h: &Hierarchy, children: &[ChildFacts], p: Params) -> Result<Decision, Infeasible> {
    let area_index: BTreeMap<&str, u16> = h
        .areas
        .values()
        .map(String::as_str)
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .zip(0u16..)
        .collect();
    let area_of: Vec<u16> = h
        .regions
        .iter()
        .map(|r| {
            h.areas
                .get(r)
                .and_then(|a| area_index.get(a.as_str()))
                .copied()
                .unwrap_or(u16::MAX - 1)
        })
        .collect();
    let allowed = (p.max_suppression * children.len() as f64).floor() as usize;
    let mut nodes = Vec::new();
    for age in 0..h.age_levels() {
        for region in 0..h.region_levels() {
            for period in 0..Hierarchy::PERIOD_LEVELS {
                nodes.push(Levels {
                    age,
                    region,
                    period,
                });
            }
        }
    }
    nodes.sort_by_key(|l| (l.height(), l.age, l.region, l.period));
    let mut best: Option<(Levels, Evaluation)> = None;
    let mut closest: Option<(Levels, usize)> = None;
    let mut tried = 0;
    let mut i = 0;
    while i < nodes.len() {
        let height = nodes[i].height();
        while i < nodes.len() && nodes[i].height() == height {
            let l = nodes[i];
            i += 1;
            tried += 1;
            let e = evaluate(h, &area_of, children, p, l);
            if closest.is_none_or(|(_, c)| e.count < c) {
                closest = Some((l, e.count));
            }
            if e.count <= allowed && best.as_ref().is_none_or(|(_, b)| e.count < b.count) {
                best = Some((l, e));
            }
        }
        if best.is_some() {
            break;
        }
    }
    let Some((levels, e)) = best else {
        let (l, c) = closest.unwrap_or((
            Levels {
                age: 0,
                region: 0,
                period: 0,
            },
            children.len(),
        ));
        let n = children.len().max(1) as f64;
        return Err(Infeasible {
            k: p.k,
            levels: format!(
                "age {}, region {}, start period {}",
                ["as banded", "wider bands", "all", "all"][l.age.min(3)],
                ["region", "area", "national"][if h.areas.is_empty() && l.region == 1 {
                    2
                } else {
                    l.region.min(2)
                }],
                ["half-year", "year", "all"][l.period.min(2)]
            ),
            suppressed: c,
            children: children.len(),
            allowed,
            pct: 100.0 * c as f64 / n,
            max_pct: 100.0 * p.max_suppression,
        });
    };
    let mut why = BTreeMap::new();
    for r in e.suppressed.iter().flatten() {
        *why.entry(*r).or_default() += 1;
    }
    let mut counts: HashMap<u64, u32> = HashMap::new();
    for (i, k) in e.keys.iter().enumerate() {
        if e.suppressed[i].is_none() {
            *counts.entry(*k).or_default() += 1;
        }
    }
    let children_risk = risk_of(
        e.keys
            .iter()
            .enumerate()
            .filter(|(i, _)| e.suppressed[*i].is_none())
            .map(|(_, k)| counts.get(k).copied().unwrap_or(1)),
    );
    let fams = family_signatures(children, &e.keys, &e.suppressed);
    let mut fcounts: HashMap<&[u64], u32> = HashMap::new();
    for (_, sig) in &fams {
        *fcounts.entry(sig.as_slice()).or_default() += 1;
    }
    let family_risk = risk_of(
        fams.iter()
            .map(|(_, sig)| fcounts.get(sig.as_slice()).copied().unwrap_or(1)),
    );
    Ok(Decision {
        levels,
        suppressed: e.suppressed,
        why,
        children_risk,
        family_risk,
        nodes_tried: tried,
    })
}

// ---- the codebook ---------------------------------------------------------------------------

/// How a column's values are checked.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ColumnType {
    /// 32 lowercase hex digits (128 bits of HMAC-SHA256).
    Pseudonym,
    /// A whole number in `[min, max]`.
    Integer { min: i64, max: i64 },
    /// One of `values`.
    Code { values: Vec<String> },
    /// Zero or more of `values`, joined by `;` (empty: none).
    Codes { values: Vec<String> },
}

#[derive(Clone, Debug, Serialize)]
pub struct Column {
    pub name: String,
    pub meaning: String,
    #[serde(flatten)]
    pub kind: ColumnType,
}

/// Every column of `followup.csv`, its meaning and allowed values; also the gate every
/// value passes before it is written.
#[derive(Clone, Debug, Serialize)]
pub struct Codebook {
    pub columns: Vec<Column>,
}

/// A value that is not in its column's codebook entry. Names the column, never the value.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
#[error("a value of column `{column}` is not allowed by the codebook ({why}); nothing was written")]
pub struct NotInCodebook {
    pub column: String,
    pub why: &'static str,
}

fn is_hex32(s: &str) -> bool {
    s.len() == 32
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

impl Codebook {
    pub fn header(&self) -> String {
        self.columns
            .iter()
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Checks one row (in column order) against the codebook.
    pub fn check_row<S: AsRef<str>>(&self, row: &[S]) -> Result<(), NotInCodebook> {
        if row.len() != self.columns.len() {
            return Err(NotInCodebook {
                column: "(row)".into(),
                why: "wrong number of columns",
            });
        }
        for (c, v) in self.columns.iter().zip(row) {
            let v = v.as_ref();
            let bad = |why| {
                Err(NotInCodebook {
                    column: c.name.clone(),
                    why,
                })
            };
            match &c.kind {
                ColumnType::Pseudonym => {
                    if !is_hex32(v) {
                        return bad("not a pseudonym");
                    }
                }
                ColumnType::Integer { min, max } => match v.parse::<i64>() {
                    Ok(n) if n >= *min && n <= *max && n.to_string() == v => {}
                    _ => return bad("not a whole number in range"),
                },
                ColumnType::Code { values } => {
                    if !values.iter().any(|a| a == v) {
                        return bad("not one of the listed values");
                    }
                }
                ColumnType::Codes { values } => {
                    if !v.is_empty() && !v.split(';').all(|p| values.iter().any(|a| a == p)) {
                        return bad("not a list of the listed codes");
                    }
                }
            }
        }
        Ok(())
    }

    /// `codebook.md`.
    pub fn markdown(&self) -> String {
        let mut s = String::from(
            "# Codebook of followup.csv\n\nOne row per child per check-in, in random order. \
             Comma-separated, UTF-8, one header line; no value contains a comma or a quote.\n\n\
             | column | meaning | type | allowed values |\n|---|---|---|---|\n",
        );
        for c in &self.columns {
            let (kind, values) = match &c.kind {
                ColumnType::Pseudonym => (
                    "pseudonym".to_string(),
                    "32 lowercase hex digits".to_string(),
                ),
                ColumnType::Integer { min, max } => {
                    ("integer".to_string(), format!("{min} to {max}"))
                }
                ColumnType::Code { values } => ("code".to_string(), show_values(values)),
                ColumnType::Codes { values } => (
                    "codes (`;`-separated, empty: none)".to_string(),
                    if values.is_empty() {
                        "(none defined yet: always empty)".to_string()
                    } else {
                        show_values(values)
                    },
                ),
            };
            s.push_str(&format!(
                "| `{}` | {} | {} | {} |\n",
                c.name, c.meaning, kind, values
            ));
        }
        s
    }
}

fn show_values(values: &[String]) -> String {
    values
        .iter()
        .map(|v| {
            if v.is_empty() {
                "(empty: not observed)".to_string()
            } else {
                format!("`{v}`")
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn hierarchy() -> Hierarchy {
        Hierarchy {
            age_bands: vec![vec![(0, 3), (4, 11), (12, 17)], vec![(0, 11), (12, 17)]],
            regions: vec!["VR13".into(), "VR17".into()],
            areas: [("VR13", "noord-west"), ("VR17", "zuid-west")]
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect(),
        }
    }

    fn child(family: u32, age: u32, sex: u8, region: u16, rows: u32) -> ChildFacts {
        ChildFacts {
            family,
            age,
            sex,
            region,
            episode_kind: 0,
            year: 2027,
            half: 1,
            rows,
            moves: 0,
        }
    }

    fn params(k: u32) -> Params {
        Params {
            k,
            family_k: 1,
            max_suppression: 0.05,
        }
    }

    #[test]
    fn export_counts_children_not_rows() {
        // One child with 5 rows is one child: with k = 2 it is alone in its class.
        let mut cs: Vec<ChildFacts> = (0..40).map(|i| child(i, 5, 0, 0, 8)).collect();
        cs.push(child(40, 5, 0, 0, 5));
        let d = decide(&hierarchy(), &cs, params(2)).unwrap();
        assert!(!d.kept(40));
        assert_eq!(d.why.get(&Reason::ClassSmallerThanK), Some(&1));
        assert_eq!(d.levels.height(), 0);
    }

    #[test]
    fn export_generalises_before_suppressing_too_many() {
        // 20 girls aged 5 in VR13, 20 aged 7 in VR17: at k = 30 only "all regions, 4-11"
        // (or wider) works, at no suppression.
        let mut cs: Vec<ChildFacts> = (0..20).map(|i| child(i, 5, 0, 0, 8)).collect();
        cs.extend((20..40).map(|i| child(i, 7, 0, 1, 8)));
        let d = decide(&hierarchy(), &cs, params(30)).unwrap();
        assert_eq!(d.suppressed_count(), 0);
        assert_eq!(d.levels.region, 2);
        assert_eq!(d.children_risk.smallest_class, 40);
    }

    #[test]
    fn export_rare_family_is_suppressed_as_a_whole() {
        // 30 one-child families and one family of two with the same child signature: the
        // pair is unique as a family.
        let mut cs: Vec<ChildFacts> = (0..30).map(|i| child(i, 5, 0, 0, 8)).collect();
        cs.push(child(30, 5, 0, 0, 8));
        cs.push(child(30, 5, 0, 0, 8));
        let p = Params {
            k: 5,
            family_k: 2,
            max_suppression: 0.1,
        };
        let d = decide(&hierarchy(), &cs, p).unwrap();
        assert!(!d.kept(30) && !d.kept(31));
        assert_eq!(d.why.get(&Reason::FamilySignatureRare), Some(&2));
        assert!(d.family_risk.highest <= 0.5);
    }

    #[test]
    fn export_impossible_k_is_infeasible() {
        let cs: Vec<ChildFacts> = (0..3).map(|i| child(i, 5, 0, 0, 8)).collect();
        let e = decide(&hierarchy(), &cs, params(10)).unwrap_err();
        assert_eq!(e.suppressed, 3);
        assert!(e.to_string().contains("nothing was written"));
    }

    #[test]
    fn export_moves_and_codebook() {
        assert_eq!(moves_so_far(&[10, 20, 30], 25), 1);
        assert_eq!(moves_so_far(&[10], 5), 0);
        assert_eq!(moves_code(7), "3+");
        let cb = Codebook {
            columns: vec![
                Column {
                    name: "wellbeing".into(),
                    meaning: "m".into(),
                    kind: ColumnType::Code {
                        values: vec!["good".into(), "".into()],
                    },
                },
                Column {
                    name: "wave".into(),
                    meaning: "m".into(),
                    kind: ColumnType::Integer { min: 0, max: 9 },
                },
            ],
        };
        assert!(cb.check_row(&["good", "3"]).is_ok());
        assert!(cb.check_row(&["", "0"]).is_ok());
        let e = cb.check_row(&["Fatima lives at", "3"]).unwrap_err();
        assert_eq!(e.column, "wellbeing");
        assert!(!e.to_string().contains("Fatima"));
        assert!(cb.check_row(&["good", "03"]).is_err());
        assert!(cb.check_row(&["good", "10"]).is_err());
    }
}
