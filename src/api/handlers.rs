//! Route handlers: scope check, then the same service operation the CLI calls.

use super::ApiState;
use super::body::JsonBytes;
use super::error::ApiError;
use super::openapi::ErrorBody;
use crate::audit::Entry;
use crate::domain::recording::CheckinRecord;
use crate::domain::{enrolment::Enrolment, reference};
use crate::service::{self, App};
use crate::store;
use crate::tokens::{Principal, Scope};
use axum::Json;
use axum::extract::{Extension, Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

/// The app acting for the token: its actor for the audit trail, and for a team token the
/// municipality whose changes `App::require_responsible` limits.
fn app_for(s: &ApiState, p: &Principal) -> App {
    let team = match &p.scope {
        Scope::Municipality(m) => Some(m.clone()),
        _ => None,
    };
    s.app.acting_as(p.actor()).for_team(team)
}

/// Records a request that reached a family or check-in outside the token's scope.
async fn denied(s: &ApiState, p: &Principal, family: Option<&str>) {
    let entry = Entry {
        action: "api.denied",
        family,
        detail: Some("out of scope"),
        ..Default::default()
    };
    super::record_audit(s, &p.actor(), &entry).await;
}

/// The municipalities that may see a family now: the one responsible, and while a move is
/// not yet acknowledged both its sender and its receiver. Empty if the family does not exist.
pub(crate) async fn parties(s: &ApiState, family_ref: &str) -> Result<Vec<String>, ApiError> {
    if !reference::looks_like(family_ref, 'F') {
        return Ok(Vec::new());
    }
    let mut conn = s.app.store.conn().await?;
    let now = s.app.now().timestamp();
    let Some(f) = store::families::by_ref(&mut conn, family_ref, now).await? else {
        return Ok(Vec::new());
    };
    let mut out = vec![f.municipality];
    if let Some(h) = store::handovers::open_move(&mut conn, f.id).await? {
        out.push(h.from_municipality);
        out.push(h.to_municipality);
    }
    Ok(out)
}

/// Answers 404 unless the token may see this family (same answer as for a family that does
/// not exist, so existence is not revealed).
async fn require_family(s: &ApiState, p: &Principal, family_ref: &str) -> Result<(), ApiError> {
    let parties = parties(s, family_ref).await?;
    if parties.is_empty() {
        return Err(ApiError::not_found());
    }
    let allowed = match &p.scope {
        Scope::Admin => true,
        Scope::Municipality(m) => parties.contains(m),
        Scope::Researcher(_) => false,
    };
    if allowed {
        Ok(())
    } else {
        denied(s, p, Some(family_ref)).await;
        Err(ApiError::not_found())
    }
}

/// The family a check-in belongs to, if the check-in exists.
async fn family_of_checkin(s: &ApiState, checkin: &str) -> Result<Option<String>, ApiError> {
    if !reference::looks_like(checkin, 'C') {
        return Ok(None);
    }
    let mut conn = s.app.store.conn().await?;
    let Some(c) = store::checkins::by_ref(&mut conn, checkin).await? else {
        return Ok(None);
    };
    let now = s.app.now().timestamp();
    Ok(store::families::by_id(&mut conn, c.family_id, now)
        .await?
        .map(|f| f.reference))
}

/// The municipality a list is for: a team's own, whatever it asks; an admin's choice.
fn listed_municipality(
    p: &Principal,
    q: &std::collections::BTreeMap<String, String>,
) -> Option<String> {
    match &p.scope {
        Scope::Municipality(m) => Some(m.clone()),
        _ => q.get("municipality").cloned(),
    }
}

fn team_only(p: &Principal) -> Result<(), ApiError> {
    match p.scope {
        Scope::Researcher(_) => Err(ApiError::not_found()),
        _ => Ok(()),
    }
}

/// What `/healthz` answers.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct Health {
    /// Always `ok`.
    status: &'static str,
}

#[utoipa::path(get, path = "/healthz", summary = "Liveness: 200 while the daemon runs (no data)", tag = "operations", responses((status = 200, description = "the daemon runs", body = Health)))]
pub async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// What `/readyz` answers: reasons only, never data.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct Readiness {
    /// `ready` or `not_ready`.
    status: &'static str,
    problems: Vec<String>,
    last_sweep: Option<chrono::DateTime<chrono::Utc>>,
    /// How long the oldest unsent message has waited; `null` when the database did not answer.
    oldest_pending_secs: Option<i64>,
}

/// What removing a team member answers.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct Removed {
    /// The member's id.
    removed: String,
}

/// Longest a message may wait in the outbox before the daemon counts as not ready.
const READY_OUTBOX_AGE_SECS: i64 = 3600;

/// Readiness, unlike liveness: the database answers, the last sweep is recent, and the
/// oldest unsent message has not waited over an hour. Reasons only, never data.
#[utoipa::path(get, path = "/readyz", summary = "Readiness: the database answers, the last sweep is recent, no message waits over an hour, the relay is not failing", tag = "operations", responses((status = 200, description = "ready", body = Readiness), (status = 503, description = "not ready, with the reasons", body = Readiness)))]
pub async fn readyz(State(s): State<ApiState>) -> (StatusCode, Json<Readiness>) {
    let now = s.app.now();
    let mut problems: Vec<String> = Vec::new();
    let db = tokio::time::timeout(std::time::Duration::from_secs(3), async {
        let mut conn = s.app.store.conn().await?;
        store::outbox::oldest_pending_age(&mut conn, now.timestamp()).await
    })
    .await;
    let oldest = match db {
        Ok(Ok(age)) => Some(age),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness: database unavailable");
            problems.push("the database is unavailable".into());
            None
        }
        Err(_) => {
            problems.push("the database does not answer".into());
            None
        }
    };
    if let Some(age) = oldest
        && age > READY_OUTBOX_AGE_SECS
    {
        problems.push(format!("a message has waited {age} s in the outbox"));
    }
    let health = s.app.health.snapshot();
    if let Some(p) = health.sweep_problem(now) {
        problems.push(p.into());
    }
    if health.relay_trouble {
        problems.push("the mail relay is failing".into());
    }
    let code = if problems.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = Readiness {
        status: if problems.is_empty() {
            "ready"
        } else {
            "not_ready"
        },
        problems,
        last_sweep: health.last_sweep,
        oldest_pending_secs: oldest,
    };
    (code, Json(body))
}

pub async fn no_route() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "no_route", "no such route")
}

#[utoipa::path(get, path = "/v1/openapi.json", summary = "This description", tag = "operations", responses((status = 200, description = "this document (OpenAPI 3.1)", body = Object)))]
pub async fn openapi(State(s): State<ApiState>) -> Json<&'static Value> {
    Json(super::openapi::document_json(
        s.app.config.api.metrics_admin_only,
    ))
}

/// `/metrics` behind the token check (`api.metrics_admin_only`): admin tokens only.
#[utoipa::path(get, path = "/metrics", summary = "Prometheus metrics (counts only, no references), for admin tokens (api.metrics_admin_only)", tag = "operations", responses((status = 200, description = "Prometheus text exposition", body = String, content_type = "text/plain"), (status = 404, description = "not an admin token", body = ErrorBody), (status = 500, description = "internal error; the cause is in the operator's log", body = ErrorBody)))]
pub async fn metrics_for_admin(
    State(s): State<ApiState>,
    Extension(p): Extension<Principal>,
) -> Result<Response, ApiError> {
    admin_only(&p)?;
    metrics(State(s)).await
}

/// The Prometheus scrape: this daemon's own metrics and the database's counts now.
#[utoipa::path(get, path = "/metrics", summary = "Prometheus metrics (counts only, no references)", tag = "operations", responses((status = 200, description = "Prometheus text exposition", body = String, content_type = "text/plain"), (status = 500, description = "internal error; the cause is in the operator's log", body = ErrorBody)))]
pub async fn metrics(State(s): State<ApiState>) -> Result<Response, ApiError> {
    let now = s.app.now().timestamp();
    let mut conn = s.app.store.conn().await?;
    let gauges = store::metrics::counts(&mut conn).await?;
    let fallbacks = store::metrics::safety_fallbacks(&mut conn).await?;
    let last_sweep = store::sweeps::last_before(&mut conn, now).await?;
    let oldest_pending_secs = store::outbox::oldest_pending_age(&mut conn, now).await?;
    drop(conn);
    let by_class = s
        .metrics
        .by_class
        .iter()
        .enumerate()
        .skip(1)
        .map(|(i, c)| {
            (
                Some(("class", format!("{i}xx"))),
                c.load(std::sync::atomic::Ordering::Relaxed),
            )
        })
        .collect();
    let snapshot = crate::metrics::Snapshot {
        gauges,
        counters: vec![
            (
                "safety_fallbacks",
                "Safety notices (red alerts, escalations) that failed for good and were re-sent to a coordinator",
                vec![(None, u64::try_from(fallbacks).unwrap_or(0))],
            ),
            ("http_responses", "HTTP responses by status class", by_class),
            (
                "api_denied",
                "Requests without a valid token (401, or 429 once a client's allowance is used up)",
                vec![(None, s.strangers.denied_total())],
            ),
        ],
        last_sweep,
        last_dispatch: s.app.health.snapshot().last_dispatch.map(|t| t.timestamp()),
        oldest_pending_secs,
    };
    let text = s.app.health.metrics.render(&snapshot).map_err(|_| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "metrics",
            "the metrics could not be written",
        )
    })?;
    Ok((
        [(
            axum::http::header::CONTENT_TYPE,
            crate::metrics::CONTENT_TYPE,
        )],
        text,
    )
        .into_response())
}

#[utoipa::path(post, path = "/v1/families", summary = "Enrol a family (the body of `family enroll`)", tag = "families", request_body = Enrolment, responses((status = 201, description = "enrolled: the references and check-ins", body = service::family::Enrolled), (status = 400, description = "invalid input: the field is named", body = ErrorBody), (status = 403, description = "a team enrols families for its own municipality", body = ErrorBody), (status = 404, description = "not found (a researcher token reaches no family routes)", body = ErrorBody), (status = 409, description = "the family or record is not in a state that allows this", body = ErrorBody), (status = 500, description = "internal error; the cause is in the operator's log", body = ErrorBody)))]
pub async fn enrol(
    State(s): State<ApiState>,
    Extension(p): Extension<Principal>,
    body: JsonBytes,
) -> Result<(StatusCode, Json<service::family::Enrolled>), ApiError> {
    team_only(&p)?;
    let e: Enrolment = body.parse()?;
    if let Scope::Municipality(m) = &p.scope
        && *m != e.municipality
    {
        return Err(ApiError {
            field: Some("municipality".into()),
            ..ApiError::forbidden("a team enrols families for its own municipality")
        });
    }
    let out = service::family::enrol(&app_for(&s, &p), &e).await?;
    Ok((StatusCode::CREATED, Json(out)))
}

/// `GET /v1/families?state=&limit=&cursor=`: a team's own families (an admin's: all, or
/// `?municipality=`), paged in reference order.
#[utoipa::path(get, path = "/v1/families", summary = "The families a team is responsible for now (an admin: all, or one municipality), no sealed data, paged", tag = "families", params(("state" = Option<String>, Query, description = "running, completed, closed_early or erased"), ("limit" = Option<u32>, Query, description = "1 to 500 (default 100)"), ("cursor" = Option<String>, Query, description = "the previous page's next_cursor"), ("municipality" = Option<String>, Query, description = "an admin token's filter by municipality code (a team sees its own)")), responses((status = 200, description = "a page of families (no sealed data)", body = service::family::FamilyPage), (status = 400, description = "invalid input: the field is named", body = ErrorBody), (status = 404, description = "not found (a researcher token reaches no family routes)", body = ErrorBody), (status = 500, description = "internal error; the cause is in the operator's log", body = ErrorBody)))]
pub async fn list_families(
    State(s): State<ApiState>,
    Extension(p): Extension<Principal>,
    RawQuery(raw): RawQuery,
) -> Result<Json<service::family::FamilyPage>, ApiError> {
    team_only(&p)?;
    let q = query(raw, &["state", "limit", "cursor", "municipality"])?;
    let limit = match q.get("limit") {
        None => 100,
        Some(l) => l
            .parse::<u32>()
            .map_err(|_| ApiError::bad_request("limit", "expected a whole number"))?,
    };
    let municipality = listed_municipality(&p, &q);
    let req = service::family::ListRequest {
        municipality: municipality.as_deref(),
        state: q.get("state").map(String::as_str),
        cursor: q.get("cursor").map(String::as_str),
        limit,
    };
    Ok(Json(service::family::list(&app_for(&s, &p), &req).await?))
}

#[utoipa::path(get, path = "/v1/families/{ref}", summary = "The whole record of a family (an audited read)", tag = "families", params(("ref" = String, Path, description = "the family's reference (F-…)")), responses((status = 200, description = "the whole record (an audited read)", body = service::family::FamilyView), (status = 404, description = "no such family, or not one this token may see", body = ErrorBody), (status = 500, description = "internal error; the cause is in the operator's log", body = ErrorBody)))]
pub async fn show_family(
    State(s): State<ApiState>,
    Extension(p): Extension<Principal>,
    Path(family): Path<String>,
) -> Result<Json<service::family::FamilyView>, ApiError> {
    require_family(&s, &p, &family).await?;
    Ok(Json(
        service::family::show(&app_for(&s, &p), &family).await?,
    ))
}

#[derive(serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct CloseBody {
    reason: String,
    #[serde(default)]
    approved_by: Option<String>,
    #[serde(default)]
    safety_improved: Option<String>,
    #[serde(default)]
    professionals: Option<serde_json::Value>,
    #[serde(default)]
    family_view: Option<String>,
}

#[utoipa::path(post, path = "/v1/families/{ref}/close", summary = "Close a plan before its term, with the evaluation (and a coordinator while a red flag is open)", tag = "families", params(("ref" = String, Path, description = "the family's reference (F-…)")), request_body = CloseBody, responses((status = 200, description = "closed before its term", body = service::family::Closed), (status = 400, description = "invalid input: the field is named", body = ErrorBody), (status = 403, description = "the token's team is not responsible for this change", body = ErrorBody), (status = 404, description = "no such family, or not one this token may see", body = ErrorBody), (status = 409, description = "the family or record is not in a state that allows this", body = ErrorBody), (status = 500, description = "internal error; the cause is in the operator's log", body = ErrorBody)))]
pub async fn close_family(
    State(s): State<ApiState>,
    Extension(p): Extension<Principal>,
    Path(family): Path<String>,
    body: JsonBytes,
) -> Result<Json<service::family::Closed>, ApiError> {
    require_family(&s, &p, &family).await?;
    let b: CloseBody = body.parse()?;
    Ok(Json(
        service::family::close(
            &app_for(&s, &p),
            &family,
            &service::family::CloseRequest {
                reason: b.reason,
                approved_by: b.approved_by,
                evaluation: crate::domain::evaluation::EvaluationInput {
                    safety_improved: b.safety_improved,
                    professionals: b.professionals,
                    family_view: b.family_view,
                },
            },
        )
        .await?,
    ))
}

/// `PATCH /v1/families/{ref}`: the body of `family update`; only the responsible team.
#[utoipa::path(patch, path = "/v1/families/{ref}", summary = "Keep the family record up to date (the body of `family update`); only the responsible team", tag = "families", params(("ref" = String, Path, description = "the family's reference (F-…)")), request_body = crate::domain::household::FamilyUpdate, responses((status = 200, description = "what changed", body = service::record::Updated), (status = 400, description = "invalid input: the field is named", body = ErrorBody), (status = 403, description = "the token's team is not responsible for this change", body = ErrorBody), (status = 404, description = "no such family, or not one this token may see", body = ErrorBody), (status = 409, description = "the family or record is not in a state that allows this", body = ErrorBody), (status = 500, description = "internal error; the cause is in the operator's log", body = ErrorBody)))]
pub async fn update_family(
    State(s): State<ApiState>,
    Extension(p): Extension<Principal>,
    Path(family): Path<String>,
    body: JsonBytes,
) -> Result<Json<service::record::Updated>, ApiError> {
    require_family(&s, &p, &family).await?;
    let b: crate::domain::household::FamilyUpdate = body.parse()?;
    Ok(Json(
        service::record::update(&app_for(&s, &p), &family, &b).await?,
    ))
}

#[utoipa::path(post, path = "/v1/families/{ref}/evaluation", summary = "The closing evaluation of an ended plan", tag = "families", params(("ref" = String, Path, description = "the family's reference (F-…)")), request_body = crate::domain::evaluation::EvaluationInput, responses((status = 200, description = "the evaluation is recorded", body = service::family::Evaluated), (status = 400, description = "invalid input: the field is named", body = ErrorBody), (status = 403, description = "the token's team is not responsible for this change", body = ErrorBody), (status = 404, description = "no such family, or not one this token may see", body = ErrorBody), (status = 409, description = "the family or record is not in a state that allows this", body = ErrorBody), (status = 500, description = "internal error; the cause is in the operator's log", body = ErrorBody)))]
pub async fn evaluate_family(
    State(s): State<ApiState>,
    Extension(p): Extension<Principal>,
    Path(family): Path<String>,
    body: JsonBytes,
) -> Result<Json<service::family::Evaluated>, ApiError> {
    require_family(&s, &p, &family).await?;
    let b: crate::domain::evaluation::EvaluationInput = body.parse()?;
    Ok(Json(
        service::family::evaluate(&app_for(&s, &p), &family, &b).await?,
    ))
}

/// Decodes `%XX` escapes; `+` stays a plus (RFC 3339 offsets).
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The query string as key → value, refusing unknown keys.
fn query(
    raw: Option<String>,
    allowed: &[&str],
) -> Result<std::collections::BTreeMap<String, String>, ApiError> {
    let mut out = std::collections::BTreeMap::new();
    for pair in raw
        .as_deref()
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
    {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let k = percent_decode(k)
            .ok_or_else(|| ApiError::bad_request("query", "malformed query string"))?;
        if !allowed.contains(&k.as_str()) {
            return Err(ApiError::bad_request(
                &k.chars().take(40).collect::<String>(),
                "unknown query parameter",
            ));
        }
        let v = percent_decode(v).ok_or_else(|| ApiError::bad_request(&k, "malformed value"))?;
        out.insert(k, v);
    }
    Ok(out)
}

#[utoipa::path(get, path = "/v1/checkins/due", summary = "Open check-ins due before an instant", tag = "checkins", params(("before" = Option<String>, Query, description = "an RFC 3339 instant (default now + the reminder lead)"), ("municipality" = Option<String>, Query, description = "an admin token's filter by municipality code (a team sees its own)")), responses((status = 200, description = "open check-ins due before then", body = Vec<service::checkin::DueLine>), (status = 400, description = "invalid input: the field is named", body = ErrorBody), (status = 404, description = "not found (a researcher token reaches no family routes)", body = ErrorBody), (status = 500, description = "internal error; the cause is in the operator's log", body = ErrorBody)))]
pub async fn due(
    State(s): State<ApiState>,
    Extension(p): Extension<Principal>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Vec<service::checkin::DueLine>>, ApiError> {
    team_only(&p)?;
    let q = query(raw, &["before", "municipality"])?;
    let before = match q.get("before") {
        Some(b) => Some(
            chrono::DateTime::parse_from_rfc3339(b)
                .map_err(|_| ApiError::bad_request("before", "expected an RFC 3339 instant"))?
                .with_timezone(&chrono::Utc),
        ),
        None => None,
    };
    let municipality = listed_municipality(&p, &q);
    Ok(Json(
        service::checkin::due(&app_for(&s, &p), municipality.as_deref(), before).await?,
    ))
}

#[utoipa::path(post, path = "/v1/checkins/{id}/record", summary = "Record a check-in's outcome and observations (or one contact attempt)", tag = "checkins", params(("id" = String, Path, description = "the check-in's reference (C-…)")), request_body(content = CheckinRecord, description = "`checkin` may be left out: it is the one in the path"), responses((status = 200, description = "recorded (or one attempt of it)", body = service::checkin::RecordedCheckin), (status = 400, description = "invalid input: the field is named", body = ErrorBody), (status = 403, description = "the token's team is not responsible for this change", body = ErrorBody), (status = 404, description = "no such check-in, or not one this token may see", body = ErrorBody), (status = 409, description = "the family or record is not in a state that allows this", body = ErrorBody), (status = 500, description = "internal error; the cause is in the operator's log", body = ErrorBody)))]
pub async fn record(
    State(s): State<ApiState>,
    Extension(p): Extension<Principal>,
    Path(checkin): Path<String>,
    body: JsonBytes,
) -> Result<Json<service::checkin::RecordedCheckin>, ApiError> {
    team_only(&p)?;
    let Some(family) = family_of_checkin(&s, &checkin).await? else {
        return Err(ApiError::not_found());
    };
    require_family(&s, &p, &family).await?;
    let mut value: Value = body.parse()?;
    let Some(obj) = value.as_object_mut() else {
        return Err(ApiError::bad_request("(body)", "expected a JSON object"));
    };
    match obj.get("checkin") {
        None => {
            obj.insert("checkin".into(), Value::String(checkin.clone()));
        }
        Some(Value::String(c)) if *c == checkin => {}
        Some(_) => {
            return Err(ApiError::bad_request(
                "checkin",
                "does not match the check-in in the path",
            ));
        }
    }
    let rec: CheckinRecord = crate::domain::parse_json(value.to_string().as_bytes())
        .map_err(|e| ApiError::bad_request(&e.field, e.message))?;
    Ok(Json(
        service::checkin::record(&app_for(&s, &p), &rec).await?,
    ))
}

#[derive(serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct MoveBody {
    to: String,
    date: chrono::NaiveDate,
    #[serde(default)]
    address: Option<String>,
}

#[utoipa::path(post, path = "/v1/families/{ref}/moves", summary = "A move to another municipality: the handover to the receiving team", tag = "handovers", params(("ref" = String, Path, description = "the family's reference (F-…)")), request_body = MoveBody, responses((status = 201, description = "the move and its handover", body = service::handover::HandoverCreated), (status = 400, description = "invalid input: the field is named", body = ErrorBody), (status = 403, description = "the token's team is not responsible for this change", body = ErrorBody), (status = 404, description = "no such family, or not one this token may see", body = ErrorBody), (status = 409, description = "the family or record is not in a state that allows this", body = ErrorBody), (status = 500, description = "internal error; the cause is in the operator's log", body = ErrorBody)))]
pub async fn move_family(
    State(s): State<ApiState>,
    Extension(p): Extension<Principal>,
    Path(family): Path<String>,
    body: JsonBytes,
) -> Result<(StatusCode, Json<service::handover::HandoverCreated>), ApiError> {
    require_family(&s, &p, &family).await?;
    let b: MoveBody = body.parse()?;
    let req = service::handover::MoveRequest {
        family,
        to: b.to,
        date: b.date,
        address: b.address,
    };
    let out = service::handover::move_family(&app_for(&s, &p), &req).await?;
    Ok((StatusCode::CREATED, Json(out)))
}

#[utoipa::path(get, path = "/v1/handovers", summary = "Handovers of the caller's municipality", tag = "handovers", params(("status" = Option<String>, Query, description = "pending or withheld (default all)"), ("municipality" = Option<String>, Query, description = "an admin token's filter by municipality code (a team sees its own)")), responses((status = 200, description = "handovers", body = Vec<service::handover::HandoverView>), (status = 400, description = "invalid input: the field is named", body = ErrorBody), (status = 404, description = "not found (a researcher token reaches no family routes)", body = ErrorBody), (status = 500, description = "internal error; the cause is in the operator's log", body = ErrorBody)))]
pub async fn handovers(
    State(s): State<ApiState>,
    Extension(p): Extension<Principal>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Vec<service::handover::HandoverView>>, ApiError> {
    team_only(&p)?;
    let q = query(raw, &["status", "municipality"])?;
    let (pending, withheld) = match q.get("status").map(String::as_str) {
        None => (false, false),
        Some("pending") => (true, false),
        Some("withheld") => (false, true),
        Some(_) => {
            return Err(ApiError::bad_request(
                "status",
                "expected pending or withheld",
            ));
        }
    };
    let municipality = listed_municipality(&p, &q);
    let filter = service::handover::ListFilter {
        pending,
        withheld,
        municipality: municipality.as_deref(),
    };
    Ok(Json(
        service::handover::list(&app_for(&s, &p), filter).await?,
    ))
}

#[derive(serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct AckBody {
    /// Required for admin tokens; a team acknowledges as its own municipality.
    #[serde(default)]
    municipality: Option<String>,
    #[serde(default)]
    by: Option<String>,
    /// The family's new case director, sealed (`handover ack --case-director-file`).
    #[serde(default)]
    case_director: Option<crate::domain::enrolment::CaseDirector>,
}

#[utoipa::path(post, path = "/v1/handovers/{id}/ack", summary = "The receiving team acknowledges a handover (and may name the new case director)", tag = "handovers", params(("id" = String, Path, description = "the handover's reference (H-…)")), request_body = AckBody, responses((status = 200, description = "acknowledged by the receiving team", body = service::handover::Acknowledged), (status = 400, description = "invalid input: the field is named", body = ErrorBody), (status = 403, description = "only the receiving team acknowledges a handover", body = ErrorBody), (status = 404, description = "no such handover, or not one this token may see", body = ErrorBody), (status = 409, description = "the family or record is not in a state that allows this", body = ErrorBody), (status = 500, description = "internal error; the cause is in the operator's log", body = ErrorBody)))]
pub async fn ack_handover(
    State(s): State<ApiState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
    body: JsonBytes,
) -> Result<Json<service::handover::Acknowledged>, ApiError> {
    team_only(&p)?;
    let b: AckBody = body.parse()?;
    let municipality = match &p.scope {
        Scope::Municipality(m) => {
            // Only the receiving team acknowledges; others do not learn the handover exists.
            let h = if reference::looks_like(&id, 'H') {
                let mut conn = s.app.store.conn().await?;
                store::handovers::by_ref(&mut conn, &id).await?
            } else {
                None
            };
            match h {
                Some(h) if h.to_municipality == *m => m.clone(),
                Some(h) if h.from_municipality == *m => {
                    return Err(ApiError::forbidden(
                        "only the receiving team acknowledges a handover",
                    ));
                }
                Some(h) => {
                    denied(&s, &p, Some(&h.family_ref)).await;
                    return Err(ApiError::not_found());
                }
                None => return Err(ApiError::not_found()),
            }
        }
        _ => b
            .municipality
            .clone()
            .ok_or_else(|| ApiError::bad_request("municipality", "required for an admin token"))?,
    };
    Ok(Json(
        service::handover::ack_naming(
            &app_for(&s, &p),
            &id,
            &municipality,
            b.by.as_deref(),
            b.case_director.as_ref(),
        )
        .await?,
    ))
}

#[utoipa::path(get, path = "/v1/flags", summary = "Relapse-signal flags with their evidence", tag = "flags", params(("status" = Option<String>, Query, description = "open or all (default all)"), ("municipality" = Option<String>, Query, description = "an admin token's filter by municipality code (a team sees its own)")), responses((status = 200, description = "relapse-signal flags", body = Vec<service::signals::FlagView>), (status = 400, description = "invalid input: the field is named", body = ErrorBody), (status = 404, description = "not found (a researcher token reaches no family routes)", body = ErrorBody), (status = 500, description = "internal error; the cause is in the operator's log", body = ErrorBody)))]
pub async fn flags(
    State(s): State<ApiState>,
    Extension(p): Extension<Principal>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Vec<service::signals::FlagView>>, ApiError> {
    team_only(&p)?;
    let q = query(raw, &["status", "municipality"])?;
    let open_only = match q.get("status").map(String::as_str) {
        None | Some("all") => false,
        Some("open") => true,
        Some(_) => return Err(ApiError::bad_request("status", "expected open or all")),
    };
    let municipality = listed_municipality(&p, &q);
    Ok(Json(
        service::signals::list(&app_for(&s, &p), municipality.as_deref(), open_only).await?,
    ))
}

#[derive(serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct FlagNoteBody {
    note: String,
    #[serde(default)]
    by: Option<String>,
}

async fn flag_step(
    s: &ApiState,
    p: &Principal,
    id: &str,
    step: service::signals::Step,
    body: &JsonBytes,
) -> Result<Json<service::signals::FlagView>, ApiError> {
    team_only(p)?;
    let Ok(id) = id.parse::<i64>() else {
        return Err(ApiError::not_found());
    };
    let family = {
        let mut conn = s.app.store.conn().await?;
        store::flags::by_id(&mut conn, id, s.app.now().timestamp())
            .await?
            .map(|f| f.family_ref)
    };
    let Some(family) = family else {
        return Err(ApiError::not_found());
    };
    require_family(s, p, &family).await?;
    let b: FlagNoteBody = body.parse()?;
    Ok(Json(
        service::signals::act(&app_for(s, p), id, step, &b.note, b.by.as_deref()).await?,
    ))
}

#[utoipa::path(post, path = "/v1/flags/{id}/ack", summary = "Acknowledge a flag with a note", tag = "flags", params(("id" = i64, Path, description = "the flag's number")), request_body = FlagNoteBody, responses((status = 200, description = "acknowledged", body = service::signals::FlagView), (status = 400, description = "invalid input: the field is named", body = ErrorBody), (status = 403, description = "the token's team is not responsible for this change", body = ErrorBody), (status = 404, description = "no such flag, or not one this token may see", body = ErrorBody), (status = 409, description = "the family or record is not in a state that allows this", body = ErrorBody), (status = 500, description = "internal error; the cause is in the operator's log", body = ErrorBody)))]
pub async fn ack_flag(
    State(s): State<ApiState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
    body: JsonBytes,
) -> Result<Json<service::signals::FlagView>, ApiError> {
    flag_step(&s, &p, &id, service::signals::Step::Acknowledge, &body).await
}

#[utoipa::path(post, path = "/v1/flags/{id}/resolve", summary = "Resolve a flag with a note", tag = "flags", params(("id" = i64, Path, description = "the flag's number")), request_body = FlagNoteBody, responses((status = 200, description = "resolved", body = service::signals::FlagView), (status = 400, description = "invalid input: the field is named", body = ErrorBody), (status = 403, description = "the token's team is not responsible for this change", body = ErrorBody), (status = 404, description = "no such flag, or not one this token may see", body = ErrorBody), (status = 409, description = "the family or record is not in a state that allows this", body = ErrorBody), (status = 500, description = "internal error; the cause is in the operator's log", body = ErrorBody)))]
pub async fn resolve_flag(
    State(s): State<ApiState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
    body: JsonBytes,
) -> Result<Json<service::signals::FlagView>, ApiError> {
    flag_step(&s, &p, &id, service::signals::Step::Resolve, &body).await
}

/// The files an export folder holds; nothing else is ever served from it.
const EXPORT_FILES: &[(&str, &str)] = &[
    ("followup.csv", "text/csv; charset=utf-8"),
    ("manifest.json", "application/json"),
    ("codebook.json", "application/json"),
    ("codebook.md", "text/markdown; charset=utf-8"),
];

#[derive(serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct ExportBody {
    #[serde(default)]
    from: Option<chrono::NaiveDate>,
    #[serde(default)]
    to: Option<chrono::NaiveDate>,
    #[serde(default)]
    k: Option<u32>,
}

fn exports_dir(s: &ApiState) -> std::path::PathBuf {
    s.app.config.state_dir.join("exports")
}

/// A researcher asks for an export of its study; the files stay in the daemon's state
/// folder under the export's id until fetched.
#[utoipa::path(post, path = "/v1/exports", summary = "An anonymised export of the researcher token's study", tag = "exports", request_body = ExportBody, responses((status = 201, description = "the export of the token's study, kept under its id", body = crate::export::ExportSummary), (status = 400, description = "invalid input: the field is named", body = ErrorBody), (status = 404, description = "not a researcher token", body = ErrorBody), (status = 409, description = "the family or record is not in a state that allows this", body = ErrorBody), (status = 422, description = "the export is refused: k-anonymity cannot be reached, or a field is not in the codebook", body = ErrorBody), (status = 500, description = "internal error; the cause is in the operator's log", body = ErrorBody)))]
pub async fn create_export(
    State(s): State<ApiState>,
    Extension(p): Extension<Principal>,
    body: JsonBytes,
) -> Result<(StatusCode, Json<crate::export::ExportSummary>), ApiError> {
    let Scope::Researcher(study) = &p.scope else {
        return Err(ApiError::not_found());
    };
    let b: ExportBody = body.parse()?;
    let dir = exports_dir(&s);
    crate::service::create_private_dir(&dir).map_err(|e| {
        tracing::error!(error = %e, "cannot create the exports folder");
        ApiError::internal()
    })?;
    let staging = dir.join(format!("new-{}", reference::token()));
    let req = crate::export::ExportRequest {
        out: staging.clone(),
        study: Some(study.clone()),
        from: b.from,
        to: b.to,
        k: b.k,
    };
    let mut out = match crate::export::export(&app_for(&s, &p), &req).await {
        Ok(o) => o,
        Err(crate::export::ExportError::Op(op)) => return Err(op.into()),
        Err(
            e @ (crate::export::ExportError::Infeasible(_)
            | crate::export::ExportError::Codebook(_)),
        ) => {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "export_refused",
                e.to_string(),
            ));
        }
        Err(e) => {
            tracing::error!(error = %e, "export failed");
            return Err(ApiError::internal());
        }
    };
    let final_dir = dir.join(&out.export);
    std::fs::rename(&staging, &final_dir).map_err(|e| {
        tracing::error!(error = %e, "cannot move the export into place");
        ApiError::internal()
    })?;
    out.out = final_dir;
    Ok((StatusCode::CREATED, Json(out)))
}

#[utoipa::path(get, path = "/v1/exports/{id}/{file}", summary = "One file of an export (researcher tokens of its study)", tag = "exports", params(("id" = String, Path, description = "the export's id (X-…)"), ("file" = String, Path, description = "followup.csv, manifest.json, codebook.json or codebook.md")), responses((status = 200, description = "the file", content((String = "text/csv"), (Object = "application/json"), (String = "text/markdown"))), (status = 404, description = "no such export or file, or not this researcher's study", body = ErrorBody), (status = 500, description = "internal error; the cause is in the operator's log", body = ErrorBody)))]
pub async fn export_file(
    State(s): State<ApiState>,
    Extension(p): Extension<Principal>,
    Path((id, file)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let Scope::Researcher(study) = &p.scope else {
        return Err(ApiError::not_found());
    };
    // Only the fixed file names, only well-formed ids: no path is ever built from input.
    let Some((name, ctype)) = EXPORT_FILES.iter().find(|(n, _)| *n == file) else {
        return Err(ApiError::not_found());
    };
    if !reference::looks_like(&id, 'X') {
        return Err(ApiError::not_found());
    }
    let owner = {
        let mut conn = s.app.store.conn().await?;
        store::export::study_of(&mut conn, &id).await?
    };
    if owner.flatten().as_deref() != Some(study.as_str()) {
        denied(&s, &p, None).await;
        return Err(ApiError::not_found());
    }
    let path = exports_dir(&s).join(&id).join(name);
    let bytes = tokio::fs::read(&path)
        .await
        .map_err(|_| ApiError::not_found())?;
    super::record_audit(
        &s,
        &p.actor(),
        &Entry {
            action: "export.fetch",
            subject: Some(&id),
            detail: Some(name),
            ..Default::default()
        },
    )
    .await;
    Ok(([(axum::http::header::CONTENT_TYPE, *ctype)], bytes).into_response())
}

fn admin_only(p: &Principal) -> Result<(), ApiError> {
    match p.scope {
        Scope::Admin => Ok(()),
        _ => Err(ApiError::not_found()),
    }
}

#[derive(serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct MemberBody {
    municipality: String,
    email: String,
    name: String,
}

#[utoipa::path(post, path = "/v1/members", summary = "Register a team member (admin token)", tag = "members", request_body = MemberBody, responses((status = 201, description = "registered", body = service::members::MemberView), (status = 400, description = "invalid input: the field is named", body = ErrorBody), (status = 404, description = "not an admin token", body = ErrorBody), (status = 409, description = "the family or record is not in a state that allows this", body = ErrorBody), (status = 500, description = "internal error; the cause is in the operator's log", body = ErrorBody)))]
pub async fn add_member(
    State(s): State<ApiState>,
    Extension(p): Extension<Principal>,
    body: JsonBytes,
) -> Result<(StatusCode, Json<service::members::MemberView>), ApiError> {
    admin_only(&p)?;
    let b: MemberBody = body.parse()?;
    let out = service::members::add(&app_for(&s, &p), &b.municipality, &b.email, &b.name).await?;
    Ok((StatusCode::CREATED, Json(out)))
}

#[utoipa::path(get, path = "/v1/members", summary = "Team members of the workspace (admin token)", tag = "members", params(("municipality" = Option<String>, Query, description = "only this municipality's members")), responses((status = 200, description = "team members of the workspace", body = Vec<service::members::MemberView>), (status = 400, description = "invalid input: the field is named", body = ErrorBody), (status = 404, description = "not an admin token", body = ErrorBody), (status = 500, description = "internal error; the cause is in the operator's log", body = ErrorBody)))]
pub async fn list_members(
    State(s): State<ApiState>,
    Extension(p): Extension<Principal>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Vec<service::members::MemberView>>, ApiError> {
    admin_only(&p)?;
    let q = query(raw, &["municipality"])?;
    Ok(Json(
        service::members::list(&app_for(&s, &p), q.get("municipality").map(String::as_str)).await?,
    ))
}

#[utoipa::path(post, path = "/v1/members/{id}/remove", summary = "Remove a team member; their sessions end (admin token)", tag = "members", params(("id" = String, Path, description = "the member's id")), responses((status = 200, description = "removed; their sessions end", body = Removed), (status = 404, description = "no such member, or not an admin token", body = ErrorBody), (status = 409, description = "the family or record is not in a state that allows this", body = ErrorBody), (status = 500, description = "internal error; the cause is in the operator's log", body = ErrorBody)))]
pub async fn remove_member(
    State(s): State<ApiState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Json<Removed>, ApiError> {
    admin_only(&p)?;
    service::members::remove(&app_for(&s, &p), &id).await?;
    Ok(Json(Removed { removed: id }))
}
