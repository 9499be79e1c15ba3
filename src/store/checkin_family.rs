//! What recording a check-in reads about its family, in one round trip (see
//! [`super::round_trip`]): the family's change mark first, then the check-in, the family,
//! its members, ex-partners, check-ins and observations.
//!
//! The statements need not see one snapshot. The mark is read first, and every change to
//! what the later statements read moves it on in the same transaction (the triggers of
//! migration 0015): a change committed before the mark was read is seen by every statement
//! after it, and a change committed after it makes the record's claim of that mark fail, so
//! the record reads again inside its write transaction. What a record writes from these rows
//! is therefore as consistent as a read transaction would make it, for one round trip
//! instead of nine.

use super::checkins::{self, CheckinRow, FamilyObservation};
use super::families::{self, FamilyRow, Mark, MemberRow};
use super::household::{self, ExPartnerRow};
use super::round_trip::{Value, select_each};
use super::{Conn, StoreError};
use sqlx::FromRow;
use sqlx::any::AnyRow;

/// The rows a check-in's record is judged and written from.
pub struct CheckinFamily {
    pub mark: Mark,
    pub checkin: CheckinRow,
    /// With the municipality responsible at the instant the rows were read for.
    pub family: FamilyRow,
    pub members: Vec<MemberRow>,
    pub partners: Vec<ExPartnerRow>,
    /// The family's check-ins in time order, this one among them.
    pub checkins: Vec<CheckinRow>,
    pub observations: Vec<FamilyObservation>,
}

/// The family of check-in `$1`, as an SQL expression.
const FAMILY: &str = "(SELECT family_id FROM checkins WHERE ref = $1)";

/// The check-in `reference` and its family as [`CheckinFamily`] says, the municipality
/// responsible at `at` (unix seconds); `None` if there is no such check-in.
pub async fn read(
    conn: &mut Conn,
    reference: &str,
    at: i64,
) -> Result<Option<CheckinFamily>, StoreError> {
    let parts = [
        families::mark_sql(FAMILY),
        checkins::by_ref_sql(),
        families::by_id_sql(FAMILY),
        families::members_sql(FAMILY),
        household::ex_partners_sql(FAMILY),
        checkins::of_family_sql(FAMILY),
        checkins::family_observations_sql(FAMILY),
    ];
    let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
    let mut rows = select_each(conn, &parts, &[Value::text(reference), Value::int(at)])
        .await?
        .into_iter();
    let mut next = || rows.next().unwrap_or_default();
    let (Some(mark), Some(checkin), Some(family)) = (
        first::<Mark>(next())?,
        first::<CheckinRow>(next())?,
        first::<FamilyRow>(next())?,
    ) else {
        return Ok(None);
    };
    Ok(Some(CheckinFamily {
        mark,
        checkin,
        family,
        members: all(next())?,
        partners: all(next())?,
        checkins: all(next())?,
        observations: all(next())?,
    }))
}

fn first<T: for<'r> FromRow<'r, AnyRow>>(rows: Vec<AnyRow>) -> Result<Option<T>, StoreError> {
    rows.first()
        .map(T::from_row)
        .transpose()
        .map_err(Into::into)
}

fn all<T: for<'r> FromRow<'r, AnyRow>>(rows: Vec<AnyRow>) -> Result<Vec<T>, StoreError> {
    rows.iter()
        .map(T::from_row)
        .collect::<Result<_, _>>()
        .map_err(Into::into)
}
