//! The Dutch public holidays, computed rather than listed by hand, so every year is right
//! without a config change. Pure date arithmetic.
//!
//! Counted as closing days: New Year's Day, Easter Monday, King's Day (27 April, or 26 April
//! when the 27th is a Sunday), Liberation Day (5 May, every year), Ascension Day, Whit
//! Monday, and Christmas (25 and 26 December). Easter Sunday and Whit Sunday are Sundays
//! anyway; Good Friday is not a general day off.

use chrono::{Datelike, Days, NaiveDate, Weekday};

/// Easter Sunday of `year` (Gregorian calendar; the anonymous "Meeus/Jones/Butcher"
/// computus). `None` outside chrono's date range.
pub fn easter_sunday(year: i32) -> Option<NaiveDate> {
    let a = year.rem_euclid(19);
    let b = year.div_euclid(100);
    let c = year.rem_euclid(100);
    let d = b / 4;
    let e = b % 4;
    let f = (b + 8) / 25;
    let g = (b - f + 1) / 3;
    let h = (19 * a + b - d - g + 15).rem_euclid(30);
    let i = c / 4;
    let k = c % 4;
    let l = (32 + 2 * e + 2 * i - h - k).rem_euclid(7);
    let m = (a + 11 * h + 22 * l) / 451;
    let month = (h + l - 7 * m + 114) / 31;
    let day = (h + l - 7 * m + 114) % 31 + 1;
    NaiveDate::from_ymd_opt(year, u32::try_from(month).ok()?, u32::try_from(day).ok()?)
}

/// King's Day: 27 April, moved to Saturday 26 April when the 27th is a Sunday.
pub fn kings_day(year: i32) -> Option<NaiveDate> {
    let d = NaiveDate::from_ymd_opt(year, 4, 27)?;
    if d.weekday() == Weekday::Sun {
        NaiveDate::from_ymd_opt(year, 4, 26)
    } else {
        Some(d)
    }
}

/// Every Dutch public holiday of `year`, in date order.
pub fn dutch_public_holidays(year: i32) -> Vec<NaiveDate> {
    let mut days: Vec<NaiveDate> = Vec::with_capacity(9);
    let date = |m, d| NaiveDate::from_ymd_opt(year, m, d);
    days.extend(date(1, 1));
    if let Some(easter) = easter_sunday(year) {
        for offset in [1, 39, 50] {
            // Easter Monday, Ascension Day, Whit Monday.
            days.extend(easter.checked_add_days(Days::new(offset)));
        }
    }
    days.extend(kings_day(year));
    days.extend(date(5, 5));
    days.extend(date(12, 25));
    days.extend(date(12, 26));
    days.sort();
    days.dedup();
    days
}

/// Whether `d` is a Dutch public holiday.
pub fn is_dutch_public_holiday(d: NaiveDate) -> bool {
    match (d.month(), d.day()) {
        (1, 1) | (5, 5) | (12, 25) | (12, 26) => return true,
        _ => {}
    }
    if kings_day(d.year()) == Some(d) {
        return true;
    }
    let Some(easter) = easter_sunday(d.year()) else {
        return false;
    };
    let since = d.signed_duration_since(easter).num_days();
    matches!(since, 1 | 39 | 50)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn easter_matches_the_published_dates() {
        for (year, easter) in [
            (2024, "2024-03-31"),
            (2025, "2025-04-20"),
            (2026, "2026-04-05"),
            (2027, "2027-03-28"),
            (2028, "2028-04-16"),
            (2029, "2029-04-01"),
            (2030, "2030-04-21"),
            (2038, "2038-04-25"),
            (2285, "2285-03-22"),
        ] {
            assert_eq!(easter_sunday(year), Some(d(easter)), "{year}");
        }
    }

    #[test]
    fn kings_day_moves_to_saturday_when_the_27th_is_a_sunday() {
        // 27 April 2025 and 2031 are Sundays.
        assert_eq!(kings_day(2025), Some(d("2025-04-26")));
        assert_eq!(kings_day(2031), Some(d("2031-04-26")));
        assert_eq!(kings_day(2027), Some(d("2027-04-27")));
        assert_eq!(kings_day(2028), Some(d("2028-04-27")));
    }

    #[test]
    fn the_holidays_of_several_years() {
        let list = |y| {
            dutch_public_holidays(y)
                .into_iter()
                .map(|x| x.to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            list(2027),
            [
                "2027-01-01",
                "2027-03-29",
                "2027-04-27",
                "2027-05-05",
                "2027-05-06",
                "2027-05-17",
                "2027-12-25",
                "2027-12-26"
            ]
        );
        assert_eq!(
            list(2025),
            [
                "2025-01-01",
                "2025-04-21",
                "2025-04-26",
                "2025-05-05",
                "2025-05-29",
                "2025-06-09",
                "2025-12-25",
                "2025-12-26"
            ]
        );
        // 2008: Ascension Day fell on 1 May, Whit Monday on 12 May.
        assert!(list(2008).contains(&"2008-05-01".to_string()));
        assert!(list(2008).contains(&"2008-05-12".to_string()));
        for year in 2000..2100 {
            for day in dutch_public_holidays(year) {
                assert!(is_dutch_public_holiday(day), "{day}");
            }
            // Eight days, seven when Ascension Day falls on Liberation Day (2005, 2016).
            let n = dutch_public_holidays(year).len();
            assert!(
                n == 8 || (n == 7 && [2005, 2016].contains(&year)),
                "{year}: {n}"
            );
        }
        assert!(!is_dutch_public_holiday(d("2027-04-26")));
        assert!(
            !is_dutch_public_holiday(d("2027-03-28")),
            "Easter Sunday itself"
        );
        assert!(
            !is_dutch_public_holiday(d("2025-04-27")),
            "the Sunday King's Day left"
        );
    }
}
