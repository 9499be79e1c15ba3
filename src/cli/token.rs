//! `nazorg token …`: API tokens.

use super::*;

#[derive(Subcommand)]
pub enum TokenCommand {
    /// Create a token (printed once): for a municipality's team, a researcher's study, or an administrator
    Create {
        /// A team token for this municipality (CBS code, e.g. GM0363)
        #[arg(long, value_name = "CODE", group = "role")]
        municipality: Option<String>,
        /// A researcher token for this study code
        #[arg(long, value_name = "STUDY", group = "role")]
        researcher: Option<String>,
        /// An administrator token
        #[arg(long, group = "role")]
        admin: bool,
        /// How long the token is valid, e.g. P30D [default: api.token_lifetime, P90D]
        #[arg(long, value_name = "DURATION")]
        expires: Option<String>,
        /// A note for yourself on what the token is for (shown by `token list`)
        #[arg(long)]
        label: Option<String>,
    },
    /// List tokens (never their secrets)
    List,
    /// Revoke a token
    Revoke {
        /// The token (its id, as `token list` shows it)
        id: String,
    },
}

/// Runs one `Token` command.
pub async fn run(g: &Global, cmd: TokenCommand) -> anyhow::Result<()> {
    match cmd {
        TokenCommand::Create {
            municipality,
            researcher,
            admin,
            expires,
            label,
        } => {
            let scope = match (municipality, researcher, admin) {
                (Some(m), None, false) => crate::tokens::Scope::Municipality(m),
                (None, Some(s), false) => crate::tokens::Scope::Researcher(s),
                (None, None, true) => crate::tokens::Scope::Admin,
                _ => {
                    error_out!(
                        "give exactly one of --municipality CODE, --researcher STUDY, --admin"
                    );
                    return Err(Exit(exit::DATAERR).into());
                }
            };
            let expires = match expires {
                Some(e) => Some(e.parse::<crate::domain::duration::IsoDuration>().map_err(
                    |err| {
                        error_out!("expires: {err}");
                        anyhow::Error::from(Exit(exit::DATAERR))
                    },
                )?),
                None => None,
            };
            let app = open_app(g, OpenMode::Existing, false).await?;
            let out = crate::tokens::create(&app, &scope, expires, label.as_deref())
                .await
                .map_err(op_failed)?;
            print(g.json, &out, |o| {
                format!(
                    "token {} ({}): {}\nstore it now: it is not shown again\n",
                    o.id, o.role, o.token
                )
            })
        }
        TokenCommand::List => {
            let app = open_app(g, OpenMode::Existing, false).await?;
            let list = crate::tokens::list(&app).await.map_err(op_failed)?;
            print(g.json, &list, |l| {
                lines_or(l, "no API tokens", |t| {
                    let scope = t
                        .municipality
                        .clone()
                        .or(t.study.clone())
                        .unwrap_or_default();
                    let state = if t.revoked_at.is_some() {
                        "revoked"
                    } else {
                        "active"
                    };
                    format!(
                        "{}  {:<12} {:<12} {:<8} {}\n",
                        t.id,
                        t.role,
                        scope,
                        state,
                        t.label.clone().unwrap_or_default()
                    )
                })
            })
        }
        TokenCommand::Revoke { id } => {
            let app = open_app(g, OpenMode::Existing, false).await?;
            crate::tokens::revoke(&app, &id).await.map_err(op_failed)?;
            print(g.json, &serde_json::json!({"revoked": id}), |_| {
                format!("revoked {id}\n")
            })
        }
    }
}
