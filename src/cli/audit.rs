//! `nazorg audit …`: verify and list the tamper-evident audit trail.

use super::*;

#[derive(Subcommand)]
pub enum AuditCommand {
    /// Check the MAC chain; names the first forged entry and every edited, deleted or
    /// reordered one (exit 65 if any)
    Verify {
        /// A head recorded earlier (the sweep logs it): `SEQ:MAC`; that entry must still
        /// exist with that MAC, so a removed tail or a rewritten chain is found
        #[arg(long, value_name = "SEQ:MAC")]
        head: Option<crate::audit::Head>,
    },
    /// List entries, optionally for one family
    List {
        /// Only entries about this family (its reference, F-…)
        #[arg(long, value_name = "REF")]
        family: Option<String>,
    },
}

/// Runs one `Audit` command.
pub async fn run(g: &Global, cmd: AuditCommand) -> anyhow::Result<()> {
    match cmd {
        AuditCommand::Verify { head } => {
            let app = open_app(g, OpenMode::Existing, false).await?;
            let mut conn = app.store.conn().await?;
            let v = crate::audit::verify(&mut conn, &app.keyring, head.as_ref())
                .await
                .map_err(|e| op_failed(e.into()))?;
            print(g.json, &v, |v| {
                let mut s = format!("{} entries, head {}\n", v.entries, v.head);
                if let Some(f) = v.first_forged {
                    s.push_str(&format!("TAMPERED: the first forged entry is {f}\n"));
                }
                for p in &v.problems {
                    s.push_str(&format!("TAMPERED: {p}\n"));
                }
                if v.problems.is_empty() {
                    s.push_str("the audit trail is intact\n");
                }
                s
            })?;
            if v.problems.is_empty() {
                Ok(())
            } else {
                Err(Exit(exit::DATAERR).into())
            }
        }
        AuditCommand::List { family } => {
            let app = open_app(g, OpenMode::Existing, false).await?;
            let mut conn = app.store.conn().await?;
            let lines = crate::audit::list(&mut conn, family.as_deref())
                .await
                .map_err(|e| op_failed(e.into()))?;
            print(g.json, &lines, |ls| {
                lines_or(ls, "no audit entries", |l| {
                    format!(
                        "{:>6} {} {:<12} {:<16} {} {} {}\n",
                        l.seq,
                        l.at,
                        l.actor,
                        l.action,
                        l.family.clone().unwrap_or_default(),
                        l.subject.clone().unwrap_or_default(),
                        l.detail.clone().unwrap_or_default()
                    )
                })
            })
        }
    }
}
