//! Tweet events to Kafka: how the rest of chirp learns that a tweet was
//! created or deleted, without the tweet service knowing who listens.
//!
//! Requests never publish: they write each event to the outbox ([`crate::outbox`])
//! in the same batch as the tweet, and the [`crate::relay`] hands it to this
//! producer later. Every event is keyed by its author id, so all of one
//! author's events land in one partition, in the order the relay sends them:
//! a consumer never sees a delete before the create it cancels. The producer
//! is idempotent with `acks=all`, so librdkafka's own retries neither
//! duplicate nor reorder. Each event's headers carry the trace context of the
//! request that caused it, saved in the outbox row, so the fan-out work it
//! triggers shows up in that request's trace.

use std::time::Duration;

use anyhow::Context;
use chirp_domain::ids::timestamp_ms;
use chirp_kafka::KafkaArgs;
use chirp_kafka::trace_headers;
use chirp_proto::events::{TweetCreated, TweetDeleted, TweetEvent, tweet_event};
use chirp_runtime::trace_context;
use prost::Message;
use rdkafka::error::KafkaError;
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};

use crate::outbox::PendingEvent;

/// How long librdkafka keeps trying to deliver one event before giving up.
/// The relay holds its lease at least this long past any send, so a send it
/// gave up on cannot land after another instance took the shard over.
pub const DELIVERY_TIMEOUT: Duration = Duration::from_secs(5);

pub struct Events {
    /// One for the whole service: the relay's events share its connections
    /// and are batched into the same broker requests.
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

    /// Queues `event` for the broker without waiting: queuing is synchronous,
    /// so events queued one after the other reach the partition in that
    /// order. The returned future resolves once the broker acknowledged it.
    pub fn send(&self, event: &PendingEvent) -> Result<DeliveryFuture, KafkaError> {
        let key = event.author_id.to_string();
        let payload = TweetEvent {
            kind: Some(kind(event)),
        }
        .encode_to_vec();
        // A producer span under the request that wrote the event, though it
        // runs later and maybe elsewhere: the trace reads request, publish,
        // fan-out, as it did when requests published themselves.
        let span = tracing::info_span!(
            "events.publish",
            otel.kind = "producer",
            messaging.system = "kafka",
            messaging.destination.name = %self.topic,
        );
        trace_context::set_remote_parent(&span, trace_context::from_fields(&event.trace));
        let cx = span.in_scope(trace_context::current);
        let record = FutureRecord::to(&self.topic)
            .key(&key)
            .payload(&payload)
            .headers(trace_headers::kafka_headers(&cx));
        self.producer
            .send_result(record)
            .map_err(|(error, _unsent)| error)
    }
}

fn kind(event: &PendingEvent) -> tweet_event::Kind {
    if event.deleted {
        tweet_event::Kind::Deleted(TweetDeleted {
            tweet_id: event.tweet_id,
            author_id: event.author_id,
        })
    } else {
        tweet_event::Kind::Created(TweetCreated {
            tweet_id: event.tweet_id,
            author_id: event.author_id,
            created_at_ms: timestamp_ms(event.tweet_id),
        })
    }
}
