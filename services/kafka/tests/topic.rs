//! Who creates the events topic: its writer ([`KafkaArgs::ensure_topic`]),
//! while a reader only waits for it ([`KafkaArgs::wait_for_topic`]), against
//! the real broker, which would create a topic on a metadata request if
//! the client let it (`auto.create.topics.enable=true` in
//! `deploy/backends/kafka/server.properties`).

use std::time::Duration;

use chirp_kafka::KafkaArgs;
use chirp_test_support::{KAFKA, ensure_backends, unique_name};
use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};

/// Long enough for a waiting reader to have asked the broker a few times.
const SEVERAL_POLLS: Duration = Duration::from_secs(3);

/// How long creating a topic and seeing it may take on a busy machine.
const DEADLINE: Duration = Duration::from_secs(30);

fn kafka_args(topic: &str) -> KafkaArgs {
    KafkaArgs {
        kafka_brokers: KAFKA.to_owned(),
        kafka_topic: topic.to_owned(),
        kafka_topic_partitions: 3,
        kafka_replication_factor: 1,
        kafka_min_insync_replicas: 1,
        kafka_retention_hours: 1,
    }
}

/// The partitions of `topic` the broker reports (none if it does not exist).
async fn partitions(kafka: &KafkaArgs) -> usize {
    let client: BaseConsumer = kafka.client_config().create().unwrap();
    let topic = kafka.kafka_topic.clone();
    tokio::task::spawn_blocking(move || {
        let metadata = client
            .fetch_metadata(Some(&topic), Duration::from_secs(10))
            .unwrap();
        metadata
            .topics()
            .iter()
            .filter(|found| found.name() == topic && found.error().is_none())
            .map(|found| found.partitions().len())
            .sum()
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn a_reader_waits_for_the_topic_and_never_creates_it() {
    ensure_backends();
    let kafka = kafka_args(&unique_name("kafka_test"));
    let waiting = tokio::spawn({
        let kafka = kafka.clone();
        async move { kafka.wait_for_topic().await }
    });
    tokio::time::sleep(SEVERAL_POLLS).await;
    assert!(
        !waiting.is_finished(),
        "the reader did not wait for the topic"
    );
    assert_eq!(partitions(&kafka).await, 0, "waiting created the topic");

    kafka.ensure_topic().await.unwrap();
    tokio::time::timeout(DEADLINE, waiting)
        .await
        .expect("the reader saw the topic within the deadline")
        .unwrap()
        .unwrap();
    assert_eq!(partitions(&kafka).await, 3);

    let admin: AdminClient<DefaultClientContext> = kafka.client_config().create().unwrap();
    let _ = admin
        .delete_topics(&[&kafka.kafka_topic], &AdminOptions::new())
        .await;
}
