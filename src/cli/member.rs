//! `nazorg member …`: team members who sign in to the workspace.

use super::*;

#[derive(Subcommand)]
pub enum MemberCommand {
    /// Register a team member; they sign in with a link mailed to this address
    Add {
        /// CBS code of the member's municipality, e.g. GM0363
        #[arg(long, value_name = "CODE")]
        municipality: String,
        /// The address their sign-in links are mailed to
        #[arg(long, value_name = "ADDR")]
        email: String,
        /// Their name, as the workspace shows it
        #[arg(long, value_name = "NAME")]
        name: String,
    },
    /// List members (active and removed)
    List {
        /// Only members of this municipality (CBS code)
        #[arg(long, value_name = "CODE")]
        municipality: Option<String>,
    },
    /// Remove a member: no more sign-in, their sessions end at once
    Remove {
        /// The member (their id, as `member list` shows it)
        id: String,
    },
}

/// Runs one `Member` command.
pub async fn run(g: &Global, cmd: MemberCommand) -> anyhow::Result<()> {
    match cmd {
        MemberCommand::Add {
            municipality,
            email,
            name,
        } => {
            let app = open_app(g, OpenMode::Existing, false).await?;
            let m = service::members::add(&app, &municipality, &email, &name)
                .await
                .map_err(op_failed)?;
            print(g.json, &m, |m| {
                format!("member {} added for {}\n", m.id, m.municipality)
            })
        }
        MemberCommand::List { municipality } => {
            let app = open_app(g, OpenMode::Existing, false).await?;
            let list = service::members::list(&app, municipality.as_deref())
                .await
                .map_err(op_failed)?;
            print(g.json, &list, |l| {
                l.iter()
                    .map(|m| {
                        format!(
                            "{}  {}  {:<8} {} <{}>\n",
                            m.id,
                            m.municipality,
                            if m.removed_at.is_some() {
                                "removed"
                            } else {
                                "active"
                            },
                            m.name,
                            m.email
                        )
                    })
                    .collect()
            })
        }
        MemberCommand::Remove { id } => {
            let app = open_app(g, OpenMode::Existing, false).await?;
            service::members::remove(&app, &id)
                .await
                .map_err(op_failed)?;
            print(g.json, &serde_json::json!({"removed": id}), |_| {
                format!("removed {id}\n")
            })
        }
    }
}
