//! Erasure of a family, by request (`family erase`) or after retention (the sweep): one
//! path for both, so what is left is always the same tombstone.
//!
//! In one transaction: the data key and every sealed value go (crypto-shredding), with them
//! every plain quasi-identifier (episode, plan, language, interpreter need, times), the
//! members, responsibility history, check-ins, observations, handovers and flags; the
//! family's pending messages are cancelled, their attachments (the age dossier) deleted and
//! every body dropped. The invitations in the team's calendar get a CANCEL that names the
//! check-in only. After the commit the copies of its messages in the file transport's
//! folder are removed and the WAL is checkpointed. Exports cannot be edited (they are
//! anonymised and hashed); erasure names those not yet expired that may hold the family.

use super::{App, OpError};
use crate::audit::{Actor, Entry};
use crate::store::outbox::MessagesErased;
use crate::store::{self, Conn, StoreError, from_secs, to_secs};
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::path::PathBuf;

/// An export made since the family's enrolment and not yet expired: it may hold the
/// family's (anonymised) rows until it expires after `export.keep`.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct ExportMayHold {
    pub export: String,
    pub created_at: DateTime<Utc>,
    pub study: Option<String>,
    /// Its folder under `state_dir/exports`, if it is there (API exports, and CLI exports
    /// without `--out`); `None`: written elsewhere, delete its copies by hand.
    pub folder: Option<PathBuf>,
    /// When the sweep deletes it.
    pub expires_at: Option<DateTime<Utc>>,
}

/// What `family erase` answers.
#[derive(Debug, Serialize)]
pub struct Erased {
    pub family: String,
    pub status: &'static str,
    pub reason: String,
    pub messages: MessagesErased,
    /// `.eml` copies of the family's messages removed from the file transport's folder.
    pub mail_files_removed: u64,
    pub exports_may_hold: Vec<ExportMayHold>,
}

/// What erasing did inside the transaction; the files follow after the commit.
pub(crate) struct Trail {
    pub messages: MessagesErased,
    outbox_keys: Vec<String>,
    pub exports: Vec<ExportMayHold>,
}

/// The folder `state_dir/exports`, where API exports and CLI exports without `--out` live.
pub fn exports_dir(app: &App) -> PathBuf {
    app.config.state_dir.join("exports")
}

fn live_exports(
    app: &App,
    rows: Vec<store::export::LiveExport>,
) -> Result<Vec<ExportMayHold>, StoreError> {
    let dir = exports_dir(app);
    rows.into_iter()
        .map(|e| {
            let created_at = from_secs(e.created_at)?;
            let folder = dir.join(&e.id);
            Ok(ExportMayHold {
                folder: folder.is_dir().then_some(folder),
                expires_at: app.config.export.keep.add_to(created_at),
                created_at,
                study: e.study,
                export: e.id,
            })
        })
        .collect()
}

/// Erases family `family_id` in the caller's transaction and audits it for `actor`.
pub(crate) async fn erase_in(
    app: &App,
    tx: &mut Conn,
    family_id: i64,
    family_ref: &str,
    reason: &str,
    actor: &Actor,
    now: i64,
) -> Result<Trail, StoreError> {
    let enrolled_at: Option<i64> =
        sqlx::query_scalar("SELECT enrolled_at FROM families WHERE id = $1")
            .bind(family_id)
            .fetch_optional(&mut *tx)
            .await?
            .flatten();
    let exports = match enrolled_at {
        Some(since) => live_exports(app, store::export::live_since(tx, since).await?)?,
        None => Vec::new(),
    };
    // The team's calendar still holds the invited check-ins: their cancels name the
    // check-in only and are not filed under the family, so they outlive its erasure.
    if let Some(f) = store::families::by_id(tx, family_id, now).await? {
        super::invites::cancel_family(
            app,
            tx,
            family_id,
            family_ref,
            &f.municipality,
            crate::mail::ics::Why::Erased,
            from_secs(now)?,
        )
        .await?;
    }
    let outbox_keys = store::outbox::keys_of_family(tx, family_ref).await?;
    let messages = store::outbox::erase_family(tx, family_ref, now).await?;
    store::families::erase(tx, family_id, reason, now).await?;
    crate::audit::append(
        tx,
        &app.keyring,
        actor,
        now,
        &Entry {
            action: "family.erase",
            family: Some(family_ref),
            detail: Some(reason),
            ..Default::default()
        },
    )
    .await?;
    Ok(Trail {
        messages,
        outbox_keys,
        exports,
    })
}

/// After the commit: removes the `.eml` copies of the erased messages from the file
/// transport's folder. Returns how many were there.
pub(crate) fn remove_mail_copies(app: &App, trail: &Trail) -> u64 {
    let crate::config::MailTransport::File { dir } = &app.config.mail.transport else {
        return 0;
    };
    let mut removed = 0;
    for key in &trail.outbox_keys {
        let path = dir.join(crate::mail::eml_file_name(key));
        match std::fs::remove_file(&path) {
            Ok(()) => removed += 1,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::error!(error = %e, "cannot remove a mail copy of an erased family; remove it by hand")
            }
        }
    }
    removed
}

/// Why a family's data may be erased.
pub use super::family::ERASE_REASONS;

/// What `family erase` without `--yes` shows: what would go, in counts.
#[derive(Debug, Serialize)]
pub struct Preview {
    pub family: String,
    pub members: i64,
    pub checkins: i64,
    pub flags: i64,
    pub handovers: i64,
    pub messages: i64,
    pub pending_messages: i64,
    pub exports_may_hold: Vec<ExportMayHold>,
}

/// Counts what erasing `family_ref` would remove; changes nothing.
pub async fn preview(app: &App, family_ref: &str, reason: &str) -> Result<Preview, OpError> {
    check_reason(reason)?;
    let now = to_secs(app.now());
    let mut tx = app.store.read().await?;
    let f = super::family::family_by_ref(&mut tx, family_ref, now).await?;
    app.require_responsible(&f)?;
    if f.status == "erased" {
        return Err(OpError::Conflict(format!(
            "family {} is already erased",
            f.reference
        )));
    }
    let mut n = Vec::new();
    for sql in [
        "SELECT COUNT(*) FROM members WHERE family_id = $1",
        "SELECT COUNT(*) FROM checkins WHERE family_id = $1",
        "SELECT COUNT(*) FROM flags WHERE family_id = $1",
        "SELECT COUNT(*) FROM handovers WHERE family_id = $1",
    ] {
        let v: i64 = sqlx::query_scalar(sql)
            .bind(f.id)
            .fetch_one(&mut *tx)
            .await?;
        n.push(v);
    }
    let messages: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE family_ref = $1")
        .bind(&f.reference)
        .fetch_one(&mut *tx)
        .await?;
    let pending: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM outbox WHERE family_ref = $1 AND status = 'pending'",
    )
    .bind(&f.reference)
    .fetch_one(&mut *tx)
    .await?;
    let exports = live_exports(
        app,
        store::export::live_since(&mut tx, f.enrolled_at).await?,
    )?;
    tx.commit().await?;
    Ok(Preview {
        family: f.reference,
        members: n[0],
        checkins: n[1],
        flags: n[2],
        handovers: n[3],
        messages,
        pending_messages: pending,
        exports_may_hold: exports,
    })
}

fn check_reason(reason: &str) -> Result<(), OpError> {
    super::family::check_reason(reason, ERASE_REASONS)
}

/// Erases a family for good (see the module documentation).
pub async fn erase(app: &App, family_ref: &str, reason: &str) -> Result<Erased, OpError> {
    check_reason(reason)?;
    let now = to_secs(app.now());
    let mut tx = app.store.write().await?;
    let f = super::family::family_by_ref(&mut tx, family_ref, now).await?;
    app.require_responsible(&f)?;
    if f.status == "erased" {
        return Err(OpError::Conflict(format!(
            "family {} is already erased",
            f.reference
        )));
    }
    let trail = erase_in(app, &mut tx, f.id, &f.reference, reason, &app.actor, now).await?;
    tx.commit().await?;
    let mail_files_removed = remove_mail_copies(app, &trail);
    app.store.checkpoint().await?;
    tracing::info!(family = %f.reference, reason, "family erased");
    Ok(Erased {
        family: f.reference,
        status: "erased",
        reason: reason.to_string(),
        messages: trail.messages,
        mail_files_removed,
        exports_may_hold: trail.exports,
    })
}
