//! The closing evaluation of an ended plan, recorded in the workspace: a small form that
//! calls the service `family evaluate` and `POST /v1/families/{ref}/evaluation` call, so
//! the evaluation mails (asked at the plan's end, reminded once) link to a page a team
//! worker can use.

use super::Here;
use super::form::Posted;
use super::pages::{
    family_message, gate, gate_form, layout, member_app, not_found_page, op_failed, render,
    require_family,
};
use super::session::Session;
use super::views::{FormError, Layout, OptionVm};
use crate::api::ApiState;
use crate::domain::evaluation::{EvaluationInput, SAFETY_CODES};
use crate::domain::reference;
use crate::service::{self, OpError};
use crate::store;
use askama::Template;
use axum::Form;
use axum::extract::{Extension, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

#[derive(Template)]
#[template(path = "web/evaluation.html")]
struct EvaluationPage {
    l: Layout,
    csrf: String,
    family: String,
    safety: Vec<OptionVm>,
    safety_error: Option<String>,
    professionals: String,
    professionals_error: Option<String>,
    family_view: String,
    view_error: Option<String>,
    errors: Vec<FormError>,
}

/// What was posted (or nothing yet), and the errors by field.
struct Given<'a> {
    safety: &'a str,
    professionals: &'a str,
    family_view: &'a str,
}

fn page(h: &Here, s: &Session, family: &str, g: &Given, errors: Vec<FormError>) -> EvaluationPage {
    let t = h.t;
    let error = |id: &str| {
        errors
            .iter()
            .find(|e| e.id == id)
            .map(|e| e.message.clone())
    };
    EvaluationPage {
        l: layout(h, t.s("eval.title"), Some(s)),
        csrf: s.csrf.clone(),
        family: family.to_string(),
        safety: SAFETY_CODES
            .iter()
            .map(|c| OptionVm {
                value: (*c).to_string(),
                label: t.s(&format!("eval.safety.{c}")).to_string(),
                selected: g.safety == *c,
            })
            .collect(),
        safety_error: error("safety_improved"),
        professionals: g.professionals.to_string(),
        professionals_error: error("professionals"),
        family_view: g.family_view.to_string(),
        view_error: error("family_view"),
        errors,
    }
}

/// Whether the family's plan has ended and still lacks its evaluation.
async fn open_for_evaluation(st: &ApiState, family: &str) -> Result<bool, OpError> {
    let mut conn = st.app.store.conn().await?;
    let now = st.app.now().timestamp();
    let Some(f) = store::families::by_ref(&mut conn, family, now).await? else {
        return Ok(false);
    };
    let ended = f.status == "completed"
        || (f.status == "closed_early" && f.close_reason.as_deref() != Some("enrolled_in_error"));
    Ok(ended
        && store::closure::evaluation_of(&mut conn, f.id)
            .await?
            .is_none())
}

fn closed(h: &Here, s: &Session, family: &str) -> Response {
    family_message(
        h,
        s,
        StatusCode::CONFLICT,
        "eval.title",
        "eval.closed",
        family,
    )
}

pub async fn evaluation_form(
    State(st): State<ApiState>,
    Extension(h): Extension<Here>,
    headers: HeaderMap,
    Path(family): Path<String>,
) -> Response {
    let s = match gate(&st, &h, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    if !reference::looks_like(&family, 'F') {
        return not_found_page(&h, Some(&s));
    }
    if let Err(r) = require_family(&st, &h, &s, &family).await {
        return r;
    }
    match open_for_evaluation(&st, &family).await {
        Ok(true) => {}
        Ok(false) => return closed(&h, &s, &family),
        Err(e) => return op_failed(&h, Some(&s), e),
    }
    let empty = Given {
        safety: "",
        professionals: "",
        family_view: "",
    };
    render(StatusCode::OK, page(&h, &s, &family, &empty, vec![]))
}

pub async fn evaluation_submit(
    State(st): State<ApiState>,
    Extension(h): Extension<Here>,
    headers: HeaderMap,
    Path(family): Path<String>,
    Form(p): Form<Vec<(String, String)>>,
) -> Response {
    let p = Posted(p);
    let s = match gate_form(&st, &h, &headers, &p).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    if !reference::looks_like(&family, 'F') {
        return not_found_page(&h, Some(&s));
    }
    if let Err(r) = require_family(&st, &h, &s, &family).await {
        return r;
    }
    let g = Given {
        safety: p.get("safety_improved").unwrap_or("").trim(),
        professionals: p.get("professionals").unwrap_or("").trim(),
        family_view: p.get("family_view").unwrap_or(""),
    };
    let input = EvaluationInput {
        safety_improved: Some(g.safety.to_string()).filter(|v| !v.is_empty()),
        professionals: match g.professionals {
            "" => None,
            n => Some(match n.parse::<u64>() {
                Ok(n) => serde_json::Value::from(n),
                Err(_) => serde_json::Value::from(n),
            }),
        },
        family_view: Some(g.family_view.to_string()).filter(|v| !v.trim().is_empty()),
    };
    let app = member_app(&st, &s);
    match service::family::evaluate(&app, &family, &input).await {
        Ok(_) => family_message(&h, &s, StatusCode::OK, "eval.done", "eval.done", &family),
        Err(OpError::Invalid(errs)) => {
            let t = h.t;
            let errors = errs
                .iter()
                .map(|e| {
                    let (label, message) = match e.field.as_str() {
                        "safety_improved" => {
                            (t.s("eval.safety"), t.s("eval.safety.error").to_string())
                        }
                        "professionals" => (
                            t.s("eval.professionals"),
                            t.s("eval.professionals.error").to_string(),
                        ),
                        _ => (t.s("eval.view"), e.message.clone()),
                    };
                    FormError {
                        id: e.field.clone(),
                        label: label.to_string(),
                        message,
                    }
                })
                .collect();
            render(StatusCode::BAD_REQUEST, page(&h, &s, &family, &g, errors))
        }
        Err(OpError::Conflict(_)) => closed(&h, &s, &family),
        Err(e) => op_failed(&h, Some(&s), e),
    }
}
