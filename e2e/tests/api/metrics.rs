//! The metrics, read the way Prometheus reads them: the request metrics every
//! server records, and the hybrid-timeline counters.
//!
//! The recorder is process-global and every test of this binary shares the
//! process, so it is installed once, here, and the other tests' services
//! record into it too. Each assertion is therefore about growth across what
//! this test did, never about exact values.

use std::sync::OnceLock;
use std::time::Duration;

use chirp_runtime::observe::{
    GRPC_REQUEST_DURATION, GRPC_REQUESTS, HTTP_REQUEST_DURATION, HTTP_REQUESTS,
};
use metrics_exporter_prometheus::PrometheusHandle;

use crate::helpers::{handle, ids, spawn_stack};
use chirp_test_support::eventually;

/// The process's recorder, installed by whichever test asks first, with the
/// buckets every service exports.
pub fn recorder() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        chirp_runtime::metrics::builder()
            .install_recorder()
            .expect("install the metrics recorder")
    })
}

/// One reading of every metric, in the Prometheus text format.
struct Reading(String);

impl Reading {
    fn take() -> Self {
        Self(recorder().render())
    }

    /// The sum of `name` over the series whose labels contain every one of
    /// `labels` (e.g. `result="hit"`; none for all of them).
    fn total(&self, name: &str, labels: &[&str]) -> f64 {
        chirp_runtime::metrics::total(&self.0, name, labels)
    }
}

/// How much `name{labels}` grew from `before` to now.
fn growth(before: &Reading, name: &str, labels: &[&str]) -> f64 {
    Reading::take().total(name, labels) - before.total(name, labels)
}

#[tokio::test]
async fn every_route_and_rpc_is_counted_and_timed() {
    recorder();
    // Before the stack starts: its start-up probe is a call that fails.
    let before = Reading::take();
    let stack = spawn_stack().await;
    let reader = stack.sign_up(&handle("reader")).await;
    let author = stack.sign_up(&handle("author")).await;
    stack.follow(&reader, &author).await;
    stack.post(&author, "measured").await;
    stack.home_timeline(&reader, "").await;

    let routes = [
        ("POST", "/users", "201", 2.0),
        ("POST", "/follow", "204", 1.0),
        ("POST", "/tweets", "201", 1.0),
        ("GET", "/users/{id}/timeline", "200", 1.0),
    ];
    for (method, route, status, times) in routes {
        let (method, route) = (format!("method=\"{method}\""), format!("route=\"{route}\""));
        let status = format!("status=\"{status}\"");
        let grew = growth(&before, HTTP_REQUESTS, &[&method, &route, &status]);
        assert!(
            grew >= times,
            "{HTTP_REQUESTS}{{{method},{route},{status}}} grew by {grew}"
        );
        let timed = growth(
            &before,
            &format!("{HTTP_REQUEST_DURATION}_count"),
            &[&method, &route],
        );
        assert!(
            timed >= times,
            "{HTTP_REQUEST_DURATION} of {method},{route}: {timed} samples"
        );
    }

    let rpcs = [
        ("chirp.graph.v1.GraphService", "CreateUser", "Ok", 2.0),
        ("chirp.graph.v1.GraphService", "Follow", "Ok", 1.0),
        ("chirp.tweet.v1.TweetService", "CreateTweet", "Ok", 1.0),
        (
            "chirp.timeline.v1.TimelineService",
            "GetHomeTimeline",
            "Ok",
            1.0,
        ),
        // The start-up probe: a user that does not exist.
        ("chirp.graph.v1.GraphService", "GetUser", "NotFound", 1.0),
    ];
    for (service, method, code, times) in rpcs {
        let (service, method) = (
            format!("service=\"{service}\""),
            format!("method=\"{method}\""),
        );
        let code = format!("code=\"{code}\"");
        let grew = growth(&before, GRPC_REQUESTS, &[&service, &method, &code]);
        assert!(
            grew >= times,
            "{GRPC_REQUESTS}{{{service},{method},{code}}} grew by {grew}"
        );
        let timed = growth(
            &before,
            &format!("{GRPC_REQUEST_DURATION}_count"),
            &[&service, &method],
        );
        assert!(
            timed >= times,
            "{GRPC_REQUEST_DURATION} of {service},{method}: {timed} samples"
        );
    }

    // Histograms, not summaries: buckets that Prometheus can aggregate
    // across replicas, from half a millisecond to five seconds.
    let reading = Reading::take();
    for histogram in [HTTP_REQUEST_DURATION, GRPC_REQUEST_DURATION] {
        let series = format!("{histogram}_bucket{{");
        let bounds: Vec<&str> = reading
            .0
            .lines()
            .filter(|line| line.starts_with(&series))
            .filter_map(|line| line.split(r#"le=""#).nth(1)?.split('"').next())
            .collect();
        for bound in ["0.0005", "5", "+Inf"] {
            assert!(
                bounds.contains(&bound),
                "{histogram} has no le={bound} bucket: {bounds:?}"
            );
        }
    }
}

#[tokio::test]
async fn pushes_cache_hits_and_rebuilds_are_counted() {
    recorder();
    let stack = spawn_stack().await;
    let reader = stack.sign_up(&handle("reader")).await;
    let author = stack.sign_up(&handle("author")).await;
    stack.follow(&reader, &author).await;
    // Both have read: pushes land only in cached timelines.
    stack.home_timeline(&reader, "").await;
    stack.home_timeline(&author, "").await;
    let before = Reading::take();

    let posted = stack.post(&author, "counted").await["id"]
        .as_str()
        .expect("tweet id")
        .to_owned();
    // The recorder is the whole test binary's, and other tests push at the
    // same time: wait for this tweet in the reader's cached timeline, then
    // for the worker's counters.
    eventually(
        Duration::from_secs(15),
        "the tweet in the follower's timeline",
        || async {
            ids(&stack.home_timeline(&reader, "").await)
                .contains(&posted)
                .then_some(())
        },
    )
    .await;
    eventually(
        Duration::from_secs(15),
        "the author's and the follower's timelines to be pushed to",
        || async {
            (growth(
                &before,
                "chirp_fanout_timeline_writes_total",
                &[r#"change="push""#],
            ) >= 2.0)
                .then_some(())
        },
    )
    .await;
    stack.home_timeline(&reader, "").await;
    let applied = growth(
        &before,
        "chirp_fanout_events_total",
        &[r#"outcome="applied""#],
    );
    assert!(applied >= 1.0, "the tweet event applied, got {applied}");
    let hits = growth(
        &before,
        "chirp_timeline_tweet_cache_total",
        &[r#"result="hit""#],
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
    let rebuilds = growth(&before_rebuild, "chirp_timeline_rebuilds_total", &[]);
    assert!(
        rebuilds >= 1.0,
        "the dropped timeline rebuilt, got {rebuilds}"
    );
}
