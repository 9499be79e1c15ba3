//! Sends what the outbox holds: claims a batch, sends each message, records the result.
//! Transient failures are retried with exponential backoff; permanent ones and those that
//! exhaust `dispatch.max_attempts` are marked failed and listed by `outbox list --failed`.
//! A message is never deleted, sent or not.

use crate::config::DispatchConfig;
use crate::mail::{OutgoingMessage, SendError, Transport};
use crate::service::App;
use crate::store::{self, StoreError, to_secs};
use chrono::{DateTime, Utc};
use serde::Serialize;

/// How long a claim holds before another dispatcher may take the message over.
const CLAIM_SECS: i64 = 300;
const BATCH: i64 = 50;

#[derive(Debug, Default, Serialize, PartialEq, Eq)]
pub struct DispatchSummary {
    pub sent: u64,
    pub retrying: u64,
    pub failed: u64,
}

/// Seconds to wait before attempt `attempts + 1`: `backoff · 2^attempts`, at most `backoff_max`.
pub fn backoff_secs(cfg: &DispatchConfig, attempts: i64) -> i64 {
    let epoch = DateTime::<Utc>::UNIX_EPOCH;
    let secs = |d: crate::domain::duration::IsoDuration| {
        d.add_to(epoch)
            .map(|t| (t - epoch).num_seconds())
            .unwrap_or(60)
    };
    let base = secs(cfg.backoff).max(1);
    let max = secs(cfg.backoff_max).max(base);
    let shift = u32::try_from(attempts.clamp(0, 30)).unwrap_or(30);
    base.saturating_mul(1i64 << shift).min(max)
}

/// Sends every message whose attempt is due at `now`.
pub async fn dispatch(
    app: &App,
    transport: &Transport,
    now: DateTime<Utc>,
) -> Result<DispatchSummary, StoreError> {
    let cfg = &app.config;
    let mut summary = DispatchSummary::default();
    let now_s = to_secs(now);
    loop {
        let mut tx = app.store.write().await?;
        let ids = store::outbox::claim(&mut tx, now_s, CLAIM_SECS, BATCH).await?;
        tx.commit().await?;
        if ids.is_empty() {
            break;
        }
        for id in ids {
            let mut conn = app.store.conn().await?;
            let Some(m) = store::outbox::load(&mut conn, id).await? else {
                continue;
            };
            drop(conn);
            let msg = OutgoingMessage {
                outbox_key: m.key.clone(),
                from: cfg.mail.from.clone(),
                to: m.recipients,
                cc: m.cc,
                subject: m.subject,
                body_text: m.body,
                attachments: m.attachments,
            };
            let result = transport.send(&msg, now).await;
            let mut tx = app.store.write().await?;
            match result {
                Ok(()) => {
                    store::outbox::mark_sent(&mut tx, id, now_s).await?;
                    summary.sent += 1;
                }
                Err(e) => {
                    let exhausted = m.attempts + 1 >= i64::from(cfg.dispatch.max_attempts);
                    let retry_at = match &e {
                        SendError::Transient(_) if !exhausted => {
                            Some(now_s + backoff_secs(&cfg.dispatch, m.attempts))
                        }
                        _ => None,
                    };
                    store::outbox::mark_attempt_failed(&mut tx, id, &e.to_string(), retry_at)
                        .await?;
                    if retry_at.is_some() {
                        summary.retrying += 1;
                        tracing::warn!(outbox = id, error = %e, "sending failed; will retry");
                    } else {
                        summary.failed += 1;
                        tracing::error!(outbox = id, error = %e, "sending failed for good; see `nazorg outbox list --failed`");
                    }
                }
            }
            tx.commit().await?;
        }
    }
    Ok(summary)
}

/// The transport the config asks for.
pub fn transport(cfg: &crate::config::MailConfig) -> Result<Transport, crate::mail::MailError> {
    match &cfg.transport {
        crate::config::MailTransport::File { dir } => Transport::file(dir.clone()),
        crate::config::MailTransport::Smtp { url, password } => {
            Transport::smtp_with(url, password.as_ref())
        }
    }
}
