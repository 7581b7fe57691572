//! One deployment of chirp per strategy or policy, in the experiment's own
//! process, stopped before the next one starts.
//!
//! The services are `chirp-stack`'s assembly (`chirp_stack::Stack`): the
//! production code, through the same `run(config, listener, shutdown)` its
//! binaries call. What the experiment adds is thin: where the data lives
//! (the operator's backends, kept from one strategy to the next), the flags
//! that differ per strategy, a recorder of the fan-out worker's own (its
//! counters are what a strategy costs), and a clean-up of what a deployment
//! leaves behind. Real processes would add the isolation of separate
//! address spaces and nothing the comparison needs; they would also tie the
//! experiment to a release build and to free ports.

use std::time::Duration;

use anyhow::anyhow;
use chirp_load::prometheus::Scrape;
use chirp_stack::{ServiceArgs, Services, Stack, Stores};
use chirp_timeline_store::Strategy;
use futures::TryStreamExt;
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::client::DefaultClientContext;
use rdkafka::types::RDKafkaErrorCode;
use redis::AsyncCommands;
use redis::aio::MultiplexedConnection;

/// Where the experiment's data lives; every strategy uses the same.
#[derive(Debug, Clone, clap::Args)]
pub struct StoreArgs {
    /// Postgres of the graph service. The database must exist; migrations
    /// are applied at start.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/chirp"
    )]
    pub database_url: String,
    /// The CQL store of the tweet service.
    #[arg(long, env = "CQL_NODES", default_value = "127.0.0.1:9042")]
    pub cql_nodes: String,
    /// Keyspace of the tweets, created if missing.
    #[arg(long, env = "CQL_KEYSPACE", default_value = "chirp_experiment")]
    pub cql_keyspace: String,
    #[arg(long, env = "KAFKA_BROKERS", default_value = "127.0.0.1:9092")]
    pub kafka_brokers: String,
    #[arg(long, env = "REDIS_URL", default_value = "redis://127.0.0.1:6379")]
    pub redis_url: String,
}

/// What differs from one deployment to the next.
#[derive(Debug, Clone)]
pub struct Deployment {
    pub strategy: Strategy,
    pub celebrity_threshold: u32,
    /// Prefix of every Redis key: a fresh one starts with no timelines.
    pub redis_prefix: String,
    /// Topic of the tweet events, and the fan-out worker's consumer group:
    /// a fresh one starts with no event to replay.
    pub kafka_topic: String,
    /// Flags beyond the strategy and the threshold.
    pub settings: Settings,
}

/// The services' own flags a deployment sets beyond the strategy and the
/// threshold, spelled as on their command lines: what makes a policy.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// For the timeline service and the fan-out worker alike: the timeline
    /// store's settings, which both must agree on.
    pub store: Vec<String>,
    pub timeline: Vec<String>,
    pub fanout: Vec<String>,
    pub gateway: Vec<String>,
}

impl Deployment {
    fn stores(&self, backends: &StoreArgs) -> Stores {
        Stores {
            database_url: backends.database_url.clone(),
            cql_nodes: backends.cql_nodes.clone(),
            cql_keyspace: backends.cql_keyspace.clone(),
            kafka_brokers: backends.kafka_brokers.clone(),
            kafka_topic: self.kafka_topic.clone(),
            redis_url: backends.redis_url.clone(),
            redis_cluster: false,
            redis_prefix: self.redis_prefix.clone(),
        }
    }

    /// A connection to the deployment's Redis, and the names of every key
    /// it holds there now.
    pub async fn keys(
        &self,
        backends: &StoreArgs,
    ) -> anyhow::Result<(MultiplexedConnection, Vec<String>)> {
        let client = redis::Client::open(backends.redis_url.as_str())?;
        let mut redis = client.get_multiplexed_async_connection().await?;
        let pattern = format!("{}*", self.redis_prefix);
        let keys: Vec<String> = redis.scan_match(&pattern).await?.try_collect().await?;
        Ok((redis, keys))
    }

    /// Deletes what the deployment leaves behind once stopped: its Redis keys
    /// (timelines and rate-limit buckets), its Kafka topic and the fan-out
    /// worker's dead-letter topic beside it.
    pub async fn discard(&self, backends: &StoreArgs) -> anyhow::Result<()> {
        let (mut redis, keys) = self.keys(backends).await?;
        for batch in keys.chunks(1_000) {
            redis::cmd("DEL").arg(batch).exec_async(&mut redis).await?;
        }
        let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
            .set("bootstrap.servers", &backends.kafka_brokers)
            .create()?;
        let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
        let dead_letters = fanout::dead_letter_topic(&self.kafka_topic);
        for result in admin
            .delete_topics(&[&self.kafka_topic, &dead_letters], &options)
            .await?
        {
            match result {
                // No letter was ever dead: the worker creates the topic on the first.
                Err((_, RDKafkaErrorCode::UnknownTopicOrPartition)) => {}
                result => {
                    result.map_err(|(topic, code)| anyhow!("delete topic {topic}: {code}"))?;
                }
            }
        }
        Ok(())
    }
}

/// A running deployment.
pub struct Running {
    pub gateway_url: String,
    pub graph_addr: String,
    pub tweet_addr: String,
    services: Services,
}

impl Running {
    /// Starts the five services as `deployment` says and returns once they
    /// answer.
    pub async fn start(backends: &StoreArgs, deployment: &Deployment) -> anyhow::Result<Self> {
        let threshold = deployment.celebrity_threshold.to_string();
        let settings = &deployment.settings;
        let strategy = ["--timeline-strategy", strategy_name(deployment.strategy)];
        let timeline = flags(&strategy, &settings.store, &settings.timeline);
        let fanout = flags(&strategy, &settings.store, &settings.fanout);
        // The experiment posts many tweets as one author.
        let unlimited = [
            "--rate-limit-writes-per-minute",
            "1000000",
            "--rate-limit-burst",
            "100000",
        ];
        let gateway = flags(&unlimited, &[], &settings.gateway);
        let extra = ServiceArgs {
            gateway: &gateway,
            graph: &["--celebrity-threshold", &threshold],
            timeline: &timeline,
            fanout: &fanout,
            fanout_recorder: true,
        };
        let (stack, services) = Stack::start(&deployment.stores(backends), extra).await?;
        Ok(Self {
            gateway_url: stack.gateway_url,
            graph_addr: stack.internal.graph_addr,
            tweet_addr: stack.internal.tweet_addr,
            services,
        })
    }

    /// An error if any service has stopped: they only stop when told to.
    pub fn check(&mut self) -> anyhow::Result<()> {
        self.services.check()
    }

    /// The fan-out worker's counters now.
    pub fn fanout_metrics(&self) -> Scrape {
        let text = self.services.fanout_metrics();
        Scrape::from_text(text.expect("the worker was started with a recorder of its own"))
    }

    /// Stops every service gracefully and waits until each has returned.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.services.stop().await
    }
}

/// One service's command line: the experiment's flags, the store's
/// settings, its own.
fn flags<'a>(fixed: &[&'a str], store: &'a [String], own: &'a [String]) -> Vec<&'a str> {
    let settings = store.iter().chain(own).map(String::as_str);
    fixed.iter().copied().chain(settings).collect()
}

/// The strategy as `TIMELINE_STRATEGY` spells it.
pub fn strategy_name(strategy: Strategy) -> &'static str {
    match strategy {
        Strategy::Push => "push",
        Strategy::Pull => "pull",
        Strategy::Hybrid => "hybrid",
    }
}
