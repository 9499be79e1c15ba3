//! Statements over many rows at once: the placeholder lists of a multi-row `VALUES` and
//! the chunk size that keeps each statement within SQLite's limit of bound parameters.
//!
//! Every statement is a round trip to the connection's thread (SQLite) or the server
//! (PostgreSQL), so work over a batch of rows is a few statements, not one per row.

/// SQLite's limit on the parameters bound to one statement (PostgreSQL allows 65,535).
pub const MAX_BINDS: usize = 32_766;

/// How many rows of `width` parameters (plus `shared` bound once per statement) one
/// statement may carry.
pub fn per_statement(width: usize, shared: usize) -> usize {
    (MAX_BINDS - shared) / width.max(1)
}

/// `($F, $F+1, …), (…)`: `rows` rows of `width` numbered placeholders, from `$first` on.
pub fn values(rows: usize, width: usize, first: usize) -> String {
    let mut sql = String::with_capacity(rows * width * 6);
    let mut n = first;
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

/// `$F, $F+1, …`: `n` numbered placeholders for an `IN (…)` list, from `$first` on.
pub fn list(n: usize, first: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_row_by_row() {
        assert_eq!(values(2, 3, 1), "($1, $2, $3), ($4, $5, $6)");
        assert_eq!(values(1, 2, 5), "($5, $6)");
        assert_eq!(values(0, 2, 1), "");
        assert_eq!(list(3, 2), "$2, $3, $4");
    }

    #[test]
    fn a_full_statement_stays_within_sqlite_limit() {
        let rows = per_statement(8, 0);
        assert!(rows * 8 <= MAX_BINDS);
        assert!((rows + 1) * 8 > MAX_BINDS);
        assert!(per_statement(5, 1) * 5 < MAX_BINDS);
    }
}
