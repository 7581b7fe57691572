//! Consumer lag: how many events of each partition the fan-out group has not
//! got through yet, the one number that says whether the workers keep up.
//!
//! Lag is measured the way Kafka's own `kafka-consumer-groups.sh --describe`
//! measures it: a partition's high watermark (the offset its next event will
//! get) minus the group's committed offset. A probe with a Kafka client of its
//! own asks the brokers every `CONSUMER_LAG_INTERVAL_MS`, on the blocking
//! pool, since rdkafka's queries block. librdkafka's statistics callback
//! (`statistics.interval.ms`) would be cheaper, needing no requests of its
//! own, but it reports only the partitions assigned to this worker, so a
//! partition nobody consumes (its worker crashed, a rebalance is stuck) would
//! have no lag at all, exactly when its lag grows. Asking for the group's
//! offsets shows every partition from any worker, for `partitions + 2` small
//! requests per interval; dashboards take the `max` by partition across
//! workers.
//!
//! Committed offsets trail the applied events by up to the auto-commit
//! interval (5 s), so the gauge counts what a restart would replay as well as
//! what is unread: zero means every event is applied *and* committed.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use chirp_kafka::KafkaArgs;
use metrics::gauge;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use tokio::time::MissedTickBehavior;

use crate::stats;

/// How long each query of one measurement may take: a probe still in flight
/// at shutdown holds up the exit of the process by at most a few of these.
const QUERY_TIMEOUT: Duration = Duration::from_secs(2);

/// Measures the lag of one consumer group on one topic.
pub struct LagProbe {
    /// Never subscribes, so it never joins the group or takes partitions
    /// from the workers: the group id only lets it read the group's offsets.
    client: Arc<BaseConsumer>,
    topic: String,
}

impl LagProbe {
    pub fn new(kafka: &KafkaArgs, group_id: &str) -> anyhow::Result<Self> {
        let client: BaseConsumer = kafka
            .client_config()
            .set("group.id", group_id)
            .set("enable.auto.commit", "false")
            .create()
            .context("create the consumer-lag client")?;
        Ok(Self {
            client: Arc::new(client),
            topic: kafka.kafka_topic.clone(),
        })
    }

    /// Refreshes the lag gauge every `interval`, starting now, until dropped.
    /// A failed measurement keeps the last values and is tried again.
    pub async fn run(self, interval: Duration) -> Infallible {
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let client = Arc::clone(&self.client);
            let topic = self.topic.clone();
            let measured = tokio::task::spawn_blocking(move || measure(&client, &topic))
                .await
                .unwrap_or_else(|panicked| Err(panicked.into()));
            match measured {
                Ok(lags) => {
                    for (partition, lag) in lags {
                        gauge!(stats::CONSUMER_LAG, "partition" => partition.to_string())
                            .set(lag as f64);
                    }
                }
                Err(error) => {
                    tracing::warn!(error = format!("{error:#}"), "consumer lag not measured")
                }
            }
        }
    }
}

/// The lag of every partition of `topic`, as `(partition, lag)`. Blocks.
fn measure(client: &BaseConsumer, topic: &str) -> anyhow::Result<Vec<(i32, i64)>> {
    // Without a subscription the client's queue carries only errors (a broker
    // down), which the worker's own consumer reports; drain them.
    while let Some(event) = client.poll(Duration::ZERO) {
        if let Err(error) = event {
            tracing::debug!(%error, "consumer lag client");
        }
    }
    let metadata = client
        .fetch_metadata(Some(topic), QUERY_TIMEOUT)
        .context("fetch the topic's partitions")?;
    let mut partitions = TopicPartitionList::new();
    for topic_metadata in metadata.topics() {
        for partition in topic_metadata.partitions() {
            partitions.add_partition(topic, partition.id());
        }
    }
    let committed = client
        .committed_offsets(partitions, QUERY_TIMEOUT)
        .context("fetch the group's committed offsets")?;
    committed
        .elements()
        .iter()
        .map(|element| {
            let (low, high) = client
                .fetch_watermarks(topic, element.partition(), QUERY_TIMEOUT)
                .with_context(|| {
                    format!("fetch the watermarks of partition {}", element.partition())
                })?;
            Ok((element.partition(), lag(element.offset(), low, high)))
        })
        .collect()
}

/// Events from the group's next one to the partition's end. A group that
/// committed nothing yet, or whose offset fell below the oldest retained
/// event, starts from the oldest one (`auto.offset.reset=earliest`).
fn lag(committed: Offset, low: i64, high: i64) -> i64 {
    let next = match committed {
        Offset::Offset(offset) => offset.max(low),
        _ => low,
    };
    (high - next).max(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lag_counts_from_the_committed_offset_to_the_high_watermark() {
        assert_eq!(lag(Offset::Offset(7), 0, 10), 3);
        assert_eq!(lag(Offset::Offset(10), 0, 10), 0);
    }

    #[test]
    fn a_group_without_a_usable_offset_counts_from_the_oldest_event() {
        assert_eq!(lag(Offset::Invalid, 4, 10), 6);
        assert_eq!(lag(Offset::Offset(2), 4, 10), 6, "below retention");
        assert_eq!(lag(Offset::Invalid, 0, 0), 0, "an empty partition");
    }
}
