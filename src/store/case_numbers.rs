//! The team's own case number per family and municipality (sealed; see migration 0014).

use super::{Conn, StoreError};

/// Sets (or replaces) the municipality's sealed case number for a family.
pub async fn set(
    conn: &mut Conn,
    family_id: i64,
    municipality: &str,
    sealed: &[u8],
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO case_numbers (family_id, municipality, sealed_number, set_at) \
         VALUES ($1, $2, $3, $4) \
         ON CONFLICT (family_id, municipality) \
         DO UPDATE SET sealed_number = excluded.sealed_number, set_at = excluded.set_at",
    )
    .bind(family_id)
    .bind(municipality)
    .bind(sealed)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// Removes the municipality's case number for a family (set to empty).
pub async fn clear(conn: &mut Conn, family_id: i64, municipality: &str) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM case_numbers WHERE family_id = $1 AND municipality = $2")
        .bind(family_id)
        .bind(municipality)
        .execute(conn)
        .await?;
    Ok(())
}

/// The municipality's sealed case number for a family, if set.
pub async fn of(
    conn: &mut Conn,
    family_id: i64,
    municipality: &str,
) -> Result<Option<Vec<u8>>, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT sealed_number FROM case_numbers WHERE family_id = $1 AND municipality = $2",
    )
    .bind(family_id)
    .bind(municipality)
    .fetch_optional(conn)
    .await?)
}
