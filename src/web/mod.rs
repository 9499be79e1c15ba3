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
mod pages;
pub mod session;
pub mod signin;
mod svg;
mod views;

pub use pages::caseload_html;

use crate::api::ApiState;
use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

/// The stylesheet, compiled in.
const STYLE: &str = include_str!("style.css");

/// The request's language and path, for every page.
#[derive(Clone, Debug)]
pub struct Here {
    pub t: i18n::T,
    pub path: String,
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
    req.extensions_mut().insert(Here { t, path });
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
