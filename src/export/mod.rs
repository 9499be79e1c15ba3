//! The research export pipeline (streaming, two passes over the families in id batches).
//!
//! Pass 1 opens each child's sealed details once and keeps a few small codes per child
//! ([`ChildFacts`]); `domain::anonymise` then picks the generalisation and the children to
//! suppress. Pass 2 (`pass2`) reads the families again batch by batch (a handful of
//! set-based queries per batch of `BATCH` families: check-ins with their observations,
//! flags; never one per row) and, on a second thread while the next batch is read, unwraps
//! each family's key and makes its pseudonyms once, opens the observations, checks every
//! value against the codebook and writes each row to one of several random bucket files;
//! the buckets are shuffled one at a time into `followup.csv`. Memory grows
//! with the number of children (pass 1 and the lattice search: about 90 bytes per child,
//! measured), never with the number of rows. Everything is written into a private
//! temporary folder next to `--out` and renamed at the end; on any failure the folder is
//! removed and nothing is recorded.
//!
//! What is in the anonymity key: age band at start, sex, region, episode kind, start
//! period, the plan's attributes (plan code, plan status with its closing reason, and the
//! closing evaluation's codes, generalised together to "plan code, running/ended" or to
//! nothing), the number of the child's rows and its moves. `moves_so_far` is the child's
//! count by its last exported check-in on every row, so the month of a move is not
//! exported. Families closed as `enrolled_in_error` are never exported.
//!
//! # Studies: exports that share pseudonyms
//!
//! The exports of one study use one pseudonym key, so a researcher can join them. Joined,
//! two exports that are each k-anonymous can single a child out (its rows in the first and
//! in the second together form a trajectory no one else has). So a study keeps, sealed with
//! its own key in `export_study_releases`, the generalisation frozen at its first export
//! and, per child pseudonym, what it has released: the quasi-identifier keys, the waves and
//! the highest moves. Every later export of the study uses the frozen levels (a coarser
//! level would not help: the finer values are already out) and must be k-anonymous both on
//! its own and over the union (every child signature of the union — its keys, number of
//! distinct waves, moves — shared by k children, and every family's by `family_k`
//! families). Children whose new rows break the union are suppressed, including those whose
//! new rows would leave a former classmate alone; if that needs more than
//! `export.max_suppression`, the export is refused. The state is stored rather than
//! recomputed from the database because erasure removes families whose rows the study
//! still has. It holds no reference and nothing personal (pseudonyms and codes), and it is
//! sealed so that a database reader cannot link it to the study's files without its key.
//!
//! Refusals and manifests never show a count below k.

use crate::audit::Entry;
use crate::crypto::{CryptoError, Dek, FieldPlace, Kek};
use crate::domain::FieldError;
use crate::domain::anonymise::{
    ChildFacts, Codebook, Column, ColumnType, Decision, EPISODE_CODES, Hierarchy, Infeasible,
    NotInCodebook, Offer, PROFESSIONALS_EXPORT, Params, SAFETY_EXPORT, SEX_CODES, STATUS_CODES,
    StudyState, decide, decide_for_study, moves_so_far, released_after,
};
use crate::domain::enrolment::{MemberDetails, Sex, is_code};
use crate::keyring::KeyringError;
use crate::service::{App, OpError, open_json, seal_json};
use crate::store::{self, Conn, StoreError, export as xs};
use chrono::{Datelike, NaiveDate, TimeZone};
use rand::seq::SliceRandom;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Families read per query batch.
const BATCH: i64 = 500;
/// Rows per shuffle bucket (on average): bounds the memory of the shuffle.
const ROWS_PER_BUCKET: u64 = 50_000;

mod observed;
mod pass2;

/// What `nazorg export` asks for.
#[derive(Clone, Debug, Default)]
pub struct ExportRequest {
    pub out: PathBuf,
    pub study: Option<String>,
    /// Only check-ins due on or after this local date.
    pub from: Option<NaiveDate>,
    /// Only check-ins due on or before this local date.
    pub to: Option<NaiveDate>,
    /// At least `export.k`; default `export.k`.
    pub k: Option<u32>,
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Op(#[from] OpError),
    #[error(transparent)]
    Infeasible(#[from] Infeasible),
    #[error(transparent)]
    Codebook(#[from] NotInCodebook),
    #[error("cannot write the export next to {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl From<StoreError> for ExportError {
    fn from(e: StoreError) -> Self {
        ExportError::Op(e.into())
    }
}
impl From<sqlx::Error> for ExportError {
    fn from(e: sqlx::Error) -> Self {
        ExportError::Op(e.into())
    }
}
impl From<CryptoError> for ExportError {
    fn from(e: CryptoError) -> Self {
        ExportError::Op(e.into())
    }
}
impl From<KeyringError> for ExportError {
    fn from(e: KeyringError) -> Self {
        ExportError::Op(e.into())
    }
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> ExportError + '_ {
    move |source| ExportError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// What `nazorg export` answers (also the gist of the manifest).
#[derive(Debug, Serialize)]
pub struct ExportSummary {
    pub export: String,
    pub out: PathBuf,
    pub k_requested: u32,
    pub k_achieved: u32,
    pub children_out: usize,
    /// A number, or "fewer than k" (no count below k is shown).
    pub families_out: serde_json::Value,
    pub rows_out: u64,
    /// A number, or "fewer than k".
    pub children_suppressed: serde_json::Value,
    pub files: BTreeMap<String, String>,
}

/// Shown in a manifest instead of a count between 1 and k - 1.
pub const FEWER_THAN_K: &str = "fewer than k";

/// Where a study's sealed state lives (the associated data it is sealed with).
fn state_place(code: &str) -> FieldPlace<'_> {
    FieldPlace {
        family: code,
        table: "export_study_releases",
        column: "sealed_state",
        row: code,
    }
}

/// The associated data a study key is wrapped with.
fn study_label(code: &str) -> String {
    format!("study:{code}")
}

struct Window {
    from: i64,
    to: i64,
}

fn validate(app: &App, req: &ExportRequest) -> Result<(u32, Window), OpError> {
    let cfg = &app.config;
    let mut e = Vec::new();
    let k = req.k.unwrap_or(cfg.export.k);
    if k == 0 {
        e.push(FieldError::new("k", "must be at least 1"));
    } else if k < cfg.export.k {
        e.push(FieldError::new(
            "k",
            format!("below the configured minimum export.k = {}", cfg.export.k),
        ));
    }
    if let (Some(f), Some(t)) = (req.from, req.to)
        && f > t
    {
        e.push(FieldError::new("from", "is after --to"));
    }
    if let Some(s) = &req.study
        && !is_code(s)
    {
        e.push(FieldError::new(
            "study",
            "a study code is a lowercase word such as cohort2027",
        ));
    }
    let name_ok = req
        .out
        .file_name()
        .is_some_and(|n| !n.is_empty() && n != "." && n != "..");
    if !name_ok {
        e.push(FieldError::new("out", "needs a folder name to create"));
    } else if req.out.exists() {
        e.push(FieldError::new(
            "out",
            "already exists; an export never overwrites, give a new folder",
        ));
    } else if !parent_of(&req.out).is_dir() {
        e.push(FieldError::new("out", "its parent folder does not exist"));
    }
    if !e.is_empty() {
        return Err(OpError::Invalid(e));
    }
    let tz = cfg.timezone;
    let now = app.now().timestamp();
    let midnight = |d: NaiveDate| {
        d.and_hms_opt(0, 0, 0)
            .and_then(|t| tz.from_local_datetime(&t).earliest())
            .map(|t| t.timestamp())
    };
    let from = req.from.and_then(midnight).unwrap_or(i64::MIN);
    let to = req
        .to
        .and_then(|d| d.succ_opt())
        .and_then(midnight)
        .map(|t| t - 1)
        .unwrap_or(i64::MAX)
        .min(now);
    Ok((k, Window { from, to }))
}

fn parent_of(p: &Path) -> PathBuf {
    match p.parent() {
        Some(par) if !par.as_os_str().is_empty() => par.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Whole months from `a` to `b` (0 when `b` is before `a`).
fn months_between(a: NaiveDate, b: NaiveDate) -> u32 {
    let mut m = (b.year() - a.year()) * 12 + b.month() as i32 - a.month() as i32;
    if b.day() < a.day() {
        m -= 1;
    }
    u32::try_from(m.max(0)).unwrap_or(0)
}

fn years_between(a: NaiveDate, b: NaiveDate) -> u32 {
    months_between(a, b) / 12
}

/// Per family kept between the passes (no personal data: codes and counts). 24 bytes, so
/// that what grows with the installation stays small.
struct FamilyState {
    id: i64,
    first_child: u32,
    children: u32,
    start: NaiveDate,
    plan_months: u32,
}

struct Pass1 {
    /// By family id (pass 1 reads the families in id order).
    families: Vec<FamilyState>,
    children: Vec<ChildFacts>,
    /// Member id per child, parallel to `children`.
    member_ids: Vec<i64>,
    /// The child as a study sees it (pseudonyms, waves), parallel to `children`; empty for
    /// an export without a study (nothing reads it then).
    offers: Vec<Offer>,
    regions: Vec<String>,
    plans: Vec<String>,
    keks: HashMap<i64, Arc<Kek>>,
    rows_in: u64,
    max_plan_months: u32,
    max_wave: i64,
}

fn member_place<'a>(family: &'a str, member: &'a str) -> FieldPlace<'a> {
    FieldPlace {
        family,
        table: "members",
        column: "sealed_details",
        row: member,
    }
}

async fn kek_for(
    app: &App,
    conn: &mut Conn,
    keks: &mut HashMap<i64, Arc<Kek>>,
    id: i64,
) -> Result<Arc<Kek>, ExportError> {
    if let Some(k) = keks.get(&id) {
        return Ok(k.clone());
    }
    let k = app.keyring.kek(conn, id).await?;
    keks.insert(id, k.clone());
    Ok(k)
}

fn family_dek(
    keks: &HashMap<i64, Arc<Kek>>,
    f: &xs::ExportFamily,
) -> Result<Option<Dek>, ExportError> {
    match (f.kek_id, f.wrapped_dek.as_deref()) {
        (Some(id), Some(w)) => match keks.get(&id) {
            Some(k) => Ok(Some(k.unwrap_dek(w, &f.reference)?)),
            None => Ok(None),
        },
        _ => Ok(None),
    }
}

/// The index of a family's status in [`STATUS_CODES`]; `None` for one never exported.
fn status_index(f: &xs::ExportFamily) -> Option<u8> {
    let code = match (f.status.as_str(), &f.close_reason) {
        ("closed_early", Some(r)) => format!("closed_early:{r}"),
        (s, _) => s.to_string(),
    };
    STATUS_CODES
        .iter()
        .position(|c| *c == code)
        .and_then(|i| u8::try_from(i).ok())
}

impl Pass1 {
    fn family(&self, id: i64) -> Option<&FamilyState> {
        self.families
            .binary_search_by_key(&id, |f| f.id)
            .ok()
            .and_then(|i| self.families.get(i))
    }
}

async fn pass1(
    app: &App,
    conn: &mut Conn,
    w: &Window,
    key: &Dek,
    study: bool,
) -> Result<Pass1, ExportError> {
    let tz = app.config.timezone;
    let mut p = Pass1 {
        families: Vec::new(),
        children: Vec::new(),
        member_ids: Vec::new(),
        offers: Vec::new(),
        regions: Vec::new(),
        plans: Vec::new(),
        keks: HashMap::new(),
        rows_in: 0,
        max_plan_months: 0,
        max_wave: 0,
    };
    // Regions and plans are numbered from the config in sorted order, not in the order the
    // families come, so that a study's quasi-identifier keys mean the same in every export.
    let mut region_index: HashMap<String, u16> = HashMap::new();
    let regions: BTreeSet<&String> = app
        .config
        .municipalities
        .values()
        .map(|m| &m.region)
        .collect();
    for r in regions {
        let next = u16::try_from(region_index.len()).unwrap_or(u16::MAX);
        region_index.insert(r.clone(), next);
        p.regions.push(r.clone());
    }
    let mut plan_index: HashMap<String, u8> = HashMap::new();
    for name in app.config.plans.keys() {
        let next = u8::try_from(plan_index.len()).unwrap_or(u8::MAX);
        plan_index.insert(name.clone(), next);
        p.plans.push(name.clone());
    }
    let mut after = 0i64;
    loop {
        let fams = xs::families_after(conn, after, BATCH).await?;
        let (Some(first), Some(last)) = (fams.first(), fams.last()) else {
            break;
        };
        let (lo, hi) = (first.id, last.id);
        after = hi;
        let kids = xs::children_between(conn, lo, hi).await?;
        let resp = xs::responsibilities_between(conn, lo, hi).await?;
        let checkins = xs::checkins_between(conn, lo, hi, w.from, w.to).await?;
        let evaluations: HashMap<i64, (String, i64)> =
            store::closure::evaluations_between(conn, lo, hi)
                .await?
                .into_iter()
                .map(|(f, s, n)| (f, (s, n)))
                .collect();
        for f in &fams {
            if let Some(id) = f.kek_id {
                kek_for(app, conn, &mut p.keks, id).await?;
            }
        }
        let mut kids_of: HashMap<i64, Vec<&xs::ExportChild>> = HashMap::new();
        for c in &kids {
            kids_of.entry(c.family_id).or_default().push(c);
        }
        let mut resp_of: HashMap<i64, Vec<(&str, i64)>> = HashMap::new();
        for (fid, m, from) in &resp {
            resp_of.entry(*fid).or_default().push((m.as_str(), *from));
        }
        let mut due_of: HashMap<i64, Vec<i64>> = HashMap::new();
        let mut waves_of: HashMap<i64, Vec<u32>> = HashMap::new();
        for c in &checkins {
            due_of.entry(c.family_id).or_default().push(c.due_at);
            waves_of
                .entry(c.family_id)
                .or_default()
                .push(u32::try_from(c.wave).unwrap_or(0));
            p.max_wave = p.max_wave.max(c.wave);
        }
        for f in &fams {
            let (Some(kids), Some(dues)) = (kids_of.get(&f.id), due_of.get(&f.id)) else {
                continue;
            };
            let Some(status) = status_index(f) else {
                continue;
            };
            let Some(dek) = family_dek(&p.keks, f)? else {
                continue;
            };
            let next_plan = u8::try_from(plan_index.len()).unwrap_or(u8::MAX);
            let plan = *plan_index.entry(f.plan.clone()).or_insert_with(|| {
                p.plans.push(f.plan.clone());
                next_plan
            });
            let (safety, professionals) = match evaluations.get(&f.id) {
                Some((s, n)) => (
                    SAFETY_EXPORT.iter().position(|c| c == s).unwrap_or(0) as u8,
                    PROFESSIONALS_EXPORT
                        .iter()
                        .position(|c| {
                            *c == crate::domain::evaluation::professionals_bucket(
                                u32::try_from(*n).unwrap_or(u32::MAX),
                            )
                        })
                        .unwrap_or(0) as u8,
                ),
                None => (0, 0),
            };
            let waves = waves_of.get(&f.id).cloned().unwrap_or_default();
            let family_pseudonym = if study {
                pseudonym(key, "family", &f.reference)
            } else {
                String::new()
            };
            let start = NaiveDate::parse_from_str(&f.episode_date, "%Y-%m-%d")
                .map_err(|_| StoreError::Corrupt("episode date".into()))?;
            let plan_end = store::from_secs(f.plan_end)?
                .with_timezone(&tz)
                .date_naive();
            let plan_months = months_between(start, plan_end);
            let starts: Vec<i64> = resp_of
                .get(&f.id)
                .map(|v| v.iter().map(|(_, s)| *s).collect())
                .unwrap_or_default();
            let municipality = resp_of.get(&f.id).and_then(|v| v.first()).map(|(m, _)| *m);
            let region = municipality
                .and_then(|m| app.config.municipality(m))
                .map(|m| m.region.clone())
                .unwrap_or_else(|| "unknown".into());
            let next = u16::try_from(region_index.len()).unwrap_or(u16::MAX);
            let region = *region_index.entry(region.clone()).or_insert_with(|| {
                p.regions.push(region);
                next
            });
            let rows = u32::try_from(dues.len()).unwrap_or(u32::MAX);
            let last_due = dues.iter().copied().max().unwrap_or(i64::MIN);
            let moves = moves_so_far(&starts, last_due);
            let episode_kind = EPISODE_CODES
                .iter()
                .position(|c| *c == f.episode_kind)
                .unwrap_or(0) as u8;
            let family = u32::try_from(p.families.len()).unwrap_or(u32::MAX);
            let first_child = p.children.len();
            for c in kids {
                let Some(sealed) = &c.sealed_details else {
                    continue;
                };
                let d: MemberDetails =
                    open_json(&dek, sealed, &member_place(&f.reference, &c.reference))?;
                let age = d
                    .birth_date
                    .map(|b| {
                        if b > start {
                            0
                        } else {
                            years_between(b, start)
                        }
                    })
                    .unwrap_or(u32::MAX);
                let sex = match d.sex {
                    Some(Sex::F) => 0,
                    Some(Sex::M) => 1,
                    Some(Sex::X) => 2,
                    None => 3,
                };
                p.children.push(ChildFacts {
                    family,
                    age,
                    sex,
                    region,
                    episode_kind,
                    year: start.year(),
                    half: if start.month() <= 6 { 1 } else { 2 },
                    rows,
                    moves,
                    plan,
                    status,
                    safety,
                    professionals,
                });
                p.member_ids.push(c.id);
                if study {
                    p.offers.push(Offer {
                        child: pseudonym(key, "child", &c.reference),
                        family: family_pseudonym.clone(),
                        waves: waves.clone(),
                    });
                }
                p.rows_in += u64::from(rows);
            }
            let n = p.children.len() - first_child;
            if n == 0 {
                continue;
            }
            p.max_plan_months = p.max_plan_months.max(plan_months);
            p.families.push(FamilyState {
                id: f.id,
                first_child: u32::try_from(first_child).unwrap_or(u32::MAX),
                children: u32::try_from(n).unwrap_or(u32::MAX),
                start,
                plan_months,
            });
        }
    }
    Ok(p)
}

fn codebook(app: &App, h: &Hierarchy, p: &Pass1, d: &Decision) -> Codebook {
    let l = d.levels;
    let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let regions: BTreeSet<String> = (0..h.regions.len())
        .map(|r| h.region_label(l.region, r))
        .collect();
    // Distinct (year, half) first: collecting one label per child into a set would first
    // gather them all in a vector (what `BTreeSet::from_iter` does), the export's peak
    // memory at 300k children.
    let halves: BTreeSet<(i32, u8)> = p
        .children
        .iter()
        .enumerate()
        .filter(|(i, _)| d.kept(*i))
        .fold(BTreeSet::new(), |mut s, (_, c)| {
            s.insert((c.year, c.half));
            s
        });
    let periods: BTreeSet<String> = halves
        .into_iter()
        .map(|(year, half)| Hierarchy::period_label(l.period, year, half))
        .collect();
    let plan_status: Vec<String> = match l.plan {
        0 => strings(STATUS_CODES),
        1 => strings(&["running", "ended"]),
        _ => strings(&["all"]),
    };
    let plans: BTreeSet<String> = (0..h.plans.len())
        .map(|i| h.plan_label(l.plan, u8::try_from(i).unwrap_or(u8::MAX)))
        .collect();
    let col = |name: &str, meaning: &str, kind| Column {
        name: name.into(),
        meaning: meaning.into(),
        kind,
    };
    let mut columns = vec![
        col(
            "child",
            "pseudonym of the child: HMAC-SHA256 of its internal reference under this export's key (one-off, or the study's), first 128 bits",
            ColumnType::Pseudonym,
        ),
        col(
            "family",
            "pseudonym of the child's family, made the same way",
            ColumnType::Pseudonym,
        ),
        col(
            "wave",
            "the check-in's position in the family's plan (1 = first)",
            ColumnType::Integer {
                min: 0,
                max: p.max_wave.max(1),
            },
        ),
        col(
            "months_since_start",
            "whole months from the start of the episode to the check-in, top-coded at the end of the family's plan",
            ColumnType::Integer {
                min: 0,
                max: i64::from(p.max_plan_months),
            },
        ),
        col(
            "episode_kind",
            "why monitoring started",
            ColumnType::Code {
                values: strings(EPISODE_CODES),
            },
        ),
        col(
            "start_period",
            "when the episode started, generalised (half-year YYYY-H1/H2, year, or all)",
            ColumnType::Code {
                values: periods.into_iter().collect(),
            },
        ),
        col(
            "age_band_at_start",
            "the child's age in completed years at the start of the episode, as a band (years, inclusive)",
            ColumnType::Code {
                values: h.age_labels(l.age),
            },
        ),
        col(
            "sex",
            "the child's sex as recorded (unknown: not recorded)",
            ColumnType::Code {
                values: strings(SEX_CODES),
            },
        ),
        col(
            "region",
            "region of the municipality responsible at the start of the plan, generalised (safety region, larger area, or national); never the municipality",
            ColumnType::Code {
                values: regions.into_iter().collect(),
            },
        ),
        col(
            "moves_so_far",
            "moves to another municipality by the child's last exported check-in (the same on each of its rows: the month of a move is not exported), top-coded",
            ColumnType::Code {
                values: strings(&["0", "1", "2", "3+"]),
            },
        ),
        col(
            "outcome",
            "the check-in's outcome; missed: every allowed contact attempt failed; not_recorded: due but not (yet) recorded; lapsed: fell due before enrolment",
            ColumnType::Code {
                values: strings(&[
                    "reached",
                    "not_reached",
                    "declined",
                    "missed",
                    "not_recorded",
                    "lapsed",
                ]),
            },
        ),
        col(
            "mode",
            "how contact was made (none: not recorded)",
            ColumnType::Code {
                values: strings(&["home_visit", "phone", "video", "office", "walk", "none"]),
            },
        ),
    ];
    for ind in &app.config.export.indicators {
        let mut values = app
            .config
            .export
            .values
            .get(ind)
            .cloned()
            .unwrap_or_default();
        values.push(String::new());
        columns.push(col(
            ind,
            &format!(
                "indicator `{ind}` as observed for the child at the check-in, a scale rounded to whole numbers (empty: not observed)"
            ),
            ColumnType::Code { values },
        ));
    }
    columns.push(col(
        "flags",
        "rule codes of the flags raised at the check-in for this child (its own and the family's), ;-separated",
        ColumnType::Codes {
            values: app.config.signals.rules.iter().map(|r| r.code.clone()).collect(),
        },
    ));
    columns.push(col(
        "plan",
        "the family's follow-up plan (all: generalised away)",
        ColumnType::Code {
            values: plans.into_iter().collect(),
        },
    ));
    columns.push(col(
        "plan_status",
        "the family's plan at the time of the export: running, completed, or closed_early with its reason code; generalised to running/ended, or all",
        ColumnType::Code { values: plan_status },
    ));
    let mut safety = strings(SAFETY_EXPORT);
    let mut professionals = strings(PROFESSIONALS_EXPORT);
    if l.plan != 0 {
        safety.truncate(1);
        professionals.truncate(1);
    }
    columns.push(col(
        "safety_improved",
        "the closing evaluation: did the family's safety improve (empty: not evaluated, or generalised away)",
        ColumnType::Code { values: safety },
    ));
    columns.push(col(
        "professionals",
        "the closing evaluation: professionals involved with the family at the end, bucketed (empty: not evaluated, or generalised away)",
        ColumnType::Code {
            values: professionals,
        },
    ));
    Codebook { columns }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn pseudonym(key: &Dek, kind: &str, reference: &str) -> String {
    let mut msg = Vec::with_capacity(32 + reference.len());
    msg.extend_from_slice(b"nazorg/export/v1/");
    msg.extend_from_slice(kind.as_bytes());
    msg.push(0);
    msg.extend_from_slice(reference.as_bytes());
    hex(&key.hmac_sha256(&msg)[..16])
}

struct HashingWriter<W: Write> {
    inner: W,
    hash: Sha256,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<String, ExportError> {
    std::fs::write(path, bytes).map_err(io(path))?;
    Ok(hex(&Sha256::digest(bytes)))
}

/// Writes an export of the whole installation (or the check-ins in `--from`/`--to`).
pub async fn export(app: &App, req: &ExportRequest) -> Result<ExportSummary, ExportError> {
    let (k, window) = validate(app, req)?;
    let cfg = &app.config;
    let params = Params {
        k,
        family_k: cfg.export.family_k,
        max_suppression: cfg.export.max_suppression,
    };
    let now = app.now();
    let mut tx = app.store.read().await?;

    // The pseudonym key: the study's (sealed in the database), or a one-off never stored.
    let mut new_study_key = false;
    // Shared with pass 2's writer thread.
    let key = Arc::new(match &req.study {
        Some(code) => match xs::study_key(&mut tx, code).await? {
            Some((kek_id, wrapped)) => {
                let kek = app.keyring.kek(&mut tx, kek_id).await?;
                kek.unwrap_dek(&wrapped, &study_label(code))?
            }
            None => {
                new_study_key = true;
                Dek::generate()
            }
        },
        None => Dek::generate(),
    });

    let p = pass1(app, &mut tx, &window, &key, req.study.is_some()).await?;
    let h = Hierarchy {
        age_bands: cfg.export.age_bands.clone(),
        regions: p.regions.clone(),
        areas: cfg.export.areas.clone(),
        plans: p.plans.clone(),
    };
    // A study's exports are decided over the union of what it received (module docs).
    let (d, study) = match &req.study {
        Some(code) => {
            let sealed = xs::study_state(&mut tx, code).await?;
            let prior: Option<StudyState> = match &sealed {
                Some(b) => Some(open_json(&key, b, &state_place(code))?),
                None => None,
            };
            let d = decide_for_study(&h, &p.children, &p.offers, prior.as_ref(), params)?;
            let after = released_after(&h, &p.children, &p.offers, &d, prior.as_ref());
            (d, Some((sealed, after)))
        }
        None => (decide(&h, &p.children, params)?, None),
    };
    let cb = codebook(app, &h, &p, &d);
    let erased = xs::erased_families(&mut tx).await?;

    // Everything goes into a private folder next to --out, renamed at the very end.
    let parent = parent_of(&req.out);
    let tmp = parent.join(format!(
        ".nazorg-export-{}.tmp",
        hex(&rand::random::<[u8; 8]>())
    ));
    crate::service::create_private_dir(&tmp).map_err(io(&tmp))?;
    let result = write_and_record(
        app,
        req,
        &mut tx,
        &window,
        p,
        &d,
        &h,
        &cb,
        &key,
        k,
        params,
        erased,
        &tmp,
        now,
        new_study_key,
        study,
    )
    .await;
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    result
}

#[allow(clippy::too_many_arguments)]
async fn write_and_record(
    app: &App,
    req: &ExportRequest,
    tx: &mut store::Tx,
    window: &Window,
    p: Pass1,
    d: &Decision,
    h: &Hierarchy,
    cb: &Codebook,
    key: &Arc<Dek>,
    k: u32,
    params: Params,
    erased: i64,
    tmp: &Path,
    now: chrono::DateTime<chrono::Utc>,
    new_study_key: bool,
    study: Option<(Option<Vec<u8>>, StudyState)>,
) -> Result<ExportSummary, ExportError> {
    let cfg = &app.config;
    let kept_rows: u64 = p
        .children
        .iter()
        .enumerate()
        .filter(|(i, _)| d.kept(*i))
        .map(|(_, c)| u64::from(c.rows))
        .sum();
    let n_buckets = (kept_rows / ROWS_PER_BUCKET + 1) as usize;
    let bucket_dir = tmp.join("buckets");
    std::fs::create_dir(&bucket_dir).map_err(io(&bucket_dir))?;
    let mut buckets = Vec::with_capacity(n_buckets);
    for b in 0..n_buckets {
        let path = bucket_dir.join(format!("{b}"));
        buckets.push(BufWriter::new(
            std::fs::File::create(&path).map_err(io(&path))?,
        ));
    }
    let (children_in, families_in, rows_in) = (p.children.len(), p.families.len(), p.rows_in);
    let plan = Arc::new(pass2::Plan {
        p,
        d: d.clone(),
        h: h.clone(),
        cb: cb.clone(),
        key: key.clone(),
        tz: cfg.timezone,
        indicators: cfg.export.indicators.clone(),
        scale: cfg
            .export
            .indicators
            .iter()
            .map(|ind| {
                matches!(
                    cfg.signals.indicators.get(ind).map(|i| &i.kind),
                    Some(crate::domain::signals::IndicatorType::Scale { .. })
                )
            })
            .collect(),
    });
    let writer = pass2::RowWriter::new(buckets, bucket_dir.clone());
    let (rows_out, families_out) = pass2::pass2(tx, window, plan, writer).await?;
    // What grows with the children (pass 1, in the plan) is freed with the last batch,
    // before the shuffle holds a bucket in memory (at 300k children the peak was the two
    // together).

    // Shuffle each bucket in memory and append it: a uniform random order of all rows.
    let csv_path = tmp.join("followup.csv");
    let file = std::fs::File::create(&csv_path).map_err(io(&csv_path))?;
    let mut out = HashingWriter {
        inner: BufWriter::new(file),
        hash: Sha256::new(),
    };
    writeln!(out, "{}", cb.header()).map_err(io(&csv_path))?;
    let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::from_entropy();
    for b in 0..n_buckets {
        let path = bucket_dir.join(format!("{b}"));
        // One buffer per bucket and a shuffled list of its lines (no allocation per row).
        let bytes = std::fs::read(&path).map_err(io(&path))?;
        let mut lines: Vec<&[u8]> = bytes
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .collect();
        lines.shuffle(&mut rng);
        for l in &lines {
            out.write_all(l).map_err(io(&csv_path))?;
            out.write_all(b"\n").map_err(io(&csv_path))?;
        }
        drop(lines);
        drop(bytes);
        std::fs::remove_file(&path).map_err(io(&path))?;
    }
    out.flush().map_err(io(&csv_path))?;
    let csv_hash = hex(&out.hash.finalize());
    std::fs::remove_dir(&bucket_dir).map_err(io(&bucket_dir))?;

    let mut files = BTreeMap::new();
    files.insert("followup.csv".to_string(), csv_hash);
    let cb_json = serde_json::to_vec_pretty(&serde_json::json!({
        "file": "followup.csv",
        "columns": cb.columns,
    }))
    .map_err(|e| OpError::Conflict(format!("cannot encode the codebook: {e}")))?;
    files.insert(
        "codebook.json".into(),
        write_file(&tmp.join("codebook.json"), &cb_json)?,
    );
    files.insert(
        "codebook.md".into(),
        write_file(&tmp.join("codebook.md"), cb.markdown().as_bytes())?,
    );

    let id = crate::domain::reference::export();
    let children_out = children_in - d.suppressed_count();
    let k_achieved = d.children_risk.smallest_class;
    let day = |x: Option<NaiveDate>| x.map(|d| d.to_string());
    let parameters = serde_json::json!({
        "k": k,
        "family_k": params.family_k,
        "max_suppression": params.max_suppression,
        "study": req.study,
        "from": day(req.from),
        "to": day(req.to),
        "indicators": cfg.export.indicators,
    });
    // No count below k is shown: a small count is what k-anonymity hides.
    let shown = |n: u64| -> serde_json::Value {
        if n > 0 && n < u64::from(k) {
            serde_json::Value::from(FEWER_THAN_K)
        } else {
            serde_json::Value::from(n)
        }
    };
    let why: BTreeMap<String, serde_json::Value> = d
        .why
        .iter()
        .map(|(r, n)| {
            (
                serde_json::to_value(r)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default(),
                shown(*n as u64),
            )
        })
        .collect();
    let manifest = serde_json::json!({
        "export": id,
        "created_at": now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "software": {"name": env!("CARGO_PKG_NAME"), "version": env!("CARGO_PKG_VERSION")},
        "parameters": parameters,
        "pseudonyms": if req.study.is_some() {
            "HMAC-SHA256 of the internal reference under the study's key (kept sealed in the database): the same child has the same pseudonym in every export of this study, and an unrelated one in any other"
        } else {
            "HMAC-SHA256 of the internal reference under a random key made for this export and never stored: no other export can be linked to this one"
        },
        "quasi_identifiers": ["age_band_at_start", "sex", "region", "episode_kind", "start_period", "moves_so_far", "plan", "plan_status", "safety_improved", "professionals"],
        "signature": "per child: its values of the quasi_identifiers (moves_so_far: its highest value over the child's rows), plus the number of its rows; k-anonymity holds over distinct children, and every family's combined signature (its children's signatures together) is shared by at least family_k families",
        "k": {"requested": k, "achieved": k_achieved, "family_k": params.family_k},
        "counts": {
            "children_in": shown(children_in as u64),
            "families_in": shown(families_in as u64),
            "rows_in": shown(rows_in),
            "children_out": shown(children_out as u64),
            "families_out": shown(families_out as u64),
            "rows_out": shown(rows_out),
            "erased_families_not_exported": shown(u64::try_from(erased).unwrap_or(0)),
        },
        "suppressed": {"children": shown(d.suppressed_count() as u64), "why": why},
        "study_union": study.as_ref().map(|(_, st)| serde_json::json!({
            "children_released_so_far": shown(st.children.len() as u64),
            "definition": "every export of this study uses the generalisation frozen at its first export; k (and family_k) hold over the union of every row released to the study, joined on the pseudonym",
        })),
        "generalisation": h.describe(d.levels),
        "lattice_nodes_evaluated": d.nodes_tried,
        "risk": {
            "children": d.children_risk,
            "families": d.family_risk,
            "definition": "re-identification risk of a child (family) = 1 / the number of children (families) sharing its signature",
        },
        "files": files,
    });
    let manifest_bytes = serde_json::to_vec_pretty(&manifest)
        .map_err(|e| OpError::Conflict(format!("cannot encode the manifest: {e}")))?;
    let mut recorded = files.clone();
    recorded.insert(
        "manifest.json".into(),
        write_file(&tmp.join("manifest.json"), &manifest_bytes)?,
    );

    // Record the export (and a new study's sealed key) and rename, in one step.
    let mut w = app.store.write().await?;
    if new_study_key && let Some(code) = &req.study {
        let (kek_id, kek) = app.keyring.current(&mut w, now.timestamp()).await?;
        let wrapped = kek.wrap_dek(key, &study_label(code));
        xs::insert_study_key(&mut w, code, kek_id, &wrapped, now.timestamp())
            .await
            .map_err(|e| {
                if e.is_unique_violation() {
                    ExportError::Op(OpError::Conflict(
                        "another export created this study's key at the same time; run the export again".into(),
                    ))
                } else {
                    e.into()
                }
            })?;
    }
    if let (Some((before, after)), Some(code)) = (&study, &req.study) {
        // Another export of the study in between would make this union check stale.
        if xs::study_state(&mut w, code).await? != *before {
            return Err(ExportError::Op(OpError::Conflict(
                "another export of this study ran at the same time; run the export again".into(),
            )));
        }
        let sealed = seal_json(key, after, &state_place(code))?;
        xs::set_study_state(&mut w, code, &sealed, now.timestamp()).await?;
    }
    let files_json = serde_json::to_string(&recorded).unwrap_or_default();
    let params_json = parameters.to_string();
    xs::insert_export(
        &mut w,
        &xs::NewExport {
            id: &id,
            created_at: now.timestamp(),
            actor: &app.actor.label(),
            study: req.study.as_deref(),
            parameters: &params_json,
            k_requested: i64::from(k),
            k_achieved: i64::from(k_achieved),
            children_out: children_out as i64,
            rows_out: rows_out as i64,
            files: &files_json,
        },
    )
    .await?;
    let detail = format!(
        "k={k};study={};from={};to={}",
        req.study.as_deref().unwrap_or("-"),
        day(req.from).unwrap_or_else(|| "-".into()),
        day(req.to).unwrap_or_else(|| "-".into()),
    );
    app.audit(
        &mut w,
        &Entry {
            action: "export.create",
            subject: Some(&id),
            detail: Some(&detail),
            ..Default::default()
        },
    )
    .await?;
    std::fs::rename(tmp, &req.out).map_err(io(&req.out))?;
    if let Err(e) = w.commit().await {
        let _ = std::fs::remove_dir_all(&req.out);
        return Err(e.into());
    }
    tracing::info!(export = %id, children = children_out, rows = rows_out, k = k, k_achieved, "export written");
    Ok(ExportSummary {
        export: id,
        out: req.out.clone(),
        k_requested: k,
        k_achieved,
        children_out,
        families_out: shown(families_out as u64),
        rows_out,
        children_suppressed: shown(d.suppressed_count() as u64),
        files: recorded,
    })
}
