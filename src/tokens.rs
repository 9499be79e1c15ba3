//! API tokens: a municipality's team, a researcher's study, or an administrator. The secret
//! is shown once at creation and stored only as its SHA-256.

use crate::audit::{self, Actor, Entry};
use crate::domain::FieldError;
use crate::domain::duration::IsoDuration;
use crate::service::{App, OpError};
use crate::store::{self, to_secs};
use rand::RngCore;
use serde::Serialize;
use sha2::{Digest, Sha256};

/// What a token may reach.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Families its municipality is responsible for, and handovers addressed to it.
    Municipality(String),
    /// Exports of one study.
    Researcher(String),
    /// Everything; every read of personal data is audited all the same.
    Admin,
}

/// An authenticated caller.
#[derive(Clone, Debug)]
pub struct Principal {
    pub token_id: String,
    pub scope: Scope,
}

impl Principal {
    pub fn actor(&self) -> Actor {
        Actor::Token(self.token_id.clone())
    }
}

#[derive(Debug, Serialize)]
pub struct Created {
    pub id: String,
    /// Shown once; only its hash is stored.
    pub token: String,
    pub role: &'static str,
    pub expires_at: Option<chrono::DateTime<chrono::Utc>>,
}

fn hash(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

fn secret() -> String {
    let mut b = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut b);
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("nzt_{hex}")
}

pub async fn create(
    app: &App,
    scope: &Scope,
    expires: Option<IsoDuration>,
    label: Option<&str>,
) -> Result<Created, OpError> {
    let now = app.now();
    let (role, municipality, study) = match scope {
        Scope::Municipality(m) => {
            if !app.config.municipalities.contains_key(m) {
                return Err(OpError::invalid("municipality", "unknown municipality"));
            }
            ("municipality", Some(m.as_str()), None)
        }
        Scope::Researcher(s) => {
            if !crate::domain::enrolment::is_code(s) {
                return Err(OpError::invalid(
                    "researcher",
                    "a study code is a lowercase word such as cohort2027",
                ));
            }
            ("researcher", None, Some(s.as_str()))
        }
        Scope::Admin => ("admin", None, None),
    };
    if let Some(l) = label
        && (l.len() > 100 || l.chars().any(char::is_control))
    {
        return Err(FieldError::new("label", "at most 100 printable characters").into());
    }
    // Every token expires: without `--expires` after `api.token_lifetime`.
    let lifetime = expires.unwrap_or(app.config.api.token_lifetime);
    let expires_at = Some(
        lifetime
            .add_to(now)
            .ok_or_else(|| OpError::invalid("expires", "out of range"))?,
    );
    let id = crate::domain::reference::token();
    let token = secret();
    let mut tx = app.store.write().await?;
    store::tokens::insert(
        &mut tx,
        &store::tokens::NewToken {
            id: &id,
            secret_hash: &hash(&token),
            role,
            municipality,
            study,
            label,
            created_at: to_secs(now),
            expires_at: expires_at.map(to_secs),
        },
    )
    .await?;
    audit::append(
        &mut tx,
        &app.keyring,
        &app.actor,
        to_secs(now),
        &Entry {
            action: "token.create",
            subject: Some(&id),
            detail: Some(role),
            ..Default::default()
        },
    )
    .await?;
    tx.commit().await?;
    Ok(Created {
        id,
        token,
        role,
        expires_at,
    })
}

pub async fn list(app: &App) -> Result<Vec<store::tokens::TokenRow>, OpError> {
    let mut conn = app.store.conn().await?;
    Ok(store::tokens::list(&mut conn).await?)
}

pub async fn revoke(app: &App, id: &str) -> Result<(), OpError> {
    let now = to_secs(app.now());
    let mut tx = app.store.write().await?;
    if !store::tokens::revoke(&mut tx, id, now).await? {
        return Err(OpError::NotFound {
            what: "active token",
            reference: id.chars().take(20).collect(),
        });
    }
    audit::append(
        &mut tx,
        &app.keyring,
        &app.actor,
        now,
        &Entry {
            action: "token.revoke",
            subject: Some(id),
            ..Default::default()
        },
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Why a bearer token was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    Unknown,
    Revoked(String),
    Expired(String),
}

/// Seconds between two updates of a token's `last_used_at`.
const LAST_USED_GRANULARITY: i64 = 60;

/// Checks a presented secret; on success records its use (`last_used_at`, to the minute)
/// through the writer, without the request waiting for it (see [`store::Store::write_later`]):
/// a group-commit batch or another daemon's write may hold the writer for a while.
pub async fn authenticate(
    app: &App,
    presented: &str,
) -> Result<Result<Principal, Refusal>, OpError> {
    let now = to_secs(app.now());
    let mut conn = app.store.conn().await?;
    let Some(t) = store::tokens::by_hash(&mut conn, &hash(presented)).await? else {
        return Ok(Err(Refusal::Unknown));
    };
    if t.revoked_at.is_some() {
        return Ok(Err(Refusal::Revoked(t.id)));
    }
    if t.expires_at.is_some_and(|e| e <= now) {
        return Ok(Err(Refusal::Expired(t.id)));
    }
    // Recording every use would be a write per request; once a minute is enough to see
    // which tokens are alive.
    if t.last_used_at
        .is_none_or(|last| now - last >= LAST_USED_GRANULARITY)
    {
        let id = t.id.clone();
        app.store.write_later(
            format!("token-last-used:{id}"),
            "a token's last use",
            move |conn| Box::pin(async move { store::tokens::touch(conn, &id, now).await }),
        );
    }
    let scope = match (t.role.as_str(), t.municipality, t.study) {
        ("municipality", Some(m), _) => Scope::Municipality(m),
        ("researcher", _, Some(s)) => Scope::Researcher(s),
        ("admin", _, _) => Scope::Admin,
        _ => return Err(store::StoreError::Corrupt(format!("token {} has no scope", t.id)).into()),
    };
    Ok(Ok(Principal {
        token_id: t.id,
        scope,
    }))
}
