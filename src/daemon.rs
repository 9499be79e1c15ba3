//! `serve`: the daemon. tokio-cron-scheduler only wakes the sweep (UTC, `schedule.sweep`);
//! the sweep and the dispatcher run in one worker task that finishes the work in flight
//! before it honours shutdown. systemd hears READY=1 once the job is scheduled and the
//! first catch-up sweep has run.

use crate::dispatcher::{self, DispatchSummary};
use crate::service::App;
use crate::store::StoreError;
use crate::sweep::{self, SweepSummary};
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio_cron_scheduler::{Job, JobScheduler, JobSchedulerError};

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("scheduler: {0}")]
    Scheduler(#[from] JobSchedulerError),
    #[error("mail transport: {0}")]
    Mail(#[from] crate::mail::MailError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
}

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

/// Runs until `shutdown` turns true. Holds the SQLite daemon lock for its whole life.
pub async fn serve(app: App, mut shutdown: watch::Receiver<bool>) -> Result<(), DaemonError> {
    let _lock = app.store.lock_daemon()?;
    let transport = dispatcher::transport(&app.config.mail)?;
    tracing::info!(
        database = %app.store.path().display(),
        mail = %transport.describe(),
        sweep = %app.config.sweep_cron,
        "nazorg daemon starting"
    );

    let (tick_tx, mut tick_rx) = mpsc::channel::<()>(1);
    let mut scheduler = JobScheduler::new().await?;
    scheduler
        .add(Job::new_async(
            app.config.sweep_cron.as_str(),
            move |_, _| {
                let tick_tx = tick_tx.clone();
                Box::pin(async move {
                    // A full channel means a sweep is already pending: nothing is lost.
                    let _ = tick_tx.try_send(());
                })
            },
        )?)
        .await?;
    scheduler.start().await?;

    // The API listens before we report ready, so a failed bind fails the start.
    let addr = app.config.api.listen;
    let listener = crate::api::bind(addr)
        .await
        .map_err(|source| DaemonError::Listen { addr, source })?;
    let bound = listener
        .local_addr()
        .map_err(|source| DaemonError::Listen { addr, source })?;
    tracing::info!(addr = %bound, "api listening");
    let api_state = crate::api::ApiState::new(app.acting_as(crate::audit::Actor::System));
    let dispatch_wanted = api_state.dispatch.clone();
    let mut api_shutdown = shutdown.clone();
    let api = tokio::spawn(async move {
        let stop = async move {
            while !*api_shutdown.borrow() {
                if api_shutdown.changed().await.is_err() {
                    break;
                }
            }
        };
        if let Err(e) = crate::api::serve(listener, api_state, stop).await {
            tracing::error!(error = %e, "api server stopped");
        }
    });

    // Catch up at once on whatever fell due while the daemon was down.
    run_round(&app, &transport).await;
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]);
    tracing::info!("nazorg daemon ready");

    let interval_secs = app.config.dispatch.interval.nominal_seconds().max(1);
    let mut dispatch_tick =
        tokio::time::interval(Duration::from_secs(interval_secs.unsigned_abs()));
    dispatch_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            changed = shutdown.changed() => {
                if changed.is_err() || *shutdown.borrow() {
                    break;
                }
            }
            Some(()) = tick_rx.recv() => run_round(&app, &transport).await,
            () = dispatch_wanted.notified() => {
                if let Err(e) = dispatcher::dispatch(&app, &transport, app.now()).await {
                    tracing::error!(error = %e, "dispatch failed; will retry");
                }
            }
            _ = dispatch_tick.tick() => {
                if let Err(e) = dispatcher::dispatch(&app, &transport, app.now()).await {
                    tracing::error!(error = %e, "dispatch failed; will retry");
                }
            }
        }
    }
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Stopping]);
    tracing::info!("nazorg daemon stopping");
    scheduler.shutdown().await?;
    if let Err(e) = api.await {
        tracing::error!(error = %e, "api task ended abnormally");
    }
    app.store.close().await;
    Ok(())
}

async fn run_round(app: &App, transport: &crate::mail::Transport) {
    match sweep_and_dispatch(app, transport).await {
        Ok((s, d)) => tracing::debug!(examined = s.examined, sent = d.sent, "sweep done"),
        Err(e) => tracing::error!(error = %e, "sweep failed; the next tick retries"),
    }
}
