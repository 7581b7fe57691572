//! The Prometheus endpoint every service can expose: counters and histograms
//! recorded with the `metrics` macros, served as text at `/metrics`.
//!
//! Services record through the `metrics` facade and never see the exporter,
//! so the code that counts does not care whether anyone scrapes. The recorder
//! is process-global and can be installed only once, which is why `main`
//! installs it and `run` does not: tests start many services in one process.
//! Without `METRICS_ADDR` nothing is installed and every recording is a no-op.

use std::net::SocketAddr;

use anyhow::Context;
use clap::Args;
use metrics_exporter_prometheus::PrometheusBuilder;

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
    PrometheusBuilder::new()
        .with_http_listener(addr)
        .install()
        .with_context(|| format!("serve metrics on {addr}"))?;
    tracing::info!(%addr, "metrics exposed at /metrics");
    Ok(())
}
