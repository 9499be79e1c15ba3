//! Rate limiting (token bucket), in memory: per token, so a runaway client slows down
//! instead of crowding out the other teams; and per client IP for requests without a valid
//! token, so strangers are turned away before any database work.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Above this many buckets, full ones are dropped before a new key is added.
const MAX_KEYS: usize = 10_000;

pub struct Limiter {
    rate: f64,
    burst: f64,
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

impl Limiter {
    pub fn new(rate_per_second: u32, burst: u32) -> Limiter {
        Limiter {
            rate: f64::from(rate_per_second.max(1)),
            burst: f64::from(burst.max(1)),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one request from the key's bucket, or says how long to wait.
    pub fn check(&self, key: &str) -> Result<(), Duration> {
        self.take(key, true)
    }

    /// Whether the key's bucket has a request left, without taking it.
    pub fn peek(&self, key: &str) -> Result<(), Duration> {
        self.take(key, false)
    }

    fn take(&self, key: &str, take: bool) -> Result<(), Duration> {
        let now = crate::clock::monotonic();
        let mut buckets = match self.buckets.lock() {
            Ok(b) => b,
            Err(poisoned) => poisoned.into_inner(),
        };
        if buckets.len() >= MAX_KEYS && !buckets.contains_key(key) {
            // Many distinct keys (e.g. strangers from many addresses): forget the buckets
            // that have refilled, which changes nothing for them.
            let (rate, burst) = (self.rate, self.burst);
            buckets.retain(|_, (tokens, last)| {
                *tokens + now.saturating_duration_since(*last).as_secs_f64() * rate < burst
            });
        }
        let (tokens, last) = buckets.entry(key.to_string()).or_insert((self.burst, now));
        let refill = now.saturating_duration_since(*last).as_secs_f64() * self.rate;
        *tokens = (*tokens + refill).min(self.burst);
        *last = now;
        if *tokens >= 1.0 {
            if take {
                *tokens -= 1.0;
            }
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - *tokens) / self.rate))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_refusal_per_key() {
        let l = Limiter::new(1, 3);
        assert!((0..3).all(|_| l.check("a").is_ok()));
        assert!(l.check("a").is_err());
        assert!(l.check("b").is_ok(), "buckets are per token");
    }

    #[test]
    fn peek_takes_nothing() {
        let l = Limiter::new(1, 1);
        assert!((0..5).all(|_| l.peek("a").is_ok()));
        assert!(l.check("a").is_ok());
        assert!(l.peek("a").is_err());
    }
}
