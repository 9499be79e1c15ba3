//! The team workspace under `/team/`: sign-in by mailed link, sessions, and server-rendered
//! pages (caseload, family, record form, flag, handover, print view) that call the same
//! services as the HTTP API and the CLI. Served by the API's listener; works without
//! JavaScript; Dutch by default, English by the browser's language or `?lang=en`.
//!
//! A page for a family, check-in, flag or handover answers 404 to every team but the ones
//! the API lets see it (the responsible team, and both teams during a move), the same 404
//! as for an item that does not exist. Every view of personal data, every change and every
//! sign-in (and failed sign-in) is audited.

mod evaluation;
mod form;
pub mod i18n;
mod labels;
mod pages;
pub mod session;
pub mod signin;
mod svg;
mod views;

pub use pages::{caseload_data, caseload_html};

use crate::api::ApiState;
use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// The stylesheet, compiled in.
const STYLE: &str = include_str!("style.css");

/// The request's language and path, for every page.
#[derive(Clone, Debug)]
pub struct Here {
    pub t: i18n::T,
    pub path: String,
    /// Set once the request's session was found valid (see [`limit`]).
    pub signed_in: Arc<AtomicBool>,
}

/// The workspace's routes, merged into the API router.
pub fn router(state: ApiState) -> Router<ApiState> {
    Router::new()
        .route("/team", get(pages::home_redirect))
        .route("/team/", get(pages::caseload))
        .route("/team/style.css", get(style))
        .route(
            "/team/signin",
            get(pages::signin_form).post(pages::signin_request),
        )
        .route("/team/signin/{token}", get(pages::signin_redeem))
        .route("/team/signout", axum::routing::post(pages::signout))
        .route("/team/families/{reference}", get(pages::family))
        .route("/team/families/{reference}/print", get(pages::family_print))
        .route(
            "/team/families/{reference}/case-number",
            axum::routing::post(pages::case_number_submit),
        )
        .route(
            "/team/families/{reference}/evaluation",
            get(evaluation::evaluation_form).post(evaluation::evaluation_submit),
        )
        .route(
            "/team/checkins/{id}",
            get(pages::record_form).post(pages::record_submit),
        )
        .route(
            "/team/flags/{id}",
            get(pages::flag_page).post(pages::flag_submit),
        )
        .route(
            "/team/handovers/{id}",
            get(pages::handover_page).post(pages::handover_submit),
        )
        .route("/team/{*rest}", get(pages::not_found))
        .layer(middleware::from_fn_with_state(state.clone(), limit))
        .layer(middleware::from_fn_with_state(state, frame))
}

async fn style() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        STYLE,
    )
        .into_response()
}

/// Picks the language (and remembers a `?lang=` choice in a cookie) and sets the headers
/// every page carries: no caching of personal data, no framing, no referrer (a sign-in
/// link must not leak), nothing loaded from elsewhere.
async fn frame(State(state): State<ApiState>, mut req: Request, next: Next) -> Response {
    let chosen = req
        .uri()
        .query()
        .unwrap_or("")
        .split('&')
        .find_map(|p| p.strip_prefix("lang="))
        .filter(|l| *l == "nl" || *l == "en")
        .map(str::to_string);
    let t = i18n::pick(chosen.as_deref(), req.headers());
    let path = req.uri().path().to_string();
    req.extensions_mut().insert(Here {
        t,
        path,
        signed_in: Arc::new(AtomicBool::new(false)),
    });
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    if let Some(l) = chosen
        && let Ok(v) = HeaderValue::from_str(&session::set_cookie(
            &state.app,
            session::LANG_COOKIE,
            &l,
            false,
            Some(365 * 86_400),
        ))
    {
        h.append(header::SET_COOKIE, v);
    }
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; img-src 'self' data:; style-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    resp
}

/// The API's per-IP limit for strangers, applied to the workspace: a request without a
/// valid session (a sign-in request, a sign-in link, a page before sign-in) takes one from
/// the client's allowance (`api.burst`, then `api.rate_limit` per second), and once that is
/// used up the client gets 429 before any database work. The denials are counted and
/// audited in aggregate with the API's (`api.denied`, one entry per client and minute).
/// A session that worked lately still passes from a blocked address.
async fn limit(State(state): State<ApiState>, req: Request, next: Next) -> Response {
    use crate::api::strangers::Why;
    if req.uri().path() == "/team/style.css" {
        return next.run(req).await;
    }
    let Some(here) = req.extensions().get::<Here>().cloned() else {
        return next.run(req).await;
    };
    let client = req
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip().to_string())
        .unwrap_or_else(|| "unknown".into());
    let cookie = session::cookie(req.headers(), session::SESSION_COOKIE)
        .filter(|c| !c.is_empty())
        .map(str::to_string);
    let minute = state.app.now().timestamp().div_euclid(60);
    let strangers = state.strangers();
    if let Err(wait) = strangers.admit_session(&client, cookie.as_deref()) {
        let _ = strangers.deny(&client, minute, Why::Limited);
        return pages::too_many(&here, wait);
    }
    let why = if req.method() == axum::http::Method::POST && req.uri().path() == "/team/signin" {
        Why::SignIn
    } else {
        Why::NoSession
    };
    if cookie.is_none() {
        // Nothing to sign in with: a stranger's request, counted before it is served.
        if let Err(wait) = strangers.deny(&client, minute, why) {
            return pages::too_many(&here, wait);
        }
        return next.run(req).await;
    }
    let resp = next.run(req).await;
    if let Some(c) = cookie {
        if here.signed_in.load(Ordering::Relaxed) {
            strangers.session_ok(&c);
        } else {
            // A cookie that is no (longer a) session: counted like a bad token.
            strangers.session_gone(&c);
            let _ = strangers.deny(&client, minute, why);
        }
    }
    resp
}
