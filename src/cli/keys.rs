//! `nazorg keygen` and `nazorg keys …`: the age identity and key rotation.

use super::*;

#[derive(Subcommand)]
pub enum KeysCommand {
    /// Rewrap the key-encryption key for a new recipient set (instant), and/or replace it
    /// and rewrap every family's data key (`--new-kek`, batched, resumable)
    Rotate {
        /// An age recipient (age1…) that may also unwrap the keys, e.g. an offline recovery key
        #[arg(long, value_name = "AGE1…")]
        add_recipient: Vec<String>,
        /// A recipient that may no longer unwrap the keys
        #[arg(long, value_name = "AGE1…")]
        remove_recipient: Vec<String>,
        /// Make a new key-encryption key and rewrap every data key under it
        #[arg(long)]
        new_kek: bool,
        /// Families per transaction during `--new-kek`
        #[arg(long, default_value_t = 500)]
        batch: i64,
        /// Stop after this many batches (the next run resumes)
        #[arg(long, hide = true)]
        max_batches: Option<u64>,
    },
}

/// Runs one `Keys` command.
pub async fn run(g: &Global, cmd: KeysCommand) -> anyhow::Result<()> {
    match cmd {
        KeysCommand::Rotate {
            add_recipient,
            remove_recipient,
            new_kek,
            batch,
            max_batches,
        } => {
            let app = open_app(g, OpenMode::Existing, false).await?;
            let req = service::keys::RotateRequest {
                add: add_recipient,
                remove: remove_recipient,
                new_kek,
                batch,
                max_batches,
            };
            let out = service::keys::rotate(&app, &req).await.map_err(op_failed)?;
            if !req.remove.is_empty() && !req.new_kek {
                eprintln!(
                    "warning: the removed recipient(s) can no longer unwrap the current key-encryption \
                     key from now on, but whoever holds an old copy of the wrapped key (a backup, a \
                     copy of the database) can still decrypt with the removed identity: the key \
                     itself is unchanged. Run `nazorg keys rotate --new-kek` to replace it and \
                     rewrap every data key."
                );
            }
            print(g.json, &out, |o| {
                let mut s = format!(
                    "key-encryption key wrapped to {} recipient(s)\n",
                    o.recipients.len()
                );
                if let Some(k) = o.new_kek {
                    s.push_str(&format!("new key-encryption key {k}: {} data keys rewrapped, {} old keys retired{}\n",
                        o.deks_rewrapped, o.keks_retired, if o.incomplete { " (incomplete: run again to resume)" } else { "" }));
                }
                s
            })
        }
    }
}

/// Writes a new age identity (`nazorg keygen`) and prints its recipient.
pub fn keygen(g: &Global, out: PathBuf) -> anyhow::Result<()> {
    let recipient = crate::crypto::keygen(&out)?;
    print(
        g.json,
        &serde_json::json!({"identity": out, "recipient": recipient}),
        |_| format!("{recipient}\n"),
    )
}
