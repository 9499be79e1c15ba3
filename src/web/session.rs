//! Cookies, browser sessions and CSRF tokens. Session ids are random 256-bit values kept
//! only in the member's cookie; the store holds their SHA-256. The session cookie is
//! HttpOnly and SameSite=Strict (Secure when `web.base_url` is https) and expires after
//! `web.session_idle` without a request.

use crate::service::App;
use crate::store::{self, StoreError, to_secs};
use axum::http::HeaderMap;
use rand::RngCore;
use sha2::{Digest, Sha256};

pub const SESSION_COOKIE: &str = "nz_session";
/// A random value naming this browser, so a sign-in link works only where it was asked for.
pub const BROWSER_COOKIE: &str = "nz_browser";
pub const LANG_COOKIE: &str = "nz_lang";

/// A fresh random 256-bit secret, hex encoded.
pub fn secret() -> String {
    let mut b = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut b);
    hex(&b)
}

pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

pub fn sha256(s: &str) -> Vec<u8> {
    Sha256::digest(s.as_bytes()).to_vec()
}

/// Compares without an early exit, so the time taken does not reveal a matching prefix.
pub fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A cookie's value from the request, if it looks like one of ours (hex or a short code).
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
        .filter(|v| v.len() <= 128 && v.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// A `Set-Cookie` value. `strict` cookies are not sent along with links from elsewhere
/// (a mail); the browser cookie is Lax so the link from the mail can be matched to it.
pub fn set_cookie(
    app: &App,
    name: &str,
    value: &str,
    strict: bool,
    max_age: Option<i64>,
) -> String {
    let mut c = format!(
        "{name}={value}; Path=/team; HttpOnly; SameSite={}",
        if strict { "Strict" } else { "Lax" }
    );
    if let Some(age) = max_age {
        c.push_str(&format!("; Max-Age={age}"));
    }
    if app.config.web.secure_cookies() {
        c.push_str("; Secure");
    }
    c
}

/// The CSRF token of the sign-in form, derived from the browser cookie (there is no
/// session yet).
pub fn browser_csrf(browser: &str) -> String {
    hex(&Sha256::digest(format!("nazorg/csrf/{browser}").as_bytes()))
}

/// A signed-in member, as a page needs them.
#[derive(Clone, Debug)]
pub struct Session {
    pub id_hash: Vec<u8>,
    pub member: store::members::MemberRow,
    pub csrf: String,
}

impl Session {
    pub fn csrf_ok(&self, given: Option<&str>) -> bool {
        given.is_some_and(|g| same(g.as_bytes(), self.csrf.as_bytes()))
    }
}

/// The session of this request: present, not ended, not idle too long, member active.
/// A live session's idle clock restarts.
pub async fn current(app: &App, headers: &HeaderMap) -> Result<Option<Session>, StoreError> {
    let Some(id) = cookie(headers, SESSION_COOKIE) else {
        return Ok(None);
    };
    let id_hash = sha256(id);
    let now = to_secs(app.now());
    let mut tx = app.store.write().await?;
    let Some(s) = store::members::session(&mut tx, &id_hash).await? else {
        return Ok(None);
    };
    let idle = app.config.web.session_idle.nominal_seconds();
    if now - s.last_seen_at > idle {
        store::members::end_session(&mut tx, &id_hash, now).await?;
        tx.commit().await?;
        return Ok(None);
    }
    store::members::touch_session(&mut tx, &id_hash, now).await?;
    tx.commit().await?;
    Ok(Some(Session {
        id_hash,
        member: s.member,
        csrf: s.csrf,
    }))
}
