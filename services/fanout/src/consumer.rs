//! The Kafka side of the worker: receive an event, apply it until it sticks,
//! then mark it done.
//!
//! Offsets are committed automatically in the background, but librdkafka
//! only commits what we *store*, and we store a message's offset only once
//! every Redis write for it has succeeded. A crash therefore replays at most
//! the messages processed since the last commit, never skips one. Messages of
//! a partition are handled one at a time, in order, which is what makes
//! "store after processing" sound: no offset is stored past a message that
//! has not been applied yet. A message stuck in retries for longer than
//! `max.poll.interval.ms` costs the worker its partitions; their new owner
//! resumes from the last commit, which replays, and replays are harmless.

use std::future::Future;
use std::pin::{Pin, pin};
use std::time::Duration;

use anyhow::Context;
use chirp_common::kafka::KafkaArgs;
use chirp_common::proto::events::TweetEvent;
use chirp_common::proto::events::tweet_event::Kind;
use chirp_common::trace_context;
use chirp_common::{ErrorKind, ServiceError};
use metrics::counter;
use prost::Message as _;
use rdkafka::Message;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::BorrowedMessage;
use rdkafka::types::RDKafkaErrorCode;
use tracing::Instrument;

use crate::fanout::Fanout;
use crate::stats;

/// Joins `group_id` and subscribes to the events topic. New groups start from
/// the oldest retained event, so a fresh deployment misses nothing.
pub fn subscribe(kafka: &KafkaArgs, group_id: &str) -> anyhow::Result<StreamConsumer> {
    let consumer: StreamConsumer = kafka
        .client_config()
        .set("group.id", group_id)
        // Commit in the background, but only the offsets `consume` stored.
        .set("enable.auto.commit", "true")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .create()
        .context("create Kafka consumer")?;
    consumer
        .subscribe(&[&kafka.kafka_topic])
        .with_context(|| format!("subscribe to {}", kafka.kafka_topic))?;
    Ok(consumer)
}

/// Applies events until `shutdown` resolves. Shutdown takes effect between
/// messages, or while a message waits to be retried; a message that was
/// interrupted is left unstored and will be delivered again. Then the stored
/// offsets are committed and the consumer leaves its group, so its
/// partitions move to another worker at once.
pub async fn consume(
    consumer: StreamConsumer,
    fanout: &Fanout,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let mut shutdown = pin!(shutdown);
    loop {
        let received = tokio::select! {
            biased;
            () = &mut shutdown => break,
            received = consumer.recv() => received,
        };
        let message = match received {
            Ok(message) => message,
            Err(error) => {
                // librdkafka reconnects and retries by itself; this is news, not a failure.
                tracing::warn!(%error, "kafka consumer error");
                continue;
            }
        };
        let span = tracing::info_span!(
            "event",
            otel.kind = "consumer",
            partition = message.partition(),
            offset = message.offset()
        );
        // The producer's span, from the headers: the event's work joins the
        // trace of the request that published it.
        if let Some(headers) = message.headers() {
            trace_context::set_remote_parent(&span, trace_context::extract_kafka(headers));
        }
        match process(fanout, &message, shutdown.as_mut())
            .instrument(span)
            .await
        {
            Outcome::Done => {
                if let Err(error) = consumer.store_offset_from_message(&message) {
                    // The partition was revoked meanwhile: its new owner replays this message.
                    tracing::warn!(
                        %error,
                        partition = message.partition(),
                        offset = message.offset(),
                        "offset not stored"
                    );
                }
            }
            Outcome::Interrupted => break,
        }
    }
    // Committing and leaving the group block on the broker: keep them off the
    // async worker threads.
    tokio::task::spawn_blocking(move || {
        match consumer.commit_consumer_state(CommitMode::Sync) {
            Ok(()) | Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => {}
            Err(error) => {
                tracing::warn!(%error, "final commit failed; the last events will be replayed");
            }
        }
        drop(consumer);
    })
    .await
    .context("commit offsets and leave the consumer group")?;
    tracing::info!("fan-out worker stopped");
    Ok(())
}

enum Outcome {
    /// Applied, or skipped for good: the offset may be stored.
    Done,
    /// Shutdown came while waiting to retry: the offset must not be stored.
    Interrupted,
}

/// Applies one message, retrying for as long as the failure may heal.
async fn process(
    fanout: &Fanout,
    message: &BorrowedMessage<'_>,
    mut shutdown: Pin<&mut impl Future<Output = ()>>,
) -> Outcome {
    let event = match decode(message.payload().unwrap_or_default()) {
        Ok(event) => event,
        Err(reason) => {
            // A poison message must not stall its partition: log it and move on.
            tracing::warn!(reason, "skipping undecodable event");
            counter!(stats::EVENTS, "outcome" => "skipped").increment(1);
            return Outcome::Done;
        }
    };
    let mut backoff = Backoff::new();
    loop {
        let error = match fanout.apply(event).await {
            Ok(()) => {
                counter!(stats::EVENTS, "outcome" => "applied").increment(1);
                return Outcome::Done;
            }
            Err(error) => error,
        };
        if error.kind() == ErrorKind::NotFound {
            tracing::warn!(%error, "skipping event of a user that no longer exists");
            counter!(stats::EVENTS, "outcome" => "skipped").increment(1);
            return Outcome::Done;
        }
        counter!(stats::EVENTS, "outcome" => "retried").increment(1);
        let delay = backoff.next_delay();
        tracing::warn!(%error, retry_in_ms = delay.as_millis(), "fan-out failed, will retry");
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = &mut shutdown => return Outcome::Interrupted,
        }
    }
}

fn decode(payload: &[u8]) -> Result<Kind, String> {
    TweetEvent::decode(payload)
        .map_err(|error| error.to_string())?
        .kind
        .ok_or_else(|| "event has no kind".to_owned())
}

/// Capped exponential backoff between attempts at one message: quick to
/// recover from a blip, gentle on a dependency that is down for minutes.
struct Backoff {
    next: Duration,
}

impl Backoff {
    const FIRST: Duration = Duration::from_millis(100);
    const MAX: Duration = Duration::from_secs(5);

    fn new() -> Self {
        Self { next: Self::FIRST }
    }

    fn next_delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = (delay * 2).min(Self::MAX);
        delay
    }
}

#[cfg(test)]
mod tests {
    use chirp_common::proto::events::TweetDeleted;

    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        let mut backoff = Backoff::new();
        let delays: Vec<u128> = (0..9).map(|_| backoff.next_delay().as_millis()).collect();
        assert_eq!(delays, [100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000]);
    }

    #[test]
    fn only_events_with_a_kind_decode() {
        let deleted = Kind::Deleted(TweetDeleted {
            tweet_id: 2,
            author_id: 1,
        });
        let bytes = TweetEvent {
            kind: Some(deleted),
        }
        .encode_to_vec();
        assert_eq!(decode(&bytes), Ok(deleted));
        assert!(decode(&TweetEvent { kind: None }.encode_to_vec()).is_err());
        assert!(decode(b"\xff\xff\xff garbage").is_err());
    }
}
