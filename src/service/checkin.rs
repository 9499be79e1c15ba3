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
///
/// What the record reads about the family (check-in, family, members, ex-partners, earlier
/// check-ins and observations) is read in one round trip on a pool connection (see
/// `store::checkin_family`), and everything is sealed and checked before the write
/// transaction: on SQLite every write runs on one writer
/// connection, one statement after another, so reads there would hold up every other
/// writer. The write transaction first claims the family's version that was read (one
/// conditional UPDATE; triggers move it on with every change to what was read). Should the
/// family have changed in between, the record reads and prepares again inside the write
/// transaction, where nothing else can change it: the rules never evaluate a stale family,
/// and the request still takes one write transaction.
pub async fn record(app: &App, r: &CheckinRecord) -> Result<RecordedCheckin, OpError> {
    let now = app.now();
    r.validate(now).map_err(OpError::Invalid)?;
    check_against_indicators(app, r)?;
    let plan = {
        // No read transaction: the mark read first makes the reads as good as one (see
        // `store::checkin_family`), and spares two round trips.
        let mut conn = app.store.conn().await?;
        let facts = Facts::read(app, &mut conn, r, now).await?;
        drop(conn);
        Plan::make(app, r, facts, now)?
    };
    between_read_and_write().await;
    let mut tx = app.store.write().await?;
    let plan = if plan.claim(&mut tx).await? {
        plan
    } else {
        tracing::debug!(checkin = %r.checkin, "family changed since it was read; reading it again in the write transaction");
        let facts = Facts::read(app, &mut tx, r, now).await?;
        let fresh = Plan::make(app, r, facts, now)?;
        if !fresh.claim(&mut tx).await? {
            return Err(OpError::Conflict(format!(
                "family {} was changed at the same time; try again",
                fresh.f.reference
            )));
        }
        fresh
    };
    plan.write(app, tx, r, now).await
}

/// What a record reads about its check-in's family, with the family's data key.
struct Facts {
    rows: store::checkin_family::CheckinFamily,
    dek: Option<crate::crypto::Dek>,
}

impl Facts {
    async fn read(
        app: &App,
        conn: &mut store::Conn,
        r: &CheckinRecord,
        now: DateTime<Utc>,
    ) -> Result<Facts, OpError> {
        let rows = store::checkin_family::read(conn, &r.checkin, to_secs(now))
            .await?
            .ok_or_else(|| OpError::NotFound {
                what: "check-in",
                reference: r.checkin.clone(),
            })?;
        let dek = app.family_dek(conn, &rows.family).await?;
        Ok(Facts { rows, dek })
    }
}

/// A record checked and sealed from [`Facts`], ready to be written.
struct Plan {
    c: store::checkins::CheckinRow,
    f: store::families::FamilyRow,
    version: i64,
    /// A reached contact's instant, noted on the family by the claim.
    reached_at: Option<i64>,
    dek: crate::crypto::Dek,
    number: i64,
    at: DateTime<Utc>,
    attempt_sealed: Vec<u8>,
    kind: PlanKind,
}

enum PlanKind {
    /// A failed attempt with attempts left: the check-in stays open until `retry`.
    Retry { retry: DateTime<Utc> },
    /// The check-in is recorded (or missed, after the last failed attempt).
    Record(Box<Recording>),
}

struct Recording {
    missed: bool,
    sealed: Vec<u8>,
    /// (member id, sealed observations), children then adults.
    observations: Vec<(i64, Vec<u8>)>,
    /// The family as the rules see it once this record is written.
    history: super::signals::History,
    next_checkin: Option<NextCheckin>,
    /// No check-in of the family is open any more: the plan may be complete.
    none_open: bool,
}

impl Plan {
    /// Checks the record against the facts and seals what it stores.
    fn make(
        app: &App,
        r: &CheckinRecord,
        facts: Facts,
        now: DateTime<Utc>,
    ) -> Result<Plan, OpError> {
        let Facts {
            rows:
                store::checkin_family::CheckinFamily {
                    mark,
                    checkin: c,
                    family: f,
                    members,
                    partners,
                    mut checkins,
                    mut observations,
                },
            dek,
        } = facts;
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
        let (child_ids, adult_ids) = observed_members(r, &members, &partners)?;
        let Some(dek) = dek else {
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
        let attempts_left = i64::from(policy.max_attempts) > number;
        let kind = if r.outcome == Outcome::NotReached && attempts_left {
            let retry = policy
                .retry_after
                .add_to(at)
                .ok_or_else(|| OpError::invalid("at", "out of range"))?;
            PlanKind::Retry { retry }
        } else {
            let missed = r.outcome == Outcome::NotReached;
            let details = RecordDetails {
                family_observations: r.family_observations.clone(),
                notes: r.notes.clone(),
            };
            let sealed = seal_json(&dek, &details, &record_place(&f.reference, &c.reference))?;
            let mut sealed_observations = Vec::with_capacity(child_ids.len() + adult_ids.len());
            let observed = r
                .children
                .iter()
                .zip(child_ids)
                .chain(r.adults.iter().zip(adult_ids));
            for (child, member_id) in observed {
                let row = observation_row(&c.reference, &child.member);
                let values = seal_json(
                    &dek,
                    &child.observations,
                    &observation_place(&f.reference, &row),
                )?;
                observations.push((c.id, member_id, child.member.clone(), values.clone()));
                sealed_observations.push((member_id, values));
            }
            // The family's check-ins as they will stand: this one recorded (or missed).
            for row in checkins.iter_mut().filter(|row| row.id == c.id) {
                row.status = if missed { "missed" } else { "recorded" }.into();
                row.outcome = Some(r.outcome.code().into());
                row.sealed_record = Some(sealed.clone());
                row.attempts = number;
            }
            let last_reached = match (r.outcome == Outcome::Reached, mark.last_reached_at) {
                (true, Some(t)) => Some(t.max(to_secs(at))),
                (true, None) => Some(to_secs(at)),
                (false, t) => t,
            };
            let history = super::signals::History::build(
                app,
                &f,
                &dek,
                &checkins,
                &observations,
                &members,
                last_reached.unwrap_or(f.enrolled_at),
                now,
                true,
            )?;
            let next = checkins.iter().find(|n| n.status == "open");
            let next_checkin = match next {
                Some(n) => Some(NextCheckin {
                    id: n.reference.clone(),
                    due: from_secs(n.due_at)?,
                }),
                None => None,
            };
            PlanKind::Record(Box::new(Recording {
                missed,
                sealed,
                observations: sealed_observations,
                history,
                none_open: next.is_none(),
                next_checkin,
            }))
        };
        Ok(Plan {
            reached_at: (r.outcome == Outcome::Reached).then(|| to_secs(at)),
            c,
            f,
            version: mark.version,
            dek,
            number,
            at,
            attempt_sealed,
            kind,
        })
    }

    /// Claims the family at the version the plan was made from (noting a reached contact);
    /// `false` if it changed since.
    async fn claim(&self, tx: &mut store::Conn) -> Result<bool, OpError> {
        Ok(store::families::claim(tx, self.f.id, self.version, self.reached_at).await?)
    }

    /// Writes the record in the write transaction that claimed the family, and commits.
    async fn write(
        self,
        app: &App,
        mut tx: store::Tx,
        r: &CheckinRecord,
        now: DateTime<Utc>,
    ) -> Result<RecordedCheckin, OpError> {
        let Plan {
            c,
            f,
            dek,
            number,
            at,
            attempt_sealed,
            kind,
            ..
        } = self;
        let policy = &app.config.reminders;
        // Referrals first: they number themselves with a statement of their own. The attempt,
        // the check-in's new state, the observations and the audit entry then go in one
        // round trip (see `store::round_trip::Script`).
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
        let mut script = store::round_trip::Script::new();
        let attempt = store::checkins::push_attempt(
            &mut script,
            &store::checkins::NewAttempt {
                checkin_id: c.id,
                number,
                at: to_secs(at),
                recorded_at: to_secs(now),
                outcome: r.outcome.code(),
                mode: r.mode.code(),
                sealed_details: &attempt_sealed,
            },
        );
        // The attempt must have been kept (not a concurrent record's number) and the check-in's
        // new state applied (it was still open or lapsed).
        let applied = |changed: &[u64], state: usize| {
            if changed.get(attempt) != Some(&1) {
                Err(OpError::Conflict(format!(
                    "check-in {} was changed at the same time; try again",
                    c.reference
                )))
            } else if changed.get(state) != Some(&1) {
                Err(OpError::Conflict(format!(
                    "check-in {} is already recorded",
                    c.reference
                )))
            } else {
                Ok(())
            }
        };
        let rec = match kind {
            PlanKind::Retry { retry } => {
                let retried = store::checkins::push_retry(
                    &mut script,
                    c.id,
                    to_secs(at),
                    to_secs(retry),
                    number,
                );
                let detail = format!("not_reached {number}/{}", policy.max_attempts);
                let changed = app
                    .audited(
                        &mut tx,
                        script,
                        &Entry {
                            action: "checkin.attempt",
                            family: Some(&f.reference),
                            subject: Some(&c.reference),
                            detail: Some(&detail),
                        },
                    )
                    .await?;
                applied(&changed, retried)?;
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
            PlanKind::Record(rec) => rec,
        };
        let stored = store::checkins::push_record(
            &mut script,
            &store::checkins::Recorded {
                id: c.id,
                contact_at: to_secs(at),
                recorded_at: to_secs(now),
                outcome: r.outcome.code(),
                mode: r.mode.code(),
                sealed_record: &rec.sealed,
                attempts: number,
            },
        );
        store::checkins::push_observations(&mut script, c.id, &rec.observations);
        let changed = app
            .audited(
                &mut tx,
                script,
                &Entry {
                    action: "checkin.record",
                    family: Some(&f.reference),
                    subject: Some(&c.reference),
                    detail: Some(r.outcome.code()),
                },
            )
            .await?;
        applied(&changed, stored)?;
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
                    why: if rec.missed {
                        crate::mail::ics::Why::Missed
                    } else {
                        crate::mail::ics::Why::Recorded
                    },
                },
                now,
            )
            .await?;
        }
        if rec.missed {
            store::checkins::mark_missed(&mut tx, c.id, to_secs(now)).await?;
            enqueue_missed(app, &mut tx, &f, &c, number, now).await?;
        }
        let flags = super::signals::raise(
            app,
            &mut tx,
            &f,
            &dek,
            &rec.history,
            now,
            super::signals::Trigger::Recorded(c.id),
        )
        .await?;
        // The claim holds the family at what was read: with no check-in open, the plan may
        // be complete; with one open, it is not.
        let completed =
            rec.none_open && store::families::complete_if_done(&mut tx, f.id, to_secs(now)).await?;
        tx.commit().await?;
        tracing::info!(checkin = %c.reference, family = %f.reference, outcome = r.outcome.code(), "check-in recorded");
        Ok(RecordedCheckin {
            checkin: c.reference,
            family: f.reference,
            status: if rec.missed { "missed" } else { "recorded" },
            outcome: r.outcome.code(),
            attempt: number,
            next_attempt_due: None,
            plan_status: if completed {
                "completed".into()
            } else {
                f.status
            },
            next_checkin: rec.next_checkin,
            flags,
        })
    }
}

/// The member ids of the observed children and adults, or why a named member cannot be
/// observed.
fn observed_members(
    r: &CheckinRecord,
    members: &[store::families::MemberRow],
    partners: &[store::household::ExPartnerRow],
) -> Result<(Vec<i64>, Vec<i64>), OpError> {
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
    if errors.is_empty() {
        Ok((child_ids, adult_ids))
    } else {
        Err(OpError::Invalid(errors))
    }
}

/// Work to run between a record's read and write phases.
type Between = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

tokio::task_local! {
    static BETWEEN_READ_AND_WRITE: std::sync::Mutex<Option<Between>>;
}

/// For tests: runs `work` so that the first record it makes runs `between` after reading
/// the family and before its write transaction (e.g. another record of the same family),
/// to check that the record sees that change. Outside it, records run straight through.
#[doc(hidden)]
pub async fn with_work_between_read_and_write<F: std::future::Future>(
    between: Between,
    work: F,
) -> F::Output {
    BETWEEN_READ_AND_WRITE
        .scope(std::sync::Mutex::new(Some(between)), work)
        .await
}

async fn between_read_and_write() {
    let between = BETWEEN_READ_AND_WRITE
        .try_with(|b| match b.lock() {
            Ok(mut b) => b.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        })
        .ok()
        .flatten();
    if let Some(work) = between {
        work.await;
    }
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
