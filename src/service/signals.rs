//! Relapse signals in the imperative shell: builds each subject's history from the store,
//! asks `domain::signals` whether a rule fires, raises flags and enqueues red alerts in the
//! caller's transaction; lists, acknowledges and resolves flags; the daily digest.

use super::{App, OpError, open_json, seal_json};
use crate::crypto::{Dek, FieldPlace};
use crate::domain::FieldError;
use crate::domain::enrolment::Observations;
use crate::domain::recording::RecordDetails;
use crate::domain::signals::{
    Contact, Evidence, RuleKind, Scope, Severity, Visit, evaluate, last_contact_point,
};
use crate::store::{self, Conn, StoreError, families::FamilyRow, from_secs, to_secs};
use chrono::{DateTime, Datelike, Utc, Weekday};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The row key that binds a flag's sealed columns: stable before the flag has an id.
fn flag_row_key(rule: &str, subject: &str, trigger: &str) -> String {
    format!("{rule}/{subject}/{trigger}")
}

fn flag_place<'a>(family: &'a str, column: &'a str, row: &'a str) -> FieldPlace<'a> {
    FieldPlace {
        family,
        table: "flags",
        column,
        row,
    }
}

/// Who acted on a flag and why. Personal data: sealed.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlagNote {
    pub by: Option<String>,
    pub note: String,
}

/// A flag raised during an operation (for the answer of `checkin record` and the sweep).
#[derive(Clone, Debug, Serialize)]
pub struct Raised {
    pub id: i64,
    pub child: Option<String>,
    pub rule: String,
    pub severity: &'static str,
}

/// What one check-in looked like, with the values opened lazily.
struct Slot {
    id: i64,
    reference: String,
    contact: Contact,
    family_obs: Option<Observations>,
    /// member id → observations
    child_obs: BTreeMap<i64, Observations>,
}

/// Which rules to evaluate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trigger {
    /// After a check-in was recorded: every rule, observation rules at this check-in.
    Recorded(i64),
    /// From the sweep: `out_of_sight` only.
    Sweep,
}

/// Evaluates the rules for one family inside the caller's transaction, raising new flags
/// and enqueuing red alerts. `dek` opens observations and seals evidence.
pub async fn evaluate_family(
    app: &App,
    tx: &mut Conn,
    f: &FamilyRow,
    dek: &Dek,
    now: DateTime<Utc>,
    trigger: Trigger,
) -> Result<Vec<Raised>, OpError> {
    let cfg = &app.config;
    let rules: Vec<_> = cfg
        .signals
        .rules
        .iter()
        .filter(|r| trigger != Trigger::Sweep || matches!(r.kind, RuleKind::OutOfSight { .. }))
        .collect();
    if rules.is_empty() {
        return Ok(Vec::new());
    }
    let need_values = matches!(trigger, Trigger::Recorded(_));
    let mut slots = Vec::new();
    for c in store::checkins::of_family(tx, f.id).await? {
        let contact = match (c.status.as_str(), c.outcome.as_deref()) {
            ("recorded", Some("reached")) => Contact::Reached,
            ("recorded", Some("not_reached")) => Contact::NotReached,
            ("recorded", Some("declined")) => Contact::Declined,
            ("open", _) => {
                let due = from_secs(c.due_at)?;
                match cfg.reminders.overdue_after.add_to(due) {
                    Some(t) if t <= now => Contact::Overdue,
                    _ => Contact::Pending,
                }
            }
            _ => Contact::Pending,
        };
        let mut slot = Slot {
            id: c.id,
            reference: c.reference.clone(),
            contact,
            family_obs: None,
            child_obs: BTreeMap::new(),
        };
        if need_values && c.status == "recorded" {
            if let Some(sealed) = &c.sealed_record {
                let place = super::checkin::record_place(&f.reference, &c.reference);
                let d: RecordDetails = open_json(dek, sealed, &place)?;
                slot.family_obs = Some(d.family_observations);
            }
            for (member_id, member_ref, sealed) in store::checkins::observations(tx, c.id).await? {
                let row = super::checkin::observation_row(&c.reference, &member_ref);
                let place = super::checkin::observation_place(&f.reference, &row);
                slot.child_obs
                    .insert(member_id, open_json(dek, &sealed, &place)?);
            }
        }
        slots.push(slot);
    }
    let trigger_index = match trigger {
        Trigger::Recorded(id) => slots.iter().position(|s| s.id == id),
        Trigger::Sweep => None,
    };
    let children: Vec<(i64, String)> = store::families::members(tx, f.id)
        .await?
        .into_iter()
        .filter(|m| m.role == "child")
        .map(|m| (m.id, m.reference))
        .collect();
    let mut raised = Vec::new();
    // Subjects: each child on its own, and the family.
    let mut subjects: Vec<(Scope, Option<i64>, String)> = children
        .iter()
        .map(|(id, r)| (Scope::Child, Some(*id), r.clone()))
        .collect();
    subjects.push((Scope::Family, None, f.reference.clone()));
    for (scope, member_id, subject) in &subjects {
        let history: Vec<Visit> = slots
            .iter()
            .map(|s| Visit {
                checkin: &s.reference,
                contact: s.contact,
                observations: match member_id {
                    Some(m) => s.child_obs.get(m),
                    None => s.family_obs.as_ref().filter(|o| !o.is_empty()),
                },
            })
            .collect();
        for rule in rules.iter().filter(|r| r.applies_to == *scope) {
            let at = match rule.kind {
                RuleKind::OutOfSight { .. } => last_contact_point(&history),
                _ => trigger_index,
            };
            let Some(at) = at else { continue };
            let Some(evidence) = evaluate(&cfg.signals, rule, &history, at) else {
                continue;
            };
            let slot = &slots[at];
            if store::flags::blocks(tx, &rule.code, subject, slot.id).await? {
                continue;
            }
            let row = flag_row_key(&rule.code, subject, &slot.reference);
            let sealed = seal_json(
                dek,
                &evidence,
                &flag_place(&f.reference, "sealed_evidence", &row),
            )?;
            let Some(id) = store::flags::insert(
                tx,
                &store::flags::NewFlag {
                    family_id: f.id,
                    member_id: *member_id,
                    subject,
                    rule: &rule.code,
                    kind: rule.kind.code(),
                    severity: rule.severity.code(),
                    trigger_checkin_id: slot.id,
                    raised_at: to_secs(now),
                    sealed_evidence: &sealed,
                },
            )
            .await?
            else {
                continue;
            };
            let child = member_id.map(|_| subject.clone());
            // No rule code or severity in the log: together with the reference they are
            // evidence about the family.
            tracing::info!(flag = id, family = %f.reference, "flag raised");
            if rule.severity == Severity::Red {
                enqueue_alert(app, tx, f, id, child.as_deref(), rule, &slot.reference, now).await?;
            }
            raised.push(Raised {
                id,
                child,
                rule: rule.code.clone(),
                severity: rule.severity.code(),
            });
        }
    }
    Ok(raised)
}

#[allow(clippy::too_many_arguments)]
async fn enqueue_alert(
    app: &App,
    tx: &mut Conn,
    f: &FamilyRow,
    flag_id: i64,
    child: Option<&str>,
    rule: &crate::domain::signals::Rule,
    checkin: &str,
    now: DateTime<Utc>,
) -> Result<(), OpError> {
    let cfg = &app.config;
    let Some(muni) = cfg.municipality(&f.municipality) else {
        tracing::error!(flag = flag_id, family = %f.reference, municipality = %f.municipality, "municipality missing from config; red alert not sent");
        return Ok(());
    };
    let raised_local = crate::sweep::local_label(now, cfg.timezone);
    let facts = crate::mail::signals::AlertFacts {
        flag_id,
        family: &f.reference,
        child,
        rule: &rule.code,
        kind: rule.kind.code(),
        severity: rule.severity.code(),
        checkin,
        municipality_code: &muni.code,
        municipality_name: &muni.name,
        raised_local: &raised_local,
    };
    let (subject, body) = crate::mail::signals::alert(cfg.mail.language, &facts);
    let key = format!("alert:{flag_id}");
    store::outbox::enqueue(
        tx,
        &store::outbox::NewMessage {
            key: &key,
            kind: "alert",
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
    Ok(())
}

/// Batch size of the sweep's out-of-sight pass.
const BATCH: i64 = 200;

/// The sweep's part: `out_of_sight` for every running family with an open check-in past
/// due, so the rule fires when nobody records anything. Returns the flags raised.
///
/// Only families with a check-in that became overdue since the `previous` sweep are looked
/// at: out-of-sight changes only when a check-in passes its overdue instant (recording
/// evaluates its family at once). Without a previous sweep, every family is looked at.
pub async fn sweep_out_of_sight(
    app: &App,
    now: DateTime<Utc>,
    previous: Option<DateTime<Utc>>,
) -> Result<u64, OpError> {
    if !app
        .config
        .signals
        .rules
        .iter()
        .any(|r| matches!(r.kind, RuleKind::OutOfSight { .. }))
    {
        return Ok(0);
    }
    let cutoff = app
        .config
        .reminders
        .overdue_after
        .sub_from(now)
        .unwrap_or(now);
    let since = previous
        .and_then(|p| app.config.reminders.overdue_after.sub_from(p))
        .map(to_secs)
        .unwrap_or(i64::MIN);
    let mut after = 0;
    let mut raised = 0;
    loop {
        let mut tx = app.store.write().await?;
        let ids =
            store::flags::out_of_sight_candidates(&mut tx, since, to_secs(cutoff), after, BATCH)
                .await?;
        for id in &ids {
            after = *id;
            let Some(f) = store::families::by_id(&mut tx, *id, to_secs(now)).await? else {
                continue;
            };
            let Some(dek) = app.family_dek(&mut tx, &f).await? else {
                continue;
            };
            raised += evaluate_family(app, &mut tx, &f, &dek, now, Trigger::Sweep)
                .await?
                .len() as u64;
        }
        tx.commit().await?;
        if (ids.len() as i64) < BATCH {
            break;
        }
    }
    Ok(raised)
}

/// The daily digest: on working days from `digest.local_time` on, one mail per team with
/// its unresolved amber and info flags, keyed by team and local date so it goes once.
/// Returns the digests enqueued.
pub async fn sweep_digest(app: &App, now: DateTime<Utc>) -> Result<u64, StoreError> {
    let cfg = &app.config;
    let local = now.with_timezone(&cfg.timezone);
    if matches!(local.weekday(), Weekday::Sat | Weekday::Sun)
        || local.time() < cfg.digest_local_time
    {
        return Ok(0);
    }
    let date = local.date_naive().to_string();
    let mut tx = app.store.write().await?;
    let mut by_team: BTreeMap<String, Vec<crate::mail::signals::DigestLine>> = BTreeMap::new();
    for fl in store::flags::for_digest(&mut tx, to_secs(now)).await? {
        by_team.entry(fl.municipality.clone()).or_default().push(
            crate::mail::signals::DigestLine {
                flag_id: fl.id,
                family: fl.family_ref,
                child: fl.member_ref,
                rule: fl.rule,
                severity: fl.severity,
                status: fl.status,
                raised_local: crate::sweep::local_label(from_secs(fl.raised_at)?, cfg.timezone),
            },
        );
    }
    let mut sent = 0;
    for (code, lines) in by_team {
        let Some(muni) = cfg.municipality(&code) else {
            tracing::error!(municipality = %code, "municipality missing from config; digest not sent");
            continue;
        };
        let key = format!("digest:{code}:{date}");
        let (subject, body) = crate::mail::signals::digest(
            cfg.mail.language,
            &crate::mail::signals::DigestFacts {
                municipality_code: &muni.code,
                municipality_name: &muni.name,
                date: &date,
                lines: &lines,
            },
        );
        let fresh = store::outbox::enqueue(
            &mut tx,
            &store::outbox::NewMessage {
                key: &key,
                kind: "digest",
                family_ref: None,
                recipients: std::slice::from_ref(&muni.team_email),
                cc: &[],
                subject: &subject,
                body: &body,
                attachments: &[],
                now: to_secs(now),
            },
        )
        .await?;
        sent += u64::from(fresh);
    }
    tx.commit().await?;
    Ok(sent)
}

// ---- listing and the lifecycle ----------------------------------------------------------------

#[derive(Debug, Serialize)]
pub struct NoteView {
    pub at: DateTime<Utc>,
    pub by: Option<String>,
    pub note: Option<String>,
}

/// One flag as `flags list` and `family show` print it.
#[derive(Debug, Serialize)]
pub struct FlagView {
    pub id: i64,
    pub family: String,
    /// The child's member reference; `null` for family-level flags.
    pub child: Option<String>,
    pub rule: String,
    pub kind: String,
    pub severity: String,
    pub status: String,
    pub checkin: String,
    pub municipality: String,
    pub raised_at: DateTime<Utc>,
    /// `null` once the family was erased.
    pub evidence: Option<Evidence>,
    pub acknowledged: Option<NoteView>,
    pub resolved: Option<NoteView>,
}

async fn view(
    app: &App,
    tx: &mut Conn,
    fl: store::flags::FlagRow,
    deks: &mut BTreeMap<i64, Option<Dek>>,
) -> Result<FlagView, OpError> {
    if let std::collections::btree_map::Entry::Vacant(slot) = deks.entry(fl.family_id) {
        let dek = match store::families::by_id(tx, fl.family_id, app.now().timestamp()).await? {
            Some(f) => app.family_dek(tx, &f).await?,
            None => None,
        };
        slot.insert(dek);
    }
    let dek = deks.get(&fl.family_id).and_then(Option::as_ref);
    let subject = fl
        .member_ref
        .clone()
        .unwrap_or_else(|| fl.family_ref.clone());
    let row = flag_row_key(&fl.rule, &subject, &fl.trigger_checkin);
    let open = |sealed: &Option<Vec<u8>>, column: &str| -> Result<Option<Vec<u8>>, OpError> {
        match (dek, sealed) {
            (Some(dek), Some(s)) => Ok(Some(
                dek.open(s, &flag_place(&fl.family_ref, column, &row))?
                    .to_vec(),
            )),
            _ => Ok(None),
        }
    };
    let decode = |bytes: Option<Vec<u8>>, column: &str| -> Result<Option<FlagNote>, OpError> {
        bytes
            .map(|b| {
                serde_json::from_slice(&b).map_err(|_| {
                    OpError::Store(StoreError::Corrupt(format!(
                        "sealed flags.{column} of {} does not decode",
                        fl.family_ref
                    )))
                })
            })
            .transpose()
    };
    let evidence: Option<Evidence> = match open(&fl.sealed_evidence, "sealed_evidence")? {
        Some(b) => Some(serde_json::from_slice(&b).map_err(|_| {
            OpError::Store(StoreError::Corrupt(format!(
                "sealed flags.sealed_evidence of {} does not decode",
                fl.family_ref
            )))
        })?),
        None => None,
    };
    let ack = decode(open(&fl.sealed_ack, "sealed_ack")?, "sealed_ack")?;
    let res = decode(
        open(&fl.sealed_resolution, "sealed_resolution")?,
        "sealed_resolution",
    )?;
    let note_view = |at: Option<i64>, n: Option<FlagNote>| -> Result<Option<NoteView>, OpError> {
        match at {
            Some(at) => Ok(Some(NoteView {
                at: from_secs(at)?,
                by: n.as_ref().and_then(|n| n.by.clone()),
                note: n.map(|n| n.note),
            })),
            None => Ok(None),
        }
    };
    Ok(FlagView {
        id: fl.id,
        acknowledged: note_view(fl.acknowledged_at, ack)?,
        resolved: note_view(fl.resolved_at, res)?,
        family: fl.family_ref,
        child: fl.member_ref,
        rule: fl.rule,
        kind: fl.kind,
        severity: fl.severity,
        status: fl.status,
        checkin: fl.trigger_checkin,
        municipality: fl.municipality,
        raised_at: from_secs(fl.raised_at)?,
        evidence,
    })
}

/// `flags list`: every flag, or those of one municipality (responsible now) / unresolved.
pub async fn list(
    app: &App,
    municipality: Option<&str>,
    open_only: bool,
) -> Result<Vec<FlagView>, OpError> {
    if let Some(m) = municipality
        && !app.config.municipalities.contains_key(m)
    {
        return Err(OpError::invalid("municipality", "unknown municipality"));
    }
    let mut tx = app.store.read().await?;
    let rows = store::flags::list(&mut tx, municipality, open_only, app.now().timestamp()).await?;
    let mut deks = BTreeMap::new();
    let mut out = Vec::with_capacity(rows.len());
    for fl in rows {
        out.push(view(app, &mut tx, fl, &mut deks).await?);
    }
    tx.commit().await?;
    // Evidence and notes are personal data: each family read is recorded before handing out.
    let families: std::collections::BTreeSet<&str> =
        out.iter().map(|f| f.family.as_str()).collect();
    let mut w = app.store.write().await?;
    for family in families {
        app.audit(
            &mut w,
            &crate::audit::Entry {
                action: "flags.read",
                family: Some(family),
                ..Default::default()
            },
        )
        .await?;
    }
    w.commit().await?;
    Ok(out)
}

/// The flags of one family, for `family show` (and the handover dossier).
pub async fn of_family(app: &App, tx: &mut Conn, family_id: i64) -> Result<Vec<FlagView>, OpError> {
    let rows = store::flags::of_family(tx, family_id, app.now().timestamp()).await?;
    let mut deks = BTreeMap::new();
    let mut out = Vec::with_capacity(rows.len());
    for fl in rows {
        out.push(view(app, tx, fl, &mut deks).await?);
    }
    Ok(out)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    Acknowledge,
    Resolve,
}

const MAX_NOTE: usize = 4096;

/// `flags ack` / `flags resolve`: the note (and who) are sealed with the family's key.
pub async fn act(
    app: &App,
    id: i64,
    step: Step,
    note: &str,
    by: Option<&str>,
) -> Result<FlagView, OpError> {
    let mut errors = Vec::new();
    if note.trim().is_empty() {
        errors.push(FieldError::new("note", "must not be empty"));
    }
    if note.len() > MAX_NOTE {
        errors.push(FieldError::new(
            "note",
            format!("longer than {MAX_NOTE} bytes"),
        ));
    }
    if by.is_some_and(|b| b.trim().is_empty() || b.len() > 200) {
        errors.push(FieldError::new("by", "1 to 200 characters"));
    }
    if !errors.is_empty() {
        return Err(OpError::Invalid(errors));
    }
    let not_found = || OpError::NotFound {
        what: "flag",
        reference: id.to_string(),
    };
    let now = app.now();
    let mut tx = app.store.write().await?;
    let fl = store::flags::by_id(&mut tx, id, app.now().timestamp())
        .await?
        .ok_or_else(not_found)?;
    let f = store::families::by_id(&mut tx, fl.family_id, to_secs(now))
        .await?
        .ok_or_else(not_found)?;
    let Some(dek) = app.family_dek(&mut tx, &f).await? else {
        return Err(OpError::Conflict(format!(
            "family {} is erased",
            f.reference
        )));
    };
    let subject = fl
        .member_ref
        .clone()
        .unwrap_or_else(|| fl.family_ref.clone());
    let row = flag_row_key(&fl.rule, &subject, &fl.trigger_checkin);
    let value = FlagNote {
        by: by.map(str::to_string),
        note: note.to_string(),
    };
    let done = match step {
        Step::Acknowledge => {
            let sealed = seal_json(&dek, &value, &flag_place(&f.reference, "sealed_ack", &row))?;
            store::flags::acknowledge(&mut tx, id, to_secs(now), &sealed).await?
        }
        Step::Resolve => {
            let sealed = seal_json(
                &dek,
                &value,
                &flag_place(&f.reference, "sealed_resolution", &row),
            )?;
            store::flags::resolve(&mut tx, id, to_secs(now), &sealed).await?
        }
    };
    if !done {
        return Err(OpError::Conflict(format!("flag {id} is {}", fl.status)));
    }
    let fl = store::flags::by_id(&mut tx, id, app.now().timestamp())
        .await?
        .ok_or_else(not_found)?;
    let mut deks = BTreeMap::new();
    deks.insert(f.id, Some(dek));
    let out = view(app, &mut tx, fl, &mut deks).await?;
    let flag_id = id.to_string();
    app.audit(
        &mut tx,
        &crate::audit::Entry {
            action: match step {
                Step::Acknowledge => "flag.ack",
                Step::Resolve => "flag.resolve",
            },
            family: Some(&f.reference),
            subject: Some(&flag_id),
            detail: Some(&out.rule),
        },
    )
    .await?;
    tx.commit().await?;
    tracing::info!(flag = id, family = %f.reference, status = %out.status, "flag updated");
    Ok(out)
}
