//! Relapse signals in the imperative shell: builds each subject's history from the store,
//! asks `domain::signals` whether a rule fires, raises flags and enqueues red alerts in the
//! caller's transaction; lists, acknowledges and resolves flags; the daily digest.

use super::{App, OpError, open_json, seal_json};
use crate::crypto::{Dek, FieldPlace};
use crate::domain::FieldError;
use crate::domain::enrolment::Observations;
use crate::domain::recording::RecordDetails;
use crate::domain::signals::{Contact, Evidence, RuleKind, Scope, Severity, Visit, evaluate};
use crate::store::{self, Conn, StoreError, families::FamilyRow, from_secs, to_secs};
use chrono::{DateTime, Datelike, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The row key that binds a flag's sealed columns: stable before the flag has an id.
pub(crate) fn flag_row_key(rule: &str, subject: &str, trigger: &str) -> String {
    format!("{rule}/{subject}/{trigger}")
}

pub(crate) fn flag_place<'a>(family: &'a str, column: &'a str, row: &'a str) -> FieldPlace<'a> {
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
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
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
    due_at: i64,
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

/// What the rules read about a family: its check-ins in time order (with the values seen,
/// when asked for), the members followed, and since when it is in sight.
pub(crate) struct History {
    slots: Vec<Slot>,
    /// Children and adults are each a subject of their own (the adult victim is followed
    /// too); an ex-partner is no member and never a subject.
    followed: Vec<(Scope, i64, String)>,
    in_sight_since: DateTime<Utc>,
}

impl History {
    /// Builds the history from rows read (or about to be written: a record builds it with
    /// its own check-in and observations in place, before its write transaction).
    /// `observations` are only opened for recorded check-ins, and only with `need_values`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn build(
        app: &App,
        f: &FamilyRow,
        dek: &Dek,
        checkins: &[store::checkins::CheckinRow],
        observations: &[store::checkins::FamilyObservation],
        members: &[store::families::MemberRow],
        in_sight_since: i64,
        now: DateTime<Utc>,
        need_values: bool,
    ) -> Result<History, OpError> {
        let cfg = &app.config;
        let mut slots = Vec::with_capacity(checkins.len());
        for c in checkins {
            let contact = match (c.status.as_str(), c.outcome.as_deref()) {
                ("recorded", Some("reached")) => Contact::Reached,
                ("recorded", Some("not_reached")) | ("missed", _) => Contact::NotReached,
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
                due_at: c.retry_due_at.unwrap_or(c.due_at),
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
                for (_, member_id, member_ref, sealed) in
                    observations.iter().filter(|o| o.0 == c.id)
                {
                    let row = super::checkin::observation_row(&c.reference, member_ref);
                    let place = super::checkin::observation_place(&f.reference, &row);
                    slot.child_obs
                        .insert(*member_id, open_json(dek, sealed, &place)?);
                }
            }
            slots.push(slot);
        }
        let followed = members
            .iter()
            .filter_map(|m| match m.role.as_str() {
                "child" => Some((Scope::Child, m.id, m.reference.clone())),
                "adult" => Some((Scope::Adult, m.id, m.reference.clone())),
                _ => None,
            })
            .collect();
        Ok(History {
            slots,
            followed,
            in_sight_since: from_secs(in_sight_since)?,
        })
    }

    /// Reads the history in the caller's transaction: four queries, however many
    /// check-ins the family has.
    async fn read(
        app: &App,
        tx: &mut Conn,
        f: &FamilyRow,
        dek: &Dek,
        now: DateTime<Utc>,
        need_values: bool,
    ) -> Result<History, OpError> {
        let checkins = store::checkins::of_family(tx, f.id).await?;
        let observations = if need_values {
            store::checkins::family_observations(tx, f.id).await?
        } else {
            Vec::new()
        };
        let members = store::families::members(tx, f.id).await?;
        // `out_of_sight` counts time since the last reached contact (or enrolment).
        let in_sight_since = store::families::in_sight_since(tx, f.id)
            .await?
            .unwrap_or(f.enrolled_at);
        History::build(
            app,
            f,
            dek,
            &checkins,
            &observations,
            &members,
            in_sight_since,
            now,
            need_values,
        )
    }
}

/// The rules that `trigger` evaluates.
fn rules_for(app: &App, trigger: Trigger) -> Vec<&crate::domain::signals::Rule> {
    app.config
        .signals
        .rules
        .iter()
        .filter(|r| trigger != Trigger::Sweep || matches!(r.kind, RuleKind::OutOfSight { .. }))
        .collect()
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
    if rules_for(app, trigger).is_empty() {
        return Ok(Vec::new());
    }
    let need_values = matches!(trigger, Trigger::Recorded(_));
    let history = History::read(app, tx, f, dek, now, need_values).await?;
    raise(app, tx, f, dek, &history, now, trigger).await
}

/// Evaluates the rules on a family's `history` (as it stands in the caller's transaction),
/// raising new flags and enqueuing red alerts there. Reads only the flags of rules that fire.
pub(crate) async fn raise(
    app: &App,
    tx: &mut Conn,
    f: &FamilyRow,
    dek: &Dek,
    history: &History,
    now: DateTime<Utc>,
    trigger: Trigger,
) -> Result<Vec<Raised>, OpError> {
    let cfg = &app.config;
    let rules = rules_for(app, trigger);
    if rules.is_empty() {
        return Ok(Vec::new());
    }
    let slots = &history.slots;
    let trigger_index = match trigger {
        Trigger::Recorded(id) => slots.iter().position(|s| s.id == id),
        Trigger::Sweep => None,
    };
    let followed = &history.followed;
    let in_sight_since = history.in_sight_since;
    let mut raised = Vec::new();
    // Subjects: each child on its own, and the family.
    let mut subjects: Vec<(Scope, Option<i64>, String)> = followed
        .iter()
        .map(|(scope, id, r)| (*scope, Some(*id), r.clone()))
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
            if let RuleKind::OutOfSight {
                amber_after,
                red_after,
            } = rule.kind
            {
                let Some(severity) = crate::domain::signals::out_of_sight(
                    amber_after,
                    red_after,
                    rule.severity,
                    in_sight_since,
                    now,
                ) else {
                    continue;
                };
                let sight = Sight {
                    since: in_sight_since,
                    severity,
                    member_id: *member_id,
                    subject,
                };
                if let Some(r) =
                    raise_out_of_sight(app, tx, f, dek, slots, rule, &sight, now).await?
                {
                    raised.push(r);
                }
                continue;
            }
            let at = trigger_index;
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

/// Who is out of sight, since when, and how severe that is now.
struct Sight<'a> {
    since: DateTime<Utc>,
    severity: Severity,
    member_id: Option<i64>,
    subject: &'a str,
}

/// Raises `out_of_sight` at the latest check-in that fell due (the first one if none did),
/// or turns an open amber one red: the red alert goes out then. Evidence: the check-ins
/// since the last reached contact, with what became of them.
#[allow(clippy::too_many_arguments)]
async fn raise_out_of_sight(
    app: &App,
    tx: &mut Conn,
    f: &FamilyRow,
    dek: &Dek,
    slots: &[Slot],
    rule: &crate::domain::signals::Rule,
    sight: &Sight<'_>,
    now: DateTime<Utc>,
) -> Result<Option<Raised>, OpError> {
    let now_s = to_secs(now);
    let Some(slot) = slots
        .iter()
        .rev()
        .find(|s| s.due_at <= now_s)
        .or_else(|| slots.first())
    else {
        return Ok(None);
    };
    let child = sight.member_id.map(|_| sight.subject.to_string());
    if let Some((id, current)) = store::flags::active(tx, &rule.code, sight.subject).await? {
        if current == Severity::Amber.code() && sight.severity == Severity::Red {
            store::flags::set_severity(tx, id, Severity::Red.code()).await?;
            tracing::info!(flag = id, family = %f.reference, "out of sight: flag turned red");
            enqueue_alert(app, tx, f, id, child.as_deref(), rule, &slot.reference, now).await?;
            return Ok(Some(Raised {
                id,
                child,
                rule: rule.code.clone(),
                severity: Severity::Red.code(),
            }));
        }
        return Ok(None);
    }
    if store::flags::blocks(tx, &rule.code, sight.subject, slot.id).await? {
        return Ok(None);
    }
    let since = to_secs(sight.since);
    let evidence = Evidence {
        items: slots
            .iter()
            .filter(|s| s.due_at > since && s.due_at <= now_s && s.contact != Contact::Pending)
            .map(|s| crate::domain::signals::EvidenceItem {
                checkin: s.reference.clone(),
                indicator: None,
                value: None,
                contact: Some(s.contact),
            })
            .collect(),
        baseline: None,
    };
    let row = flag_row_key(&rule.code, sight.subject, &slot.reference);
    let sealed = seal_json(
        dek,
        &evidence,
        &flag_place(&f.reference, "sealed_evidence", &row),
    )?;
    let Some(id) = store::flags::insert(
        tx,
        &store::flags::NewFlag {
            family_id: f.id,
            member_id: sight.member_id,
            subject: sight.subject,
            rule: &rule.code,
            kind: rule.kind.code(),
            severity: sight.severity.code(),
            trigger_checkin_id: slot.id,
            raised_at: now_s,
            sealed_evidence: &sealed,
        },
    )
    .await?
    else {
        return Ok(None);
    };
    tracing::info!(flag = id, family = %f.reference, "flag raised");
    if sight.severity == Severity::Red {
        enqueue_alert(app, tx, f, id, child.as_deref(), rule, &slot.reference, now).await?;
    }
    Ok(Some(Raised {
        id,
        child,
        rule: rule.code.clone(),
        severity: sight.severity.code(),
    }))
}

/// Whether a flag of `rule` about `member` concerns an adult (an adult rule's flag), so a
/// mail labels the member so and not as a child.
fn about_an_adult(cfg: &crate::config::Config, rule: &str, member: Option<&str>) -> bool {
    member.is_some()
        && cfg
            .signals
            .rules
            .iter()
            .any(|r| r.code == rule && r.applies_to == Scope::Adult)
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
    let Some(muni) = cfg.addressee(&f.municipality) else {
        tracing::error!(flag = flag_id, family = %f.reference, municipality = %f.municipality, "municipality missing from config; red alert not sent");
        return Ok(());
    };
    let raised_local = crate::mail::words::when(now, cfg.timezone, cfg.mail.language);
    let link = crate::mail::workspace::url(&cfg.web.base_url, &format!("/team/flags/{flag_id}"));
    let facts = crate::mail::signals::AlertFacts {
        flag_id,
        family: &f.reference,
        child,
        adult: child.is_some() && rule.applies_to == Scope::Adult,
        rule: cfg.mail.rule_label(&rule.code, cfg.mail.language),
        kind: rule.kind.code(),
        severity: rule.severity.code(),
        checkin,
        municipality_code: &muni.code,
        municipality_name: &muni.name,
        raised_local: &raised_local,
        link: Some(&link),
    };
    let (subject, body) = crate::mail::signals::alert(cfg.mail.language, &facts);
    // (An amber flag that turns red was never alerted: the key is still free.)
    let key = format!("alert:{flag_id}");
    store::flags::mark_alerted(tx, flag_id, to_secs(now)).await?;
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

/// The sweep's part: `out_of_sight` is a time rule, so the sweep raises it when nobody
/// records anything. Returns the flags raised (or turned red).
///
/// Only families whose last reached contact (or enrolment) crossed one of the rules'
/// `amber_after`/`red_after` marks since the `previous` sweep are looked at; without a
/// previous sweep, every family past the earliest mark.
pub async fn sweep_out_of_sight(
    app: &App,
    now: DateTime<Utc>,
    previous: Option<DateTime<Utc>>,
) -> Result<u64, OpError> {
    let mut marks = Vec::new();
    for r in &app.config.signals.rules {
        if let RuleKind::OutOfSight {
            amber_after,
            red_after,
        } = r.kind
        {
            marks.push(amber_after);
            if r.severity == Severity::Red {
                marks.push(red_after);
            }
        }
    }
    let mut windows: Vec<(i64, i64)> = marks
        .iter()
        .filter_map(|d| {
            let upto = to_secs(d.sub_from(now)?);
            let from = previous
                .and_then(|p| d.sub_from(p))
                .map(to_secs)
                .unwrap_or(i64::MIN);
            (from < upto).then_some((from, upto))
        })
        .collect();
    windows.sort_unstable();
    windows.dedup();
    let mut raised = 0;
    for (from, upto) in windows {
        let mut after = 0;
        loop {
            let mut tx = app.store.write().await?;
            let ids =
                store::flags::out_of_sight_candidates(&mut tx, from, upto, after, BATCH).await?;
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
    }
    Ok(raised)
}

/// The daily digest: on working days from `digest.local_time` on, one mail per team, keyed
/// by team and local date so it goes once. It lists every unresolved red flag, the amber and
/// info flags raised or acknowledged since the team's previous digest, and on the first
/// working day of the week the other unresolved ones (so the same lines do not repeat every
/// day). A team with nothing to list gets no digest. Returns the digests enqueued.
pub async fn sweep_digest(app: &App, now: DateTime<Utc>) -> Result<u64, StoreError> {
    let cfg = &app.config;
    let working = &cfg.handover.working_days;
    let local = now.with_timezone(&cfg.timezone);
    let today = local.date_naive();
    if !working.is_working_day(today) || local.time() < cfg.digest_local_time {
        return Ok(0);
    }
    // The first working day of the ISO week carries the weekly summary.
    let monday = today - chrono::Days::new(u64::from(today.weekday().num_days_from_monday()));
    let weekly_day = working.on_or_after(monday) == today;
    let date = today.to_string();
    let mut tx = app.store.write().await?;
    type Sections = (
        Vec<crate::mail::signals::DigestLine>,
        Vec<crate::mail::signals::DigestLine>,
        Vec<crate::mail::signals::DigestLine>,
    );
    let mut by_team: BTreeMap<String, (Option<i64>, Sections)> = BTreeMap::new();
    for fl in store::flags::for_digest(&mut tx, to_secs(now)).await? {
        if !by_team.contains_key(&fl.municipality) {
            let prev = store::outbox::last_queued(&mut tx, &format!("digest:{}:", fl.municipality))
                .await?;
            by_team.insert(fl.municipality.clone(), (prev, Default::default()));
        }
        let Some((prev, (red, changed, weekly))) = by_team.get_mut(&fl.municipality) else {
            continue;
        };
        let since = prev.unwrap_or(i64::MIN);
        let is_new = fl.raised_at > since || fl.acknowledged_at.is_some_and(|a| a > since);
        let adult = about_an_adult(cfg, &fl.rule, fl.member_ref.as_deref());
        let line = crate::mail::signals::DigestLine {
            flag_id: fl.id,
            family: fl.family_ref,
            child: fl.member_ref,
            adult,
            rule: cfg.mail.rule_label(&fl.rule, cfg.mail.language).to_string(),
            severity: fl.severity,
            status: fl.status,
            raised_local: crate::mail::words::day(
                from_secs(fl.raised_at)?,
                cfg.timezone,
                cfg.mail.language,
            ),
            link: Some(crate::mail::workspace::url(
                &cfg.web.base_url,
                &format!("/team/flags/{}", fl.id),
            )),
        };
        if line.severity == "red" {
            red.push(line);
        } else if is_new {
            changed.push(line);
        } else if weekly_day {
            weekly.push(line);
        }
    }
    let mut sent = 0;
    let date_words = crate::mail::words::day(now, cfg.timezone, cfg.mail.language);
    for (code, (_, (red, changed, weekly))) in by_team {
        if red.is_empty() && changed.is_empty() && weekly.is_empty() {
            continue;
        }
        let Some(muni) = cfg.addressee(&code) else {
            tracing::error!(municipality = %code, "municipality missing from config; digest not sent");
            continue;
        };
        let key = format!("digest:{code}:{date}");
        let (subject, body) = crate::mail::followup::digest_sections(
            cfg.mail.language,
            &crate::mail::followup::DigestSections {
                municipality_code: &muni.code,
                municipality_name: &muni.name,
                date: &date_words,
                red: &red,
                changed: &changed,
                weekly: &weekly,
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

/// Red flags followed through, on working days: an open (unacknowledged) red flag is
/// alerted again from `digest.local_time` on each working day after its last alert, and
/// escalated once to the municipality's coordinator (cc the team) when it is still open
/// `flags.red_escalate_after` working days after it was raised. Returns (repeats,
/// escalations) enqueued.
pub async fn sweep_red_flags(app: &App, now: DateTime<Utc>) -> Result<(u64, u64), StoreError> {
    let cfg = &app.config;
    let working = &cfg.handover.working_days;
    let local = now.with_timezone(&cfg.timezone);
    let today = local.date_naive();
    if !working.is_working_day(today) {
        return Ok((0, 0));
    }
    let date = today.to_string();
    let date_words = crate::mail::words::day(now, cfg.timezone, cfg.mail.language);
    let (mut repeats, mut escalations) = (0, 0);
    let mut tx = app.store.write().await?;
    for r in store::flags::red_to_follow(&mut tx, to_secs(now)).await? {
        let fl = &r.flag;
        let Some(muni) = cfg.addressee(&fl.municipality) else {
            continue;
        };
        let raised = from_secs(fl.raised_at)?;
        let raised_local = crate::mail::words::when(raised, cfg.timezone, cfg.mail.language);
        let link =
            crate::mail::workspace::url(&cfg.web.base_url, &format!("/team/flags/{}", fl.id));
        let facts = crate::mail::signals::AlertFacts {
            flag_id: fl.id,
            family: &fl.family_ref,
            child: fl.member_ref.as_deref(),
            adult: about_an_adult(cfg, &fl.rule, fl.member_ref.as_deref()),
            rule: cfg.mail.rule_label(&fl.rule, cfg.mail.language),
            kind: &fl.kind,
            severity: &fl.severity,
            checkin: &fl.trigger_checkin,
            municipality_code: &muni.code,
            municipality_name: &muni.name,
            raised_local: &raised_local,
            link: Some(&link),
        };
        let alerted_day = r
            .alerted_at
            .map(from_secs)
            .transpose()?
            .map(|t| t.with_timezone(&cfg.timezone).date_naive());
        if alerted_day.is_some_and(|d| d < today) && local.time() >= cfg.digest_local_time {
            let (subject, body) = crate::mail::followup::red_repeat(
                cfg.mail.language,
                &facts,
                &date_words,
                cfg.red_escalate_after,
            );
            let fresh = store::outbox::enqueue(
                &mut tx,
                &store::outbox::NewMessage {
                    key: &format!("alert_repeat:{}:{date}", fl.id),
                    kind: "alert_repeat",
                    family_ref: Some(&fl.family_ref),
                    recipients: std::slice::from_ref(&muni.team_email),
                    cc: &[],
                    subject: &subject,
                    body: &body,
                    attachments: &[],
                    now: to_secs(now),
                },
            )
            .await?;
            store::flags::mark_alerted(&mut tx, fl.id, to_secs(now)).await?;
            repeats += u64::from(fresh);
        }
        let escalate_at = working.deadline(raised, cfg.red_escalate_after, cfg.timezone);
        if r.escalated_at.is_none() && now >= escalate_at {
            let (subject, body) = crate::mail::followup::red_escalation(
                cfg.mail.language,
                &facts,
                cfg.red_escalate_after,
                crate::mail::followup::Coordinator {
                    name: muni.coordinator_name.as_deref(),
                    email: &muni.coordinator_email,
                },
            );
            let cc = if muni.team_email == muni.coordinator_email {
                vec![]
            } else {
                vec![muni.team_email.clone()]
            };
            let fresh = store::outbox::enqueue(
                &mut tx,
                &store::outbox::NewMessage {
                    key: &format!("alert_escalation:{}", fl.id),
                    kind: "alert_escalation",
                    family_ref: Some(&fl.family_ref),
                    recipients: std::slice::from_ref(&muni.coordinator_email),
                    cc: &cc,
                    subject: &subject,
                    body: &body,
                    attachments: &[],
                    now: to_secs(now),
                },
            )
            .await?;
            store::flags::mark_red_escalated(&mut tx, fl.id, to_secs(now)).await?;
            escalations += u64::from(fresh);
        }
    }
    tx.commit().await?;
    Ok((repeats, escalations))
}

// ---- listing and the lifecycle ----------------------------------------------------------------

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct NoteView {
    pub at: DateTime<Utc>,
    pub by: Option<String>,
    pub note: Option<String>,
}

/// One flag as `flags list` and `family show` print it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
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
    app.require_responsible(&f)?;
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
