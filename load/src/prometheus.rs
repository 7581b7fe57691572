//! Reading the services' own counters, in the Prometheus text format their
//! `/metrics` serves.
//!
//! The load tool counts what it sent; the services count what that cost
//! them (the fan-out worker's timeline writes, above all). Reading their
//! counters before and after a phase gives the cost of the phase without
//! the tool guessing at the services' internals.

use std::time::Duration;

use anyhow::Context;

/// One reading of a metrics page.
#[derive(Debug, Clone, Default)]
pub struct Scrape {
    exposition: String,
}

impl Scrape {
    /// A page already in hand, e.g. an in-process recorder's rendering.
    pub fn from_text(exposition: String) -> Self {
        Self { exposition }
    }

    /// `GET url` (a `/metrics` endpoint).
    pub async fn fetch(http: &reqwest::Client, url: &str) -> anyhow::Result<Self> {
        let exposition = http
            .get(url)
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .with_context(|| format!("read the metrics at {url}"))?
            .text()
            .await?;
        Ok(Self { exposition })
    }

    /// The sum of `name` over its series whose labels include every one of
    /// `labels` ([`chirp_runtime::metrics::total`]).
    pub fn total(&self, name: &str, labels: &[&str]) -> f64 {
        chirp_runtime::metrics::total(&self.exposition, name, labels)
    }
}
