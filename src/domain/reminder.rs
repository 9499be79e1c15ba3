//! Which notice an open check-in is owed at an instant.
//!
//! The sequence is upcoming → due → overdue (up to `max_overdue` times) → one escalation to
//! the region coordinator. It is driven by what was actually sent, not by the calendar alone:
//! after downtime a slot gets the one notice it is owed *now* (an overdue reminder, not a
//! burst of stale "upcoming" ones), and nobody is escalated to before the team had its
//! reminders.

use chrono::{DateTime, Utc};

pub use crate::types::reminder::ReminderPolicy;

impl ReminderPolicy {
    /// The policy for one family: the interpreter lead replaces `lead` when it needs one.
    pub fn for_family(&self, interpreter_needed: bool) -> ReminderPolicy {
        let mut p = *self;
        if interpreter_needed {
            p.lead = self.lead_interpreter;
        }
        p
    }
}

/// The last notice sent for a check-in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    None,
    Upcoming,
    Due,
    Overdue(u32),
    Escalated,
}

/// A notice to put in the outbox.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Notice {
    Upcoming,
    Due,
    /// The n-th overdue reminder, from 1.
    Overdue(u32),
    Escalation,
}

impl Stage {
    /// Stored as a small integer plus the overdue count; this is the inverse of `code`.
    pub fn from_code(code: i64, overdue_count: i64) -> Option<Stage> {
        match code {
            0 => Some(Stage::None),
            1 => Some(Stage::Upcoming),
            2 => Some(Stage::Due),
            3 => u32::try_from(overdue_count)
                .ok()
                .filter(|n| *n > 0)
                .map(Stage::Overdue),
            4 => Some(Stage::Escalated),
            _ => None,
        }
    }

    pub fn code(&self) -> i64 {
        match self {
            Stage::None => 0,
            Stage::Upcoming => 1,
            Stage::Due => 2,
            Stage::Overdue(_) => 3,
            Stage::Escalated => 4,
        }
    }

    pub fn overdue_count(&self) -> u32 {
        match self {
            Stage::Overdue(n) => *n,
            _ => 0,
        }
    }
}

impl Notice {
    /// The stage a check-in is in once this notice was sent.
    pub fn stage(&self) -> Stage {
        match self {
            Notice::Upcoming => Stage::Upcoming,
            Notice::Due => Stage::Due,
            Notice::Overdue(n) => Stage::Overdue(*n),
            Notice::Escalation => Stage::Escalated,
        }
    }
}

/// What an open check-in is owed at `now`, given the last notice and when it was sent.
pub fn owed(
    policy: &ReminderPolicy,
    due: DateTime<Utc>,
    stage: Stage,
    last_sent: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Option<Notice> {
    let upcoming_from = policy.lead.sub_from(due)?;
    let overdue_from = policy.overdue_after.add_to(due)?;
    if now < upcoming_from {
        return None;
    }
    if now < due {
        return (stage == Stage::None && !policy.lead.is_zero()).then_some(Notice::Upcoming);
    }
    if now < overdue_from {
        return matches!(stage, Stage::None | Stage::Upcoming).then_some(Notice::Due);
    }
    let first_overdue = || {
        if policy.max_overdue == 0 {
            Notice::Escalation
        } else {
            Notice::Overdue(1)
        }
    };
    match stage {
        Stage::None | Stage::Upcoming | Stage::Due => Some(first_overdue()),
        Stage::Overdue(n) => {
            let again_at = policy
                .repeat_every
                .add_to(last_sent.unwrap_or(overdue_from))?;
            if now < again_at {
                None
            } else if n < policy.max_overdue {
                Some(Notice::Overdue(n + 1))
            } else {
                Some(Notice::Escalation)
            }
        }
        Stage::Escalated => None,
    }
}

/// The earliest instant at which `owed` can return something new, for the sweep's index.
/// `None` once nothing more will ever be sent for this check-in.
pub fn next_notice_at(
    policy: &ReminderPolicy,
    due: DateTime<Utc>,
    stage: Stage,
    last_sent: Option<DateTime<Utc>>,
) -> Option<DateTime<Utc>> {
    match stage {
        Stage::None if policy.lead.is_zero() => Some(due),
        Stage::None => policy.lead.sub_from(due),
        Stage::Upcoming => Some(due),
        Stage::Due => policy.overdue_after.add_to(due),
        Stage::Overdue(_) => {
            let overdue_from = policy.overdue_after.add_to(due)?;
            policy
                .repeat_every
                .add_to(last_sent.unwrap_or(overdue_from))
        }
        Stage::Escalated => None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use chrono::{TimeDelta, TimeZone};

    fn policy() -> ReminderPolicy {
        ReminderPolicy {
            lead: "P2D".parse().unwrap(),
            overdue_after: "P3D".parse().unwrap(),
            repeat_every: "P7D".parse().unwrap(),
            max_overdue: 3,
            retry_after: "P7D".parse().unwrap(),
            max_attempts: 3,
            lead_interpreter: "P5D".parse().unwrap(),
        }
    }

    fn due() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2027, 1, 15, 8, 0, 0).unwrap()
    }

    /// Sweeps every `step` from well before due, sending whatever is owed.
    fn run(step: TimeDelta, days: i64) -> Vec<(Notice, DateTime<Utc>)> {
        let p = policy();
        let mut stage = Stage::None;
        let mut last = None;
        let mut sent = Vec::new();
        let mut now = due() - TimeDelta::days(10);
        while now < due() + TimeDelta::days(days) {
            if let Some(n) = owed(&p, due(), stage, last, now) {
                // The index never lags what is owed.
                assert!(next_notice_at(&p, due(), stage, last).unwrap() <= now);
                sent.push((n, now));
                stage = n.stage();
                last = Some(now);
            }
            now += step;
        }
        sent
    }

    #[test]
    fn daily_sweeps_walk_the_whole_sequence_once() {
        let sent: Vec<Notice> = run(TimeDelta::hours(1), 60)
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        assert_eq!(
            sent,
            vec![
                Notice::Upcoming,
                Notice::Due,
                Notice::Overdue(1),
                Notice::Overdue(2),
                Notice::Overdue(3),
                Notice::Escalation
            ]
        );
    }

    #[test]
    fn timings_follow_the_policy() {
        let sent = run(TimeDelta::hours(1), 60);
        let d = due();
        let at: Vec<DateTime<Utc>> = sent.iter().map(|(_, t)| *t).collect();
        assert_eq!(
            at,
            vec![
                d - TimeDelta::days(2),
                d,
                d + TimeDelta::days(3),
                d + TimeDelta::days(10),
                d + TimeDelta::days(17),
                d + TimeDelta::days(24)
            ]
        );
    }

    #[test]
    fn catch_up_after_downtime_sends_one_overdue_not_stale_notices() {
        let p = policy();
        let now = due() + TimeDelta::days(80);
        assert_eq!(
            owed(&p, due(), Stage::None, None, now),
            Some(Notice::Overdue(1))
        );
        // And it is not owed twice at the same instant.
        assert_eq!(owed(&p, due(), Stage::Overdue(1), Some(now), now), None);
    }

    #[test]
    fn upcoming_is_not_sent_once_due_has_passed() {
        let p = policy();
        let now = due() + TimeDelta::hours(1);
        assert_eq!(owed(&p, due(), Stage::None, None, now), Some(Notice::Due));
    }

    #[test]
    fn zero_overdue_escalates_directly() {
        let mut p = policy();
        p.max_overdue = 0;
        let now = due() + TimeDelta::days(4);
        assert_eq!(
            owed(&p, due(), Stage::Due, Some(due()), now),
            Some(Notice::Escalation)
        );
    }

    #[test]
    fn stage_codes_round_trip() {
        for s in [
            Stage::None,
            Stage::Upcoming,
            Stage::Due,
            Stage::Overdue(2),
            Stage::Escalated,
        ] {
            assert_eq!(
                Stage::from_code(s.code(), i64::from(s.overdue_count())),
                Some(s)
            );
        }
        assert_eq!(Stage::from_code(3, 0), None);
        assert_eq!(Stage::from_code(9, 0), None);
    }
}
