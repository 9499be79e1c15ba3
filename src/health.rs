//! What the daemon knows of its own condition: when the sweep and the dispatcher last
//! finished, and whether the mail relay is in trouble. `/readyz`, systemd's `STATUS=` and
//! `nazorg status` read it; nothing here names a family.

use chrono::{DateTime, Utc};
use std::sync::Mutex;

/// Shared by the daemon's worker loop (which writes) and the API (which reads).
#[derive(Debug, Default)]
pub struct Health {
    state: Mutex<HealthState>,
    /// What the daemon observes as it works, for `/metrics`.
    pub metrics: crate::metrics::Metrics,
}

/// A copy of the daemon's condition at one moment.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct HealthState {
    /// The daemon's worker loop runs (false for one-shot commands).
    pub serving: bool,
    /// Longest a healthy daemon goes between sweeps (twice the cron's gap, plus a minute).
    pub sweep_every_secs: Option<i64>,
    pub last_sweep: Option<DateTime<Utc>>,
    pub last_sweep_failed: bool,
    pub last_dispatch: Option<DateTime<Utc>>,
    pub relay_trouble: bool,
}

impl Health {
    pub fn snapshot(&self) -> HealthState {
        match self.state.lock() {
            Ok(s) => s.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    pub fn update(&self, f: impl FnOnce(&mut HealthState)) {
        match self.state.lock() {
            Ok(mut s) => f(&mut s),
            Err(poisoned) => f(&mut poisoned.into_inner()),
        }
    }
}

impl HealthState {
    /// Why the daemon is not ready to be relied on at `now`, if it is not.
    pub fn sweep_problem(&self, now: DateTime<Utc>) -> Option<&'static str> {
        if !self.serving {
            return None;
        }
        if self.last_sweep_failed {
            return Some("the last sweep failed");
        }
        match (self.last_sweep, self.sweep_every_secs) {
            (None, _) => Some("no sweep has finished yet"),
            (Some(at), Some(every)) if (now - at).num_seconds() > every => {
                Some("the last sweep is older than the schedule allows")
            }
            _ => None,
        }
    }
}

/// Twice the gap between the next two firings of a sweep cron (seconds field first), plus
/// a minute of slack: a daemon that has not swept for that long is not keeping up.
pub fn sweep_allowance(cron: &str, now: DateTime<Utc>) -> Option<i64> {
    let cron = croner::parser::CronParser::builder()
        .seconds(croner::parser::Seconds::Required)
        .build()
        .parse(cron)
        .ok()?;
    let first = cron.find_next_occurrence(&now, false).ok()?;
    let second = cron.find_next_occurrence(&first, false).ok()?;
    Some(2 * (second - first).num_seconds() + 60)
}

/// Asks a running daemon's `/readyz` on `addr` (an unspecified address means this host).
/// Returns the HTTP status and the body; plain HTTP/1.1 over loopback, bounded at 5 s.
pub async fn probe(addr: std::net::SocketAddr) -> std::io::Result<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut target = addr;
    if target.ip().is_unspecified() {
        target.set_ip(match target {
            std::net::SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            std::net::SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(target).await?;
        let request =
            format!("GET /readyz HTTP/1.1\r\nHost: {target}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await?;
        let mut reply = Vec::new();
        stream.take(64 * 1024).read_to_end(&mut reply).await?;
        Ok::<_, std::io::Error>(reply)
    };
    let reply = tokio::time::timeout(std::time::Duration::from_secs(5), exchange)
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "no answer within 5 s"))??;
    let text = String::from_utf8_lossy(&reply);
    let code = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse::<u16>().ok())
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidData, "not an HTTP reply"))?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((code, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap_or_default()
    }

    #[test]
    fn allowance_is_twice_the_cron_gap_plus_a_minute() {
        let now = at("2026-12-01T10:00:30Z");
        assert_eq!(sweep_allowance("0 */5 * * * *", now), Some(660));
        assert_eq!(sweep_allowance("not cron", now), None);
    }

    #[test]
    fn stale_or_failed_sweeps_are_problems() {
        let now = at("2026-12-01T10:00:00Z");
        let mut s = HealthState {
            serving: true,
            sweep_every_secs: Some(660),
            ..Default::default()
        };
        assert!(s.sweep_problem(now).is_some());
        s.last_sweep = Some(at("2026-12-01T09:55:00Z"));
        assert_eq!(s.sweep_problem(now), None);
        s.last_sweep = Some(at("2026-12-01T09:40:00Z"));
        assert!(s.sweep_problem(now).is_some());
        s.last_sweep = Some(now);
        s.last_sweep_failed = true;
        assert!(s.sweep_problem(now).is_some());
        assert_eq!(HealthState::default().sweep_problem(now), None);
    }
}
