//! Statements over many rows at once: the placeholder lists of a multi-row `VALUES` and
//! the chunk size that keeps each statement within SQLite's limit of bound parameters.
//!
//! Every statement is a round trip to the connection's thread (SQLite) or the server
//! (PostgreSQL), so work over a batch of rows is a few statements, not one per row.

/// SQLite's limit on the parameters bound to one statement (PostgreSQL allows 65,535).
pub const MAX_BINDS: usize = 32_766;

/// The parameters one multi-row statement carries at most, far below [`MAX_BINDS`]: sqlx
/// binds each SQLite parameter by asking `sqlite3_bind_parameter_name`, which walks the
/// statement's list of names, so binding costs grow with the square of the parameters. At
/// 32k parameters per statement that was 64% of a bulk import's time (perf); at 256 it is
/// about as much as the statement's round trip, the least of the two together.
pub const BINDS_PER_STATEMENT: usize = 256;
const _: () = assert!(BINDS_PER_STATEMENT <= MAX_BINDS);

/// How many rows of `width` parameters one statement carries: at least one, and no more
/// than [`BINDS_PER_STATEMENT`] allows.
pub fn per_statement(width: usize) -> usize {
    (BINDS_PER_STATEMENT / width.max(1)).max(1)
}

/// `rows` cut into the chunks one statement each carries, every chunk with the
/// placeholders of its multi-row `VALUES` list (see [`values`]).
pub fn chunked<T>(rows: &[T], width: usize) -> impl Iterator<Item = (&[T], String)> {
    rows.chunks(per_statement(width))
        .map(move |chunk| (chunk, values(chunk.len(), width)))
}

/// `($1, $2, …), (…)`: `rows` rows of `width` numbered placeholders.
pub fn values(rows: usize, width: usize) -> String {
    let mut sql = String::with_capacity(rows * width * 6);
    let mut n = 1;
    for r in 0..rows {
        if r > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for c in 0..width {
            if c > 0 {
                sql.push_str(", ");
            }
            sql.push('$');
            sql.push_str(&n.to_string());
            n += 1;
        }
        sql.push(')');
    }
    sql
}

/// `$1, $2, …`: `n` numbered placeholders for an `IN (…)` list.
pub fn list(n: usize) -> String {
    (1..=n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_row_by_row() {
        assert_eq!(values(2, 3), "($1, $2, $3), ($4, $5, $6)");
        assert_eq!(values(1, 2), "($1, $2)");
        assert_eq!(values(0, 2), "");
        assert_eq!(list(3), "$1, $2, $3");
        let rows: Vec<u8> = (0..70).collect();
        let chunks: Vec<(&[u8], String)> = chunked(&rows, 8).collect();
        assert_eq!(chunks.len(), 3, "32 + 32 + 6 rows of 8 under 256");
        assert_eq!(chunks[2].0.len(), 6);
        assert_eq!(chunks[2].1, values(6, 8));
    }

    #[test]
    fn a_full_statement_stays_within_sqlite_limit() {
        let rows = per_statement(8);
        assert!(rows * 8 <= BINDS_PER_STATEMENT);
        assert!((rows + 1) * 8 > BINDS_PER_STATEMENT);
        // A row wider than the cap still goes, one per statement, within SQLite's limit.
        assert_eq!(per_statement(300), 1);
    }
}
