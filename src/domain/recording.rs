//! What a team records at a check-in, and the checks it must pass before anything is stored.

use super::FieldError;
use super::enrolment::{MAX_TEXT, Observations, earliest_date, is_code};
use chrono::{DateTime, FixedOffset, Utc};
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Reached,
    NotReached,
    Declined,
}

impl Outcome {
    pub fn code(&self) -> &'static str {
        match self {
            Outcome::Reached => "reached",
            Outcome::NotReached => "not_reached",
            Outcome::Declined => "declined",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    HomeVisit,
    Phone,
    Video,
    Office,
    Walk,
}

impl Mode {
    pub fn code(&self) -> &'static str {
        match self {
            Mode::HomeVisit => "home_visit",
            Mode::Phone => "phone",
            Mode::Video => "video",
            Mode::Office => "office",
            Mode::Walk => "walk",
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChildObservations {
    pub member: String,
    #[schema(value_type = Object)]
    #[serde(default)]
    pub observations: Observations,
}

/// The body of `checkin record` and `POST /v1/checkins/{id}/record`.
#[derive(Clone, Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckinRecord {
    pub checkin: String,
    pub at: DateTime<FixedOffset>,
    pub outcome: Outcome,
    pub mode: Mode,
    #[schema(value_type = Object)]
    #[serde(default)]
    pub family_observations: Observations,
    #[serde(default)]
    pub children: Vec<ChildObservations>,
    /// The adult victim is followed too: observations per adult member, checked against
    /// the indicators with `applies_to = "adult"` and evaluated by the adult rules.
    #[serde(default)]
    pub adults: Vec<ChildObservations>,
    #[serde(default)]
    pub notes: Option<String>,
    /// Who made the contact (attempt): personal data, sealed with the attempt.
    #[serde(default)]
    pub by: Option<String>,
    /// Referrals (e.g. schuldhulp) learnt of at this contact, with whether they started:
    /// checked and sealed as `family update` does.
    #[serde(default)]
    pub referrals: Vec<super::household::Referral>,
}

/// The sealed part of one contact attempt: who tried, and the notes of the attempt.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AttemptDetails {
    #[serde(default)]
    pub by: Option<String>,
    #[serde(default)]
    pub notes: Option<String>,
}

/// The sealed part of a recorded check-in (family level).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordDetails {
    #[schema(value_type = Object)]
    #[serde(default)]
    pub family_observations: Observations,
    #[serde(default)]
    pub notes: Option<String>,
}

const MAX_OBSERVATIONS: usize = 64;

fn check_observations(errors: &mut Vec<FieldError>, field: &str, obs: &Observations) {
    if obs.len() > MAX_OBSERVATIONS {
        errors.push(FieldError::new(
            field,
            format!("more than {MAX_OBSERVATIONS} indicators"),
        ));
    }
    for (code, value) in obs {
        let f = format!("{field}.{}", code.chars().take(40).collect::<String>());
        if !is_code(code) {
            errors.push(FieldError::new(
                field,
                "indicator codes are lowercase words such as wellbeing",
            ));
            continue;
        }
        let ok = match value {
            serde_json::Value::Bool(_) | serde_json::Value::Number(_) => true,
            serde_json::Value::String(s) => s.len() <= 200,
            // A list of codes, each possibly with a level: `{code, level}`; the indicator
            // check names what is wrong inside.
            serde_json::Value::Array(items) => {
                items.len() <= 32
                    && items.iter().all(|i| match i {
                        serde_json::Value::String(s) => is_code(s),
                        serde_json::Value::Object(o) => o.len() <= 2,
                        _ => false,
                    })
            }
            serde_json::Value::Null | serde_json::Value::Object(_) => false,
        };
        if !ok {
            errors.push(FieldError::new(
                f,
                "expected true/false, a number, a short text or a list of codes (or {code, level})",
            ));
        }
    }
}

impl CheckinRecord {
    /// Checks what needs no database. `now` is the clock's instant.
    pub fn validate(&self, now: DateTime<Utc>) -> Result<(), Vec<FieldError>> {
        let mut e = Vec::new();
        if !super::reference::looks_like(&self.checkin, 'C') {
            e.push(FieldError::new("checkin", "not a check-in id (C-…)"));
        }
        let at = self.at.with_timezone(&Utc);
        if at > now {
            e.push(FieldError::new("at", "in the future"));
        }
        if at.date_naive() < earliest_date() {
            e.push(FieldError::new("at", "before 1900-01-01"));
        }
        check_observations(&mut e, "family_observations", &self.family_observations);
        let mut seen = std::collections::BTreeSet::new();
        for (i, c) in self.children.iter().enumerate() {
            if !super::reference::looks_like(&c.member, 'M') {
                e.push(FieldError::new(
                    format!("children[{i}].member"),
                    "not a member reference (M-…)",
                ));
            } else if !seen.insert(c.member.as_str()) {
                e.push(FieldError::new(
                    format!("children[{i}].member"),
                    "listed twice",
                ));
            }
            check_observations(
                &mut e,
                &format!("children[{i}].observations"),
                &c.observations,
            );
        }
        for (i, a) in self.adults.iter().enumerate() {
            if !super::reference::looks_like(&a.member, 'M') {
                e.push(FieldError::new(
                    format!("adults[{i}].member"),
                    "not a member reference (M-…)",
                ));
            } else if !seen.insert(a.member.as_str()) {
                e.push(FieldError::new(
                    format!("adults[{i}].member"),
                    "listed twice",
                ));
            }
            check_observations(
                &mut e,
                &format!("adults[{i}].observations"),
                &a.observations,
            );
        }
        // Nothing was seen when nobody was reached or the family declined: observations
        // would be invented data.
        if self.outcome != Outcome::Reached {
            let why = format!(
                "observations are only recorded when the family was reached (outcome is {})",
                self.outcome.code()
            );
            if !self.family_observations.is_empty() {
                e.push(FieldError::new("family_observations", why.clone()));
            }
            if let Some(i) = self
                .children
                .iter()
                .position(|c| !c.observations.is_empty())
            {
                e.push(FieldError::new(
                    format!("children[{i}].observations"),
                    why.clone(),
                ));
            }
            if let Some(i) = self.adults.iter().position(|c| !c.observations.is_empty()) {
                e.push(FieldError::new(format!("adults[{i}].observations"), why));
            }
        }
        super::household::check_referrals(&mut e, &self.referrals);
        if let Some(b) = &self.by
            && (b.trim().is_empty() || b.len() > 200)
        {
            e.push(FieldError::new("by", "1 to 200 characters"));
        }
        if let Some(n) = &self.notes
            && n.len() > MAX_TEXT
        {
            e.push(FieldError::new(
                "notes",
                format!("longer than {MAX_TEXT} bytes"),
            ));
        }
        if e.is_empty() { Ok(()) } else { Err(e) }
    }
}
