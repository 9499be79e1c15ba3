//! Requests without a valid token (no token, an unknown, revoked or expired one), and the
//! workspace's requests without a valid session (sign-in requests, links, pages asked for
//! before sign-in): limited per client IP before any database work, counted for `/metrics`, and audited in aggregate,
//! one entry per client and minute with the counts, so a flood of strangers costs at most
//! one write per client per minute instead of one per request.

use super::limiter::Limiter;
use crate::audit::{Actor, Entry};
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// Live token hashes remembered (they pass a blocked IP's gate to authentication).
const MAX_KNOWN: usize = 100_000;

/// Why a request was turned away.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Why {
    NoToken,
    UnknownToken,
    Revoked,
    Expired,
    /// The client used up its allowance of failed requests: answered 429 unauthenticated.
    Limited,
    /// A workspace request (`/team/`) without a valid session.
    NoSession,
    /// A request for a sign-in link (`POST /team/signin`).
    SignIn,
}

const WHYS: [(Why, &str); 7] = [
    (Why::NoToken, "no_token"),
    (Why::UnknownToken, "unknown_token"),
    (Why::Revoked, "revoked"),
    (Why::Expired, "expired"),
    (Why::Limited, "rate_limited"),
    (Why::NoSession, "no_session"),
    (Why::SignIn, "signin_request"),
];

/// One client's denials within one minute.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    pub minute: i64,
    pub counts: [u64; 7],
}

impl Tally {
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// The audit detail: codes and counts only.
    pub fn detail(&self) -> String {
        let mut s = format!("count={} minute={}", self.total(), self.minute * 60);
        for (i, (_, code)) in WHYS.iter().enumerate() {
            s.push_str(&format!(" {code}={}", self.counts[i]));
        }
        s
    }
}

/// This minute's tally per client, and finished tallies waiting for the flush.
type Tallies = (HashMap<String, Tally>, Vec<(String, Tally)>);

pub struct Strangers {
    limiter: Limiter,
    /// This minute's tally per client, and finished ones not flushed yet.
    open: Mutex<Tallies>,
    /// SHA-256 of the secrets of live tokens, reloaded every few seconds: a team behind the
    /// same address as a flood still reaches authentication (which checks revocation and
    /// expiry as always), while unknown secrets from that address are stopped unread.
    known: Mutex<HashSet<[u8; 32]>>,
    /// SHA-256 of workspace session ids that worked lately: like `known`, a signed-in
    /// member behind a flooding address still reaches their pages.
    sessions: Mutex<HashSet<[u8; 32]>>,
    denied_total: AtomicU64,
}

impl Strangers {
    /// Each client IP may fail `burst` requests at once, then `rate` per second (the same
    /// `api.rate_limit` and `api.burst` as a token).
    pub fn new(rate: u32, burst: u32) -> Strangers {
        Strangers {
            limiter: Limiter::new(rate, burst),
            open: Mutex::new((HashMap::new(), Vec::new())),
            known: Mutex::new(HashSet::new()),
            sessions: Mutex::new(HashSet::new()),
            denied_total: AtomicU64::new(0),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}

fn digest(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

impl Strangers {
    /// Whether a request from `client` may go on to authentication: a client that used up
    /// its failures is stopped here, unless it presents a token that worked lately.
    pub fn admit(&self, client: &str, secret: Option<&str>) -> Result<(), std::time::Duration> {
        if let Some(s) = secret
            && lock(&self.known).contains(&digest(s))
        {
            return Ok(());
        }
        self.limiter.peek(client)
    }

    /// [`Strangers::admit`] for a workspace request: a session that worked lately passes.
    pub fn admit_session(
        &self,
        client: &str,
        session: Option<&str>,
    ) -> Result<(), std::time::Duration> {
        if let Some(s) = session
            && lock(&self.sessions).contains(&digest(s))
        {
            return Ok(());
        }
        self.limiter.peek(client)
    }

    /// A session was valid: remember it (see `sessions`).
    pub fn session_ok(&self, session: &str) {
        let mut known = lock(&self.sessions);
        if known.len() >= MAX_KNOWN {
            known.clear();
        }
        known.insert(digest(session));
    }

    /// A session stopped working (signed out, expired, unknown): forget it.
    pub fn session_gone(&self, session: &str) {
        lock(&self.sessions).remove(&digest(session));
    }

    /// A token authenticated: remember it (see `known`).
    pub fn authenticated(&self, secret: &str) {
        let mut known = lock(&self.known);
        if known.len() >= MAX_KNOWN {
            known.clear();
        }
        known.insert(digest(secret));
    }

    /// Replaces the set of live token hashes (from the database, every few seconds).
    pub fn set_known(&self, hashes: Vec<Vec<u8>>) {
        let set: HashSet<[u8; 32]> = hashes
            .into_iter()
            .filter_map(|h| <[u8; 32]>::try_from(h.as_slice()).ok())
            .take(MAX_KNOWN)
            .collect();
        *lock(&self.known) = set;
    }

    /// A token stopped working (revoked, expired): forget it.
    pub fn forget(&self, secret: &str) {
        lock(&self.known).remove(&digest(secret));
    }

    /// Counts a denial in this minute's tally for the client and takes one failure from its
    /// allowance; `Err` when that allowance is now used up (answer 429).
    pub fn deny(&self, client: &str, minute: i64, why: Why) -> Result<(), std::time::Duration> {
        self.denied_total.fetch_add(1, Ordering::Relaxed);
        let i = WHYS.iter().position(|(w, _)| *w == why).unwrap_or(0);
        {
            let mut guard = lock(&self.open);
            let (open, finished) = &mut *guard;
            let tally = open.entry(client.to_string()).or_insert(Tally {
                minute,
                ..Default::default()
            });
            if tally.minute < minute {
                // The client's first denial in a new minute: the old tally is finished.
                let old = std::mem::replace(
                    tally,
                    Tally {
                        minute,
                        ..Default::default()
                    },
                );
                finished.push((client.to_string(), old));
            }
            tally.counts[i] += 1;
        }
        if why == Why::Limited {
            return Err(self.limiter.peek(client).err().unwrap_or_default());
        }
        self.limiter.check(client)
    }

    pub fn denied_total(&self) -> u64 {
        self.denied_total.load(Ordering::Relaxed)
    }

    /// Takes the tallies of minutes before `minute` (all of them with `None`).
    pub fn take(&self, minute: Option<i64>) -> Vec<(String, Tally)> {
        let mut guard = lock(&self.open);
        let (open, finished) = &mut *guard;
        let done: Vec<String> = open
            .iter()
            .filter(|(_, t)| minute.is_none_or(|m| t.minute < m))
            .map(|(c, _)| c.clone())
            .collect();
        let mut out: Vec<(String, Tally)> = std::mem::take(finished);
        out.extend(
            done.into_iter()
                .filter_map(|c| open.remove(&c).map(|t| (c, t))),
        );
        out.sort_by(|a, b| (&a.0, a.1.minute).cmp(&(&b.0, b.1.minute)));
        out
    }
}

/// Reloads the live token hashes (one small query every few seconds, never per request).
pub async fn reload_known(state: &super::ApiState) {
    let now = state.app.now().timestamp();
    let result = async {
        let mut conn = state.app.store.conn().await?;
        crate::store::tokens::active_hashes(&mut conn, now).await
    }
    .await;
    match result {
        Ok(hashes) => state.strangers.set_known(hashes),
        Err(e) => tracing::warn!(error = %e, "could not reload the token list"),
    }
}

/// Writes the finished minutes' tallies (all with `everything`, at shutdown) to the audit
/// trail, one entry per client and minute, in one transaction.
pub async fn flush(state: &super::ApiState, everything: bool) {
    let now = state.app.now().timestamp();
    let tallies = state
        .strangers
        .take(if everything { None } else { Some(now / 60) });
    if tallies.is_empty() {
        return;
    }
    let result = async {
        let mut tx = state.app.store.write().await?;
        for (client, tally) in &tallies {
            let subject = format!("client {client}");
            let detail = tally.detail();
            crate::audit::append(
                &mut tx,
                &state.app.keyring,
                &Actor::Anonymous,
                now,
                &Entry {
                    action: "api.denied",
                    subject: Some(&subject),
                    detail: Some(&detail),
                    ..Default::default()
                },
            )
            .await?;
        }
        tx.commit().await?;
        Ok::<_, crate::store::StoreError>(())
    }
    .await;
    match result {
        Ok(()) => tracing::debug!(clients = tallies.len(), "denied requests audited"),
        Err(e) => tracing::error!(error = %e, "could not audit denied requests"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn denials_are_tallied_per_client_and_minute() {
        let s = Strangers::new(1, 10);
        for _ in 0..3 {
            let _ = s.deny("10.0.0.1", 100, Why::UnknownToken);
        }
        let _ = s.deny("10.0.0.2", 100, Why::NoToken);
        assert!(s.take(Some(100)).is_empty(), "the minute is not over");
        let t = s.take(Some(101));
        assert_eq!(t.len(), 2);
        assert_eq!(t[0].1.total(), 3);
        assert!(t[0].1.detail().contains("unknown_token=3"));
        assert_eq!(s.denied_total(), 4);
        assert!(s.take(None).is_empty());
    }

    #[test]
    fn a_client_is_stopped_after_its_burst_but_known_tokens_pass() {
        let s = Strangers::new(1, 10);
        let results: Vec<bool> = (0..12)
            .map(|_| s.deny("10.0.0.1", 1, Why::UnknownToken).is_ok())
            .collect();
        assert!(results.iter().filter(|ok| **ok).count() <= 10);
        assert!(s.admit("10.0.0.1", Some("bad")).is_err());
        s.authenticated("good");
        assert!(s.admit("10.0.0.1", Some("good")).is_ok());
        assert!(s.admit("10.0.0.9", None).is_ok());
    }
}
