//! `[schedule]`, `[reminders]` and `[retention]`: when the sweep runs and what it owes.

use super::*;

#[derive(Debug, Deserialize)]
pub(super) struct RawSchedule {
    #[serde(default = "default_timezone")]
    pub(super) timezone: String,
    #[serde(default = "default_sweep")]
    pub(super) sweep: String,
}

impl Default for RawSchedule {
    fn default() -> Self {
        RawSchedule {
            timezone: default_timezone(),
            sweep: default_sweep(),
        }
    }
}

pub(super) fn default_timezone() -> String {
    "Europe/Amsterdam".into()
}

pub(super) fn default_sweep() -> String {
    "0 */5 * * * *".into()
}

#[derive(Debug, Deserialize)]
pub(super) struct RawReminders {
    #[serde(default = "d_lead")]
    pub(super) lead: String,
    #[serde(default = "d_overdue_after")]
    pub(super) overdue_after: String,
    #[serde(default = "d_repeat_every")]
    pub(super) repeat_every: String,
    #[serde(default = "d_max_overdue")]
    pub(super) max_overdue: u32,
    #[serde(default = "d_retry_after")]
    pub(super) retry_after: String,
    #[serde(default = "d_max_attempts_contact")]
    pub(super) max_attempts: u32,
    #[serde(default = "d_lead_interpreter")]
    pub(super) lead_interpreter: String,
}

pub(super) fn d_retry_after() -> String {
    "P7D".into()
}

pub(super) fn d_max_attempts_contact() -> u32 {
    3
}

pub(super) fn d_lead_interpreter() -> String {
    "P5D".into()
}

pub(super) fn d_lead() -> String {
    "P2D".into()
}

pub(super) fn d_overdue_after() -> String {
    "P3D".into()
}

pub(super) fn d_repeat_every() -> String {
    "P7D".into()
}

pub(super) fn d_max_overdue() -> u32 {
    3
}

impl Default for RawReminders {
    fn default() -> Self {
        RawReminders {
            lead: d_lead(),
            overdue_after: d_overdue_after(),
            repeat_every: d_repeat_every(),
            max_overdue: d_max_overdue(),
            retry_after: d_retry_after(),
            max_attempts: d_max_attempts_contact(),
            lead_interpreter: d_lead_interpreter(),
        }
    }
}

#[derive(Debug, Deserialize)]
pub(super) struct RawRetention {
    #[serde(default = "d_retention")]
    pub(super) after: String,
}

pub(super) fn d_retention() -> String {
    "P5Y".into()
}

impl Default for RawRetention {
    fn default() -> Self {
        RawRetention {
            after: d_retention(),
        }
    }
}
