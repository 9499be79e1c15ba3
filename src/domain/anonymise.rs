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
    /// Plan codes known to this export (interned: [`ChildFacts::plan`] indexes it).
    pub plans: Vec<String>,
}

/// A point in the lattice: how far each quasi-identifier is generalised (0 = as recorded).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
pub struct Levels {
    pub age: usize,
    pub region: usize,
    pub period: usize,
    /// The plan's attributes: 0 plan code, status with its closing reason and the
    /// evaluation's codes; 1 plan code and running/ended only; 2 none of them.
    #[serde(default)]
    pub plan: usize,
}

impl Levels {
    pub fn height(&self) -> usize {
        self.age + self.region + self.period + self.plan
    }
}

/// Plan status codes as exported at plan level 0; the index is what [`ChildFacts::status`]
/// holds. `enrolled_in_error` is absent: such families are never exported.
pub const STATUS_CODES: &[&str] = &[
    "running",
    "completed",
    "closed_early:family_moved_abroad",
    "closed_early:family_declined_aftercare",
    "closed_early:transferred_to_specialist_care",
    "closed_early:taken_over_by_safety_chain",
    "closed_early:family_deceased",
];
/// `safety_improved` as exported; index 0 (empty) is "not evaluated".
pub const SAFETY_EXPORT: &[&str] = &["", "yes", "partly", "no"];
/// `professionals` as exported; index 0 (empty) is "not evaluated".
pub const PROFESSIONALS_EXPORT: &[&str] = &["", "0", "1-2", "3-5", "6+"];

impl Hierarchy {
    pub fn age_levels(&self) -> usize {
        self.age_bands.len() + 1
    }

    pub fn region_levels(&self) -> usize {
        if self.areas.is_empty() { 2 } else { 3 }
    }

    pub const PERIOD_LEVELS: usize = 3;
    pub const PLAN_LEVELS: usize = 3;

    /// The plan code column at `level`.
    pub fn plan_label(&self, level: usize, plan: u8) -> String {
        match level {
            0 | 1 => self
                .plans
                .get(usize::from(plan))
                .cloned()
                .unwrap_or_default(),
            _ => "all".into(),
        }
    }

    /// The plan status column at `level`.
    pub fn status_label(level: usize, status: u8) -> String {
        match (level, status) {
            (0, s) => STATUS_CODES
                .get(usize::from(s))
                .copied()
                .unwrap_or("")
                .to_string(),
            (1, 0) => "running".into(),
            (1, _) => "ended".into(),
            _ => "all".into(),
        }
    }

    /// The evaluation columns at `level`: only at level 0, else empty.
    pub fn evaluation_labels(level: usize, safety: u8, professionals: u8) -> (String, String) {
        if level == 0 {
            (
                SAFETY_EXPORT
                    .get(usize::from(safety))
                    .copied()
                    .unwrap_or("")
                    .into(),
                PROFESSIONALS_EXPORT
                    .get(usize::from(professionals))
                    .copied()
                    .unwrap_or("")
                    .into(),
            )
        } else {
            (String::new(), String::new())
        }
    }

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
        let plan = [
            "plan code, status with closing reason, evaluation codes",
            "plan code, running/ended",
            "all",
        ][levels.plan.min(2)];
        serde_json::json!({
            "plan": {"level": levels.plan, "of": Self::PLAN_LEVELS - 1, "applied": plan},
            "age_band_at_start": {"level": levels.age, "of": self.age_levels() - 1, "applied": age},
            "region": {"level": levels.region, "of": self.region_levels() - 1, "applied": region},
            "start_period": {"level": levels.period, "of": Self::PERIOD_LEVELS - 1, "applied": period},
            "moves_so_far": {"applied": format!("the child's moves by its last exported check-in, the same on each of its rows (the month of a move is not exported), top-coded at {MOVES_TOP}+")},
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
    /// Index into [`Hierarchy::plans`].
    pub plan: u8,
    /// Index into [`STATUS_CODES`].
    pub status: u8,
    /// Index into [`SAFETY_EXPORT`].
    pub safety: u8,
    /// Index into [`PROFESSIONALS_EXPORT`].
    pub professionals: u8,
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
    /// Together with what the study received before, the child (or its family) would be
    /// shared by fewer than k children (`family_k` families).
    StudyUnionTooRare,
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

/// Why no point of the lattice reaches k within the suppression limit. The message tells
/// the researcher that k cannot be reached and what to try, never a count: a count below k
/// is exactly what k-anonymity hides.
#[derive(Clone, Debug, thiserror::Error)]
#[error(
    "k = {k} cannot be reached for this selection: even the best generalisation ({levels}) would leave out more children than export.max_suppression allows{study}; nothing was written. Collect more children, widen the period (--from/--to), or lower k (not below export.k)"
)]
pub struct Infeasible {
    pub k: u32,
    pub levels: String,
    /// Non-empty when the study's earlier exports were the limit.
    pub study: String,
}

/// The quasi-identifiers of a child at a lattice point, packed in 128 bits (without its
/// number of rows and moves); `None` when the child is outside every age band.
pub fn qi_key(h: &Hierarchy, area_of: &[u16], c: &ChildFacts, l: Levels) -> Option<u128> {
    let age = h.age_index(l.age, c.age)? as u128;
    let region = match (l.region, h.areas.is_empty()) {
        (0, _) => u128::from(c.region) + 1,
        (1, false) => u128::from(area_of.get(usize::from(c.region)).copied().unwrap_or(0)) + 1,
        _ => 0,
    };
    let period = match l.period {
        0 => (c.year.max(0) as u128) * 2 + u128::from(c.half),
        1 => c.year.max(0) as u128,
        _ => 0,
    };
    let (plan, status, eval) = match l.plan {
        0 => (
            u128::from(c.plan) + 1,
            u128::from(c.status) + 1,
            u128::from(c.safety) | u128::from(c.professionals) << 4,
        ),
        1 => (u128::from(c.plan) + 1, if c.status == 0 { 1 } else { 2 }, 0),
        _ => (0, 0, 0),
    };
    Some(
        (age & 0xff)
            | (u128::from(c.sex) & 0xf) << 8
            | (u128::from(c.episode_kind) & 0xf) << 12
            | (region & 0xffff) << 16
            | (period & 0xffff) << 32
            | (plan & 0xff) << 48
            | (status & 0xff) << 56
            | (eval & 0xff) << 64,
    )
}

/// The signature of a child within one export: its quasi-identifiers, rows and moves.
fn key(h: &Hierarchy, area_of: &[u16], c: &ChildFacts, l: Levels) -> Option<u128> {
    qi_key(h, area_of, c, l).map(|q| {
        q | (u128::from(c.rows.min(4095))) << 80 | (u128::from(c.moves.min(MOVES_TOP))) << 92
    })
}

/// Region index → area index, for [`qi_key`].
pub fn area_index(h: &Hierarchy) -> Vec<u16> {
    let area_index: BTreeMap<&str, u16> = h
        .areas
        .values()
        .map(String::as_str)
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .zip(0u16..)
        .collect();
    h.regions
        .iter()
        .map(|r| {
            h.areas
                .get(r)
                .and_then(|a| area_index.get(a.as_str()))
                .copied()
                .unwrap_or(u16::MAX - 1)
        })
        .collect()
}

/// A child's signature class: its 128-bit key, or (in the lattice search, where two
/// vectors of them are alive per child) a dense number standing for one.
trait Class: Copy + Eq + std::hash::Hash + Ord {}
impl<K: Copy + Eq + std::hash::Hash + Ord> Class for K {}

struct Evaluation {
    suppressed: Vec<Option<Reason>>,
    count: usize,
    /// Per child its signature's number: equal numbers are equal signatures (4 bytes per
    /// child instead of the 16 of the key, so the search's memory stays small).
    keys: Vec<u32>,
}

fn evaluate(
    h: &Hierarchy,
    area_of: &[u16],
    children: &[ChildFacts],
    p: Params,
    l: Levels,
) -> Evaluation {
    let mut suppressed: Vec<Option<Reason>> = vec![None; children.len()];
    let mut keys = vec![0u32; children.len()];
    let mut numbers: HashMap<u128, u32> = HashMap::new();
    for (i, c) in children.iter().enumerate() {
        match key(h, area_of, c, l) {
            Some(k) => {
                let next = u32::try_from(numbers.len()).unwrap_or(u32::MAX);
                keys[i] = *numbers.entry(k).or_insert(next);
            }
            None => suppressed[i] = Some(Reason::AgeOutsideBands),
        }
    }
    drop(numbers);
    per_export_pass(children, &keys, &mut suppressed, p);
    let count = suppressed.iter().filter(|s| s.is_some()).count();
    Evaluation {
        suppressed,
        count,
        keys,
    }
}

/// Suppresses children until every kept class within this export holds k children and
/// every kept family signature `family_k` families. Returns whether anything changed.
fn per_export_pass<K: Class>(
    children: &[ChildFacts],
    keys: &[K],
    suppressed: &mut [Option<Reason>],
    p: Params,
) -> bool {
    let mut any = false;
    loop {
        let mut changed = false;
        // Children whose class is too small.
        let mut counts: HashMap<K, u32> = HashMap::new();
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
        drop(counts);
        // Families whose combined signature is too rare.
        let fams = family_signatures(children, keys, suppressed);
        let mut fcounts: HashMap<&[K], u32> = HashMap::new();
        for (_, sig) in fams.iter() {
            *fcounts.entry(sig).or_default() += 1;
        }
        let rare: Vec<(usize, usize)> = fams
            .iter()
            .filter(|(_, sig)| fcounts.get(sig).copied().unwrap_or(0) < p.family_k)
            .map(|(range, _)| range)
            .collect();
        drop(fcounts);
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
        any = true;
    }
    any
}

/// Per family with kept children: its children's index range and sorted kept keys, all
/// in two flat vectors (no allocation per family).
struct FamilySignatures<K> {
    /// `(first child, end of children, first key, end of keys)`.
    families: Vec<(u32, u32, u32, u32)>,
    keys: Vec<K>,
}

impl<K: Class> FamilySignatures<K> {
    fn iter(&self) -> impl Iterator<Item = ((usize, usize), &[K])> + '_ {
        self.families.iter().map(|&(from, to, a, b)| {
            (
                (from as usize, to as usize),
                self.keys.get(a as usize..b as usize).unwrap_or(&[]),
            )
        })
    }
}

fn family_signatures<K: Class>(
    children: &[ChildFacts],
    keys: &[K],
    suppressed: &[Option<Reason>],
) -> FamilySignatures<K> {
    let mut out = FamilySignatures {
        families: Vec::new(),
        keys: Vec::new(),
    };
    let index = |i: usize| u32::try_from(i).unwrap_or(u32::MAX);
    let mut start = 0;
    while start < children.len() {
        let fam = children[start].family;
        let mut end = start;
        while end < children.len() && children[end].family == fam {
            end += 1;
        }
        let from = out.keys.len();
        out.keys.extend(
            (start..end)
                .filter(|i| suppressed[*i].is_none())
                .map(|i| keys[i]),
        );
        if out.keys.len() > from {
            out.keys[from..].sort_unstable();
            out.families
                .push((index(start), index(end), index(from), index(out.keys.len())));
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
    let area_of = area_index(h);
    let allowed = (p.max_suppression * children.len() as f64).floor() as usize;
    let mut nodes = Vec::new();
    for age in 0..h.age_levels() {
        for region in 0..h.region_levels() {
            for period in 0..Hierarchy::PERIOD_LEVELS {
                for plan in 0..Hierarchy::PLAN_LEVELS {
                    nodes.push(Levels {
                        age,
                        region,
                        period,
                        plan,
                    });
                }
            }
        }
    }
    nodes.sort_by_key(|l| (l.height(), l.plan, l.age, l.region, l.period));
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
        let l = closest.map(|(l, _)| l).unwrap_or(Levels {
            age: 0,
            region: 0,
            period: 0,
            plan: 0,
        });
        return Err(Infeasible {
            k: p.k,
            levels: describe_short(h, l),
            study: String::new(),
        });
    };
    Ok(finish(children, levels, e.suppressed, e.keys, tried))
}

/// The levels in words, for messages.
pub fn describe_short(h: &Hierarchy, l: Levels) -> String {
    format!(
        "age {}, region {}, start period {}, plan {}",
        ["as banded", "wider bands", "all", "all"][l.age.min(3)],
        ["region", "area", "national"][if h.areas.is_empty() && l.region == 1 {
            2
        } else {
            l.region.min(2)
        }],
        ["half-year", "year", "all"][l.period.min(2)],
        ["with status and evaluation", "running/ended", "all"][l.plan.min(2)]
    )
}

/// The decision at `levels` for a final suppression: reasons counted, risk figures.
fn finish<K: Class>(
    children: &[ChildFacts],
    levels: Levels,
    suppressed: Vec<Option<Reason>>,
    keys: Vec<K>,
    tried: usize,
) -> Decision {
    let mut why = BTreeMap::new();
    for r in suppressed.iter().flatten() {
        *why.entry(*r).or_default() += 1;
    }
    let mut counts: HashMap<K, u32> = HashMap::new();
    for (i, k) in keys.iter().enumerate() {
        if suppressed[i].is_none() {
            *counts.entry(*k).or_default() += 1;
        }
    }
    let children_risk = risk_of(
        keys.iter()
            .enumerate()
            .filter(|(i, _)| suppressed[*i].is_none())
            .map(|(_, k)| counts.get(k).copied().unwrap_or(1)),
    );
    let fams = family_signatures(children, &keys, &suppressed);
    let mut fcounts: HashMap<&[K], u32> = HashMap::new();
    for (_, sig) in fams.iter() {
        *fcounts.entry(sig).or_default() += 1;
    }
    let family_risk = risk_of(
        fams.iter()
            .map(|(_, sig)| fcounts.get(sig).copied().unwrap_or(1)),
    );
    Decision {
        levels,
        suppressed,
        why,
        children_risk,
        family_risk,
        nodes_tried: tried,
    }
}

// ---- a study's union -----------------------------------------------------------------------

/// What a study has received of one child so far. Kept sealed with the study's key: the
/// union of a study's exports is checked against it, so that exports joined on the
/// pseudonym never single a child out.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Released {
    /// The family's pseudonym in the study.
    pub family: String,
    /// Every quasi-identifier key released for the child (hex of [`qi_key`], sorted): a
    /// status that changed between exports is two keys.
    pub keys: Vec<String>,
    /// The check-in positions (waves) released for the child, sorted.
    pub waves: Vec<u32>,
    /// The highest `moves_so_far` released, top-coded.
    pub moves: u32,
}

/// A study's state: the generalisation frozen at its first export and what it received.
#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct StudyState {
    pub levels: Levels,
    /// By child pseudonym.
    pub children: BTreeMap<String, Released>,
}

/// One child of this export as the study would see it, parallel to the export's children.
#[derive(Clone, Debug)]
pub struct Offer {
    pub child: String,
    pub family: String,
    /// Waves of this export's rows of the child.
    pub waves: Vec<u32>,
}

/// A child's signature over the union: its keys, number of distinct waves, moves.
type UnionSig = (Vec<u128>, u32, u32);

/// Per family in the union: its children's effective and former signatures, and its
/// children (indices into the union).
type UnionFamily<'a> = (Vec<&'a UnionSig>, Vec<&'a UnionSig>, Vec<usize>);

fn parse_keys(keys: &[String]) -> Vec<u128> {
    keys.iter()
        .filter_map(|k| u128::from_str_radix(k, 16).ok())
        .collect()
}

fn merge(prior: Option<&Released>, key: u128, waves: &[u32], moves: u32) -> Released {
    let mut r = prior.cloned().unwrap_or_default();
    let hex = format!("{key:x}");
    if !r.keys.contains(&hex) {
        r.keys.push(hex);
        r.keys.sort();
    }
    r.waves.extend_from_slice(waves);
    r.waves.sort_unstable();
    r.waves.dedup();
    r.moves = r.moves.max(moves.min(MOVES_TOP));
    r
}

fn union_sig(r: &Released) -> UnionSig {
    let mut keys = parse_keys(&r.keys);
    keys.sort_unstable();
    (
        keys,
        u32::try_from(r.waves.len()).unwrap_or(u32::MAX),
        r.moves,
    )
}

struct UnionChild {
    family: String,
    prior: Option<UnionSig>,
    /// Index into this export's children and the merged signature, if offered.
    offer: Option<(usize, UnionSig)>,
}

/// Suppresses offered children until the union (what the study had, plus what this export
/// adds) holds every child signature k times and every family signature `family_k` times.
/// A child whose new rows would single out a former classmate (it left a class that then
/// became too small) is suppressed too: reverting everyone gives back the former union,
/// which was k-anonymous, so the loop ends. Returns whether anything changed and whether
/// the union is k-anonymous.
fn union_pass(union: &[UnionChild], suppressed: &mut [Option<Reason>], p: Params) -> (bool, bool) {
    let active = |u: &UnionChild, suppressed: &[Option<Reason>]| match &u.offer {
        Some((i, sig)) if suppressed[*i].is_none() => Some(sig.clone()),
        _ => None,
    };
    let mut any = false;
    loop {
        let eff: Vec<Option<UnionSig>> = union
            .iter()
            .map(|u| active(u, suppressed).or_else(|| u.prior.clone()))
            .collect();
        let mut counts: HashMap<&UnionSig, u32> = HashMap::new();
        for s in eff.iter().flatten() {
            *counts.entry(s).or_default() += 1;
        }
        // A class that became empty singles no one out; one with 1..k-1 children does.
        let small = |s: &UnionSig| counts.get(s).is_some_and(|n| *n < p.k);
        let mut fams: BTreeMap<&str, UnionFamily> = BTreeMap::new();
        for (j, u) in union.iter().enumerate() {
            let e = fams.entry(u.family.as_str()).or_default();
            if let Some(s) = &eff[j] {
                e.0.push(s);
            }
            if let Some(s) = &u.prior {
                e.1.push(s);
            }
            e.2.push(j);
        }
        for v in fams.values_mut() {
            v.0.sort();
            v.1.sort();
        }
        let mut fcounts: HashMap<&[&UnionSig], u32> = HashMap::new();
        for v in fams.values() {
            if !v.0.is_empty() {
                *fcounts.entry(v.0.as_slice()).or_default() += 1;
            }
        }
        let fsmall = |s: &[&UnionSig]| fcounts.get(s).is_some_and(|n| *n < p.family_k);
        let mut to_suppress: Vec<usize> = Vec::new();
        let rare = counts.values().any(|n| *n < p.k) || fcounts.values().any(|n| *n < p.family_k);
        let offered = |j: usize| match &union[j].offer {
            Some((i, _)) if suppressed[*i].is_none() => Some(*i),
            _ => None,
        };
        // First: a child whose new rows put it in a too small class goes back to what the
        // study had of it.
        for (j, s) in eff.iter().enumerate() {
            if let Some(s) = s
                && small(s)
            {
                to_suppress.extend(offered(j));
            }
        }
        for v in fams.values() {
            if fsmall(&v.0) {
                to_suppress.extend(v.2.iter().filter_map(|j| offered(*j)));
            }
        }
        // Then: a class left too small by children who moved on takes back as few of
        // them as it needs (their new rows are withheld).
        if to_suppress.is_empty() {
            let mut need: HashMap<&UnionSig, u32> = counts
                .iter()
                .filter(|(_, n)| **n < p.k)
                .map(|(s, n)| (*s, p.k - n))
                .collect();
            for (j, u) in union.iter().enumerate() {
                let (Some(ps), Some(i)) = (&u.prior, offered(j)) else {
                    continue;
                };
                if let Some(n) = need.get_mut(ps)
                    && *n > 0
                    && eff[j].as_ref() != Some(ps)
                {
                    *n -= 1;
                    to_suppress.push(i);
                }
            }
            let mut fneed: HashMap<&[&UnionSig], u32> = fcounts
                .iter()
                .filter(|(_, n)| **n < p.family_k)
                .map(|(s, n)| (*s, p.family_k - n))
                .collect();
            for v in fams.values() {
                if v.1 == v.0 {
                    continue;
                }
                if let Some(n) = fneed.get_mut(v.1.as_slice())
                    && *n > 0
                {
                    let back: Vec<usize> = v.2.iter().filter_map(|j| offered(*j)).collect();
                    if !back.is_empty() {
                        *n -= 1;
                        to_suppress.extend(back);
                    }
                }
            }
        }
        if to_suppress.is_empty() {
            return (any, !rare);
        }
        for i in to_suppress {
            suppressed[i] = Some(Reason::StudyUnionTooRare);
        }
        any = true;
    }
}

/// Decides a study export: at its first export (no `prior`) like [`decide`], and the
/// levels found are frozen; later exports use the frozen levels. Either way every child
/// and family signature must hold k (`family_k`) times both within this export and over
/// the union of everything the study has received; children are suppressed (within
/// `max_suppression`) until both hold.
pub fn decide_for_study(
    h: &Hierarchy,
    children: &[ChildFacts],
    offers: &[Offer],
    prior: Option<&StudyState>,
    p: Params,
) -> Result<Decision, Infeasible> {
    let area_of = area_index(h);
    let (levels, mut suppressed, tried) = match prior {
        None => {
            let d = decide(h, children, p)?;
            (d.levels, d.suppressed, d.nodes_tried)
        }
        Some(st) => (st.levels, vec![None; children.len()], 0),
    };
    let mut keys = vec![0u128; children.len()];
    let mut qis = vec![0u128; children.len()];
    for (i, c) in children.iter().enumerate() {
        match (key(h, &area_of, c, levels), qi_key(h, &area_of, c, levels)) {
            (Some(k), Some(q)) => {
                keys[i] = k;
                qis[i] = q;
            }
            _ => suppressed[i] = Some(Reason::AgeOutsideBands),
        }
    }
    let empty = BTreeMap::new();
    let released = prior.map(|s| &s.children).unwrap_or(&empty);
    let mut union: Vec<UnionChild> = Vec::with_capacity(released.len() + offers.len());
    let mut offered = std::collections::HashSet::new();
    for (i, o) in offers.iter().enumerate() {
        let before = released.get(&o.child);
        let merged = merge(before, qis[i], &o.waves, children[i].moves);
        union.push(UnionChild {
            family: o.family.clone(),
            prior: before.map(union_sig),
            offer: Some((i, union_sig(&merged))),
        });
        offered.insert(o.child.as_str());
    }
    for (child, r) in released {
        if !offered.contains(child.as_str()) {
            union.push(UnionChild {
                family: r.family.clone(),
                prior: Some(union_sig(r)),
                offer: None,
            });
        }
    }
    let ok = loop {
        per_export_pass(children, &keys, &mut suppressed, p);
        let (changed, ok) = union_pass(&union, &mut suppressed, p);
        if !changed {
            break ok;
        }
    };
    let allowed = (p.max_suppression * children.len() as f64).floor() as usize;
    let count = suppressed.iter().filter(|s| s.is_some()).count();
    if !ok || count > allowed {
        return Err(Infeasible {
            k: p.k,
            levels: describe_short(h, levels),
            study: if prior.is_some() {
                " together with what this study received before (its generalisation is fixed at its first export)".into()
            } else {
                String::new()
            },
        });
    }
    Ok(finish(children, levels, suppressed, keys, tried))
}

/// The study's state after this export: the kept children's rows added.
pub fn released_after(
    h: &Hierarchy,
    children: &[ChildFacts],
    offers: &[Offer],
    d: &Decision,
    prior: Option<&StudyState>,
) -> StudyState {
    let area_of = area_index(h);
    let mut out = prior.map(|s| s.children.clone()).unwrap_or_default();
    for (i, o) in offers.iter().enumerate() {
        if !d.kept(i) {
            continue;
        }
        let Some(q) = qi_key(h, &area_of, &children[i], d.levels) else {
            continue;
        };
        let merged = merge(out.get(&o.child), q, &o.waves, children[i].moves);
        let mut merged = merged;
        merged.family = o.family.clone();
        out.insert(o.child.clone(), merged);
    }
    StudyState {
        levels: d.levels,
        children: out,
    }
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
            plans: vec!["standard".into()],
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
            plan: 0,
            status: 0,
            safety: 0,
            professionals: 0,
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
        let m = e.to_string();
        assert!(m.contains("nothing was written"));
        assert!(!m.contains('3'), "no count in {m}");
    }

    #[test]
    fn export_study_union_keeps_former_classmates_hidden() {
        let h = hierarchy();
        let p = Params {
            k: 3,
            family_k: 1,
            max_suppression: 0.5,
        };
        let offer = |i: usize, waves: Vec<u32>| Offer {
            child: format!("c{i}"),
            family: format!("f{i}"),
            waves,
        };
        // The first export: six alike children with waves 1 and 2.
        let first: Vec<ChildFacts> = (0..6).map(|i| child(i, 5, 0, 0, 2)).collect();
        let offers: Vec<Offer> = (0..6).map(|i| offer(i, vec![1, 2])).collect();
        let d = decide_for_study(&h, &first, &offers, None, p).unwrap();
        assert_eq!(d.suppressed_count(), 0);
        let state = released_after(&h, &first, &offers, &d, None);
        assert_eq!(state.children.len(), 6);
        // Then four of them get wave 3: a class of 4 and one of 2 former classmates, who
        // would be singled out. Reverting two of the four leaves classes of 2 + 2... so the
        // union check keeps reverting until every class holds 3.
        let later: Vec<ChildFacts> = (0..4).map(|i| child(i, 5, 0, 0, 1)).collect();
        let offers: Vec<Offer> = (0..4).map(|i| offer(i as usize, vec![3])).collect();
        let d = decide_for_study(&h, &later, &offers, Some(&state), p).unwrap();
        assert_eq!(d.suppressed_count(), 1, "{:?}", d.suppressed);
        assert_eq!(d.why.get(&Reason::StudyUnionTooRare), Some(&1));
        // All six get wave 3: nothing to hide, nothing suppressed; levels stay frozen.
        let all: Vec<ChildFacts> = (0..6).map(|i| child(i, 5, 0, 0, 1)).collect();
        let offers: Vec<Offer> = (0..6).map(|i| offer(i as usize, vec![3])).collect();
        let d = decide_for_study(&h, &all, &offers, Some(&state), p).unwrap();
        assert_eq!(d.suppressed_count(), 0);
        assert_eq!(d.levels, state.levels);
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
