//! The Prometheus endpoint every service can expose: counters and histograms
//! recorded with the `metrics` macros, served as text at `/metrics`.
//!
//! Services record through the `metrics` facade and never see the exporter,
//! so the code that counts does not care whether anyone scrapes. The recorder
//! is process-global and can be installed only once, which is why `main`
//! installs it and `run` does not: tests start many services in one process.
//! Without `METRICS_ADDR` nothing is installed and every recording is a no-op.
//!
//! Histograms are exported as Prometheus histograms (cumulative buckets), not
//! summaries: quantiles of a summary are computed per process and cannot be
//! combined, whereas Prometheus can take `histogram_quantile` over the buckets
//! of every replica at once. The price is fixed bucket bounds, chosen below.

use std::net::SocketAddr;

use anyhow::Context;
use clap::Args;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};

/// Flattened into every service's `Config`.
#[derive(Debug, Clone, Args)]
pub struct MetricsArgs {
    /// Address serving Prometheus metrics at `/metrics`. Unset, the service
    /// exposes none: metrics are opt-in, and a port nobody scrapes is one
    /// more to secure.
    #[arg(long, env = "METRICS_ADDR")]
    pub metrics_addr: Option<SocketAddr>,
}

/// Installs the global recorder and starts serving `/metrics` on
/// `metrics_addr`, when it is set. Must run inside a Tokio runtime, and at
/// most once per process.
pub fn install(args: &MetricsArgs) -> anyhow::Result<()> {
    let Some(addr) = args.metrics_addr else {
        return Ok(());
    };
    builder()
        .with_http_listener(addr)
        .install()
        .with_context(|| format!("serve metrics on {addr}"))?;
    tracing::info!(%addr, "metrics exposed at /metrics");
    Ok(())
}

/// Bucket bounds, in seconds, of every `*_duration_seconds` histogram: from
/// half a millisecond (a cache hit) to five seconds (past every deadline).
const DURATION_BUCKETS: [f64; 13] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

/// Bucket bounds of every other histogram: they count things (authors pulled
/// per read, timeline entries per write batch), from none to ten thousand.
const COUNT_BUCKETS: [f64; 14] = [
    0.0, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0, 5000.0, 10000.0,
];

/// The exporter every chirp process uses, with the buckets above; tests
/// install it as a bare recorder and read its rendering.
pub fn builder() -> PrometheusBuilder {
    PrometheusBuilder::new()
        .set_buckets(&COUNT_BUCKETS)
        .and_then(|builder| {
            builder.set_buckets_for_metric(
                Matcher::Suffix("_duration_seconds".to_owned()),
                &DURATION_BUCKETS,
            )
        })
        .expect("the bucket lists are not empty")
}

/// The sum of metric `name` over its series whose labels include every one
/// of `labels` (each written `key="value"`), in a Prometheus text
/// exposition; 0 when there is none, as for a counter nothing has
/// incremented yet. A series without labels counts only when `labels` is
/// empty. This is how the tests and the load tool read a service's counters
/// from `/metrics`: only a series' name, its labels as text, and its value
/// are parsed.
pub fn total(exposition: &str, name: &str, labels: &[&str]) -> f64 {
    // Adding 0.0 makes the empty sum (which is -0.0 for floats) read 0.
    values(exposition, name, labels).sum::<f64>() + 0.0
}

/// As [`total`], the largest series instead of their sum (0 when there is
/// none): for a gauge per shard whose worst shard is what matters, as the
/// age of the oldest pending event.
pub fn largest(exposition: &str, name: &str, labels: &[&str]) -> f64 {
    values(exposition, name, labels).fold(0.0, f64::max)
}

fn values<'a>(
    exposition: &'a str,
    name: &'a str,
    labels: &'a [&'a str],
) -> impl Iterator<Item = f64> + 'a {
    exposition.lines().filter_map(move |line| {
        let (series, value) = line.rsplit_once(' ')?;
        let matches = match series.strip_prefix(name)? {
            "" => labels.is_empty(),
            rest => rest.starts_with('{') && labels.iter().all(|l| rest.contains(l)),
        };
        matches.then(|| value.parse::<f64>().ok()).flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_largest_series_is_the_worst_shard() {
        let exposition = "chirp_outbox_oldest_pending_seconds{shard=\"0\"} 3\n\
             chirp_outbox_oldest_pending_seconds{shard=\"1\"} 42.5\n\
             chirp_outbox_oldest_pending_seconds{shard=\"2\"} 0\n";
        assert_eq!(
            largest(exposition, "chirp_outbox_oldest_pending_seconds", &[]),
            42.5
        );
        assert_eq!(largest(exposition, "chirp_outbox_pending_events", &[]), 0.0);
        let none = total(exposition, "chirp_outbox_pending_events", &[]);
        assert!(
            none == 0.0 && none.is_sign_positive(),
            "{none}: printed as -0"
        );
    }

    #[test]
    fn totals_sum_the_series_with_every_label_asked_for() {
        let exposition = "# TYPE chirp_fanout_timeline_writes_total counter\n\
             chirp_fanout_timeline_writes_total{change=\"push\"} 120\n\
             chirp_fanout_timeline_writes_total{change=\"remove\"} 3\n\
             chirp_fanout_timeline_writes_total_other 7\n\
             chirp_fanout_events_total 4\n";
        let writes = "chirp_fanout_timeline_writes_total";
        assert_eq!(total(exposition, writes, &["change=\"push\""]), 120.0);
        assert_eq!(total(exposition, writes, &[]), 123.0);
        assert_eq!(total(exposition, "chirp_fanout_events_total", &[]), 4.0);
        assert_eq!(
            total(exposition, "chirp_fanout_events_total", &["a=\"b\""]),
            0.0
        );
        assert_eq!(total(exposition, "chirp_missing_total", &[]), 0.0);
    }
}
