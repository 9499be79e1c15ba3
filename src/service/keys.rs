//! Key rotation: rewrapping the KEK for a new recipient set (instant), or replacing the KEK
//! and rewrapping every family's data key in batches (resumable, safe while the daemon
//! runs: field ciphertexts are untouched and the daemon loads the new KEK when it meets it).

use super::{App, OpError};
use crate::crypto::{self, Kek};
use crate::domain::FieldError;
use crate::keyring::{unwrap_kek, wrap_kek};
use crate::store::{self, to_secs};
use serde::Serialize;
use std::sync::Arc;

#[derive(Debug, Serialize, Default)]
pub struct Rotation {
    /// The recipients every live KEK is now wrapped to.
    pub recipients: Vec<String>,
    /// KEKs whose age file was rewritten for the new recipient set.
    pub keks_rewrapped: u64,
    /// With `--new-kek`: the KEK now in use, and how many data keys were rewrapped.
    pub new_kek: Option<i64>,
    pub deks_rewrapped: u64,
    pub keks_retired: u64,
    /// True when a `--new-kek` rotation stopped before all data keys were rewrapped.
    pub incomplete: bool,
}

/// What `keys rotate` was asked to do.
#[derive(Debug, Default)]
pub struct RotateRequest {
    pub add: Vec<String>,
    pub remove: Vec<String>,
    pub new_kek: bool,
    pub batch: i64,
    /// Stop after this many batches (for demonstrating and testing resumption).
    pub max_batches: Option<u64>,
}

pub async fn rotate(app: &App, req: &RotateRequest) -> Result<Rotation, OpError> {
    let mut errors = Vec::new();
    let mut add = Vec::new();
    for (i, r) in req.add.iter().enumerate() {
        match crypto::parse_recipient(r) {
            Ok(p) => add.push(p.to_string()),
            Err(e) => errors.push(FieldError::new(
                format!("add_recipient[{i}]"),
                e.to_string(),
            )),
        }
    }
    let mut remove = Vec::new();
    for (i, r) in req.remove.iter().enumerate() {
        match crypto::parse_recipient(r) {
            Ok(p) => remove.push(p.to_string()),
            Err(e) => errors.push(FieldError::new(
                format!("remove_recipient[{i}]"),
                e.to_string(),
            )),
        }
    }
    if !errors.is_empty() {
        return Err(OpError::Invalid(errors));
    }
    let now = to_secs(app.now());
    let mut out = Rotation::default();

    // 1. The recipient set: rewrap every live KEK (instant; no data key changes).
    let mut tx = app.store.write().await?;
    let live = store::keys::live(&mut tx).await?;
    let Some(newest) = live.last() else {
        return Err(OpError::Conflict(
            "the database has no key-encryption key".into(),
        ));
    };
    let mut recipients = newest.recipients.clone();
    for r in &remove {
        if !recipients.contains(r) {
            return Err(OpError::invalid(
                "remove_recipient",
                "not a current recipient",
            ));
        }
        recipients.retain(|x| x != r);
    }
    for r in add {
        if !recipients.contains(&r) {
            recipients.push(r);
        }
    }
    if recipients.is_empty() {
        return Err(OpError::invalid(
            "remove_recipient",
            "removing every recipient would make all data unreadable",
        ));
    }
    if !req.add.is_empty() || !req.remove.is_empty() {
        for k in &live {
            let kek = app.keyring.kek(&mut tx, k.id).await?;
            let wrapped = wrap_kek(kek, &recipients).await?;
            store::keys::rewrap(&mut tx, k.id, &wrapped, &recipients).await?;
            out.keks_rewrapped += 1;
        }
        // Prove the new files open for at least one recipient we hold, or that we no longer
        // hold one (removing the daemon's own recipient is allowed, e.g. when moving to a new
        // identity), before committing.
        let own = app.keyring.identity().to_public().to_string();
        if recipients.contains(&own) {
            let check = store::keys::live(&mut tx).await?;
            for k in check {
                unwrap_kek(app.keyring.identity(), k.wrapped).await?;
            }
        } else {
            tracing::warn!(
                "the daemon's own identity was removed: start it with one of the remaining identities"
            );
        }
    }
    if !req.add.is_empty() || !req.remove.is_empty() {
        app.audit(
            &mut tx,
            &crate::audit::Entry {
                action: "keys.recipients",
                ..Default::default()
            },
        )
        .await?;
    }
    tx.commit().await?;
    out.recipients = recipients.clone();

    if !req.new_kek {
        return Ok(out);
    }

    // 2. A new KEK, unless an interrupted rotation already made one: then resume it.
    let mut tx = app.store.write().await?;
    let live = store::keys::live(&mut tx).await?;
    let target = if live.len() > 1 {
        live.last().map(|k| k.id).unwrap_or(0)
    } else {
        let kek = Arc::new(Kek::generate());
        let wrapped = wrap_kek(kek, &recipients).await?;
        store::keys::insert(&mut tx, &wrapped, &recipients, now).await?
    };
    tx.commit().await?;
    out.new_kek = Some(target);

    // 3. Rewrap data keys in batches; each batch commits on its own.
    let batch = req.batch.max(1);
    let mut batches = 0u64;
    loop {
        if req.max_batches.is_some_and(|m| batches >= m) {
            out.incomplete = true;
            return Ok(out);
        }
        let mut tx = app.store.write().await?;
        let todo = store::keys::deks_not_under(&mut tx, target, batch).await?;
        if todo.is_empty() {
            // Research studies' pseudonym keys are wrapped like data keys: rewrap them
            // too, or retiring the old KEK would make every study's pseudonyms unlinkable.
            let new = app.keyring.kek(&mut tx, target).await?;
            for (code, kek_id, wrapped) in
                store::export::study_keys_not_under(&mut tx, target).await?
            {
                let label = format!("study:{code}");
                let old = app.keyring.kek(&mut tx, kek_id).await?;
                let key = old.unwrap_dek(&wrapped, &label)?;
                store::export::set_study_key(&mut tx, &code, target, &new.wrap_dek(&key, &label))
                    .await?;
            }
            // The audit key too, or retiring the old KEK would leave the chain unverifiable.
            if let Some(a) = store::keys::audit_key(&mut tx).await?
                && a.kek_id != target
            {
                let label = crate::keyring::audit_key_label(a.first_seq);
                let old = app.keyring.kek(&mut tx, a.kek_id).await?;
                let key = old.unwrap_dek(&a.wrapped, &label)?;
                store::keys::set_audit_key(&mut tx, target, &new.wrap_dek(&key, &label)).await?;
            }
            out.keks_retired = store::keys::retire_all_but(&mut tx, target, now).await?;
            app.audit(
                &mut tx,
                &crate::audit::Entry {
                    action: "keys.new_kek",
                    ..Default::default()
                },
            )
            .await?;
            tx.commit().await?;
            break;
        }
        let new = app.keyring.kek(&mut tx, target).await?;
        for f in todo {
            let old = app.keyring.kek(&mut tx, f.kek_id).await?;
            let dek = old.unwrap_dek(&f.wrapped, &f.family_ref)?;
            let wrapped = new.wrap_dek(&dek, &f.family_ref);
            if store::keys::set_dek(&mut tx, f.family_id, f.kek_id, target, &wrapped).await? {
                out.deks_rewrapped += 1;
            }
        }
        tx.commit().await?;
        batches += 1;
    }
    tracing::info!(
        kek = target,
        deks = out.deks_rewrapped,
        "key rotation complete"
    );
    Ok(out)
}
