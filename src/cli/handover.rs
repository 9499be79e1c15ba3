//! `nazorg move` and `nazorg handover …`: moves, acknowledgements, resends, lists.

use super::*;

#[derive(Subcommand)]
pub enum HandoverCommand {
    /// The receiving municipality confirms it took the family over
    Ack {
        /// The handover (its reference, H-…)
        id: String,
        /// CBS code of the acknowledging (receiving) municipality, e.g. GM0599
        #[arg(long, value_name = "CODE")]
        municipality: String,
        /// Who acknowledges (sealed under the family's key)
        #[arg(long, value_name = "NAME")]
        by: Option<String>,
        /// The family's new case director, JSON {"name", "email"} (sealed)
        #[arg(long, value_name = "FILE")]
        case_director_file: Option<PathBuf>,
    },
    /// Send a handover again: to a municipality configured since (instead of the
    /// outside-region desk), with a dossier withheld before once the receiver has a key
    Resend {
        /// The handover (its reference, H-…)
        id: String,
    },
    /// List handovers
    List {
        /// Only those not acknowledged yet
        #[arg(long, conflicts_with = "withheld")]
        pending: bool,
        /// Only those whose dossier was withheld (no age_recipient for the receiver)
        #[arg(long)]
        withheld: bool,
        /// Only handovers from or to this municipality (CBS code)
        #[arg(long, value_name = "CODE")]
        municipality: Option<String>,
    },
}

/// Runs one `Handover` command.
pub async fn run(g: &Global, cmd: HandoverCommand) -> anyhow::Result<()> {
    match cmd {
        HandoverCommand::Ack {
            id,
            municipality,
            by,
            case_director_file,
        } => {
            let director: Option<crate::domain::enrolment::CaseDirector> = match &case_director_file
            {
                Some(file) => {
                    let input = read_input(file)?;
                    Some(crate::domain::parse_json(&input).map_err(|e| op_failed(e.into()))?)
                }
                None => None,
            };
            let app = open_app(g, OpenMode::Existing, false).await?;
            let out = service::handover::ack_naming(
                &app,
                &id,
                &municipality,
                by.as_deref(),
                director.as_ref(),
            )
            .await
            .map_err(op_failed)?;
            print(g.json, &out, |o| {
                format!(
                    "handover {} of family {} acknowledged by {}\n",
                    o.handover, o.family, o.municipality
                )
            })
        }
        HandoverCommand::Resend { id } => {
            let app = open_app(g, OpenMode::Existing, false).await?;
            let out = service::handover::resend(&app, &id)
                .await
                .map_err(op_failed)?;
            print(g.json, &out, |o| {
                format!(
                    "handover {} of family {} resent to {} ({}), dossier {}\n",
                    o.handover, o.family, o.to, o.sent_to, o.dossier
                )
            })
        }
        HandoverCommand::List {
            pending,
            withheld,
            municipality,
        } => {
            let app = open_app(g, OpenMode::Existing, false).await?;
            let filter = service::handover::ListFilter {
                pending,
                withheld,
                municipality: municipality.as_deref(),
            };
            let out = service::handover::list(&app, filter)
                .await
                .map_err(op_failed)?;
            print(g.json, &out, |l| {
                lines_or(l, "no handovers", |h| {
                    format!(
                        "{}  {}  {:<8} {} -> {}  from {}  {:<12} dossier {}\n",
                        h.id,
                        h.family,
                        h.kind,
                        h.from,
                        h.to,
                        h.effective_at.to_rfc3339(),
                        h.status,
                        h.dossier
                    )
                })
            })
        }
    }
}

/// Registers a move (`nazorg move`): a handover to the receiving team.
pub async fn move_family(
    g: &Global,
    reference: String,
    to: String,
    date: chrono::NaiveDate,
    address_file: Option<PathBuf>,
) -> anyhow::Result<()> {
    let address = match &address_file {
        Some(f) => Some(
            String::from_utf8(read_input(f)?)
                .map_err(|_| {
                    error_out!("address: not UTF-8 text");
                    Exit(exit::DATAERR)
                })?
                .trim()
                .to_string(),
        ),
        None => None,
    };
    let app = open_app(g, OpenMode::Existing, false).await?;
    let req = service::handover::MoveRequest {
        family: reference,
        to,
        date,
        address,
    };
    let out = service::handover::move_family(&app, &req)
        .await
        .map_err(op_failed)?;
    print(g.json, &out, print_handover)
}

pub(super) fn print_handover(o: &service::handover::HandoverCreated) -> String {
    let mut s = format!(
        "handover {} of family {}: {} -> {} from {} (dossier {})\n",
        o.handover,
        o.family,
        o.from,
        o.to,
        o.effective_at.to_rfc3339(),
        o.dossier
    );
    if let Some(p) = &o.supersedes {
        s.push_str(&format!("  supersedes unacknowledged handover {p}\n"));
    }
    s
}
