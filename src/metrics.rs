//! Prometheus metrics on `GET /metrics`, through `prometheus-client` (the Prometheus
//! project's own Rust client: typed metrics, no global registry, the text format scrapers
//! read). Counts, times and kinds only: no reference, address or name ever becomes a label.
//!
//! Two sources: what this daemon observes as it works (sweep durations, send failures),
//! kept in [`Metrics`] for the life of the process, and what the database says at the
//! moment of the scrape ([`Snapshot`]: rows by status, the last sweep, the oldest
//! pending message), so a sweep run from the command line or by another daemon counts too.

use prometheus_client::encoding::prometheus_text;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;
use std::time::Duration;

/// The `Content-Type` of the text the scrape answers with.
pub const CONTENT_TYPE: &str = prometheus_text::CONTENT_TYPE;

/// Labels of one series: fixed names, values from a closed set (statuses, kinds).
type Labels = Vec<(&'static str, String)>;

/// What this process observes; shared by the worker loop (which writes) and the API.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    sweep_duration: Histogram,
    send_failures: Family<Labels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("nazorg");
        registry.register(
            "build",
            "The running build (the value is always 1)",
            Info::new(vec![("version", env!("CARGO_PKG_VERSION"))]),
        );
        // 10 ms … about 80 s: a small installation sweeps in milliseconds, a large one in
        // seconds; beyond the last bucket the sweep is in trouble anyway.
        let sweep_duration = Histogram::new(exponential_buckets(0.01, 2.0, 14));
        registry.register(
            "sweep_duration_seconds",
            "Time the daemon's sweeps took (successful ones)",
            sweep_duration.clone(),
        );
        let send_failures = Family::<Labels, Counter>::default();
        registry.register(
            "send_failures",
            "Failed attempts to send a message, by message kind and failure (transient: retried later; permanent: refused; exhausted: the last allowed attempt)",
            send_failures.clone(),
        );
        Metrics {
            registry,
            sweep_duration,
            send_failures,
        }
    }
}

/// Why a send failed, as the metric labels it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// Will be retried after a backoff.
    Transient,
    /// Refused by the relay for good.
    Permanent,
    /// Transient, but the last attempt `dispatch.max_attempts` allows.
    Exhausted,
}

impl Failure {
    fn label(self) -> &'static str {
        match self {
            Failure::Transient => "transient",
            Failure::Permanent => "permanent",
            Failure::Exhausted => "exhausted",
        }
    }
}

impl Metrics {
    /// A sweep of the daemon finished after `took`.
    pub fn sweep_done(&self, took: Duration) {
        self.sweep_duration.observe(took.as_secs_f64());
    }

    /// Sending a message of `kind` (an outbox kind such as `reminder`) failed.
    pub fn send_failed(&self, kind: &str, failure: Failure) {
        self.send_failures
            .get_or_create(&vec![
                ("kind", kind.to_string()),
                ("failure", failure.label().to_string()),
            ])
            .inc();
    }

    /// The whole scrape: this process's metrics, then the database's `snapshot`.
    pub fn render(&self, snapshot: &Snapshot) -> Result<String, std::fmt::Error> {
        let mut out = String::new();
        prometheus_text::encode(&mut out, &self.registry)?;
        prometheus_text::encode(&mut out, &snapshot.registry()?)?;
        Ok(out)
    }
}

/// The series of a metric: each an optional (label, value) pair and its number.
pub type Series<N> = Vec<(Option<(&'static str, String)>, N)>;

/// A metric of a scrape: name (without the `nazorg_` prefix), help text, series.
pub type Named<N> = (&'static str, &'static str, Series<N>);

/// Values read for one scrape (from the database and the daemon's counters).
#[derive(Debug, Default)]
pub struct Snapshot {
    /// Gauges by metric name (without the prefix), with their series.
    pub gauges: Vec<Named<i64>>,
    /// Counters by metric name (without the prefix and `_total`), with their series.
    pub counters: Vec<Named<u64>>,
    /// When the latest sweep recorded in the database ran (Unix seconds), if any did.
    pub last_sweep: Option<i64>,
    /// When this daemon last finished a dispatch round (Unix seconds), if it did.
    pub last_dispatch: Option<i64>,
    /// Age of the oldest message waiting to be sent (seconds; 0 when none waits).
    pub oldest_pending_secs: i64,
}

impl Snapshot {
    fn registry(&self) -> Result<Registry, std::fmt::Error> {
        let mut reg = Registry::with_prefix("nazorg");
        let mut gauge = |name: &'static str, help: &'static str, value: Option<i64>| {
            if let Some(v) = value {
                let g = Gauge::<i64>::default();
                g.set(v);
                reg.register(name, help, g);
            }
        };
        gauge(
            "last_sweep_timestamp_seconds",
            "When the latest successful sweep ran (Unix time; absent before the first)",
            self.last_sweep,
        );
        gauge(
            "last_dispatch_timestamp_seconds",
            "When this daemon last finished a dispatch round (Unix time; absent before the first)",
            self.last_dispatch,
        );
        gauge(
            "oldest_pending_message_age_seconds",
            "Age of the oldest message waiting in the outbox (0 when none waits)",
            Some(self.oldest_pending_secs),
        );
        for (name, help, series) in &self.gauges {
            let family = Family::<Labels, Gauge>::default();
            for (label, value) in series {
                family.get_or_create(&labels(label)).set(*value);
            }
            reg.register(*name, *help, family);
        }
        for (name, help, series) in &self.counters {
            let family = Family::<Labels, Counter>::default();
            for (label, value) in series {
                family.get_or_create(&labels(label)).inc_by(*value);
            }
            reg.register(*name, *help, family);
        }
        Ok(reg)
    }
}

fn labels(label: &Option<(&'static str, String)>) -> Labels {
    label.iter().cloned().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scrape_names_the_build_and_counts_failures_by_kind() {
        let m = Metrics::default();
        m.sweep_done(Duration::from_millis(30));
        m.send_failed("reminder", Failure::Transient);
        m.send_failed("reminder", Failure::Transient);
        m.send_failed("red_alert", Failure::Permanent);
        let text = m
            .render(&Snapshot {
                last_sweep: Some(1_800_000_000),
                oldest_pending_secs: 42,
                counters: vec![("safety_fallbacks", "Fallbacks", vec![(None, 3)])],
                ..Default::default()
            })
            .unwrap_or_default();
        let version = env!("CARGO_PKG_VERSION");
        for line in [
            format!("nazorg_build_info{{version=\"{version}\"}} 1"),
            "nazorg_send_failures_total{kind=\"reminder\",failure=\"transient\"} 2".into(),
            "nazorg_send_failures_total{kind=\"red_alert\",failure=\"permanent\"} 1".into(),
            "nazorg_sweep_duration_seconds_count 1".into(),
            "nazorg_sweep_duration_seconds_bucket{le=\"0.04\"} 1".into(),
            "nazorg_last_sweep_timestamp_seconds 1800000000".into(),
            "nazorg_oldest_pending_message_age_seconds 42".into(),
            "nazorg_safety_fallbacks_total 3".into(),
            "# TYPE nazorg_safety_fallbacks_total counter".into(),
        ] {
            assert!(text.lines().any(|l| l == line), "no {line:?} in\n{text}");
        }
        assert!(!text.contains("last_dispatch"), "absent before the first");
    }
}
