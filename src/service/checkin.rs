//! Recording what was seen at a check-in, and listing what is due.

use super::{App, OpError, seal_json};
use crate::audit::Entry;
use crate::crypto::FieldPlace;
use crate::domain::FieldError;
use crate::domain::recording::{AttemptDetails, CheckinRecord, Outcome, RecordDetails};
use crate::store::{self, from_secs, to_secs};
use chrono::{DateTime, Utc};
use serde::Serialize;

pub(crate) fn record_place<'a>(family: &'a str, checkin: &'a str) -> FieldPlace<'a> {
    FieldPlace {
        family,
        table: "checkins",
        column: "sealed_record",
        row: checkin,
    }
}

/// Observations are bound to both the check-in and the child, so a child's values cannot be
/// moved to a sibling or another moment: the row is `checkin/member`.
pub(crate) fn observation_row(checkin: &str, member: &str) -> String {
    format!("{checkin}/{member}")
}

pub(crate) fn observation_place<'a>(family: &'a str, row: &'a str) -> FieldPlace<'a> {
    FieldPlace {
        family,
        table: "observations",
        column: "sealed_values",
        row,
    }
}

/// Where an attempt's sealed details are bound: the check-in and the attempt's number.
pub(crate) fn attempt_place<'a>(family: &'a str, row: &'a str) -> FieldPlace<'a> {
    FieldPlace {
        family,
        table: "checkin_attempts",
        column: "sealed_details",
        row,
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct NextCheckin {
    pub id: String,
    pub due: DateTime<Utc>,
}

/// What `checkin record` answers.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RecordedCheckin {
    pub checkin: String,
    pub family: String,
    /// `recorded`; `open` after a failed attempt with attempts left; `missed` after the last.
    pub status: &'static str,
    pub outcome: &'static str,
    /// The number of this attempt (1 for the first).
    pub attempt: i64,
    /// After a failed attempt with attempts left: when the next one is due.
    pub next_attempt_due: Option<DateTime<Utc>>,
    pub plan_status: String,
    pub next_checkin: Option<NextCheckin>,
    /// Flags this record raised.
    pub flags: Vec<super::signals::Raised>,
}

/// Records one contact attempt of a check-in. `reached` and `declined` record the check-in:
/// its reminders stop, the schedule goes on. `not_reached` keeps it open, with the next
/// attempt due `reminders.retry_after` later and its own reminder, until
/// `reminders.max_attempts` failed: then the check-in is missed and escalated to the
/// coordinator. Every attempt is kept (who tried is sealed). A recorded check-in is not
/// recorded again; a refused record changes nothing. `checkin record`, `checkin attempt`,
/// the API and the workspace all call this one function.
pub async fn record(app: &App, r: &CheckinRecord) -> Result<RecordedCheckin, OpError> {
    let now = app.now();
    r.validate(now).map_err(OpError::Invalid)?;
    check_against_indicators(app, r)?;
    let not_found = || OpError::NotFound {
        what: "check-in",
        reference: r.checkin.clone(),
    };
    let mut tx = app.store.write().await?;
    let c = store::checkins::by_ref(&mut tx, &r.checkin)
        .await?
        .ok_or_else(not_found)?;
    let f = store::families::by_id(&mut tx, c.family_id, to_secs(now))
        .await?
        .ok_or_else(not_found)?;
    app.require_responsible(&f)?;
    match c.status.as_str() {
        "open" | "lapsed" => {}
        "recorded" => {
            return Err(OpError::Conflict(format!(
                "check-in {} is already recorded",
                c.reference
            )));
        }
        other => {
            return Err(OpError::Conflict(format!(
                "check-in {} is {other}",
                c.reference
            )));
        }
    }
    if f.status != "running" {
        return Err(OpError::Conflict(format!(
            "family {} is {}",
            f.reference, f.status
        )));
    }
    let at = r.at.with_timezone(&Utc);
    let plan_start = chrono::NaiveDate::parse_from_str(&f.episode_date, "%Y-%m-%d")
        .map_err(|_| store::StoreError::Corrupt("episode date".into()))?;
    if at.with_timezone(&app.config.timezone).date_naive() < plan_start {
        return Err(OpError::invalid(
            "at",
            "before the start of the family's plan",
        ));
    }
    let members = store::families::members(&mut tx, f.id).await?;
    let partners = store::household::ex_partners(&mut tx, f.id).await?;
    let mut child_ids = Vec::with_capacity(r.children.len());
    let mut errors = Vec::new();
    for (i, child) in r.children.iter().enumerate() {
        match members.iter().find(|m| m.reference == child.member) {
            Some(m) if m.left_at.is_some() => errors.push(FieldError::new(
                format!("children[{i}].member"),
                "left the household; no longer observed",
            )),
            Some(m) if m.role == "child" => child_ids.push(m.id),
            Some(_) => errors.push(FieldError::new(
                format!("children[{i}].member"),
                "is not a child",
            )),
            None if partners.iter().any(|x| x.reference == child.member) => {
                errors.push(FieldError::new(
                    format!("children[{i}].member"),
                    "an ex-partner is never observed",
                ))
            }
            None => errors.push(FieldError::new(
                format!("children[{i}].member"),
                "not a member of this check-in's family",
            )),
        }
    }
    let mut adult_ids = Vec::with_capacity(r.adults.len());
    for (i, adult) in r.adults.iter().enumerate() {
        let field = format!("adults[{i}].member");
        match members.iter().find(|m| m.reference == adult.member) {
            Some(m) if m.left_at.is_some() => errors.push(FieldError::new(
                field,
                "left the household; no longer observed",
            )),
            Some(m) if m.role == "adult" => adult_ids.push(m.id),
            Some(_) => errors.push(FieldError::new(field, "is not an adult")),
            None if partners.iter().any(|x| x.reference == adult.member) => {
                errors.push(FieldError::new(field, "an ex-partner is never observed"))
            }
            None => errors.push(FieldError::new(
                field,
                "not a member of this check-in's family",
            )),
        }
    }
    if !errors.is_empty() {
        return Err(OpError::Invalid(errors));
    }
    let Some(dek) = app.family_dek(&mut tx, &f).await? else {
        return Err(OpError::Conflict(format!(
            "family {} is erased",
            f.reference
        )));
    };
    let policy = &app.config.reminders;
    let number = c.attempts + 1;
    let attempt_row = format!("{}/{number}", c.reference);
    let attempt_sealed = seal_json(
        &dek,
        &AttemptDetails {
            by: r.by.clone(),
            notes: r.notes.clone(),
        },
        &attempt_place(&f.reference, &attempt_row),
    )?;
    let kept = store::checkins::insert_attempt(
        &mut tx,
        &store::checkins::NewAttempt {
            checkin_id: c.id,
            number,
            at: to_secs(at),
            recorded_at: to_secs(now),
            outcome: r.outcome.code(),
            mode: r.mode.code(),
            sealed_details: &attempt_sealed,
        },
    )
    .await?;
    if !kept {
        return Err(OpError::Conflict(format!(
            "check-in {} was changed at the same time; try again",
            c.reference
        )));
    }
    super::record::add_referrals(
        app,
        &mut tx,
        &f,
        &dek,
        &r.referrals,
        Some(&c.reference),
        to_secs(now),
    )
    .await?;
    let attempts_left = i64::from(policy.max_attempts) > number;
    if r.outcome == Outcome::NotReached && attempts_left {
        let retry = policy
            .retry_after
            .add_to(at)
            .ok_or_else(|| OpError::invalid("at", "out of range"))?;
        if !store::checkins::set_retry(&mut tx, c.id, to_secs(at), to_secs(retry)).await? {
            return Err(OpError::Conflict(format!(
                "check-in {} is already recorded",
                c.reference
            )));
        }
        let detail = format!("not_reached {number}/{}", policy.max_attempts);
        app.audit(
            &mut tx,
            &Entry {
                action: "checkin.attempt",
                family: Some(&f.reference),
                subject: Some(&c.reference),
                detail: Some(&detail),
            },
        )
        .await?;
        tx.commit().await?;
        tracing::info!(checkin = %c.reference, family = %f.reference, attempt = number, "contact attempt recorded; check-in stays open");
        return Ok(RecordedCheckin {
            checkin: c.reference,
            family: f.reference,
            status: "open",
            outcome: r.outcome.code(),
            attempt: number,
            next_attempt_due: Some(retry),
            plan_status: f.status,
            next_checkin: None,
            flags: Vec::new(),
        });
    }
    let missed = r.outcome == Outcome::NotReached;
    let details = RecordDetails {
        family_observations: r.family_observations.clone(),
        notes: r.notes.clone(),
    };
    let sealed = seal_json(&dek, &details, &record_place(&f.reference, &c.reference))?;
    let stored = store::checkins::record(
        &mut tx,
        &store::checkins::Recorded {
            id: c.id,
            contact_at: to_secs(at),
            recorded_at: to_secs(now),
            outcome: r.outcome.code(),
            mode: r.mode.code(),
            sealed_record: &sealed,
        },
    )
    .await?;
    if !stored {
        return Err(OpError::Conflict(format!(
            "check-in {} is already recorded",
            c.reference
        )));
    }
    if c.last_notice_at.is_some() || c.attempts > 0 {
        super::invites::cancel(
            app,
            &mut tx,
            &super::invites::Cancel {
                family: Some(&f.reference),
                municipality: &f.municipality,
                checkin: &c.reference,
                sequence: u32::try_from(number).unwrap_or(u32::MAX),
                due: from_secs(c.retry_due_at.unwrap_or(c.due_at))?,
                why: if missed {
                    crate::mail::ics::Why::Missed
                } else {
                    crate::mail::ics::Why::Recorded
                },
            },
            now,
        )
        .await?;
    }
    if missed {
        store::checkins::mark_missed(&mut tx, c.id, to_secs(now)).await?;
        enqueue_missed(app, &mut tx, &f, &c, number, now).await?;
    }
    if r.outcome == Outcome::Reached {
        store::families::note_reached(&mut tx, f.id, to_secs(at)).await?;
    }
    let observed = r
        .children
        .iter()
        .zip(child_ids)
        .chain(r.adults.iter().zip(adult_ids));
    for (child, member_id) in observed {
        let row = observation_row(&c.reference, &child.member);
        let sealed = seal_json(
            &dek,
            &child.observations,
            &observation_place(&f.reference, &row),
        )?;
        store::checkins::insert_observation(&mut tx, c.id, member_id, &sealed).await?;
    }
    let flags = super::signals::evaluate_family(
        app,
        &mut tx,
        &f,
        &dek,
        now,
        super::signals::Trigger::Recorded(c.id),
    )
    .await?;
    let completed = store::families::complete_if_done(&mut tx, f.id, to_secs(now)).await?;
    app.audit(
        &mut tx,
        &Entry {
            action: "checkin.record",
            family: Some(&f.reference),
            subject: Some(&c.reference),
            detail: Some(r.outcome.code()),
        },
    )
    .await?;
    let next = store::checkins::of_family(&mut tx, f.id)
        .await?
        .into_iter()
        .find(|n| n.status == "open");
    let next_checkin = match next {
        Some(n) => Some(NextCheckin {
            id: n.reference,
            due: from_secs(n.due_at)?,
        }),
        None => None,
    };
    tx.commit().await?;
    tracing::info!(checkin = %c.reference, family = %f.reference, outcome = r.outcome.code(), "check-in recorded");
    Ok(RecordedCheckin {
        checkin: c.reference,
        family: f.reference,
        status: if missed { "missed" } else { "recorded" },
        outcome: r.outcome.code(),
        attempt: number,
        next_attempt_due: None,
        plan_status: if completed {
            "completed".into()
        } else {
            f.status
        },
        next_checkin,
        flags,
    })
}

/// Every allowed attempt failed: the coordinator is told (cc the team), in the caller's
/// transaction, once per check-in.
async fn enqueue_missed(
    app: &App,
    tx: &mut store::Conn,
    f: &store::families::FamilyRow,
    c: &store::checkins::CheckinRow,
    attempts: i64,
    now: DateTime<Utc>,
) -> Result<(), OpError> {
    use crate::mail::contact::{AttemptFacts, ContactMail, contact};
    let cfg = &app.config;
    let Some(muni) = cfg.addressee(&f.municipality) else {
        tracing::error!(checkin = %c.reference, municipality = %f.municipality, "municipality missing from config; missed check-in not escalated");
        return Ok(());
    };
    let due = from_secs(c.retry_due_at.unwrap_or(c.due_at))?;
    let lang = cfg.mail.language;
    let link = crate::mail::workspace::url(
        &cfg.web.base_url,
        &format!("/team/checkins/{}", c.reference),
    );
    let director = super::family::case_director_for_mail(app, tx, f).await?;
    let facts = crate::mail::ReminderFacts {
        family: &f.reference,
        checkin: &c.reference,
        wave: u32::try_from(c.wave).unwrap_or(0),
        plan: cfg.mail.plan_label(&f.plan, lang),
        municipality_code: &muni.code,
        municipality_name: &muni.name,
        due,
        deadline: cfg.reminders.overdue_after.add_to(due).unwrap_or(due),
        timezone: cfg.timezone,
        contact_language: &f.language,
        interpreter_needed: f.interpreter_needed,
        overdue_count: 0,
        coordinator_name: muni.coordinator_name.as_deref(),
        coordinator_email: &muni.coordinator_email,
        talking_points: cfg.mail.talking_points(lang),
        link: Some(&link),
        case_director: director
            .as_ref()
            .map(|d| crate::mail::templates::CaseDirectorContact {
                name: &d.name,
                email: &d.email,
            }),
    };
    let attempts = u32::try_from(attempts).unwrap_or(u32::MAX);
    let (subject, body) = contact(
        ContactMail::Missed,
        cfg.mail.language,
        &AttemptFacts {
            reminder: &facts,
            attempts,
            max_attempts: cfg.reminders.max_attempts,
        },
    );
    let cc = if muni.team_email == muni.coordinator_email {
        vec![]
    } else {
        vec![muni.team_email.clone()]
    };
    store::outbox::enqueue(
        tx,
        &store::outbox::NewMessage {
            key: &format!("missed:{}", c.reference),
            kind: ContactMail::Missed.code(),
            family_ref: Some(&f.reference),
            recipients: std::slice::from_ref(&muni.coordinator_email),
            cc: &cc,
            subject: &subject,
            body: &body,
            attachments: &[],
            now: to_secs(now),
        },
    )
    .await?;
    Ok(())
}

/// Observations must match the configured indicators: known code, for the right subject,
/// the right type, in range. Checked before the transaction; errors name the field only.
fn check_against_indicators(app: &App, r: &CheckinRecord) -> Result<(), OpError> {
    use crate::domain::signals::{Scope, check_observations};
    let catalog = &app.config.signals;
    let mut errors = Vec::new();
    check_observations(
        catalog,
        Scope::Family,
        "family_observations",
        &r.family_observations,
        &mut errors,
    );
    for (i, c) in r.children.iter().enumerate() {
        check_observations(
            catalog,
            Scope::Child,
            &format!("children[{i}].observations"),
            &c.observations,
            &mut errors,
        );
    }
    for (i, a) in r.adults.iter().enumerate() {
        check_observations(
            catalog,
            Scope::Adult,
            &format!("adults[{i}].observations"),
            &a.observations,
            &mut errors,
        );
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(OpError::Invalid(errors))
    }
}

/// One line of `checkin due`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DueLine {
    pub checkin: String,
    pub family: String,
    pub wave: i64,
    pub due: DateTime<Utc>,
    pub due_local: String,
    pub municipality: String,
    /// `upcoming`, `due` or `overdue` at the clock's instant.
    pub state: &'static str,
    pub reminders_sent: i64,
}

/// Open check-ins due by `before` (default `now + reminders.lead`), optionally for one
/// municipality.
pub async fn due(
    app: &App,
    municipality: Option<&str>,
    before: Option<DateTime<Utc>>,
) -> Result<Vec<DueLine>, OpError> {
    let cfg = &app.config;
    if let Some(m) = municipality
        && !cfg.municipalities.contains_key(m)
    {
        return Err(OpError::invalid("municipality", "unknown municipality"));
    }
    let now = app.now();
    let horizon = before.unwrap_or_else(|| cfg.reminders.lead.add_to(now).unwrap_or(now));
    let overdue_from = |due: DateTime<Utc>| cfg.reminders.overdue_after.add_to(due).unwrap_or(due);
    let mut tx = app.store.read().await?;
    let rows = store::checkins::due(&mut tx, to_secs(horizon), municipality).await?;
    tx.commit().await?;
    rows.into_iter()
        .map(|d| {
            let due = from_secs(d.due_at)?;
            let state = if now < due {
                "upcoming"
            } else if now < overdue_from(due) {
                "due"
            } else {
                "overdue"
            };
            Ok(DueLine {
                checkin: d.checkin,
                family: d.family,
                wave: d.wave,
                due,
                due_local: local_label(due, cfg.timezone),
                municipality: d.municipality,
                state,
                reminders_sent: i64::from(d.notice_stage > 0) + d.overdue_count,
            })
        })
        .collect()
}

/// How due instants are shown to teams: local wall time and the zone's name.
pub fn local_label(t: DateTime<Utc>, tz: chrono_tz::Tz) -> String {
    format!(
        "{} ({})",
        t.with_timezone(&tz).format("%Y-%m-%d %H:%M"),
        tz.name()
    )
}
