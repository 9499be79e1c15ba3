//! Keeping the family record up to date (`family update`, `PATCH /v1/families/{ref}`), and
//! the sweep's part of it: the end of a court measure flagged ahead of time, the safety plan
//! reminded at its review date. One function per action, shared by the CLI and the API.

use super::family::{EnrolledMember, family_by_ref, family_place};
use super::{App, OpError, open_json, seal_json};
use crate::audit::Entry;
use crate::crypto::{Dek, FieldPlace};
use crate::domain::FieldError;
use crate::domain::enrolment::{CaseDirectorDetails, FamilyDetails, MemberDetails, Role};
use crate::domain::household::{ExPartnerDetails, FamilyUpdate, Measure, Referral, SafetyPlan};
use crate::domain::reference;
use crate::store::{self, Conn, StoreError, to_secs};
use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

pub(crate) fn member_place<'a>(family: &'a str, member: &'a str) -> FieldPlace<'a> {
    FieldPlace {
        family,
        table: "members",
        column: "sealed_details",
        row: member,
    }
}

pub(crate) fn ex_partner_place<'a>(family: &'a str, row: &'a str) -> FieldPlace<'a> {
    FieldPlace {
        family,
        table: "ex_partners",
        column: "sealed_details",
        row,
    }
}

/// Where a team's case number is sealed: bound to the family and to the municipality whose
/// number it is, so it cannot be moved to another team's row.
pub(crate) fn case_number_place<'a>(family: &'a str, municipality: &'a str) -> FieldPlace<'a> {
    FieldPlace {
        family,
        table: "case_numbers",
        column: "sealed_number",
        row: municipality,
    }
}

/// The team's own case number for a family, opened with its key; `None` if not set.
pub(crate) async fn case_number(
    conn: &mut Conn,
    family_id: i64,
    family_ref: &str,
    municipality: &str,
    dek: Option<&Dek>,
) -> Result<Option<String>, OpError> {
    let Some(k) = dek else {
        return Ok(None);
    };
    match store::case_numbers::of(conn, family_id, municipality).await? {
        Some(s) => Ok(Some(open_json(
            k,
            &s,
            &case_number_place(family_ref, municipality),
        )?)),
        None => Ok(None),
    }
}

pub(crate) fn safety_plan_place(family: &str) -> FieldPlace<'_> {
    FieldPlace {
        family,
        table: "families",
        column: "sealed_safety_plan",
        row: family,
    }
}

pub(crate) fn referral_place<'a>(family: &'a str, row: &'a str) -> FieldPlace<'a> {
    FieldPlace {
        family,
        table: "referrals",
        column: "sealed_details",
        row,
    }
}

/// A referral as shown: the latest state of each kind comes last.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ReferralView {
    pub recorded_at: DateTime<Utc>,
    #[serde(flatten)]
    pub referral: Referral,
}

/// What `family update` answers: what changed (codes and references only).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Updated {
    pub family: String,
    pub added: Vec<EnrolledMember>,
    pub removed: Vec<String>,
    pub changed: Vec<&'static str>,
}

/// The start of a local date as an instant: when a measure ends or a review falls due.
fn local_start(app: &App, d: NaiveDate) -> Result<i64, OpError> {
    crate::domain::plan::local_instant(app.config.timezone, d.and_time(chrono::NaiveTime::MIN))
        .map(to_secs)
        .ok_or_else(|| OpError::invalid("date", "does not exist in the configured time zone"))
}

fn measure_ends_at(app: &App, m: &Measure) -> Result<Option<i64>, OpError> {
    match (m.kind.as_str(), m.ends_on) {
        ("none", _) | (_, None) => Ok(None),
        (_, Some(d)) => local_start(app, d).map(Some),
    }
}

/// Applies a [`FamilyUpdate`] in one transaction: every change sealed under the family's
/// key and audited on its own; any bad field refuses the whole update, nothing changed.
pub async fn update(app: &App, family_ref: &str, u: &FamilyUpdate) -> Result<Updated, OpError> {
    let now_at = app.now();
    let now = to_secs(now_at);
    let today = now_at.with_timezone(&app.config.timezone).date_naive();
    u.validate(today).map_err(OpError::Invalid)?;
    let mut tx = app.store.write().await?;
    let f = family_by_ref(&mut tx, family_ref, now).await?;
    app.require_responsible(&f)?;
    if f.status != "running" {
        return Err(OpError::Conflict(format!(
            "family {} is {}; only a running family's record is changed",
            f.reference, f.status
        )));
    }
    let Some(dek) = app.family_dek(&mut tx, &f).await? else {
        return Err(OpError::Conflict(format!(
            "family {} is erased",
            f.reference
        )));
    };
    let members = store::families::members(&mut tx, f.id).await?;
    let partners = store::household::ex_partners(&mut tx, f.id).await?;
    let current = |r: &str| {
        members
            .iter()
            .find(|m| m.reference == r && m.left_at.is_none())
    };
    let partner = |r: &str| {
        partners
            .iter()
            .find(|x| x.reference == r && x.left_at.is_none())
    };
    let mut errors = Vec::new();
    for (i, c) in u.contacts.iter().enumerate() {
        if partner(&c.member).is_some() {
            errors.push(FieldError::new(
                format!("contacts[{i}].member"),
                "an ex-partner is never contacted",
            ));
        } else if current(&c.member).is_none() {
            errors.push(FieldError::new(
                format!("contacts[{i}].member"),
                "not a current member of this family",
            ));
        }
    }
    for (i, r) in u.remove_members.iter().enumerate() {
        if current(&r.member).is_none() && partner(&r.member).is_none() {
            errors.push(FieldError::new(
                format!("remove_members[{i}].member"),
                "not a current member of this family",
            ));
        }
        if u.remove_members[..i].iter().any(|p| p.member == r.member) {
            errors.push(FieldError::new(
                format!("remove_members[{i}].member"),
                "listed twice",
            ));
        }
    }
    let staying = members
        .iter()
        .filter(|m| m.left_at.is_none())
        .filter(|m| !u.remove_members.iter().any(|r| r.member == m.reference))
        .count()
        + u.add_members
            .iter()
            .filter(|m| m.role != "ex_partner")
            .count();
    if staying == 0 {
        errors.push(FieldError::new(
            "remove_members",
            "the household would have no members left",
        ));
    }
    for (i, m) in u.measures.iter().enumerate() {
        if partner(&m.member).is_none() {
            errors.push(FieldError::new(
                format!("measures[{i}].member"),
                "not an ex-partner of this family",
            ));
        }
    }
    if !errors.is_empty() {
        return Err(OpError::Invalid(errors));
    }

    let mut changed = Vec::new();
    let audit = |action: &'static str| Entry {
        action,
        family: Some(&f.reference),
        ..Default::default()
    };
    if u.address.is_some() || u.notes.is_some() || u.case_director.is_some() {
        let place = family_place(&f.reference);
        let mut details: FamilyDetails = match f.sealed_details.as_deref() {
            Some(s) => open_json(&dek, s, &place)?,
            None => {
                return Err(OpError::Conflict(format!(
                    "family {} is erased",
                    f.reference
                )));
            }
        };
        if let Some(a) = &u.address {
            details.address = Some(a.clone()).filter(|a| !a.trim().is_empty());
            changed.push("address");
        }
        if let Some(n) = &u.notes {
            details.notes = Some(n.clone()).filter(|n| !n.trim().is_empty());
            changed.push("notes");
        }
        if let Some(cd) = &u.case_director {
            details.case_director = CaseDirectorDetails {
                name: cd.name.clone(),
                email: cd.email.clone(),
            };
            changed.push("case_director");
        }
        let sealed = seal_json(&dek, &details, &place)?;
        store::families::set_sealed_details(&mut tx, f.id, &sealed).await?;
        if u.case_director.is_some() {
            // The responsible team named the case director: a move no longer leaves the
            // family without one.
            store::handovers::director_named_for_family(&mut tx, f.id).await?;
        }
        for c in changed.clone() {
            let action = match c {
                "address" => "family.update.address",
                "notes" => "family.update.notes",
                _ => "family.update.case_director",
            };
            app.audit(&mut tx, &audit(action)).await?;
        }
    }
    if let Some(n) = &u.case_number {
        // The number belongs to the team responsible now (the one allowed to change it).
        let n = n.trim();
        if n.is_empty() {
            store::case_numbers::clear(&mut tx, f.id, &f.municipality).await?;
        } else {
            let sealed = seal_json(
                &dek,
                &n.to_string(),
                &case_number_place(&f.reference, &f.municipality),
            )?;
            store::case_numbers::set(&mut tx, f.id, &f.municipality, &sealed, now).await?;
        }
        app.audit(
            &mut tx,
            &Entry {
                detail: Some(&f.municipality),
                ..audit("family.update.case_number")
            },
        )
        .await?;
        changed.push("case_number");
    }
    for c in &u.contacts {
        let Some(m) = current(&c.member) else {
            continue;
        };
        let place = member_place(&f.reference, &m.reference);
        let Some(sealed) = m.sealed_details.as_deref() else {
            continue;
        };
        let mut d: MemberDetails = open_json(&dek, sealed, &place)?;
        if let Some(p) = &c.phone {
            d.phone = Some(p.clone());
        }
        if let Some(e) = &c.email {
            d.email = Some(e.clone());
        }
        let sealed = seal_json(&dek, &d, &place)?;
        store::household::set_member_details(&mut tx, m.id, &sealed).await?;
        app.audit(
            &mut tx,
            &Entry {
                subject: Some(&m.reference),
                ..audit("family.update.contact")
            },
        )
        .await?;
    }
    if !u.contacts.is_empty() {
        changed.push("contacts");
    }

    let mut added = Vec::new();
    let mut position = store::household::next_position(&mut tx, f.id).await?;
    for m in &u.add_members {
        let r = reference::member();
        if m.role == "ex_partner" {
            let measure = m.measure.clone().unwrap_or(Measure {
                kind: "none".into(),
                starts_on: None,
                ends_on: None,
            });
            let ends = measure_ends_at(app, &measure)?;
            let sealed = seal_json(
                &dek,
                &ExPartnerDetails {
                    name: m.name.clone(),
                    birth_date: m.birth_date,
                    sex: m.sex,
                    measure,
                },
                &ex_partner_place(&f.reference, &r),
            )?;
            store::household::insert_ex_partner(&mut tx, f.id, &r, &sealed, ends, now).await?;
        } else {
            let role = Role::from_code(&m.role).unwrap_or(Role::Adult);
            let details = MemberDetails {
                name: m.name.clone(),
                birth_date: m.birth_date,
                phone: m.phone.clone(),
                email: m.email.clone(),
                sex: m.sex,
            };
            let sealed = seal_json(&dek, &details, &member_place(&f.reference, &r))?;
            store::families::insert_member(&mut tx, f.id, &r, role.code(), position, &sealed)
                .await?;
            position += 1;
        }
        app.audit(
            &mut tx,
            &Entry {
                subject: Some(&r),
                detail: Some(&m.role),
                ..audit(match m.role.as_str() {
                    "ex_partner" => "family.update.add_ex_partner",
                    _ => "family.update.add_member",
                })
            },
        )
        .await?;
        added.push(EnrolledMember {
            reference: r,
            role: match m.role.as_str() {
                "child" => "child",
                "ex_partner" => "ex_partner",
                _ => "adult",
            },
        });
    }
    if !added.is_empty() {
        changed.push("add_members");
    }

    let mut removed = Vec::new();
    for r in &u.remove_members {
        if let Some(m) = current(&r.member) {
            store::household::member_left(&mut tx, m.id, now, &r.reason).await?;
        } else if let Some(x) = partner(&r.member) {
            store::household::ex_partner_left(&mut tx, x.id, now).await?;
        }
        app.audit(
            &mut tx,
            &Entry {
                subject: Some(&r.member),
                detail: Some(&r.reason),
                ..audit("family.update.remove_member")
            },
        )
        .await?;
        removed.push(r.member.clone());
    }
    if !removed.is_empty() {
        changed.push("remove_members");
    }

    for mc in &u.measures {
        let Some(x) = partner(&mc.member) else {
            continue;
        };
        let place = ex_partner_place(&f.reference, &x.reference);
        let Some(sealed) = x.sealed_details.as_deref() else {
            continue;
        };
        let mut d: ExPartnerDetails = open_json(&dek, sealed, &place)?;
        d.measure = mc.measure.clone();
        let ends = measure_ends_at(app, &d.measure)?;
        let sealed = seal_json(&dek, &d, &place)?;
        store::household::set_measure(&mut tx, x.id, &sealed, ends).await?;
        app.audit(
            &mut tx,
            &Entry {
                subject: Some(&x.reference),
                ..audit("family.update.measure")
            },
        )
        .await?;
    }
    if !u.measures.is_empty() {
        changed.push("measures");
    }

    add_referrals(app, &mut tx, &f, &dek, &u.referrals, None, now).await?;
    if !u.referrals.is_empty() {
        changed.push("referrals");
    }
    if let Some(sp) = &u.safety_plan {
        let review_at = local_start(app, sp.review_on)?;
        let sealed = seal_json(&dek, sp, &safety_plan_place(&f.reference))?;
        store::household::set_safety_plan(&mut tx, f.id, &sealed, review_at).await?;
        app.audit(&mut tx, &audit("family.update.safety_plan"))
            .await?;
        changed.push("safety_plan");
    }
    tx.commit().await?;
    tracing::info!(family = %f.reference, changes = changed.len(), "family record updated");
    Ok(Updated {
        family: f.reference,
        added,
        removed,
        changed,
    })
}

/// Keeps referrals in the caller's transaction, each sealed on its own row and audited
/// (`family.update.referral`, with the check-in when one was recorded with it).
pub(crate) async fn add_referrals(
    app: &App,
    tx: &mut Conn,
    f: &store::families::FamilyRow,
    dek: &Dek,
    referrals: &[Referral],
    checkin: Option<&str>,
    now: i64,
) -> Result<(), OpError> {
    for r in referrals {
        let id = store::household::next_referral_id(tx).await?;
        let row = id.to_string();
        let sealed = seal_json(dek, r, &referral_place(&f.reference, &row))?;
        store::household::insert_referral(tx, id, f.id, now, &sealed).await?;
        app.audit(
            tx,
            &Entry {
                action: "family.update.referral",
                family: Some(&f.reference),
                subject: checkin,
                ..Default::default()
            },
        )
        .await?;
    }
    Ok(())
}

/// An ex-partner as shown to the operator and the responsible team.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ExPartnerView {
    #[serde(rename = "ref")]
    pub reference: String,
    /// `None` once erased.
    #[serde(flatten)]
    pub details: Option<ExPartnerDetails>,
    pub measure_ends_at: Option<DateTime<Utc>>,
    pub measure_signalled_at: Option<DateTime<Utc>>,
    pub left_at: Option<DateTime<Utc>>,
}

/// What `family show` adds from the kept-up record.
pub(crate) struct RecordViews {
    pub ex_partners: Vec<ExPartnerView>,
    pub safety_plan: Option<SafetyPlan>,
    pub referrals: Vec<ReferralView>,
}

/// The ex-partners, the safety plan and the referrals of a family, opened with its key.
pub(crate) async fn record_views(
    conn: &mut Conn,
    family_id: i64,
    family_ref: &str,
    dek: Option<&Dek>,
) -> Result<RecordViews, OpError> {
    let opt_time = |t: Option<i64>| t.map(store::from_secs).transpose();
    let mut views = Vec::new();
    for x in store::household::ex_partners(conn, family_id).await? {
        let details = match (dek, x.sealed_details.as_deref()) {
            (Some(k), Some(s)) => Some(open_json(
                k,
                s,
                &ex_partner_place(family_ref, &x.reference),
            )?),
            _ => None,
        };
        views.push(ExPartnerView {
            reference: x.reference,
            details,
            measure_ends_at: opt_time(x.measure_ends_at)?,
            measure_signalled_at: opt_time(x.measure_noticed_at)?,
            left_at: opt_time(x.left_at)?,
        });
    }
    let (sealed, _) = store::household::safety_plan(conn, family_id).await?;
    let plan = match (dek, sealed.as_deref()) {
        (Some(k), Some(s)) => Some(open_json(k, s, &safety_plan_place(family_ref))?),
        _ => None,
    };
    let mut referrals = Vec::new();
    if let Some(k) = dek {
        for (id, at, sealed) in store::household::referrals(conn, family_id).await? {
            let row = id.to_string();
            referrals.push(ReferralView {
                recorded_at: store::from_secs(at)?,
                referral: open_json(k, &sealed, &referral_place(family_ref, &row))?,
            });
        }
    }
    Ok(RecordViews {
        ex_partners: views,
        safety_plan: plan,
        referrals,
    })
}

const BATCH: i64 = 200;

/// The sweep's part: a court measure ending within `flags.measure_notice` raises an amber
/// family flag (`measure_notice`), once per end date; a safety plan whose review date came
/// is reminded to the responsible team on a working day, once per review date. Returns
/// (flags, reminders).
pub async fn sweep_record(app: &App, now: DateTime<Utc>) -> Result<(u64, u64), StoreError> {
    let as_store = |e: OpError| match e {
        OpError::Store(s) => s,
        other => StoreError::Corrupt(other.to_string()),
    };
    let mut flags = 0;
    let now_s = to_secs(now);
    let until = app.config.measure_notice.add_to(now).map_or(now_s, to_secs);
    loop {
        let mut tx = app.store.write().await?;
        let batch = store::household::measures_to_signal(&mut tx, until, BATCH).await?;
        let n = batch.len();
        for (id, x_ref, family_id) in batch {
            if measure_flag(app, &mut tx, family_id, &x_ref, now)
                .await
                .map_err(as_store)?
            {
                flags += 1;
            }
            store::household::mark_measure_noticed(&mut tx, id, now_s).await?;
        }
        tx.commit().await?;
        if i64::try_from(n).unwrap_or(i64::MAX) < BATCH {
            break;
        }
    }
    let mut reminders = 0;
    // Teams read mail on working days: a review date on a weekend or holiday is reminded
    // on the next working day (the first sweep of it).
    let local_today = now.with_timezone(&app.config.timezone).date_naive();
    if !app.config.handover.working_days.is_working_day(local_today) {
        return Ok((flags, reminders));
    }
    loop {
        let mut tx = app.store.write().await?;
        let batch = store::household::safety_reviews_due(&mut tx, now_s, BATCH).await?;
        let n = batch.len();
        for (family_id, review_at) in batch {
            if safety_reminder(app, &mut tx, family_id, review_at, now).await? {
                reminders += 1;
            }
            store::household::mark_safety_reminded(&mut tx, family_id, now_s).await?;
        }
        tx.commit().await?;
        if i64::try_from(n).unwrap_or(i64::MAX) < BATCH {
            break;
        }
    }
    Ok((flags, reminders))
}

async fn measure_flag(
    app: &App,
    tx: &mut Conn,
    family_id: i64,
    x_ref: &str,
    now: DateTime<Utc>,
) -> Result<bool, OpError> {
    let now_s = to_secs(now);
    let Some(f) = store::families::by_id(tx, family_id, now_s).await? else {
        return Ok(false);
    };
    let Some(dek) = app.family_dek(tx, &f).await? else {
        return Ok(false);
    };
    let checkins = store::checkins::of_family(tx, f.id).await?;
    let Some(trigger) = checkins
        .iter()
        .rev()
        .find(|c| c.due_at <= now_s)
        .or_else(|| checkins.first())
    else {
        return Ok(false);
    };
    let rule = "measure_notice";
    // A family flag (no member): sealed at the family's place like every family flag, so
    // the flag views open it; the subject (one active flag per ex-partner) stays the
    // ex-partner's reference.
    let row = super::signals::flag_row_key(rule, &f.reference, &trigger.reference);
    let evidence = crate::domain::signals::Evidence {
        items: Vec::new(),
        baseline: None,
    };
    let sealed = seal_json(
        &dek,
        &evidence,
        &super::signals::flag_place(&f.reference, "sealed_evidence", &row),
    )?;
    let id = store::flags::insert(
        tx,
        &store::flags::NewFlag {
            family_id: f.id,
            member_id: None,
            subject: x_ref,
            rule,
            kind: rule,
            severity: "amber",
            trigger_checkin_id: trigger.id,
            raised_at: now_s,
            sealed_evidence: &sealed,
        },
    )
    .await?;
    if id.is_some() {
        tracing::info!(family = %f.reference, "court measure ends soon: flag raised");
        app.acting_as(crate::audit::Actor::System)
            .audit(
                tx,
                &Entry {
                    action: "flag.measure_notice",
                    family: Some(&f.reference),
                    ..Default::default()
                },
            )
            .await?;
    }
    Ok(id.is_some())
}

async fn safety_reminder(
    app: &App,
    tx: &mut Conn,
    family_id: i64,
    review_at: i64,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    use crate::mail::record::{SAFETY_REVIEW_KIND, SafetyReviewFacts, safety_plan_review};
    let cfg = &app.config;
    let Some(f) = store::families::by_id(tx, family_id, to_secs(now)).await? else {
        return Ok(false);
    };
    let Some(muni) = cfg.addressee(&f.municipality) else {
        tracing::error!(family = %f.reference, "municipality missing from config; safety plan reminder not sent");
        return Ok(false);
    };
    let review_on = crate::mail::words::day(
        store::from_secs(review_at)?,
        cfg.timezone,
        cfg.mail.language,
    );
    let link = crate::mail::workspace::url(
        &cfg.web.base_url,
        &format!("/team/families/{}", f.reference),
    );
    let (subject, body) = safety_plan_review(
        cfg.mail.language,
        &SafetyReviewFacts {
            family: &f.reference,
            municipality_code: &muni.code,
            municipality_name: &muni.name,
            review_on: &review_on,
            link: Some(&link),
        },
    );
    let fresh = store::outbox::enqueue(
        tx,
        &store::outbox::NewMessage {
            key: &format!("{SAFETY_REVIEW_KIND}:{}:{review_at}", f.reference),
            kind: SAFETY_REVIEW_KIND,
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
    Ok(fresh)
}
