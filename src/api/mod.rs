//! The HTTP API (axum), versioned under `/v1`. TLS is expected from a reverse proxy in
//! front; the daemon listens on loopback by default (`api.listen`).
//!
//! Every `/v1` route but the OpenAPI description needs a bearer token. A municipality token
//! sees only the families its municipality is responsible for; others' families answer 404
//! so existence is not revealed. Each request, each denial and each read of personal data is
//! appended to the audit trail.

pub mod body;
pub mod error;
pub(crate) mod handlers;
mod limiter;
pub mod openapi;
mod server;
pub(crate) mod strangers;

use crate::audit::{self, Actor, Entry};
use crate::service::App;
use crate::store::{self, BeforeCommit, Conn, ConnFuture};
use crate::tokens::{self, Principal, Refusal};
use axum::Router;
use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use error::ApiError;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Longest a request may take before it is answered 503 (its transaction rolls back).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Shared by all handlers.
#[derive(Clone)]
pub struct ApiState {
    pub app: App,
    limiter: Arc<limiter::Limiter>,
    strangers: Arc<strangers::Strangers>,
    metrics: Arc<HttpMetrics>,
    /// Wakes the daemon's dispatcher (a sign-in link should not wait for the next tick).
    pub dispatch: Arc<tokio::sync::Notify>,
}

#[derive(Default)]
struct HttpMetrics {
    by_class: [AtomicU64; 6],
}

impl ApiState {
    /// The same limits and counters over another app (a reloaded config).
    pub fn with_app(&self, app: App) -> ApiState {
        ApiState {
            app,
            ..self.clone()
        }
    }

    pub fn new(app: App) -> ApiState {
        let cfg = app.config.api;
        ApiState {
            app,
            limiter: Arc::new(limiter::Limiter::new(cfg.rate_limit, cfg.burst)),
            strangers: Arc::new(strangers::Strangers::new(cfg.rate_limit, cfg.burst)),
            metrics: Arc::new(HttpMetrics::default()),
            dispatch: Arc::new(tokio::sync::Notify::new()),
        }
    }

    /// Asks the dispatcher to send what is queued now rather than at its next tick.
    pub fn dispatch_soon(&self) {
        self.dispatch.notify_one();
    }

    /// The per-IP accounting of unauthenticated requests, shared with the workspace.
    pub(crate) fn strangers(&self) -> &strangers::Strangers {
        &self.strangers
    }
}

/// Every route of the API with its documentation, registered by one call each so the
/// router and `openapi.json` cannot drift: the open ones, and those behind the token check.
/// `/metrics` is behind it when `api.metrics_admin_only` is set.
pub(crate) fn routes(
    metrics_admin_only: bool,
) -> (OpenApiRouter<ApiState>, OpenApiRouter<ApiState>) {
    let mut protected = OpenApiRouter::new()
        .routes(routes!(handlers::list_families, handlers::enrol))
        .routes(routes!(handlers::show_family, handlers::update_family))
        .routes(routes!(handlers::close_family))
        .routes(routes!(handlers::evaluate_family))
        .routes(routes!(handlers::due))
        .routes(routes!(handlers::record))
        .routes(routes!(handlers::move_family))
        .routes(routes!(handlers::handovers))
        .routes(routes!(handlers::ack_handover))
        .routes(routes!(handlers::flags))
        .routes(routes!(handlers::ack_flag))
        .routes(routes!(handlers::resolve_flag))
        .routes(routes!(handlers::list_members, handlers::add_member))
        .routes(routes!(handlers::remove_member))
        .routes(routes!(handlers::create_export))
        .routes(routes!(handlers::export_file));
    let mut open = OpenApiRouter::new()
        .routes(routes!(handlers::healthz))
        .routes(routes!(handlers::readyz))
        .routes(routes!(handlers::openapi));
    if metrics_admin_only {
        protected = protected.routes(routes!(handlers::metrics_for_admin));
    } else {
        open = open.routes(routes!(handlers::metrics));
    }
    (open, protected)
}

/// The router with every route, limit and layer.
pub fn router(state: ApiState) -> Router {
    let (open, protected) = routes(state.app.config.api.metrics_admin_only);
    let protected = protected.route_layer(middleware::from_fn_with_state(state.clone(), authorize));
    let (api, _) = open.merge(protected).split_for_parts();
    api.merge(crate::web::router(state.clone()))
        .fallback(handlers::no_route)
        .layer(middleware::from_fn_with_state(state.clone(), edge))
        .with_state(state)
}

/// Outermost layer: request timeout and status counters.
async fn edge(State(state): State<ApiState>, req: Request, next: Next) -> Response {
    let resp = match tokio::time::timeout(REQUEST_TIMEOUT, next.run(req)).await {
        Ok(r) => r,
        Err(_) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "timeout",
            "the request took too long",
        )
        .into_response(),
    };
    let class = usize::from(resp.status().as_u16() / 100).min(5);
    state.metrics.by_class[class].fetch_add(1, Ordering::Relaxed);
    resp
}

fn bearer(req: &Request) -> Option<&str> {
    let v = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

/// Appends an audit entry in its own transaction. Used where no change happens that could
/// carry it (requests, denials); a failure is logged, the request still gets its answer.
/// Never carries the request's own entry (a denial is not the request's operation).
pub(crate) async fn record_audit(state: &ApiState, actor: &Actor, entry: &Entry<'_>) {
    let at = state.app.now().timestamp();
    let result = store::serving(None, async {
        let mut tx = state.app.store.write().await?;
        audit::append(&mut tx, &state.app.keyring, actor, at, entry).await?;
        tx.commit().await?;
        Ok::<_, crate::store::StoreError>(())
    })
    .await;
    if let Err(e) = result {
        tracing::error!(error = %e, "could not append to the audit trail");
    }
}

fn request_entry<'a>(action: &'a str, subject: &'a str, detail: &'a str) -> Entry<'a> {
    Entry {
        action,
        subject: Some(subject),
        detail: Some(detail),
        ..Default::default()
    }
}

/// A write request's own `api.request` entry, appended by the operation's write
/// transaction just before it commits (see [`store::serving`]).
struct RequestAudit {
    app: App,
    actor: Actor,
    entry: std::sync::Arc<audit::RequestEntry>,
    status: StatusCode,
}

impl BeforeCommit for RequestAudit {
    fn before_commit<'a>(&'a self, conn: &'a mut Conn) -> ConnFuture<'a> {
        Box::pin(async move {
            if self.entry.written().is_some() {
                return Ok(());
            }
            let at = self.app.now().timestamp();
            let e = request_entry("api.request", &self.entry.subject, self.status.as_str());
            audit::append(conn, &self.app.keyring, &self.actor, at, &e).await?;
            Ok(())
        })
    }

    fn committed(&self) {
        if self.entry.written().is_none() {
            self.entry.mark_written(self.status.as_u16());
        }
    }
}

fn too_many(wait: Duration) -> Response {
    let mut e = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        "too many requests; slow down",
    );
    e.retry_after = Some(wait.as_secs().max(1));
    e.into_response()
}

/// Authenticates the bearer token, applies the rate limits, and audits the request. A
/// client IP that used up its allowance of failed requests is answered 429 before any
/// database work; failures are audited in aggregate (see `strangers`).
async fn authorize(State(state): State<ApiState>, mut req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_default();
    let method = req.method().to_string();
    let subject = format!("{method} {route}");
    let client = req
        .extensions()
        .get::<ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip().to_string())
        .unwrap_or_else(|| "unknown".into());
    let secret = bearer(&req).map(str::to_string);
    let minute = state.app.now().timestamp().div_euclid(60);
    if let Err(wait) = state.strangers.admit(&client, secret.as_deref()) {
        let _ = state
            .strangers
            .deny(&client, minute, strangers::Why::Limited);
        return too_many(wait);
    }
    let refused = match secret.as_deref() {
        None => Err(strangers::Why::NoToken),
        Some(s) => match tokens::authenticate(&state.app, s).await {
            Ok(Ok(p)) => {
                state.strangers.authenticated(s);
                Ok(p)
            }
            Ok(Err(refusal)) => {
                state.strangers.forget(s);
                Err(match refusal {
                    Refusal::Revoked(_) => strangers::Why::Revoked,
                    Refusal::Expired(_) => strangers::Why::Expired,
                    Refusal::Unknown => strangers::Why::UnknownToken,
                })
            }
            Err(e) => return ApiError::from(e).into_response(),
        },
    };
    let principal: Principal = match refused {
        Ok(p) => p,
        Err(why) => {
            return match state.strangers.deny(&client, minute, why) {
                Ok(()) => ApiError::unauthorized().into_response(),
                Err(wait) => too_many(wait),
            };
        }
    };
    if let Err(wait) = state.limiter.check(&principal.token_id) {
        record_audit(
            &state,
            &principal.actor(),
            &request_entry("api.denied", &subject, "rate limited"),
        )
        .await;
        return too_many(wait);
    }
    let actor = principal.actor();
    req.extensions_mut().insert(principal);
    let entry = audit::RequestEntry::new(subject);
    // A write route's operation appends the request's entry in its own transaction; reads
    // keep theirs separate (an audited read writes its own entry).
    let hook = (!req.method().is_safe()).then(|| {
        std::sync::Arc::new(RequestAudit {
            app: state.app.clone(),
            actor: actor.clone(),
            entry: entry.clone(),
            // The status the route answers on success, as its documentation says; should the
            // answer differ after all, the entry with the real one is appended below.
            status: openapi::success_status(req.method(), &route),
        }) as std::sync::Arc<dyn BeforeCommit>
    });
    let resp = store::serving(hook, next.run(req)).await;
    // Unless the operation committed the entry with the status answered, append it now.
    if entry.written() != Some(resp.status().as_u16()) {
        record_audit(
            &state,
            &actor,
            &request_entry("api.request", &entry.subject, resp.status().as_str()),
        )
        .await;
    }
    resp
}

/// Binds the listener (so the caller knows the port before it reports ready).
pub async fn bind(addr: std::net::SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr).await
}

/// How often, while requests are being denied, finished minutes of denials are written to
/// the audit trail (and the live token hashes reloaded).
const DENIALS_FLUSH: Duration = Duration::from_secs(5);

/// Serves until `shutdown` resolves; in-flight requests are finished and the denials
/// counted so far are audited. Each request goes to the router `routers` holds then: a
/// reload (SIGHUP) sends a router built with [`ApiState::with_app`] over the same limiter,
/// counters and stranger accounting.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: ApiState,
    routers: tokio::sync::watch::Receiver<Router>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let cfg = state.app.config.api;
    // Works only while denials are being counted: woken by the first one, then every
    // DENIALS_FLUSH until their minutes are written; asleep otherwise.
    let flusher = {
        let state = state.clone();
        tokio::spawn(async move {
            strangers::reload_known(&state).await;
            loop {
                if !state.strangers.pending() {
                    state.strangers.denied.notified().await;
                }
                tokio::time::sleep(DENIALS_FLUSH).await;
                strangers::reload_known(&state).await;
                strangers::flush(&state, false).await;
            }
        })
    };
    let limits = server::Limits {
        max_connections: cfg.max_connections,
        header_timeout: cfg.header_timeout,
    };
    let result = server::run(listener, routers, limits, shutdown).await;
    flusher.abort();
    strangers::flush(&state, true).await;
    result
}
