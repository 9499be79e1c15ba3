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

/// Checks `[schedule]`: an IANA time zone (Amsterdam when it is not one) and a sweep cron
/// expression with seconds.
pub(super) fn validate_schedule(raw: &RawSchedule, is: &mut Issues) -> Tz {
    let timezone = match raw.timezone.parse::<Tz>() {
        Ok(tz) => tz,
        Err(_) => {
            is.push(
                "schedule.timezone",
                format!("`{}` is not an IANA time zone", raw.timezone),
            );
            chrono_tz::Europe::Amsterdam
        }
    };
    let sweep_parse = croner::parser::CronParser::builder()
        .seconds(croner::parser::Seconds::Required)
        .build()
        .parse(&raw.sweep);
    if let Err(e) = sweep_parse {
        is.push(
            "schedule.sweep",
            format!("not a cron expression with a seconds field first: {e}"),
        );
    }
    timezone
}

/// Checks `[reminders]`: the durations and counts of reminding and retrying.
pub(super) fn validate_reminders(r: &RawReminders, is: &mut Issues) -> ReminderPolicy {
    let reminders = ReminderPolicy {
        lead: is
            .duration("reminders.lead", &r.lead)
            .unwrap_or(IsoDuration::ZERO),
        overdue_after: is
            .duration("reminders.overdue_after", &r.overdue_after)
            .unwrap_or(IsoDuration::ZERO),
        repeat_every: is
            .duration("reminders.repeat_every", &r.repeat_every)
            .unwrap_or(IsoDuration::ZERO),
        max_overdue: r.max_overdue,
        retry_after: is
            .duration("reminders.retry_after", &r.retry_after)
            .unwrap_or(IsoDuration::ZERO),
        max_attempts: r.max_attempts,
        lead_interpreter: is
            .duration("reminders.lead_interpreter", &r.lead_interpreter)
            .unwrap_or(IsoDuration::ZERO),
    };
    if !(1..=12).contains(&r.max_attempts) {
        is.push("reminders.max_attempts", "1 to 12 attempts");
    }
    if reminders.retry_after.is_zero() && r.max_attempts > 1 {
        is.push("reminders.retry_after", "must be longer than zero");
    }
    if reminders.repeat_every.is_zero() && r.max_overdue > 0 {
        is.push("reminders.repeat_every", "must be longer than zero");
    }
    if r.max_overdue > 52 {
        is.push("reminders.max_overdue", "at most 52");
    }
    reminders
}

/// Checks `[retention]`: how long after its end a family is kept.
pub(super) fn validate_retention(raw: &RawRetention, is: &mut Issues) -> IsoDuration {
    let retention_after = is
        .duration("retention.after", &raw.after)
        .unwrap_or(IsoDuration::months(60));
    if retention_after.is_zero() {
        is.push("retention.after", "must be longer than zero");
    }
    retention_after
}
