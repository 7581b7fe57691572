//! One deployment of chirp, run inside the load tool's own process, that can
//! be stopped and started again with another timeline strategy.
//!
//! The services run through the same `run(config, listener, shutdown)` their
//! binaries call, so the code under test is the production code, but their
//! lifetime is the experiment's: `stop` resolves each one's shutdown future
//! and waits for it to return, so no worker of the previous strategy is
//! still writing when the next one starts. Real processes would add the
//! isolation of separate address spaces and nothing the comparison needs;
//! they would also tie the experiment to a release build and to free ports.
//!
//! The fan-out worker gets a thread and a single-threaded runtime of its
//! own, with a Prometheus recorder set as that thread's local recorder
//! (`metrics::set_default_local_recorder`). Its counters are therefore its
//! own, exactly what its `/metrics` would show, even when other services in
//! the process (a test's, say) count the same metric names.

use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use chirp_timelines::Strategy;
use clap::Parser;
use futures::TryStreamExt;
use metrics_exporter_prometheus::PrometheusHandle;
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::client::DefaultClientContext;
use redis::AsyncCommands;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::prometheus::Scrape;

/// Where the experiment's data lives; every strategy uses the same.
#[derive(Debug, Clone, clap::Args)]
pub struct Backends {
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
}

impl Deployment {
    /// Deletes what the deployment leaves behind once stopped: its Redis keys
    /// (timelines and rate-limit buckets) and its Kafka topic.
    pub async fn discard(&self, backends: &Backends) -> anyhow::Result<()> {
        let client = redis::Client::open(backends.redis_url.as_str())?;
        let mut redis = client.get_multiplexed_async_connection().await?;
        let pattern = format!("{}*", self.redis_prefix);
        let keys: Vec<String> = redis.scan_match(&pattern).await?.try_collect().await?;
        for batch in keys.chunks(1_000) {
            redis::cmd("DEL").arg(batch).exec_async(&mut redis).await?;
        }
        let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
            .set("bootstrap.servers", &backends.kafka_brokers)
            .create()?;
        let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
        for result in admin.delete_topics(&[&self.kafka_topic], &options).await? {
            result.map_err(|(topic, code)| anyhow!("delete topic {topic}: {code}"))?;
        }
        Ok(())
    }
}

/// Signs the users' tokens: fixed, so that tokens issued while seeding stay
/// valid in every later deployment.
pub(super) const TOKEN_SECRET: &str = "loadtest-experiment-token-secret-0123456789";
/// How long the services get to answer once started.
const STARTUP: Duration = Duration::from_secs(60);

/// A running deployment.
pub struct Stack {
    pub gateway_url: String,
    pub graph_addr: String,
    pub tweet_addr: String,
    /// The fan-out worker's metrics, as its `/metrics` would serve them.
    fanout_metrics: PrometheusHandle,
    shutdown: watch::Sender<bool>,
    services: JoinSet<(&'static str, anyhow::Result<()>)>,
    fanout: std::thread::JoinHandle<anyhow::Result<()>>,
}

impl Stack {
    /// Starts the five services as `deployment` says and returns once the
    /// gateway answers.
    pub async fn start(backends: &Backends, deployment: &Deployment) -> anyhow::Result<Self> {
        let (shutdown, stopped) = watch::channel(false);
        let (graph_listener, graph_addr) = listener().await?;
        let (tweet_listener, tweet_addr) = listener().await?;
        let (timeline_listener, timeline_addr) = listener().await?;
        let (gateway_listener, gateway_addr) = listener().await?;
        let threshold = deployment.celebrity_threshold.to_string();
        let strategy = strategy_name(deployment.strategy);
        let redis = [
            "--redis-url",
            &backends.redis_url,
            "--redis-key-prefix",
            &deployment.redis_prefix,
        ];
        let store = [&redis[..], &["--timeline-strategy", strategy]].concat();
        let kafka = [
            "--kafka-brokers",
            &backends.kafka_brokers,
            "--kafka-topic",
            &deployment.kafka_topic,
        ];
        let mut services = JoinSet::new();

        let graph = graph::Config::try_parse_from(
            [
                &["graph", "--database-url", &backends.database_url][..],
                &["--celebrity-threshold", &threshold],
                &redis,
            ]
            .concat(),
        )?;
        let until = stop_signal(&stopped);
        services.spawn(async { ("graph", graph::run(graph, graph_listener, until).await) });

        let tweet = tweet::Config::try_parse_from(
            [
                &["tweet", "--cql-nodes", &backends.cql_nodes][..],
                &["--cql-keyspace", &backends.cql_keyspace],
                &kafka,
            ]
            .concat(),
        )?;
        let until = stop_signal(&stopped);
        services.spawn(async { ("tweet", tweet::run(tweet, tweet_listener, until).await) });

        let timeline = timeline::Config::try_parse_from(
            [
                &["timeline", "--tweet-addr", &tweet_addr][..],
                &["--graph-addr", &graph_addr],
                &store,
            ]
            .concat(),
        )?;
        let until = stop_signal(&stopped);
        services.spawn(async {
            let stopped = timeline::run(timeline, timeline_listener, until).await;
            ("timeline", stopped)
        });

        let gateway = gateway::Config::try_parse_from(
            [
                &["gateway", "--tweet-addr", &tweet_addr][..],
                &[
                    "--graph-addr",
                    &graph_addr,
                    "--timeline-addr",
                    &timeline_addr,
                ],
                &["--token-secret", TOKEN_SECRET],
                // The experiment posts many tweets as one author.
                &["--rate-limit-writes-per-minute", "1000000"],
                &["--rate-limit-burst", "100000"],
                &redis,
            ]
            .concat(),
        )?;
        let until = stop_signal(&stopped);
        services.spawn(async {
            let stopped = gateway::run(gateway, gateway_listener, until).await;
            ("gateway", stopped)
        });

        let fanout = fanout::Config::try_parse_from(
            [
                &["fanout", "--graph-addr", &graph_addr][..],
                &["--kafka-group-id", &deployment.kafka_topic],
                &kafka,
                &store,
            ]
            .concat(),
        )?;
        let recorder = chirp_common::metrics::builder().build_recorder();
        let fanout_metrics = recorder.handle();
        let until = stop_signal(&stopped);
        let fanout = std::thread::Builder::new()
            .name("fanout".to_owned())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?;
                let _local = metrics::set_default_local_recorder(&recorder);
                runtime.block_on(fanout::run(fanout, until))
            })
            .context("start the fan-out worker's thread")?;

        let mut stack = Self {
            gateway_url: format!("http://{gateway_addr}"),
            graph_addr,
            tweet_addr,
            fanout_metrics,
            shutdown,
            services,
            fanout,
        };
        stack.ready().await?;
        Ok(stack)
    }

    /// Waits until the gateway answers, failing at once if a service stops.
    async fn ready(&mut self) -> anyhow::Result<()> {
        let http = reqwest::Client::new();
        let healthz = format!("{}/healthz", self.gateway_url);
        let deadline = tokio::time::Instant::now() + STARTUP;
        loop {
            self.check()?;
            if let Ok(response) = http.get(&healthz).send().await
                && response.status().is_success()
            {
                return Ok(());
            }
            if tokio::time::Instant::now() > deadline {
                bail!("the gateway did not answer within {STARTUP:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// An error if any service has stopped: they only stop when told to.
    pub fn check(&mut self) -> anyhow::Result<()> {
        if let Some(stopped) = self.services.try_join_next() {
            let (service, result) = stopped?;
            return Err(result.err().unwrap_or_else(|| anyhow!("stopped")))
                .with_context(|| format!("the {service} service stopped"));
        }
        if self.fanout.is_finished() {
            bail!("the fan-out worker stopped");
        }
        Ok(())
    }

    /// The fan-out worker's counters now.
    pub fn fanout_metrics(&self) -> Scrape {
        Scrape::from_text(self.fanout_metrics.render())
    }

    /// Stops every service gracefully and waits until each has returned.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        // Receivers may be gone already if their service stopped early.
        let _ = self.shutdown.send(true);
        let mut failures = Vec::new();
        while let Some(stopped) = self.services.join_next().await {
            let (service, result) = stopped?;
            if let Err(error) = result {
                failures.push(format!("{service}: {error:#}"));
            }
        }
        let fanout = tokio::task::spawn_blocking(move || self.fanout.join()).await?;
        match fanout {
            Ok(Ok(())) => {}
            Ok(Err(error)) => failures.push(format!("fanout: {error:#}")),
            Err(_) => failures.push("fanout: panicked".to_owned()),
        }
        if failures.is_empty() {
            Ok(())
        } else {
            bail!("services failed: {}", failures.join("; "))
        }
    }
}

/// A listener on a port the OS picks, bound before its service starts.
async fn listener() -> anyhow::Result<(TcpListener, String)> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?.to_string();
    Ok((listener, addr))
}

/// Resolves once `stop` has been called (or the stack dropped).
fn stop_signal(stopped: &watch::Receiver<bool>) -> impl Future<Output = ()> + Send + 'static {
    let mut stopped = stopped.clone();
    async move {
        let _ = stopped.wait_for(|&stop| stop).await;
    }
}

/// The strategy as `TIMELINE_STRATEGY` spells it.
pub fn strategy_name(strategy: Strategy) -> &'static str {
    match strategy {
        Strategy::Push => "push",
        Strategy::Pull => "pull",
        Strategy::Hybrid => "hybrid",
    }
}
