//! The system, live: each hop's request rate, error ratio and p99, the
//! fan-out's Kafka lag, the timeline caches' hit ratios and coalesced waits
//! and the graph's replica lag, for the console's architecture drawing and
//! its interview answers, computed from the services' own `/metrics`.
//!
//! The targets in `CONSOLE_METRICS_TARGETS` are scraped when the gateway's
//! `GET /console/live` asks ([`Live::view`]), at most once a second however
//! many consoles are open, and the difference between two scrapes is turned
//! into rates, as Prometheus' `rate()` and
//! `histogram_quantile()` would. This is what lets a native run
//! (`deploy/run-local.sh up`) show the system at work without Prometheus or
//! Grafana. It is not a replacement for them: nothing is stored, a restarted
//! service reads as zero for one interval, and with several copies of a
//! service each is one target of its own.
//!
//! A crate apart from the gateway, which only serves the view: the public
//! API does not need to know how every service's metrics are read.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chirp_proto::graph::graph_service_server;
use chirp_proto::timeline::timeline_service_server;
use chirp_proto::tweet::tweet_service_server;
use chirp_runtime::metrics::{largest, total};
use chirp_runtime::observe::{
    GRPC_REQUEST_DURATION, GRPC_REQUESTS, HTTP_REQUEST_DURATION, HTTP_REQUESTS, is_server_fault,
};
use clap::Args;
use futures::future::join_all;
use serde::Serialize;
use tokio::sync::Mutex;
use utoipa::ToSchema;

/// How old a reading may be before a request scrapes again.
const FRESH_FOR: Duration = Duration::from_millis(900);
/// Bound on one scrape: a dead target must not stall the view of the others.
const SCRAPE_TIMEOUT: Duration = Duration::from_millis(700);

// Named as the fan-out worker and the timeline service export them
// (`services/fanout/src/stats.rs`, `services/timeline/src/stats.rs`).
const FANOUT_EVENTS: &str = "chirp_fanout_events_total";
const FANOUT_WRITES: &str = "chirp_fanout_timeline_writes_total";
const FANOUT_SKIPS: &str = "chirp_fanout_celebrity_skips_total";
const FANOUT_LAG: &str = "chirp_fanout_consumer_lag";
const TWEET_CACHE: &str = "chirp_timeline_tweet_cache_total";
const PULLED_IDS_CACHE: &str = "chirp_timeline_pulled_ids_cache_total";
const REBUILDS: &str = "chirp_timeline_rebuilds_total";
const COALESCED_WAITS: &str = "chirp_timeline_coalesced_waits_total";
const FANOUT_DELAY: &str = "chirp_fanout_post_to_push_duration_seconds";
// And as the tweet service's outbox relay exports them (`services/tweet/src/stats.rs`).
const OUTBOX_PENDING: &str = "chirp_outbox_pending_events";
const OUTBOX_OLDEST: &str = "chirp_outbox_oldest_pending_seconds";
const OUTBOX_READ_FAILURES: &str = "chirp_outbox_read_failures_total";
// And as the graph service measures its read replica (`services/graph/src/replica_lag.rs`).
const REPLICA_LAG: &str = "chirp_graph_replica_lag_seconds";

#[derive(Debug, Clone, Args)]
pub struct ConsoleArgs {
    /// Metrics endpoints the console's live view reads, as comma-separated
    /// `name=host:port` (names: gateway, tweet, graph, timeline, fanout),
    /// e.g. `gateway=127.0.0.1:9100,tweet=127.0.0.1:9101`. Unset: the live
    /// view has nothing to show.
    #[arg(long, env = "CONSOLE_METRICS_TARGETS", value_delimiter = ',', value_parser = Target::parse)]
    pub console_metrics_targets: Vec<Target>,
}

/// One service's metrics endpoint.
#[derive(Debug, Clone)]
pub struct Target {
    name: String,
    url: String,
}

impl Target {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let (name, addr) = raw
            .split_once('=')
            .ok_or_else(|| format!("{raw:?} is not name=host:port"))?;
        if name.is_empty() || addr.is_empty() {
            return Err(format!("{raw:?} is not name=host:port"));
        }
        Ok(Self {
            name: name.to_owned(),
            url: format!("http://{addr}/metrics"),
        })
    }
}

/// The scraper, shared by every request.
pub struct Live {
    targets: Vec<Target>,
    http: reqwest::Client,
    /// The last reading; the lock also makes concurrent requests share one
    /// scrape instead of each starting their own.
    last: Mutex<Option<Reading>>,
}

struct Reading {
    at: Instant,
    /// Each target's exposition, `None` if it did not answer.
    expositions: Vec<Option<String>>,
    view: Arc<LiveView>,
}

/// The system over the last interval.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LiveView {
    /// Seconds between the two scrapes the rates come from; 0 on the first.
    interval_secs: f64,
    /// One per target, in the configured order.
    services: Vec<ServiceLive>,
    /// Present when a target is named `fanout`.
    #[serde(skip_serializing_if = "Option::is_none")]
    fanout: Option<FanoutLive>,
    /// Present when a target is named `timeline`.
    #[serde(skip_serializing_if = "Option::is_none")]
    timeline: Option<TimelineLive>,
    /// Present when a target is named `tweet`.
    #[serde(skip_serializing_if = "Option::is_none")]
    outbox: Option<OutboxLive>,
    /// Present when a target is named `graph`.
    #[serde(skip_serializing_if = "Option::is_none")]
    graph: Option<GraphLive>,
}

/// One hop: requests it served. Rates and ratios are absent when unknown
/// (first reading, target down, no requests).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ServiceLive {
    name: String,
    up: bool,
    requests_per_sec: Option<f64>,
    /// Server faults (HTTP 5xx, gRPC Internal/Unavailable/…) over requests.
    error_ratio: Option<f64>,
    p99_ms: Option<f64>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FanoutLive {
    /// Events not yet committed by the group, summed over partitions.
    consumer_lag: f64,
    events_per_sec: Option<f64>,
    timeline_writes_per_sec: Option<f64>,
    celebrity_skips_per_sec: Option<f64>,
    /// Events tried again after a failure (an outage, a refusal).
    retries_per_sec: Option<f64>,
    /// Undecodable events sent to the dead-letter topic since the worker
    /// started (`fanout replay-dead-letters` sends them back).
    dead_lettered: f64,
    /// From a tweet's creation to each page of its push, over the interval.
    delay_p50_ms: Option<f64>,
    delay_p99_ms: Option<f64>,
}

/// The tweet service's outbox: events written with their tweets and not yet
/// in Kafka. A depth or an age that only grows is a relay that stopped.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OutboxLive {
    pending_events: f64,
    oldest_pending_secs: f64,
    read_failures_per_sec: Option<f64>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TimelineLive {
    tweet_cache_hit_ratio: Option<f64>,
    pulled_ids_cache_hit_ratio: Option<f64>,
    rebuilds_per_sec: Option<f64>,
    /// Reads that found a tweet being fetched by another read and waited
    /// for that fetch instead of asking the tweet store again.
    tweet_coalesced_waits_per_sec: Option<f64>,
    /// The same, since the service started: a herd comes in bursts (a new
    /// hot tweet, an expiry) that a per-second rate mostly misses.
    tweet_coalesced_waits: f64,
}

/// The graph service's read replicas: one entry per replica it measures,
/// none when it reads from the primary only.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct GraphLive {
    replicas: Vec<ReplicaLive>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReplicaLive {
    /// Its host:port.
    replica: String,
    /// Seconds behind the primary; absent when the last measurement failed.
    lag_secs: Option<f64>,
}

impl Live {
    pub fn new(args: &ConsoleArgs) -> Self {
        Self {
            targets: args.console_metrics_targets.clone(),
            http: reqwest::Client::new(),
            last: Mutex::new(None),
        }
    }

    /// The newest view, scraping first if the last one is stale.
    pub async fn view(&self) -> Arc<LiveView> {
        let mut last = self.last.lock().await;
        if let Some(reading) = last.as_ref().filter(|r| r.at.elapsed() < FRESH_FOR) {
            return reading.view.clone();
        }
        let at = Instant::now();
        let expositions = join_all(self.targets.iter().map(|t| self.scrape(t))).await;
        let previous = last.as_ref().map(|r| (r.at, r.expositions.as_slice()));
        let view = Arc::new(self.compare(previous, at, &expositions));
        *last = Some(Reading {
            at,
            expositions,
            view: view.clone(),
        });
        view
    }

    async fn scrape(&self, target: &Target) -> Option<String> {
        let response = self
            .http
            .get(&target.url)
            .timeout(SCRAPE_TIMEOUT)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status);
        match response {
            Ok(response) => response.text().await.ok(),
            Err(error) => {
                tracing::debug!(target = %target.name, %error, "metrics scrape failed");
                None
            }
        }
    }

    fn compare(
        &self,
        previous: Option<(Instant, &[Option<String>])>,
        at: Instant,
        now: &[Option<String>],
    ) -> LiveView {
        let interval = previous.map_or(0.0, |(then, _)| at.duration_since(then).as_secs_f64());
        let mut view = LiveView {
            interval_secs: interval,
            services: Vec::new(),
            fanout: None,
            timeline: None,
            outbox: None,
            graph: None,
        };
        for (index, target) in self.targets.iter().enumerate() {
            let old = previous.and_then(|(_, old)| old.get(index)?.as_deref());
            let delta = Delta {
                old,
                new: now[index].as_deref(),
                secs: interval,
            };
            view.services.push(delta.service(&target.name));
            match target.name.as_str() {
                "fanout" => view.fanout = Some(delta.fanout()),
                "timeline" => view.timeline = Some(delta.timeline()),
                "tweet" => view.outbox = Some(delta.outbox()),
                "graph" => view.graph = Some(delta.graph()),
                _ => {}
            }
        }
        view
    }
}

/// Two expositions of one target, `secs` apart.
struct Delta<'a> {
    old: Option<&'a str>,
    new: Option<&'a str>,
    secs: f64,
}

impl Delta<'_> {
    /// How much `name{labels}` grew; `None` without two readings. A counter
    /// that went down belongs to a restarted process: its new value is the growth.
    fn growth(&self, name: &str, labels: &[&str]) -> Option<f64> {
        let (old, new) = (self.old?, self.new?);
        let (old, new) = (total(old, name, labels), total(new, name, labels));
        Some(if new >= old { new - old } else { new })
    }

    fn rate(&self, name: &str, labels: &[&str]) -> Option<f64> {
        (self.secs > 0.0)
            .then(|| self.growth(name, labels))
            .flatten()
            .map(|grown| grown / self.secs)
    }

    /// `part` over `whole`, or `None` when nothing happened.
    fn ratio(part: Option<f64>, whole: Option<f64>) -> Option<f64> {
        let (part, whole) = (part?, whole?);
        (whole > 0.0).then(|| part / whole)
    }

    fn service(&self, name: &str) -> ServiceLive {
        let (requests_per_sec, errors, count, duration) = match name {
            "fanout" => (
                self.rate(FANOUT_EVENTS, &[]),
                self.growth(FANOUT_EVENTS, &["outcome=\"retried\""]),
                self.growth(FANOUT_EVENTS, &[]),
                None,
            ),
            "gateway" => (
                self.rate(HTTP_REQUESTS, &[]),
                self.growth(HTTP_REQUESTS, &["status=\"5"]),
                self.growth(HTTP_REQUESTS, &[]),
                Some((HTTP_REQUEST_DURATION, String::new())),
            ),
            _ => {
                // Only the calls this service served, so that one process
                // running several services (the tests) still reads right.
                let scope = grpc_service(name)
                    .map_or(String::new(), |service| format!("service=\"{service}\""));
                let scoped = |label: &str| -> Vec<String> {
                    [label.to_owned(), scope.clone()]
                        .into_iter()
                        .filter(|l| !l.is_empty())
                        .collect()
                };
                let errors = (0..=16)
                    .map(tonic::Code::from)
                    .filter(|&code| is_server_fault(code))
                    .map(|code| {
                        self.growth(GRPC_REQUESTS, &with(&scoped(&format!("code=\"{code:?}\""))))
                    })
                    .sum::<Option<f64>>();
                (
                    self.rate(GRPC_REQUESTS, &with(&scoped(""))),
                    errors,
                    self.growth(GRPC_REQUESTS, &with(&scoped(""))),
                    Some((GRPC_REQUEST_DURATION, scope.clone())),
                )
            }
        };
        ServiceLive {
            name: name.to_owned(),
            up: self.new.is_some(),
            requests_per_sec,
            error_ratio: Self::ratio(errors, count),
            p99_ms: duration
                .and_then(|(histogram, scope)| self.quantile(histogram, &scope, 0.99))
                .map(|secs| secs * 1000.0),
        }
    }

    fn fanout(&self) -> FanoutLive {
        FanoutLive {
            consumer_lag: self.new.map_or(0.0, |new| total(new, FANOUT_LAG, &[])),
            events_per_sec: self.rate(FANOUT_EVENTS, &["outcome=\"applied\""]),
            timeline_writes_per_sec: self.rate(FANOUT_WRITES, &[]),
            celebrity_skips_per_sec: self.rate(FANOUT_SKIPS, &[]),
            retries_per_sec: self.rate(FANOUT_EVENTS, &["outcome=\"retried\""]),
            dead_lettered: self.new.map_or(0.0, |new| {
                total(new, FANOUT_EVENTS, &["outcome=\"dead_lettered\""])
            }),
            delay_p50_ms: self
                .quantile(FANOUT_DELAY, "", 0.5)
                .map(|secs| secs * 1000.0),
            delay_p99_ms: self
                .quantile(FANOUT_DELAY, "", 0.99)
                .map(|secs| secs * 1000.0),
        }
    }

    fn outbox(&self) -> OutboxLive {
        OutboxLive {
            pending_events: self.new.map_or(0.0, |new| total(new, OUTBOX_PENDING, &[])),
            oldest_pending_secs: self.new.map_or(0.0, |new| largest(new, OUTBOX_OLDEST, &[])),
            read_failures_per_sec: self.rate(OUTBOX_READ_FAILURES, &[]),
        }
    }

    fn timeline(&self) -> TimelineLive {
        let hit_ratio = |name| {
            Self::ratio(
                self.growth(name, &["result=\"hit\""]),
                self.growth(name, &[]),
            )
        };
        let tweet = ["work=\"tweet\""];
        TimelineLive {
            tweet_cache_hit_ratio: hit_ratio(TWEET_CACHE),
            pulled_ids_cache_hit_ratio: hit_ratio(PULLED_IDS_CACHE),
            rebuilds_per_sec: self.rate(REBUILDS, &[]),
            tweet_coalesced_waits_per_sec: self.rate(COALESCED_WAITS, &tweet),
            tweet_coalesced_waits: self
                .new
                .map_or(0.0, |new| total(new, COALESCED_WAITS, &tweet)),
        }
    }

    fn graph(&self) -> GraphLive {
        GraphLive {
            replicas: self.new.map_or_else(Vec::new, replicas),
        }
    }

    /// The `q` quantile of histogram `name` over the interval, summed over
    /// its series, interpolated within a bucket as Prometheus'
    /// `histogram_quantile` does.
    /// Only series whose labels contain `scope` count (all when it is empty).
    fn quantile(&self, name: &str, scope: &str, q: f64) -> Option<f64> {
        let (old, new) = (
            buckets(self.old?, name, scope),
            buckets(self.new?, name, scope),
        );
        let grown: Vec<(f64, f64)> = new
            .iter()
            .map(|&(bound, count)| {
                let before = old
                    .iter()
                    .find(|&&(b, _)| b == bound)
                    .map_or(0.0, |&(_, c)| c);
                (
                    bound,
                    if count >= before {
                        count - before
                    } else {
                        count
                    },
                )
            })
            .collect();
        let observed = grown.last()?.1;
        if observed <= 0.0 {
            return None;
        }
        let rank = q * observed;
        let mut lower = (0.0, 0.0);
        for &(bound, count) in &grown {
            if count >= rank {
                if bound.is_infinite() {
                    return Some(lower.0);
                }
                let share = (rank - lower.1) / (count - lower.1).max(f64::MIN_POSITIVE);
                return Some(lower.0 + (bound - lower.0) * share);
            }
            lower = (bound, count);
        }
        None
    }
}

/// Each series of the replica-lag gauge: its `replica` label and its value,
/// `None` for NaN (the graph service could not measure it).
fn replicas(exposition: &str) -> Vec<ReplicaLive> {
    let prefix = format!("{REPLICA_LAG}{{");
    exposition
        .lines()
        .filter_map(|line| {
            let (labels, value) = line.strip_prefix(&prefix)?.rsplit_once(' ')?;
            let replica = labels.split("replica=\"").nth(1)?.split('"').next()?;
            let lag = value.parse::<f64>().ok().filter(|lag| !lag.is_nan());
            Some(ReplicaLive {
                replica: replica.to_owned(),
                lag_secs: lag,
            })
        })
        .collect()
}

fn with(labels: &[String]) -> Vec<&str> {
    labels.iter().map(String::as_str).collect()
}

/// The gRPC service a target named `name` serves, as its metrics label it.
fn grpc_service(name: &str) -> Option<&'static str> {
    match name {
        "tweet" => Some(tweet_service_server::SERVICE_NAME),
        "graph" => Some(graph_service_server::SERVICE_NAME),
        "timeline" => Some(timeline_service_server::SERVICE_NAME),
        _ => None,
    }
}

/// The cumulative buckets of histogram `name` as (upper bound, count),
/// summed over its series that carry the label `scope`, ascending by bound.
fn buckets(exposition: &str, name: &str, scope: &str) -> Vec<(f64, f64)> {
    let prefix = format!("{name}_bucket{{");
    let mut sums: Vec<(f64, f64)> = Vec::new();
    for line in exposition.lines() {
        let Some(rest) = line.strip_prefix(&prefix) else {
            continue;
        };
        let Some((labels, value)) = rest.rsplit_once(' ') else {
            continue;
        };
        if !labels.contains(scope) {
            continue;
        }
        let bound = labels
            .split("le=\"")
            .nth(1)
            .and_then(|le| le.split('"').next())
            .and_then(|le| match le {
                "+Inf" => Some(f64::INFINITY),
                le => le.parse().ok(),
            });
        let (Some(bound), Ok(value)) = (bound, value.parse::<f64>()) else {
            continue;
        };
        match sums.iter_mut().find(|(b, _)| *b == bound) {
            Some((_, sum)) => *sum += value,
            None => sums.push((bound, value)),
        }
    }
    sums.sort_by(|a, b| a.0.total_cmp(&b.0));
    sums
}

#[cfg(test)]
mod tests {
    use super::*;

    const BEFORE: &str = "\
chirp_grpc_requests_total{service=\"chirp.tweet.v1.TweetService\",method=\"m\",code=\"Ok\"} 100
chirp_grpc_requests_total{service=\"chirp.tweet.v1.TweetService\",method=\"m\",code=\"Internal\"} 0
chirp_grpc_request_duration_seconds_bucket{service=\"chirp.tweet.v1.TweetService\",method=\"m\",le=\"0.001\"} 50
chirp_grpc_request_duration_seconds_bucket{service=\"chirp.tweet.v1.TweetService\",method=\"m\",le=\"0.01\"} 100
chirp_grpc_request_duration_seconds_bucket{service=\"chirp.tweet.v1.TweetService\",method=\"m\",le=\"+Inf\"} 100
";
    const AFTER: &str = "\
chirp_grpc_requests_total{service=\"chirp.tweet.v1.TweetService\",method=\"m\",code=\"Ok\"} 290
chirp_grpc_requests_total{service=\"chirp.tweet.v1.TweetService\",method=\"m\",code=\"Internal\"} 10
chirp_grpc_request_duration_seconds_bucket{service=\"chirp.tweet.v1.TweetService\",method=\"m\",le=\"0.001\"} 50
chirp_grpc_request_duration_seconds_bucket{service=\"chirp.tweet.v1.TweetService\",method=\"m\",le=\"0.01\"} 250
chirp_grpc_request_duration_seconds_bucket{service=\"chirp.tweet.v1.TweetService\",method=\"m\",le=\"+Inf\"} 300
";

    #[test]
    fn rates_errors_and_p99_come_from_the_difference_of_two_scrapes() {
        let delta = Delta {
            old: Some(BEFORE),
            new: Some(AFTER),
            secs: 2.0,
        };
        let service = delta.service("tweet");
        assert_eq!(service.requests_per_sec, Some(100.0));
        assert_eq!(service.error_ratio, Some(0.05));
        // 200 new observations: 150 in (1 ms, 10 ms], 50 above 10 ms, so
        // the 198th lies in the +Inf bucket, reported as its lower bound.
        assert_eq!(service.p99_ms, Some(10.0));
        let median = delta.quantile(GRPC_REQUEST_DURATION, "", 0.5).unwrap();
        assert!((median - (0.001 + 0.009 * (100.0 / 150.0))).abs() < 1e-12);
    }

    #[test]
    fn the_outbox_shows_its_depth_and_its_worst_shard_s_age() {
        let exposition = "\
chirp_outbox_pending_events{shard=\"0\"} 3
chirp_outbox_pending_events{shard=\"1\"} 4
chirp_outbox_oldest_pending_seconds{shard=\"0\"} 0.5
chirp_outbox_oldest_pending_seconds{shard=\"1\"} 12
";
        let delta = Delta {
            old: None,
            new: Some(exposition),
            secs: 0.0,
        };
        let outbox = delta.outbox();
        assert_eq!(outbox.pending_events, 7.0);
        assert_eq!(outbox.oldest_pending_secs, 12.0);
        assert_eq!(outbox.read_failures_per_sec, None);
    }

    #[test]
    fn one_reading_or_a_dead_target_gives_no_rates() {
        let first = Delta {
            old: None,
            new: Some(AFTER),
            secs: 0.0,
        };
        let service = first.service("tweet");
        assert!(service.up);
        assert_eq!(service.requests_per_sec, None);
        assert_eq!(service.p99_ms, None);
        let dead = Delta {
            old: Some(BEFORE),
            new: None,
            secs: 1.0,
        };
        assert!(!dead.service("tweet").up);
    }

    #[test]
    fn each_replica_shows_its_lag_and_a_failed_measurement_none() {
        let exposition = "\
# TYPE chirp_graph_replica_lag_seconds gauge
chirp_graph_replica_lag_seconds{replica=\"10.0.0.7:5433\"} 0.25
chirp_graph_replica_lag_seconds{replica=\"10.0.0.8:5433\"} NaN
";
        let delta = Delta {
            old: None,
            new: Some(exposition),
            secs: 0.0,
        };
        let replicas = delta.graph().replicas;
        assert_eq!(replicas.len(), 2);
        assert_eq!(
            (replicas[0].replica.as_str(), replicas[0].lag_secs),
            ("10.0.0.7:5433", Some(0.25))
        );
        assert_eq!(replicas[1].lag_secs, None);
        let without = Delta {
            old: None,
            new: Some(AFTER),
            secs: 0.0,
        };
        assert!(without.graph().replicas.is_empty(), "no replica, no entry");
    }

    #[test]
    fn coalesced_waits_count_the_tweets_only() {
        let before = "chirp_timeline_coalesced_waits_total{work=\"tweet\"} 10\n\
                      chirp_timeline_coalesced_waits_total{work=\"rebuild\"} 5\n";
        let after = "chirp_timeline_coalesced_waits_total{work=\"tweet\"} 14\n\
                     chirp_timeline_coalesced_waits_total{work=\"rebuild\"} 9\n";
        let delta = Delta {
            old: Some(before),
            new: Some(after),
            secs: 2.0,
        };
        let timeline = delta.timeline();
        assert_eq!(timeline.tweet_coalesced_waits_per_sec, Some(2.0));
        assert_eq!(timeline.tweet_coalesced_waits, 14.0);
    }

    #[test]
    fn targets_are_name_equals_address() {
        let target = Target::parse("tweet=127.0.0.1:9101").unwrap();
        assert_eq!(target.url, "http://127.0.0.1:9101/metrics");
        assert!(Target::parse("127.0.0.1:9101").is_err());
        assert!(Target::parse("tweet=").is_err());
    }
}
