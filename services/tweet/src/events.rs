//! Tweet events to Kafka: how the rest of chirp learns that a tweet was
//! created or deleted, without the tweet service knowing who listens.
//!
//! Requests never publish: they write each event to the outbox ([`crate::outbox`])
//! in the same batch as the tweet, and the [`crate::relay`] hands it to this
//! producer later. Every event goes to the partition of its author's outbox
//! shard ([`partition`]), so all of one author's events land in one
//! partition, in the order the relay sends them: a consumer never sees a
//! delete before the create it cancels. It is keyed by its author id all the
//! same, for consumers. The producer
//! is idempotent with `acks=all`, so librdkafka's own retries neither
//! duplicate nor reorder. Each event's headers carry the trace context of the
//! request that caused it, saved in the outbox row, so the fan-out work it
//! triggers shows up in that request's trace.
//!
//! # Partitions follow the outbox's shards
//!
//! Kafka's own partitioner hashes the key, which spreads every outbox shard
//! over every partition: one partition that cannot be written (its leader
//! gone, its replicas short of `min.insync.replicas`) then holds back every
//! shard at its first event for it, since a shard sends in order. Chosen by
//! shard instead, a partition holds the events of one shard when the topic
//! has at least [`SHARDS`] partitions (shard `s` owns `s`, `s + SHARDS`, …),
//! and of the shards `s ≡ p (mod partitions)` when it has fewer: an
//! unwritable partition stops only those shards. The price: partitions
//! carry equal shares only when their count is a multiple or a divisor of
//! [`SHARDS`] (with 12, four carry twice what the others do), and the count
//! is the topic's, read from the broker, so adding partitions moves authors
//! between them, as with Kafka's partitioner.

use std::time::Duration;

use anyhow::Context;
use chirp_domain::ids::timestamp_ms;
use chirp_kafka::KafkaArgs;
use chirp_kafka::trace_headers;
use chirp_proto::events::{TweetCreated, TweetDeleted, TweetEvent, tweet_event};
use chirp_runtime::trace_context;
use prost::Message;
use rdkafka::error::KafkaError;
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer as _};

use crate::outbox::{PendingEvent, SHARDS, shard};

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

    /// How many partitions the topic has, as the broker says. The call
    /// blocks librdkafka's caller, so it runs on a blocking thread.
    pub async fn partition_count(&self) -> Result<i32, KafkaError> {
        let (producer, topic) = (self.producer.clone(), self.topic.clone());
        let count = tokio::task::spawn_blocking(move || {
            let metadata = producer
                .client()
                .fetch_metadata(Some(&topic), DELIVERY_TIMEOUT)?;
            let partitions = metadata
                .topics()
                .iter()
                .find(|found| found.name() == topic && found.error().is_none())
                .map_or(0, |found| found.partitions().len());
            Ok::<_, KafkaError>(i32::try_from(partitions).unwrap_or(i32::MAX))
        })
        .await
        .map_err(|_| KafkaError::Canceled)??;
        if count == 0 {
            return Err(KafkaError::MetadataFetch(
                rdkafka::types::RDKafkaErrorCode::UnknownTopicOrPartition,
            ));
        }
        Ok(count)
    }

    /// Queues `event` for the broker without waiting, to its [`partition`]
    /// in a topic of `partitions`: queuing is synchronous, so events queued
    /// one after the other reach the partition in that order. The returned
    /// future resolves once the broker acknowledged it.
    pub fn send(
        &self,
        event: &PendingEvent,
        partitions: i32,
    ) -> Result<DeliveryFuture, KafkaError> {
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
            .partition(partition(event.author_id, partitions))
            .key(&key)
            .payload(&payload)
            .headers(trace_headers::kafka_headers(&cx));
        self.producer
            .send_result(record)
            .map_err(|(error, _unsent)| error)
    }
}

/// The partition of `author_id`'s events in a topic of `partitions`: the
/// author's outbox shard modulo `partitions` when there are no more than
/// [`SHARDS`], else one of the partitions `shard + k × SHARDS`, picked by the
/// author's id so that a shard's authors spread over them.
pub fn partition(author_id: i64, partitions: i32) -> i32 {
    let shard = shard(author_id);
    if partitions <= SHARDS {
        return shard % partitions.max(1);
    }
    let owned = i64::from((partitions - 1 - shard) / SHARDS + 1);
    let k = author_id.div_euclid(i64::from(SHARDS)).rem_euclid(owned);
    shard + SHARDS * i32::try_from(k).expect("below the partition count")
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    /// The partitions whose events come from more than one shard, for
    /// authors `1..=10_000` in a topic of `partitions`.
    fn shared(partitions: i32) -> Vec<i32> {
        let mut shards: Vec<BTreeSet<i32>> = vec![BTreeSet::new(); partitions as usize];
        for author_id in 1..=10_000 {
            let partition = partition(author_id, partitions);
            assert!((0..partitions).contains(&partition), "{partition}");
            shards[partition as usize].insert(shard(author_id));
        }
        (0..partitions)
            .filter(|&p| shards[p as usize].len() > 1)
            .collect()
    }

    #[test]
    fn a_partition_holds_one_shard_when_there_are_enough() {
        for partitions in [8, 12, 16, 24, 100] {
            assert!(shared(partitions).is_empty(), "{partitions}");
        }
    }

    #[test]
    fn fewer_partitions_than_shards_take_whole_shards() {
        assert_eq!(partition(13, 1), 0);
        // Shard 5 in a topic of 3 partitions: 5 mod 3.
        assert_eq!(partition(13, 3), 2);
        assert_eq!(shared(4).len(), 4, "each of 4 partitions takes two shards");
    }

    #[test]
    fn a_shard_spreads_over_all_its_partitions() {
        // Shard 3 owns 3 and 11 of 12.
        let used: BTreeSet<i32> = (0..100).map(|n| partition(3 + 8 * n, 12)).collect();
        assert_eq!(used, [3, 11].into());
    }
}
