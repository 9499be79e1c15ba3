//! Handovers: a family's move to another municipality, a new case director within one,
//! their acknowledgement, and the list an operator works from.
//!
//! Responsibility at every instant: a family's `responsibilities` rows are contiguous
//! intervals `[valid_from, valid_to)`, the last one open-ended. A move dated `D` ends the
//! last interval at the start of `D` (local midnight in `schedule.timezone`) and opens the
//! receiving municipality's interval there, in the same transaction as the handover row,
//! the sealed new address and the two outbox messages. For a future date the sending
//! municipality therefore stays responsible until `D`; "responsible now" is always "the
//! interval containing now" (`store::families::by_ref(.., now)`), and a check-in is
//! reminded to the municipality responsible at its due instant.

use super::{App, OpError, open_json, seal_json};
use crate::audit::Entry;
use crate::config::Municipality;
use crate::crypto::FieldPlace;
use crate::domain::enrolment::{CaseDirector, FamilyDetails, MAX_TEXT};
use crate::domain::handover::{Status, effective_instant};
use crate::domain::{FieldError, reference};
use crate::mail::{Attachment, HandoverFacts, HandoverMail, handover as render};
use crate::store::{self, Conn, StoreError, from_secs, to_secs};
use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

/// A flag (relapse signal) still open for a family, as handovers report it.
#[derive(Clone, Debug, Serialize)]
pub struct OpenFlag {
    /// The child (member reference) the flag is about; `None` for a family-level flag.
    pub member: Option<String>,
    pub rule: String,
    pub severity: String,
    pub raised_at: DateTime<Utc>,
}

/// The flags of a family that are not resolved (open or acknowledged), for the dossier and
/// the handover email: they travel with the family.
pub async fn open_flags_for(conn: &mut Conn, family_id: i64) -> Result<Vec<OpenFlag>, OpError> {
    // The instant only decides which municipality the row names; flags do not depend on it.
    let rows = store::flags::of_family(conn, family_id, i64::MAX).await?;
    rows.into_iter()
        .filter(|f| f.status != "resolved")
        .map(|f| {
            Ok(OpenFlag {
                member: f.member_ref,
                rule: f.rule,
                severity: f.severity,
                raised_at: from_secs(f.raised_at)?,
            })
        })
        .collect()
}

/// `nazorg move REF --to CODE --date D [--address-file F]`.
#[derive(Clone, Debug)]
pub struct MoveRequest {
    pub family: String,
    pub to: String,
    pub date: NaiveDate,
    /// The new address (personal data: sealed into the family's details).
    pub address: Option<String>,
}

/// What `move` and `family reassign` answer.
#[derive(Debug, Serialize)]
pub struct HandoverCreated {
    pub handover: String,
    pub family: String,
    pub kind: &'static str,
    pub from: String,
    pub to: String,
    pub effective_at: DateTime<Utc>,
    /// `attached` or `withheld`.
    pub dossier: &'static str,
    /// An earlier unacknowledged move this one replaces.
    pub supersedes: Option<String>,
}

fn ack_place<'a>(family: &'a str, handover: &'a str) -> FieldPlace<'a> {
    FieldPlace {
        family,
        table: "handovers",
        column: "sealed_ack_by",
        row: handover,
    }
}

fn not_found(what: &'static str, r: &str) -> OpError {
    OpError::NotFound {
        what,
        reference: r.chars().take(20).collect(),
    }
}

fn check_text(field: &str, value: &str, max: usize) -> Result<(), OpError> {
    if value.trim().is_empty() {
        return Err(OpError::invalid(field, "must not be empty"));
    }
    if value.len() > max {
        return Err(OpError::invalid(field, &format!("longer than {max} bytes")));
    }
    if value
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t' && c != '\r')
    {
        return Err(OpError::invalid(field, "contains control characters"));
    }
    Ok(())
}

fn local_date(app: &App, secs: i64) -> Result<NaiveDate, OpError> {
    Ok(from_secs(secs)?
        .with_timezone(&app.config.timezone)
        .date_naive())
}

/// A municipality a handover may be addressed to: a configured one, or any well-formed CBS
/// code when `handover.outside_region_email` is set (the intake desk gets it).
fn known<'a>(
    app: &'a App,
    field: &str,
    code: &str,
) -> Result<std::borrow::Cow<'a, Municipality>, OpError> {
    if !crate::config::is_cbs_code(code) {
        return Err(OpError::invalid(
            field,
            &format!(
                "`{}` is not a CBS municipality code (GM and four digits, e.g. GM0363)",
                code.chars().take(12).collect::<String>()
            ),
        ));
    }
    app.config.addressee(code).ok_or_else(|| {
        OpError::invalid(
            field,
            &format!(
                "{code} is outside the configured region; set handover.outside_region_email \
                 (the intake desk there) to hand families over to it"
            ),
        )
    })
}

/// Registers a move: responsibility passes at the move date, the receiving team gets the
/// handover email with the dossier, the sending team a notice; all in one transaction.
pub async fn move_family(app: &App, req: &MoveRequest) -> Result<HandoverCreated, OpError> {
    let cfg = &app.config;
    let now = app.now();
    if !reference::looks_like(&req.family, 'F') {
        return Err(not_found("family", &req.family));
    }
    let to = known(app, "to", &req.to)?;
    if let Some(a) = &req.address {
        check_text("address", a, MAX_TEXT)?;
    }
    let today = now.with_timezone(&cfg.timezone).date_naive();
    let latest = cfg
        .handover
        .max_move_ahead
        .add_to_date(today)
        .unwrap_or(today);
    if req.date > latest {
        return Err(OpError::invalid(
            "date",
            &format!(
                "more than handover.max_move_ahead ahead; the latest allowed move date is {latest}"
            ),
        ));
    }

    let mut tx = app.store.write().await?;
    let f = super::family::family_by_ref(&mut tx, &req.family, to_secs(now)).await?;
    app.require_responsible(&f)?;
    if f.status != "running" {
        return Err(OpError::Conflict(format!(
            "family {} is {}, not running",
            f.reference, f.status
        )));
    }
    let enrolled = local_date(app, f.enrolled_at)?;
    if req.date < enrolled {
        return Err(OpError::invalid(
            "date",
            &format!("before the family's enrolment on {enrolled}"),
        ));
    }
    let rows = store::families::responsibilities(&mut tx, f.id).await?;
    let Some(last) = rows.last() else {
        return Err(
            StoreError::Corrupt(format!("family {} has no responsibility", f.reference)).into(),
        );
    };
    let last_start = local_date(app, last.valid_from)?;
    if req.date < last_start {
        return Err(OpError::invalid(
            "date",
            &format!(
                "before the start of the latest responsibility ({} from {last_start}); moves are registered in date order",
                last.municipality
            ),
        ));
    }
    if last.municipality == to.code {
        return Err(OpError::invalid(
            "to",
            &format!(
                "the family is already the responsibility of {} on that date",
                to.code
            ),
        ));
    }
    let from_code = last.municipality.clone();
    let effective = effective_instant(req.date, cfg.timezone, last.valid_from);

    // Validation is over; from here on everything commits together.
    store::families::end_responsibility(&mut tx, f.id, effective).await?;
    store::families::insert_responsibility(&mut tx, f.id, &to.code, effective).await?;
    if let Some(address) = &req.address
        && let (Some(dek), Some(sealed)) = (app.family_dek(&mut tx, &f).await?, &f.sealed_details)
    {
        let place = super::family::family_place(&f.reference);
        let mut details: FamilyDetails = open_json(&dek, sealed, &place)?;
        details.address = Some(address.clone());
        let resealed = seal_json(&dek, &details, &place)?;
        store::families::set_sealed_details(&mut tx, f.id, &resealed).await?;
    }
    let previous = store::handovers::open_move(&mut tx, f.id).await?;
    if let Some(p) = &previous {
        // Free the one-open-move slot first; `superseded_by` is filled in below.
        store::handovers::supersede(&mut tx, p.id).await?;
    }
    // The sending team's calendar drops the family's check-ins; the receiving team's
    // reminders bring their own invitations.
    super::invites::cancel_family(
        app,
        &mut tx,
        f.id,
        &f.reference,
        &from_code,
        crate::mail::ics::Why::Moved,
        now,
    )
    .await?;
    let created = create(app, &mut tx, &f, "move", &from_code, &to, effective, now).await?;
    if let Some(p) = &previous {
        store::handovers::set_superseded_by(&mut tx, p.id, created.1).await?;
    }
    // The previous case director is no longer theirs: the acknowledgement names the new one.
    store::handovers::set_director_named(&mut tx, created.1, false).await?;
    schedule_intro(app, &mut tx, &f, req.date, effective, now).await?;
    app.audit(
        &mut tx,
        &Entry {
            action: "family.move",
            family: Some(&f.reference),
            subject: Some(&created.0.handover),
            detail: Some(&created.0.to),
        },
    )
    .await?;
    tx.commit().await?;
    let mut out = created.0;
    out.supersedes = previous.map(|p| p.reference);
    tracing::info!(family = %out.family, handover = %out.handover, from = %out.from, to = %out.to, "move registered");
    Ok(out)
}

/// The receiving team's introduction contact: a check-in `handover.intro` after the move
/// date at the plan's local time (moved off weekends and holidays like the plan's own),
/// unless the plan has ended by then. An earlier move's introduction still ahead goes.
async fn schedule_intro(
    app: &App,
    tx: &mut Conn,
    f: &store::families::FamilyRow,
    date: NaiveDate,
    effective: i64,
    now: DateTime<Utc>,
) -> Result<(), OpError> {
    use crate::domain::reminder::{Stage, next_notice_at};
    let cfg = &app.config;
    store::checkins::cancel_intros_after(tx, f.id, effective).await?;
    let Some(mut day) = cfg.handover.intro.add_to_date(date) else {
        return Ok(());
    };
    let plan = cfg.plans.get(&f.plan);
    if let Some(w) = plan.and_then(|p| p.working_days.as_ref()) {
        day = w.on_or_after(day);
    }
    let time = plan
        .map(|p| p.local_time)
        .unwrap_or_else(|| chrono::NaiveTime::from_hms_opt(9, 0, 0).unwrap_or_default());
    let Some(due) = crate::domain::plan::local_instant(cfg.timezone, day.and_time(time)) else {
        return Ok(());
    };
    if to_secs(due) > f.plan_end {
        return Ok(());
    }
    let wave = store::checkins::next_intro_wave(tx, f.id).await?;
    let id = reference::checkin();
    let next = next_notice_at(
        &cfg.reminders.for_family(f.interpreter_needed),
        due,
        Stage::None,
        None,
    )
    .map(|t| to_secs(t).max(to_secs(now)));
    store::checkins::insert(
        tx,
        &store::checkins::NewCheckin {
            reference: &id,
            family_id: f.id,
            wave,
            due_at: to_secs(due),
            status: "open",
            next_notice_at: next,
        },
    )
    .await?;
    Ok(())
}

/// A new case director within the responsible municipality: the sealed details change and
/// the team gets the dossier the same way as after a move.
pub async fn reassign(
    app: &App,
    family_ref: &str,
    director: &CaseDirector,
) -> Result<HandoverCreated, OpError> {
    let now = app.now();
    if !reference::looks_like(family_ref, 'F') {
        return Err(not_found("family", family_ref));
    }
    check_text("case_director.name", &director.name, 200)?;
    if !crate::config::plausible_email(&director.email) {
        return Err(OpError::invalid(
            "case_director.email",
            "not an email address",
        ));
    }
    let mut tx = app.store.write().await?;
    let f = super::family::family_by_ref(&mut tx, family_ref, to_secs(now)).await?;
    app.require_responsible(&f)?;
    if f.status != "running" {
        return Err(OpError::Conflict(format!(
            "family {} is {}, not running",
            f.reference, f.status
        )));
    }
    let muni = app.config.municipality(&f.municipality).ok_or_else(|| {
        OpError::Conflict(format!(
            "municipality {} of family {} is missing from the config",
            f.municipality, f.reference
        ))
    })?;
    name_case_director(app, &mut tx, &f, director).await?;
    let code = muni.code.clone();
    let (out, _) = create(app, &mut tx, &f, "reassign", &code, muni, to_secs(now), now).await?;
    app.audit(
        &mut tx,
        &Entry {
            action: "family.reassign",
            family: Some(&f.reference),
            subject: Some(&out.handover),
            ..Default::default()
        },
    )
    .await?;
    tx.commit().await?;
    tracing::info!(family = %out.family, handover = %out.handover, "case director reassigned");
    Ok(out)
}

/// Inserts the handover row, builds and encrypts the dossier, enqueues the messages.
#[allow(clippy::too_many_arguments)]
async fn create(
    app: &App,
    tx: &mut Conn,
    f: &store::families::FamilyRow,
    kind: &'static str,
    from_code: &str,
    to: &Municipality,
    effective: i64,
    now: DateTime<Utc>,
) -> Result<(HandoverCreated, i64), OpError> {
    let cfg = &app.config;
    let mut href = reference::handover();
    let mut tries = 0;
    while store::handovers::reference_taken(tx, &href).await? {
        tries += 1;
        if tries > 8 {
            return Err(OpError::Conflict(
                "could not find a free handover id; retry".into(),
            ));
        }
        href = reference::handover();
    }
    let recipient = to
        .age_recipient
        .as_deref()
        .map(crate::crypto::parse_recipient)
        .transpose()?;
    let dossier_state = if recipient.is_some() {
        "attached"
    } else {
        "withheld"
    };
    let id = store::handovers::insert(
        tx,
        &store::handovers::NewHandover {
            reference: &href,
            family_id: f.id,
            kind,
            from_municipality: from_code,
            to_municipality: &to.code,
            effective_at: effective,
            created_at: to_secs(now),
            dossier: dossier_state,
        },
    )
    .await?;

    let mut attachments = Vec::new();
    let file = format!("dossier-{}.age", f.reference);
    if let Some(recipient) = recipient {
        // Re-read: the sealed details may have changed in this transaction (a new
        // address, a new case director) and the dossier must show them.
        let current = store::families::by_id(tx, f.id, to_secs(now))
            .await?
            .ok_or_else(|| not_found("family", &f.reference))?;
        let plain = dossier(app, tx, &current, &href, now).await?;
        let bytes =
            tokio::task::spawn_blocking(move || crate::crypto::encrypt_to(&recipient, &plain))
                .await
                .map_err(|e| {
                    OpError::Conflict(format!("dossier encryption did not finish: {e}"))
                })??;
        attachments.push(Attachment {
            filename: file.clone(),
            content_type: "application/octet-stream".into(),
            bytes,
        });
    } else {
        // No personal data here: references and codes only.
        tracing::warn!(handover = %href, family = %f.reference, municipality = %to.code,
            "dossier withheld: the receiving municipality has no age_recipient; see `nazorg handover list --withheld`");
    }

    let h = store::handovers::by_ref(tx, &href)
        .await?
        .ok_or_else(|| StoreError::Corrupt(format!("handover {href} vanished")))?;
    let data = FactsData::load(app, tx, &h, now).await?;
    let from = cfg.municipality(from_code);
    let facts = data.facts(
        &h,
        from,
        to,
        attachments.first().map(|a| a.filename.as_str()),
        0,
    );
    let link = crate::mail::workspace::url(&cfg.web.base_url, &format!("/team/handovers/{href}"));
    let facts = HandoverFacts {
        link: Some(&link),
        ..facts
    };
    let (subject, body) = render(HandoverMail::Handover, cfg.mail.language, &facts);
    store::outbox::enqueue(
        tx,
        &store::outbox::NewMessage {
            key: &format!("{}:{href}", HandoverMail::Handover.code()),
            kind: HandoverMail::Handover.code(),
            family_ref: Some(&f.reference),
            recipients: std::slice::from_ref(&to.team_email),
            cc: &[],
            subject: &subject,
            body: &body,
            attachments: &attachments,
            now: to_secs(now),
        },
    )
    .await?;
    if kind == "move" {
        match from {
            Some(from) => {
                let (subject, body) = render(HandoverMail::Notice, cfg.mail.language, &facts);
                store::outbox::enqueue(
                    tx,
                    &store::outbox::NewMessage {
                        key: &format!("{}:{href}", HandoverMail::Notice.code()),
                        kind: HandoverMail::Notice.code(),
                        family_ref: Some(&f.reference),
                        recipients: std::slice::from_ref(&from.team_email),
                        cc: &[],
                        subject: &subject,
                        body: &body,
                        attachments: &[],
                        now: to_secs(now),
                    },
                )
                .await?;
            }
            None => {
                tracing::error!(handover = %href, municipality = %from_code, "sending municipality missing from config; no notice sent");
            }
        }
    }
    Ok((
        HandoverCreated {
            handover: href,
            family: f.reference.clone(),
            kind,
            from: from_code.to_string(),
            to: to.code.clone(),
            effective_at: from_secs(effective)?,
            dossier: dossier_state,
            supersedes: None,
        },
        id,
    ))
}

/// One handover in the dossier's history.
#[derive(Debug, Serialize)]
pub struct HandoverView {
    pub id: String,
    pub family: String,
    pub kind: String,
    pub from: String,
    pub to: String,
    pub effective_at: DateTime<Utc>,
    pub status: String,
    pub dossier: String,
    pub created_at: DateTime<Utc>,
    pub reminded_at: Option<DateTime<Utc>>,
    pub escalated_at: Option<DateTime<Utc>>,
    pub acknowledged_at: Option<DateTime<Utc>>,
    pub superseded_by: Option<String>,
}

fn view(h: store::handovers::HandoverRow) -> Result<HandoverView, OpError> {
    Ok(HandoverView {
        id: h.reference,
        family: h.family_ref,
        kind: h.kind,
        from: h.from_municipality,
        to: h.to_municipality,
        effective_at: from_secs(h.effective_at)?,
        status: h.status,
        dossier: h.dossier,
        created_at: from_secs(h.created_at)?,
        reminded_at: h.reminded_at.map(from_secs).transpose()?,
        escalated_at: h.escalated_at.map(from_secs).transpose()?,
        acknowledged_at: h.acknowledged_at.map(from_secs).transpose()?,
        superseded_by: h.superseded_by,
    })
}

/// The whole dossier as JSON bytes (plaintext: only ever in memory, then age-encrypted).
async fn dossier(
    app: &App,
    tx: &mut Conn,
    f: &store::families::FamilyRow,
    handover: &str,
    now: DateTime<Utc>,
) -> Result<zeroize::Zeroizing<Vec<u8>>, OpError> {
    #[derive(Serialize)]
    struct Dossier {
        format: &'static str,
        handover: String,
        generated_at: DateTime<Utc>,
        family: super::family::FamilyView,
        responsibilities: Vec<store::families::Responsibility>,
        open_flags: Vec<OpenFlag>,
        moves: Vec<HandoverView>,
    }
    let mut family = super::family::view(app, tx, f).await?;
    // The ex-partner is never in any mail, not even in the encrypted dossier; the receiving
    // team finds the court measure in Nazorg itself.
    family.ex_partners.clear();
    // The sending team's own case number is its file number, not the receiving team's.
    family.case_number = None;
    let moves = store::handovers::of_family(tx, f.id)
        .await?
        .into_iter()
        .map(view)
        .collect::<Result<Vec<_>, _>>()?;
    let d = Dossier {
        format: "nazorg-dossier/1",
        handover: handover.to_string(),
        generated_at: now,
        family,
        responsibilities: store::families::responsibilities(tx, f.id).await?,
        open_flags: open_flags_for(tx, f.id).await?,
        moves,
    };
    let bytes = serde_json::to_vec_pretty(&d)
        .map_err(|e| OpError::Conflict(format!("cannot encode the dossier: {e}")))?;
    Ok(zeroize::Zeroizing::new(bytes))
}

/// The counts and dates a handover email shows, loaded once.
pub(crate) struct FactsData {
    children: usize,
    next_due: Option<String>,
    flags: Vec<(String, usize)>,
    effective_date: String,
    registered: String,
}

impl FactsData {
    pub(crate) async fn load(
        app: &App,
        conn: &mut Conn,
        h: &store::handovers::HandoverRow,
        now: DateTime<Utc>,
    ) -> Result<FactsData, OpError> {
        let tz = app.config.timezone;
        let children = store::families::members(conn, h.family_id)
            .await?
            .iter()
            .filter(|m| m.role == "child")
            .count();
        let next_due = store::checkins::of_family(conn, h.family_id)
            .await?
            .iter()
            .filter(|c| c.status == "open")
            .map(|c| c.due_at)
            .min()
            .map(from_secs)
            .transpose()?
            .map(|t| crate::mail::words::when(t, tz, app.config.mail.language));
        let mut flags: Vec<(String, usize)> = Vec::new();
        for fl in open_flags_for(conn, h.family_id).await? {
            match flags.iter_mut().find(|(s, _)| *s == fl.severity) {
                Some((_, n)) => *n += 1,
                None => flags.push((fl.severity, 1)),
            }
        }
        let _ = now;
        Ok(FactsData {
            children,
            next_due,
            flags,
            effective_date: crate::mail::words::day(
                from_secs(h.effective_at)?,
                tz,
                app.config.mail.language,
            ),
            registered: crate::mail::words::day(
                from_secs(h.created_at)?,
                tz,
                app.config.mail.language,
            ),
        })
    }

    pub(crate) fn facts<'a>(
        &'a self,
        h: &'a store::handovers::HandoverRow,
        from: Option<&'a Municipality>,
        to: &'a Municipality,
        dossier_file: Option<&'a str>,
        working_days: u32,
    ) -> HandoverFacts<'a> {
        HandoverFacts {
            handover: &h.reference,
            family: &h.family_ref,
            reassign: h.kind == "reassign",
            from_code: &h.from_municipality,
            from_name: from
                .map(|m| m.name.as_str())
                .unwrap_or(&h.from_municipality),
            from_team_email: from.map(|m| m.team_email.as_str()).unwrap_or("-"),
            to_code: &to.code,
            to_name: &to.name,
            effective_date: &self.effective_date,
            children: self.children,
            next_checkin_due: self.next_due.as_deref(),
            flags_by_severity: &self.flags,
            dossier_file,
            registered: &self.registered,
            working_days,
            coordinator_name: to.coordinator_name.as_deref(),
            coordinator_email: &to.coordinator_email,
            coordinator_of: &to.name,
            link: None,
        }
    }
}

/// What `handover ack` answers.
#[derive(Debug, Serialize)]
pub struct Acknowledged {
    pub handover: String,
    pub family: String,
    pub municipality: String,
    pub acknowledged_at: DateTime<Utc>,
}

/// The receiving municipality confirms it took the family over. `by` (a person's name) is
/// sealed under the family's key, never stored in plain text.
pub async fn ack(
    app: &App,
    id: &str,
    municipality: &str,
    by: Option<&str>,
) -> Result<Acknowledged, OpError> {
    ack_naming(app, id, municipality, by, None).await
}

/// `ack`, naming the family's new case director (`handover ack --case-director-file`):
/// sealed into the family's details; until a move's acknowledgement names one, the family
/// shows "no case director".
pub async fn ack_naming(
    app: &App,
    id: &str,
    municipality: &str,
    by: Option<&str>,
    director: Option<&CaseDirector>,
) -> Result<Acknowledged, OpError> {
    let now = app.now();
    if !reference::looks_like(id, 'H') {
        return Err(not_found("handover", id));
    }
    known(app, "municipality", municipality)?;
    if let Some(b) = by {
        check_text("by", b, 200)?;
    }
    if let Some(d) = director {
        check_text("case_director.name", &d.name, 200)?;
        if d.name.trim().is_empty() {
            return Err(OpError::invalid("case_director.name", "must not be empty"));
        }
        if !crate::config::plausible_email(&d.email) {
            return Err(OpError::invalid(
                "case_director.email",
                "not an email address",
            ));
        }
    }
    let mut tx = app.store.write().await?;
    let h = store::handovers::by_ref(&mut tx, id)
        .await?
        .ok_or_else(|| not_found("handover", id))?;
    if h.to_municipality != municipality {
        return Err(OpError::Invalid(vec![FieldError::new(
            "municipality",
            format!(
                "handover {} is addressed to {}, not {municipality}",
                h.reference, h.to_municipality
            ),
        )]));
    }
    match Status::from_code(&h.status) {
        Some(s) if s.is_open() => {}
        Some(Status::Acknowledged) => {
            return Err(OpError::Conflict(format!(
                "handover {} is already acknowledged",
                h.reference
            )));
        }
        Some(Status::Superseded) => {
            return Err(OpError::Conflict(format!(
                "handover {} was superseded by {}; acknowledge that one",
                h.reference,
                h.superseded_by.as_deref().unwrap_or("a later move")
            )));
        }
        _ => {
            return Err(StoreError::Corrupt(format!("status of handover {}", h.reference)).into());
        }
    }
    let sealed = match by {
        Some(b) => {
            let f = store::families::by_id(&mut tx, h.family_id, to_secs(now))
                .await?
                .ok_or_else(|| not_found("family", &h.family_ref))?;
            match app.family_dek(&mut tx, &f).await? {
                Some(dek) => Some(seal_json(&dek, &b, &ack_place(&f.reference, &h.reference))?),
                None => None,
            }
        }
        None => None,
    };
    if !store::handovers::acknowledge(&mut tx, h.id, to_secs(now), sealed.as_deref()).await? {
        return Err(OpError::Conflict(format!(
            "handover {} is no longer open",
            h.reference
        )));
    }
    if let Some(d) = director {
        let f = store::families::by_id(&mut tx, h.family_id, to_secs(now))
            .await?
            .ok_or_else(|| not_found("family", &h.family_ref))?;
        name_case_director(app, &mut tx, &f, d).await?;
    }
    app.audit(
        &mut tx,
        &Entry {
            action: "handover.ack",
            family: Some(&h.family_ref),
            subject: Some(&h.reference),
            detail: Some(municipality),
        },
    )
    .await?;
    tx.commit().await?;
    tracing::info!(handover = %h.reference, family = %h.family_ref, municipality, "handover acknowledged");
    Ok(Acknowledged {
        handover: h.reference,
        family: h.family_ref,
        municipality: municipality.to_string(),
        acknowledged_at: now,
    })
}

/// What `handover resend` did.
#[derive(Debug, Serialize)]
pub struct Resent {
    pub handover: String,
    pub family: String,
    pub to: String,
    /// The address the handover went to now.
    pub sent_to: String,
    /// `attached` or `withheld`.
    pub dossier: &'static str,
}

/// Sends a handover again, to whoever the receiving municipality's address is now: the
/// team of a municipality configured since (instead of the outside-region desk), with the
/// dossier when the receiver has an `age_recipient` by now (a withheld dossier is sent after
/// all). An acknowledged handover is resent only to deliver a withheld dossier.
pub async fn resend(app: &App, id: &str) -> Result<Resent, OpError> {
    let cfg = &app.config;
    let now = app.now();
    if !reference::looks_like(id, 'H') {
        return Err(not_found("handover", id));
    }
    let mut tx = app.store.write().await?;
    let h = store::handovers::by_ref(&mut tx, id)
        .await?
        .ok_or_else(|| not_found("handover", id))?;
    let status = Status::from_code(&h.status)
        .ok_or_else(|| StoreError::Corrupt(format!("status of handover {}", h.reference)))?;
    if status == Status::Superseded {
        return Err(OpError::Conflict(format!(
            "handover {} was superseded by {}; resend that one",
            h.reference,
            h.superseded_by.as_deref().unwrap_or("a later move")
        )));
    }
    let to = cfg.addressee(&h.to_municipality).ok_or_else(|| {
        OpError::Conflict(format!(
            "{} is not configured and handover.outside_region_email is not set",
            h.to_municipality
        ))
    })?;
    let f = store::families::by_id(&mut tx, h.family_id, to_secs(now))
        .await?
        .ok_or_else(|| not_found("family", &h.family_ref))?;
    let recipient = to
        .age_recipient
        .as_deref()
        .map(crate::crypto::parse_recipient)
        .transpose()?;
    if status == Status::Acknowledged && (h.dossier == "attached" || recipient.is_none()) {
        return Err(OpError::Conflict(format!(
            "handover {} is acknowledged and has no withheld dossier that could be sent now",
            h.reference
        )));
    }
    let mut attachments = Vec::new();
    if let Some(recipient) = recipient {
        let plain = dossier(app, &mut tx, &f, &h.reference, now).await?;
        let bytes =
            tokio::task::spawn_blocking(move || crate::crypto::encrypt_to(&recipient, &plain))
                .await
                .map_err(|e| {
                    OpError::Conflict(format!("dossier encryption did not finish: {e}"))
                })??;
        attachments.push(Attachment {
            filename: format!("dossier-{}.age", f.reference),
            content_type: "application/octet-stream".into(),
            bytes,
        });
        if h.dossier == "withheld" {
            store::handovers::set_dossier_attached(&mut tx, h.id).await?;
        }
    }
    let h = store::handovers::by_ref(&mut tx, id)
        .await?
        .ok_or_else(|| not_found("handover", id))?;
    let data = FactsData::load(app, &mut tx, &h, now).await?;
    let from = cfg.municipality(&h.from_municipality);
    let facts = data.facts(
        &h,
        from,
        &to,
        attachments.first().map(|a| a.filename.as_str()),
        0,
    );
    let link = crate::mail::workspace::url(
        &cfg.web.base_url,
        &format!("/team/handovers/{}", h.reference),
    );
    let facts = HandoverFacts {
        link: Some(&link),
        ..facts
    };
    let (subject, body) = render(HandoverMail::Handover, cfg.mail.language, &facts);
    store::outbox::enqueue(
        &mut tx,
        &store::outbox::NewMessage {
            key: &format!("handover_resend:{}:{}", h.reference, to_secs(now)),
            kind: "handover_resend",
            family_ref: Some(&h.family_ref),
            recipients: std::slice::from_ref(&to.team_email),
            cc: &[],
            subject: &subject,
            body: &body,
            attachments: &attachments,
            now: to_secs(now),
        },
    )
    .await?;
    let dossier_state = if attachments.is_empty() {
        "withheld"
    } else {
        "attached"
    };
    app.audit(
        &mut tx,
        &Entry {
            action: "handover.resend",
            family: Some(&h.family_ref),
            subject: Some(&h.reference),
            detail: Some(dossier_state),
        },
    )
    .await?;
    tx.commit().await?;
    tracing::info!(handover = %h.reference, family = %h.family_ref, municipality = %h.to_municipality, dossier = dossier_state, "handover resent");
    Ok(Resent {
        handover: h.reference,
        family: h.family_ref,
        to: h.to_municipality,
        sent_to: to.team_email.clone(),
        dossier: dossier_state,
    })
}

/// Which handovers `handover list` shows.
#[derive(Clone, Copy, Debug, Default)]
pub struct ListFilter<'a> {
    pub pending: bool,
    pub withheld: bool,
    pub municipality: Option<&'a str>,
}

pub async fn list(app: &App, filter: ListFilter<'_>) -> Result<Vec<HandoverView>, OpError> {
    if let Some(m) = filter.municipality {
        known(app, "municipality", m)?;
    }
    let mut tx = app.store.read().await?;
    let rows = store::handovers::list(
        &mut tx,
        filter.pending,
        filter.withheld,
        filter.municipality,
    )
    .await?;
    tx.commit().await?;
    rows.into_iter().map(view).collect()
}

/// Every handover of a family, oldest first (the family page's history).
pub async fn history(conn: &mut Conn, family_id: i64) -> Result<Vec<HandoverView>, OpError> {
    store::handovers::of_family(conn, family_id)
        .await?
        .into_iter()
        .map(view)
        .collect()
}

/// Seals `director` as the family's case director and ends any "no case director" state a
/// move left: shared by a reassignment and a move's acknowledgement.
async fn name_case_director(
    app: &App,
    tx: &mut Conn,
    f: &store::families::FamilyRow,
    director: &CaseDirector,
) -> Result<(), OpError> {
    let (Some(dek), Some(sealed)) = (app.family_dek(tx, f).await?, &f.sealed_details) else {
        return Err(OpError::Conflict(format!(
            "family {} has no details to update",
            f.reference
        )));
    };
    let place = super::family::family_place(&f.reference);
    let mut details: FamilyDetails = open_json(&dek, sealed, &place)?;
    details.case_director.name = director.name.clone();
    details.case_director.email = director.email.clone();
    let resealed = seal_json(&dek, &details, &place)?;
    store::families::set_sealed_details(tx, f.id, &resealed).await?;
    store::handovers::director_named_for_family(tx, f.id).await?;
    Ok(())
}
