//! The tweet service on a three-broker Kafka cluster
//! (`deploy/backends.sh up kafka-cluster`): the topic is created as the
//! article keeps its queue, and a broker killed while tweets are posted
//! loses none of their events.
//!
//! What makes that hold: three replicas of each partition, of which two
//! must have an event before `acks=all` counts it written, and a client
//! that retries (with its idempotency key) a create that failed while the
//! partitions' leaders moved. Every tweet the service said it created has
//! its event in the log afterwards, read by a consumer from the start. The
//! dead broker, brought back by `deploy/backends.sh up kafka-cluster`,
//! rejoins the same cluster on its own log: the other brokers keep running,
//! and the events and the committed offsets are all still there.

use std::collections::BTreeSet;
use std::time::Duration;

use chirp_kafka::KafkaArgs;
use chirp_proto::events::TweetEvent;
use chirp_proto::events::tweet_event::Kind;
use chirp_proto::tweet::CreateTweetRequest;
use chirp_proto::tweet::tweet_service_client::TweetServiceClient;
use chirp_test_support::{
    CQL, backends_script, ensure_scale_out, local_listener, scale_out_pid, spawn_service,
    stop_scale_out, unique_name,
};
use clap::Parser;
use prost::Message as _;
use rdkafka::Message as _;
use rdkafka::admin::{AdminClient, AdminOptions, ResourceSpecifier};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::{Offset, TopicPartitionList};

const BROKERS: &str = "127.0.0.1:19092,127.0.0.1:19093,127.0.0.1:19094";
const TWEETS: usize = 60;

#[tokio::test]
async fn a_broker_killed_while_tweets_are_posted_loses_no_event() {
    ensure_scale_out("kafka-cluster");
    let topic = unique_name("cluster_test");
    let keyspace = unique_name("cluster_test");
    let config = tweet::Config::try_parse_from([
        "tweet",
        "--cql-nodes",
        CQL,
        "--cql-keyspace",
        &keyspace,
        "--kafka-brokers",
        BROKERS,
        "--kafka-topic",
        &topic,
        "--kafka-topic-partitions",
        "3",
        "--kafka-replication-factor",
        "3",
        "--kafka-min-insync-replicas",
        "2",
    ])
    .unwrap();
    let kafka = config.kafka.clone();
    let (listener, addr) = local_listener().await;
    spawn_service(
        "tweet",
        tweet::run(config, listener, std::future::pending()),
    );
    let channel = chirp_grpc::connect_lazy(&addr, Duration::from_secs(30)).unwrap();
    let mut tweets = TweetServiceClient::new(channel);

    let formatted_id = cluster_id(&kafka).await;
    let mut created = BTreeSet::new();
    for i in 0..TWEETS {
        if i == TWEETS / 3 {
            backends_script(&["kill", "kafka-cluster", "2"]);
        }
        created.insert(create_with_retries(&mut tweets, i).await);
    }
    let group = unique_name("cluster_test");
    let published = events(&kafka, &group, created.len()).await;
    let missing: Vec<_> = created.difference(&published).collect();
    assert!(missing.is_empty(), "tweets without an event: {missing:?}");
    // Only now: posts do not wait for Kafka, so the relay may create the
    // topic after the last post returns (a cluster still starting answers
    // its first request late); every event in the log means it exists.
    assert_topic_settings(&kafka).await;

    // The dead broker brought back as a user would: `up` starts it alone on
    // its own log, and the cluster it rejoins is the same one, with the
    // same events and the same committed offsets.
    let survivors = [member_pid("1"), member_pid("3")];
    let offsets = committed(&kafka, &group).await;
    ensure_scale_out("kafka-cluster");
    assert!(
        scale_out_pid("kafka-cluster", "2").is_some(),
        "node 2 runs again"
    );
    assert_eq!(
        [member_pid("1"), member_pid("3")],
        survivors,
        "`up` left the running brokers alone"
    );
    assert_eq!(cluster_id(&kafka).await, formatted_id, "the same cluster");
    assert_eq!(committed(&kafka, &group).await, offsets, "offsets kept");
    let again = events(&kafka, &unique_name("cluster_test"), created.len()).await;
    assert_eq!(again, published, "every event still in the log");
    // The JVMs should not outlive the test that needed them; their data
    // stays for the next `up`.
    stop_scale_out("kafka-cluster");
}

fn member_pid(node: &str) -> u32 {
    scale_out_pid("kafka-cluster", node).unwrap_or_else(|| panic!("node {node} runs"))
}

/// The id the cluster's log dirs were formatted with, as a broker reports it.
async fn cluster_id(kafka: &KafkaArgs) -> String {
    let admin: AdminClient<DefaultClientContext> = kafka.client_config().create().unwrap();
    admin
        .inner()
        .fetch_cluster_id(Duration::from_secs(30))
        .expect("a broker reports the cluster id")
}

/// The offsets `group` committed on the topic, per partition.
async fn committed(kafka: &KafkaArgs, group: &str) -> Vec<(i32, Offset)> {
    let consumer: StreamConsumer = kafka
        .client_config()
        .set("group.id", group)
        .create()
        .unwrap();
    let mut partitions = TopicPartitionList::new();
    for partition in 0..3 {
        partitions.add_partition(&kafka.kafka_topic, partition);
    }
    let offsets = consumer
        .committed_offsets(partitions, Duration::from_secs(30))
        .expect("the group's committed offsets");
    offsets
        .elements()
        .iter()
        .map(|element| (element.partition(), element.offset()))
        .collect()
}

/// Creates tweet `i`, retrying with the same idempotency key as a client
/// does while the call fails (leaders moving off the dead broker).
async fn create_with_retries(
    tweets: &mut TweetServiceClient<chirp_grpc::Channel>,
    i: usize,
) -> i64 {
    let request = CreateTweetRequest {
        author_id: 1 + (i % 7) as i64,
        content: format!("tweet {i}"),
        idempotency_key: format!("cluster-test-{i}"),
    };
    // Generous: the first calls also wait for the service to create its keyspace.
    for _ in 0..120 {
        match tweets.create_tweet(request.clone()).await {
            Ok(response) => return response.into_inner().tweet.expect("a tweet").tweet_id,
            Err(status) => eprintln!("create {i} failed, retrying: {status}"),
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    panic!("tweet {i} could not be created in 120 attempts");
}

/// The topic as `ensure_topic` created it: seven days, two in-sync replicas.
async fn assert_topic_settings(kafka: &KafkaArgs) {
    let admin: AdminClient<DefaultClientContext> = kafka.client_config().create().unwrap();
    let described = admin
        .describe_configs(
            [&ResourceSpecifier::Topic(&kafka.kafka_topic)],
            &AdminOptions::new(),
        )
        .await
        .unwrap();
    let resource = described[0].as_ref().expect("the topic's config");
    let value = |name: &str| {
        resource
            .get(name)
            .and_then(|entry| entry.value.clone())
            .unwrap_or_default()
    };
    assert_eq!(value("retention.ms"), (7 * 24 * 3_600_000_u64).to_string());
    assert_eq!(value("min.insync.replicas"), "2");
}

/// The ids of the first `count` created events in the topic, read from the
/// start by a new consumer `group`, which commits what it read.
async fn events(kafka: &KafkaArgs, group: &str, count: usize) -> BTreeSet<i64> {
    let consumer: StreamConsumer = kafka
        .client_config()
        .set("group.id", group)
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    consumer.subscribe(&[&kafka.kafka_topic]).unwrap();
    let mut ids = BTreeSet::new();
    while ids.len() < count {
        let received = tokio::time::timeout(Duration::from_secs(60), consumer.recv())
            .await
            .unwrap_or_else(|_| panic!("only {} of {count} events in 60 s", ids.len()));
        // The dead broker is still in the bootstrap list: the client reports
        // failing to reach it, and carries on with the others.
        let message = match received {
            Ok(message) => message,
            Err(error) => {
                eprintln!("consumer: {error}");
                continue;
            }
        };
        let event = TweetEvent::decode(message.payload().unwrap_or_default()).unwrap();
        if let Some(Kind::Created(created)) = event.kind {
            ids.insert(created.tweet_id);
        }
    }
    consumer
        .commit_consumer_state(CommitMode::Sync)
        .expect("commit the offsets read");
    ids
}
