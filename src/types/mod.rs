//! Small vocabulary types that both `config` (which reads them from the file) and `domain`
//! (which decides with them) need. Data only, plus the checks the config runs on them;
//! the behaviour stays in `domain`. Keeps the dependency one way: `domain` may use
//! `config`, `config` never uses `domain`.

pub mod calendar;
pub mod duration;
pub mod plan;
pub mod reminder;
pub mod signals;

/// Codes are lowercase ASCII words (`debts`, `mental_health`): they travel in exports.
pub fn is_code(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 40
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}
