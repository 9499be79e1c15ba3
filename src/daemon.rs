//! `serve`: the daemon. The sweep fires on `schedule.sweep` (UTC, the machine's clock):
//! the loop sleeps until the next firing, so an idle daemon wakes only for its ticks (the
//! sweep, `dispatch.interval`, the watchdog). The sweep and the dispatcher run in that one
//! loop; their rounds are bounded in time and cut short by shutdown. systemd hears READY=1 once the database is migrated, the job is
//! scheduled and the API listens; the catch-up round runs after that.

use crate::dispatcher::{self, DispatchSummary};
use crate::service::App;
use crate::store::StoreError;
use crate::sweep::{self, SweepSummary};
use std::time::Duration;
use tokio::sync::watch;

/// Database connections of the HTTP API's own pool.
const API_CONNECTIONS: u32 = 4;

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("schedule.sweep: {0}")]
    Schedule(String),
    #[error("mail transport: {0}")]
    Mail(#[from] crate::mail::MailError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
}

/// Real time one round of work may spend sending mail before it yields to the loop (so
/// shutdown, the watchdog and the next tick are never held up by an SMTP relay).
const ROUND_BUDGET: Duration = Duration::from_secs(20);

/// One round of work: a sweep at the clock's instant, then dispatch of what is due.
pub async fn sweep_and_dispatch(
    app: &App,
    transport: &crate::mail::Transport,
) -> Result<(SweepSummary, DispatchSummary), StoreError> {
    let now = app.now();
    let swept = sweep::sweep(app, now).await?;
    let sent = dispatcher::dispatch(app, transport, app.now()).await?;
    Ok((swept, sent))
}

/// The sweep's schedule: a cron expression with a seconds field first, in UTC.
fn sweep_schedule(expr: &str) -> Result<croner::Cron, DaemonError> {
    croner::parser::CronParser::builder()
        .seconds(croner::parser::Seconds::Required)
        .build()
        .parse(expr)
        .map_err(|e| DaemonError::Schedule(e.to_string()))
}

/// The next firing of `cron` after `after` (the machine's clock; a year ahead if none).
fn next_firing(
    cron: &croner::Cron,
    after: chrono::DateTime<chrono::Utc>,
) -> chrono::DateTime<chrono::Utc> {
    cron.find_next_occurrence(&after, false)
        .unwrap_or(after + chrono::TimeDelta::days(365))
}

/// A monotonic deadline for a wall-clock instant (now if it has passed).
fn deadline_for(at: chrono::DateTime<chrono::Utc>) -> tokio::time::Instant {
    let wait = (at - chrono::Utc::now()).to_std().unwrap_or_default();
    tokio::time::Instant::now() + wait
}

/// Tells systemd what the daemon is doing (`STATUS=`), and logs it at debug level.
fn status(text: &str) {
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Status(text)]);
    tracing::debug!(status = text, "status");
}

/// The relay's recent record: after a round that ended in relay trouble the dispatcher
/// waits `dispatch.backoff`, doubling up to `dispatch.backoff_max`, before it tries again.
struct RelayBackoff {
    failures: u32,
    next_try: Option<tokio::time::Instant>,
}

impl RelayBackoff {
    fn ready(&self) -> bool {
        self.next_try
            .is_none_or(|t| tokio::time::Instant::now() >= t)
    }

    fn record(&mut self, app: &App, sent: &DispatchSummary) {
        if sent.relay_trouble {
            let wait = dispatcher::backoff_secs(&app.config.dispatch, i64::from(self.failures));
            self.failures = self.failures.saturating_add(1);
            self.next_try =
                Some(tokio::time::Instant::now() + Duration::from_secs(wait.unsigned_abs()));
            app.health.update(|h| h.relay_trouble = true);
            status(&format!(
                "mail relay failing; next dispatch in {wait} s (messages wait in the outbox)"
            ));
        } else if self.failures > 0 || self.next_try.is_some() {
            self.failures = 0;
            self.next_try = None;
            app.health.update(|h| h.relay_trouble = false);
        }
    }
}

/// Runs until `shutdown` turns true. Holds the SQLite daemon lock for its whole life.
///
/// Start-up order, so that systemd never waits on the network: lock, release claims left
/// by a killed predecessor, schedule, bind the API, READY=1; only then the catch-up round,
/// whose sending is bounded by [`ROUND_BUDGET`]. On SIGTERM no further message is begun;
/// the one being sent gets [`dispatcher::SHUTDOWN_GRACE`] to finish and be recorded.
pub async fn serve(app: App, mut shutdown: watch::Receiver<bool>) -> Result<(), DaemonError> {
    // SIGHUP re-reads the config; registered first, so a HUP during start-up cannot kill us.
    let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    let mut app = app;
    let _lock = app.store.lock_daemon()?;
    let mut transport = dispatcher::transport(&app.config.mail)?;
    tracing::info!(
        database = %app.store.describe(),
        mail = %transport.describe(),
        sweep = %app.config.sweep_cron,
        "nazorg daemon starting"
    );
    // On SQLite the lock proves no other daemon works on this database: claims are stale.
    // On PostgreSQL another daemon may hold them; a dead one's claims simply expire.
    if app.store.backend() == crate::store::Backend::Sqlite {
        let mut tx = app.store.write().await?;
        let released = crate::store::outbox::release_all_claims(&mut tx).await?;
        tx.commit().await?;
        if released > 0 {
            tracing::info!(
                messages = released,
                "released claims left by a previous daemon"
            );
        }
    }
    app.health.update(|h| {
        h.serving = true;
        h.sweep_every_secs = crate::health::sweep_allowance(&app.config.sweep_cron, app.now());
    });

    // The sweep's next firing; the loop sleeps until then (no polling in between).
    let schedule = sweep_schedule(&app.config.sweep_cron)?;
    let mut next_sweep = next_firing(&schedule, chrono::Utc::now());

    // The API listens before we report ready, so a failed bind fails the start.
    let addr = app.config.api.listen;
    let listener = crate::api::bind(addr)
        .await
        .map_err(|source| DaemonError::Listen { addr, source })?;
    let bound = listener
        .local_addr()
        .map_err(|source| DaemonError::Listen { addr, source })?;
    tracing::info!(addr = %bound, "api listening");
    // The API has a connection pool of its own: however busy it is, the sweep and the
    // dispatcher keep theirs.
    let api_store = app.store.separate_pool(API_CONNECTIONS).await?;
    let api_app = crate::service::App {
        store: api_store.clone(),
        ..app.acting_as(crate::audit::Actor::System)
    };
    let api_state = crate::api::ApiState::new(api_app);
    let dispatch_wanted = api_state.dispatch.clone();
    let (router_tx, routers) = watch::channel(crate::api::router(api_state.clone()));
    let reload_state = api_state.clone();
    let mut api_shutdown = shutdown.clone();
    let api = tokio::spawn(async move {
        let stop = async move {
            while !*api_shutdown.borrow() {
                if api_shutdown.changed().await.is_err() {
                    break;
                }
            }
        };
        if let Err(e) = crate::api::serve(listener, api_state, routers, stop).await {
            tracing::error!(error = %e, "api server stopped");
        }
    });

    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]);
    tracing::info!("nazorg daemon ready");

    // Catch up at once on whatever fell due while the daemon was down.
    let mut relay = RelayBackoff {
        failures: 0,
        next_try: None,
    };
    status("catching up: sweeping what fell due while the daemon was down");
    run_round(&app, &transport, &shutdown, &mut relay).await;

    let interval_secs = app.config.dispatch.interval.nominal_seconds().max(1);
    let mut dispatch_tick =
        tokio::time::interval(Duration::from_secs(interval_secs.unsigned_abs()));
    dispatch_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // systemd's watchdog: pinged from this loop, so a stuck sweep or dispatcher (both run
    // here, each bounded) stops the pings and systemd restarts the daemon.
    let mut watchdog_usec = 0u64;
    let watchdog = sd_notify::watchdog_enabled(false, &mut watchdog_usec);
    let mut watchdog_tick = tokio::time::interval(Duration::from_micros(if watchdog {
        (watchdog_usec / 2).max(1_000_000)
    } else {
        3_600_000_000
    }));
    watchdog_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let sweep_due = tokio::time::sleep_until(deadline_for(next_sweep));
    tokio::pin!(sweep_due);
    loop {
        tokio::select! {
            biased;
            changed = shutdown.changed() => {
                if changed.is_err() || *shutdown.borrow() {
                    break;
                }
            }
            Some(()) = async {
                match hangup.as_mut() {
                    Some(h) => h.recv().await,
                    None => std::future::pending().await,
                }
            } => {
                if let Some((reloaded, new_transport)) = reload(&app) {
                    app = reloaded;
                    transport = new_transport;
                    app.health.update(|h| {
                        h.sweep_every_secs =
                            crate::health::sweep_allowance(&app.config.sweep_cron, app.now());
                    });
                    // The API's next request already sees the new config.
                    let api_app = crate::service::App {
                        store: api_store.clone(),
                        ..app.acting_as(crate::audit::Actor::System)
                    };
                    let _ = router_tx.send(crate::api::router(reload_state.with_app(api_app)));
                    tracing::info!(config = %app.config.path.display(), mail = %transport.describe(), "config reloaded");
                    status("config reloaded");
                }
            }
            _ = watchdog_tick.tick(), if watchdog => {
                let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Watchdog]);
            }
            () = &mut sweep_due => {
                // The monotonic timer may run a little ahead of the wall clock: sleep the
                // rest, so a firing is never swept early or twice.
                let now = chrono::Utc::now();
                if now >= next_sweep {
                    run_round(&app, &transport, &shutdown, &mut relay).await;
                    next_sweep = next_firing(&schedule, chrono::Utc::now().max(next_sweep));
                }
                sweep_due.as_mut().reset(deadline_for(next_sweep));
            }
            () = dispatch_wanted.notified() => {
                if relay.ready() {
                    dispatch_round(&app, &transport, &shutdown, &mut relay).await;
                }
            }
            _ = dispatch_tick.tick() => {
                if relay.ready() {
                    dispatch_round(&app, &transport, &shutdown, &mut relay).await;
                }
            }
        }
    }
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Stopping]);
    status("stopping");
    tracing::info!("nazorg daemon stopping");
    if let Err(e) = api.await {
        tracing::error!(error = %e, "api task ended abnormally");
    }
    // One after the other (so the last connection folds the WAL in), together at most
    // `store::CLOSE_WAIT`.
    let closing = crate::clock::monotonic();
    for store in [&api_store, &app.store] {
        let left = crate::store::CLOSE_WAIT.saturating_sub(closing.elapsed());
        if let Err(e) = store.close_within(left).await {
            tracing::warn!(error = %e, "database not closed cleanly");
        }
    }
    Ok(())
}

async fn run_round(
    app: &App,
    transport: &crate::mail::Transport,
    shutdown: &watch::Receiver<bool>,
    relay: &mut RelayBackoff,
) {
    let now = app.now();
    let started = crate::clock::monotonic();
    match sweep::sweep(app, now).await {
        Ok(s) => {
            app.health.metrics.sweep_done(started.elapsed());
            app.health.update(|h| {
                h.last_sweep = Some(now);
                h.last_sweep_failed = false;
            });
            tracing::debug!(examined = s.examined, "sweep done");
        }
        Err(e) => {
            app.health.update(|h| h.last_sweep_failed = true);
            tracing::error!(error = %e, "sweep failed; the next tick retries");
            status("the last sweep failed; the next tick retries");
        }
    }
    if relay.ready() {
        dispatch_round(app, transport, shutdown, relay).await;
    }
}

async fn dispatch_round(
    app: &App,
    transport: &crate::mail::Transport,
    shutdown: &watch::Receiver<bool>,
    relay: &mut RelayBackoff,
) {
    let mut budget = dispatcher::Budget::new(ROUND_BUDGET, shutdown.clone());
    match dispatcher::dispatch_within(app, transport, app.now(), &mut budget).await {
        Ok(sent) => {
            app.health.update(|h| h.last_dispatch = Some(app.now()));
            relay.record(app, &sent);
            if !sent.relay_trouble {
                let last = app
                    .health
                    .snapshot()
                    .last_sweep
                    .map(|t| t.to_rfc3339())
                    .unwrap_or_else(|| "never".into());
                status(&format!(
                    "ready; last sweep {last}; this round sent {}, retrying {}, failed {}",
                    sent.sent, sent.retrying, sent.failed
                ));
            }
        }
        Err(e) => tracing::error!(error = %e, "dispatch failed; will retry"),
    }
}

/// Settings that a running daemon cannot change under its feet: where the data lives, the
/// keys, the listener, the limiter's rates and the cron job already scheduled.
fn needs_restart(old: &crate::config::Config, new: &crate::config::Config) -> Vec<&'static str> {
    let mut keys = Vec::new();
    let differ =
        |a: &dyn std::fmt::Debug, b: &dyn std::fmt::Debug| format!("{a:?}") != format!("{b:?}");
    if differ(&old.state_dir, &new.state_dir) {
        keys.push("state_dir");
    }
    if differ(&old.database, &new.database) {
        keys.push("database");
    }
    if differ(&old.crypto, &new.crypto) {
        keys.push("crypto");
    }
    if differ(&old.api, &new.api) {
        keys.push("api");
    }
    if old.sweep_cron != new.sweep_cron {
        keys.push("schedule.sweep");
    }
    keys
}

/// Re-reads the config file (SIGHUP, `systemctl reload`). A config with errors is refused
/// with every error logged, and the daemon keeps the one it has; otherwise municipalities,
/// members' teams, plans, indicators, rules, timings and mail settings take effect for the
/// next sweep, the next message and the next request.
fn reload(app: &App) -> Option<(App, crate::mail::Transport)> {
    let path = app.config.path.clone();
    let cfg = match crate::config::Config::load(&path) {
        Ok(cfg) => cfg,
        Err(e) => {
            for issue in e.issues() {
                tracing::error!(problem = %issue, "config not reloaded");
            }
            tracing::error!(
                config = %path.display(),
                "config not reloaded: it has errors; the daemon keeps the config it runs with"
            );
            status("config reload refused (errors in the file); running on the previous config");
            return None;
        }
    };
    let transport = match dispatcher::transport(&cfg.mail) {
        Ok(t) => t,
        Err(e) => {
            tracing::error!(error = %e, "config not reloaded: the mail transport cannot be built; the daemon keeps the config it runs with");
            return None;
        }
    };
    let restart = needs_restart(&app.config, &cfg);
    if !restart.is_empty() {
        tracing::warn!(
            keys = %restart.join(", "),
            "changed settings that take effect only after a restart"
        );
    }
    Some((app.with_config(cfg), transport))
}
