//! Pass 2: the rows. The families are read again batch by batch; each batch's rows are
//! opened, formatted, checked against the codebook and written to the shuffle buckets.
//!
//! Reading and writing overlap: while the blocking thread writes batch N, the async task
//! already reads batch N+1 from the database, so the export uses both cores (before, 80%
//! of its CPU was on one thread). At most two batches are in memory at a time, so memory
//! stays bounded by the batch size, not by the rows. The writer is moved into the blocking
//! task with each batch and handed back, so there is one writer and the rows reach the
//! buckets in one sequence, as before.

use super::observed::{pick, push_code};
use super::{
    BATCH, ExportError, FamilyState, Pass1, Window, family_dek, io, months_between, pseudonym,
};
use crate::crypto::{Dek, FieldOpener, FieldPlace};
use crate::domain::anonymise::{
    Codebook, Decision, EPISODE_CODES, Hierarchy, NotInCodebook, SEX_CODES, moves_code,
};
use crate::service::OpError;
use crate::store::{self, Conn, StoreError, export as xs};
use rand::Rng;
use rand::rngs::StdRng;
use std::collections::HashMap;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::sync::Arc;
use tokio::task::JoinHandle;

/// What every batch of pass 2 needs and nothing changes: shared with the writer thread.
pub(super) struct Plan {
    pub p: Pass1,
    pub d: Decision,
    pub h: Hierarchy,
    pub cb: Codebook,
    pub key: Arc<Dek>,
    pub tz: chrono_tz::Tz,
    pub indicators: Vec<String>,
    /// Per indicator: a scale (its values are rounded to whole numbers).
    pub scale: Vec<bool>,
}

/// One batch of families as read from the database (sealed values still sealed).
struct Batch {
    fams: Vec<xs::ExportFamily>,
    kids: Vec<xs::ExportChild>,
    checkins: Vec<xs::CheckinObserved>,
    flags: Vec<(i64, Option<i64>, String)>,
}

/// Reads the batch of families after `after`: `None` when there are no more.
async fn read_batch(conn: &mut Conn, after: i64, w: &Window) -> Result<Option<Batch>, ExportError> {
    let fams = xs::families_after(conn, after, BATCH).await?;
    let (Some(first), Some(last)) = (fams.first(), fams.last()) else {
        return Ok(None);
    };
    let (lo, hi) = (first.id, last.id);
    Ok(Some(Batch {
        kids: xs::children_between(conn, lo, hi).await?,
        checkins: xs::checkins_observed_between(conn, lo, hi, w.from, w.to).await?,
        flags: xs::flags_between(conn, lo, hi).await?,
        fams,
    }))
}

/// The only writer of the shuffle buckets, with its reused buffers.
pub(super) struct RowWriter {
    buckets: Vec<BufWriter<std::fs::File>>,
    bucket_dir: PathBuf,
    rng: StdRng,
    opener: FieldOpener,
    /// The cells of the row being built (reused from row to row).
    row: Vec<String>,
    line: String,
    /// The observation's place (`checkin/member`), rebuilt per row in one buffer.
    place_row: String,
    rows_out: u64,
    families_out: usize,
}

impl RowWriter {
    pub fn new(buckets: Vec<BufWriter<std::fs::File>>, bucket_dir: PathBuf) -> Self {
        RowWriter {
            buckets,
            bucket_dir,
            rng: <StdRng as rand::SeedableRng>::from_entropy(),
            opener: FieldOpener::new(),
            row: Vec::new(),
            line: String::with_capacity(256),
            place_row: String::new(),
            rows_out: 0,
            families_out: 0,
        }
    }
}

/// Writes every row of the export to the buckets: `(rows_out, families_out)`. The buckets
/// are flushed and closed at the end.
pub(super) async fn pass2(
    conn: &mut Conn,
    w: &Window,
    plan: Arc<Plan>,
    writer: RowWriter,
) -> Result<(u64, usize), ExportError> {
    let mut writer = Some(writer);
    let mut pending: Option<JoinHandle<Result<RowWriter, ExportError>>> = None;
    let mut after = 0i64;
    loop {
        // Batch N+1 is read while the writer thread is busy with batch N.
        let next = read_batch(conn, after, w).await;
        if let Some(task) = pending.take() {
            writer = Some(joined(task).await?);
        }
        let Some(batch) = next? else {
            break;
        };
        after = batch.fams.last().map_or(after, |f| f.id);
        let (Some(mut wr), plan) = (writer.take(), plan.clone()) else {
            return Err(worker_lost());
        };
        pending = Some(tokio::task::spawn_blocking(move || {
            wr.write_batch(&plan, batch)?;
            Ok(wr)
        }));
    }
    let Some(mut wr) = writer else {
        return Err(worker_lost());
    };
    for b in &mut wr.buckets {
        b.flush().map_err(io(&wr.bucket_dir))?;
    }
    Ok((wr.rows_out, wr.families_out))
}

/// The writer back from its blocking task (a panic there is reported, not resumed).
async fn joined(
    task: JoinHandle<Result<RowWriter, ExportError>>,
) -> Result<RowWriter, ExportError> {
    task.await.map_err(|_| worker_lost())?
}

fn worker_lost() -> ExportError {
    ExportError::Op(OpError::Conflict(
        "the export's row writer stopped unexpectedly; nothing was written".into(),
    ))
}

/// A kept child of the family being written, with what is the same on all its rows.
struct KeptChild<'b> {
    member: i64,
    reference: &'b str,
    pseudonym: String,
    /// episode_kind … moves_so_far.
    head: [String; 6],
    /// plan … professionals.
    tail: [String; 4],
}

/// The family being written: its key unwrapped once, its pseudonyms made once.
struct FamilyOut<'b> {
    reference: &'b str,
    state: &'b FamilyState,
    dek: Option<Dek>,
    pseudonym: String,
    kept: Vec<KeptChild<'b>>,
}

/// A batch's lookups, by id.
struct Index<'b> {
    families: HashMap<i64, &'b xs::ExportFamily>,
    refs: HashMap<i64, &'b str>,
    /// `(member_id or None for the family, rule)` by check-in.
    flags: HashMap<i64, Vec<(Option<i64>, &'b str)>>,
}

impl<'b> Index<'b> {
    fn new(b: &'b Batch) -> Self {
        let mut flags: HashMap<i64, Vec<(Option<i64>, &str)>> = HashMap::new();
        for (c, m, rule) in &b.flags {
            flags.entry(*c).or_default().push((*m, rule.as_str()));
        }
        Index {
            families: b.fams.iter().map(|f| (f.id, f)).collect(),
            refs: b
                .kids
                .iter()
                .map(|c| (c.id, c.reference.as_str()))
                .collect(),
            flags,
        }
    }
}

impl RowWriter {
    /// Writes the rows of one batch: per check-in of a family with kept children, one row
    /// per kept child.
    fn write_batch(&mut self, plan: &Plan, batch: Batch) -> Result<(), ExportError> {
        let ix = Index::new(&batch);
        let mut current: Option<FamilyOut> = None;
        let mut tried = None;
        for observed in &batch.checkins {
            let c = &observed.checkin;
            // A batch's check-ins come by family, so each family is prepared once.
            if tried != Some(c.family_id) {
                tried = Some(c.family_id);
                current = family_out(plan, &ix, c.family_id)?;
                if current.is_some() {
                    self.families_out += 1;
                }
            }
            if let Some(out) = &current {
                self.write_checkin(plan, &ix, out, observed)?;
            }
        }
        Ok(())
    }

    /// The rows of one check-in, one per kept child of its family.
    fn write_checkin(
        &mut self,
        plan: &Plan,
        ix: &Index,
        out: &FamilyOut,
        observed: &xs::CheckinObserved,
    ) -> Result<(), ExportError> {
        let c = &observed.checkin;
        let Some(dek) = &out.dek else {
            return Ok(());
        };
        let due_local = store::from_secs(c.due_at)?
            .with_timezone(&plan.tz)
            .date_naive();
        let months = months_between(out.state.start, due_local).min(out.state.plan_months);
        let outcome = match (c.status.as_str(), &c.outcome) {
            ("recorded", Some(o)) => o.as_str(),
            ("missed", _) => "missed",
            ("lapsed", _) => "lapsed",
            _ => "not_recorded",
        };
        let mode = c.mode.as_deref().unwrap_or("none");
        // The child's own flags and the family's, each code once, sorted.
        let raised = ix.flags.get(&c.id);
        let mut codes: Vec<&str> = Vec::new();
        for child in &out.kept {
            let mut n = 0;
            put(&mut self.row, &mut n, &child.pseudonym);
            put(&mut self.row, &mut n, &out.pseudonym);
            put_int(&mut self.row, &mut n, c.wave);
            put_int(&mut self.row, &mut n, i64::from(months));
            for v in &child.head {
                put(&mut self.row, &mut n, v);
            }
            put(&mut self.row, &mut n, outcome);
            put(&mut self.row, &mut n, mode);
            let sealed = observed
                .observations
                .iter()
                .find(|(m, _)| *m == child.member);
            match sealed.map(|(_, s)| s) {
                Some(sealed) => {
                    self.place_row.clear();
                    self.place_row.push_str(&c.reference);
                    self.place_row.push('/');
                    self.place_row.push_str(child.reference);
                    let place = FieldPlace {
                        family: out.reference,
                        table: "observations",
                        column: "sealed_values",
                        row: &self.place_row,
                    };
                    let json = self.opener.open(dek, sealed, &place)?;
                    let mut picked = Vec::with_capacity(plan.indicators.len());
                    pick(json, &plan.indicators, &mut picked).map_err(|_| {
                        StoreError::Corrupt(format!(
                            "sealed {}.{} of {} does not decode",
                            place.table, place.column, place.family
                        ))
                    })?;
                    for ((ind, scale), v) in plan.indicators.iter().zip(&plan.scale).zip(&picked) {
                        let cell = cell(&mut self.row, &mut n);
                        if let Some(v) = v
                            && !push_code(cell, *scale, v)
                        {
                            return Err(NotInCodebook {
                                column: ind.clone(),
                                why: "not a single coded value",
                            }
                            .into());
                        }
                    }
                }
                None => {
                    for _ in &plan.indicators {
                        put(&mut self.row, &mut n, "");
                    }
                }
            }
            codes.clear();
            if let Some(raised) = raised {
                codes.extend(
                    raised
                        .iter()
                        .filter(|(m, _)| m.is_none_or(|m| m == child.member))
                        .map(|(_, r)| *r),
                );
                codes.sort_unstable();
                codes.dedup();
            }
            let flags_cell = cell(&mut self.row, &mut n);
            for (i, code) in codes.iter().enumerate() {
                if i > 0 {
                    flags_cell.push(';');
                }
                flags_cell.push_str(code);
            }
            for v in &child.tail {
                put(&mut self.row, &mut n, v);
            }
            self.emit(&plan.cb, n)?;
        }
        Ok(())
    }

    /// Checks the first `n` cells against the codebook and writes them as one line to a
    /// random bucket.
    fn emit(&mut self, cb: &Codebook, n: usize) -> Result<(), ExportError> {
        let row = self.row.get(..n).unwrap_or(&[]);
        // The gate: nothing reaches a file unless the codebook allows it.
        cb.check_row(row)?;
        self.line.clear();
        for (i, v) in row.iter().enumerate() {
            if i > 0 {
                self.line.push(',');
            }
            self.line.push_str(v);
        }
        self.line.push('\n');
        let b = self.rng.gen_range(0..self.buckets.len());
        if let Some(bucket) = self.buckets.get_mut(b) {
            bucket
                .write_all(self.line.as_bytes())
                .map_err(io(&self.bucket_dir))?;
        }
        self.rows_out += 1;
        Ok(())
    }
}

/// The family `id` as written, or `None` if none of its children is kept (or it is not in
/// pass 1: nothing of it is exported).
fn family_out<'b>(
    plan: &'b Plan,
    ix: &Index<'b>,
    id: i64,
) -> Result<Option<FamilyOut<'b>>, ExportError> {
    let (p, d, h) = (&plan.p, &plan.d, &plan.h);
    let l = d.levels;
    let (Some(fs), Some(f)) = (p.family(id), ix.families.get(&id).copied()) else {
        return Ok(None);
    };
    let first = fs.first_child as usize;
    let mut kept = Vec::new();
    for i in first..first + fs.children as usize {
        if !d.kept(i) {
            continue;
        }
        let (Some(child), Some(member)) = (p.children.get(i), p.member_ids.get(i)) else {
            continue;
        };
        let reference = ix.refs.get(member).copied().unwrap_or("");
        let (safety, professionals) =
            Hierarchy::evaluation_labels(l.plan, child.safety, child.professionals);
        kept.push(KeptChild {
            member: *member,
            pseudonym: pseudonym(&plan.key, "child", reference),
            reference,
            head: [
                EPISODE_CODES[usize::from(child.episode_kind) % EPISODE_CODES.len()].into(),
                Hierarchy::period_label(l.period, child.year, child.half),
                h.age_index(l.age, child.age)
                    .map(|a| h.age_label(l.age, a))
                    .unwrap_or_default(),
                SEX_CODES[usize::from(child.sex) % SEX_CODES.len()].into(),
                h.region_label(l.region, usize::from(child.region)),
                moves_code(child.moves),
            ],
            tail: [
                h.plan_label(l.plan, child.plan),
                Hierarchy::status_label(l.plan, child.status),
                safety,
                professionals,
            ],
        });
    }
    if kept.is_empty() {
        return Ok(None);
    }
    Ok(Some(FamilyOut {
        reference: &f.reference,
        state: fs,
        dek: family_dek(&p.keks, f)?,
        pseudonym: pseudonym(&plan.key, "family", &f.reference),
        kept,
    }))
}

/// The next cell of a row being built (cells are reused from row to row).
fn cell<'a>(row: &'a mut Vec<String>, n: &mut usize) -> &'a mut String {
    if *n == row.len() {
        row.push(String::new());
    }
    let i = *n;
    *n += 1;
    let c = &mut row[i];
    c.clear();
    c
}

fn put(row: &mut Vec<String>, n: &mut usize, v: &str) {
    cell(row, n).push_str(v);
}

fn put_int(row: &mut Vec<String>, n: &mut usize, v: i64) {
    use std::fmt::Write as _;
    let _ = write!(cell(row, n), "{v}");
}
