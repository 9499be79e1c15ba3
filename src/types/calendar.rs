//! Working days as configured (which dates they are is computed in `domain::handover`).

use chrono::NaiveDate;
use std::collections::BTreeSet;

/// Working days: Monday to Friday, minus the configured holidays (and, when
/// `dutch_holidays` is set, the computed Dutch public holidays).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WorkingDays {
    pub holidays: BTreeSet<NaiveDate>,
    pub dutch_holidays: bool,
}
