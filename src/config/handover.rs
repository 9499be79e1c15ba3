//! `[handover]`: how handovers between teams are chased.

use super::*;

#[derive(Debug, Deserialize)]
pub(super) struct RawHandover {
    #[serde(default = "d_remind_after")]
    pub(super) remind_after: u32,
    #[serde(default = "d_escalate_after")]
    pub(super) escalate_after: u32,
    #[serde(default = "d_max_move_ahead")]
    pub(super) max_move_ahead: String,
    #[serde(default)]
    pub(super) holidays: Vec<String>,
    #[serde(default)]
    pub(super) outside_region_email: Option<String>,
    #[serde(default = "d_intro")]
    pub(super) intro: String,
}

pub(super) fn d_intro() -> String {
    "P14D".into()
}

pub(super) fn d_remind_after() -> u32 {
    2
}

pub(super) fn d_escalate_after() -> u32 {
    5
}

pub(super) fn d_max_move_ahead() -> String {
    "P3M".into()
}

impl Default for RawHandover {
    fn default() -> Self {
        RawHandover {
            remind_after: d_remind_after(),
            escalate_after: d_escalate_after(),
            max_move_ahead: d_max_move_ahead(),
            holidays: Vec::new(),
            outside_region_email: None,
            intro: d_intro(),
        }
    }
}

/// How handovers between teams are chased.
#[derive(Clone, Debug)]
pub struct HandoverConfig {
    /// Working days without acknowledgement before the receiving team is reminded.
    pub remind_after: u32,
    /// Working days without acknowledgement before the escalation to the receiving
    /// municipality's coordinator and the sending team.
    pub escalate_after: u32,
    /// How far after today a move date may lie.
    pub max_move_ahead: IsoDuration,
    /// Weekends and these dates are not working days.
    pub working_days: crate::types::calendar::WorkingDays,
    /// Where handovers to a municipality outside the configured region go (an intake desk
    /// such as Veilig Thuis of the new region). Without it such moves are refused.
    pub outside_region_email: Option<String>,
    /// After a move the receiving team gets an introduction contact (a check-in) this long
    /// after the move date.
    pub intro: IsoDuration,
}
