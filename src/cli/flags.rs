//! `nazorg flags …`: list, acknowledge, resolve relapse-signal flags.

use super::*;

#[derive(Subcommand)]
pub enum FlagsCommand {
    /// Flags with their evidence (decrypted, for the responsible team)
    List {
        /// Only families this municipality is responsible for now
        #[arg(long, value_name = "CODE")]
        municipality: Option<String>,
        /// Only flags that are not resolved (open or acknowledged)
        #[arg(long)]
        open: bool,
    },
    /// Acknowledge a flag: the team is acting on it (the note is sealed)
    Ack {
        /// The flag (its number, as `flags list` shows it)
        id: i64,
        /// What the team is doing about it (sealed)
        #[arg(long, value_name = "TEXT")]
        note: String,
        /// Who acknowledges (sealed with the note)
        #[arg(long, value_name = "NAME")]
        by: Option<String>,
    },
    /// Resolve a flag (the note is sealed); a recurring condition raises a new flag
    Resolve {
        /// The flag (its number, as `flags list` shows it)
        id: i64,
        /// How it was resolved (sealed)
        #[arg(long, value_name = "TEXT")]
        note: String,
        /// Who resolves (sealed with the note)
        #[arg(long, value_name = "NAME")]
        by: Option<String>,
    },
}

/// Runs one `Flags` command.
pub async fn run(g: &Global, cmd: FlagsCommand) -> anyhow::Result<()> {
    match cmd {
        FlagsCommand::List { municipality, open } => {
            let app = open_app(g, OpenMode::Existing, false).await?;
            let flags = service::signals::list(&app, municipality.as_deref(), open)
                .await
                .map_err(op_failed)?;
            print(g.json, &flags, |fs| {
                lines_or(fs, "no flags", |f| {
                    format!(
                        "{:>6}  {:<6} {:<12} {:<12} {:<14} {:<24} {}\n",
                        f.id,
                        f.severity,
                        f.status,
                        f.family,
                        f.child.as_deref().unwrap_or("-"),
                        f.rule,
                        f.raised_at.to_rfc3339()
                    )
                })
            })
        }
        FlagsCommand::Ack { id, note, by } => {
            flag_step(g, id, service::signals::Step::Acknowledge, &note, by).await
        }
        FlagsCommand::Resolve { id, note, by } => {
            flag_step(g, id, service::signals::Step::Resolve, &note, by).await
        }
    }
}

async fn flag_step(
    g: &Global,
    id: i64,
    step: service::signals::Step,
    note: &str,
    by: Option<String>,
) -> anyhow::Result<()> {
    let app = open_app(g, OpenMode::Existing, false).await?;
    let out = service::signals::act(&app, id, step, note, by.as_deref())
        .await
        .map_err(op_failed)?;
    print(g.json, &out, |f| format!("flag {} is {}\n", f.id, f.status))
}
