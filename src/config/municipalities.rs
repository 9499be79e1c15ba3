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
