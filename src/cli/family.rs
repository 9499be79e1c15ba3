//! `nazorg family …`: enrol, import, show, update, close, evaluate, erase, reassign.

use super::*;

#[derive(Subcommand)]
pub enum FamilyCommand {
    /// Enrol a family from a JSON file (`-` for stdin)
    Enroll {
        /// The enrolment as JSON (`-` for stdin)
        #[arg(long, value_name = "FILE")]
        file: PathBuf,
    },
    /// Enrol many families from JSON Lines: one `family enroll` document per line (`-` for
    /// stdin). Valid lines are enrolled, each family whole or not at all; rejected lines
    /// are listed with their line number and fields (exit 65 if any)
    Import {
        /// JSON Lines, one enrolment per line (`-` for stdin)
        #[arg(long, value_name = "FILE")]
        file: PathBuf,
    },
    /// The whole decrypted record of a family (for the operator)
    Show {
        /// The family (its reference, F-…)
        reference: String,
    },
    /// Keep the record up to date from a JSON file (`-` for stdin): address, notes,
    /// case_director, contacts [{member, phone?, email?}], add_members (role adult, child
    /// or ex_partner with a court measure), remove_members [{member, reason}], measures,
    /// safety_plan {text, review_on}; all or nothing, each change sealed and audited
    Update {
        /// The family (its reference, F-…)
        reference: String,
        /// The update as JSON (`-` for stdin)
        #[arg(long, value_name = "FILE")]
        file: PathBuf,
    },
    /// Close a plan before its term, with a reason code and the evaluation
    Close {
        /// The family (its reference, F-…)
        reference: String,
        /// Why the plan ends early
        #[arg(long, value_name = "CODE", value_parser = Codes(service::family::CLOSE_REASONS))]
        reason: String,
        /// Did the family's safety improve: yes, partly or no
        #[arg(long, value_name = "CODE", value_parser = Codes(crate::domain::evaluation::SAFETY_CODES))]
        safety_improved: Option<String>,
        /// Professionals involved with the family now (0 to 50)
        #[arg(long, value_name = "N")]
        professionals: Option<String>,
        /// The family's own view, as text in a file (`-` for stdin); sealed
        #[arg(long, value_name = "FILE")]
        family_view_file: Option<PathBuf>,
        /// The coordinator approving a closure while a red flag is open; sealed
        #[arg(long, value_name = "NAME")]
        approved_by: Option<String>,
    },
    /// Record the evaluation of an ended plan from a JSON file (`-` for stdin):
    /// {"safety_improved": "yes|partly|no", "professionals": N, "family_view"?: TEXT}
    Evaluate {
        /// The family (its reference, F-…)
        reference: String,
        /// The evaluation as JSON (`-` for stdin)
        #[arg(long, value_name = "FILE")]
        file: PathBuf,
    },
    /// Erase a family for good, with a reason code: a tombstone (reference, time, reason)
    /// is all that is left; its messages' bodies and attachments go, pending ones are
    /// cancelled; lists the exports that may still hold it
    Erase {
        /// The family (its reference, F-…)
        reference: String,
        /// Why the family is erased
        #[arg(long, value_name = "CODE", value_parser = Codes(service::family::ERASE_REASONS))]
        reason: String,
        /// Really erase (without it, only says what would be erased; exit 64)
        #[arg(long)]
        yes: bool,
    },
    /// A new case director within the municipality, from a JSON file {"name", "email"};
    /// the team gets the dossier as after a move
    Reassign {
        /// The family (its reference, F-…)
        reference: String,
        /// The new case director as JSON {"name", "email"} (`-` for stdin)
        #[arg(long, value_name = "FILE")]
        case_director_file: PathBuf,
    },
}

/// Runs one `Family` command.
pub async fn run(g: &Global, cmd: FamilyCommand) -> anyhow::Result<()> {
    match cmd {
        FamilyCommand::Enroll { file } => {
            let input = read_input(&file)?;
            let enrolment = crate::domain::parse_json(&input).map_err(|e| op_failed(e.into()))?;
            let app = open_app(g, OpenMode::Existing, false).await?;
            let out = service::family::enrol(&app, &enrolment)
                .await
                .map_err(op_failed)?;
            print(g.json, &out, |o| {
                let mut s = format!("enrolled family {}\n", o.family);
                for m in &o.members {
                    s.push_str(&format!("  member {} ({})\n", m.reference, m.role));
                }
                for c in &o.checkins {
                    s.push_str(&format!(
                        "  check-in {} wave {} due {} [{}]\n",
                        c.id,
                        c.wave,
                        c.due.to_rfc3339(),
                        c.status
                    ));
                }
                s
            })
        }
        FamilyCommand::Import { file } => {
            let app = open_app(g, OpenMode::Existing, false).await?;
            let input: Box<dyn std::io::BufRead> = if file.as_os_str() == "-" {
                Box::new(std::io::BufReader::new(std::io::stdin()))
            } else {
                Box::new(std::io::BufReader::new(
                    std::fs::File::open(&file)
                        .with_context(|| format!("cannot open {}", file.display()))?,
                ))
            };
            let out = service::import::import(&app, input)
                .await
                .map_err(|e| match e {
                    service::import::ImportError::Op(op) => op_failed(op),
                    read => {
                        error_out!("{read}");
                        Exit(exit::NOINPUT).into()
                    }
                })?;
            print(g.json, &out, |o| {
                let mut s = format!(
                    "enrolled {} families; rejected {} lines\n",
                    o.enrolled.len(),
                    o.rejected.len()
                );
                for r in &o.rejected {
                    for e in &r.errors {
                        s.push_str(&format!("  line {}: {}: {}\n", r.line, e.field, e.message));
                    }
                }
                s
            })?;
            if out.rejected.is_empty() {
                Ok(())
            } else {
                Err(Exit(exit::DATAERR).into())
            }
        }
        FamilyCommand::Show { reference } => {
            let app = open_app(g, OpenMode::Existing, false).await?;
            let view = service::family::show(&app, &reference)
                .await
                .map_err(op_failed)?;
            // The record is structured data either way.
            println!("{}", serde_json::to_string_pretty(&view)?);
            Ok(())
        }
        FamilyCommand::Close {
            reference,
            reason,
            safety_improved,
            professionals,
            family_view_file,
            approved_by,
        } => {
            let family_view = match &family_view_file {
                Some(p) => Some(String::from_utf8(read_input(p)?).map_err(|_| {
                    error_out!("family_view: the file is not UTF-8 text");
                    anyhow::Error::from(Exit(exit::DATAERR))
                })?),
                None => None,
            };
            let req = service::family::CloseRequest {
                reason,
                approved_by,
                evaluation: crate::domain::evaluation::EvaluationInput {
                    safety_improved,
                    professionals: professionals.map(|p| match p.trim().parse::<u64>() {
                        Ok(n) => serde_json::Value::from(n),
                        Err(_) => serde_json::Value::String(p),
                    }),
                    family_view,
                },
            };
            let app = open_app(g, OpenMode::Existing, false).await?;
            let out = service::family::close(&app, &reference, &req)
                .await
                .map_err(op_failed)?;
            print(g.json, &out, |o| {
                format!(
                    "closed family {} ({}); {} open check-ins cancelled{}\n",
                    o.family,
                    o.reason,
                    o.checkins_cancelled,
                    o.coordinator_notified
                        .as_ref()
                        .map(|c| format!("; coordinator {c} notified"))
                        .unwrap_or_default()
                )
            })
        }
        FamilyCommand::Update { reference, file } => {
            let bytes = read_input(&file)?;
            let input: crate::domain::household::FamilyUpdate = match serde_json::from_slice(&bytes)
            {
                Ok(i) => i,
                Err(e) => {
                    error_out!("file: not a family update ({e})");
                    return Err(Exit(exit::DATAERR).into());
                }
            };
            let app = open_app(g, OpenMode::Existing, false).await?;
            let out = service::record::update(&app, &reference, &input)
                .await
                .map_err(op_failed)?;
            print(g.json, &out, |o| {
                let mut s = format!("family {} updated: {}\n", o.family, o.changed.join(", "));
                for m in &o.added {
                    s.push_str(&format!("  added {} ({})\n", m.reference, m.role));
                }
                for m in &o.removed {
                    s.push_str(&format!("  left {m}\n"));
                }
                s
            })
        }
        FamilyCommand::Evaluate { reference, file } => {
            let bytes = read_input(&file)?;
            let input: crate::domain::evaluation::EvaluationInput =
                match serde_json::from_slice(&bytes) {
                    Ok(i) => i,
                    Err(e) => {
                        error_out!("file: not an evaluation ({e})");
                        return Err(Exit(exit::DATAERR).into());
                    }
                };
            let app = open_app(g, OpenMode::Existing, false).await?;
            let out = service::family::evaluate(&app, &reference, &input)
                .await
                .map_err(op_failed)?;
            print(g.json, &out, |o| {
                format!(
                    "evaluation recorded for family {} (safety improved: {})\n",
                    o.family, o.safety_improved
                )
            })
        }
        FamilyCommand::Erase {
            reference,
            reason,
            yes,
        } => {
            let app = open_app(g, OpenMode::Existing, false).await?;
            if !yes {
                let p = service::erasure::preview(&app, &reference, &reason)
                    .await
                    .map_err(op_failed)?;
                error_out!(
                    "this would erase family {} for good: its data key and sealed details, \
                     {} members, {} check-ins with their observations, {} flags, {} handovers and its \
                     responsibility history; the bodies and attachments of its {} messages \
                     ({} pending, which would be cancelled). {} export(s) made since its \
                     enrolment may still hold it{}. Add --yes to erase.",
                    p.family,
                    p.members,
                    p.checkins,
                    p.flags,
                    p.handovers,
                    p.messages,
                    p.pending_messages,
                    p.exports_may_hold.len(),
                    export_list(&p.exports_may_hold),
                );
                return Err(Exit(exit::USAGE).into());
            }
            let out = service::erasure::erase(&app, &reference, &reason)
                .await
                .map_err(op_failed)?;
            print(g.json, &out, |o| {
                let mut s = format!(
                    "erased family {} ({}): {} pending messages cancelled, {} attachments deleted, \
                     {} message bodies dropped, {} mail copies removed\n",
                    o.family,
                    o.reason,
                    o.messages.cancelled,
                    o.messages.attachments_deleted,
                    o.messages.bodies_dropped,
                    o.mail_files_removed
                );
                for e in &o.exports_may_hold {
                    s.push_str(&format!(
                        "  export {} ({}) may still hold it until {}: {}\n",
                        e.export,
                        e.created_at.to_rfc3339(),
                        e.expires_at.map(|t| t.to_rfc3339()).unwrap_or_default(),
                        e.folder
                            .as_ref()
                            .map(|f| f.display().to_string())
                            .unwrap_or_else(|| {
                                "written outside state_dir/exports; delete its copies by hand"
                                    .into()
                            })
                    ));
                }
                s
            })
        }
        FamilyCommand::Reassign {
            reference,
            case_director_file,
        } => {
            let input = read_input(&case_director_file)?;
            let director: crate::domain::enrolment::CaseDirector =
                crate::domain::parse_json(&input).map_err(|e| op_failed(e.into()))?;
            let app = open_app(g, OpenMode::Existing, false).await?;
            let out = service::handover::reassign(&app, &reference, &director)
                .await
                .map_err(op_failed)?;
            print(g.json, &out, super::handover::print_handover)
        }
    }
}

/// `: X-…, X-…` for a list of exports, or nothing.
fn export_list(exports: &[service::erasure::ExportMayHold]) -> String {
    if exports.is_empty() {
        return String::new();
    }
    let ids: Vec<&str> = exports.iter().map(|e| e.export.as_str()).collect();
    format!(" ({})", ids.join(", "))
}
