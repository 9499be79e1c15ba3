//! Sends what the outbox holds: claims a batch, sends each message, records the result.
//! Transient failures are retried with exponential backoff; permanent ones and those that
//! exhaust `dispatch.max_attempts` are marked failed and listed by `outbox list --failed`.
//! A message is never deleted, sent or not. A safety notice (red alert, escalation) that
//! fails for good is re-queued once to the municipality's coordinator in the same
//! transaction (see [`crate::mail::fallback`]).

use crate::config::DispatchConfig;
use crate::mail::{OutgoingMessage, SendError, Transport};
use crate::metrics::Failure;
use crate::service::App;
use crate::store::{self, StoreError, to_secs};
use chrono::{DateTime, Utc};
use serde::Serialize;

/// How long a claim holds before another dispatcher may take the message over.
const CLAIM_SECS: i64 = 300;
const BATCH: i64 = 50;

/// How long a send in flight when shutdown is asked for may still take to finish. The relay
/// may already hold the message: cut off, it stays queued and goes out twice. Well inside
/// systemd's `TimeoutStopSec=30s`, together with the API's drain and closing the database.
pub const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

#[derive(Debug, Default, Serialize, PartialEq, Eq)]
pub struct DispatchSummary {
    pub sent: u64,
    pub retrying: u64,
    pub failed: u64,
    /// Safety notices that failed for good and were re-queued to a coordinator.
    pub fallbacks: u64,
    /// The round stopped before the queue was empty (shutdown, time budget, relay trouble).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub stopped_early: bool,
    /// The relay failed several times in a row; the daemon waits before the next round.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub relay_trouble: bool,
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

/// When a dispatch round has to stop: the daemon is shutting down, or the round has used
/// its time budget (so an SMTP relay that accepts connections but never answers cannot
/// hold the daemon's start, its watchdog or its stop).
pub struct Budget {
    deadline: Option<tokio::time::Instant>,
    stop: Option<tokio::sync::watch::Receiver<bool>>,
}

impl Budget {
    /// No limit: one-shot commands (`nazorg sweep`) send everything that is due.
    pub fn unlimited() -> Budget {
        Budget {
            deadline: None,
            stop: None,
        }
    }

    /// At most `limit` of real time, and not past a shutdown request.
    pub fn new(limit: std::time::Duration, stop: tokio::sync::watch::Receiver<bool>) -> Budget {
        Budget {
            deadline: Some(tokio::time::Instant::now() + limit),
            stop: Some(stop),
        }
    }

    fn stopping(&self) -> bool {
        self.stop.as_ref().is_some_and(|s| *s.borrow())
    }

    fn spent(&self) -> bool {
        self.stopping()
            || self
                .deadline
                .is_some_and(|d| tokio::time::Instant::now() >= d)
    }

    /// Resolves when the round must stop; never for an unlimited budget.
    async fn interrupted(&mut self) -> Interruption {
        let deadline = async {
            match self.deadline {
                Some(d) => tokio::time::sleep_until(d).await,
                None => std::future::pending().await,
            }
        };
        let stop = async {
            match self.stop.as_mut() {
                Some(s) => {
                    while !*s.borrow() {
                        if s.changed().await.is_err() {
                            std::future::pending::<()>().await;
                        }
                    }
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = deadline => Interruption::Budget,
            () = stop => Interruption::Shutdown,
        }
    }
}

enum Interruption {
    Budget,
    Shutdown,
}

/// Consecutive transient failures after which a round stops: the relay is in trouble, and
/// hammering it only delays the daemon.
const RELAY_TROUBLE_AFTER: u32 = 3;

/// Sends every message whose attempt is due at `now`.
pub async fn dispatch(
    app: &App,
    transport: &Transport,
    now: DateTime<Utc>,
) -> Result<DispatchSummary, StoreError> {
    dispatch_within(app, transport, now, &mut Budget::unlimited()).await
}

/// Sends what is due at `now` until the budget is spent. Messages claimed but not sent when
/// the round stops are released at once, so the next round (or the next start) takes them
/// without waiting out the claim. Once shutdown is asked for no further message is begun;
/// the one being sent gets [`SHUTDOWN_GRACE`] to finish and its outcome is recorded (sent:
/// never sent again). Only a send that outlasts the grace is cut off: it may have reached
/// the relay, and is sent again later with the same `Message-ID`, so receivers can tell the
/// duplicate.
pub async fn dispatch_within(
    app: &App,
    transport: &Transport,
    now: DateTime<Utc>,
    budget: &mut Budget,
) -> Result<DispatchSummary, StoreError> {
    let cfg = &app.config;
    let mut summary = DispatchSummary::default();
    let now_s = to_secs(now);
    let mut transient_in_a_row = 0u32;
    let mut spent_secrets = false;
    'rounds: loop {
        if budget.spent() {
            summary.stopped_early = true;
            break;
        }
        let mut tx = app.store.write().await?;
        let ids = store::outbox::claim(&mut tx, now_s, CLAIM_SECS, BATCH).await?;
        tx.commit().await?;
        if ids.is_empty() {
            break;
        }
        for (i, &id) in ids.iter().enumerate() {
            if budget.spent() || transient_in_a_row >= RELAY_TROUBLE_AFTER {
                release(app, &ids[i..]).await?;
                summary.stopped_early = true;
                break 'rounds;
            }
            let mut conn = app.store.conn().await?;
            let Some(m) = store::outbox::load(&mut conn, id).await? else {
                continue;
            };
            drop(conn);
            // Shutdown asked for while the message was read: it is not begun.
            if budget.stopping() {
                release(app, &ids[i..]).await?;
                summary.stopped_early = true;
                break 'rounds;
            }
            let msg = OutgoingMessage {
                outbox_key: m.key.clone(),
                from: cfg.mail.from.clone(),
                to: m.recipients.clone(),
                cc: m.cc.clone(),
                subject: m.subject.clone(),
                body_text: m.body.clone(),
                attachments: m.attachments.clone(),
            };
            let send = transport.send(&msg, now);
            tokio::pin!(send);
            let result = tokio::select! {
                r = &mut send => r,
                why = budget.interrupted() => match why {
                    Interruption::Shutdown => {
                        tracing::info!(
                            outbox = id,
                            grace_secs = SHUTDOWN_GRACE.as_secs(),
                            "stopping: finishing the message being sent"
                        );
                        match tokio::time::timeout(SHUTDOWN_GRACE, &mut send).await {
                            // Recorded below; the next message is not begun (`spent`).
                            Ok(r) => r,
                            Err(_) => {
                                tracing::warn!(
                                    outbox = id,
                                    "stopping: the message being sent did not finish in time; it stays queued and goes out again after the restart with the same Message-ID"
                                );
                                release(app, &ids[i..]).await?;
                                summary.stopped_early = true;
                                break 'rounds;
                            }
                        }
                    }
                    Interruption::Budget => Err(SendError::Transient(
                        "no answer from the mail relay within the dispatch round".into(),
                    )),
                },
            };
            let mut tx = app.store.write().await?;
            match result {
                Ok(()) => {
                    store::outbox::mark_sent(&mut tx, id, now_s).await?;
                    // A sign-in link is spent once it is out: its text goes at once.
                    if m.kind == crate::mail::workspace::SIGNIN_LINK_KIND {
                        store::outbox::drop_body(&mut tx, id, now_s).await?;
                        spent_secrets = true;
                    }
                    summary.sent += 1;
                    transient_in_a_row = 0;
                }
                Err(e) => {
                    let exhausted = m.attempts + 1 >= i64::from(cfg.dispatch.max_attempts);
                    let retry_at = match &e {
                        SendError::Transient(_) if !exhausted => {
                            Some(now_s + backoff_secs(&cfg.dispatch, m.attempts))
                        }
                        _ => None,
                    };
                    if matches!(e, SendError::Transient(_)) {
                        transient_in_a_row += 1;
                    }
                    app.health.metrics.send_failed(
                        &m.kind,
                        match (&e, retry_at) {
                            (SendError::Transient(_), Some(_)) => Failure::Transient,
                            (SendError::Transient(_), None) => Failure::Exhausted,
                            _ => Failure::Permanent,
                        },
                    );
                    store::outbox::mark_attempt_failed(&mut tx, id, &e.to_string(), retry_at)
                        .await?;
                    if retry_at.is_some() {
                        summary.retrying += 1;
                        tracing::warn!(outbox = id, error = %e, "sending failed; will retry");
                    } else {
                        summary.failed += 1;
                        tracing::error!(outbox = id, error = %e, "sending failed for good; see `nazorg outbox list --failed`");
                        if crate::mail::is_safety_notice(&m.kind)
                            && fall_back(app, &mut tx, &m, &e.to_string(), now_s).await?
                        {
                            summary.fallbacks += 1;
                            tracing::warn!(
                                outbox = id,
                                "safety notice re-queued to the coordinator"
                            );
                        }
                    }
                }
            }
            tx.commit().await?;
        }
    }
    summary.relay_trouble = transient_in_a_row >= RELAY_TROUBLE_AFTER;
    if spent_secrets {
        // Nor may the link linger in the write-ahead log.
        app.store.checkpoint().await?;
    }
    Ok(summary)
}

/// The coordinator who gets a failed safety notice: of the municipality responsible for its
/// family now, else of the municipality whose team or coordinator it was addressed to.
fn fallback_coordinator(
    app: &App,
    responsible: Option<&str>,
    m: &store::outbox::StoredMessage,
) -> Option<String> {
    let cfg = &app.config;
    responsible
        .and_then(|code| cfg.municipality(code))
        .or_else(|| {
            cfg.municipalities.values().find(|mu| {
                m.recipients
                    .iter()
                    .chain(&m.cc)
                    .any(|a| *a == mu.team_email || *a == mu.coordinator_email)
            })
        })
        .map(|mu| mu.coordinator_email.clone())
}

/// Enqueues the fallback of safety notice `m` (once: its key is derived from the
/// original's). Returns whether a fallback was enqueued now.
async fn fall_back(
    app: &App,
    tx: &mut store::Conn,
    m: &store::outbox::StoredMessage,
    error: &str,
    now: i64,
) -> Result<bool, StoreError> {
    let responsible = match &m.family_ref {
        Some(r) => match store::families::by_ref(tx, r, now).await? {
            // Erased while it was being sent: nothing more goes out for the family.
            Some(f) if f.status == "erased" => return Ok(false),
            Some(f) => Some(f.municipality),
            None => None,
        },
        None => None,
    };
    let Some(coordinator) = fallback_coordinator(app, responsible.as_deref(), m) else {
        tracing::error!(
            outbox = m.id,
            "no coordinator to fall back to for a failed safety notice"
        );
        return Ok(false);
    };
    let (subject, body) = crate::mail::fallback::safety_fallback(
        app.config.mail.language,
        &crate::mail::fallback::FallbackFacts {
            original_subject: &m.subject,
            original_recipients: &m.recipients,
            error,
            original_body: &m.body,
        },
    );
    store::outbox::enqueue(
        tx,
        &store::outbox::NewMessage {
            key: &format!("fallback:{}", m.key),
            kind: crate::mail::SAFETY_FALLBACK_KIND,
            family_ref: m.family_ref.as_deref(),
            recipients: std::slice::from_ref(&coordinator),
            cc: &[],
            subject: &subject,
            body: &body,
            attachments: &[],
            now,
        },
    )
    .await
}

async fn release(app: &App, ids: &[i64]) -> Result<(), StoreError> {
    let mut tx = app.store.write().await?;
    store::outbox::release_claims(&mut tx, ids).await?;
    tx.commit().await?;
    Ok(())
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
