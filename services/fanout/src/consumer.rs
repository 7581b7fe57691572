//! The Kafka side of the worker: receive an event, apply it until it sticks,
//! then mark it done.
//!
//! Offsets are committed automatically in the background, but librdkafka
//! only commits what we *store*, and we store a message's offset only once
//! it and every message before it on its partition have been applied
//! ([`crate::watermark`]). A crash therefore replays at most the messages
//! applied since the last commit, never skips one.
//!
//! Up to `FANOUT_CONCURRENCY` messages are applied at once, in any order,
//! whatever their partition. Applying one is a chain of round trips (the
//! author, each page of followers, each page's pipeline, the delivery
//! record), so a worker that waited for each in turn would spend its time
//! idle: measured, it fell behind a steady 100 posts/s. Order does not
//! matter to the result: every write is idempotent, and a push that races
//! its tweet's deletion checks the tombstone again after writing (see
//! `chirp_timeline_store`). A message stuck in retries holds back only the
//! stored offset of its partition; the others keep flowing until
//! [`WINDOW_PER_EVENT`] times the concurrency wait behind it, then the
//! worker stops taking messages and, after [`MAX_POLL_INTERVAL`], the group
//! moves its partitions to a worker that may fare better.
//!
//! Only an event that can never succeed, one that does not decode, goes to
//! the dead-letter topic ([`crate::dead_letter`]) instead of stalling its
//! partition. Every other failure is retried, with a capped and jittered
//! backoff, for as long as it lasts: a failure that looks permanent (a
//! database error, a reply of an unexpected shape) has more often been an
//! outage in disguise (a restarting Postgres, a reset connection) than a bad
//! event, and an event dead-lettered by mistake is a tweet missing from every
//! follower's timeline. An event whose failure needs an operator stalls its
//! partition, loudly (an error log line per attempt, the `retried` outcome
//! of the events metric), until the cause is mended; nothing is lost.
//!
//! # A worker that dies
//!
//! A worker killed without leaving its group (SIGKILL, a crashed node) keeps
//! its partitions until the broker stops hearing its heartbeats: the session
//! timeout, 45 s by default, during which nobody applies those partitions'
//! events (we measured ~46 s). [`SESSION_TIMEOUT`] is 6 s instead, the least
//! a broker accepts by default (`group.min.session.timeout.ms`), with a
//! heartbeat every 2 s; the rebalance that follows takes a few seconds more.
//! The new consumer protocol (KIP-848) would not help here: its session
//! timeout is the broker's to set, 45 s by default. Static membership
//! (`group.instance.id`) would not either: it keeps a dead member's
//! partitions for the whole session timeout, waiting for it to come back.

use std::future::Future;
use std::pin::{Pin, pin};
use std::time::{Duration, Instant};

use anyhow::Context;
use chirp_grpc::{ErrorKind, ServiceError};
use chirp_kafka::KafkaArgs;
use chirp_kafka::trace_headers;
use chirp_proto::events::TweetEvent;
use chirp_proto::events::tweet_event::Kind;
use chirp_runtime::trace_context;
use futures::StreamExt as _;
use futures::stream::FuturesUnordered;
use metrics::counter;
use prost::Message as _;
use rdkafka::Message;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::OwnedMessage;
use rdkafka::types::RDKafkaErrorCode;
use tokio::sync::watch;
use tracing::Instrument;

use crate::dead_letter::DeadLetters;
use crate::fanout::Fanout;
use crate::stats;
use crate::watermark::Watermark;

/// How long the group waits for a silent worker before moving its
/// partitions: the floor of what a broker accepts by default.
const SESSION_TIMEOUT: Duration = Duration::from_secs(6);

/// How often the consumer tells the group it is alive: a third of the
/// session timeout, as Kafka advises, so one lost heartbeat is not fatal.
const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(2);

/// The longest one event may hold the worker before the group gives its
/// partitions to another: far more than applying an event takes (at most a
/// celebrity threshold of followers, a few pages); a failure outlasting it
/// moves the partition, and its new owner retries in turn.
const MAX_POLL_INTERVAL: Duration = Duration::from_secs(120);

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
        .set("session.timeout.ms", millis(SESSION_TIMEOUT))
        .set("heartbeat.interval.ms", millis(HEARTBEAT_INTERVAL))
        .set("max.poll.interval.ms", millis(MAX_POLL_INTERVAL))
        .create()
        .context("create Kafka consumer")?;
    consumer
        .subscribe(&[&kafka.kafka_topic])
        .with_context(|| format!("subscribe to {}", kafka.kafka_topic))?;
    Ok(consumer)
}

/// How many applied messages may wait behind the oldest unapplied one, per
/// message in flight: bounds the worker's memory and the replay after a
/// crash while one event is stuck, without stopping the others for a blip.
const WINDOW_PER_EVENT: usize = 64;

/// Applies events, `concurrency` at a time, until `shutdown` resolves.
/// Then it takes no further message, lets those in hand finish (a message
/// waiting to be retried gives up and stays unstored, to be delivered
/// again), commits the stored offsets and leaves its group, so its
/// partitions move to another worker at once.
pub async fn consume(
    consumer: StreamConsumer,
    fanout: &Fanout,
    dead_letters: &DeadLetters,
    concurrency: usize,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let mut shutdown = pin!(shutdown);
    let (stop, stopping) = watch::channel(false);
    let mut in_flight = FuturesUnordered::new();
    let mut watermark = Watermark::default();
    loop {
        let stopped = *stop.borrow();
        let room = !stopped
            && in_flight.len() < concurrency
            && watermark.unstored() < concurrency * WINDOW_PER_EVENT;
        tokio::select! {
            biased;
            () = &mut shutdown, if !stopped => {
                stop.send_replace(true);
            }
            Some((message, outcome)) = in_flight.next() => {
                if let Outcome::Done = outcome {
                    store(&consumer, &mut watermark, &message);
                }
            }
            received = consumer.recv(), if room => match received {
                Ok(message) => {
                    let message = message.detach();
                    watermark.received(message.partition(), message.offset());
                    in_flight.push(apply(fanout, dead_letters, message, stopping.clone()));
                }
                // librdkafka reconnects and retries by itself; this is news, not a failure.
                Err(error) => tracing::warn!(%error, "kafka consumer error"),
            },
            else => break,
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

/// Stores the partition's offset if `message` completed its applied prefix.
fn store(consumer: &StreamConsumer, watermark: &mut Watermark, message: &OwnedMessage) {
    let partition = message.partition();
    let Some(offset) = watermark.applied(partition, message.offset()) else {
        return;
    };
    // librdkafka stores `offset + 1`, the next message to read.
    if let Err(error) = consumer.store_offset(message.topic(), partition, offset) {
        // The partition was revoked meanwhile: its new owner replays from its last commit.
        tracing::warn!(%error, partition, offset, "offset not stored");
    }
}

/// Applies one message inside its own span, which joins the trace of the
/// request that published it (from the headers); hands the message back
/// with what became of it.
async fn apply(
    fanout: &Fanout,
    dead_letters: &DeadLetters,
    message: OwnedMessage,
    stopping: watch::Receiver<bool>,
) -> (OwnedMessage, Outcome) {
    let span = tracing::info_span!(
        "event",
        otel.kind = "consumer",
        partition = message.partition(),
        offset = message.offset()
    );
    if let Some(headers) = message.headers() {
        trace_context::set_remote_parent(&span, trace_headers::extract_kafka(headers));
    }
    let outcome = process(fanout, dead_letters, &message, pin!(stopped(stopping)))
        .instrument(span)
        .await;
    (message, outcome)
}

/// Resolves once shutdown has begun.
async fn stopped(mut stopping: watch::Receiver<bool>) {
    // An error means the loop is gone, which is a stop too.
    let _ = stopping.wait_for(|&stopping| stopping).await;
}

enum Outcome {
    /// Applied, skipped or dead-lettered: the offset may be stored.
    Done,
    /// Shutdown came while waiting to retry: the offset must not be stored.
    Interrupted,
}

/// Applies one message, retrying every failure for as long as it lasts;
/// only a message that does not decode is dead-lettered.
async fn process(
    fanout: &Fanout,
    dead_letters: &DeadLetters,
    message: &OwnedMessage,
    mut shutdown: Pin<&mut impl Future<Output = ()>>,
) -> Outcome {
    let event = match decode(message.payload().unwrap_or_default()) {
        Ok(event) => event,
        Err(reason) => {
            let reason = format!("undecodable: {reason}");
            return dead_letter(dead_letters, message, &reason, shutdown).await;
        }
    };
    let mut backoff = Backoff::new();
    let first_attempt = Instant::now();
    let mut attempt: u64 = 0;
    loop {
        attempt += 1;
        let error = match fanout.apply(event).await {
            Ok(()) => {
                counter!(stats::EVENTS, "outcome" => "applied").increment(1);
                return Outcome::Done;
            }
            Err(error) => error,
        };
        let kind = error.kind();
        if kind == ErrorKind::NotFound {
            tracing::warn!(%error, "skipping event of a user that no longer exists");
            counter!(stats::EVENTS, "outcome" => "skipped").increment(1);
            return Outcome::Done;
        }
        counter!(stats::EVENTS, "outcome" => "retried").increment(1);
        let delay = backoff.next_delay();
        let failing_for_s = first_attempt.elapsed().as_secs();
        let retry_in_ms = delay.as_millis();
        if kind == ErrorKind::Unavailable {
            tracing::warn!(%error, attempt, failing_for_s, retry_in_ms, "fan-out failed, will retry");
        } else {
            tracing::error!(
                %error,
                attempt,
                failing_for_s,
                retry_in_ms,
                "fan-out refused, will retry until its cause is mended"
            );
        }
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = &mut shutdown => return Outcome::Interrupted,
        }
    }
}

/// Sends `message` to the dead-letter topic, retrying until the broker took
/// it: an event may leave its partition only for somewhere durable.
async fn dead_letter(
    dead_letters: &DeadLetters,
    message: &OwnedMessage,
    reason: &str,
    mut shutdown: Pin<&mut impl Future<Output = ()>>,
) -> Outcome {
    let mut backoff = Backoff::new();
    loop {
        let sent = tokio::select! {
            sent = dead_letters.send(message, reason) => sent,
            () = &mut shutdown => return Outcome::Interrupted,
        };
        let error = match sent {
            Ok(()) => {
                tracing::error!(
                    reason,
                    partition = message.partition(),
                    offset = message.offset(),
                    "event dead-lettered"
                );
                counter!(stats::EVENTS, "outcome" => "dead_lettered").increment(1);
                return Outcome::Done;
            }
            Err(error) => error,
        };
        let delay = backoff.next_delay();
        tracing::warn!(%error, retry_in_ms = delay.as_millis(), "dead-lettering failed, will retry");
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = &mut shutdown => return Outcome::Interrupted,
        }
    }
}

fn millis(duration: Duration) -> String {
    duration.as_millis().to_string()
}

fn decode(payload: &[u8]) -> Result<Kind, String> {
    TweetEvent::decode(payload)
        .map_err(|error| error.to_string())?
        .kind
        .ok_or_else(|| "event has no kind".to_owned())
}

/// Capped exponential backoff between attempts at one message, with
/// jitter: quick to recover from a blip, gentle on a dependency that is down
/// for minutes, and spread out so that the workers of a group, all failing
/// on the same outage, do not come back at it in step.
struct Backoff {
    next: Duration,
}

impl Backoff {
    const FIRST: Duration = Duration::from_millis(100);
    const MAX: Duration = Duration::from_secs(5);

    fn new() -> Self {
        Self { next: Self::FIRST }
    }

    /// A delay between half and all of the current step ("equal jitter"),
    /// then the step doubles up to [`Self::MAX`].
    fn next_delay(&mut self) -> Duration {
        let step = self.next;
        self.next = (step * 2).min(Self::MAX);
        step / 2 + step.mul_f64(rand::random::<f64>() / 2.0)
    }
}

#[cfg(test)]
mod tests {
    use chirp_proto::events::TweetDeleted;

    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_cap_with_jitter() {
        let mut backoff = Backoff::new();
        let steps = [100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000];
        for step in steps {
            let delay = backoff.next_delay().as_millis();
            assert!(
                step / 2 <= delay && delay <= step,
                "{delay} ms for a step of {step}"
            );
        }
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
