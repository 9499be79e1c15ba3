//! A plan that ended at its term does not end silently: the sweep asks the responsible
//! team for the closing evaluation (once, keyed by family) and reminds once after
//! [`REMIND_AFTER`] working days while it is still missing. Recording it (`family
//! evaluate`, the API or the workspace form) stops the reminder.

use super::App;
use crate::mail::evaluation::{EvaluationFacts, REMINDER_KIND, REQUEST_KIND, evaluation_request};
use crate::store::{self, Conn, StoreError, from_secs, to_secs};
use chrono::{DateTime, TimeDelta, Utc};

/// Working days after the request before the one reminder.
pub const REMIND_AFTER: u32 = 5;

const BATCH: i64 = 200;

/// The workspace page that records a family's evaluation.
pub fn form_path(family: &str) -> String {
    format!("/team/families/{family}/evaluation")
}

/// The sweep's part: on working days, requests and reminders owed. Returns
/// `(requests, reminders)` enqueued.
pub async fn sweep_evaluations(app: &App, now: DateTime<Utc>) -> Result<(u64, u64), StoreError> {
    let cfg = &app.config;
    let working = &cfg.handover.working_days;
    let today = now.with_timezone(&cfg.timezone).date_naive();
    // Teams read mail on working days; what falls on a weekend or holiday waits.
    if !working.is_working_day(today) {
        return Ok((0, 0));
    }
    // Working days are at least as long as calendar days: a cheap bound for the store.
    let asked_by = to_secs(now - TimeDelta::days(i64::from(REMIND_AFTER)));
    let (mut requests, mut reminders) = (0, 0);
    let mut after = 0;
    loop {
        let mut tx = app.store.write().await?;
        let batch = store::closure::evaluations_owed(&mut tx, asked_by, after, BATCH).await?;
        let n = batch.len();
        for (family_id, asked_at) in batch {
            after = family_id;
            let reminder = match asked_at {
                None => false,
                Some(at) => {
                    let due = working.deadline(from_secs(at)?, REMIND_AFTER, cfg.timezone);
                    if now < due {
                        continue;
                    }
                    true
                }
            };
            if ask(app, &mut tx, family_id, asked_at, reminder, now).await? {
                if reminder {
                    reminders += 1;
                } else {
                    requests += 1;
                }
            }
        }
        tx.commit().await?;
        if i64::try_from(n).unwrap_or(i64::MAX) < BATCH {
            break;
        }
    }
    Ok((requests, reminders))
}

/// Queues the request or the reminder and marks it, in the caller's transaction.
async fn ask(
    app: &App,
    tx: &mut Conn,
    family_id: i64,
    asked_at: Option<i64>,
    reminder: bool,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let cfg = &app.config;
    let lang = cfg.mail.language;
    let Some(f) = store::families::by_id(tx, family_id, to_secs(now)).await? else {
        return Ok(false);
    };
    let Some(muni) = cfg.addressee(&f.municipality) else {
        tracing::error!(family = %f.reference, "municipality missing from config; evaluation not asked");
        return Ok(false);
    };
    let words = |secs: i64| from_secs(secs).map(|t| crate::mail::words::day(t, cfg.timezone, lang));
    let ended = words(f.closed_at.unwrap_or(f.plan_end))?;
    let asked = match asked_at {
        Some(a) => words(a)?,
        None => String::new(),
    };
    let link = crate::mail::workspace::url(&cfg.web.base_url, &form_path(&f.reference));
    let (subject, body) = evaluation_request(
        lang,
        &EvaluationFacts {
            family: &f.reference,
            plan: cfg.mail.plan_label(&f.plan, lang),
            municipality_code: &muni.code,
            municipality_name: &muni.name,
            ended: &ended,
            asked: &asked,
            link: &link,
        },
        reminder,
    );
    let kind = if reminder {
        REMINDER_KIND
    } else {
        REQUEST_KIND
    };
    let fresh = store::outbox::enqueue(
        tx,
        &store::outbox::NewMessage {
            key: &format!("{kind}:{}", f.reference),
            kind,
            family_ref: Some(&f.reference),
            recipients: std::slice::from_ref(&muni.team_email),
            cc: &[],
            subject: &subject,
            body: &body,
            attachments: &[],
            now: to_secs(now),
        },
    )
    .await?;
    store::closure::mark_evaluation_asked(tx, f.id, to_secs(now), reminder).await?;
    Ok(fresh)
}
