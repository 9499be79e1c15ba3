//! Team members of the workspace: who may sign in, for which municipality. One call per
//! action, shared by the CLI (`nazorg member …`) and the admin API (`/v1/members`).
//! Names and addresses are never logged or audited; the member reference is.

use super::{App, OpError};
use crate::audit::Entry;
use crate::domain::reference;
use crate::store::{self, from_secs, to_secs};
use chrono::{DateTime, Utc};
use serde::Serialize;

/// A member as listed (to the operator or an admin token).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MemberView {
    pub id: String,
    pub municipality: String,
    pub name: String,
    pub email: String,
    pub created_at: DateTime<Utc>,
    pub removed_at: Option<DateTime<Utc>>,
}

fn view(m: store::members::MemberRow) -> Result<MemberView, OpError> {
    Ok(MemberView {
        id: m.reference,
        municipality: m.municipality,
        name: m.name,
        email: m.email,
        created_at: from_secs(m.created_at)?,
        removed_at: m.removed_at.map(from_secs).transpose()?,
    })
}

/// The form in which addresses are stored and looked up.
pub fn normalise_email(email: &str) -> String {
    email.trim().to_lowercase()
}

/// Registers a team member; an address can belong to one active member only.
pub async fn add(
    app: &App,
    municipality: &str,
    email: &str,
    name: &str,
) -> Result<MemberView, OpError> {
    let mut errors = Vec::new();
    if !app.config.municipalities.contains_key(municipality) {
        errors.push(crate::domain::FieldError::new(
            "municipality",
            "unknown municipality",
        ));
    }
    let email = normalise_email(email);
    if !crate::config::plausible_email(&email) || email.len() > 254 {
        errors.push(crate::domain::FieldError::new(
            "email",
            "not an email address",
        ));
    }
    let name = name.trim();
    if name.is_empty() || name.len() > 200 {
        errors.push(crate::domain::FieldError::new(
            "name",
            "must be 1 to 200 characters",
        ));
    }
    if !errors.is_empty() {
        return Err(OpError::Invalid(errors));
    }
    let now = to_secs(app.now());
    let mut tx = app.store.write().await?;
    if store::members::active_by_email(&mut tx, &email)
        .await?
        .is_some()
    {
        return Err(OpError::Conflict(
            "a member with this email address is registered already".into(),
        ));
    }
    let member_ref = reference::team_member();
    let id = store::members::insert(
        &mut tx,
        &store::members::NewMember {
            reference: &member_ref,
            municipality,
            email: &email,
            name,
            created_at: now,
        },
    )
    .await?;
    app.audit(
        &mut tx,
        &Entry {
            action: "member.add",
            subject: Some(&member_ref),
            detail: Some(municipality),
            ..Default::default()
        },
    )
    .await?;
    tx.commit().await?;
    tracing::info!(member = %member_ref, %municipality, "team member added");
    let _ = id;
    Ok(MemberView {
        id: member_ref,
        municipality: municipality.to_string(),
        name: name.to_string(),
        email,
        created_at: from_secs(now)?,
        removed_at: None,
    })
}

/// Members (active and removed), optionally of one municipality. Audited: it shows names.
pub async fn list(app: &App, municipality: Option<&str>) -> Result<Vec<MemberView>, OpError> {
    let mut tx = app.store.write().await?;
    let rows = store::members::list(&mut tx, municipality).await?;
    app.audit(
        &mut tx,
        &Entry {
            action: "member.list",
            detail: municipality,
            ..Default::default()
        },
    )
    .await?;
    tx.commit().await?;
    rows.into_iter().map(view).collect()
}

/// Removes a member: they can no longer sign in and their sessions end at once.
pub async fn remove(app: &App, member: &str) -> Result<(), OpError> {
    let not_found = || OpError::NotFound {
        what: "member",
        reference: member.to_string(),
    };
    if !reference::looks_like(member, 'M') {
        return Err(not_found());
    }
    let mut tx = app.store.write().await?;
    if !store::members::remove(&mut tx, member, to_secs(app.now())).await? {
        return Err(not_found());
    }
    app.audit(
        &mut tx,
        &Entry {
            action: "member.remove",
            subject: Some(member),
            ..Default::default()
        },
    )
    .await?;
    tx.commit().await?;
    tracing::info!(member = %member, "team member removed");
    Ok(())
}
