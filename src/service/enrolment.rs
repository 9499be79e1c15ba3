//! Enrolling families: the one implementation behind `family enroll` (a batch of one) and
//! `family import` (batches of [`super::import::BATCH`]).
//!
//! Every family of a batch is checked ([`check`]) and then sealed in memory before anything
//! is written, so once writing starts no rule can refuse one; [`write`] then stores the
//! whole batch with a handful of multi-row statements in the caller's transaction, which
//! commits it whole or not at all. Each statement is a round trip to the database (on
//! SQLite one between threads), so a batch costs about ten of them, not twenty per family.

use super::family::{Enrolled, EnrolledMember, ScheduledCheckin, family_place, member_place};
use super::{App, OpError, seal_json};
use crate::audit::Entry;
use crate::crypto::{Dek, Kek};
use crate::domain::enrolment::Enrolment;
use crate::domain::plan::Slot;
use crate::domain::reference;
use crate::domain::reminder::{Stage, next_notice_at};
use crate::store::{self, to_secs};
use chrono::{DateTime, Utc};
use std::collections::HashSet;

/// How often a family's reference is drawn again after clashing with one already taken,
/// before the enrolment gives up (30^8 references: a clash is rare, nine in a row absurd).
const REFERENCE_RETRIES: u32 = 8;

/// Where new family references come from: [`reference::family`], or in a test a source
/// that repeats a reference already taken.
pub type References<'r> = &'r mut (dyn FnMut() -> String + Send);

/// An enrolment that passed every rule, with its plan scheduled: nothing about it can be
/// refused any more.
pub struct Checked<'a> {
    e: &'a Enrolment,
    now: DateTime<Utc>,
    slots: Vec<Slot>,
    plan_end: DateTime<Utc>,
    /// Slots due before this instant are stored `lapsed` (see [`super::family::enrol`]).
    lapse_before: DateTime<Utc>,
}

/// Applies every rule of an enrolment and schedules its plan; `Invalid` names the fields
/// at fault. Reads nothing from the database.
pub fn check<'a>(app: &App, e: &'a Enrolment) -> Result<Checked<'a>, OpError> {
    let cfg = &app.config;
    let now = app.now();
    let today = now.with_timezone(&cfg.timezone).date_naive();
    e.validate(
        today,
        |m| cfg.municipalities.contains_key(m),
        |p| cfg.plans.contains_key(p),
    )
    .map_err(OpError::Invalid)?;
    let Some(rule) = cfg.plans.get(&e.plan) else {
        return Err(OpError::invalid("plan", "unknown plan"));
    };
    Ok(Checked {
        e,
        now,
        slots: rule.slots(e.episode.date, cfg.timezone)?,
        plan_end: rule.end(e.episode.date, cfg.timezone)?,
        lapse_before: cfg.reminders.overdue_after.sub_from(now).unwrap_or(now),
    })
}

struct SealedMember {
    reference: String,
    role: &'static str,
    details: Vec<u8>,
}

/// The new-family mail to the responsible team.
struct Mail {
    key: String,
    recipient: String,
    subject: String,
    body: String,
}

/// A checked family under its reference: everything bound to that reference (the wrapped
/// data key, every sealed field, the mail) is made here, again under a new one after a clash.
struct Sealed {
    reference: String,
    wrapped_dek: Vec<u8>,
    details: Vec<u8>,
    members: Vec<SealedMember>,
    checkins: Vec<(ScheduledCheckin, Option<i64>)>,
    mail: Option<Mail>,
}

fn seal(app: &App, c: &Checked<'_>, family_ref: String, kek: &Kek) -> Result<Sealed, OpError> {
    let cfg = &app.config;
    let e = c.e;
    let dek = Dek::generate();
    let wrapped_dek = kek.wrap_dek(&dek, &family_ref);
    let details = seal_json(&dek, &e.family_details(), &family_place(&family_ref))?;
    let mut members = Vec::with_capacity(e.members.len());
    for m in &e.members {
        let member_ref = reference::member();
        let details = seal_json(&dek, &m.details(), &member_place(&family_ref, &member_ref))?;
        members.push(SealedMember {
            reference: member_ref,
            role: m.role.code(),
            details,
        });
    }
    let schedule = cfg.reminders.for_family(e.interpreter_needed);
    let checkins = c
        .slots
        .iter()
        .map(|slot| {
            let (status, next) = if slot.due < c.lapse_before {
                ("lapsed", None)
            } else {
                (
                    "open",
                    next_notice_at(&schedule, slot.due, Stage::None, None).map(to_secs),
                )
            };
            let checkin = ScheduledCheckin {
                id: reference::checkin(),
                wave: slot.wave,
                due: slot.due,
                status,
            };
            (checkin, next)
        })
        .collect::<Vec<_>>();
    let mail = new_family_mail(app, &family_ref, e, &checkins);
    Ok(Sealed {
        reference: family_ref,
        wrapped_dek,
        details,
        members,
        checkins,
        mail,
    })
}

/// The responsible team hears of a new family at once (same transaction as the enrolment),
/// so the first contact can follow within days.
fn new_family_mail(
    app: &App,
    family_ref: &str,
    e: &Enrolment,
    checkins: &[(ScheduledCheckin, Option<i64>)],
) -> Option<Mail> {
    use crate::mail::contact::{NewFamilyFacts, new_family};
    let cfg = &app.config;
    let muni = cfg.municipality(&e.municipality)?;
    let first = checkins.iter().map(|(c, _)| c).find(|c| c.status == "open");
    let first_local =
        first.map(|c| crate::mail::words::day(c.due, cfg.timezone, cfg.mail.language));
    let link =
        crate::mail::workspace::url(&cfg.web.base_url, &format!("/team/families/{family_ref}"));
    let (subject, body) = new_family(
        cfg.mail.language,
        &NewFamilyFacts {
            family: family_ref,
            plan: cfg.mail.plan_label(&e.plan, cfg.mail.language),
            municipality_code: &muni.code,
            municipality_name: &muni.name,
            first_checkin: first.map(|c| c.id.as_str()).zip(first_local.as_deref()),
            contact_language: &e.language,
            interpreter_needed: e.interpreter_needed,
            case_director: Some(crate::mail::templates::CaseDirectorContact {
                name: &e.case_director.name,
                email: &e.case_director.email,
            }),
            link: Some(&link),
        },
    );
    Some(Mail {
        key: format!("new_family:{family_ref}"),
        recipient: muni.team_email.clone(),
        subject,
        body,
    })
}

/// Draws a reference no other family of the batch has; a draw that repeats one counts as a
/// clash, like one taken in the store.
fn draw(
    references: References<'_>,
    in_batch: &mut HashSet<String>,
    retries: &mut u32,
) -> Result<String, OpError> {
    loop {
        let r = references();
        if in_batch.insert(r.clone()) {
            return Ok(r);
        }
        clashed(retries)?;
    }
}

fn clashed(retries: &mut u32) -> Result<(), OpError> {
    *retries += 1;
    if *retries > REFERENCE_RETRIES {
        return Err(OpError::Conflict(
            "could not find a free family reference; retry".into(),
        ));
    }
    Ok(())
}

/// Enrols a batch of checked families in the caller's (write) transaction and answers each
/// one's references, in order. The current KEK and the audit chain's head are read once;
/// families, responsibilities, members, check-ins, new-family mails and audit entries
/// (one `family.enrol` each, chained in order) go in multi-row INSERTs. A family whose
/// reference turns out taken is sealed again under a new one and inserted again, at most
/// [`REFERENCE_RETRIES`] times. Any error leaves the transaction to be rolled back whole.
pub async fn write(
    app: &App,
    tx: &mut store::Conn,
    batch: &[Checked<'_>],
    references: References<'_>,
) -> Result<Vec<Enrolled>, OpError> {
    let Some(first) = batch.first() else {
        return Ok(Vec::new());
    };
    let (kek_id, kek) = app.keyring.current(&mut *tx, to_secs(first.now)).await?;
    let mut in_batch = HashSet::with_capacity(batch.len());
    let mut retries = vec![0u32; batch.len()];
    let mut sealed = Vec::with_capacity(batch.len());
    for (c, tries) in batch.iter().zip(&mut retries) {
        let r = draw(&mut *references, &mut in_batch, tries)?;
        sealed.push(seal(app, c, r, &kek)?);
    }

    let mut ids = vec![0i64; batch.len()];
    let mut pending: Vec<usize> = (0..batch.len()).collect();
    while !pending.is_empty() {
        let episode_dates: Vec<String> = pending
            .iter()
            .map(|&i| batch[i].e.episode.date.to_string())
            .collect();
        let rows: Vec<store::families::NewFamily<'_>> = pending
            .iter()
            .zip(&episode_dates)
            .map(|(&i, episode_date)| {
                let (c, s) = (&batch[i], &sealed[i]);
                store::families::NewFamily {
                    reference: &s.reference,
                    episode_kind: c.e.episode.kind.code(),
                    episode_date,
                    plan: &c.e.plan,
                    plan_end: to_secs(c.plan_end),
                    language: &c.e.language,
                    interpreter_needed: c.e.interpreter_needed,
                    enrolled_at: to_secs(c.now),
                    kek_id,
                    wrapped_dek: &s.wrapped_dek,
                    sealed_details: &s.details,
                }
            })
            .collect();
        let inserted = store::families::insert_many(&mut *tx, &rows).await?;
        drop(rows);
        let mut taken = Vec::new();
        for &i in &pending {
            match inserted.get(&sealed[i].reference) {
                Some(&id) => ids[i] = id,
                None => taken.push(i),
            }
        }
        for &i in &taken {
            clashed(&mut retries[i])?;
            let r = draw(&mut *references, &mut in_batch, &mut retries[i])?;
            sealed[i] = seal(app, &batch[i], r, &kek)?;
        }
        pending = taken;
    }

    let responsibilities: Vec<_> = batch
        .iter()
        .zip(&ids)
        .map(|(c, &family_id)| store::families::NewResponsibility {
            family_id,
            municipality: &c.e.municipality,
            valid_from: to_secs(c.now),
        })
        .collect();
    store::families::insert_responsibilities(&mut *tx, &responsibilities).await?;

    let members: Vec<_> = sealed
        .iter()
        .zip(&ids)
        .flat_map(|(s, &family_id)| {
            (0i64..)
                .zip(&s.members)
                .map(move |(position, m)| store::families::NewMember {
                    family_id,
                    reference: &m.reference,
                    role: m.role,
                    position,
                    sealed_details: &m.details,
                })
        })
        .collect();
    store::families::insert_members(&mut *tx, &members).await?;

    let checkins: Vec<_> = sealed
        .iter()
        .zip(&ids)
        .flat_map(|(s, &family_id)| {
            s.checkins
                .iter()
                .map(move |(c, next)| store::checkins::NewCheckin {
                    reference: &c.id,
                    family_id,
                    wave: i64::from(c.wave),
                    due_at: to_secs(c.due),
                    status: c.status,
                    next_notice_at: *next,
                })
        })
        .collect();
    store::checkins::insert_many(&mut *tx, &checkins).await?;

    let mails: Vec<_> = batch
        .iter()
        .zip(&sealed)
        .filter_map(|(c, s)| {
            s.mail.as_ref().map(|m| store::outbox::NewMessage {
                key: &m.key,
                kind: "new_family",
                family_ref: Some(&s.reference),
                recipients: std::slice::from_ref(&m.recipient),
                cc: &[],
                subject: &m.subject,
                body: &m.body,
                attachments: &[],
                now: to_secs(c.now),
            })
        })
        .collect();
    store::outbox::enqueue_many(&mut *tx, &mails).await?;

    let entries: Vec<_> = batch
        .iter()
        .zip(&sealed)
        .map(|(c, s)| {
            (
                to_secs(c.now),
                Entry {
                    action: "family.enrol",
                    family: Some(&s.reference),
                    detail: Some(&c.e.municipality),
                    ..Default::default()
                },
            )
        })
        .collect();
    crate::audit::append_many(&mut *tx, &app.keyring, &app.actor, &entries).await?;
    drop((responsibilities, members, checkins, mails, entries));

    Ok(sealed
        .into_iter()
        .map(|s| Enrolled {
            family: s.reference,
            members: s
                .members
                .into_iter()
                .map(|m| EnrolledMember {
                    reference: m.reference,
                    role: m.role,
                })
                .collect(),
            checkins: s.checkins.into_iter().map(|(c, _)| c).collect(),
        })
        .collect())
}
