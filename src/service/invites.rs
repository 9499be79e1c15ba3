//! Calendar cancellations: when a check-in leaves a team's calendar (recorded, missed, the
//! family moved, closed or erased) the team gets a METHOD:CANCEL for the invitation its
//! reminders carried, through the outbox in the caller's transaction (key
//! `invite_cancel:<checkin>:<sequence>:<municipality>`, so it is queued once per team).

use chrono::{DateTime, Utc};

use super::App;
use crate::mail::ics::{Invite, Method, Why, attachment, cancel_mail};
use crate::store::{self, Conn, StoreError, from_secs, to_secs};

/// One check-in to take out of the calendar of `municipality`'s team.
pub(crate) struct Cancel<'a> {
    /// `None` when the family is being erased: nothing in the outbox may name it.
    pub family: Option<&'a str>,
    pub municipality: &'a str,
    pub checkin: &'a str,
    /// One above the sequence of the last request (the number of attempts so far).
    pub sequence: u32,
    pub due: DateTime<Utc>,
    pub why: Why,
}

/// Queues the CANCEL for one check-in.
pub(crate) async fn cancel(
    app: &App,
    tx: &mut Conn,
    c: &Cancel<'_>,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let cfg = &app.config;
    let Some(muni) = cfg.addressee(c.municipality) else {
        return Ok(());
    };
    let lang = cfg.mail.language;
    let ics = attachment(
        Method::Cancel,
        &Invite {
            checkin: c.checkin,
            family: c.family,
            sequence: c.sequence,
            start: c.due,
            stamp: now,
            organizer: &cfg.mail.from,
            attendee: &muni.team_email,
            link: None,
            language: lang,
        },
    );
    let (subject, body) = cancel_mail(lang, c.family, c.checkin, &muni.name, &muni.code, c.why);
    store::outbox::enqueue(
        tx,
        &store::outbox::NewMessage {
            key: &format!("invite_cancel:{}:{}:{}", c.checkin, c.sequence, muni.code),
            kind: "invite_cancel",
            family_ref: c.family,
            recipients: std::slice::from_ref(&muni.team_email),
            cc: &[],
            subject: &subject,
            body: &body,
            attachments: std::slice::from_ref(&ics),
            now: to_secs(now),
        },
    )
    .await?;
    Ok(())
}

/// Queues a CANCEL for every open check-in of the family that had an invitation; call it
/// before the change that closes them. At erasure (`Why::Erased`) the cancels name the
/// check-in only and are not filed under the family, so they go out after it is erased
/// and leave nothing of it in the outbox.
pub(crate) async fn cancel_family(
    app: &App,
    tx: &mut Conn,
    family_id: i64,
    family: &str,
    municipality: &str,
    why: Why,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let family = (why != Why::Erased).then_some(family);
    for i in store::checkins::invited_open(tx, family_id).await? {
        cancel(
            app,
            tx,
            &Cancel {
                family,
                municipality,
                checkin: &i.reference,
                sequence: u32::try_from(i.attempts).unwrap_or(0) + 1,
                due: from_secs(i.due_at)?,
                why,
            },
            now,
        )
        .await?;
    }
    Ok(())
}
