//! The periodic job: find what is due, overdue or unacknowledged, and put the notices in the
//! outbox together with the state change, in one transaction per batch.
//!
//! Idempotent and catch-up safe by construction: due dates live in the database, each
//! check-in remembers the last notice it got, and every outbox key is unique. Running the
//! sweep twice for the same instant changes nothing and enqueues nothing twice.

use crate::config::Municipality;
use crate::domain::reminder::{Notice, ReminderPolicy, Stage, next_notice_at, owed};
use crate::mail::templates::CaseDirectorContact;
use crate::mail::{ReminderFacts, ReminderKind, reminder};
use crate::service::App;
use crate::store::checkins::{NoticeCandidate, NoticeState};
use crate::store::{self, StoreError, from_secs, to_secs};
use chrono::{DateTime, Utc};
use serde::Serialize;

/// Check-ins handled per transaction, so a large catch-up never blocks other writers long.
const BATCH: i64 = 500;

#[derive(Debug, Default, Serialize, PartialEq, Eq)]
pub struct SweepSummary {
    pub at: DateTime<Utc>,
    pub examined: u64,
    pub upcoming: u64,
    pub due: u64,
    pub overdue: u64,
    pub escalation: u64,
    /// Reminders for the next contact attempt after a family was not reached.
    pub retry: u64,
    /// Notices held back because today is no working day (sent on the next one).
    pub held_for_working_day: u64,
    /// Notices whose outbox key already existed (a repeat of an earlier sweep).
    pub already_queued: u64,
    /// Check-ins whose municipality is missing from the config: retried in an hour.
    pub unroutable: u64,
    /// Families erased because their plan ended more than `retention.after` ago.
    pub retention_erased: u64,
    /// Exports not yet expired that may hold a family erased by this sweep (ids).
    pub retention_exports_may_hold: Vec<String>,
    /// Bodies of sent messages dropped after `mail.keep_sent` (metadata kept).
    pub bodies_dropped: u64,
    /// Exports expired after `export.keep` (their folders in `state_dir/exports` deleted).
    pub exports_expired: u64,
    /// Reminders to receiving teams about unacknowledged handovers.
    pub handover_reminders: u64,
    /// Escalations of unacknowledged handovers to the coordinator and the sending team.
    pub handover_escalations: u64,
    /// Flags raised by the sweep (`out_of_sight` while nothing is recorded, and
    /// `measure_notice` ahead of the end of a court measure).
    pub flags_raised: u64,
    /// Safety plans reminded at their review date.
    pub safety_plan_reviews: u64,
    /// Plans ended at their term without an evaluation: the team asked for it, and
    /// reminded once.
    pub evaluation_requests: u64,
    pub evaluation_reminders: u64,
    /// Daily digests enqueued (at most one per team per working day).
    pub digests: u64,
    /// Red alerts sent again because nobody acknowledged them yet.
    pub red_repeats: u64,
    /// Unacknowledged red flags escalated to the coordinator.
    pub red_escalations: u64,
}

/// Kept here for callers of `sweep::local_label`; it lives with the services, which the
/// sweep calls (never the other way round).
pub use crate::service::checkin::local_label;

/// One sweep at `now`.
pub async fn sweep(app: &App, now: DateTime<Utc>) -> Result<SweepSummary, StoreError> {
    let cfg = &app.config;
    let mut summary = SweepSummary {
        at: now,
        ..Default::default()
    };
    // Several daemons on PostgreSQL: one sweeps at a time (the guard lives to the end).
    let _sweeping = app.store.sweep_lock().await?;
    // No reminder goes out on a weekend or holiday (for plans on working days): what falls
    // due then waits for the next working day's first sweep.
    let working_days = &cfg.handover.working_days;
    let local_today = now.with_timezone(&cfg.timezone).date_naive();
    let working_day = working_days.is_working_day(local_today);
    let next_working_day_start = crate::domain::plan::local_instant(
        cfg.timezone,
        working_days
            .add(local_today, 1)
            .and_time(chrono::NaiveTime::MIN),
    )
    .map_or(to_secs(now) + 3600, to_secs)
    .max(to_secs(now) + 1);
    let instants = Instants {
        now,
        working_day,
        next_working_day_start,
    };
    loop {
        let mut tx = app.store.write().await?;
        let batch = store::checkins::notice_candidates(&mut tx, to_secs(now), BATCH).await?;
        let n = batch.len();
        // A batch is a handful of statements, whatever its size: decide what each check-in
        // is owed, read what the mails need for the whole batch, render them in memory,
        // then write the messages and every check-in's new notice state.
        let mut states = Vec::with_capacity(n);
        let mut owed_now = Vec::new();
        for c in &batch {
            summary.examined += 1;
            match judge(cfg, c, &instants, &mut summary)? {
                Verdict::Wait(state) => states.push(state),
                Verdict::Owed(o) => owed_now.push((c, o)),
            }
        }
        let family_ids: Vec<i64> = owed_now.iter().map(|(c, _)| c.family_id).collect();
        // Who the team can ask: the case directors, unsealed for these mails only.
        let directors =
            crate::service::family::case_directors_for_mail(app, &mut tx, &family_ids).await?;
        let mails: Vec<Mail<'_>> = owed_now
            .iter()
            .map(|(c, o)| {
                let director = directors.get(&c.family_id).and_then(Option::as_ref);
                render(cfg, c, o, director, now)
            })
            .collect();
        let messages: Vec<store::outbox::NewMessage<'_>> =
            mails.iter().map(Mail::message).collect();
        let fresh = store::outbox::enqueue_many(&mut tx, &messages).await?;
        for (mail, fresh) in mails.iter().zip(fresh) {
            if fresh {
                match mail.tally {
                    Tally::Retry => summary.retry += 1,
                    Tally::Upcoming => summary.upcoming += 1,
                    Tally::Due => summary.due += 1,
                    Tally::Overdue => summary.overdue += 1,
                    Tally::Escalation => summary.escalation += 1,
                }
            } else {
                summary.already_queued += 1;
            }
            states.push(mail.state);
        }
        store::checkins::set_notice_states(&mut tx, &states).await?;
        tx.commit().await?;
        if i64::try_from(n).unwrap_or(i64::MAX) < BATCH {
            break;
        }
    }
    let (reminders, escalations) = handovers(app, now).await?;
    summary.handover_reminders = reminders;
    summary.handover_escalations = escalations;
    let (erased, exports) = retention(app, now).await?;
    summary.retention_erased = erased;
    summary.retention_exports_may_hold = exports;
    summary.bodies_dropped = drop_sent_bodies(app, now).await?;
    summary.exports_expired = expire_exports(app, now).await?;
    let previous = {
        let mut conn = app.store.conn().await?;
        store::sweeps::last_before(&mut conn, to_secs(now)).await?
    };
    let previous = previous.map(from_secs).transpose()?;
    summary.flags_raised = crate::service::signals::sweep_out_of_sight(app, now, previous)
        .await
        .map_err(|e| match e {
            crate::service::OpError::Store(s) => s,
            other => StoreError::Corrupt(other.to_string()),
        })?;
    let (measure_flags, safety_reviews) = crate::service::record::sweep_record(app, now).await?;
    summary.flags_raised += measure_flags;
    summary.safety_plan_reviews = safety_reviews;
    let (requests, reminders) = crate::service::evaluation::sweep_evaluations(app, now).await?;
    summary.evaluation_requests = requests;
    summary.evaluation_reminders = reminders;
    let (repeats, escalations) = crate::service::signals::sweep_red_flags(app, now).await?;
    summary.red_repeats = repeats;
    summary.red_escalations = escalations;
    summary.digests = crate::service::signals::sweep_digest(app, now).await?;
    // Recorded last, so a sweep that failed halfway is covered again by the next one.
    {
        let notices =
            summary.upcoming + summary.due + summary.overdue + summary.escalation + summary.retry;
        let mut tx = app.store.write().await?;
        store::sweeps::record(
            &mut tx,
            to_secs(now),
            i64::try_from(notices).unwrap_or(i64::MAX),
        )
        .await?;
        tx.commit().await?;
    }
    log_audit_head(app).await?;
    if summary.examined > 0
        || summary.retention_erased > 0
        || summary.flags_raised > 0
        || summary.digests > 0
        || summary.bodies_dropped > 0
        || summary.exports_expired > 0
    {
        tracing::info!(
            upcoming = summary.upcoming,
            due = summary.due,
            overdue = summary.overdue,
            escalation = summary.escalation,
            retention_erased = summary.retention_erased,
            flags_raised = summary.flags_raised,
            digests = summary.digests,
            bodies_dropped = summary.bodies_dropped,
            exports_expired = summary.exports_expired,
            "sweep done"
        );
    }
    Ok(summary)
}

/// The instants one sweep judges every check-in against.
struct Instants {
    now: DateTime<Utc>,
    /// Whether today (local) is a working day.
    working_day: bool,
    /// Where a notice held for the next working day moves its index (unix seconds).
    next_working_day_start: i64,
}

/// What one candidate is owed now, decided before anything is read for its mail.
enum Verdict<'a> {
    /// No notice now: only the check-in's notice index moves.
    Wait(NoticeState),
    Owed(Box<Owed<'a>>),
}

/// A notice owed now, with what its mail is rendered from.
struct Owed<'a> {
    notice: Notice,
    stage: Stage,
    due: DateTime<Utc>,
    policy: ReminderPolicy,
    muni: std::borrow::Cow<'a, Municipality>,
}

/// Which count of the summary a new message adds to.
#[derive(Clone, Copy)]
enum Tally {
    Retry,
    Upcoming,
    Due,
    Overdue,
    Escalation,
}

/// One rendered notice: its outbox message and the check-in's notice state after it.
struct Mail<'a> {
    key: String,
    kind: &'static str,
    family_ref: &'a str,
    to: Vec<String>,
    cc: Vec<String>,
    subject: String,
    body: String,
    attachments: Vec<crate::mail::Attachment>,
    now: i64,
    tally: Tally,
    state: NoticeState,
}

impl Mail<'_> {
    fn message(&self) -> store::outbox::NewMessage<'_> {
        store::outbox::NewMessage {
            key: &self.key,
            kind: self.kind,
            family_ref: Some(self.family_ref),
            recipients: &self.to,
            cc: &self.cc,
            subject: &self.subject,
            body: &self.body,
            attachments: &self.attachments,
            now: self.now,
        }
    }
}

/// Decides what a candidate is owed at `at.now`: a notice, or only a new notice index
/// (held for the next working day, municipality missing from the config, nothing owed).
fn judge<'a>(
    cfg: &'a crate::config::Config,
    c: &NoticeCandidate,
    at: &Instants,
    summary: &mut SweepSummary,
) -> Result<Verdict<'a>, StoreError> {
    let now = at.now;
    let unchanged = |next: Option<i64>| {
        Verdict::Wait(NoticeState {
            id: c.id,
            stage: c.notice_stage,
            overdue_count: c.overdue_count,
            last_notice_at: c.last_notice_at,
            next_notice_at: next,
        })
    };
    // After a failed attempt the reminders run from the next attempt's due instant.
    let due = from_secs(c.retry_due_at.unwrap_or(c.due_at))?;
    let last = c.last_notice_at.map(from_secs).transpose()?;
    // A plan on working days sends nothing on a weekend or holiday: the notice waits for
    // the first sweep of the next working day.
    let plan_rule = cfg.plans.get(&c.plan);
    if !at.working_day && plan_rule.is_some_and(|p| p.working_days.is_some()) {
        summary.held_for_working_day += 1;
        return Ok(unchanged(Some(at.next_working_day_start)));
    }
    // A family that needs an interpreter gets its first notice earlier.
    let policy = cfg.reminders.for_family(c.interpreter_needed);
    let stage = Stage::from_code(c.notice_stage, c.overdue_count)
        .ok_or_else(|| StoreError::Corrupt(format!("notice stage of {}", c.reference)))?;
    let Some(muni) = cfg.addressee(&c.municipality) else {
        summary.unroutable += 1;
        tracing::error!(checkin = %c.reference, municipality = %c.municipality, "municipality missing from config; reminder held back");
        return Ok(unchanged(Some(to_secs(now) + 3600)));
    };
    let Some(notice) = owed(&policy, due, stage, last, now) else {
        // Nothing owed (e.g. the policy changed): move the index past now.
        let next =
            next_notice_at(&policy, due, stage, last).map(|t| to_secs(t).max(to_secs(now) + 1));
        return Ok(unchanged(next));
    };
    Ok(Verdict::Owed(Box::new(Owed {
        notice,
        stage,
        due,
        policy,
        muni,
    })))
}

/// Renders the mail of an owed notice (text, recipients, calendar invitation, outbox key)
/// and the check-in's notice state after it.
fn render<'a>(
    cfg: &crate::config::Config,
    c: &'a NoticeCandidate,
    o: &Owed<'_>,
    director: Option<&crate::domain::enrolment::CaseDirectorDetails>,
    now: DateTime<Utc>,
) -> Mail<'a> {
    let (notice, stage, due, policy, muni) = (o.notice, o.stage, o.due, &o.policy, &o.muni);
    let due_at = c.retry_due_at.unwrap_or(c.due_at);
    let (kind, count) = match notice {
        Notice::Upcoming => (ReminderKind::Upcoming, 0),
        Notice::Due => (ReminderKind::Due, 0),
        Notice::Overdue(k) => (ReminderKind::Overdue, k),
        Notice::Escalation => (ReminderKind::Escalation, stage.overdue_count()),
    };
    let wave = u32::try_from(c.wave).unwrap_or(0);
    let lang = cfg.mail.language;
    let deadline = policy.overdue_after.add_to(due).unwrap_or(due);
    // The workspace page of the check-in: in the text and in the invitation.
    let link = crate::mail::workspace::url(
        &cfg.web.base_url,
        &format!("/team/checkins/{}", c.reference),
    );
    let facts = ReminderFacts {
        family: &c.family_ref,
        checkin: &c.reference,
        wave,
        plan: cfg.mail.plan_label(&c.plan, lang),
        municipality_code: &muni.code,
        municipality_name: &muni.name,
        due,
        deadline,
        timezone: cfg.timezone,
        contact_language: &c.language,
        interpreter_needed: c.interpreter_needed,
        overdue_count: count,
        coordinator_name: muni.coordinator_name.as_deref(),
        coordinator_email: &muni.coordinator_email,
        talking_points: cfg.mail.talking_points(lang),
        link: Some(&link),
        case_director: director.map(|d| CaseDirectorContact {
            name: &d.name,
            email: &d.email,
        }),
    };
    let retry = c.attempts > 0 && notice == Notice::Due;
    let (subject, body) = if retry {
        use crate::mail::contact::{AttemptFacts, ContactMail, contact};
        contact(
            ContactMail::Retry,
            cfg.mail.language,
            &AttemptFacts {
                reminder: &facts,
                attempts: u32::try_from(c.attempts).unwrap_or(u32::MAX),
                max_attempts: policy.max_attempts,
            },
        )
    } else {
        reminder(kind, cfg.mail.language, &facts)
    };
    let kind_code = if retry { "retry" } else { kind.code() };
    let (to, mut cc) = match notice {
        Notice::Escalation => (
            vec![muni.coordinator_email.clone()],
            vec![muni.team_email.clone()],
        ),
        _ => (vec![muni.team_email.clone()], vec![]),
    };
    // While a move is unacknowledged the sending team stays informed: a copy of every
    // reminder that goes to another team.
    if let Some(sender) = c
        .handover_from
        .as_deref()
        .filter(|s| *s != c.municipality)
        .and_then(|s| cfg.addressee(s))
        && !cc.contains(&sender.team_email)
        && !to.contains(&sender.team_email)
    {
        cc.push(sender.team_email.clone());
    }
    // Upcoming, due and retry reminders carry the calendar invitation; each failed attempt
    // moved the moment, so its SEQUENCE is the number of attempts so far.
    let attachments = match kind {
        ReminderKind::Upcoming | ReminderKind::Due => {
            use crate::mail::ics::{Invite, Method, attachment};
            vec![attachment(
                Method::Request,
                &Invite {
                    checkin: &c.reference,
                    family: Some(&c.family_ref),
                    sequence: u32::try_from(c.attempts).unwrap_or(0),
                    start: due,
                    stamp: now,
                    organizer: &cfg.mail.from,
                    attendee: &muni.team_email,
                    link: facts.link,
                    language: lang,
                },
            )]
        }
        _ => vec![],
    };
    let tally = match kind {
        _ if retry => Tally::Retry,
        ReminderKind::Upcoming => Tally::Upcoming,
        ReminderKind::Due => Tally::Due,
        ReminderKind::Overdue => Tally::Overdue,
        ReminderKind::Escalation => Tally::Escalation,
    };
    let new_stage = notice.stage();
    let next =
        next_notice_at(policy, due, new_stage, Some(now)).map(|t| to_secs(t).max(to_secs(now) + 1));
    Mail {
        key: format!("{kind_code}:{}:{}:{}", c.reference, count, due_at),
        kind: kind_code,
        family_ref: &c.family_ref,
        to,
        cc,
        subject,
        body,
        attachments,
        now: to_secs(now),
        tally,
        state: NoticeState {
            id: c.id,
            stage: new_stage.code(),
            overdue_count: i64::from(new_stage.overdue_count()),
            last_notice_at: Some(to_secs(now)),
            next_notice_at: next,
        },
    }
}

/// Chases unacknowledged handovers: a reminder to the receiving team after
/// `handover.remind_after` working days, an escalation to the receiving municipality's
/// coordinator and the sending team after `handover.escalate_after`. Each at most once
/// (a timestamp on the handover and a unique outbox key); never after acknowledgement.
async fn handovers(app: &App, now: DateTime<Utc>) -> Result<(u64, u64), StoreError> {
    use crate::mail::{HandoverMail, handover as render};
    use crate::service::handover::FactsData;
    let cfg = &app.config;
    let hc = &cfg.handover;
    let (mut reminders, mut escalations) = (0, 0);
    // Deadlines fall on working days; a sweep catching up on a weekend or holiday (the
    // daemon was down) holds them for the next working day.
    let today = now.with_timezone(&cfg.timezone).date_naive();
    if !hc.working_days.is_working_day(today) {
        return Ok((0, 0));
    }
    let mut tx = app.store.write().await?;
    for h in store::handovers::to_chase(&mut tx, 10_000).await? {
        let created = from_secs(h.created_at)?;
        let remind_at = hc
            .working_days
            .deadline(created, hc.remind_after, cfg.timezone);
        let escalate_at = hc
            .working_days
            .deadline(created, hc.escalate_after, cfg.timezone);
        let owe_reminder = h.reminded_at.is_none() && now >= remind_at;
        let owe_escalation = h.escalated_at.is_none() && now >= escalate_at;
        if !owe_reminder && !owe_escalation {
            continue;
        }
        let Some(to) = cfg.addressee(&h.to_municipality) else {
            tracing::error!(handover = %h.reference, municipality = %h.to_municipality, "municipality missing from config; handover not chased");
            continue;
        };
        let from = cfg.municipality(&h.from_municipality);
        let data = FactsData::load(app, &mut tx, &h, now)
            .await
            .map_err(|e| match e {
                crate::service::OpError::Store(s) => s,
                other => StoreError::Corrupt(other.to_string()),
            })?;
        let file = format!("dossier-{}.age", h.family_ref);
        let dossier = (h.dossier == "attached").then_some(file.as_str());
        let link = crate::mail::workspace::url(
            &cfg.web.base_url,
            &format!("/team/handovers/{}", h.reference),
        );
        // Outside the configured region nobody there coordinates with us: the sending
        // municipality's coordinator follows it up, and the escalation is addressed so.
        let outside = cfg.municipality(&h.to_municipality).is_none();
        let coordinator = match (outside, from) {
            (true, Some(f)) => f,
            _ => &to,
        };
        let send = |kind: HandoverMail, days: u32, to_list: Vec<String>, cc: Vec<String>| {
            let facts = crate::mail::HandoverFacts {
                link: Some(&link),
                coordinator_name: coordinator.coordinator_name.as_deref(),
                coordinator_email: &coordinator.coordinator_email,
                coordinator_of: &coordinator.name,
                ..data.facts(&h, from, &to, dossier, days)
            };
            let (subject, body) = render(kind, cfg.mail.language, &facts);
            (kind, to_list, cc, subject, body)
        };
        let mut out = Vec::new();
        if owe_reminder {
            out.push(send(
                HandoverMail::Reminder,
                hc.remind_after,
                vec![to.team_email.clone()],
                vec![],
            ));
        }
        if owe_escalation {
            let mut rcpt = vec![coordinator.coordinator_email.clone()];
            if let Some(f) = from
                && !rcpt.contains(&f.team_email)
            {
                rcpt.push(f.team_email.clone());
            }
            let cc = if rcpt.contains(&to.team_email) {
                vec![]
            } else {
                vec![to.team_email.clone()]
            };
            out.push(send(HandoverMail::Escalation, hc.escalate_after, rcpt, cc));
        }
        for (kind, to_list, cc, subject, body) in out {
            let fresh = store::outbox::enqueue(
                &mut tx,
                &store::outbox::NewMessage {
                    key: &format!("{}:{}", kind.code(), h.reference),
                    kind: kind.code(),
                    family_ref: Some(&h.family_ref),
                    recipients: &to_list,
                    cc: &cc,
                    subject: &subject,
                    body: &body,
                    attachments: &[],
                    now: to_secs(now),
                },
            )
            .await?;
            match kind {
                HandoverMail::Reminder => {
                    store::handovers::mark_reminded(&mut tx, h.id, to_secs(now)).await?;
                    reminders += u64::from(fresh);
                }
                _ => {
                    store::handovers::mark_escalated(&mut tx, h.id, to_secs(now)).await?;
                    escalations += u64::from(fresh);
                }
            }
        }
    }
    tx.commit().await?;
    Ok((reminders, escalations))
}

/// Anchors the audit chain outside the database: the journal keeps `SEQ:MAC` of the head,
/// which `nazorg audit verify --head` checks later (a removed tail or a chain rewritten
/// without the key no longer has it).
async fn log_audit_head(app: &App) -> Result<(), StoreError> {
    let mut conn = app.store.conn().await?;
    if let Some(head) = crate::audit::head(&mut conn).await? {
        tracing::info!(audit_head = %head, "audit head {head}");
    }
    Ok(())
}

/// Erases families whose plan ended more than `retention.after` before `now`, the same
/// way `family erase` does. Returns how many, and the exports that may still hold them.
async fn retention(app: &App, now: DateTime<Utc>) -> Result<(u64, Vec<String>), StoreError> {
    let Some(cutoff) = app.config.retention_after.sub_from(now) else {
        return Ok((0, Vec::new()));
    };
    let mut erased = 0;
    let mut exports = std::collections::BTreeSet::new();
    loop {
        let mut tx = app.store.write().await?;
        let due = store::families::past_retention(&mut tx, to_secs(cutoff), BATCH).await?;
        let n = due.len();
        let mut trails = Vec::with_capacity(n);
        for (id, reference) in due {
            let trail = crate::service::erasure::erase_in(
                app,
                &mut tx,
                id,
                &reference,
                "retention",
                &crate::audit::Actor::System,
                to_secs(now),
            )
            .await?;
            exports.extend(trail.exports.iter().map(|e| e.export.clone()));
            tracing::info!(family = %reference, "family erased after its retention period");
            trails.push(trail);
            erased += 1;
        }
        tx.commit().await?;
        for trail in &trails {
            crate::service::erasure::remove_mail_copies(app, trail);
        }
        if i64::try_from(n).unwrap_or(i64::MAX) < BATCH {
            break;
        }
    }
    if erased > 0 {
        app.store.checkpoint().await?;
    }
    Ok((erased, exports.into_iter().collect()))
}

/// Drops the bodies (and attachments) of messages sent more than `mail.keep_sent` ago, and
/// at once those of sign-in mails whose link has expired.
async fn drop_sent_bodies(app: &App, now: DateTime<Utc>) -> Result<u64, StoreError> {
    let mut tx = app.store.write().await?;
    // Sign-in links that expired unsent (or failed) take their text with them at once.
    let mut n = store::outbox::drop_spent(
        &mut tx,
        crate::mail::workspace::SIGNIN_LINK_KIND,
        None,
        to_secs(now) - crate::web::signin::LINK_VALID_SECS,
        to_secs(now),
    )
    .await?;
    if let Some(cutoff) = app.config.mail.keep_sent.sub_from(now) {
        n += store::outbox::drop_sent_bodies(&mut tx, to_secs(cutoff), to_secs(now)).await?;
    }
    tx.commit().await?;
    if n > 0 {
        app.store.checkpoint().await?;
    }
    Ok(n)
}

/// Expires exports made more than `export.keep` ago: their folder in `state_dir/exports`
/// is deleted, then the export is marked expired. A folder that cannot be deleted keeps
/// its export live (retried at the next sweep).
async fn expire_exports(app: &App, now: DateTime<Utc>) -> Result<u64, StoreError> {
    let Some(cutoff) = app.config.export.keep.sub_from(now) else {
        return Ok(0);
    };
    let dir = crate::service::erasure::exports_dir(app);
    let mut expired = 0;
    let mut tx = app.store.write().await?;
    for id in store::export::due_to_expire(&mut tx, to_secs(cutoff), 10_000).await? {
        // Export ids are our own `X-…` references; never a path from elsewhere.
        if !crate::domain::reference::looks_like(&id, 'X') {
            continue;
        }
        let folder = dir.join(&id);
        if folder.is_dir()
            && let Err(e) = std::fs::remove_dir_all(&folder)
        {
            tracing::error!(export = %id, error = %e, "cannot delete an expired export folder");
            continue;
        }
        store::export::mark_expired(&mut tx, &id, to_secs(now)).await?;
        expired += 1;
    }
    tx.commit().await?;
    Ok(expired)
}
