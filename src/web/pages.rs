//! The workspace's handlers: find the session, check the team may see the item (404
//! otherwise, like the API), call the service the CLI and API call, render.

use super::Here;
use super::form::{self, FormChild, Posted};
use super::i18n::T;
use super::session::{self, Session};
use super::signin::{self, Redeemed};
use super::views::*;
use crate::api::ApiState;
use crate::audit::{Actor, Entry};
use crate::domain::reference;
use crate::domain::signals::{IndicatorType, Scope};
use crate::service::{self, App, OpError};
use crate::store::{self, to_secs};
use askama::Template;
use axum::Form;
use axum::extract::{Extension, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use std::collections::BTreeMap;

type Q = Query<BTreeMap<String, String>>;

pub(super) fn render(status: StatusCode, page: impl Template) -> Response {
    match page.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "page could not be rendered");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
        }
    }
}

pub(super) fn layout(h: &Here, title: &str, s: Option<&Session>) -> Layout {
    Layout {
        t: h.t,
        title: title.to_string(),
        signed_in: s.is_some(),
        csrf: s.map(|s| s.csrf.clone()).unwrap_or_default(),
        member_name: s.map(|s| s.member.name.clone()).unwrap_or_default(),
        municipality: s.map(|s| s.member.municipality.clone()).unwrap_or_default(),
        switch_href: format!("{}?lang={}", h.path, h.t.other()),
        refresh: None,
    }
}

/// A message page whose one link leads back to the family's page: what every handled form
/// (record, flag, handover, case number, evaluation) answers once it is done or refused.
pub(super) fn family_message(
    h: &Here,
    s: &Session,
    status: StatusCode,
    title: &str,
    body: &str,
    family: &str,
) -> Response {
    let href = format!("/team/families/{family}");
    message(
        h,
        Some(s),
        status,
        title,
        body,
        Some((&href, "record.to.family")),
    )
}

pub(super) fn message(
    h: &Here,
    s: Option<&Session>,
    status: StatusCode,
    title: &str,
    body: &str,
    link: Option<(&str, &str)>,
) -> Response {
    let t = h.t;
    render(
        status,
        MessagePage {
            l: layout(h, t.s(title), s),
            body: t.s(body).to_string(),
            link: link.map(|(href, label)| (href.to_string(), t.s(label).to_string())),
        },
    )
}

/// 429: the client used up its allowance of requests without a session.
pub(super) fn too_many(h: &Here, wait: std::time::Duration) -> Response {
    let mut resp = message(
        h,
        None,
        StatusCode::TOO_MANY_REQUESTS,
        "limited.title",
        "limited.body",
        None,
    );
    if let Ok(v) = HeaderValue::from_str(&wait.as_secs().max(1).to_string()) {
        resp.headers_mut().insert(header::RETRY_AFTER, v);
    }
    resp
}

pub(super) fn not_found_page(h: &Here, s: Option<&Session>) -> Response {
    message(
        h,
        s,
        StatusCode::NOT_FOUND,
        "notfound.title",
        "notfound.body",
        Some(("/team/", "back.caseload")),
    )
}

fn forbidden(h: &Here, s: Option<&Session>) -> Response {
    message(
        h,
        s,
        StatusCode::FORBIDDEN,
        "forbidden.title",
        "forbidden.body",
        None,
    )
}

fn failed(h: &Here, s: Option<&Session>, e: impl std::fmt::Display) -> Response {
    tracing::error!(error = %e, "workspace request failed");
    message(
        h,
        s,
        StatusCode::INTERNAL_SERVER_ERROR,
        "error.title",
        "error.body",
        None,
    )
}

pub(super) fn op_failed(h: &Here, s: Option<&Session>, e: OpError) -> Response {
    match e {
        OpError::NotFound { .. } => not_found_page(h, s),
        OpError::NotResponsible(_) => message(
            h,
            s,
            StatusCode::FORBIDDEN,
            "forbidden.title",
            "notresponsible.body",
            Some(("/team/", "back.caseload")),
        ),
        other => failed(h, s, other),
    }
}

/// The signed-in member, or a redirect to sign-in that comes back here afterwards.
pub(super) async fn gate(
    st: &ApiState,
    h: &Here,
    headers: &HeaderMap,
) -> Result<Session, Response> {
    match session::current(&st.app, headers).await {
        Ok(Some(s)) => {
            h.signed_in
                .store(true, std::sync::atomic::Ordering::Relaxed);
            Ok(s)
        }
        Ok(None) => {
            let next = signin::safe_next(Some(&h.path)).unwrap_or_else(|| "/team/".into());
            Err(Redirect::to(&format!("/team/signin?next={next}")).into_response())
        }
        Err(e) => Err(failed(h, None, e)),
    }
}

/// [`gate`] for a submitted form: signed in, and the form's CSRF token is the session's
/// (403 otherwise, before anything about the item is looked up).
pub(super) async fn gate_form(
    st: &ApiState,
    h: &Here,
    headers: &HeaderMap,
    p: &Posted,
) -> Result<Session, Response> {
    let s = gate(st, h, headers).await?;
    if s.csrf_ok(csrf_of(p)) {
        Ok(s)
    } else {
        Err(forbidden(h, Some(&s)))
    }
}

pub(super) fn member_app(st: &ApiState, s: &Session) -> App {
    st.app
        .acting_as(Actor::Member(s.member.reference.clone()))
        .for_team(Some(s.member.municipality.clone()))
}

async fn denied(st: &ApiState, s: &Session, family: Option<&str>) {
    crate::api::record_audit(
        st,
        &Actor::Member(s.member.reference.clone()),
        &Entry {
            action: "web.denied",
            family,
            detail: Some("out of scope"),
            ..Default::default()
        },
    )
    .await;
}

/// 404 unless the member's team may see the family now (the API's rule).
pub(super) async fn require_family(
    st: &ApiState,
    h: &Here,
    s: &Session,
    family: &str,
) -> Result<(), Response> {
    let parties = crate::api::handlers::parties(st, family)
        .await
        .map_err(|e| failed(h, Some(s), format!("{e:?}")))?;
    if parties.is_empty() {
        return Err(not_found_page(h, Some(s)));
    }
    if parties.contains(&s.member.municipality) {
        Ok(())
    } else {
        denied(st, s, Some(family)).await;
        Err(not_found_page(h, Some(s)))
    }
}

fn csrf_of(p: &Posted) -> Option<&str> {
    p.get("csrf")
}

/// An instant in the reader's language and the configured zone, as the mails write it:
/// "dinsdag 15 december 2026, 09:00".
fn local(app: &App, t: chrono::DateTime<chrono::Utc>, lang: T) -> String {
    crate::mail::words::when(t, app.config.timezone, lang.0)
}

fn local_secs(app: &App, secs: i64, lang: T) -> String {
    chrono::DateTime::from_timestamp(secs, 0)
        .map(|t| local(app, t, lang))
        .unwrap_or_default()
}

// ---- sign-in -----------------------------------------------------------------------------

pub async fn home_redirect() -> Redirect {
    Redirect::to("/team/")
}

pub async fn not_found(
    State(st): State<ApiState>,
    Extension(h): Extension<Here>,
    headers: HeaderMap,
) -> Response {
    let s = session::current(&st.app, &headers).await.ok().flatten();
    if s.is_some() {
        h.signed_in
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }
    not_found_page(&h, s.as_ref())
}

fn browser_cookie(st: &ApiState, headers: &HeaderMap) -> (String, Option<HeaderValue>) {
    match session::cookie(headers, session::BROWSER_COOKIE) {
        Some(b) if b.len() == 64 => (b.to_string(), None),
        _ => {
            let b = session::secret();
            let v = HeaderValue::from_str(&session::set_cookie(
                &st.app,
                session::BROWSER_COOKIE,
                &b,
                false,
                Some(400 * 86_400),
            ))
            .ok();
            (b, v)
        }
    }
}

fn with_cookie(mut resp: Response, cookie: Option<HeaderValue>) -> Response {
    if let Some(c) = cookie {
        resp.headers_mut().append(header::SET_COOKIE, c);
    }
    resp
}

pub async fn signin_form(
    State(st): State<ApiState>,
    Extension(h): Extension<Here>,
    headers: HeaderMap,
    Query(q): Q,
) -> Response {
    let (browser, cookie) = browser_cookie(&st, &headers);
    let next = signin::safe_next(q.get("next").map(String::as_str)).unwrap_or_default();
    let page = SignInPage {
        l: layout(&h, h.t.s("signin.title"), None),
        csrf: session::browser_csrf(&browser),
        next,
        email: String::new(),
        email_error: None,
        errors: vec![],
    };
    with_cookie(render(StatusCode::OK, page), cookie)
}

pub async fn signin_request(
    State(st): State<ApiState>,
    Extension(h): Extension<Here>,
    headers: HeaderMap,
    Form(p): Form<Vec<(String, String)>>,
) -> Response {
    let p = Posted(p);
    let Some(browser) = session::cookie(&headers, session::BROWSER_COOKIE) else {
        return forbidden(&h, None);
    };
    let expected = session::browser_csrf(browser);
    if !csrf_of(&p).is_some_and(|c| session::same(c.as_bytes(), expected.as_bytes())) {
        return forbidden(&h, None);
    }
    let email = p.get("email").unwrap_or("").trim().to_string();
    let next = signin::safe_next(p.get("next"));
    if !crate::config::plausible_email(&email) || email.len() > 254 {
        let msg = h.t.s("signin.email.invalid").to_string();
        let page = SignInPage {
            l: layout(&h, h.t.s("signin.title"), None),
            csrf: expected,
            next: next.unwrap_or_default(),
            email,
            email_error: Some(msg.clone()),
            errors: vec![FormError {
                id: "email".into(),
                label: h.t.s("signin.email").into(),
                message: msg,
            }],
        };
        return render(StatusCode::BAD_REQUEST, page);
    }
    if let Err(e) = signin::request_link(&st.app, &email, browser, next.as_deref()).await {
        return failed(&h, None, e);
    }
    st.dispatch_soon();
    message(&h, None, StatusCode::OK, "sent.title", "sent.body", None)
}

pub async fn signin_redeem(
    State(st): State<ApiState>,
    Extension(h): Extension<Here>,
    headers: HeaderMap,
    Path(token): Path<String>,
) -> Response {
    if token.len() != 64 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
        return message(
            &h,
            None,
            StatusCode::NOT_FOUND,
            "link.unknown.title",
            "link.used.body",
            Some(("/team/signin", "link.new")),
        );
    }
    let browser = session::cookie(&headers, session::BROWSER_COOKIE);
    let (status, title, body) = match signin::redeem(&st.app, &token, browser).await {
        Err(e) => return failed(&h, None, e),
        Ok(Redeemed::SignedIn { session_id, next }) => {
            let mut page = MessagePage {
                l: layout(&h, h.t.s("signedin.title"), None),
                body: h.t.s("signedin.body").to_string(),
                link: Some((next.clone(), h.t.s("continue").to_string())),
            };
            // A page, not a redirect: a SameSite=Strict cookie set while following a link
            // from a mail is only sent on the next navigation that starts here.
            page.l.refresh = Some(next);
            let cookie = HeaderValue::from_str(&session::set_cookie(
                &st.app,
                session::SESSION_COOKIE,
                &session_id,
                true,
                None,
            ))
            .ok();
            return with_cookie(render(StatusCode::OK, page), cookie);
        }
        Ok(Redeemed::Used) => (StatusCode::GONE, "link.used.title", "link.used.body"),
        Ok(Redeemed::Expired) => (StatusCode::GONE, "link.expired.title", "link.expired.body"),
        Ok(Redeemed::OtherBrowser) => (
            StatusCode::FORBIDDEN,
            "link.browser.title",
            "link.browser.body",
        ),
        Ok(Redeemed::Unknown) => (
            StatusCode::NOT_FOUND,
            "link.unknown.title",
            "link.used.body",
        ),
    };
    message(
        &h,
        None,
        status,
        title,
        body,
        Some(("/team/signin", "link.new")),
    )
}

pub async fn signout(
    State(st): State<ApiState>,
    Extension(h): Extension<Here>,
    headers: HeaderMap,
    Form(p): Form<Vec<(String, String)>>,
) -> Response {
    let p = Posted(p);
    let s = match gate_form(&st, &h, &headers, &p).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    if let Err(e) = signin::end_session(&st.app, &s).await {
        return failed(&h, Some(&s), e);
    }
    let cookie = HeaderValue::from_str(&session::set_cookie(
        &st.app,
        session::SESSION_COOKIE,
        "",
        true,
        Some(0),
    ))
    .ok();
    with_cookie(
        message(
            &h,
            None,
            StatusCode::OK,
            "signedout.title",
            "signedout.body",
            Some(("/team/signin", "signin.again")),
        ),
        cookie,
    )
}

// ---- caseload ----------------------------------------------------------------------------

/// The caseload rows of a municipality (case directors and the team's case numbers
/// decrypted), audited as one read. Each row is opened as it comes from the database, so
/// opening overlaps the reading (see [`store::caseload::stream`]).
pub async fn caseload_rows(app: &App, t: T, municipality: &str) -> Result<Vec<CaseRow>, OpError> {
    use futures_util::TryStreamExt;
    let now = app.now();
    let mut tx = app.store.read().await?;
    // The live KEKs unwrapped before the rows stream in (the stream holds the connection);
    // a row under another KEK (a rotation under way) is opened after the stream.
    let mut keks = std::collections::HashMap::new();
    for k in store::keys::live(&mut tx).await? {
        keks.insert(k.id, app.keyring.kek(&mut tx, k.id).await?);
    }
    let mut view = CaseRowView::new(app, t, municipality, now);
    let mut out = Vec::new();
    let mut later = Vec::new();
    {
        let mut rows = store::caseload::stream(&mut tx, municipality, to_secs(now));
        while let Some(r) = rows.try_next().await.map_err(store::StoreError::from)? {
            match (r.kek_id, &r.wrapped_dek) {
                (Some(k), Some(w)) => match keks.get(&k) {
                    Some(kek) => {
                        let dek = kek.unwrap_dek(w, &r.reference)?;
                        out.push(view.row(r, Some(&dek))?);
                    }
                    None => later.push(r),
                },
                _ => out.push(view.row(r, None)?),
            }
        }
    }
    if !later.is_empty() {
        for r in later {
            let dek = match (r.kek_id, &r.wrapped_dek) {
                (Some(k), Some(w)) => Some(app.keyring.dek(&mut tx, k, w, &r.reference).await?),
                _ => None,
            };
            out.push(view.row(r, dek.as_ref())?);
        }
        out.sort_by(|a, b| a.family.cmp(&b.family));
    }
    tx.commit().await?;
    let mut w = app.store.write().await?;
    app.audit(
        &mut w,
        &Entry {
            action: "web.caseload",
            detail: Some(municipality),
            ..Default::default()
        },
    )
    .await?;
    w.commit().await?;
    Ok(out)
}

/// What every caseload row is written with: the labels in the page's language, and each
/// due instant in words once (many families share one: the plan's local time on a day).
struct CaseRowView<'a> {
    app: &'a App,
    t: T,
    municipality: &'a str,
    /// The instant the caseload is read at: every row's state is judged against it.
    now: chrono::DateTime<chrono::Utc>,
    written: std::collections::HashMap<i64, String>,
}

impl<'a> CaseRowView<'a> {
    fn new(app: &'a App, t: T, municipality: &'a str, now: chrono::DateTime<chrono::Utc>) -> Self {
        CaseRowView {
            app,
            t,
            municipality,
            now,
            written: std::collections::HashMap::new(),
        }
    }

    /// One row, its case director's name and the team's case number opened with `dek`.
    fn row(
        &mut self,
        r: store::caseload::CaseloadRow,
        dek: Option<&crate::crypto::Dek>,
    ) -> Result<CaseRow, OpError> {
        let (app, t) = (self.app, self.t);
        let cfg = &app.config;
        let now = self.now;
        let (director, case_number) = match dek {
            Some(dek) => {
                let director = match &r.sealed_details {
                    Some(sealed) => {
                        let d: service::family::DirectorOnly = service::open_json(
                            dek,
                            sealed,
                            &service::family::family_place(&r.reference),
                        )?;
                        d.case_director.name
                    }
                    None => String::new(),
                };
                let case_number = match &r.sealed_case_number {
                    Some(sealed) => service::open_json::<String>(
                        dek,
                        sealed,
                        &service::record::case_number_place(&r.reference, self.municipality),
                    )?,
                    None => String::new(),
                };
                (director, case_number)
            }
            None => (String::new(), String::new()),
        };
        let (state, state_label) = match r.next_due_at {
            None => ("none", t.s("state.none")),
            Some(d) => {
                let due_t = store::from_secs(d)?;
                if now < due_t {
                    ("upcoming", t.s("state.upcoming"))
                } else if now < cfg.reminders.overdue_after.add_to(due_t).unwrap_or(due_t) {
                    ("due", t.s("state.due"))
                } else {
                    ("overdue", t.s("state.overdue"))
                }
            }
        };
        let incoming = r.pending_handover.is_some() && !r.responsible;
        Ok(CaseRow {
            needs_action: matches!(state, "due" | "overdue")
                || r.red > 0
                || r.amber > 0
                || incoming,
            family: r.reference,
            director,
            case_number,
            attempts: if r.next_checkin.is_some() {
                format!(
                    "{} {} {}",
                    r.attempts,
                    t.s("caseload.of"),
                    cfg.reminders.max_attempts
                )
            } else {
                String::new()
            },
            checkin: r.next_checkin,
            due: r
                .next_due_at
                .map(|d| {
                    self.written
                        .entry(d)
                        .or_insert_with(|| local_secs(app, d, t))
                        .clone()
                })
                .unwrap_or_default(),
            due_at: r.next_due_at.unwrap_or(i64::MAX),
            state,
            state_label,
            reminders: i64::from(r.notice_stage > 0) + r.overdue_count,
            red: r.red,
            amber: r.amber,
            info: r.info,
            handover_label: if incoming {
                t.s("handover.incoming")
            } else {
                t.s("handover.pending")
            },
            handover: r.pending_handover,
        })
    }
}

pub async fn caseload(
    State(st): State<ApiState>,
    Extension(h): Extension<Here>,
    headers: HeaderMap,
    Query(q): Q,
) -> Response {
    let s = match gate(&st, &h, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let app = member_app(&st, &s);
    let l = layout(&h, h.t.s("caseload.title"), Some(&s));
    let action_only = q.get("filter").map(String::as_str) == Some("action");
    let sort = q.get("sort").map(String::as_str).unwrap_or("due");
    match caseload_page(&app, l, &s.member.municipality, action_only, sort).await {
        Ok(page) => render(StatusCode::OK, page),
        Err(e) => op_failed(&h, Some(&s), e),
    }
}

/// The caseload page of a municipality, filtered and sorted.
async fn caseload_page(
    app: &App,
    l: Layout,
    municipality: &str,
    action_only: bool,
    sort: &str,
) -> Result<CaseloadPage, OpError> {
    let t = l.t;
    let mut rows = caseload_rows(app, t, municipality).await?;
    if action_only {
        rows.retain(|r| r.needs_action);
    }
    let sort = match sort {
        "family" => "family",
        "flags" => "flags",
        _ => "due",
    };
    match sort {
        "family" => rows.sort_by(|a, b| a.family.cmp(&b.family)),
        "flags" => rows.sort_by(|a, b| {
            (b.red, b.amber, b.info)
                .cmp(&(a.red, a.amber, a.info))
                .then(a.due_at.cmp(&b.due_at))
        }),
        _ => rows.sort_by(|a, b| a.due_at.cmp(&b.due_at).then(a.family.cmp(&b.family))),
    }
    Ok(CaseloadPage {
        l,
        rows,
        action_only,
        sort: sort.to_string(),
        sorts: vec![
            ("due", t.s("sort.due")),
            ("family", t.s("sort.family")),
            ("flags", t.s("sort.flags")),
        ],
    })
}

/// The caseload page's HTML as a member of `municipality` sees it (the benchmark's entry:
/// the same query, decryption, audit entry and template as `GET /team/`).
pub async fn caseload_html(app: &App, t: T, municipality: &str) -> Result<String, OpError> {
    let l = Layout {
        t,
        title: t.s("caseload.title").to_string(),
        signed_in: true,
        csrf: String::new(),
        member_name: String::new(),
        municipality: municipality.to_string(),
        switch_href: "/team/".into(),
        refresh: None,
    };
    let page = caseload_page(app, l, municipality, false, "due").await?;
    page.render()
        .map_err(|e| OpError::Conflict(format!("caseload page: {e}")))
}

/// The caseload's work without the template (query, decryption, audit entry): how many
/// rows. The benchmark's way to see where the page's time goes.
pub async fn caseload_data(app: &App, t: T, municipality: &str) -> Result<usize, OpError> {
    Ok(caseload_rows(app, t, municipality).await?.len())
}

// ---- the family --------------------------------------------------------------------------

fn flag_vm(
    app: &App,
    t: T,
    fl: &service::signals::FlagView,
    names: &BTreeMap<String, String>,
) -> FlagVm {
    let mut notes = Vec::new();
    for (key, n) in [
        ("flag.acknowledged", &fl.acknowledged),
        ("flag.resolved", &fl.resolved),
    ] {
        if let Some(n) = n {
            let by = n.by.clone().map(|b| format!(" ({b})")).unwrap_or_default();
            notes.push((
                format!("{} {}{by}", t.s(key), local(app, n.at, t)),
                n.note.clone().unwrap_or_default(),
            ));
        }
    }
    FlagVm {
        id: fl.id,
        severity: t.code("sev", &fl.severity),
        severity_code: fl.severity.clone(),
        rule: super::labels::rule(t, &app.config, &fl.rule),
        child: fl
            .child
            .as_ref()
            .map(|c| names.get(c).cloned().unwrap_or_else(|| c.clone()))
            .unwrap_or_else(|| t.s("flag.whole_family").into()),
        status: t.code("status", &fl.status),
        status_code: fl.status.clone(),
        raised: local(app, fl.raised_at, t),
        evidence: super::labels::evidence(t, &app.config.signals, &fl.evidence),
        notes,
    }
}

/// How an observed value becomes a point on a timeline.
type ToNumber = Box<dyn Fn(&serde_json::Value) -> Option<f64>>;

fn timelines(app: &App, t: T, v: &service::family::FamilyView, child: &str) -> Vec<TimelineVm> {
    let recorded: Vec<&service::family::CheckinView> = v
        .checkins
        .iter()
        .filter(|c| c.status == "recorded")
        .collect();
    let mut out = Vec::new();
    for ind in app.config.signals.indicators.values() {
        if ind.applies_to != Scope::Child {
            continue;
        }
        let (min, max, to_num): (f64, f64, ToNumber) = match &ind.kind {
            IndicatorType::Bool => (0.0, 1.0, Box::new(|v| v.as_bool().map(f64::from))),
            IndicatorType::Scale { min, max, .. } => (*min, *max, Box::new(|v| v.as_f64())),
            IndicatorType::Count => (0.0, 10.0, Box::new(|v| v.as_f64())),
            IndicatorType::Enum {
                order,
                multiple: false,
                ..
            } if !order.is_empty() => {
                let order = order.clone();
                let top = (order.len() - 1) as f64;
                (
                    0.0,
                    top.max(1.0),
                    Box::new(move |v| {
                        let s = v.as_str()?;
                        order.iter().position(|o| o == s).map(|p| top - p as f64)
                    }),
                )
            }
            _ => continue,
        };
        let mut points = Vec::new();
        let mut shown = Vec::new();
        for c in &recorded {
            let value = c
                .children
                .iter()
                .find(|o| o.member == child)
                .and_then(|o| o.observations.get(&ind.code));
            points.push(value.and_then(&to_num));
            shown.push(
                value
                    .map(|v| super::labels::observed(t, Some(ind), v))
                    .unwrap_or_else(|| "–".into()),
            );
        }
        if points.iter().all(Option::is_none) {
            continue;
        }
        let label = super::labels::indicator(t, ind);
        let values = shown.join(" → ");
        out.push(TimelineVm {
            svg: super::svg::timeline(&format!("{label}: {values}"), &points, min, max),
            label,
            values,
        });
    }
    out
}

/// The family page's values from the service's decrypted record.
async fn family_vm(app: &App, t: T, v: &service::family::FamilyView) -> Result<FamilyVm, OpError> {
    let handovers = {
        let mut conn = app.store.read().await?;
        let f = service::family::family_by_ref(&mut conn, &v.family, to_secs(app.now())).await?;
        let hs = service::handover::history(&mut conn, f.id).await?;
        conn.commit().await?;
        hs
    };
    let names: BTreeMap<String, String> = v
        .members
        .iter()
        .map(|m| {
            (
                m.reference.clone(),
                m.details
                    .as_ref()
                    .map(|d| d.name.clone())
                    .unwrap_or_default(),
            )
        })
        .collect();
    let d = v.details.as_ref();
    Ok(FamilyVm {
        reference: v.family.clone(),
        status: t.code("status", &v.status),
        plan: app.config.mail.plan_label(&v.plan, t.0).to_string(),
        municipality: app
            .config
            .municipality(&v.municipality)
            .map(|m| format!("{} ({})", m.name, m.code))
            .unwrap_or_else(|| v.municipality.clone()),
        language: crate::mail::words::language_name(&v.language, t.0),
        interpreter: t.s(if v.interpreter_needed { "yes" } else { "no" }).into(),
        erased: d.is_none(),
        director: d
            .map(|d| format!("{} <{}>", d.case_director.name, d.case_director.email))
            .unwrap_or_default(),
        case_number: v.case_number.clone().unwrap_or_default(),
        address: d.and_then(|d| d.address.clone()).unwrap_or_default(),
        stressors: d
            .map(|d| {
                d.stressors
                    .iter()
                    .map(|c| super::labels::stressor(t, &app.config.signals, c))
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default(),
        notes: d.and_then(|d| d.notes.clone()).unwrap_or_default(),
        members: v
            .members
            .iter()
            .map(|m| MemberVm {
                reference: m.reference.clone(),
                name: m
                    .details
                    .as_ref()
                    .map(|d| d.name.clone())
                    .unwrap_or_default(),
                role: t.code("role", &m.role),
                birth: m
                    .details
                    .as_ref()
                    .and_then(|d| d.birth_date)
                    .map(|b| b.to_string())
                    .unwrap_or_default(),
                phone: m
                    .details
                    .as_ref()
                    .and_then(|d| d.phone.clone())
                    .unwrap_or_default(),
            })
            .collect(),
        checkins: v
            .checkins
            .iter()
            .map(|c| CheckinVm {
                id: c.id.clone(),
                wave: c.wave,
                due: local(app, c.due, t),
                status: t.code("status", &c.status),
                outcome: c
                    .outcome
                    .as_ref()
                    .map(|o| t.code("outcome", o))
                    .unwrap_or_default(),
                reminders: match c.reminders_sent.split_once(' ') {
                    Some((k, n)) => format!("{} {n}", t.code("reminder", k)),
                    None => t.code("reminder", &c.reminders_sent),
                },
                open: c.status == "open" || c.status == "lapsed",
            })
            .collect(),
        children: v
            .members
            .iter()
            .filter(|m| m.role == "child")
            .map(|m| ChildVm {
                reference: m.reference.clone(),
                name: names.get(&m.reference).cloned().unwrap_or_default(),
                lines: timelines(app, t, v, &m.reference),
            })
            .collect(),
        flags: v.flags.iter().map(|f| flag_vm(app, t, f, &names)).collect(),
        handovers: handovers
            .into_iter()
            .map(|hv| HandoverVm {
                effective: local(app, hv.effective_at, t),
                status: t.code("status", &hv.status),
                id: hv.id,
                family: hv.family,
                from: hv.from,
                to: hv.to,
            })
            .collect(),
    })
}

/// What the case-number form shows again after a wrong value.
struct CaseNumberInput {
    value: String,
    error: String,
}

async fn family_view(
    st: ApiState,
    h: Here,
    headers: HeaderMap,
    reference: String,
    print: bool,
    again: Option<CaseNumberInput>,
) -> Response {
    let s = match gate(&st, &h, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    if let Err(r) = require_family(&st, &h, &s, &reference).await {
        return r;
    }
    let app = member_app(&st, &s);
    let v = match service::family::show(&app, &reference).await {
        Ok(v) => v,
        Err(e) => return op_failed(&h, Some(&s), e),
    };
    let f = match family_vm(&app, h.t, &v).await {
        Ok(f) => f,
        Err(e) => return op_failed(&h, Some(&s), e),
    };
    let title = format!("{} {}", h.t.s("family.title"), v.family);
    let can_edit = v.municipality == s.member.municipality && v.status == "running";
    let (status, case_number, case_error, errors) = match again {
        Some(a) => (
            StatusCode::BAD_REQUEST,
            a.value,
            Some(a.error.clone()),
            vec![FormError {
                id: "case_number".into(),
                label: h.t.s("family.case_number").into(),
                message: a.error,
            }],
        ),
        None => (StatusCode::OK, f.case_number.clone(), None, vec![]),
    };
    render(
        status,
        FamilyPage {
            l: layout(&h, &title, Some(&s)),
            csrf: s.csrf.clone(),
            print,
            f,
            can_edit,
            case_number,
            case_error,
            errors,
        },
    )
}

/// `POST /team/families/{ref}/case-number`: the responsible team sets (or, empty, removes)
/// its own case number, through the same `family update` as the CLI and the API.
pub async fn case_number_submit(
    State(st): State<ApiState>,
    Extension(h): Extension<Here>,
    headers: HeaderMap,
    Path(reference): Path<String>,
    Form(p): Form<Vec<(String, String)>>,
) -> Response {
    let p = Posted(p);
    let s = match gate_form(&st, &h, &headers, &p).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    if let Err(r) = require_family(&st, &h, &s, &reference).await {
        return r;
    }
    let value = p.get("case_number").unwrap_or("").trim().to_string();
    let update = crate::domain::household::FamilyUpdate {
        case_number: Some(value.clone()),
        ..Default::default()
    };
    let app = member_app(&st, &s);
    match service::record::update(&app, &reference, &update).await {
        Ok(_) => family_message(
            &h,
            &s,
            StatusCode::OK,
            "family.case_number.done",
            "family.case_number.done",
            &reference,
        ),
        Err(OpError::Invalid(_)) => {
            let again = CaseNumberInput {
                value,
                error: h.t.s("family.case_number.invalid").to_string(),
            };
            family_view(st, h, headers, reference, false, Some(again)).await
        }
        Err(e) => op_failed(&h, Some(&s), e),
    }
}

pub async fn family(
    State(st): State<ApiState>,
    Extension(h): Extension<Here>,
    headers: HeaderMap,
    Path(reference): Path<String>,
) -> Response {
    family_view(st, h, headers, reference, false, None).await
}

pub async fn family_print(
    State(st): State<ApiState>,
    Extension(h): Extension<Here>,
    headers: HeaderMap,
    Path(reference): Path<String>,
) -> Response {
    family_view(st, h, headers, reference, true, None).await
}

// ---- recording a check-in ----------------------------------------------------------------

/// The check-in's family, if the check-in exists.
async fn checkin_family(app: &App, id: &str) -> Result<Option<(String, String, i64)>, OpError> {
    if !reference::looks_like(id, 'C') {
        return Ok(None);
    }
    let mut conn = app.store.read().await?;
    let Some(c) = store::checkins::by_ref(&mut conn, id).await? else {
        return Ok(None);
    };
    let f = store::families::by_id(&mut conn, c.family_id, to_secs(app.now())).await?;
    conn.commit().await?;
    Ok(f.map(|f| (f.reference, c.status, c.due_at)))
}

struct RecordCtx {
    s: Session,
    app: App,
    family: String,
    due: String,
    children: Vec<FormChild>,
}

async fn record_ctx(
    st: &ApiState,
    h: &Here,
    headers: &HeaderMap,
    id: &str,
) -> Result<RecordCtx, Response> {
    let s = gate(st, h, headers).await?;
    let app = member_app(st, &s);
    let (family, status, due_at) = match checkin_family(&app, id).await {
        Ok(Some(x)) => x,
        Ok(None) => return Err(not_found_page(h, Some(&s))),
        Err(e) => return Err(op_failed(h, Some(&s), e)),
    };
    require_family(st, h, &s, &family).await?;
    if status != "open" && status != "lapsed" {
        return Err(family_message(
            h,
            &s,
            StatusCode::OK,
            "record.closed.title",
            "record.done.body",
            &family,
        ));
    }
    let v = service::family::show(&app, &family)
        .await
        .map_err(|e| op_failed(h, Some(&s), e))?;
    // A child who left the household is no longer observed: no fields for them.
    let children = v
        .members
        .iter()
        .filter(|m| m.role == "child" && m.left_at.is_none())
        .map(|m| FormChild {
            reference: m.reference.clone(),
            name: m
                .details
                .as_ref()
                .map(|d| d.name.clone())
                .unwrap_or_else(|| m.reference.clone()),
        })
        .collect();
    Ok(RecordCtx {
        due: local_secs(&app, due_at, h.t),
        s,
        app,
        family,
        children,
    })
}

fn record_page(
    h: &Here,
    ctx: &RecordCtx,
    id: &str,
    posted: Option<&Posted>,
    errors: Vec<FormError>,
) -> RecordPage {
    let t = h.t;
    let catalog = &ctx.app.config.signals;
    let given = |name: &str| posted.and_then(|p| p.get(name)).unwrap_or("").to_string();
    let err = |id: &str| {
        errors
            .iter()
            .find(|e| e.id == id)
            .map(|e| e.message.clone())
    };
    let at = match posted {
        Some(p) => p.get("at").unwrap_or("").to_string(),
        None => ctx
            .app
            .now()
            .with_timezone(&ctx.app.config.timezone)
            .format("%Y-%m-%dT%H:%M")
            .to_string(),
    };
    let choose = |name: &str, codes: &[&str], prefix: &str| {
        let chosen = given(name);
        codes
            .iter()
            .map(|c| OptionVm {
                value: c.to_string(),
                label: t.code(prefix, c),
                selected: chosen == *c,
            })
            .collect::<Vec<_>>()
    };
    RecordPage {
        l: layout(h, t.s("record.title"), Some(&ctx.s)),
        csrf: ctx.s.csrf.clone(),
        checkin: id.to_string(),
        family: ctx.family.clone(),
        due: ctx.due.clone(),
        at,
        at_error: err("at"),
        outcomes: choose(
            "outcome",
            &["reached", "not_reached", "declined"],
            "outcome",
        ),
        outcome_error: err("outcome"),
        modes: choose(
            "mode",
            &["home_visit", "phone", "video", "office", "walk"],
            "mode",
        ),
        mode_error: err("mode"),
        family_fields: form::fields(t, catalog, Scope::Family, None, posted, &errors),
        children: form::child_forms(t, catalog, &ctx.children, posted, &errors),
        notes: given("notes"),
        notes_error: err("notes"),
        errors,
    }
}

pub async fn record_form(
    State(st): State<ApiState>,
    Extension(h): Extension<Here>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let ctx = match record_ctx(&st, &h, &headers, &id).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    render(StatusCode::OK, record_page(&h, &ctx, &id, None, vec![]))
}

pub async fn record_submit(
    State(st): State<ApiState>,
    Extension(h): Extension<Here>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(p): Form<Vec<(String, String)>>,
) -> Response {
    let p = Posted(p);
    // CSRF first: a forged form learns nothing, not even whether the check-in exists.
    if let Err(r) = gate_form(&st, &h, &headers, &p).await {
        return r;
    }
    let ctx = match record_ctx(&st, &h, &headers, &id).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let cfg = &ctx.app.config;
    let rec = match form::parse(h.t, &cfg.signals, cfg.timezone, &id, &ctx.children, &p) {
        // Who made the contact: the signed-in member (sealed with the record).
        Ok(mut r) => {
            r.by = Some(ctx.s.member.name.clone());
            r
        }
        Err(errors) => {
            return render(
                StatusCode::BAD_REQUEST,
                record_page(&h, &ctx, &id, Some(&p), errors),
            );
        }
    };
    match service::checkin::record(&ctx.app, &rec).await {
        Ok(_) => family_message(
            &h,
            &ctx.s,
            StatusCode::OK,
            "record.done.title",
            "record.done.body",
            &ctx.family,
        ),
        Err(OpError::Invalid(errs)) => {
            let errors = errs
                .iter()
                .map(|e| FormError {
                    id: form::service_field(&e.field),
                    label: e.field.clone(),
                    message: e.message.clone(),
                })
                .collect();
            render(
                StatusCode::BAD_REQUEST,
                record_page(&h, &ctx, &id, Some(&p), errors),
            )
        }
        Err(OpError::Conflict(_)) => family_message(
            &h,
            &ctx.s,
            StatusCode::CONFLICT,
            "record.closed.title",
            "record.done.body",
            &ctx.family,
        ),
        Err(e) => op_failed(&h, Some(&ctx.s), e),
    }
}

// ---- flags -------------------------------------------------------------------------------

async fn flag_ctx(
    st: &ApiState,
    h: &Here,
    headers: &HeaderMap,
    id: &str,
) -> Result<(Session, App, String, FlagVm), Response> {
    let s = gate(st, h, headers).await?;
    let Ok(id) = id.parse::<i64>() else {
        return Err(not_found_page(h, Some(&s)));
    };
    let family = {
        let r = async {
            let mut conn = st.app.store.conn().await?;
            store::flags::by_id(&mut conn, id, st.app.now().timestamp()).await
        }
        .await;
        match r {
            Ok(Some(f)) => f.family_ref,
            Ok(None) => return Err(not_found_page(h, Some(&s))),
            Err(e) => return Err(failed(h, Some(&s), e)),
        }
    };
    require_family(st, h, &s, &family).await?;
    let app = member_app(st, &s);
    let v = service::family::show(&app, &family)
        .await
        .map_err(|e| op_failed(h, Some(&s), e))?;
    let names: BTreeMap<String, String> = v
        .members
        .iter()
        .map(|m| {
            (
                m.reference.clone(),
                m.details
                    .as_ref()
                    .map(|d| d.name.clone())
                    .unwrap_or_default(),
            )
        })
        .collect();
    let Some(fl) = v.flags.iter().find(|f| f.id == id) else {
        return Err(not_found_page(h, Some(&s)));
    };
    let vm = flag_vm(&app, h.t, fl, &names);
    Ok((s, app, family, vm))
}

pub async fn flag_page(
    State(st): State<ApiState>,
    Extension(h): Extension<Here>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let (s, _app, family, fl) = match flag_ctx(&st, &h, &headers, &id).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let can_act = fl.status_code != "resolved";
    render(
        StatusCode::OK,
        FlagPage {
            l: layout(&h, h.t.s("flag.title"), Some(&s)),
            csrf: s.csrf.clone(),
            family,
            fl,
            can_act,
            note: String::new(),
            note_error: None,
            errors: vec![],
        },
    )
}

pub async fn flag_submit(
    State(st): State<ApiState>,
    Extension(h): Extension<Here>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(p): Form<Vec<(String, String)>>,
) -> Response {
    let p = Posted(p);
    if let Err(r) = gate_form(&st, &h, &headers, &p).await {
        return r;
    }
    let (s, app, family, fl) = match flag_ctx(&st, &h, &headers, &id).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let step = match p.get("step") {
        Some("resolve") => service::signals::Step::Resolve,
        _ => service::signals::Step::Acknowledge,
    };
    let note = p.get("note").unwrap_or("").trim().to_string();
    let by = s.member.name.clone();
    let result = if note.is_empty() {
        Err(OpError::invalid("note", "must not be empty"))
    } else {
        service::signals::act(&app, fl.id, step, &note, Some(&by)).await
    };
    match result {
        Ok(_) => family_message(&h, &s, StatusCode::OK, "flag.done", "flag.done", &family),
        Err(OpError::Invalid(errs)) => {
            let msg = if note.is_empty() {
                h.t.s("flag.note.required").to_string()
            } else {
                errs.iter()
                    .map(|e| e.message.clone())
                    .collect::<Vec<_>>()
                    .join("; ")
            };
            let can_act = fl.status_code != "resolved";
            render(
                StatusCode::BAD_REQUEST,
                FlagPage {
                    l: layout(&h, h.t.s("flag.title"), Some(&s)),
                    csrf: s.csrf.clone(),
                    family,
                    fl,
                    can_act,
                    note,
                    note_error: Some(msg.clone()),
                    errors: vec![FormError {
                        id: "note".into(),
                        label: h.t.s("flag.note").into(),
                        message: msg,
                    }],
                },
            )
        }
        Err(OpError::Conflict(_)) => {
            let href = format!("/team/flags/{}", fl.id);
            message(
                &h,
                Some(&s),
                StatusCode::CONFLICT,
                "flag.done",
                "flag.done",
                Some((&href, "continue")),
            )
        }
        Err(e) => op_failed(&h, Some(&s), e),
    }
}

// ---- handovers ---------------------------------------------------------------------------

struct HandoverCtx {
    s: Session,
    app: App,
    h: HandoverVm,
    can_ack: bool,
    is_sender: bool,
    dossier: Option<FamilyVm>,
}

async fn handover_ctx(
    st: &ApiState,
    here: &Here,
    headers: &HeaderMap,
    id: &str,
) -> Result<HandoverCtx, Response> {
    let s = gate(st, here, headers).await?;
    if !reference::looks_like(id, 'H') {
        return Err(not_found_page(here, Some(&s)));
    }
    let row = {
        let r = async {
            let mut conn = st.app.store.conn().await?;
            store::handovers::by_ref(&mut conn, id).await
        }
        .await;
        match r {
            Ok(Some(r)) => r,
            Ok(None) => return Err(not_found_page(here, Some(&s))),
            Err(e) => return Err(failed(here, Some(&s), e)),
        }
    };
    let m = &s.member.municipality;
    let open = row.status == "pending" || row.status == "escalated";
    let party = row.to_municipality == *m || row.from_municipality == *m;
    if !party {
        denied(st, &s, Some(&row.family_ref)).await;
        return Err(not_found_page(here, Some(&s)));
    }
    let app = member_app(st, &s);
    // The dossier is shown to whoever may see the family now (both teams during a move).
    let may_see = crate::api::handlers::parties(st, &row.family_ref)
        .await
        .map(|p| p.contains(m))
        .unwrap_or(false);
    let dossier = if may_see {
        let v = service::family::show(&app, &row.family_ref)
            .await
            .map_err(|e| op_failed(here, Some(&s), e))?;
        Some(
            family_vm(&app, here.t, &v)
                .await
                .map_err(|e| op_failed(here, Some(&s), e))?,
        )
    } else {
        None
    };
    let name = |code: &str| {
        app.config
            .municipality(code)
            .map(|x| format!("{} ({code})", x.name))
            .unwrap_or_else(|| code.to_string())
    };
    let hv = HandoverVm {
        id: row.reference.clone(),
        family: row.family_ref.clone(),
        from: name(&row.from_municipality),
        to: name(&row.to_municipality),
        effective: local_secs(&app, row.effective_at, here.t),
        status: here.t.code("status", &row.status),
    };
    Ok(HandoverCtx {
        can_ack: open && row.to_municipality == *m,
        is_sender: row.from_municipality == *m && row.to_municipality != *m,
        s,
        app,
        h: hv,
        dossier,
    })
}

fn handover_view(here: &Here, c: HandoverCtx, by: String, errors: Vec<FormError>) -> HandoverPage {
    HandoverPage {
        l: layout(here, here.t.s("handover.title"), Some(&c.s)),
        csrf: c.s.csrf.clone(),
        by_error: errors.first().map(|e| e.message.clone()),
        h: c.h,
        can_ack: c.can_ack,
        is_sender: c.is_sender,
        by,
        errors,
        dossier: c.dossier,
        print: false,
    }
}

pub async fn handover_page(
    State(st): State<ApiState>,
    Extension(h): Extension<Here>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    match handover_ctx(&st, &h, &headers, &id).await {
        Ok(c) => {
            let by = c.s.member.name.clone();
            render(StatusCode::OK, handover_view(&h, c, by, vec![]))
        }
        Err(r) => r,
    }
}

pub async fn handover_submit(
    State(st): State<ApiState>,
    Extension(h): Extension<Here>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(p): Form<Vec<(String, String)>>,
) -> Response {
    let p = Posted(p);
    if let Err(r) = gate_form(&st, &h, &headers, &p).await {
        return r;
    }
    let c = match handover_ctx(&st, &h, &headers, &id).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    if !c.can_ack {
        return forbidden(&h, Some(&c.s));
    }
    let by = p.get("by").unwrap_or("").trim().to_string();
    let by_opt = (!by.is_empty()).then_some(by.as_str());
    match service::handover::ack(&c.app, &id, &c.s.member.municipality, by_opt).await {
        Ok(a) => family_message(
            &h,
            &c.s,
            StatusCode::OK,
            "handover.done",
            "handover.done",
            &a.family,
        ),
        Err(OpError::Invalid(errs)) => {
            let errors = errs
                .iter()
                .map(|e| FormError {
                    id: "by".into(),
                    label: h.t.s("handover.by").into(),
                    message: e.message.clone(),
                })
                .collect();
            render(StatusCode::BAD_REQUEST, handover_view(&h, c, by, errors))
        }
        Err(OpError::Conflict(_)) => {
            let href = format!("/team/handovers/{id}");
            message(
                &h,
                Some(&c.s),
                StatusCode::CONFLICT,
                "handover.done",
                "handover.done",
                Some((&href, "continue")),
            )
        }
        Err(e) => op_failed(&h, Some(&c.s), e),
    }
}
