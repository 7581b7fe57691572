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
//! [`MAX_POLL_INTERVAL`] costs the worker its partitions; their new owner
//! resumes from the last commit, which replays, and replays are harmless.
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
use metrics::counter;
use prost::Message as _;
use rdkafka::Message;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::BorrowedMessage;
use rdkafka::types::RDKafkaErrorCode;
use tracing::Instrument;

use crate::dead_letter::DeadLetters;
use crate::fanout::Fanout;
use crate::stats;

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

/// Applies events until `shutdown` resolves. Shutdown takes effect between
/// messages, or while a message waits to be retried; a message that was
/// interrupted is left unstored and will be delivered again. Then the stored
/// offsets are committed and the consumer leaves its group, so its
/// partitions move to another worker at once.
pub async fn consume(
    consumer: StreamConsumer,
    fanout: &Fanout,
    dead_letters: &DeadLetters,
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
            trace_context::set_remote_parent(&span, trace_headers::extract_kafka(headers));
        }
        match process(fanout, dead_letters, &message, shutdown.as_mut())
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
    message: &BorrowedMessage<'_>,
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
    message: &BorrowedMessage<'_>,
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
