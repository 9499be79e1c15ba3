//! Pseudonymous references: what email, logs and other teams see instead of names.

use rand::Rng;

/// Crockford-like alphabet without 0/O, 1/I/L and U, so references survive being read
/// aloud on the phone between teams.
const ALPHABET: &[u8] = b"23456789ABCDEFGHJKMNPQRSTVWXYZ";

fn random(prefix: &str, len: usize) -> String {
    let mut rng = rand::thread_rng();
    let mut s = String::with_capacity(prefix.len() + len);
    s.push_str(prefix);
    for _ in 0..len {
        let i = rng.gen_range(0..ALPHABET.len());
        s.push(char::from(ALPHABET[i]));
    }
    s
}

/// A family reference such as `F-7Q2K9XM4` (30^8 ≈ 6.6·10^11 values; the store retries on a clash).
pub fn family() -> String {
    random("F-", 8)
}

/// A member reference such as `M-…` (30^10 values).
pub fn member() -> String {
    random("M-", 10)
}

/// A team member of the workspace, `M-` and 12 characters (longer than a family member's
/// reference, so the two never clash).
pub fn team_member() -> String {
    random("M-", 12)
}

/// A check-in id such as `C-…` (30^10 values).
pub fn checkin() -> String {
    random("C-", 10)
}

/// A research export id such as `X-…`.
pub fn export() -> String {
    random("X-", 10)
}

/// An API token id such as `T-…` (not the secret).
pub fn token() -> String {
    random("T-", 10)
}

/// A handover id such as `H-…` (30^8 values).
pub fn handover() -> String {
    random("H-", 8)
}

/// True when `s` has the shape of one of our references with the given prefix, so that
/// lookups with garbage never reach the database.
pub fn looks_like(s: &str, prefix: char) -> bool {
    let mut chars = s.chars();
    chars.next() == Some(prefix)
        && chars.next() == Some('-')
        && s.len() >= 8
        && s.len() <= 16
        && s[2..].bytes().all(|b| ALPHABET.contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_have_their_shape() {
        assert!(looks_like(&family(), 'F'));
        assert!(looks_like(&member(), 'M'));
        assert!(looks_like(&checkin(), 'C'));
        assert!(!looks_like("F-1234", 'F'));
        assert!(!looks_like("F-'; DROP TABLE", 'F'));
        assert_ne!(family(), family());
    }
}
