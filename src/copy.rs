//! `nazorg copy-database --from URL --to URL`: moves an installation between engines
//! (SQLite → PostgreSQL, and back) with its daemons stopped.
//!
//! Both databases must be at the same migration; the target must be empty (freshly
//! migrated). Every table is copied in one transaction on the target, with foreign keys
//! deferred to the commit, so the order of the tables does not matter; values keep their
//! bytes (sealed data stays sealed: the age identity is not needed). PostgreSQL's identity
//! sequences are moved past the copied ids. The copy is then checked table by table by
//! counting rows on both sides.

use crate::store::{Backend, Store, StoreError};
use sqlx::Row;

#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(
        "the two databases are at different migrations (from: {from}, to: {to}); run `nazorg migrate` on the older one first"
    )]
    Migrations { from: String, to: String },
    #[error("the target is not empty (table {0} has rows); copy into a new, migrated database")]
    NotEmpty(String),
    #[error("table {table}: {from} rows in the source, {to} in the copy")]
    Mismatch { table: String, from: i64, to: i64 },
}

impl From<sqlx::Error> for CopyError {
    fn from(e: sqlx::Error) -> Self {
        CopyError::Store(StoreError::Sql(e))
    }
}

/// What was copied: rows per table, verified on both sides.
#[derive(Debug, serde::Serialize)]
pub struct CopyReport {
    pub from: String,
    pub to: String,
    pub tables: Vec<TableCount>,
}

#[derive(Debug, serde::Serialize)]
pub struct TableCount {
    pub table: String,
    pub rows: i64,
}

/// How a column's values travel.
#[derive(Clone, Copy, Debug)]
enum Kind {
    Int,
    Real,
    Text,
    Blob,
}

fn kind_of(declared: &str) -> Kind {
    let t = declared.to_ascii_lowercase();
    if t.contains("int") {
        Kind::Int
    } else if t.contains("bytea") || t.contains("blob") {
        Kind::Blob
    } else if t.contains("real") || t.contains("double") || t.contains("float") {
        Kind::Real
    } else {
        Kind::Text
    }
}

/// The application's tables (not the migrator's), by name.
async fn tables(store: &Store) -> Result<Vec<String>, StoreError> {
    let sql = match store.backend() {
        Backend::Sqlite => {
            "SELECT name FROM sqlite_master WHERE type = 'table' \
             AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_sqlx_%' ORDER BY name"
        }
        Backend::Postgres => {
            "SELECT CAST(table_name AS TEXT) FROM information_schema.tables \
             WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' \
             AND table_name NOT LIKE '\\_sqlx\\_%' ORDER BY 1"
        }
    };
    Ok(sqlx::query_scalar(sql).fetch_all(store.pool()).await?)
}

/// A table's columns in order, with how their values travel.
async fn columns(store: &Store, table: &str) -> Result<Vec<(String, Kind)>, StoreError> {
    let rows = match store.backend() {
        Backend::Sqlite => {
            sqlx::query("SELECT name, type FROM pragma_table_info($1) ORDER BY cid")
                .bind(table)
                .fetch_all(store.pool())
                .await?
        }
        Backend::Postgres => {
            sqlx::query(
                "SELECT CAST(column_name AS TEXT), CAST(data_type AS TEXT) \
                 FROM information_schema.columns \
                 WHERE table_schema = current_schema() AND table_name = $1 \
                 ORDER BY ordinal_position",
            )
            .bind(table)
            .fetch_all(store.pool())
            .await?
        }
    };
    rows.iter()
        .map(|r| {
            let name: String = r.try_get(0)?;
            let declared: String = r.try_get(1)?;
            Ok((name, kind_of(&declared)))
        })
        .collect()
}

async fn migrations(store: &Store) -> Result<String, StoreError> {
    let versions: Vec<i64> =
        sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success ORDER BY version")
            .fetch_all(store.pool())
            .await?;
    Ok(versions
        .iter()
        .map(|v| format!("{v:04}"))
        .collect::<Vec<_>>()
        .join(","))
}

async fn count(store: &Store, table: &str) -> Result<i64, StoreError> {
    Ok(
        sqlx::query_scalar(&format!("SELECT COUNT(*) FROM \"{table}\""))
            .fetch_one(store.pool())
            .await?,
    )
}

/// Copies every row of `from` into the empty `to`, then checks the counts.
pub async fn copy_database(from: &Store, to: &Store) -> Result<CopyReport, CopyError> {
    let (mf, mt) = (migrations(from).await?, migrations(to).await?);
    if mf != mt {
        return Err(CopyError::Migrations { from: mf, to: mt });
    }
    let names = tables(to).await?;
    for t in &names {
        if count(to, t).await? > 0 {
            return Err(CopyError::NotEmpty(t.clone()));
        }
    }
    let mut plan = Vec::with_capacity(names.len());
    for t in &names {
        plan.push((t, columns(to, t).await?));
    }
    let mut tx = to.write().await?;
    match to.backend() {
        Backend::Sqlite => sqlx::query("PRAGMA defer_foreign_keys = ON"),
        Backend::Postgres => sqlx::query("SET CONSTRAINTS ALL DEFERRED"),
    }
    .execute(&mut *tx)
    .await?;
    for (t, cols) in &plan {
        let list = cols
            .iter()
            .map(|(c, _)| format!("\"{c}\""))
            .collect::<Vec<_>>()
            .join(", ");
        let params = (1..=cols.len())
            .map(|i| format!("${i}"))
            .collect::<Vec<_>>()
            .join(", ");
        let insert = format!("INSERT INTO \"{t}\" ({list}) VALUES ({params})");
        let rows = sqlx::query(&format!("SELECT {list} FROM \"{t}\""))
            .fetch_all(from.pool())
            .await?;
        for row in &rows {
            let mut q = sqlx::query(&insert);
            for (i, (_, kind)) in cols.iter().enumerate() {
                q = match kind {
                    Kind::Int => q.bind(row.try_get::<Option<i64>, _>(i)?),
                    Kind::Real => q.bind(row.try_get::<Option<f64>, _>(i)?),
                    Kind::Text => q.bind(row.try_get::<Option<String>, _>(i)?),
                    Kind::Blob => q.bind(row.try_get::<Option<Vec<u8>>, _>(i)?),
                };
            }
            q.execute(&mut *tx).await?;
        }
    }
    if to.backend() == Backend::Postgres {
        // New rows continue after the copied ids.
        let identities: Vec<(String, String)> = sqlx::query_as(
            "SELECT CAST(table_name AS TEXT), CAST(column_name AS TEXT) \
             FROM information_schema.columns \
             WHERE table_schema = current_schema() AND is_identity = 'YES'",
        )
        .fetch_all(&mut *tx)
        .await?;
        for (table, column) in identities {
            sqlx::query(&format!(
                "SELECT CAST(setval(pg_get_serial_sequence($1, $2), \
                 COALESCE(MAX(\"{column}\"), 0) + 1, false) AS BIGINT) FROM \"{table}\""
            ))
            .bind(&table)
            .bind(&column)
            .fetch_one(&mut *tx)
            .await?;
        }
    }
    tx.commit().await?;
    let mut report = CopyReport {
        from: from.describe().to_string(),
        to: to.describe().to_string(),
        tables: Vec::new(),
    };
    for t in &names {
        let (a, b) = (count(from, t).await?, count(to, t).await?);
        if a != b {
            return Err(CopyError::Mismatch {
                table: t.clone(),
                from: a,
                to: b,
            });
        }
        report.tables.push(TableCount {
            table: t.clone(),
            rows: a,
        });
    }
    Ok(report)
}
