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

/// Checks `[handover]`: working-day deadlines, extra closing days, the address outside the
/// region, how far ahead a move may be announced.
pub(super) fn validate_handover(h: &RawHandover, is: &mut Issues) -> HandoverConfig {
    let max_move_ahead = is
        .duration("handover.max_move_ahead", &h.max_move_ahead)
        .unwrap_or(IsoDuration::months(3));
    if max_move_ahead.is_zero() {
        is.push("handover.max_move_ahead", "must be longer than zero");
    }
    if h.remind_after == 0 {
        is.push("handover.remind_after", "must be at least 1 working day");
    }
    if h.escalate_after <= h.remind_after {
        is.push(
            "handover.escalate_after",
            "must be more working days than handover.remind_after",
        );
    }
    if h.escalate_after > 60 {
        is.push("handover.escalate_after", "at most 60 working days");
    }
    let mut holidays = BTreeSet::new();
    for (i, day) in h.holidays.iter().enumerate() {
        match chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d") {
            Ok(d) => {
                holidays.insert(d);
            }
            Err(_) => is.push(
                format!("handover.holidays[{i}]"),
                "expected a date YYYY-MM-DD",
            ),
        }
    }
    if let Some(e) = &h.outside_region_email
        && !plausible_email(e)
    {
        is.push("handover.outside_region_email", "not an email address");
    }
    let intro = is
        .duration("handover.intro", &h.intro)
        .unwrap_or(IsoDuration::ZERO);
    HandoverConfig {
        intro,
        outside_region_email: h.outside_region_email.clone(),
        remind_after: h.remind_after,
        escalate_after: h.escalate_after,
        max_move_ahead,
        working_days: crate::types::calendar::WorkingDays {
            holidays,
            dutch_holidays: true,
        },
    }
}
