//! `fanout replay-dead-letters`: copies the dead-letter topic back into the
//! events topic, once the cause that sent events there is mended.
//!
//! Since only an event that does not decode is dead-lettered today, a replay
//! is for letters of that kind once the producer or the schema is fixed, and
//! for those an older worker dead-lettered when it still took an outage for
//! a bad event. Replaying is safe because the worker applies events
//! idempotently ([`crate::fanout`]): a tweet already in a timeline is not
//! added twice, a deletion is not undone by a replayed creation (the
//! tombstone wins), and a letter that still fails goes back to the
//! dead-letter topic, behind the ones this run replays.
//!
//! Each run replays what the topic holds when it starts and remembers, as
//! the offsets of a consumer group of its own, how far it got: a second run
//! replays only the letters that arrived since. The offsets are committed
//! once every letter of the run was acknowledged by the events topic, so an
//! interrupted run starts over on its next try, and the letters replayed
//! twice are applied as once.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use chirp_kafka::KafkaArgs;
use chirp_runtime::telemetry::LogArgs;
use clap::Args;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;
use rdkafka::{Offset, TopicPartitionList};

use crate::dead_letter;

/// How long a broker may take to answer one request of the replay before it
/// gives up, saying so.
const BROKER_TIMEOUT: Duration = Duration::from_secs(30);

/// How often the progress is reported while letters are replayed.
const PROGRESS_EVERY: Duration = Duration::from_secs(1);

/// The flags of `fanout replay-dead-letters`.
#[derive(Debug, Clone, Args)]
pub struct ReplayArgs {
    /// The consumer group whose offsets record how far replays got on the
    /// dead-letter topic. Not the worker's group: nothing consumes the
    /// dead-letter topic but this command.
    #[arg(
        long,
        env = "DEAD_LETTER_REPLAY_GROUP_ID",
        default_value = "fanout-dead-letter-replay"
    )]
    pub replay_group_id: String,
    /// The events topic (`KAFKA_TOPIC`) whose dead letters are replayed into it.
    #[command(flatten)]
    pub kafka: KafkaArgs,
    #[command(flatten)]
    pub log: LogArgs,
}

/// How far a replay has got, in letters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    pub replayed: u64,
    /// The letters the topic held past the last replay when this one started.
    pub total: u64,
}

impl fmt::Display for Progress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "replayed {} of {} dead letters",
            self.replayed, self.total
        )
    }
}

/// What a finished replay did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replayed {
    pub letters: u64,
    pub from_topic: String,
    pub to_topic: String,
    pub elapsed: Duration,
}

impl fmt::Display for Replayed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "replayed {} dead letters from {} into {} in {:.1} s; the fan-out workers apply them as \
             any event (replaying twice is harmless)",
            self.letters,
            self.from_topic,
            self.to_topic,
            self.elapsed.as_secs_f64()
        )
    }
}

/// Replays every letter past the replay group's offsets into the events
/// topic, calling `progress` about once a second, and commits the offsets.
pub async fn replay_dead_letters(
    args: &ReplayArgs,
    mut progress: impl FnMut(Progress),
) -> anyhow::Result<Replayed> {
    let started = Instant::now();
    let from_topic = dead_letter::topic_for(&args.kafka.kafka_topic);
    let to_topic = args.kafka.kafka_topic.clone();
    let consumer: Arc<StreamConsumer> = Arc::new(
        args.kafka
            .client_config()
            .set("group.id", &args.replay_group_id)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .create()
            .context("create the dead-letter consumer")?,
    );
    let producer: FutureProducer = args
        .kafka
        .client_config()
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .create()
        .context("create the events producer")?;

    let ranges = pending_ranges(&consumer, &from_topic).await?;
    let total = ranges
        .iter()
        .map(|range| range.end - range.start)
        .sum::<i64>() as u64;
    let mut assignment = TopicPartitionList::new();
    for range in &ranges {
        assignment.add_partition_offset(
            &from_topic,
            range.partition,
            Offset::Offset(range.start),
        )?;
    }
    consumer.assign(&assignment)?;

    let mut done = Progress { replayed: 0, total };
    let mut reported = Instant::now();
    let mut open: Vec<&Range> = ranges.iter().collect();
    while !open.is_empty() {
        let message = tokio::time::timeout(BROKER_TIMEOUT, consumer.recv())
            .await
            .with_context(|| format!("no dead letter arrived within {BROKER_TIMEOUT:?}"))??;
        let Some(at) = open
            .iter()
            .position(|range| range.partition == message.partition())
        else {
            continue;
        };
        // Letters that arrived after the start are the next run's.
        if message.offset() >= open[at].end {
            open.swap_remove(at);
            continue;
        }
        let mut record =
            FutureRecord::<[u8], [u8]>::to(&to_topic).headers(replayed_headers(&message));
        if let Some(key) = message.key() {
            record = record.key(key);
        }
        if let Some(payload) = message.payload() {
            record = record.payload(payload);
        }
        producer
            .send(record, Timeout::After(BROKER_TIMEOUT))
            .await
            .map_err(|(error, _)| error)
            .with_context(|| format!("replay a dead letter into {to_topic}"))?;
        done.replayed += 1;
        if message.offset() + 1 >= open[at].end {
            open.swap_remove(at);
        }
        if reported.elapsed() >= PROGRESS_EVERY {
            progress(done);
            reported = Instant::now();
        }
    }
    progress(done);

    let mut replayed_to = TopicPartitionList::new();
    for range in &ranges {
        replayed_to.add_partition_offset(
            &from_topic,
            range.partition,
            Offset::Offset(range.end),
        )?;
    }
    if replayed_to.count() > 0 {
        let consumer = Arc::clone(&consumer);
        tokio::task::spawn_blocking(move || consumer.commit(&replayed_to, CommitMode::Sync))
            .await?
            .context("commit how far the replay got")?;
    }
    Ok(Replayed {
        letters: done.replayed,
        from_topic,
        to_topic,
        elapsed: started.elapsed(),
    })
}

/// The letters of one partition to replay: offsets `start..end`.
#[derive(Debug)]
struct Range {
    partition: i32,
    start: i64,
    end: i64,
}

/// For each partition of `topic` holding letters past the replay group's
/// offset (or its oldest retained letter), those letters; none when the
/// topic does not exist (no worker ever dead-lettered anything).
async fn pending_ranges(consumer: &Arc<StreamConsumer>, topic: &str) -> anyhow::Result<Vec<Range>> {
    let consumer = Arc::clone(consumer);
    let topic = topic.to_owned();
    tokio::task::spawn_blocking(move || {
        let metadata = consumer
            .fetch_metadata(Some(&topic), BROKER_TIMEOUT)
            .with_context(|| format!("read the metadata of {topic}"))?;
        let Some(found) = metadata.topics().iter().find(|found| found.name() == topic) else {
            return Ok(Vec::new());
        };
        if found.error().is_some() || found.partitions().is_empty() {
            return Ok(Vec::new());
        }
        let mut asked = TopicPartitionList::new();
        for partition in found.partitions() {
            asked.add_partition(&topic, partition.id());
        }
        let committed = consumer
            .committed_offsets(asked, BROKER_TIMEOUT)
            .context("read how far earlier replays got")?;
        let mut ranges = Vec::new();
        for element in committed.elements() {
            let partition = element.partition();
            let (low, high) = consumer
                .fetch_watermarks(&topic, partition, BROKER_TIMEOUT)
                .with_context(|| format!("read the offsets of {topic}/{partition}"))?;
            let start = match element.offset() {
                Offset::Offset(offset) => offset.max(low),
                Offset::Invalid | Offset::Beginning | Offset::Stored => low,
                other => bail!("unexpected committed offset {other:?} on {topic}/{partition}"),
            };
            if start < high {
                ranges.push(Range {
                    partition,
                    start,
                    end: high,
                });
            }
        }
        Ok(ranges)
    })
    .await?
}

/// The letter's own headers (its trace context among them) without the ones
/// dead-lettering added, plus where the replay took it from.
fn replayed_headers(message: &impl Message) -> OwnedHeaders {
    let from = format!(
        "{}/{}/{}",
        message.topic(),
        message.partition(),
        message.offset()
    );
    let mut headers = OwnedHeaders::new();
    if let Some(own) = message.headers() {
        for header in own.iter() {
            if !dead_letter::added_header(header.key) {
                headers = headers.insert(header);
            }
        }
    }
    headers.insert(Header {
        key: "chirp-replayed-from",
        value: Some(from.as_str()),
    })
}
