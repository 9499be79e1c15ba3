//! ISO 8601 calendar durations (`P14D`, `P6W`, `P3M`, `P1Y2M`, `PT12H`) as plans and
//! reminder policies write them.
//!
//! Months and years are calendar units: `P1M` after 31 January is the last day of February.
//! That is what a social worker means by "over a month", and it is why we do not turn them
//! into a fixed number of seconds.

use chrono::{DateTime, Days, Months, NaiveDate, TimeDelta, TimeZone};
use std::fmt;
use std::str::FromStr;

/// A calendar duration: whole months, whole days and a clock-time part in seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct IsoDuration {
    months: u32,
    days: u32,
    seconds: u32,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DurationError {
    #[error("`{0}` is not an ISO 8601 duration such as P14D, P6W, P3M or PT12H")]
    Syntax(String),
    #[error("`{0}` is too large")]
    TooLarge(String),
}

impl IsoDuration {
    pub const ZERO: IsoDuration = IsoDuration {
        months: 0,
        days: 0,
        seconds: 0,
    };

    pub fn days(days: u32) -> Self {
        IsoDuration {
            months: 0,
            days,
            seconds: 0,
        }
    }

    pub fn months(months: u32) -> Self {
        IsoDuration {
            months,
            days: 0,
            seconds: 0,
        }
    }

    pub fn is_zero(&self) -> bool {
        *self == Self::ZERO
    }

    /// Length in seconds counted from the Unix epoch (a month is then January's 31 days):
    /// for intervals where calendar precision does not matter, such as retry backoff.
    pub fn nominal_seconds(&self) -> i64 {
        let epoch = chrono::DateTime::<chrono::Utc>::UNIX_EPOCH;
        self.add_to(epoch)
            .map(|t| (t - epoch).num_seconds())
            .unwrap_or(i64::MAX)
    }

    /// Adds the calendar part to a date (months first, then days). `None` past year 262143.
    pub fn add_to_date(&self, date: NaiveDate) -> Option<NaiveDate> {
        date.checked_add_months(Months::new(self.months))?
            .checked_add_days(Days::new(u64::from(self.days)))
    }

    /// Adds the duration to an instant, with calendar arithmetic in the instant's zone.
    pub fn add_to<Tz: TimeZone>(&self, t: DateTime<Tz>) -> Option<DateTime<Tz>> {
        t.checked_add_months(Months::new(self.months))?
            .checked_add_days(Days::new(u64::from(self.days)))?
            .checked_add_signed(TimeDelta::seconds(i64::from(self.seconds)))
    }

    /// Subtracts the duration from an instant (for "this long before due").
    pub fn sub_from<Tz: TimeZone>(&self, t: DateTime<Tz>) -> Option<DateTime<Tz>> {
        t.checked_sub_months(Months::new(self.months))?
            .checked_sub_days(Days::new(u64::from(self.days)))?
            .checked_sub_signed(TimeDelta::seconds(i64::from(self.seconds)))
    }
}

impl FromStr for IsoDuration {
    type Err = DurationError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let syntax = || DurationError::Syntax(s.to_string());
        let too_large = || DurationError::TooLarge(s.to_string());
        let rest = s.strip_prefix('P').ok_or_else(syntax)?;
        if rest.is_empty() || rest == "T" {
            return Err(syntax());
        }
        let (date_part, time_part) = match rest.split_once('T') {
            Some((d, t)) if !t.is_empty() => (d, Some(t)),
            Some(_) => return Err(syntax()),
            None => (rest, None),
        };
        let mut out = IsoDuration::ZERO;
        let mut add = |n: u64, unit: char, time: bool| -> Result<(), DurationError> {
            let n32 = u32::try_from(n).map_err(|_| too_large())?;
            let mul = |a: u32, b: u32| a.checked_mul(b).ok_or_else(too_large);
            let (field, amount) = match (time, unit) {
                (false, 'Y') => (&mut out.months, mul(n32, 12)?),
                (false, 'M') => (&mut out.months, n32),
                (false, 'W') => (&mut out.days, mul(n32, 7)?),
                (false, 'D') => (&mut out.days, n32),
                (true, 'H') => (&mut out.seconds, mul(n32, 3600)?),
                (true, 'M') => (&mut out.seconds, mul(n32, 60)?),
                (true, 'S') => (&mut out.seconds, n32),
                _ => return Err(syntax()),
            };
            *field = field.checked_add(amount).ok_or_else(too_large)?;
            Ok(())
        };
        for (part, time, order) in [
            (date_part, false, "YMWD"),
            (time_part.unwrap_or(""), true, "HMS"),
        ] {
            let mut digits = String::new();
            let mut last_unit: Option<usize> = None;
            for c in part.chars() {
                if c.is_ascii_digit() {
                    digits.push(c);
                    continue;
                }
                let pos = order.find(c).ok_or_else(syntax)?;
                if digits.is_empty() || last_unit.is_some_and(|l| l >= pos) {
                    return Err(syntax());
                }
                let n: u64 = digits.parse().map_err(|_| too_large())?;
                add(n, c, time)?;
                digits.clear();
                last_unit = Some(pos);
            }
            if !digits.is_empty() {
                return Err(syntax());
            }
        }
        Ok(out)
    }
}

impl fmt::Display for IsoDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_zero() {
            return write!(f, "P0D");
        }
        write!(f, "P")?;
        if self.months > 0 {
            write!(f, "{}M", self.months)?;
        }
        if self.days > 0 {
            write!(f, "{}D", self.days)?;
        }
        if self.seconds > 0 {
            write!(f, "T{}S", self.seconds)?;
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use chrono::Utc;

    #[test]
    fn parses_plan_offsets() {
        assert_eq!(
            "P14D".parse::<IsoDuration>().unwrap(),
            IsoDuration::days(14)
        );
        assert_eq!("P6W".parse::<IsoDuration>().unwrap(), IsoDuration::days(42));
        assert_eq!(
            "P3M".parse::<IsoDuration>().unwrap(),
            IsoDuration::months(3)
        );
        assert_eq!(
            "P2Y".parse::<IsoDuration>().unwrap(),
            IsoDuration::months(24)
        );
        let d: IsoDuration = "P1Y2M3DT4H5M6S".parse().unwrap();
        assert_eq!(d.months, 14);
        assert_eq!(d.days, 3);
        assert_eq!(d.seconds, 4 * 3600 + 5 * 60 + 6);
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "", "P", "PT", "14D", "P14", "PD", "P1D2M", "P-1D", "P1.5D", "P1DT", "p14d", "P14DX",
            "P1H",
        ] {
            assert!(bad.parse::<IsoDuration>().is_err(), "{bad} accepted");
        }
        assert!(matches!(
            "P99999999999D".parse::<IsoDuration>(),
            Err(DurationError::TooLarge(_))
        ));
    }

    #[test]
    fn months_are_calendar_months() {
        let jan31 = NaiveDate::from_ymd_opt(2027, 1, 31).unwrap();
        let feb = IsoDuration::months(1).add_to_date(jan31).unwrap();
        assert_eq!(feb, NaiveDate::from_ymd_opt(2027, 2, 28).unwrap());
        let t = Utc.with_ymd_and_hms(2027, 3, 31, 9, 0, 0).unwrap();
        let back = IsoDuration::months(1).sub_from(t).unwrap();
        assert_eq!(back, Utc.with_ymd_and_hms(2027, 2, 28, 9, 0, 0).unwrap());
    }
}
