//! `nazorg checkin …`: what is due, record an outcome or an attempt.

use super::*;

#[derive(Subcommand)]
pub enum CheckinCommand {
    /// Open check-ins due by now plus the reminder lead
    Due {
        /// Only check-ins of families this municipality is responsible for (CBS code, e.g. GM0363)
        #[arg(long, value_name = "CODE")]
        municipality: Option<String>,
    },
    /// Record a check-in's outcome from a JSON file (`-` for stdin)
    Record {
        /// The check-in record as JSON (`-` for stdin)
        #[arg(long, value_name = "FILE")]
        file: PathBuf,
    },
    /// Record one contact attempt (same JSON as `record`; `not_reached` keeps it open)
    Attempt {
        /// The attempt as JSON, the same shape as for `record` (`-` for stdin)
        #[arg(long, value_name = "FILE")]
        file: PathBuf,
    },
}

/// Runs one `Checkin` command.
pub async fn run(g: &Global, cmd: CheckinCommand) -> anyhow::Result<()> {
    match cmd {
        CheckinCommand::Due { municipality } => {
            let app = open_app(g, OpenMode::Existing, false).await?;
            let lines = service::checkin::due(&app, municipality.as_deref(), None)
                .await
                .map_err(op_failed)?;
            print(g.json, &lines, |ls| {
                lines_or(ls, "nothing is due", |l| {
                    format!(
                        "{}  {}  wave {}  {}  {}  {}\n",
                        l.checkin, l.family, l.wave, l.due_local, l.municipality, l.state
                    )
                })
            })
        }
        CheckinCommand::Record { file } | CheckinCommand::Attempt { file } => {
            let input = read_input(&file)?;
            let record = crate::domain::parse_json(&input).map_err(|e| op_failed(e.into()))?;
            let app = open_app(g, OpenMode::Existing, false).await?;
            let out = service::checkin::record(&app, &record)
                .await
                .map_err(op_failed)?;
            print(g.json, &out, |o| {
                let next = o
                    .next_checkin
                    .as_ref()
                    .map(|n| format!("; next {} due {}", n.id, n.due.to_rfc3339()))
                    .unwrap_or_default();
                match (o.status, o.next_attempt_due) {
                    ("open", Some(retry)) => format!(
                        "attempt {} of {} for family {} not reached; next attempt due {}\n",
                        o.attempt,
                        o.checkin,
                        o.family,
                        retry.to_rfc3339()
                    ),
                    _ => format!(
                        "{} {} for family {} ({}){next}\n",
                        o.status, o.checkin, o.family, o.outcome
                    ),
                }
            })
        }
    }
}
