//! `[[municipalities]]`: the teams by CBS code.

use super::*;

#[derive(Debug, Deserialize)]
pub(super) struct RawMunicipality {
    pub(super) code: String,
    pub(super) name: String,
    pub(super) team_email: String,
    pub(super) coordinator_email: String,
    pub(super) region: String,
    pub(super) age_recipient: Option<String>,
    /// The coordinator's name, for the address line of escalations. Optional.
    pub(super) coordinator_name: Option<String>,
}

/// A municipality (by CBS code) and its aftercare team.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Municipality {
    pub code: String,
    pub name: String,
    pub team_email: String,
    pub coordinator_email: String,
    pub region: String,
    pub age_recipient: Option<String>,
    /// `coordinator_name`: how escalations address the coordinator (optional).
    pub coordinator_name: Option<String>,
}

pub(super) fn m_into(m: RawMunicipality) -> Municipality {
    Municipality {
        code: m.code,
        name: m.name,
        team_email: m.team_email,
        coordinator_email: m.coordinator_email,
        region: m.region,
        age_recipient: m.age_recipient,
        coordinator_name: m.coordinator_name.filter(|n| !n.trim().is_empty()),
    }
}

/// Checks `[[municipalities]]`: at least one, CBS codes listed once, names, addresses and
/// age recipients.
pub(super) fn validate_municipalities(
    raw: Vec<RawMunicipality>,
    is: &mut Issues,
) -> BTreeMap<String, Municipality> {
    let mut municipalities = BTreeMap::new();
    if raw.is_empty() {
        is.push(
            "municipalities",
            "at least one [[municipalities]] entry is needed",
        );
    }
    let mut seen = BTreeSet::new();
    for (i, m) in raw.into_iter().enumerate() {
        let key = format!("municipalities[{i}]");
        if !is_cbs_code(&m.code) {
            is.push(format!("{key}.code"), "expected a CBS code such as GM0363");
        }
        if !seen.insert(m.code.clone()) {
            is.push(format!("{key}.code"), format!("{} is listed twice", m.code));
        }
        if m.name.trim().is_empty() {
            is.push(format!("{key}.name"), "must not be empty");
        }
        if !plausible_email(&m.team_email) {
            is.push(format!("{key}.team_email"), "not an email address");
        }
        if !plausible_email(&m.coordinator_email) {
            is.push(format!("{key}.coordinator_email"), "not an email address");
        }
        if m.region.trim().is_empty() {
            is.push(format!("{key}.region"), "must not be empty");
        }
        if let Some(r) = &m.age_recipient
            && crate::crypto::parse_recipient(r).is_err()
        {
            is.push(
                format!("{key}.age_recipient"),
                "not an age X25519 recipient (age1…)",
            );
        }
        municipalities.insert(m.code.clone(), m_into(m));
    }
    municipalities
}
