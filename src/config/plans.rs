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
