//! One Kafka partition that cannot be written, for real: on the three-node
//! cluster of `deploy/backends.sh up kafka-cluster`, a topic of eight
//! partitions with one replica each, partition 7 on node 3 alone. Killing
//! node 3 leaves partition 7 without a leader, as a broker's death leaves
//! every partition it alone held; the other seven live on nodes 1 and 2.
//!
//! The outbox relay must go on relaying every shard whose events do not go
//! to partition 7, say which shard waits (`chirp_outbox_stalled`), and once
//! node 3 is back send what waited without sending again anything Kafka had
//! acknowledged. Before the fix every shard's authors were hashed over every
//! partition: each shard stopped at its first event for partition 7, and
//! the events acknowledged after that one in its batch were sent again once
//! it got through.
//!
//! A test binary of its own: the other cluster test kills node 2, and two
//! nodes down would leave the cluster without a quorum. Cargo runs test
//! binaries one after another.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use chirp_kafka::KafkaArgs;
use chirp_proto::events::TweetEvent;
use chirp_proto::events::tweet_event::Kind;
use chirp_proto::tweet::CreateTweetRequest;
use chirp_proto::tweet::tweet_service_client::TweetServiceClient;
use chirp_runtime::metrics::total;
use chirp_test_support::{
    CQL, backends_script, ensure_scale_out, local_listener, spawn_service, stop_scale_out,
    unique_name,
};
use clap::Parser;
use prost::Message as _;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Message as _, Offset, TopicPartitionList};
use tokio::time::Instant;

const BROKERS: &str = "127.0.0.1:19092,127.0.0.1:19093,127.0.0.1:19094";
const PARTITIONS: i32 = 8;
/// The partition left without a leader, and the outbox shard whose events
/// go there (shard `s` of 8 writes partition `s` of 8).
const DEAD: i32 = 7;
/// Authors `1..=AUTHORS`: eight of each outbox shard (author id mod 8), so
/// that with authors hashed over partitions every shard has some of
/// partition 7's.
const AUTHORS: i64 = 64;
/// How long relaying, or a node's restart, may take on a busy machine.
const DEADLINE: Duration = Duration::from_secs(120);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unwritable_partition_stalls_only_its_shard_and_nothing_is_sent_twice() {
    ensure_scale_out("kafka-cluster");
    let metrics = chirp_runtime::metrics::builder()
        .install_recorder()
        .expect("the only recorder of this test binary");
    let kafka = KafkaArgs {
        kafka_brokers: BROKERS.to_owned(),
        kafka_topic: unique_name("unwritable_test"),
        kafka_topic_partitions: PARTITIONS,
        kafka_replication_factor: 1,
        kafka_min_insync_replicas: 1,
        kafka_retention_hours: 24,
    };
    create_topic(&kafka).await;
    let keyspace = unique_name("unwritable_test");
    let config = tweet::Config::try_parse_from([
        "tweet",
        "--cql-nodes",
        CQL,
        "--cql-keyspace",
        &keyspace,
        "--kafka-brokers",
        BROKERS,
        "--kafka-topic",
        &kafka.kafka_topic,
        "--kafka-topic-partitions",
        &PARTITIONS.to_string(),
    ])
    .unwrap();
    let (listener, addr) = local_listener().await;
    spawn_service(
        "tweet",
        tweet::run(config, listener, std::future::pending()),
    );
    let channel = chirp_grpc::connect_lazy(&addr, Duration::from_secs(30)).unwrap();
    let tweets = TweetServiceClient::new(channel);
    let mut log = Log::new(&kafka).await;

    // Every author once while all is well.
    let mut created: BTreeMap<i64, i64> = BTreeMap::new();
    for author in 1..=AUTHORS {
        created.insert(post(&tweets, author, "before").await, author);
    }
    log.wait_for(&created, "the posts made before the kill")
        .await;

    backends_script(&["kill", "kafka-cluster", "3"]);
    // Every author twice more: each shard's later events queue behind its
    // first, whatever partition that one went to.
    let mut after = BTreeMap::new();
    for round in ["first after", "second after"] {
        for author in 1..=AUTHORS {
            after.insert(post(&tweets, author, round).await, author);
        }
    }
    let (stalled, live): (BTreeMap<i64, i64>, BTreeMap<i64, i64>) = after
        .iter()
        .map(|(&tweet_id, &author)| (tweet_id, author))
        .partition(|&(_, author)| author % 8 == i64::from(DEAD));
    log.wait_for(&live, "the posts of shards 0-6, after the kill")
        .await;
    wait_until("shard 7, and it alone, reported stalled", || {
        let exposition = metrics.render();
        (0..8).all(|shard| {
            let value = total(
                &exposition,
                "chirp_outbox_stalled",
                &[&format!("shard=\"{shard}\"")],
            );
            value == f64::from(u8::from(shard == DEAD))
        })
    })
    .await;

    ensure_scale_out("kafka-cluster");
    log.wait_for(&stalled, "shard 7's posts, once node 3 is back")
        .await;
    wait_until("shard 7 no longer reported stalled", || {
        total(
            &metrics.render(),
            "chirp_outbox_stalled",
            &[&format!("shard=\"{DEAD}\"")],
        ) == 0.0
    })
    .await;
    let outbox = Outbox::connect(&keyspace).await;
    outbox.wait_until_empty().await;

    // The outbox is empty: whatever the relay sent is in the log now.
    created.extend(after);
    let everything = log.read_to_end().await;
    let mut copies: BTreeMap<i64, usize> = BTreeMap::new();
    for event in &everything {
        *copies.entry(event.tweet_id).or_default() += 1;
        let author = created[&event.tweet_id];
        assert_eq!(
            event.partition,
            (author % 8) as i32,
            "author {author}'s event is in the partition of another shard"
        );
    }
    let twice: Vec<_> = copies.iter().filter(|&(_, &n)| n > 1).collect();
    assert!(twice.is_empty(), "events sent more than once: {twice:?}");
    assert_eq!(
        copies.keys().copied().collect::<BTreeSet<_>>(),
        created.keys().copied().collect(),
        "one event per post"
    );
    // Each post's write and each event's trip to the broker were timed
    // (issue 23: a post's cost by step); a write retried counts twice.
    let exposition = metrics.render();
    let posts = created.len() as f64;
    let step = |name: &str| {
        total(
            &exposition,
            "chirp_tweet_post_step_duration_seconds_count",
            &[&format!("step=\"{name}\"")],
        )
    };
    assert!(step("write") >= posts, "{exposition}");
    assert_eq!(step("claim"), 0.0, "these posts have no idempotency key");
    assert!(
        total(
            &exposition,
            "chirp_outbox_relay_duration_seconds_count",
            &[]
        ) >= posts
    );
    // Nothing else uses these brokers: a passing run stops what it started.
    stop_scale_out("kafka-cluster");
}

/// Creates the topic before the service does, with partition 7 on node 3
/// alone and the others on nodes 1 and 2; the relay then finds it there.
async fn create_topic(kafka: &KafkaArgs) {
    let admin: AdminClient<DefaultClientContext> = kafka.client_config().create().unwrap();
    let assignment: Vec<[i32; 1]> = (0..PARTITIONS)
        .map(|partition| {
            if partition == DEAD {
                [3]
            } else {
                [1 + partition % 2]
            }
        })
        .collect();
    let replicas: Vec<&[i32]> = assignment.iter().map(|node| &node[..]).collect();
    let topic = NewTopic::new(
        &kafka.kafka_topic,
        PARTITIONS,
        TopicReplication::Variable(&replicas),
    );
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let results = admin.create_topics([&topic], &options).await.unwrap();
    for result in results {
        result.expect("the topic is created");
    }
}

async fn post(tweets: &TweetServiceClient<chirp_grpc::Channel>, author: i64, when: &str) -> i64 {
    let request = CreateTweetRequest {
        author_id: author,
        content: format!("{when} by {author}"),
        idempotency_key: String::new(),
    };
    // Generous: the first call also waits for the service's keyspace.
    let deadline = Instant::now() + DEADLINE;
    loop {
        match tweets.clone().create_tweet(request.clone()).await {
            Ok(response) => return response.into_inner().tweet.expect("a tweet").tweet_id,
            Err(status) if Instant::now() < deadline => {
                eprintln!("create by {author} failed, retrying: {status}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(status) => panic!("create by {author} failed: {status}"),
        }
    }
}

/// Waits, with a deadline, for `condition`.
async fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + DEADLINE;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A created event as read from the log.
struct Logged {
    partition: i32,
    tweet_id: i64,
}

/// The topic read from its start, every partition assigned by hand (no
/// group to rebalance while a node is down).
struct Log {
    kafka: KafkaArgs,
    consumer: std::sync::Arc<BaseConsumer>,
    seen: BTreeSet<i64>,
}

impl Log {
    async fn new(kafka: &KafkaArgs) -> Self {
        Self {
            kafka: kafka.clone(),
            consumer: std::sync::Arc::new(consumer(kafka)),
            seen: BTreeSet::new(),
        }
    }

    /// Reads on until every tweet of `wanted` has its event.
    async fn wait_for(&mut self, wanted: &BTreeMap<i64, i64>, what: &str) {
        let deadline = Instant::now() + DEADLINE;
        while !wanted.keys().all(|id| self.seen.contains(id)) {
            let missing: Vec<_> = wanted.keys().filter(|id| !self.seen.contains(id)).collect();
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}: no event for {missing:?}"
            );
            let consumer = std::sync::Arc::clone(&self.consumer);
            let polled = tokio::task::spawn_blocking(move || {
                let mut read = Vec::new();
                for _ in 0..100 {
                    match consumer.poll(Duration::from_millis(100)) {
                        Some(Ok(message)) => read.extend(created(&message)),
                        Some(Err(_)) | None => break,
                    }
                }
                read
            })
            .await
            .unwrap();
            self.seen.extend(polled.iter().map(|event| event.tweet_id));
        }
    }

    /// Every created event in the topic now, read by a new consumer up to
    /// each partition's end.
    async fn read_to_end(&self) -> Vec<Logged> {
        let kafka = self.kafka.clone();
        tokio::task::spawn_blocking(move || {
            let consumer = consumer(&kafka);
            let mut ends = BTreeMap::new();
            for partition in 0..PARTITIONS {
                let (_, high) = consumer
                    .fetch_watermarks(&kafka.kafka_topic, partition, Duration::from_secs(30))
                    .expect("the partition's end");
                ends.insert(partition, high);
            }
            let mut read = Vec::new();
            let mut offsets: BTreeMap<i32, i64> = BTreeMap::new();
            let deadline = std::time::Instant::now() + DEADLINE;
            while ends
                .iter()
                .any(|(partition, &end)| offsets.get(partition).map_or(0, |&at| at + 1) < end)
            {
                assert!(
                    std::time::Instant::now() < deadline,
                    "the log read to its end"
                );
                if let Some(Ok(message)) = consumer.poll(Duration::from_millis(100)) {
                    offsets.insert(message.partition(), message.offset());
                    read.extend(created(&message));
                }
            }
            read
        })
        .await
        .unwrap()
    }
}

fn consumer(kafka: &KafkaArgs) -> BaseConsumer {
    let consumer: BaseConsumer = kafka
        .client_config()
        .set("group.id", unique_name("unwritable_test"))
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut partitions = TopicPartitionList::new();
    for partition in 0..PARTITIONS {
        partitions
            .add_partition_offset(&kafka.kafka_topic, partition, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&partitions).unwrap();
    consumer
}

fn created(message: &impl rdkafka::Message) -> Option<Logged> {
    let event = TweetEvent::decode(message.payload()?).ok()?;
    match event.kind? {
        Kind::Created(created) => Some(Logged {
            partition: message.partition(),
            tweet_id: created.tweet_id,
        }),
        Kind::Deleted(_) => None,
    }
}

/// The outbox's table, read directly: the test's one way to know that the
/// relay has nothing left to send.
struct Outbox {
    session: scylla::client::session::Session,
    keyspace: String,
}

impl Outbox {
    async fn connect(keyspace: &str) -> Self {
        let session = scylla::client::session_builder::SessionBuilder::new()
            .known_node(CQL)
            .build()
            .await
            .unwrap();
        Self {
            session,
            keyspace: keyspace.to_owned(),
        }
    }

    async fn wait_until_empty(&self) {
        let query = format!(
            "SELECT event_id FROM {}.tweet_outbox LIMIT 1",
            self.keyspace
        );
        let deadline = Instant::now() + DEADLINE;
        loop {
            let rows = self
                .session
                .query_unpaged(query.as_str(), ())
                .await
                .unwrap()
                .into_rows_result()
                .unwrap()
                .rows_num();
            if rows == 0 {
                return;
            }
            assert!(Instant::now() < deadline, "the outbox never emptied");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}
