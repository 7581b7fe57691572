//! chirp's internal services — graph, tweet, timeline and the fan-out
//! worker — started in the test's own process, wired to each other and to
//! the real backends.
//!
//! Each call gets a deployment of its own: a fresh Postgres database, a CQL
//! keyspace, a Kafka topic and consumer group, and a Redis key prefix, all
//! named after one unique run id, so tests run in parallel without seeing
//! each other's data. The gateway is left to the caller: the end-to-end
//! tests serve it in process, the SIGTERM test runs the real binary in front
//! of these services.

use chirp_proto::graph::graph_service_server;
use chirp_proto::timeline::timeline_service_server;
use chirp_proto::tweet::tweet_service_server;
use chirp_testing::{
    self as testing, CQL, KAFKA, local_listener, spawn_service, unique_name, wait_until_serving,
};
use clap::Parser;

/// Flags for the services, on top of the ones that wire them up (e.g. a
/// lower celebrity threshold, or a strategy).
#[derive(Debug, Default, Clone, Copy)]
pub struct ServiceArgs<'a> {
    pub graph: &'a [&'a str],
    pub timeline: &'a [&'a str],
    pub fanout: &'a [&'a str],
}

/// Where the running services are, and the names their data lives under.
#[derive(Debug, Clone)]
pub struct Backends {
    pub graph_addr: String,
    pub tweet_addr: String,
    pub timeline_addr: String,
    /// Prefix of every Redis key of this deployment.
    pub redis_prefix: String,
    /// The Kafka topic the tweet service publishes to.
    pub kafka_topic: String,
}

impl Backends {
    /// Starts the four services, named after `prefix`, and returns once each
    /// answers a real call. Panics if one stops, as a failed test should.
    pub async fn spawn(prefix: &str, extra: ServiceArgs<'_>) -> Self {
        testing::ensure_backends();
        let database_url = testing::fresh_database().await;
        let run_id = unique_name(prefix);
        let kafka_topic = format!("tweets_{run_id}");
        let redis_prefix = format!("{run_id}:");
        let (graph_listener, graph_addr) = local_listener().await;
        let (tweet_listener, tweet_addr) = local_listener().await;
        let (timeline_listener, timeline_addr) = local_listener().await;
        let never = std::future::pending::<()>;
        let mut redis = testing::redis_flags();
        redis.extend(["--redis-key-prefix", &redis_prefix]);
        let kafka = ["--kafka-brokers", KAFKA, "--kafka-topic", &kafka_topic];

        let args = ["graph", "--database-url", &database_url];
        let graph = graph::Config::parse_from(chain(&args, &[&redis, extra.graph]));
        spawn_service("graph", graph::run(graph, graph_listener, never()));

        let args = ["tweet", "--cql-nodes", CQL, "--cql-keyspace", &run_id];
        let tweet = tweet::Config::parse_from(chain(&args, &[&kafka]));
        spawn_service("tweet", tweet::run(tweet, tweet_listener, never()));

        let args = [
            "timeline",
            "--tweet-addr",
            &tweet_addr,
            "--graph-addr",
            &graph_addr,
        ];
        let timeline = timeline::Config::parse_from(chain(&args, &[&redis, extra.timeline]));
        spawn_service(
            "timeline",
            timeline::run(timeline, timeline_listener, never()),
        );

        let args = [
            "fanout",
            "--graph-addr",
            &graph_addr,
            "--kafka-group-id",
            &run_id,
        ];
        let fanout = fanout::Config::parse_from(chain(&args, &[&kafka, &redis, extra.fanout]));
        spawn_service("fanout", fanout::run(fanout, never()));

        wait_until_serving(&graph_addr, &tweet_addr, &timeline_addr).await;
        Self {
            graph_addr,
            tweet_addr,
            timeline_addr,
            redis_prefix,
            kafka_topic,
        }
    }

    /// Each gRPC service by its full name (`chirp.tweet.v1.TweetService`)
    /// with its address, for tests that call them as operators' tools do.
    pub fn grpc_services(&self) -> Vec<(&'static str, String)> {
        vec![
            (graph_service_server::SERVICE_NAME, self.graph_addr.clone()),
            (tweet_service_server::SERVICE_NAME, self.tweet_addr.clone()),
            (
                timeline_service_server::SERVICE_NAME,
                self.timeline_addr.clone(),
            ),
        ]
    }
}

/// One command line from its leading arguments and groups of flags.
fn chain<'a>(first: &[&'a str], rest: &[&[&'a str]]) -> Vec<&'a str> {
    let mut args = first.to_vec();
    for group in rest {
        args.extend_from_slice(group);
    }
    args
}
