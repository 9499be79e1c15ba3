//! Several statements in one round trip. On SQLite every statement is a hand-off to the
//! connection's thread and back (with 16 clients on 2 cores, the scheduler's switch and
//! wake-up paths took a third of a recording's time), so a read of many tables, or the
//! writes of one operation, are sent as one multi-statement query. PostgreSQL prepares one
//! statement per message, so there the parts run one after another.

use super::{Conn, StoreError, backend_of};
use crate::store::Backend;
use futures_util::TryStreamExt;
use sqlx::Either;
use sqlx::any::{AnyArguments, AnyRow};
use std::borrow::Cow;

type Query<'q> = sqlx::query::Query<'q, sqlx::Any, AnyArguments<'q>>;

/// A parameter of a statement sent with others: `$1` is the first, and so on.
#[derive(Clone, Debug)]
pub enum Value<'a> {
    Int(Option<i64>),
    Text(Option<Cow<'a, str>>),
    Blob(Cow<'a, [u8]>),
}

impl<'a> Value<'a> {
    pub fn int(i: i64) -> Value<'a> {
        Value::Int(Some(i))
    }

    pub fn text(s: &'a str) -> Value<'a> {
        Value::Text(Some(Cow::Borrowed(s)))
    }

    pub fn maybe_text(s: Option<&'a str>) -> Value<'a> {
        Value::Text(s.map(Cow::Borrowed))
    }

    pub fn blob(b: &'a [u8]) -> Value<'a> {
        Value::Blob(Cow::Borrowed(b))
    }

    fn bind<'q>(&'q self, q: Query<'q>) -> Query<'q> {
        match self {
            Value::Int(i) => q.bind(*i),
            Value::Text(s) => q.bind(s.as_deref()),
            Value::Blob(b) => q.bind(b.as_ref()),
        }
    }
}

/// Each `$N` of a statement, outside its string literals: (byte range, N).
fn params_of(sql: &str) -> Vec<(std::ops::Range<usize>, usize)> {
    let b = sql.as_bytes();
    let mut out = Vec::new();
    let mut quoted = false;
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\'' => quoted = !quoted,
            b'$' if !quoted => {
                let digits = b[i + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
                if let Ok(n) = sql[i + 1..i + 1 + digits].parse::<usize>() {
                    out.push((i..i + 1 + digits, n));
                }
                i += digits;
            }
            _ => {}
        }
        i += 1;
    }
    out
}

/// The highest `$N` a statement names (0 if none): PostgreSQL refuses parameters a
/// statement does not use.
fn params_named(sql: &str) -> usize {
    params_of(sql).iter().map(|(_, n)| *n).max().unwrap_or(0)
}

/// The statement with each `$N` made `$N+offset`, so that it can follow others in one query.
fn renumbered(sql: &str, offset: usize) -> String {
    let mut out = String::with_capacity(sql.len() + 16);
    let mut at = 0;
    for (range, n) in params_of(sql) {
        out.push_str(&sql[at..range.start]);
        out.push('$');
        out.push_str(&(n + offset).to_string());
        at = range.end;
    }
    out.push_str(&sql[at..]);
    out
}

/// sqlx 0.8 deprecates several statements in one prepared query (its other drivers cannot);
/// SQLite's still runs them, and `raw_sql` would bind no parameters. The tests below fail
/// should a later sqlx stop doing so.
#[allow(deprecated)]
fn many<'q>(
    q: Query<'q>,
    conn: &'q mut Conn,
) -> futures_util::stream::BoxStream<
    'q,
    Result<Either<sqlx::any::AnyQueryResult, AnyRow>, sqlx::Error>,
> {
    q.fetch_many(conn)
}

/// The rows of each of `parts` (SELECTs with `$N` parameters from `params`), in order, as
/// each statement saw the database when it ran. Not a snapshot: the statements may see
/// different commits, so a caller that needs them consistent reads a change mark first and
/// claims it when it writes (see `service::checkin::record`), or reads in a transaction.
pub async fn select_each(
    conn: &mut Conn,
    parts: &[&str],
    params: &[Value<'_>],
) -> Result<Vec<Vec<AnyRow>>, StoreError> {
    let mut script = Script::new();
    for part in parts {
        let used = params_named(part).min(params.len());
        script.push(*part, params[..used].to_vec());
    }
    let answers = script.answers(conn).await?;
    Ok(answers.into_iter().map(|(rows, _)| rows).collect())
}

/// What one statement answered: its rows, and the rows it changed.
type Answer = (Vec<AnyRow>, u64);

/// The answers of `results`, one per statement: each statement's rows arrive, then its
/// result, which ends its part. An error if not `expected` statements answered.
async fn answers(
    mut results: futures_util::stream::BoxStream<
        '_,
        Result<Either<sqlx::any::AnyQueryResult, AnyRow>, sqlx::Error>,
    >,
    expected: usize,
) -> Result<Vec<Answer>, StoreError> {
    let mut out = Vec::with_capacity(expected);
    let mut rows = Vec::new();
    while let Some(step) = results.try_next().await? {
        match step {
            Either::Right(row) => rows.push(row),
            Either::Left(done) => out.push((std::mem::take(&mut rows), done.rows_affected())),
        }
    }
    if out.len() != expected {
        return Err(StoreError::Corrupt(format!(
            "{} of {expected} statements answered",
            out.len()
        )));
    }
    Ok(out)
}

/// Write statements sent together: on SQLite one query (each part's `$N` numbered on
/// after the parts before it), on PostgreSQL one after another. [`Script::run`] answers each
/// statement's rows affected, so a caller checks each as it would have one by one. A failing
/// statement fails the run; those before it ran in the caller's transaction, which the
/// caller's error rolls back as it would have without the script.
#[derive(Default)]
pub struct Script<'a> {
    parts: Vec<(String, Vec<Value<'a>>)>,
}

impl<'a> Script<'a> {
    pub fn new() -> Script<'a> {
        Script::default()
    }

    /// Adds a statement; answers its index in what [`Script::run`] answers.
    pub fn push(&mut self, sql: impl Into<String>, values: Vec<Value<'a>>) -> usize {
        self.parts.push((sql.into(), values));
        self.parts.len() - 1
    }

    pub fn is_empty(&self) -> bool {
        self.parts.is_empty()
    }

    /// Runs the statements in order: the rows each changed.
    pub async fn run(self, conn: &mut Conn) -> Result<Vec<u64>, StoreError> {
        let answers = self.answers(conn).await?;
        Ok(answers.into_iter().map(|(_, changed)| changed).collect())
    }

    /// Runs the statements in order: what each answered.
    async fn answers(self, conn: &mut Conn) -> Result<Vec<Answer>, StoreError> {
        if backend_of(conn) == Backend::Postgres || self.parts.len() <= 1 {
            let mut out = Vec::with_capacity(self.parts.len());
            for (sql, values) in &self.parts {
                let q = values.iter().fold(sqlx::query(sql), |q, v| v.bind(q));
                out.extend(answers(many(q, &mut *conn), 1).await?);
            }
            return Ok(out);
        }
        let mut sql = String::new();
        let mut offset = 0;
        for (part, values) in &self.parts {
            if !sql.is_empty() {
                sql.push_str(";\n");
            }
            sql.push_str(&renumbered(part, offset));
            offset += values.len();
        }
        let q = self
            .parts
            .iter()
            .flat_map(|(_, values)| values)
            .fold(sqlx::query(&sql), |q, v| v.bind(q));
        answers(many(q, conn), self.parts.len()).await
    }
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
        let rows = select_each(&mut conn, &parts, &[Value::text("x"), Value::int(40)])
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
        assert_eq!(params_named("SELECT '$9' || $3"), 3);
        assert_eq!(
            renumbered("SELECT '$1', $1, $12 FROM t WHERE x = $2", 3),
            "SELECT '$1', $4, $15 FROM t WHERE x = $5"
        );
    }

    #[tokio::test]
    async fn a_script_answers_each_statements_changes() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = DatabaseConfig::from_url("sqlite://t.db", dir.path()).unwrap();
        let store = Store::open(&cfg, OpenMode::CreateAndMigrate).await.unwrap();
        let mut conn = store.conn().await.unwrap();
        sqlx::query("CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT, b BLOB)")
            .execute(&mut *conn)
            .await
            .unwrap();
        let mut s = Script::new();
        s.push(
            "INSERT INTO t (k, v, b) VALUES ($1, $2, $3), ($1 + 1, $2, NULL)",
            vec![Value::int(1), Value::text("one"), Value::blob(b"\x00\x01")],
        );
        s.push(
            "UPDATE t SET v = $1 WHERE k = $2",
            vec![Value::maybe_text(None), Value::int(2)],
        );
        s.push("UPDATE t SET v = 'x' WHERE k = $1", vec![Value::int(99)]);
        s.push(
            "INSERT INTO t (k, v) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            vec![Value::int(1), Value::text("again")],
        );
        assert_eq!(s.run(&mut conn).await.unwrap(), [2, 1, 0, 0]);
        let rows: Vec<(i64, Option<String>, Option<Vec<u8>>)> =
            sqlx::query_as("SELECT k, v, b FROM t ORDER BY k")
                .fetch_all(&mut *conn)
                .await
                .unwrap();
        assert_eq!(
            rows,
            [(1, Some("one".into()), Some(vec![0, 1])), (2, None, None)]
        );
        // A failing statement fails the run.
        let mut s = Script::new();
        s.push("UPDATE t SET v = 'y' WHERE k = $1", vec![Value::int(1)]);
        s.push("INSERT INTO t (k) VALUES ($1)", vec![Value::int(2)]);
        assert!(s.run(&mut conn).await.is_err());
        drop(conn);
        store.close().await;
    }
}
