//! `nazorg outbox …`: the queue of messages.

use super::*;

#[derive(Subcommand)]
pub enum OutboxCommand {
    /// List messages (all, or only those that failed for good)
    List {
        /// Only messages that failed for good
        #[arg(long)]
        failed: bool,
    },
}

/// Runs one `Outbox` command.
pub async fn run(g: &Global, cmd: OutboxCommand) -> anyhow::Result<()> {
    match cmd {
        OutboxCommand::List { failed } => {
            let app = open_app(g, OpenMode::Existing, false).await?;
            let mut conn = app.store.conn().await?;
            let list = crate::store::outbox::list(&mut conn, failed)
                .await
                .map_err(|e| op_failed(e.into()))?;
            print(g.json, &list, |l| {
                lines_or(l, "no messages", |m| {
                    format!(
                        "{:>6}  {:<8} {:<11} {:<40} attempts {}{}\n",
                        m.id,
                        m.status,
                        m.kind,
                        m.recipients.join(","),
                        m.attempts,
                        m.last_error
                            .as_ref()
                            .map(|e| format!("  last error: {e}"))
                            .unwrap_or_default()
                    )
                })
            })
        }
    }
}
