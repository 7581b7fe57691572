//! Kafka settings shared by the producer (tweet service) and the consumer
//! (fan-out worker), and the topic both of them need.
//!
//! The writer of a topic creates it ([`KafkaArgs::ensure_topic`]): the tweet
//! service's outbox relay for tweet events (why, in its module doc), the
//! fan-out worker for its dead letters. A reader only waits for it
//! ([`KafkaArgs::wait_for_topic`]). Partitions are the unit of parallelism
//! for fan-out; the tweet service sends all of an author's events to one
//! (the partition of the author's outbox shard), which keeps them in order.
//!
//! The topic is created as the article keeps its queue: events retained for
//! seven days (a fan-out worker can be down, or a bug replayed, for that
//! long), and on a multi-broker cluster `KAFKA_REPLICATION_FACTOR` copies of
//! each partition of which `KAFKA_MIN_INSYNC_REPLICAS` must have an event
//! before the producer's `acks=all` counts it written (3 and 2: one broker
//! may die without losing or refusing a write). These apply when chirp
//! creates the topic; an existing topic keeps its own settings
//! (`kafka-configs.sh --alter` changes them). [`trace_headers`] carries a
//! request's trace from the producer to the consumer, in message headers.
//!
//! A crate of its own because `rdkafka` builds librdkafka from C source and
//! links it into every binary that depends on it: only the tweet service,
//! the fan-out worker and the load tool talk to Kafka, so only they do.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::types::RDKafkaErrorCode;
use tokio::time::Instant;

/// How often a reader waiting for the topic asks the brokers again, and how
/// often it says that it is still waiting.
const TOPIC_POLL: Duration = Duration::from_secs(1);
const TOPIC_REPORT: Duration = Duration::from_secs(10);

pub mod trace_headers;

#[derive(Debug, Clone, Args)]
pub struct KafkaArgs {
    /// Kafka bootstrap servers, comma-separated.
    #[arg(long, env = "KAFKA_BROKERS", default_value = "127.0.0.1:9092")]
    pub kafka_brokers: String,
    /// Topic carrying `chirp.events.v1.TweetEvent` messages, keyed by author id.
    #[arg(long, env = "KAFKA_TOPIC", default_value = "tweet-events")]
    pub kafka_topic: String,
    /// Partitions of the topic when chirp has to create it: the most fan-out
    /// workers that can share the work. The tweet service sends each event to
    /// a partition of its author's outbox shard (8 of them), so a multiple or
    /// a divisor of 8 loads every partition alike.
    #[arg(long, env = "KAFKA_TOPIC_PARTITIONS", default_value_t = 8)]
    pub kafka_topic_partitions: i32,
    /// Replication factor of the topic when chirp has to create it.
    #[arg(long, env = "KAFKA_REPLICATION_FACTOR", default_value_t = 1)]
    pub kafka_replication_factor: i32,
    /// Replicas that must have an event before it counts as written
    /// (`min.insync.replicas` of the topic chirp creates).
    #[arg(long, env = "KAFKA_MIN_INSYNC_REPLICAS", default_value_t = 1)]
    pub kafka_min_insync_replicas: i32,
    /// How long the topic chirp creates keeps events, in hours.
    #[arg(long, env = "KAFKA_RETENTION_HOURS", default_value_t = 7 * 24)]
    pub kafka_retention_hours: u64,
}

impl KafkaArgs {
    /// Client settings every chirp Kafka client starts from.
    pub fn client_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &self.kafka_brokers);
        config
    }

    /// Waits until the topic exists, for a reader that does not create it
    /// (the fan-out worker): services start in any order, so a topic not
    /// created yet is a normal state, said every [`TOPIC_REPORT`] as a
    /// warning that names who creates it, not an error. Fails only when no
    /// Kafka client can be made.
    pub async fn wait_for_topic(&self) -> anyhow::Result<()> {
        let client: Arc<BaseConsumer> = Arc::new(
            self.client_config()
                .create()
                .context("create Kafka metadata client")?,
        );
        let started = Instant::now();
        let mut report_at = started + TOPIC_REPORT;
        loop {
            let (client_back, topic) = (client.clone(), self.kafka_topic.clone());
            // librdkafka's metadata call blocks its thread.
            let exists = tokio::task::spawn_blocking(move || {
                let metadata = client_back.fetch_metadata(Some(&topic), TOPIC_POLL)?;
                anyhow::Ok(metadata.topics().iter().any(|found| {
                    found.name() == topic
                        && found.error().is_none()
                        && !found.partitions().is_empty()
                }))
            })
            .await
            .context("ask Kafka for the topic")?;
            match exists {
                Ok(true) => return Ok(()),
                Ok(false) if Instant::now() >= report_at => {
                    tracing::warn!(
                        topic = %self.kafka_topic,
                        brokers = %self.kafka_brokers,
                        waited_s = started.elapsed().as_secs(),
                        "the topic does not exist yet: the tweet service's outbox relay creates it once it reaches Kafka; waiting"
                    );
                    report_at = Instant::now() + TOPIC_REPORT;
                }
                Err(error) if Instant::now() >= report_at => {
                    tracing::warn!(topic = %self.kafka_topic, brokers = %self.kafka_brokers, error = %format!("{error:#}"), "cannot ask Kafka for the topic yet; waiting");
                    report_at = Instant::now() + TOPIC_REPORT;
                }
                Ok(false) | Err(_) => {}
            }
            tokio::time::sleep(TOPIC_POLL).await;
        }
    }

    /// Creates the topic unless it exists already: for the topic's writer.
    pub async fn ensure_topic(&self) -> anyhow::Result<()> {
        let admin: AdminClient<DefaultClientContext> = self
            .client_config()
            .create()
            .context("create Kafka admin client")?;
        let retention_ms = (self.kafka_retention_hours * 3_600_000).to_string();
        let min_insync = self.kafka_min_insync_replicas.to_string();
        let topic = NewTopic::new(
            &self.kafka_topic,
            self.kafka_topic_partitions,
            TopicReplication::Fixed(self.kafka_replication_factor),
        )
        .set("retention.ms", &retention_ms)
        .set("min.insync.replicas", &min_insync);
        let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
        let results = admin
            .create_topics([&topic], &options)
            .await
            .with_context(|| {
                format!(
                    "create topic {} at {}",
                    self.kafka_topic, self.kafka_brokers
                )
            })?;
        for result in results {
            match result {
                Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((topic, code)) => anyhow::bail!("create topic {topic}: {code}"),
            }
        }
        Ok(())
    }
}
