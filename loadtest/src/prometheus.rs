//! Reading the services' own counters, in the Prometheus text format their
//! `/metrics` serves.
//!
//! The load tool counts what it sent; the services count what that cost
//! them (the fan-out worker's timeline writes, above all). Reading their
//! counters before and after a phase gives the cost of the phase without
//! the tool guessing at the services' internals. Only what a counter needs
//! is parsed: a series' name, its labels as text, and its value.

use std::time::Duration;

use anyhow::Context;

/// One reading of a metrics page.
#[derive(Debug, Clone, Default)]
pub struct Scrape {
    /// `(series, value)`: the series is the name with its `{labels}`.
    series: Vec<(String, f64)>,
}

impl Scrape {
    pub fn parse(text: &str) -> Self {
        let series = text
            .lines()
            .filter(|line| !line.starts_with('#'))
            .filter_map(|line| {
                let (series, value) = line.rsplit_once(' ')?;
                Some((series.to_owned(), value.parse().ok()?))
            })
            .collect();
        Self { series }
    }

    /// `GET url` (a `/metrics` endpoint) and parse it.
    pub async fn fetch(http: &reqwest::Client, url: &str) -> anyhow::Result<Self> {
        let text = http
            .get(url)
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .with_context(|| format!("read the metrics at {url}"))?
            .text()
            .await?;
        Ok(Self::parse(&text))
    }

    /// The sum of `name` over its series whose labels include every one of
    /// `labels` (each written `key="value"`); 0 if there is none yet, as
    /// for a counter nothing has incremented.
    pub fn total(&self, name: &str, labels: &[&str]) -> f64 {
        self.series
            .iter()
            .filter(|(series, _)| match series.strip_prefix(name) {
                Some("") => labels.is_empty(),
                Some(rest) => rest.starts_with('{') && labels.iter().all(|l| rest.contains(l)),
                None => false,
            })
            .map(|(_, value)| value)
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_summed_over_matching_labels() {
        let scrape = Scrape::parse(
            "# TYPE chirp_fanout_timeline_writes_total counter\n\
             chirp_fanout_timeline_writes_total{change=\"push\"} 120\n\
             chirp_fanout_timeline_writes_total{change=\"remove\"} 3\n\
             chirp_fanout_timeline_writes_total_other 7\n\
             chirp_fanout_events_total{outcome=\"applied\"} 4\n",
        );
        let writes = "chirp_fanout_timeline_writes_total";
        assert_eq!(scrape.total(writes, &["change=\"push\""]), 120.0);
        assert_eq!(scrape.total(writes, &[]), 123.0);
        assert_eq!(scrape.total("chirp_fanout_events_total", &[]), 4.0);
        assert_eq!(scrape.total("chirp_missing_total", &[]), 0.0);
    }
}
