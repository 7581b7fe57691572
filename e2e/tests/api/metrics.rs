//! The hybrid-timeline metrics, read the way Prometheus reads them.
//!
//! The recorder is process-global and every test of this binary shares the
//! process, so it is installed once, here, and the other tests' services
//! record into it too. Each assertion is therefore about growth across what
//! this test did, never about exact values.

use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use crate::helpers::{eventually, handle, ids, spawn_stack};

/// The process's recorder, installed by whichever test asks first.
fn recorder() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        PrometheusBuilder::new()
            .install_recorder()
            .expect("install the metrics recorder")
    })
}

/// One reading of every counter, in the Prometheus text format.
struct Reading(String);

impl Reading {
    fn take() -> Self {
        Self(recorder().render())
    }

    /// The sum of `name` over the series whose labels contain `labels`
    /// (e.g. `result="hit"`; empty for all of them).
    fn total(&self, name: &str, labels: &str) -> f64 {
        self.0
            .lines()
            .filter_map(|line| {
                let (series, value) = line.rsplit_once(' ')?;
                let rest = series.strip_prefix(name)?;
                let matches = rest.is_empty() || (rest.starts_with('{') && rest.contains(labels));
                matches.then(|| value.parse::<f64>().ok()).flatten()
            })
            .sum()
    }
}

/// How much `name{labels}` grew from `before` to now.
fn growth(before: &Reading, name: &str, labels: &str) -> f64 {
    Reading::take().total(name, labels) - before.total(name, labels)
}

#[tokio::test]
async fn pushes_cache_hits_and_rebuilds_are_counted() {
    recorder();
    let stack = spawn_stack().await;
    let reader = stack.sign_up(&handle("reader")).await;
    let author = stack.sign_up(&handle("author")).await;
    stack.follow(&reader, &author).await;
    let before = Reading::take();

    let posted = stack.post(&author, "counted").await["id"]
        .as_str()
        .expect("tweet id")
        .to_owned();
    // The reader's first read may rebuild the timeline from the stores before
    // the worker gets to the event, so wait on the worker's own counters.
    eventually(
        Duration::from_secs(15),
        "the author's and the follower's timelines to be pushed to",
        || async {
            (growth(&before, "chirp_fanout_timeline_writes_total", r#"change="push""#) >= 2.0)
                .then_some(())
        },
    )
    .await;
    assert!(ids(&stack.home_timeline(&reader, "").await).contains(&posted));
    stack.home_timeline(&reader, "").await;
    let applied = growth(&before, "chirp_fanout_events_total", r#"outcome="applied""#);
    assert!(applied >= 1.0, "the tweet event applied, got {applied}");
    let hits = growth(
        &before,
        "chirp_timeline_tweet_cache_total",
        r#"result="hit""#,
    );
    assert!(
        hits >= 1.0,
        "the second read hydrated from the cache, got {hits}"
    );

    let timelines = stack.timelines().await;
    timelines
        .invalidate(&[reader.numeric_id()])
        .await
        .expect("drop the reader's timeline");
    let before_rebuild = Reading::take();
    assert!(ids(&stack.home_timeline(&reader, "").await).contains(&posted));
    let rebuilds = growth(&before_rebuild, "chirp_timeline_rebuilds_total", "");
    assert!(
        rebuilds >= 1.0,
        "the dropped timeline rebuilt, got {rebuilds}"
    );
}
