//! The handover rules, without I/O: working-day deadlines and the status machine.

use chrono::{DateTime, Datelike, Days, NaiveDate, TimeZone, Utc, Weekday};
use chrono_tz::Tz;

/// Where a handover stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Sent to the receiving team, not acknowledged yet.
    Pending,
    /// Not acknowledged in time: the coordinator and the sending team were told.
    Escalated,
    /// The receiving team confirmed it took the family over.
    Acknowledged,
    /// A further move was registered before this one was acknowledged.
    Superseded,
}

impl Status {
    pub fn code(&self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Escalated => "escalated",
            Status::Acknowledged => "acknowledged",
            Status::Superseded => "superseded",
        }
    }

    pub fn from_code(s: &str) -> Option<Status> {
        match s {
            "pending" => Some(Status::Pending),
            "escalated" => Some(Status::Escalated),
            "acknowledged" => Some(Status::Acknowledged),
            "superseded" => Some(Status::Superseded),
            _ => None,
        }
    }

    /// Still waiting for the receiving team (reminders, cc to the sender, escalation).
    pub fn is_open(&self) -> bool {
        matches!(self, Status::Pending | Status::Escalated)
    }
}

pub use crate::types::calendar::WorkingDays;

impl WorkingDays {
    pub fn is_working_day(&self, d: NaiveDate) -> bool {
        let closed = matches!(d.weekday(), Weekday::Sat | Weekday::Sun)
            || self.holidays.contains(&d)
            || (self.dutch_holidays && super::holidays::is_dutch_public_holiday(d));
        !closed
    }

    /// `d` itself when it is a working day, else the first working day after it.
    pub fn on_or_after(&self, d: NaiveDate) -> NaiveDate {
        if self.is_working_day(d) {
            d
        } else {
            self.add(d, 1)
        }
    }

    /// The date `n` working days after `start` (`start` itself does not count).
    pub fn add(&self, start: NaiveDate, n: u32) -> NaiveDate {
        let mut d = start;
        let mut left = n;
        // Bounded: even a year of holidays cannot stop the walk for long.
        let mut guard = 0u32;
        while left > 0 && guard < 4000 {
            guard += 1;
            match d.checked_add_days(Days::new(1)) {
                Some(next) => d = next,
                None => break,
            }
            if self.is_working_day(d) {
                left -= 1;
            }
        }
        d
    }

    /// The instant `n` working days after `start`, at the same local wall time in `tz`
    /// (the earlier one in a DST fold, the first valid minute after a DST gap).
    pub fn deadline(&self, start: DateTime<Utc>, n: u32, tz: Tz) -> DateTime<Utc> {
        let local = start.with_timezone(&tz).naive_local();
        let day = self.add(local.date(), n);
        let wall = day.and_time(local.time());
        match tz.from_local_datetime(&wall).earliest() {
            Some(t) => t.with_timezone(&Utc),
            // In a DST gap: an hour later always exists.
            None => tz
                .from_local_datetime(&(wall + chrono::TimeDelta::hours(1)))
                .earliest()
                .map(|t| t.with_timezone(&Utc))
                .unwrap_or(start),
        }
    }
}

/// The instant a move takes effect: the start of the move date in `tz`, but never at or
/// before `previous_start` (the start of the responsibility it ends), so responsibility
/// intervals never overlap or have zero length.
pub fn effective_instant(date: NaiveDate, tz: Tz, previous_start: i64) -> i64 {
    let midnight = tz
        .from_local_datetime(&date.and_time(chrono::NaiveTime::MIN))
        .earliest()
        .map(|t| t.timestamp())
        // A zone without midnight that day: one hour later exists.
        .or_else(|| {
            tz.from_local_datetime(&date.and_hms_opt(1, 0, 0).unwrap_or_default())
                .earliest()
                .map(|t| t.timestamp())
        })
        .unwrap_or(previous_start + 1);
    midnight.max(previous_start + 1)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn working_days_skip_weekends_and_holidays() {
        let mut w = WorkingDays::default();
        // Thursday + 2 → Monday.
        assert_eq!(w.add(d("2027-04-22"), 2), d("2027-04-26"));
        // Thursday + 5 → Thursday a week later.
        assert_eq!(w.add(d("2027-04-22"), 5), d("2027-04-29"));
        w.holidays.insert(d("2027-04-27"));
        // King's Day (Tuesday) skipped.
        assert_eq!(w.add(d("2027-04-22"), 5), d("2027-04-30"));
        // From a Saturday: Monday is the first working day.
        assert_eq!(w.add(d("2027-04-24"), 1), d("2027-04-26"));
        assert_eq!(w.add(d("2027-04-24"), 0), d("2027-04-24"));
    }

    #[test]
    fn deadlines_keep_the_local_wall_time_across_dst() {
        let w = WorkingDays::default();
        let tz = chrono_tz::Europe::Amsterdam;
        // Friday 2027-03-26 10:00 CET; two working days later is Tuesday 10:00 CEST.
        let start = tz
            .with_ymd_and_hms(2027, 3, 26, 10, 0, 0)
            .unwrap()
            .with_timezone(&Utc);
        let due = w.deadline(start, 2, tz);
        assert_eq!(
            due,
            tz.with_ymd_and_hms(2027, 3, 30, 10, 0, 0)
                .unwrap()
                .with_timezone(&Utc)
        );
    }

    #[test]
    fn statuses_round_trip() {
        for s in [
            Status::Pending,
            Status::Escalated,
            Status::Acknowledged,
            Status::Superseded,
        ] {
            assert_eq!(Status::from_code(s.code()), Some(s));
        }
        assert!(Status::Escalated.is_open() && !Status::Superseded.is_open());
    }

    #[test]
    fn moves_start_at_local_midnight_after_the_previous_start() {
        let tz = chrono_tz::Europe::Amsterdam;
        let midnight = tz
            .with_ymd_and_hms(2027, 3, 1, 0, 0, 0)
            .unwrap()
            .timestamp();
        assert_eq!(effective_instant(d("2027-03-01"), tz, 0), midnight);
        assert_eq!(
            effective_instant(d("2027-03-01"), tz, midnight + 36_000),
            midnight + 36_001
        );
    }
}
