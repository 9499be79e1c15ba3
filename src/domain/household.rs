//! Keeping the family record up to date (`family update`): contact details, members joining
//! and leaving, the case director, the ex-partner and court measures, the safety plan. The
//! checks here need no database; references are checked by the service.

use super::FieldError;
use super::enrolment::{CaseDirector, Sex, check_date, check_text};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

/// Roles a member added later may take. `ex_partner` (the ex-partner or perpetrator) is not a
/// household member: never contacted, never in a mail, never counted in rules or exports.
pub const ROLES: &[&str] = &["adult", "child", "ex_partner"];

/// Court measures concerning the ex-partner.
pub const MEASURES: &[&str] = &["huisverbod", "contactverbod", "omgangsregeling", "none"];

/// Why a member left the household (a code: it is kept plain with the member).
pub const LEAVE_REASONS: &[&str] = &[
    "moved_out",
    "placed_elsewhere",
    "came_of_age",
    "deceased",
    "added_in_error",
    "other",
];

/// Kinds of referral for a stressor (a code, sealed with the referral).
pub const REFERRAL_KINDS: &[&str] = &[
    "schuldhulp",
    "woningcorporatie",
    "inkomensondersteuning",
    "werk_re_integratie",
    "ggz",
    "verslavingszorg",
    "juridisch",
    "maatschappelijk_werk",
    "other",
];

/// A referral (e.g. schuldhulp) and whether it started. Sealed as a whole.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Referral {
    pub kind: String,
    pub started: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// Checks referrals (`referrals[i].kind`, `.detail`), for `family update` and for a
/// check-in's record alike.
pub fn check_referrals(e: &mut Vec<FieldError>, referrals: &[Referral]) {
    for (i, r) in referrals.iter().enumerate() {
        if !REFERRAL_KINDS.contains(&r.kind.as_str()) {
            e.push(FieldError::new(
                format!("referrals[{i}].kind"),
                format!("expected one of: {}", REFERRAL_KINDS.join(", ")),
            ));
        }
        if let Some(d) = &r.detail {
            check_text(e, &format!("referrals[{i}].detail"), d, false);
        }
    }
    if referrals.len() > 32 {
        e.push(FieldError::new(
            "referrals",
            "more than 32 referrals at once",
        ));
    }
}

/// The body of `family update` and `PATCH /v1/families/{ref}`. Every part is optional; the
/// whole update is applied in one transaction or not at all.
#[derive(Clone, Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FamilyUpdate {
    #[serde(default)]
    pub address: Option<String>,
    #[serde(default)]
    pub notes: Option<String>,
    #[serde(default)]
    pub case_director: Option<CaseDirector>,
    /// The responsible team's own case number (its file number); `""` removes it.
    #[serde(default)]
    pub case_number: Option<String>,
    /// New phone numbers or email addresses of current members.
    #[serde(default)]
    pub contacts: Vec<ContactChange>,
    #[serde(default)]
    pub add_members: Vec<NewMember>,
    #[serde(default)]
    pub remove_members: Vec<Removal>,
    /// Court measure changes for an ex-partner already recorded.
    #[serde(default)]
    pub measures: Vec<MeasureChange>,
    #[serde(default)]
    pub safety_plan: Option<SafetyPlan>,
    /// Referrals for stressors; a referral of a kind recorded before updates it.
    #[serde(default)]
    pub referrals: Vec<Referral>,
}

#[derive(Clone, Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContactChange {
    pub member: String,
    #[serde(default)]
    pub phone: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
}

/// A member joining (a newborn, a new partner) or the ex-partner being recorded.
#[derive(Clone, Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewMember {
    pub role: String,
    pub name: String,
    #[serde(default)]
    pub birth_date: Option<NaiveDate>,
    #[serde(default)]
    pub phone: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub sex: Option<Sex>,
    /// Only for `ex_partner`.
    #[serde(default)]
    pub measure: Option<Measure>,
}

#[derive(Clone, Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Removal {
    pub member: String,
    pub reason: String,
}

/// The status of a court measure concerning the ex-partner. Sealed as a whole.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Measure {
    pub kind: String,
    #[serde(default)]
    pub starts_on: Option<NaiveDate>,
    #[serde(default)]
    pub ends_on: Option<NaiveDate>,
}

#[derive(Clone, Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MeasureChange {
    pub member: String,
    #[serde(flatten)]
    pub measure: Measure,
}

/// The safety plan (veiligheidsplan): its text is sealed, its review date is reminded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SafetyPlan {
    pub text: String,
    pub review_on: NaiveDate,
}

/// The sealed part of an ex-partner record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExPartnerDetails {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub birth_date: Option<NaiveDate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sex: Option<Sex>,
    pub measure: Measure,
}

fn check_phone(e: &mut Vec<FieldError>, field: String, p: &str) {
    let ok = p.len() <= 32
        && p.chars().all(|c| c.is_ascii_digit() || " +-()".contains(c))
        && p.chars().any(|c| c.is_ascii_digit());
    if !ok {
        e.push(FieldError::new(field, "not a phone number"));
    }
}

fn check_email(e: &mut Vec<FieldError>, field: String, m: &str) {
    if !crate::config::plausible_email(m) {
        e.push(FieldError::new(field, "not an email address"));
    }
}

/// Checks a measure; `field` is its path (`add_members[0].measure`).
pub fn check_measure(e: &mut Vec<FieldError>, field: &str, m: &Measure) {
    if !MEASURES.contains(&m.kind.as_str()) {
        e.push(FieldError::new(
            format!("{field}.kind"),
            format!("unknown measure; expected one of: {}", MEASURES.join(", ")),
        ));
    }
    if m.kind == "none" && (m.starts_on.is_some() || m.ends_on.is_some()) {
        e.push(FieldError::new(
            format!("{field}.ends_on"),
            "no dates without a measure (kind none)",
        ));
    }
    if let (Some(s), Some(end)) = (m.starts_on, m.ends_on)
        && end < s
    {
        e.push(FieldError::new(
            format!("{field}.ends_on"),
            "before starts_on",
        ));
    }
    for d in [m.starts_on, m.ends_on].into_iter().flatten() {
        if d < super::enrolment::earliest_date() {
            e.push(FieldError::new(
                format!("{field}.starts_on"),
                "before 1900-01-01",
            ));
        }
    }
}

/// The longest case number kept (a file number, not a text).
pub const MAX_CASE_NUMBER: usize = 64;

/// A case number is one short line: letters, digits and the usual separators.
fn check_case_number(e: &mut Vec<FieldError>, n: &str) {
    if n.trim().chars().count() > MAX_CASE_NUMBER {
        e.push(FieldError::new(
            "case_number",
            format!("longer than {MAX_CASE_NUMBER} characters"),
        ));
    }
    if n.chars().any(char::is_control) {
        e.push(FieldError::new(
            "case_number",
            "one line without control characters",
        ));
    }
}

impl FamilyUpdate {
    /// Checks everything that needs no database; `today` is the clock's local date.
    pub fn validate(&self, today: NaiveDate) -> Result<(), Vec<FieldError>> {
        let mut e = Vec::new();
        if let Some(a) = &self.address {
            check_text(&mut e, "address", a, false);
        }
        if let Some(n) = &self.notes {
            check_text(&mut e, "notes", n, false);
        }
        if let Some(cd) = &self.case_director {
            check_text(&mut e, "case_director.name", &cd.name, true);
            check_email(&mut e, "case_director.email".into(), &cd.email);
        }
        if let Some(n) = &self.case_number {
            check_case_number(&mut e, n);
        }
        for (i, c) in self.contacts.iter().enumerate() {
            if c.phone.is_none() && c.email.is_none() {
                e.push(FieldError::new(
                    format!("contacts[{i}]"),
                    "give a phone or an email",
                ));
            }
            if let Some(p) = &c.phone {
                check_phone(&mut e, format!("contacts[{i}].phone"), p);
            }
            if let Some(m) = &c.email {
                check_email(&mut e, format!("contacts[{i}].email"), m);
            }
        }
        if self.add_members.len() > 30 {
            e.push(FieldError::new("add_members", "more than 30 members"));
        }
        for (i, m) in self.add_members.iter().enumerate() {
            let f = |k: &str| format!("add_members[{i}].{k}");
            check_text(&mut e, &f("name"), &m.name, true);
            match m.role.as_str() {
                "child" if m.birth_date.is_none() => {
                    e.push(FieldError::new(f("birth_date"), "required for a child"));
                }
                "adult" | "child" => {}
                "ex_partner" => {
                    // Never contacted: no way to reach them is stored.
                    if m.phone.is_some() {
                        e.push(FieldError::new(
                            f("phone"),
                            "an ex-partner is never contacted; leave it out",
                        ));
                    }
                    if m.email.is_some() {
                        e.push(FieldError::new(
                            f("email"),
                            "an ex-partner is never contacted; leave it out",
                        ));
                    }
                }
                _ => e.push(FieldError::new(
                    f("role"),
                    format!("unknown role; expected one of: {}", ROLES.join(", ")),
                )),
            }
            if let Some(d) = m.birth_date {
                check_date(&mut e, &f("birth_date"), d, today);
            }
            if let Some(p) = &m.phone {
                check_phone(&mut e, f("phone"), p);
            }
            if let Some(mail) = &m.email {
                check_email(&mut e, f("email"), mail);
            }
            match (&m.measure, m.role.as_str()) {
                (Some(ms), "ex_partner") => check_measure(&mut e, &f("measure"), ms),
                (Some(_), _) => e.push(FieldError::new(
                    f("measure"),
                    "only an ex_partner has a court measure",
                )),
                (None, _) => {}
            }
        }
        for (i, r) in self.remove_members.iter().enumerate() {
            if !LEAVE_REASONS.contains(&r.reason.as_str()) {
                e.push(FieldError::new(
                    format!("remove_members[{i}].reason"),
                    format!("expected one of: {}", LEAVE_REASONS.join(", ")),
                ));
            }
        }
        for (i, m) in self.measures.iter().enumerate() {
            check_measure(&mut e, &format!("measures[{i}]"), &m.measure);
        }
        if let Some(sp) = &self.safety_plan {
            check_text(&mut e, "safety_plan.text", &sp.text, true);
            if sp.review_on < today {
                e.push(FieldError::new("safety_plan.review_on", "in the past"));
            }
        }
        check_referrals(&mut e, &self.referrals);
        let empty = self.address.is_none()
            && self.notes.is_none()
            && self.case_director.is_none()
            && self.case_number.is_none()
            && self.contacts.is_empty()
            && self.add_members.is_empty()
            && self.remove_members.is_empty()
            && self.measures.is_empty()
            && self.safety_plan.is_none()
            && self.referrals.is_empty();
        if empty && e.is_empty() {
            e.push(FieldError::new("update", "nothing to change"));
        }
        if e.is_empty() { Ok(()) } else { Err(e) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 6, 1).unwrap_or_default()
    }

    #[test]
    fn bad_roles_measures_and_dates_are_named() {
        let u: FamilyUpdate = serde_json::from_str(
            r#"{"add_members": [
                 {"role": "uncle", "name": "A"},
                 {"role": "ex_partner", "name": "B", "phone": "0612345678",
                  "measure": {"kind": "straatverbod"}},
                 {"role": "ex_partner", "name": "C",
                  "measure": {"kind": "huisverbod", "starts_on": "2026-05-01", "ends_on": "2026-04-01"}}
               ],
               "remove_members": [{"member": "M-X", "reason": "bored"}]}"#,
        )
        .unwrap_or_default();
        let fields: Vec<String> = u
            .validate(today())
            .err()
            .unwrap_or_default()
            .into_iter()
            .map(|e| e.field)
            .collect();
        for f in [
            "add_members[0].role",
            "add_members[1].phone",
            "add_members[1].measure.kind",
            "add_members[2].measure.ends_on",
            "remove_members[0].reason",
        ] {
            assert!(fields.iter().any(|x| x == f), "{f} missing from {fields:?}");
        }
    }

    #[test]
    fn an_empty_update_is_refused() {
        assert!(FamilyUpdate::default().validate(today()).is_err());
    }
}
