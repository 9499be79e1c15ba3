//! The HTTP/1 connection loop: a cap on open connections (`api.max_connections`), a
//! header-read timeout (`api.header_timeout`) so slow clients cannot hold slots, the peer
//! address for the per-IP limits, and graceful shutdown that finishes requests in flight.

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Semaphore, watch};
use tower_service::Service;

/// Longest the server waits at shutdown for open connections to finish: with closing the
/// database after it, well inside systemd's `TimeoutStopSec=30s`.
const DRAIN: Duration = Duration::from_secs(15);

pub struct Limits {
    pub max_connections: u32,
    pub header_timeout: Duration,
}

/// Accepts connections until `shutdown` resolves, then lets each finish its request. Each
/// request is served by the router `routers` holds at that moment.
pub async fn run(
    listener: tokio::net::TcpListener,
    routers: watch::Receiver<Router>,
    limits: Limits,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let slots = limits.max_connections.max(1);
    let permits = Arc::new(Semaphore::new(slots as usize));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    let builder = Arc::new(builder);
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // E.g. out of file descriptors: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let routers = routers.clone();
        let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            // The router in force for this request: a reload (SIGHUP) swaps it for the
            // next request, also on connections kept alive.
            let mut router = routers.borrow().clone();
            // A Router is always ready; `call` needs no `poll_ready` first.
            router.call(req)
        });
        let builder = builder.clone();
        let mut stop = stop_rx.clone();
        tokio::spawn(async move {
            let conn = builder.serve_connection(TokioIo::new(stream), service);
            tokio::pin!(conn);
            let stopping = async move {
                let _ = stop.wait_for(|s| *s).await;
            };
            let stopped = tokio::select! {
                _ = conn.as_mut() => false,
                () = stopping => true,
            };
            if stopped {
                conn.as_mut().graceful_shutdown();
                let _ = conn.await;
            }
            drop(permit);
        });
    }
    let _ = stop_tx.send(true);
    // Every connection holds a permit: having them all back means all have closed.
    let _ = tokio::time::timeout(DRAIN, permits.acquire_many(slots)).await;
    Ok(())
}
