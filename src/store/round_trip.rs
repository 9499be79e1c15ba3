//! Several SELECTs read in one round trip. On SQLite every statement is a hand-off to the
//! connection's thread and back (with 16 clients on 2 cores, the scheduler's switch and
//! wake-up paths took a third of a recording's time), so a read of many tables is sent as
//! one multi-statement query: SQLite binds `$N` by number in each statement, so every part
//! takes the same parameters. PostgreSQL prepares one statement per message, so there the
//! parts run one after another, each with the parameters it names.

use super::{Conn, StoreError, backend_of};
use crate::store::Backend;
use futures_util::TryStreamExt;
use sqlx::Either;
use sqlx::any::AnyRow;

/// A parameter of [`select_each`]: `$1` is the first, and so on.
#[derive(Clone, Copy, Debug)]
pub enum Param<'a> {
    Int(i64),
    Text(&'a str),
}

fn bind<'q>(
    q: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    p: Param<'q>,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    match p {
        Param::Int(i) => q.bind(i),
        Param::Text(s) => q.bind(s),
    }
}

/// The highest `$N` a statement names (0 if none): PostgreSQL refuses parameters a
/// statement does not use.
fn params_named(sql: &str) -> usize {
    let b = sql.as_bytes();
    let mut most = 0;
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'$' {
            let digits = b[i + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
            if let Ok(n) = sql[i + 1..i + 1 + digits].parse::<usize>() {
                most = most.max(n);
            }
            i += digits;
        }
        i += 1;
    }
    most
}

/// The rows of each of `parts` (SELECTs with `$N` parameters from `params`), in order, as
/// each statement saw the database when it ran. Not a snapshot: the statements may see
/// different commits, so a caller that needs them consistent reads a change mark first and
/// claims it when it writes (see `service::checkin::record`), or reads in a transaction.
pub async fn select_each(
    conn: &mut Conn,
    parts: &[&str],
    params: &[Param<'_>],
) -> Result<Vec<Vec<AnyRow>>, StoreError> {
    if backend_of(conn) == Backend::Postgres {
        let mut out = Vec::with_capacity(parts.len());
        for part in parts {
            let used = params_named(part).min(params.len());
            let q = params[..used]
                .iter()
                .fold(sqlx::query(part), |q, p| bind(q, *p));
            out.push(q.fetch_all(&mut *conn).await?);
        }
        return Ok(out);
    }
    let sql = parts.join(";\n");
    let q = params.iter().fold(sqlx::query(&sql), |q, p| bind(q, *p));
    let mut out = Vec::with_capacity(parts.len());
    let mut rows = Vec::new();
    // sqlx 0.8 deprecates several statements in one prepared query (its other drivers
    // cannot); SQLite's still runs them, and `raw_sql` would bind no parameters. The test
    // below fails should a later sqlx stop doing so.
    #[allow(deprecated)]
    let mut results = q.fetch_many(&mut *conn);
    // Each statement's rows arrive, then its result: that ends the statement's part.
    while let Some(step) = results.try_next().await? {
        match step {
            Either::Right(row) => rows.push(row),
            Either::Left(_) => out.push(std::mem::take(&mut rows)),
        }
    }
    if out.len() != parts.len() {
        return Err(StoreError::Corrupt(format!(
            "{} of {} statements answered",
            out.len(),
            parts.len()
        )));
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::config::DatabaseConfig;
    use crate::store::{OpenMode, Store};
    use sqlx::Row;

    #[tokio::test]
    async fn each_statement_gets_its_own_rows_empty_ones_too() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = DatabaseConfig::from_url("sqlite://t.db", dir.path()).unwrap();
        let store = Store::open(&cfg, OpenMode::CreateAndMigrate).await.unwrap();
        let mut conn = store.conn().await.unwrap();
        let parts = [
            "SELECT $1 || 'a' AS v",
            "SELECT 1 AS v WHERE 0",
            "SELECT $2 + x AS v FROM (SELECT 1 AS x UNION ALL SELECT 2) ORDER BY v",
            "SELECT 7 AS v WHERE 0",
        ];
        let rows = select_each(&mut conn, &parts, &[Param::Text("x"), Param::Int(40)])
            .await
            .unwrap();
        assert_eq!(rows.len(), 4);
        assert_eq!(rows[0][0].get::<String, _>(0), "xa");
        assert!(rows[1].is_empty() && rows[3].is_empty());
        let sums: Vec<i64> = rows[2].iter().map(|r| r.get(0)).collect();
        assert_eq!(sums, [41, 42]);
        // A failing statement fails the whole read.
        let bad = ["SELECT 1 AS v", "SELECT * FROM no_such_table"];
        assert!(select_each(&mut conn, &bad, &[]).await.is_err());
        drop(conn);
        store.close().await;
    }

    #[test]
    fn the_highest_parameter_is_counted() {
        assert_eq!(params_named("SELECT 1"), 0);
        assert_eq!(params_named("SELECT $1, $12 WHERE x = $2"), 12);
        assert_eq!(params_named("SELECT '$' || $3"), 3);
    }
}
