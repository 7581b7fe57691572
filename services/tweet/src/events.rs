//! Tweet events to Kafka: how the rest of chirp learns that a tweet was
//! created or deleted, without the tweet service knowing who listens.
//!
//! Every event is keyed by its author id, so all of one author's events land
//! in one partition, in order: a consumer never sees a delete before the
//! create it cancels. The producer is idempotent with `acks=all`, and each
//! publish waits for the broker's acknowledgement: a request succeeds only
//! once its event is durably in the log, and fails `Unavailable` otherwise, so
//! that the client's retry publishes it again. Each event's headers carry
//! the trace context of the request that caused it, so the fan-out work it
//! triggers shows up in that request's trace.

use std::time::Duration;

use anyhow::Context;
use chirp_common::ids::timestamp_ms;
use chirp_common::kafka::KafkaArgs;
use chirp_common::proto::events::{TweetCreated, TweetDeleted, TweetEvent, tweet_event};
use chirp_common::trace_context;
use prost::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};

use crate::TweetError;
use crate::store::Tweet;

/// How long librdkafka keeps trying to deliver one event before giving up.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a publish waits for room when the local send queue is full.
const QUEUE_TIMEOUT: Duration = Duration::from_secs(1);

pub struct Events {
    /// One for the whole service: concurrent requests' events share its
    /// connections and are batched into the same broker requests.
    producer: FutureProducer,
    topic: String,
}

impl Events {
    pub fn new(kafka: &KafkaArgs) -> anyhow::Result<Self> {
        let producer = kafka
            .client_config()
            // No duplicates or reordering from librdkafka's own retries.
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set(
                "message.timeout.ms",
                DELIVERY_TIMEOUT.as_millis().to_string(),
            )
            .create()
            .with_context(|| format!("create Kafka producer for {}", kafka.kafka_brokers))?;
        Ok(Self {
            producer,
            topic: kafka.kafka_topic.clone(),
        })
    }

    pub async fn tweet_created(&self, tweet: &Tweet) -> Result<(), TweetError> {
        let created = TweetCreated {
            tweet_id: tweet.tweet_id,
            author_id: tweet.author_id,
            created_at_ms: timestamp_ms(tweet.tweet_id),
        };
        self.publish(tweet.author_id, tweet_event::Kind::Created(created))
            .await
    }

    pub async fn tweet_deleted(&self, tweet: &Tweet) -> Result<(), TweetError> {
        let deleted = TweetDeleted {
            tweet_id: tweet.tweet_id,
            author_id: tweet.author_id,
        };
        self.publish(tweet.author_id, tweet_event::Kind::Deleted(deleted))
            .await
    }

    #[tracing::instrument(
        name = "events.publish",
        skip(self, kind),
        fields(
            otel.kind = "producer",
            messaging.system = "kafka",
            messaging.destination.name = %self.topic,
        )
    )]
    async fn publish(&self, author_id: i64, kind: tweet_event::Kind) -> Result<(), TweetError> {
        let key = author_id.to_string();
        let payload = TweetEvent { kind: Some(kind) }.encode_to_vec();
        let record = FutureRecord::to(&self.topic)
            .key(&key)
            .payload(&payload)
            .headers(trace_context::kafka_headers(&trace_context::current()));
        self.producer
            .send(record, QUEUE_TIMEOUT)
            .await
            .map_err(|(error, _unsent)| TweetError::Publish(error))?;
        Ok(())
    }
}
