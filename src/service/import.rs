//! `nazorg family import`: bulk enrolment from JSON Lines (one enrolment document per
//! line, exactly what `family enroll` takes).
//!
//! Every line is parsed first. The lines of a batch are checked by the rules of `family
//! enroll`, and the valid ones enrolled together in one transaction ([`enrolment::write`]:
//! sealed in memory, then a few multi-row statements and one durable commit), so a family
//! is enrolled whole or not at all. Rejected lines are reported with their line number and
//! the fields at fault, never with their content.

use super::enrolment::{self, References};
use super::{App, OpError};
use crate::domain::enrolment::Enrolment;
use crate::domain::{FieldError, reference};
use serde::Serialize;
use std::io::BufRead;

/// Families per transaction: large enough that commits do not dominate, small enough that
/// a batch holds SQLite's write lock only briefly (the daemon keeps working).
pub const BATCH: usize = 250;
/// Longest accepted line (one enrolment document).
pub const MAX_LINE: usize = 1024 * 1024;

#[derive(Debug, Serialize)]
pub struct ImportedLine {
    pub line: usize,
    pub family: String,
}

#[derive(Debug, Serialize)]
pub struct RejectedLine {
    pub line: usize,
    pub errors: Vec<FieldError>,
}

/// What `family import` answers.
#[derive(Debug, Default, Serialize)]
pub struct Imported {
    pub enrolled: Vec<ImportedLine>,
    pub rejected: Vec<RejectedLine>,
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("cannot read the input: {0}")]
    Read(#[from] std::io::Error),
    #[error(transparent)]
    Op(#[from] OpError),
}

/// The documents that parsed (with their line numbers) and the lines that did not.
pub type Parsed = (Vec<(usize, Enrolment)>, Vec<RejectedLine>);

/// Reads and parses every line (blank lines are skipped). Lines that do not parse, or are
/// longer than [`MAX_LINE`], are rejected with the field at fault.
pub fn parse_lines(input: impl BufRead) -> Result<Parsed, std::io::Error> {
    let mut ok = Vec::new();
    let mut rejected = Vec::new();
    for (i, line) in input.split(b'\n').enumerate() {
        let line_no = i + 1;
        let bytes = line?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        if bytes.len() > MAX_LINE {
            rejected.push(RejectedLine {
                line: line_no,
                errors: vec![FieldError::new(
                    "(line)",
                    format!("longer than {MAX_LINE} bytes"),
                )],
            });
            continue;
        }
        match crate::domain::parse_json::<Enrolment>(&bytes) {
            Ok(e) => ok.push((line_no, e)),
            Err(e) => rejected.push(RejectedLine {
                line: line_no,
                errors: vec![e],
            }),
        }
    }
    Ok((ok, rejected))
}

/// Enrols every valid document; invalid ones (by parsing or by the rules `family enroll`
/// applies) are reported and change nothing.
pub async fn import(app: &App, input: impl BufRead) -> Result<Imported, ImportError> {
    import_with(app, input, &mut reference::family).await
}

/// [`import`] with the family references drawn from `references` (a test forces a clash
/// with a stored family's reference so).
pub async fn import_with(
    app: &App,
    input: impl BufRead,
    references: References<'_>,
) -> Result<Imported, ImportError> {
    let (docs, mut rejected) = parse_lines(input)?;
    let mut out = Imported::default();
    for batch in docs.chunks(BATCH) {
        let mut lines = Vec::with_capacity(batch.len());
        let mut checked = Vec::with_capacity(batch.len());
        for (line, e) in batch {
            match enrolment::check(app, e) {
                Ok(c) => {
                    lines.push(*line);
                    checked.push(c);
                }
                Err(OpError::Invalid(errors)) => rejected.push(RejectedLine {
                    line: *line,
                    errors,
                }),
                Err(other) => return Err(other.into()),
            }
        }
        if checked.is_empty() {
            continue;
        }
        let mut tx = app.store.write().await.map_err(OpError::from)?;
        let enrolled = enrolment::write(app, &mut tx, &checked, &mut *references).await?;
        tx.commit().await.map_err(OpError::from)?;
        out.enrolled.extend(
            lines
                .into_iter()
                .zip(enrolled)
                .map(|(line, e)| ImportedLine {
                    line,
                    family: e.family,
                }),
        );
    }
    rejected.sort_by_key(|r| r.line);
    out.rejected = rejected;
    tracing::info!(
        enrolled = out.enrolled.len(),
        rejected = out.rejected.len(),
        "families imported"
    );
    Ok(out)
}
