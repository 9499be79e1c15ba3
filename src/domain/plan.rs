//! A family's follow-up schedule: which check-in slots a plan yields from its start date.
//!
//! Slots fall due at a local wall-clock time in the configured zone, on the right calendar
//! day across DST changes. The zone arithmetic is ours (chrono-tz); cron rules are only used
//! to enumerate wall-clock times, never to resolve offsets.

use chrono::{
    DateTime, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeDelta, TimeZone, Utc,
};
use chrono_tz::Tz;

/// Introduction contacts after a move are check-ins numbered from here (1001, 1002, …), so
/// they never collide with the plan's waves and research exports can leave them out.
pub const INTRO_WAVE_BASE: i64 = 1000;

/// More slots than this from one plan is a configuration mistake (a cron firing every
/// minute), not aftercare.
pub const MAX_SLOTS: usize = 400;

pub use crate::types::plan::PlanRule;

/// One scheduled check-in moment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Slot {
    /// 1-based position in the plan; stable, so research waves line up across families.
    pub wave: u32,
    pub due: DateTime<Utc>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PlanError {
    #[error("the plan yields no check-ins")]
    Empty,
    #[error("the plan yields more than {MAX_SLOTS} check-ins")]
    TooManySlots,
    #[error("the plan's dates are out of range")]
    OutOfRange,
}

/// The instant a local wall-clock time means in `tz`. In the autumn overlap the first
/// (summer-time) instant is taken; a time inside the spring gap moves forward past the gap.
pub fn local_instant(tz: Tz, local: NaiveDateTime) -> Option<DateTime<Utc>> {
    let mut candidate = local;
    // A DST gap is at most a few hours; step forward a quarter hour at a time.
    for _ in 0..16 {
        match tz.from_local_datetime(&candidate) {
            LocalResult::Single(t) => return Some(t.with_timezone(&Utc)),
            LocalResult::Ambiguous(first, _) => return Some(first.with_timezone(&Utc)),
            LocalResult::None => {
                candidate = candidate.checked_add_signed(TimeDelta::minutes(15))?
            }
        }
    }
    None
}

impl PlanRule {
    /// The instant the plan ends: start + duration, or the last offset, at the local time.
    pub fn end(&self, start: NaiveDate, tz: Tz) -> Result<DateTime<Utc>, PlanError> {
        let last = match self.duration {
            Some(d) => d,
            None => self
                .offsets
                .iter()
                .copied()
                .max_by_key(|o| o.add_to_date(start))
                .ok_or(PlanError::Empty)?,
        };
        let date = last.add_to_date(start).ok_or(PlanError::OutOfRange)?;
        local_instant(tz, date.and_time(self.local_time)).ok_or(PlanError::OutOfRange)
    }

    /// All slots of a plan that starts on `start`, ordered by due instant, numbered from 1.
    pub fn slots(&self, start: NaiveDate, tz: Tz) -> Result<Vec<Slot>, PlanError> {
        let end = self.end(start, tz)?;
        let mut due: Vec<DateTime<Utc>> = Vec::new();
        for offset in &self.offsets {
            let date = offset.add_to_date(start).ok_or(PlanError::OutOfRange)?;
            due.push(
                local_instant(tz, date.and_time(self.local_time)).ok_or(PlanError::OutOfRange)?,
            );
        }
        if let Some(cron) = &self.cron {
            // Enumerate wall-clock times by treating local time as if it were UTC, then
            // resolve each one in the real zone ourselves.
            let wall_start = Utc.from_utc_datetime(&start.and_time(NaiveTime::MIN));
            for wall in cron.clone().iter_after(wall_start) {
                let Some(t) = local_instant(tz, wall.naive_utc()) else {
                    return Err(PlanError::OutOfRange);
                };
                if t > end {
                    break;
                }
                due.push(t);
                if due.len() > MAX_SLOTS {
                    return Err(PlanError::TooManySlots);
                }
            }
        }
        if let Some(w) = &self.working_days {
            for t in &mut due {
                let local = t.with_timezone(&tz).naive_local();
                let day = w.on_or_after(local.date());
                if day != local.date() {
                    *t = local_instant(tz, day.and_time(local.time()))
                        .ok_or(PlanError::OutOfRange)?;
                }
            }
        }
        due.sort();
        due.dedup();
        if due.is_empty() {
            return Err(PlanError::Empty);
        }
        if due.len() > MAX_SLOTS {
            return Err(PlanError::TooManySlots);
        }
        Ok(due
            .into_iter()
            .zip(1u32..)
            .map(|(due, wave)| Slot { wave, due })
            .collect())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use chrono::Timelike;
    use chrono_tz::Europe::Amsterdam;

    fn rule(offsets: &[&str]) -> PlanRule {
        PlanRule {
            offsets: offsets.iter().map(|o| o.parse().unwrap()).collect(),
            cron: None,
            duration: None,
            local_time: NaiveTime::from_hms_opt(9, 0, 0).unwrap(),
            working_days: None,
        }
    }

    #[test]
    fn working_days_only_moves_weekends_and_holidays_to_the_next_working_day() {
        let mut r = rule(&["P5D", "P7D", "P8D", "P10D"]);
        let local = |t: DateTime<Utc>| t.with_timezone(&Amsterdam).naive_local().to_string();
        // From Monday 2027-03-22: Saturday 27th, Easter Monday 29th, Tuesday 30th, Thursday 1 April.
        let start = date(2027, 3, 22);
        let plain: Vec<String> = r
            .slots(start, Amsterdam)
            .unwrap()
            .iter()
            .map(|s| local(s.due))
            .collect();
        assert_eq!(
            plain,
            [
                "2027-03-27 09:00:00",
                "2027-03-29 09:00:00",
                "2027-03-30 09:00:00",
                "2027-04-01 09:00:00"
            ]
        );
        let mut w = crate::domain::handover::WorkingDays {
            dutch_holidays: true,
            ..Default::default()
        };
        w.holidays.insert(date(2027, 4, 1));
        r.working_days = Some(w);
        let moved: Vec<String> = r
            .slots(start, Amsterdam)
            .unwrap()
            .iter()
            .map(|s| local(s.due))
            .collect();
        // Saturday and Easter Monday both land on Tuesday (one slot); the configured extra
        // closing day moves to Friday.
        assert_eq!(moved, ["2027-03-30 09:00:00", "2027-04-02 09:00:00"]);
    }

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn standard_offsets_fall_at_nine_local_across_dst() {
        let r = rule(&["P14D", "P6W", "P3M", "P6M", "P9M", "P12M", "P18M", "P24M"]);
        let slots = r.slots(date(2026, 12, 1), Amsterdam).unwrap();
        assert_eq!(slots.len(), 8);
        for s in &slots {
            assert_eq!(s.due.with_timezone(&Amsterdam).hour(), 9, "{s:?}");
        }
        // Winter: 08:00 UTC; summer (June 2027): 07:00 UTC.
        assert_eq!(
            slots[0].due,
            Utc.with_ymd_and_hms(2026, 12, 15, 8, 0, 0).unwrap()
        );
        assert_eq!(
            slots[3].due,
            Utc.with_ymd_and_hms(2027, 6, 1, 7, 0, 0).unwrap()
        );
        assert_eq!(
            slots.iter().map(|s| s.wave).collect::<Vec<_>>(),
            (1..=8).collect::<Vec<_>>()
        );
        assert_eq!(r.end(date(2026, 12, 1), Amsterdam).unwrap(), slots[7].due);
    }

    #[test]
    fn days_around_dst_switch_keep_wall_time() {
        // Last Sunday of March 2027 is the 28th, of October the 31st.
        for (start, expect_hours) in [
            (date(2027, 3, 27), [8, 7, 7]),  // Sat (CET), Sun (CEST), Mon (CEST)
            (date(2027, 10, 30), [7, 8, 8]), // Sat (CEST), Sun (CET), Mon (CET)
        ] {
            let r = rule(&["P0D", "P1D", "P2D"]);
            let slots = r.slots(start, Amsterdam).unwrap();
            let hours: Vec<u32> = slots.iter().map(|s| s.due.hour()).collect();
            assert_eq!(hours, expect_hours, "start {start}");
        }
    }

    #[test]
    fn local_time_in_gap_moves_forward_and_overlap_takes_first() {
        let gap = date(2027, 3, 28).and_hms_opt(2, 30, 0).unwrap();
        assert_eq!(
            local_instant(Amsterdam, gap).unwrap(),
            Utc.with_ymd_and_hms(2027, 3, 28, 1, 0, 0).unwrap()
        );
        let overlap = date(2027, 10, 31).and_hms_opt(2, 30, 0).unwrap();
        assert_eq!(
            local_instant(Amsterdam, overlap).unwrap(),
            Utc.with_ymd_and_hms(2027, 10, 31, 0, 30, 0).unwrap()
        );
    }

    #[test]
    fn cron_rule_expands_in_local_time_until_end() {
        let mut r = rule(&[]);
        r.cron = Some(
            croner::parser::CronParser::builder()
                .seconds(croner::parser::Seconds::Optional)
                .build()
                .parse("0 10 1 * *")
                .unwrap(),
        );
        r.duration = Some("P6M".parse().unwrap());
        let slots = r.slots(date(2027, 1, 15), Amsterdam).unwrap();
        // 1 Feb .. 1 Jul at 10:00 local: 6 slots, all at 10 local.
        assert_eq!(slots.len(), 6);
        assert!(
            slots
                .iter()
                .all(|s| s.due.with_timezone(&Amsterdam).hour() == 10)
        );
    }

    #[test]
    fn runaway_cron_is_refused() {
        let mut r = rule(&[]);
        r.cron = Some(
            croner::parser::CronParser::builder()
                .seconds(croner::parser::Seconds::Optional)
                .build()
                .parse("* * * * *")
                .unwrap(),
        );
        r.duration = Some("P1M".parse().unwrap());
        assert_eq!(
            r.slots(date(2027, 1, 1), Amsterdam),
            Err(PlanError::TooManySlots)
        );
    }

    #[test]
    fn empty_plan_is_refused() {
        assert_eq!(
            rule(&[]).slots(date(2027, 1, 1), Amsterdam),
            Err(PlanError::Empty)
        );
    }
}
