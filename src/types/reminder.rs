//! The reminder timings as configured (which notice is owed when lives in `domain::reminder`).

use super::duration::IsoDuration;

/// The reminder timings from `[reminders]`.
#[derive(Clone, Copy, Debug)]
pub struct ReminderPolicy {
    pub lead: IsoDuration,
    pub overdue_after: IsoDuration,
    pub repeat_every: IsoDuration,
    pub max_overdue: u32,
    /// After a `not_reached` attempt the next one is due this long after it.
    pub retry_after: IsoDuration,
    /// Attempts per check-in before it is missed and escalated (at least 1).
    pub max_attempts: u32,
    /// The lead of the first notice when the family needs an interpreter (to book one).
    pub lead_interpreter: IsoDuration,
}
