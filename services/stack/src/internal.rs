//! The four internal services — graph, tweet, timeline and the fan-out
//! worker — with no gateway in front.

use anyhow::Context;
use chirp_proto::graph::graph_service_server;
use chirp_proto::timeline::timeline_service_server;
use chirp_proto::tweet::tweet_service_server;
use chirp_redis::connection::RedisArgs;
use chirp_test_support::{local_listener, spawn_service, wait_until_serving};
use clap::Parser;
use tokio::net::TcpListener;

use crate::{ServiceArgs, Services, Stores, chain};

/// Where the running services are, and the names their data lives under.
#[derive(Debug, Clone)]
pub struct InternalServices {
    pub graph_addr: String,
    pub tweet_addr: String,
    pub timeline_addr: String,
    /// Prefix of every Redis key of this deployment.
    pub redis_prefix: String,
    /// The Kafka topic the tweet service publishes to.
    pub kafka_topic: String,
}

impl InternalServices {
    /// Starts the four services on fresh [`Stores`] named after `prefix`,
    /// for the rest of the test, and returns once each answers a real call.
    /// Panics if one stops, as a failed test should.
    pub async fn spawn(prefix: &str, extra: ServiceArgs<'_>) -> Self {
        let stores = Stores::fresh(prefix).await;
        Services::detach_started(Self::start(&stores, extra).await)
    }

    /// Starts the four services on `stores` and returns once each answers,
    /// with what stops them.
    pub async fn start(
        stores: &Stores,
        extra: ServiceArgs<'_>,
    ) -> anyhow::Result<(Self, Services)> {
        let mut services = Services::new();
        let (graph_listener, graph_addr) = local_listener().await;
        let (tweet_listener, tweet_addr) = local_listener().await;
        let (timeline_listener, timeline_addr) = local_listener().await;
        let redis = [&stores.redis_server()[..], &stores.redis_prefix()].concat();
        let kafka = stores.kafka();

        let until = services.until();
        let graph = graph(
            graph_listener,
            &stores.database_url,
            &redis,
            extra.graph,
            until,
        )?;
        services.spawn("graph", graph);

        let args = ["tweet", "--cql-nodes", &stores.cql_nodes];
        let keyspace = ["--cql-keyspace", &stores.cql_keyspace];
        let tweet = tweet::Config::try_parse_from(chain(&args, &[&keyspace, &kafka]))
            .context("tweet flags")?;
        services.spawn("tweet", tweet::run(tweet, tweet_listener, services.until()));

        let args = [
            "timeline",
            "--tweet-addr",
            &tweet_addr,
            "--graph-addr",
            &graph_addr,
        ];
        let timeline = timeline::Config::try_parse_from(chain(&args, &[&redis, extra.timeline]))
            .context("timeline flags")?;
        let until = services.until();
        services.spawn(
            "timeline",
            timeline::run(timeline, timeline_listener, until),
        );

        let args = [
            "fanout",
            "--graph-addr",
            &graph_addr,
            "--kafka-group-id",
            &stores.kafka_topic,
        ];
        let fanout = fanout::Config::try_parse_from(chain(&args, &[&kafka, &redis, extra.fanout]))
            .context("fanout flags")?;
        let worker = fanout::run(fanout, services.until());
        if extra.fanout_recorder {
            let recorder = chirp_runtime::metrics::builder().build_recorder();
            services.spawn_fanout_recording(recorder, worker)?;
        } else {
            services.spawn("fanout", worker);
        }

        let serving = wait_until_serving(&graph_addr, &tweet_addr, &timeline_addr);
        services.ready(serving).await?;
        let internal = Self {
            graph_addr,
            tweet_addr,
            timeline_addr,
            redis_prefix: stores.redis_prefix.clone(),
            kafka_topic: stores.kafka_topic.clone(),
        };
        Ok((internal, services))
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

/// Runs a graph service on `listener` for the rest of the test: on
/// `database_url`, dropping the home timelines of `redis` (under its key
/// prefix) as follows change, with `extra` flags on top. For the services'
/// own tests, which wire a graph to what they test.
pub fn spawn_graph(listener: TcpListener, database_url: &str, redis: &RedisArgs, extra: &[&str]) {
    let flags = chirp_test_support::redis_store_flags(redis);
    let until = std::future::pending();
    let graph = graph(listener, database_url, &flags, extra, until)
        .unwrap_or_else(|error| panic!("{error:#}"));
    spawn_service("graph", graph);
}

/// The graph service's `run`, configured as its binary would be by these
/// flags.
fn graph(
    listener: TcpListener,
    database_url: &str,
    redis: &[&str],
    extra: &[&str],
    until: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<impl Future<Output = anyhow::Result<()>> + Send + 'static> {
    let args = ["graph", "--database-url", database_url];
    let config =
        graph::Config::try_parse_from(chain(&args, &[redis, extra])).context("graph flags")?;
    Ok(graph::run(config, listener, until))
}
