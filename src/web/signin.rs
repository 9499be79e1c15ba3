//! How a team member proves who they are.
//!
//! Today there is one [`Method`]: a one-time link mailed to the address registered with
//! `nazorg member add`. To add OpenID Connect later (the municipality's Entra ID or
//! Keycloak): add a variant `Method::OpenIdConnect` configured under `[web.oidc]` (issuer,
//! client id, client secret file), a route `/team/signin/oidc` that redirects to the
//! provider with state and PKCE bound to the browser cookie, and a callback that checks the
//! ID token, finds the active member by its verified `email` claim
//! (`store::members::active_by_email`) and calls [`start_session`]. Sessions, CSRF, audit
//! and the team scoping of every page stay exactly as they are.

use super::session::{self, sha256};
use crate::audit::{Actor, Entry};
use crate::service::{App, OpError};
use crate::store::{self, to_secs};

/// The ways to sign in that this installation offers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// A link mailed through the outbox: valid 15 minutes, single use, bound to the browser.
    MailedLink,
}

/// How long a mailed link stays valid.
pub const LINK_VALID_SECS: i64 = 15 * 60;

/// At most this many links are mailed to one member within [`LINK_VALID_SECS`], so a
/// stranger cannot flood a team worker's mailbox.
pub const MAX_LINKS_PER_WINDOW: i64 = 5;

/// What became of a link that was opened.
#[derive(Debug)]
pub enum Redeemed {
    /// A new session: its id goes into the cookie; `next` is where the member was going.
    SignedIn {
        session_id: String,
        next: String,
    },
    Used,
    Expired,
    OtherBrowser,
    Unknown,
}

/// Only our own pages are places to return to after sign-in.
pub fn safe_next(next: Option<&str>) -> Option<String> {
    let n = next?;
    let ok = n.starts_with("/team/")
        && n.len() <= 200
        && n.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/-_=&?.".contains(&b))
        && !n.contains("//")
        && !n.contains("..");
    ok.then(|| n.to_string())
}

/// Asks for a link for `email`. The answer is the same whether or not the address is
/// registered; only a registered address gets a mail. Every request is audited (without
/// the address).
pub async fn request_link(
    app: &App,
    email: &str,
    browser: &str,
    next: Option<&str>,
) -> Result<(), OpError> {
    let email = crate::service::members::normalise_email(email);
    let now = to_secs(app.now());
    let mut tx = app.store.write().await?;
    let member = store::members::active_by_email(&mut tx, &email).await?;
    let Some(m) = member else {
        crate::audit::append(
            &mut tx,
            &app.keyring,
            &Actor::Anonymous,
            now,
            &Entry {
                action: "web.signin.request",
                detail: Some("unknown address"),
                ..Default::default()
            },
        )
        .await?;
        tx.commit().await?;
        return Ok(());
    };
    let recent = store::members::links_since(&mut tx, m.id, now - LINK_VALID_SECS).await?;
    if recent >= MAX_LINKS_PER_WINDOW {
        // Someone keeps asking: no more mail this quarter of an hour, the same answer.
        crate::audit::append(
            &mut tx,
            &app.keyring,
            &Actor::Anonymous,
            now,
            &Entry {
                action: "web.signin.request",
                subject: Some(&m.reference),
                detail: Some("too many links; none mailed"),
                ..Default::default()
            },
        )
        .await?;
        tx.commit().await?;
        return Ok(());
    }
    let token = session::secret();
    let token_hash = sha256(&token);
    let next = safe_next(next);
    store::members::insert_link(
        &mut tx,
        &store::members::NewLink {
            token_hash: &token_hash,
            member_id: m.id,
            browser_hash: &sha256(browser),
            next_path: next.as_deref(),
            created_at: now,
            expires_at: now + LINK_VALID_SECS,
        },
    )
    .await?;
    let url = format!("{}/team/signin/{token}", app.config.web.base_url);
    let (subject, body) =
        crate::mail::workspace::signin_link(app.config.mail.language, &url, LINK_VALID_SECS / 60);
    let key = link_mail_key(&m.reference, &token_hash);
    store::outbox::enqueue(
        &mut tx,
        &store::outbox::NewMessage {
            key: &key,
            kind: crate::mail::workspace::SIGNIN_LINK_KIND,
            family_ref: None,
            recipients: std::slice::from_ref(&m.email),
            cc: &[],
            subject: &subject,
            body: &body,
            attachments: &[],
            now,
        },
    )
    .await?;
    crate::audit::append(
        &mut tx,
        &app.keyring,
        &Actor::Member(m.reference.clone()),
        now,
        &Entry {
            action: "web.signin.request",
            subject: Some(&m.reference),
            detail: Some("link mailed"),
            ..Default::default()
        },
    )
    .await?;
    tx.commit().await?;
    tracing::info!(member = %m.reference, "sign-in link mailed");
    Ok(())
}

/// The outbox key of the mail that carries a link: the member and a prefix of the link's
/// hash (never the link itself).
fn link_mail_key(member: &str, token_hash: &[u8]) -> String {
    format!("signin:{member}:{}", &session::hex(token_hash)[..16])
}

/// Opens a link: once, within 15 minutes, in the browser that asked for it. Failures are
/// audited as failed sign-ins.
pub async fn redeem(app: &App, token: &str, browser: Option<&str>) -> Result<Redeemed, OpError> {
    let now = to_secs(app.now());
    let token_hash = sha256(token);
    let mut tx = app.store.write().await?;
    let link = store::members::link(&mut tx, &token_hash).await?;
    let failure = match &link {
        None => Some(("unknown link", Redeemed::Unknown)),
        Some(l) if l.used_at.is_some() => Some(("used link", Redeemed::Used)),
        Some(l) if now > l.expires_at => Some(("expired link", Redeemed::Expired)),
        Some(l) if !browser.is_some_and(|b| session::same(&sha256(b), &l.browser_hash)) => {
            Some(("other browser", Redeemed::OtherBrowser))
        }
        Some(_) => None,
    };
    if let Some((why, answer)) = failure {
        crate::audit::append(
            &mut tx,
            &app.keyring,
            &Actor::Anonymous,
            now,
            &Entry {
                action: "web.signin.failed",
                detail: Some(why),
                ..Default::default()
            },
        )
        .await?;
        tx.commit().await?;
        return Ok(answer);
    }
    let Some(link) = link else {
        return Ok(Redeemed::Unknown);
    };
    if !store::members::use_link(&mut tx, &token_hash, now).await? {
        return Ok(Redeemed::Used);
    }
    // The link is spent: its mail's text goes now, wherever it stands.
    if let Some(reference) =
        sqlx::query_scalar::<_, String>("SELECT reference FROM team_members WHERE id = $1")
            .bind(link.member_id)
            .fetch_optional(&mut *tx)
            .await?
    {
        store::outbox::drop_spent(
            &mut tx,
            crate::mail::workspace::SIGNIN_LINK_KIND,
            Some(&link_mail_key(&reference, &token_hash)),
            i64::MIN,
            now,
        )
        .await?;
    }
    let member = sqlx::query_scalar::<_, String>(
        "SELECT reference FROM team_members WHERE id = $1 AND removed_at IS NULL",
    )
    .bind(link.member_id)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(member_ref) = member else {
        tx.commit().await?;
        return Ok(Redeemed::Unknown);
    };
    let session_id = start_session(
        app,
        &mut tx,
        link.member_id,
        &member_ref,
        Method::MailedLink,
    )
    .await?;
    tx.commit().await?;
    Ok(Redeemed::SignedIn {
        session_id,
        next: link.next_path.unwrap_or_else(|| "/team/".to_string()),
    })
}

/// Opens a session for a member who proved who they are (by whichever method), audited.
pub async fn start_session(
    app: &App,
    tx: &mut store::Conn,
    member_id: i64,
    member_ref: &str,
    method: Method,
) -> Result<String, OpError> {
    let now = to_secs(app.now());
    let id = session::secret();
    store::members::insert_session(tx, &sha256(&id), member_id, &session::secret(), now).await?;
    crate::audit::append(
        tx,
        &app.keyring,
        &Actor::Member(member_ref.to_string()),
        now,
        &Entry {
            action: "web.signin",
            subject: Some(member_ref),
            detail: Some(match method {
                Method::MailedLink => "mailed link",
            }),
            ..Default::default()
        },
    )
    .await?;
    tracing::info!(member = %member_ref, "signed in to the workspace");
    Ok(id)
}

/// Ends a session (sign-out), audited.
pub async fn end_session(app: &App, s: &session::Session) -> Result<(), OpError> {
    let now = to_secs(app.now());
    let mut tx = app.store.write().await?;
    store::members::end_session(&mut tx, &s.id_hash, now).await?;
    crate::audit::append(
        &mut tx,
        &app.keyring,
        &Actor::Member(s.member.reference.clone()),
        now,
        &Entry {
            action: "web.signout",
            subject: Some(&s.member.reference),
            ..Default::default()
        },
    )
    .await?;
    tx.commit().await?;
    Ok(())
}
