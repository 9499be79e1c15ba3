//! What a team sends to enrol a family, and the checks it must pass before anything is stored.

use super::FieldError;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EpisodeKind {
    ShelterExit,
    CaseClosed,
}

impl EpisodeKind {
    pub fn code(&self) -> &'static str {
        match self {
            EpisodeKind::ShelterExit => "shelter_exit",
            EpisodeKind::CaseClosed => "case_closed",
        }
    }

    pub fn from_code(s: &str) -> Option<Self> {
        match s {
            "shelter_exit" => Some(EpisodeKind::ShelterExit),
            "case_closed" => Some(EpisodeKind::CaseClosed),
            _ => None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Adult,
    Child,
}

impl Role {
    pub fn code(&self) -> &'static str {
        match self {
            Role::Adult => "adult",
            Role::Child => "child",
        }
    }

    pub fn from_code(s: &str) -> Option<Self> {
        match s {
            "adult" => Some(Role::Adult),
            "child" => Some(Role::Child),
            _ => None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Sex {
    F,
    M,
    X,
}

#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Episode {
    pub kind: EpisodeKind,
    pub date: NaiveDate,
}

/// The professional who directs the family's case (regievoerder). Personal data: sealed.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CaseDirector {
    pub name: String,
    pub email: String,
}

/// One member as sent in. Everything but `role` is personal data and is sealed.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MemberInput {
    pub role: Role,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub birth_date: Option<NaiveDate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sex: Option<Sex>,
}

/// The body of `family enroll` and `POST /v1/families`.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Enrolment {
    pub episode: Episode,
    pub municipality: String,
    pub plan: String,
    #[serde(default = "default_language")]
    pub language: String,
    #[serde(default)]
    pub interpreter_needed: bool,
    pub case_director: CaseDirector,
    #[serde(default)]
    pub address: Option<String>,
    #[serde(default)]
    pub notes: Option<String>,
    /// Life-domain stressors at enrolment (debts, housing, work, mental_health, addiction…).
    #[serde(default)]
    pub stressors: Vec<String>,
    pub members: Vec<MemberInput>,
}

fn default_language() -> String {
    "nl".into()
}

/// The sealed part of a family record: everything that could identify or describe a person.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FamilyDetails {
    pub case_director: CaseDirectorDetails,
    #[serde(default)]
    pub address: Option<String>,
    #[serde(default)]
    pub notes: Option<String>,
    #[serde(default)]
    pub stressors: Vec<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CaseDirectorDetails {
    pub name: String,
    pub email: String,
}

/// The sealed part of a member record.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MemberDetails {
    pub name: String,
    #[serde(default)]
    pub birth_date: Option<NaiveDate>,
    #[serde(default)]
    pub phone: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub sex: Option<Sex>,
}

pub use crate::types::is_code;

/// Earliest date we accept anywhere: older dates are typing mistakes.
pub fn earliest_date() -> NaiveDate {
    NaiveDate::from_ymd_opt(1900, 1, 1).unwrap_or(NaiveDate::MIN)
}

/// Longest free text we accept in one field (notes, addresses).
pub const MAX_TEXT: usize = 16 * 1024;

pub(crate) fn check_text(errors: &mut Vec<FieldError>, field: &str, value: &str, required: bool) {
    if required && value.trim().is_empty() {
        errors.push(FieldError::new(field, "must not be empty"));
    }
    if value.len() > MAX_TEXT {
        errors.push(FieldError::new(
            field,
            format!("longer than {MAX_TEXT} bytes"),
        ));
    }
    if value
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t' && c != '\r')
    {
        errors.push(FieldError::new(field, "contains control characters"));
    }
}

pub(crate) fn check_date(
    errors: &mut Vec<FieldError>,
    field: &str,
    d: NaiveDate,
    today: NaiveDate,
) {
    if d < earliest_date() {
        errors.push(FieldError::new(field, "before 1900-01-01"));
    }
    if d > today {
        errors.push(FieldError::new(field, "in the future"));
    }
}

impl Enrolment {
    /// Checks everything that needs no database: `known_municipality` and `known_plan` answer
    /// from the config; `today` is the clock's local date.
    pub fn validate(
        &self,
        today: NaiveDate,
        known_municipality: impl Fn(&str) -> bool,
        known_plan: impl Fn(&str) -> bool,
    ) -> Result<(), Vec<FieldError>> {
        let mut e = Vec::new();
        check_date(&mut e, "episode.date", self.episode.date, today);
        if !known_municipality(&self.municipality) {
            // A municipality code is not personal data: name it so the team can fix it.
            e.push(FieldError::new(
                "municipality",
                format!(
                    "unknown municipality `{}`",
                    self.municipality.chars().take(12).collect::<String>()
                ),
            ));
        }
        if !known_plan(&self.plan) {
            e.push(FieldError::new(
                "plan",
                format!(
                    "unknown plan `{}`",
                    self.plan.chars().take(40).collect::<String>()
                ),
            ));
        }
        let lang_ok = (2..=3).contains(&self.language.len())
            && self.language.bytes().all(|b| b.is_ascii_lowercase());
        if !lang_ok {
            e.push(FieldError::new(
                "language",
                "expected an ISO 639 code such as nl, en, ar",
            ));
        }
        check_text(&mut e, "case_director.name", &self.case_director.name, true);
        if !crate::config::plausible_email(&self.case_director.email) {
            e.push(FieldError::new(
                "case_director.email",
                "not an email address",
            ));
        }
        if let Some(a) = &self.address {
            check_text(&mut e, "address", a, false);
        }
        if let Some(n) = &self.notes {
            check_text(&mut e, "notes", n, false);
        }
        for (i, s) in self.stressors.iter().enumerate() {
            if !is_code(s) {
                e.push(FieldError::new(
                    format!("stressors[{i}]"),
                    "expected a code such as debts",
                ));
            }
        }
        if self.members.is_empty() {
            e.push(FieldError::new("members", "at least one member is needed"));
        }
        if self.members.len() > 30 {
            e.push(FieldError::new("members", "more than 30 members"));
        }
        for (i, m) in self.members.iter().enumerate() {
            let f = |k: &str| format!("members[{i}].{k}");
            check_text(&mut e, &f("name"), &m.name, true);
            match (m.role, m.birth_date) {
                (Role::Child, None) => {
                    e.push(FieldError::new(f("birth_date"), "required for a child"))
                }
                (_, Some(d)) => check_date(&mut e, &f("birth_date"), d, today),
                (Role::Adult, None) => {}
            }
            if let Some(p) = &m.phone {
                let ok = p.len() <= 32
                    && p.chars().all(|c| c.is_ascii_digit() || " +-()".contains(c))
                    && p.chars().any(|c| c.is_ascii_digit());
                if !ok {
                    e.push(FieldError::new(f("phone"), "not a phone number"));
                }
            }
            if let Some(mail) = &m.email
                && !crate::config::plausible_email(mail)
            {
                e.push(FieldError::new(f("email"), "not an email address"));
            }
        }
        if e.is_empty() { Ok(()) } else { Err(e) }
    }

    pub fn family_details(&self) -> FamilyDetails {
        FamilyDetails {
            case_director: CaseDirectorDetails {
                name: self.case_director.name.clone(),
                email: self.case_director.email.clone(),
            },
            address: self.address.clone(),
            notes: self.notes.clone(),
            stressors: self.stressors.clone(),
        }
    }
}

impl MemberInput {
    pub fn details(&self) -> MemberDetails {
        MemberDetails {
            name: self.name.clone(),
            birth_date: self.birth_date,
            phone: self.phone.clone(),
            email: self.email.clone(),
            sex: self.sex,
        }
    }
}

/// Observation values as recorded: a map of indicator code → JSON value. Indicator
/// definitions arrive with the relapse-signal rules; until then values are stored faithfully.
pub type Observations = BTreeMap<String, serde_json::Value>;

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn sample() -> Enrolment {
        crate::domain::parse_json(
            br#"{"episode": {"kind": "shelter_exit", "date": "2026-12-01"},
             "municipality": "GM0363", "plan": "standard",
             "case_director": {"name": "R. Director", "email": "r@team.example"},
             "members": [{"role": "adult", "name": "Secret Adult", "birth_date": "1990-04-02", "phone": "+31 6 1234"},
                         {"role": "child", "name": "Secret Child", "birth_date": "2016-07-19", "sex": "f"}]}"#,
        )
        .unwrap()
    }

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 12, 10).unwrap()
    }

    #[test]
    fn a_good_enrolment_passes() {
        sample()
            .validate(today(), |m| m == "GM0363", |p| p == "standard")
            .unwrap();
    }

    #[test]
    fn bad_fields_are_named_without_their_values() {
        let mut e = sample();
        e.members[1].birth_date = None;
        e.members[0].birth_date = NaiveDate::from_ymd_opt(1899, 12, 31);
        e.episode.date = NaiveDate::from_ymd_opt(2027, 1, 1).unwrap();
        e.municipality = "GM9999".into();
        let errs = e
            .validate(today(), |m| m == "GM0363", |p| p == "standard")
            .unwrap_err();
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "episode.date",
                "municipality",
                "members[0].birth_date",
                "members[1].birth_date"
            ]
        );
        assert!(errs.iter().all(|e| !e.message.contains("Secret")));
    }
}
