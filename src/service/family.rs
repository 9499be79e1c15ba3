//! Enrolling, showing and closing families.

use super::{App, OpError, open_json, seal_json};
use crate::audit::Entry;
use crate::crypto::FieldPlace;
use crate::domain::enrolment::{Enrolment, FamilyDetails, MemberDetails};
use crate::domain::evaluation::{Evaluation, EvaluationInput};
use crate::domain::recording::RecordDetails;
use crate::domain::reminder::Stage;
use crate::domain::{FieldError, reference};
use crate::store::{self, from_secs, to_secs};
use chrono::{DateTime, Utc};
use serde::Serialize;

/// Why a plan may end before its term. "It is calm now" is deliberately not one of them:
/// violence recurs, and monitoring runs its full term unless there is a reason.
pub const CLOSE_REASONS: &[&str] = &[
    "family_moved_abroad",
    "family_declined_aftercare",
    "transferred_to_specialist_care",
    "taken_over_by_safety_chain",
    "family_deceased",
    "enrolled_in_error",
];

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EnrolledMember {
    #[serde(rename = "ref")]
    pub reference: String,
    pub role: &'static str,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ScheduledCheckin {
    pub id: String,
    pub wave: u32,
    pub due: DateTime<Utc>,
    pub status: &'static str,
}

/// What `family enroll` answers.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Enrolled {
    pub family: String,
    pub members: Vec<EnrolledMember>,
    pub checkins: Vec<ScheduledCheckin>,
}

/// Only the case director's name from a sealed family record: the caseload shows no more,
/// so nothing else is copied out of it.
#[derive(Debug, serde::Deserialize)]
pub struct DirectorOnly {
    pub case_director: DirectorName,
}

#[derive(Debug, serde::Deserialize)]
pub struct DirectorName {
    pub name: String,
}

pub(crate) fn family_place<'a>(family: &'a str) -> FieldPlace<'a> {
    FieldPlace {
        family,
        table: "families",
        column: "sealed_details",
        row: family,
    }
}

pub(crate) fn member_place<'a>(family: &'a str, member: &'a str) -> FieldPlace<'a> {
    FieldPlace {
        family,
        table: "members",
        column: "sealed_details",
        row: member,
    }
}

/// Enrols a family: validates, computes the plan's slots, seals every personal field with a
/// fresh data key and stores it all in one transaction (a batch of one of
/// [`super::enrolment::write`], the same path `family import` takes).
///
/// Slots that fell due more than `reminders.overdue_after` before enrolment are stored as
/// `lapsed`: kept so waves line up in research data, but never reminded (a late enrolment
/// must not start with a storm of overdue mail). A slot that fell due more recently stays
/// open and gets its "due" notice at the next sweep, so contact follows enrolment soon.
pub async fn enrol(app: &App, e: &Enrolment) -> Result<Enrolled, OpError> {
    let checked = super::enrolment::check(app, e)?;
    let mut tx = app.store.write().await?;
    let out = super::enrolment::write(
        app,
        &mut tx,
        std::slice::from_ref(&checked),
        &mut reference::family,
    )
    .await?
    .pop()
    .ok_or_else(|| OpError::Conflict("the enrolment was not written; retry".into()))?;
    tx.commit().await?;
    tracing::info!(family = %out.family, municipality = %e.municipality, plan = %e.plan, checkins = out.checkins.len(), "family enrolled");
    Ok(out)
}

/// Refuses a reason code that is not in `allowed`, listing the allowed ones.
pub(crate) fn check_reason(reason: &str, allowed: &[&str]) -> Result<(), OpError> {
    if allowed.contains(&reason) {
        Ok(())
    } else {
        Err(OpError::Invalid(vec![FieldError::new(
            "reason",
            format!("expected one of: {}", allowed.join(", ")),
        )]))
    }
}

/// The family row for a reference, or not-found (also for strings that are no reference).
pub(crate) async fn family_by_ref(
    conn: &mut crate::store::Conn,
    family_ref: &str,
    at: i64,
) -> Result<store::families::FamilyRow, OpError> {
    let not_found = || OpError::NotFound {
        what: "family",
        reference: family_ref.chars().take(20).collect(),
    };
    if !reference::looks_like(family_ref, 'F') {
        return Err(not_found());
    }
    store::families::by_ref(conn, family_ref, at)
        .await?
        .ok_or_else(not_found)
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = FamilyMemberView)]
pub struct MemberView {
    #[serde(rename = "ref")]
    pub reference: String,
    pub role: String,
    #[serde(flatten)]
    pub details: Option<MemberDetails>,
    /// When the member left the household: kept for history, no longer followed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub left_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub left_reason: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ChildObservationView {
    pub member: String,
    #[schema(value_type = Object)]
    pub observations: crate::domain::enrolment::Observations,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CheckinView {
    pub id: String,
    pub wave: i64,
    pub due: DateTime<Utc>,
    pub status: String,
    pub reminders_sent: String,
    pub outcome: Option<String>,
    pub mode: Option<String>,
    pub contact_at: Option<DateTime<Utc>>,
    pub recorded_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub record: Option<RecordDetails>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub children: Vec<ChildObservationView>,
    /// Observations of the adult members (the adult victim is followed too).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub adults: Vec<ChildObservationView>,
    /// After a failed attempt: when the next one is due.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_attempt_due: Option<DateTime<Utc>>,
    /// Every contact attempt, oldest first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub attempts: Vec<AttemptView>,
}

/// One contact attempt of a check-in; `by` and `notes` are `null` once erased.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AttemptView {
    pub number: i64,
    pub at: DateTime<Utc>,
    pub outcome: String,
    pub mode: String,
    pub by: Option<String>,
    pub notes: Option<String>,
}

/// The whole decrypted record of a family, for the operator and the responsible team.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct FamilyView {
    pub family: String,
    pub status: String,
    pub close_reason: Option<String>,
    pub episode: serde_json::Value,
    pub plan: String,
    pub plan_end: DateTime<Utc>,
    pub municipality: String,
    pub language: String,
    pub interpreter_needed: bool,
    pub enrolled_at: DateTime<Utc>,
    /// `None` once the family was erased. While a move's acknowledgement has not named the
    /// new case director, `details.case_director` reads "no case director".
    pub details: Option<FamilyDetails>,
    /// False between a move and the acknowledgement that names the new case director.
    pub case_director_named: bool,
    /// The team's own case number (`family update` `case_number`): the reading team's
    /// (the responsible one's for the operator); `None` if that team set none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub case_number: Option<String>,
    pub members: Vec<MemberView>,
    /// The ex-partner or perpetrator with the court measure: never contacted, never in a
    /// mail (left out of a handover's dossier), never counted in rules or exports.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ex_partners: Vec<super::record::ExPartnerView>,
    /// The safety plan (veiligheidsplan) with its review date.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub safety_plan: Option<crate::domain::household::SafetyPlan>,
    /// Referrals for stressors (schuldhulp …) and whether they started, oldest first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub referrals: Vec<super::record::ReferralView>,
    pub checkins: Vec<CheckinView>,
    /// Relapse-signal flags of the family and its children (all statuses).
    pub flags: Vec<super::signals::FlagView>,
    /// The closing evaluation, once recorded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub evaluation: Option<Evaluation>,
    /// The coordinator who approved an early closure while a red flag was open.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub close_approved_by: Option<String>,
}

fn stage_label(stage: i64, overdue: i64) -> String {
    match Stage::from_code(stage, overdue) {
        Some(Stage::None) | None => "none".into(),
        Some(Stage::Upcoming) => "upcoming".into(),
        Some(Stage::Due) => "due".into(),
        Some(Stage::Overdue(n)) => format!("overdue {n}"),
        Some(Stage::Escalated) => "escalated".into(),
    }
}

/// A family as a list shows it: what `show` gives at the top level, no sealed details.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct FamilySummary {
    pub family: String,
    pub status: String,
    pub close_reason: Option<String>,
    pub episode: serde_json::Value,
    pub plan: String,
    pub plan_end: DateTime<Utc>,
    pub municipality: String,
    pub enrolled_at: DateTime<Utc>,
}

/// One page of a family list; `next_cursor` asks for the next one (`None`: this is the last).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct FamilyPage {
    pub families: Vec<FamilySummary>,
    pub next_cursor: Option<String>,
}

/// The family states a list can be filtered by.
pub const FAMILY_STATES: &[&str] = &["running", "completed", "closed_early", "erased"];
/// The largest page a list gives.
pub const MAX_PAGE: u32 = 500;

/// What a family list asks for.
#[derive(Debug, Default)]
pub struct ListRequest<'a> {
    /// Only the families this municipality is responsible for now.
    pub municipality: Option<&'a str>,
    /// One of [`FAMILY_STATES`].
    pub state: Option<&'a str>,
    /// The `next_cursor` of the page before.
    pub cursor: Option<&'a str>,
    /// 1 to [`MAX_PAGE`].
    pub limit: u32,
}

/// A page of families (reference order), without sealed data: a team's case system keeps
/// its list in step with this one without reading every record.
pub async fn list(app: &App, req: &ListRequest<'_>) -> Result<FamilyPage, OpError> {
    let mut errors = Vec::new();
    if let Some(s) = req.state
        && !FAMILY_STATES.contains(&s)
    {
        errors.push(FieldError::new(
            "state",
            format!("expected one of: {}", FAMILY_STATES.join(", ")),
        ));
    }
    if !(1..=MAX_PAGE).contains(&req.limit) {
        errors.push(FieldError::new("limit", format!("1 to {MAX_PAGE}")));
    }
    if let Some(c) = req.cursor
        && !reference::looks_like(c, 'F')
    {
        errors.push(FieldError::new(
            "cursor",
            "not a cursor from a previous page",
        ));
    }
    if !errors.is_empty() {
        return Err(OpError::Invalid(errors));
    }
    let mut conn = app.store.conn().await?;
    let now = app.now().timestamp();
    let mut rows = store::families::page(
        &mut conn,
        req.municipality.unwrap_or(""),
        req.state.unwrap_or(""),
        req.cursor.unwrap_or(""),
        i64::from(req.limit) + 1,
        now,
    )
    .await?;
    let more = rows.len() > req.limit as usize;
    rows.truncate(req.limit as usize);
    let next_cursor = if more {
        rows.last().map(|f| f.reference.clone())
    } else {
        None
    };
    let families = rows
        .into_iter()
        .map(|f| {
            Ok(FamilySummary {
                episode: if f.status == "erased" {
                    serde_json::Value::Null
                } else {
                    serde_json::json!({"kind": f.episode_kind, "date": f.episode_date})
                },
                plan_end: from_secs(f.plan_end)?,
                enrolled_at: from_secs(f.enrolled_at)?,
                family: f.reference,
                status: f.status,
                close_reason: f.close_reason,
                plan: f.plan,
                municipality: f.municipality,
            })
        })
        .collect::<Result<Vec<_>, OpError>>()?;
    Ok(FamilyPage {
        families,
        next_cursor,
    })
}

/// The family's case director as a reminder names them: unsealed from the family's details
/// in the caller's transaction. `None` while nobody is named (after a move, until the
/// receiving team names one) and for an erased family. The name is a professional's, not
/// the family's; it is never logged.
pub(crate) async fn case_director(
    app: &App,
    tx: &mut store::Conn,
    f: &store::families::FamilyRow,
) -> Result<Option<crate::domain::enrolment::CaseDirectorDetails>, OpError> {
    if store::handovers::lacks_case_director(tx, f.id).await? {
        return Ok(None);
    }
    open_case_director(
        app,
        tx,
        &f.reference,
        f.kek_id,
        f.wrapped_dek.as_deref(),
        f.sealed_details.as_deref(),
    )
    .await
}

/// The named case director in a family's sealed details (`None` for an erased family, or
/// an empty name).
async fn open_case_director(
    app: &App,
    tx: &mut store::Conn,
    family_ref: &str,
    kek_id: Option<i64>,
    wrapped_dek: Option<&[u8]>,
    sealed: Option<&[u8]>,
) -> Result<Option<crate::domain::enrolment::CaseDirectorDetails>, OpError> {
    let (Some(kek_id), Some(wrapped)) = (kek_id, wrapped_dek) else {
        return Ok(None);
    };
    let dek = app.keyring.dek(tx, kek_id, wrapped, family_ref).await?;
    let Some(sealed) = sealed else {
        return Ok(None);
    };
    let details: FamilyDetails = open_json(&dek, sealed, &family_place(family_ref))?;
    let d = details.case_director;
    Ok((!d.name.trim().is_empty()).then_some(d))
}

/// [`case_director`] for a mail: a family whose details cannot be opened still gets its
/// mail, without the name (the error is logged with the family reference only); only a
/// database error stops the caller.
pub(crate) async fn case_director_for_mail(
    app: &App,
    tx: &mut store::Conn,
    f: &store::families::FamilyRow,
) -> Result<Option<crate::domain::enrolment::CaseDirectorDetails>, store::StoreError> {
    for_mail(case_director(app, tx, f).await, &f.reference)
}

/// [`case_director_for_mail`] for a batch of mails: the families read in a few statements
/// (see `store::families::director_sources`), each family's data key unwrapped once. Families not found are left out.
pub(crate) async fn case_directors_for_mail(
    app: &App,
    tx: &mut store::Conn,
    family_ids: &[i64],
) -> Result<
    std::collections::HashMap<i64, Option<crate::domain::enrolment::CaseDirectorDetails>>,
    store::StoreError,
> {
    let mut ids = family_ids.to_vec();
    ids.sort_unstable();
    ids.dedup();
    let mut out = std::collections::HashMap::with_capacity(ids.len());
    for f in store::families::director_sources(tx, &ids).await? {
        let director = if f.lacks_director {
            None
        } else {
            let opened = open_case_director(
                app,
                tx,
                &f.reference,
                f.kek_id,
                f.wrapped_dek.as_deref(),
                f.sealed_details.as_deref(),
            )
            .await;
            for_mail(opened, &f.reference)?
        };
        out.insert(f.id, director);
    }
    Ok(out)
}

/// Only a database error stops a mail; any other failure to open the details is logged
/// (with the family reference only) and the mail goes without the name.
fn for_mail(
    opened: Result<Option<crate::domain::enrolment::CaseDirectorDetails>, OpError>,
    family_ref: &str,
) -> Result<Option<crate::domain::enrolment::CaseDirectorDetails>, store::StoreError> {
    match opened {
        Ok(d) => Ok(d),
        Err(OpError::Store(e @ store::StoreError::Sql(_))) => Err(e),
        Err(e) => {
            tracing::error!(family = %family_ref, error = %e, "cannot open the family's details; mail sent without the case director");
            Ok(None)
        }
    }
}

pub async fn show(app: &App, family_ref: &str) -> Result<FamilyView, OpError> {
    let mut tx = app.store.read().await?;
    let f = family_by_ref(&mut tx, family_ref, to_secs(app.now())).await?;
    let view = view(app, &mut tx, &f).await?;
    tx.commit().await?;
    // Every read of personal data leaves a trace, written before the data is handed out.
    let mut w = app.store.write().await?;
    app.audit(
        &mut w,
        &Entry {
            action: "family.read",
            family: Some(&f.reference),
            ..Default::default()
        },
    )
    .await?;
    w.commit().await?;
    Ok(view)
}

/// The decrypted record of a family read inside the caller's transaction (`show`, and
/// the dossier of a handover).
pub async fn view(
    app: &App,
    tx: &mut store::Conn,
    f: &store::families::FamilyRow,
) -> Result<FamilyView, OpError> {
    let dek = app.family_dek(tx, f).await?;
    let mut details: Option<FamilyDetails> = match (&dek, &f.sealed_details) {
        (Some(dek), Some(s)) => Some(open_json(dek, s, &family_place(&f.reference))?),
        _ => None,
    };
    // After a move the previous case director is no longer the family's: nobody is shown
    // until the receiving team's acknowledgement names the new one.
    let case_director_named = !store::handovers::lacks_case_director(tx, f.id).await?;
    if !case_director_named && let Some(d) = &mut details {
        d.case_director.name = "no case director".into();
        d.case_director.email = String::new();
    }
    let mut members = Vec::new();
    let member_rows = store::families::members(tx, f.id).await?;
    let adult_refs: std::collections::BTreeSet<String> = member_rows
        .iter()
        .filter(|m| m.role == "adult")
        .map(|m| m.reference.clone())
        .collect();
    for m in member_rows {
        let details = match (&dek, &m.sealed_details) {
            (Some(dek), Some(s)) => Some(open_json(
                dek,
                s,
                &member_place(&f.reference, &m.reference),
            )?),
            _ => None,
        };
        members.push(MemberView {
            reference: m.reference,
            role: m.role,
            details,
            left_at: m.left_at.map(from_secs).transpose()?,
            left_reason: m.left_reason,
        });
    }
    let mut checkins = Vec::new();
    for c in store::checkins::of_family(tx, f.id).await? {
        let record = match (&dek, &c.sealed_record) {
            (Some(dek), Some(s)) => Some(open_json(
                dek,
                s,
                &super::checkin::record_place(&f.reference, &c.reference),
            )?),
            _ => None,
        };
        let mut children = Vec::new();
        let mut adults = Vec::new();
        if let Some(dek) = &dek {
            for (_, member_ref, sealed) in store::checkins::observations(tx, c.id).await? {
                let row = super::checkin::observation_row(&c.reference, &member_ref);
                let place = super::checkin::observation_place(&f.reference, &row);
                let list = if adult_refs.contains(&member_ref) {
                    &mut adults
                } else {
                    &mut children
                };
                list.push(ChildObservationView {
                    observations: open_json(dek, &sealed, &place)?,
                    member: member_ref,
                });
            }
        }
        let mut attempts = Vec::new();
        for (number, at, outcome, mode, sealed) in store::checkins::attempts(tx, c.id).await? {
            let row = format!("{}/{number}", c.reference);
            let details: Option<crate::domain::recording::AttemptDetails> = match (&dek, &sealed) {
                (Some(dek), Some(s)) => Some(open_json(
                    dek,
                    s,
                    &super::checkin::attempt_place(&f.reference, &row),
                )?),
                _ => None,
            };
            attempts.push(AttemptView {
                number,
                at: from_secs(at)?,
                outcome,
                mode,
                by: details.as_ref().and_then(|d| d.by.clone()),
                notes: details.and_then(|d| d.notes),
            });
        }
        let status = c.status.clone();
        checkins.push(CheckinView {
            next_attempt_due: c
                .retry_due_at
                .filter(|_| c.status == "open")
                .map(from_secs)
                .transpose()?,
            attempts,
            id: c.reference,
            wave: c.wave,
            due: from_secs(c.due_at)?,
            status,
            reminders_sent: stage_label(c.notice_stage, c.overdue_count),
            outcome: c.outcome,
            mode: c.mode,
            contact_at: c.contact_at.map(from_secs).transpose()?,
            recorded_at: c.recorded_at.map(from_secs).transpose()?,
            record,
            children,
            adults,
        });
    }
    let flags = super::signals::of_family(app, tx, f.id).await?;
    let kept_up = super::record::record_views(tx, f.id, &f.reference, dek.as_ref()).await?;
    let team = app.team.as_deref().unwrap_or(&f.municipality);
    let case_number =
        super::record::case_number(tx, f.id, &f.reference, team, dek.as_ref()).await?;
    let evaluation = match store::closure::evaluation_of(tx, f.id).await? {
        Some((safety_improved, professionals, sealed)) => Some(Evaluation {
            safety_improved,
            professionals: u32::try_from(professionals).unwrap_or(0),
            family_view: match (&dek, sealed) {
                (Some(dek), Some(s)) => Some(open_json(dek, &s, &evaluation_place(&f.reference))?),
                _ => None,
            },
        }),
        None => None,
    };
    let close_approved_by = match (&dek, store::closure::close_approval(tx, f.id).await?) {
        (Some(dek), Some(s)) => {
            let v: serde_json::Value = open_json(dek, &s, &approval_place(&f.reference))?;
            v["approved_by"].as_str().map(str::to_string)
        }
        _ => None,
    };
    Ok(FamilyView {
        family: f.reference.clone(),
        status: f.status.clone(),
        close_reason: f.close_reason.clone(),
        // An erased family is a tombstone: no episode to show.
        episode: if f.status == "erased" {
            serde_json::Value::Null
        } else {
            serde_json::json!({"kind": f.episode_kind, "date": f.episode_date})
        },
        plan: f.plan.clone(),
        plan_end: from_secs(f.plan_end)?,
        municipality: f.municipality.clone(),
        language: f.language.clone(),
        interpreter_needed: f.interpreter_needed,
        enrolled_at: from_secs(f.enrolled_at)?,
        details,
        case_director_named,
        case_number,
        members,
        ex_partners: kept_up.ex_partners,
        safety_plan: kept_up.safety_plan,
        referrals: kept_up.referrals,
        checkins,
        flags,
        evaluation,
        close_approved_by,
    })
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Closed {
    pub family: String,
    pub status: &'static str,
    pub reason: String,
    pub checkins_cancelled: u64,
    /// A coordinator approved the closure although a red flag was open.
    pub approved: bool,
    /// The evaluation was recorded (not for `enrolled_in_error`).
    pub evaluated: bool,
    /// The coordinator who was notified.
    pub coordinator_notified: Option<String>,
}

/// What closing a plan early needs: a reason, the evaluation (except for a family enrolled
/// in error), and a coordinator's name while a red flag is open.
#[derive(Clone, Debug, Default)]
pub struct CloseRequest {
    pub reason: String,
    pub approved_by: Option<String>,
    pub evaluation: EvaluationInput,
}

/// The associated data of a sealed early-closure approval.
fn approval_place<'a>(family: &'a str) -> FieldPlace<'a> {
    FieldPlace {
        family,
        table: "families",
        column: "sealed_close_approval",
        row: family,
    }
}

fn evaluation_place<'a>(family: &'a str) -> FieldPlace<'a> {
    FieldPlace {
        family,
        table: "evaluations",
        column: "sealed_view",
        row: family,
    }
}

fn check_approver(approved_by: Option<&str>, e: &mut Vec<FieldError>) -> Option<String> {
    let name = approved_by.map(str::trim)?;
    if name.is_empty() || name.chars().count() > 120 || name.chars().any(char::is_control) {
        e.push(FieldError::new(
            "approved_by",
            "the approving coordinator's name, 1 to 120 characters",
        ));
        return None;
    }
    Some(name.to_string())
}

async fn store_evaluation(
    app: &App,
    tx: &mut store::Tx,
    f: &store::families::FamilyRow,
    ev: &Evaluation,
    now: i64,
) -> Result<bool, OpError> {
    let sealed = match (&ev.family_view, app.family_dek(tx, f).await?) {
        (Some(view), Some(dek)) => Some(seal_json(&dek, view, &evaluation_place(&f.reference))?),
        (Some(_), None) => {
            return Err(OpError::Conflict(format!(
                "family {} has no data key left; its view cannot be sealed",
                f.reference
            )));
        }
        (None, _) => None,
    };
    Ok(store::closure::insert_evaluation(
        tx,
        &store::closure::NewEvaluation {
            family_id: f.id,
            recorded_at: now,
            safety_improved: &ev.safety_improved,
            professionals: i64::from(ev.professionals),
            sealed_view: sealed.as_deref(),
        },
    )
    .await?)
}

/// Closes a plan before its term; only with one of [`CLOSE_REASONS`] and the evaluation.
/// Refused while a red flag is open unless a coordinator approves (`approved_by`, sealed);
/// the responsible municipality's coordinator is notified in the same transaction.
pub async fn close(app: &App, family_ref: &str, req: &CloseRequest) -> Result<Closed, OpError> {
    let reason = req.reason.as_str();
    let mut errors = Vec::new();
    if !CLOSE_REASONS.contains(&reason) {
        errors.push(FieldError::new(
            "reason",
            format!("expected one of: {}", CLOSE_REASONS.join(", ")),
        ));
    }
    let approver = check_approver(req.approved_by.as_deref(), &mut errors);
    // A family enrolled in error has nothing to evaluate.
    let evaluation = if reason == "enrolled_in_error" {
        None
    } else {
        match crate::domain::evaluation::validate(&req.evaluation) {
            Ok(ev) => Some(ev),
            Err(e) => {
                errors.extend(e);
                None
            }
        }
    };
    if !errors.is_empty() {
        return Err(OpError::Invalid(errors));
    }
    let now_at = app.now();
    let now = to_secs(now_at);
    let mut tx = app.store.write().await?;
    let f = family_by_ref(&mut tx, family_ref, now).await?;
    app.require_responsible(&f)?;
    if f.status != "running" {
        return Err(OpError::Conflict(format!(
            "family {} is {}, not running",
            f.reference, f.status
        )));
    }
    let red = store::closure::unresolved_red_flags(&mut tx, f.id).await?;
    if red > 0 && approver.is_none() {
        return Err(OpError::Conflict(format!(
            "family {} has a red flag that is not resolved: closing early needs a coordinator's approval (--approved-by NAME; API: approved_by)",
            f.reference
        )));
    }
    super::invites::cancel_family(
        app,
        &mut tx,
        f.id,
        &f.reference,
        &f.municipality,
        crate::mail::ics::Why::Closed,
        now_at,
    )
    .await?;
    let cancelled = store::families::close_early(&mut tx, f.id, reason, now).await?;
    if let Some(name) = &approver {
        let Some(dek) = app.family_dek(&mut tx, &f).await? else {
            return Err(OpError::Conflict(format!(
                "family {} has no data key left; the approval cannot be sealed",
                f.reference
            )));
        };
        let sealed = seal_json(
            &dek,
            &serde_json::json!({"approved_by": name, "at": now_at}),
            &approval_place(&f.reference),
        )?;
        store::closure::set_close_approval(&mut tx, f.id, &sealed).await?;
    }
    let evaluated = match &evaluation {
        Some(ev) => store_evaluation(app, &mut tx, &f, ev, now).await?,
        None => false,
    };
    let coordinator = match app.config.municipality(&f.municipality) {
        Some(m) => {
            let lang = app.config.mail.language;
            let closed_on = crate::mail::words::day(now_at, app.config.timezone, lang);
            let (subject, body) = crate::mail::closure::closure_notice(
                lang,
                &crate::mail::closure::ClosureFacts {
                    family: &f.reference,
                    municipality_code: &m.code,
                    municipality_name: &m.name,
                    reason,
                    closed_on: &closed_on,
                    approved_over_red_flag: red > 0,
                    checkins_cancelled: cancelled,
                    coordinator_name: m.coordinator_name.as_deref(),
                    coordinator_email: &m.coordinator_email,
                },
            );
            store::outbox::enqueue(
                &mut tx,
                &store::outbox::NewMessage {
                    key: &format!("{}:{}", crate::mail::closure::KIND, f.reference),
                    kind: crate::mail::closure::KIND,
                    family_ref: Some(&f.reference),
                    recipients: std::slice::from_ref(&m.coordinator_email),
                    cc: &[],
                    subject: &subject,
                    body: &body,
                    attachments: &[],
                    now,
                },
            )
            .await?;
            Some(m.coordinator_email.clone())
        }
        None => None,
    };
    let detail = format!(
        "{reason};approved={};evaluated={evaluated}",
        approver.is_some()
    );
    app.audit(
        &mut tx,
        &Entry {
            action: "family.close",
            family: Some(&f.reference),
            detail: Some(&detail),
            ..Default::default()
        },
    )
    .await?;
    tx.commit().await?;
    tracing::info!(family = %f.reference, reason, cancelled, approved = approver.is_some(), "plan closed early");
    Ok(Closed {
        family: f.reference,
        status: "closed_early",
        reason: reason.to_string(),
        checkins_cancelled: cancelled,
        approved: approver.is_some(),
        evaluated,
        coordinator_notified: coordinator,
    })
}

/// What `family evaluate` answers.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Evaluated {
    pub family: String,
    pub status: String,
    pub safety_improved: String,
    pub professionals: u32,
}

/// Records the evaluation of a plan that ended (at its term, or early without one yet).
pub async fn evaluate(
    app: &App,
    family_ref: &str,
    input: &EvaluationInput,
) -> Result<Evaluated, OpError> {
    let ev = crate::domain::evaluation::validate(input).map_err(OpError::Invalid)?;
    let now = to_secs(app.now());
    let mut tx = app.store.write().await?;
    let f = family_by_ref(&mut tx, family_ref, now).await?;
    app.require_responsible(&f)?;
    if f.status != "completed" && f.status != "closed_early" {
        return Err(OpError::Conflict(format!(
            "family {} is {}; an evaluation is recorded when the plan has ended",
            f.reference, f.status
        )));
    }
    if f.close_reason.as_deref() == Some("enrolled_in_error") {
        return Err(OpError::Conflict(format!(
            "family {} was enrolled in error; there is nothing to evaluate",
            f.reference
        )));
    }
    if !store_evaluation(app, &mut tx, &f, &ev, now).await? {
        return Err(OpError::Conflict(format!(
            "family {} has an evaluation already",
            f.reference
        )));
    }
    app.audit(
        &mut tx,
        &Entry {
            action: "family.evaluate",
            family: Some(&f.reference),
            detail: Some(&ev.safety_improved),
            ..Default::default()
        },
    )
    .await?;
    tx.commit().await?;
    Ok(Evaluated {
        family: f.reference,
        status: f.status,
        safety_improved: ev.safety_improved,
        professionals: ev.professionals,
    })
}

/// Why a family's data may be erased.
pub const ERASE_REASONS: &[&str] = &[
    "data_subject_request",
    "retention",
    "enrolled_in_error",
    "legal_obligation",
];
