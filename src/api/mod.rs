//! The HTTP API (axum), versioned under `/v1`. TLS is expected from a reverse proxy in
//! front; the daemon listens on loopback by default (`api.listen`).
//!
//! Every `/v1` route but the OpenAPI description needs a bearer token. A municipality token
//! sees only the families its municipality is responsible for; others' families answer 404
//! so existence is not revealed. Each request, each denial and each read of personal data is
//! appended to the audit trail.

pub mod body;
pub mod error;
mod handlers;
mod limiter;
pub mod openapi;

use crate::audit::{self, Actor, Entry};
use crate::service::App;
use crate::tokens::{self, Principal, Refusal};
use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use error::ApiError;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Longest a request may take before it is answered 503 (its transaction rolls back).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Every route the router serves: method, path, summary, whether a token is needed.
/// `openapi.json` is generated from this table and a test holds the router to it.
pub const ROUTES: &[(&str, &str, &str, bool)] = &[
    (
        "GET",
        "/healthz",
        "Liveness: answers 200 when the daemon runs (no data)",
        false,
    ),
    (
        "GET",
        "/readyz",
        "Readiness: 200 when the database answers, the last sweep is recent and no message waits over an hour; else 503 with the reasons (no data)",
        false,
    ),
    (
        "GET",
        "/metrics",
        "Prometheus counters (counts only, no references)",
        false,
    ),
    ("GET", "/v1/openapi.json", "This description", false),
    (
        "PATCH",
        "/v1/families/{ref}",
        "Keep the family record up to date (the body of `family update`): contacts, members joining and leaving, case director, ex-partner and court measure, safety plan",
        true,
    ),
    (
        "POST",
        "/v1/families",
        "Enrol a family (the CLI's body); 201 with the references and check-ins",
        true,
    ),
    (
        "GET",
        "/v1/families/{ref}",
        "The whole record of a family (audited read)",
        true,
    ),
    (
        "POST",
        "/v1/families/{ref}/close",
        "Close a plan before its term: {\"reason\": CODE, \"safety_improved\": yes|partly|no, \"professionals\": N, \"family_view\"?, \"approved_by\"? (needed while a red flag is open)}",
        true,
    ),
    (
        "POST",
        "/v1/families/{ref}/evaluation",
        "The closing evaluation of an ended plan: {\"safety_improved\": yes|partly|no, \"professionals\": N, \"family_view\"?}",
        true,
    ),
    (
        "GET",
        "/v1/checkins/due",
        "Open check-ins due before ?before=RFC3339 (default now + lead)",
        true,
    ),
    (
        "POST",
        "/v1/checkins/{id}/record",
        "Record a check-in's outcome and observations",
        true,
    ),
];

/// Shared by all handlers.
#[derive(Clone)]
pub struct ApiState {
    pub app: App,
    limiter: Arc<limiter::Limiter>,
    metrics: Arc<HttpMetrics>,
}

#[derive(Default)]
struct HttpMetrics {
    by_class: [AtomicU64; 6],
}

impl ApiState {
    pub fn new(app: App) -> ApiState {
        let cfg = app.config.api;
        ApiState {
            app,
            limiter: Arc::new(limiter::Limiter::new(cfg.rate_limit, cfg.burst)),
            metrics: Arc::new(HttpMetrics::default()),
        }
    }
}

/// The router with every route, limit and layer.
pub fn router(state: ApiState) -> Router {
    let protected = Router::new()
        .route("/v1/families", post(handlers::enrol))
        .route(
            "/v1/families/{ref}",
            get(handlers::show_family).patch(handlers::update_family),
        )
        .route("/v1/families/{ref}/close", post(handlers::close_family))
        .route(
            "/v1/families/{ref}/evaluation",
            post(handlers::evaluate_family),
        )
        .route("/v1/checkins/due", get(handlers::due))
        .route("/v1/checkins/{id}/record", post(handlers::record))
        .route("/v1/families/{ref}/moves", post(handlers::move_family))
        .route("/v1/handovers", get(handlers::handovers))
        .route("/v1/handovers/{id}/ack", post(handlers::ack_handover))
        .route("/v1/flags", get(handlers::flags))
        .route("/v1/flags/{id}/ack", post(handlers::ack_flag))
        .route("/v1/flags/{id}/resolve", post(handlers::resolve_flag))
        .route("/v1/exports", post(handlers::create_export))
        .route("/v1/exports/{id}/{file}", get(handlers::export_file))
        .route_layer(middleware::from_fn_with_state(state.clone(), authorize));
    Router::new()
        .route("/healthz", get(handlers::healthz))
        .route("/readyz", get(handlers::readyz))
        .route("/metrics", get(handlers::metrics))
        .route("/v1/openapi.json", get(handlers::openapi))
        .merge(protected)
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
pub(crate) async fn record_audit(state: &ApiState, actor: &Actor, entry: &Entry<'_>) {
    let at = state.app.now().timestamp();
    let result = async {
        let mut tx = state.app.store.write().await?;
        audit::append(&mut tx, actor, at, entry).await?;
        tx.commit().await?;
        Ok::<_, crate::store::StoreError>(())
    }
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

/// Authenticates the bearer token, applies the rate limit, and audits the request.
async fn authorize(State(state): State<ApiState>, mut req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_default();
    let method = req.method().to_string();
    let subject = format!("{method} {route}");
    let principal = match bearer(&req) {
        None => None,
        Some(secret) => match tokens::authenticate(&state.app, secret).await {
            Ok(Ok(p)) => Some(Ok(p)),
            Ok(Err(refusal)) => Some(Err(refusal)),
            Err(e) => return ApiError::from(e).into_response(),
        },
    };
    let principal: Principal = match principal {
        Some(Ok(p)) => p,
        refused => {
            let (actor, why) = match refused {
                Some(Err(Refusal::Revoked(id))) => (Actor::Token(id), "revoked"),
                Some(Err(Refusal::Expired(id))) => (Actor::Token(id), "expired"),
                Some(Err(Refusal::Unknown)) => (Actor::Anonymous, "unknown token"),
                _ => (Actor::Anonymous, "no token"),
            };
            record_audit(&state, &actor, &request_entry("api.denied", &subject, why)).await;
            return ApiError::unauthorized().into_response();
        }
    };
    if let Err(wait) = state.limiter.check(&principal.token_id) {
        record_audit(
            &state,
            &principal.actor(),
            &request_entry("api.denied", &subject, "rate limited"),
        )
        .await;
        let mut e = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "too many requests; slow down",
        );
        e.retry_after = Some(wait.as_secs().max(1));
        return e.into_response();
    }
    let actor = principal.actor();
    req.extensions_mut().insert(principal);
    let resp = next.run(req).await;
    record_audit(
        &state,
        &actor,
        &request_entry("api.request", &subject, resp.status().as_str()),
    )
    .await;
    resp
}

/// Binds the listener (so the caller knows the port before it reports ready).
pub async fn bind(addr: std::net::SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr).await
}

/// Serves until `shutdown` resolves; in-flight requests are finished.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: ApiState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}
