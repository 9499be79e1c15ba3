//! `[plans.NAME]`: the follow-up schedules as written in the file.

use super::*;

#[derive(Debug, Deserialize)]
pub(super) struct RawPlan {
    #[serde(default)]
    pub(super) checkins: Vec<String>,
    #[serde(default = "default_local_time")]
    pub(super) local_time: String,
    pub(super) cron: Option<String>,
    pub(super) duration: Option<String>,
    #[serde(default = "d_working_days_only")]
    pub(super) working_days_only: bool,
    /// How the plan is named in mails; default: its name.
    pub(super) labels: Option<RawLabels>,
}

pub(super) fn d_working_days_only() -> bool {
    true
}

pub(super) fn default_local_time() -> String {
    "09:00".into()
}

/// The parser for plan cron rules: five fields, or six with seconds first.
pub fn plan_cron_parser() -> croner::parser::CronParser {
    croner::parser::CronParser::builder()
        .seconds(croner::parser::Seconds::Optional)
        .build()
}

/// Checks `[plans.*]`: each plan's offsets or cron rule, tried on a sample start in
/// `timezone` so runaway rules are caught at start-up.
pub(super) fn validate_plans(
    raw: &BTreeMap<String, RawPlan>,
    timezone: Tz,
    is: &mut Issues,
) -> BTreeMap<String, PlanRule> {
    let mut plans = BTreeMap::new();
    if raw.is_empty() {
        is.push(
            "plans",
            "at least one plan is needed, e.g. [plans.standard]",
        );
    }
    for (name, p) in raw {
        let key = format!("plans.{name}");
        let issues_before = is.0.len();
        let offsets: Vec<IsoDuration> = p
            .checkins
            .iter()
            .enumerate()
            .filter_map(|(i, c)| is.duration(&format!("{key}.checkins[{i}]"), c))
            .collect();
        let local_time = match NaiveTime::parse_from_str(&p.local_time, "%H:%M") {
            Ok(t) => t,
            Err(_) => {
                is.push(
                    format!("{key}.local_time"),
                    "expected HH:MM, e.g. \"09:00\"",
                );
                NaiveTime::MIN
            }
        };
        let cron = match &p.cron {
            Some(c) => match plan_cron_parser().parse(c) {
                Ok(c) => Some(c),
                Err(e) => {
                    is.push(format!("{key}.cron"), format!("not a cron expression: {e}"));
                    None
                }
            },
            None => None,
        };
        let duration = p
            .duration
            .as_ref()
            .and_then(|d| is.duration(&format!("{key}.duration"), d));
        if p.checkins.is_empty() && p.cron.is_none() {
            is.push(&key, "a plan needs `checkins` offsets or a `cron` rule");
        }
        if p.cron.is_some() && p.duration.is_none() {
            is.push(
                format!("{key}.duration"),
                "required with `cron`, e.g. \"P24M\"",
            );
        }
        let rule = PlanRule {
            offsets,
            cron,
            duration,
            local_time,
            // The configured extra closing days are filled in with `handover.holidays` below.
            working_days: p
                .working_days_only
                .then(|| crate::types::calendar::WorkingDays {
                    holidays: BTreeSet::new(),
                    dutch_holidays: true,
                }),
        };
        // Try the plan on a sample start so runaway cron rules are caught at start-up.
        // Only a plan without other issues: a broken rule would otherwise also be
        // reported as "yields no check-ins".
        if let Some(sample) = chrono::NaiveDate::from_ymd_opt(2027, 1, 1)
            && is.0.len() == issues_before
            && let Err(e) = rule.slots(sample, timezone)
        {
            is.push(&key, e.to_string());
        }
        plans.insert(name.clone(), rule);
    }
    plans
}
