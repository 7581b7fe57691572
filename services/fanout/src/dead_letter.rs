//! The dead-letter topic: where an event goes when it can never be applied,
//! so that it stops blocking the events behind it.
//!
//! A partition is applied in order, one event at a time, so an event that
//! always fails would stall every later event of that partition forever.
//! Only an event that does not decode ends here: nothing about it can
//! change. Every other failure is retried until it heals or is mended
//! ([`crate::consumer`] says why), since a failure that looks permanent is
//! more often an outage in disguise, and a dead-lettered tweet is missing
//! from every follower's timeline until someone replays it. The
//! dead-lettered message keeps its key, payload and headers, plus why and
//! where it came from, so that an operator can inspect it and, once the cause
//! is fixed, replay it into the events topic (`fanout replay-dead-letters`,
//! [`crate::replay`]).

use anyhow::Context;
use chirp_kafka::KafkaArgs;
use rdkafka::Message;
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, OwnedHeaders, OwnedMessage};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;

/// The headers dead-lettering adds to a message: why, and where from.
const REASON: &str = "chirp-dead-letter-reason";
const SOURCE_TOPIC: &str = "chirp-source-topic";
const SOURCE_PARTITION: &str = "chirp-source-partition";
const SOURCE_OFFSET: &str = "chirp-source-offset";

/// Whether the header `key` is one dead-lettering added (a replay leaves
/// them behind).
pub fn added_header(key: &str) -> bool {
    [REASON, SOURCE_TOPIC, SOURCE_PARTITION, SOURCE_OFFSET].contains(&key)
}

/// The dead-letter topic of an events topic.
pub fn topic_for(events_topic: &str) -> String {
    format!("{events_topic}-dead-letter")
}

pub struct DeadLetters {
    producer: FutureProducer,
    topic: String,
}

impl DeadLetters {
    /// Creates the dead-letter topic of `kafka`'s events topic unless it
    /// exists, and a producer for it.
    pub async fn connect(kafka: &KafkaArgs) -> anyhow::Result<Self> {
        let topic = topic_for(&kafka.kafka_topic);
        let dead_letters = KafkaArgs {
            kafka_topic: topic.clone(),
            ..kafka.clone()
        };
        dead_letters.ensure_topic().await?;
        let producer = kafka
            .client_config()
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .create()
            .context("create the dead-letter producer")?;
        Ok(Self { producer, topic })
    }

    /// Sends `message` to the dead-letter topic with `reason`, and waits for
    /// the broker's acknowledgement: only then may its offset be stored.
    pub async fn send(&self, message: &OwnedMessage, reason: &str) -> Result<(), KafkaError> {
        let partition = message.partition().to_string();
        let offset = message.offset().to_string();
        let headers = message
            .headers()
            .cloned()
            .unwrap_or_else(OwnedHeaders::new)
            .insert(header(REASON, reason))
            .insert(header(SOURCE_TOPIC, message.topic()))
            .insert(header(SOURCE_PARTITION, &partition))
            .insert(header(SOURCE_OFFSET, &offset));
        let mut record = FutureRecord::<[u8], [u8]>::to(&self.topic).headers(headers);
        if let Some(key) = message.key() {
            record = record.key(key);
        }
        if let Some(payload) = message.payload() {
            record = record.payload(payload);
        }
        self.producer
            .send(record, Timeout::Never)
            .await
            .map(drop)
            .map_err(|(error, _)| error)
    }
}

fn header<'a>(key: &'a str, value: &'a str) -> Header<'a, &'a str> {
    Header {
        key,
        value: Some(value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_events_topic_has_its_own_dead_letter_topic() {
        assert_eq!(topic_for("tweet-events"), "tweet-events-dead-letter");
    }
}
