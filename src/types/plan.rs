//! The schedule part of a configured plan (its computation lives in `domain::plan`).

use super::duration::IsoDuration;
use chrono::NaiveTime;

/// The schedule part of a configured plan.
#[derive(Clone, Debug)]
pub struct PlanRule {
    /// Offsets from the plan start (`P14D`, `P6W`, …), each due at `local_time`.
    pub offsets: Vec<IsoDuration>,
    /// A recurring rule read as local wall-clock time in the configured zone.
    pub cron: Option<croner::Cron>,
    /// How long the plan runs; without it, the plan ends with its last offset.
    pub duration: Option<IsoDuration>,
    pub local_time: NaiveTime,
    /// `plans.NAME.working_days_only`: a slot on a weekend or holiday moves to the next
    /// working day (same local time). `None`: slots stay where the calendar puts them.
    pub working_days: Option<super::calendar::WorkingDays>,
}
