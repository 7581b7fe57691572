//! The fan-out worker against the real stack: a graph service on its own
//! Postgres database, events produced to a fresh Kafka topic, home timelines
//! read back from Redis under a fresh key prefix.
//!
//! Each topic has a single partition, so events are applied in the order they
//! were produced: once a later event shows up in Redis, every earlier one has
//! been applied (or skipped) too. That lets tests check what did *not*
//! happen without sleeping. The consumer-group test is the exception: its
//! topic has several partitions, shared by several workers.
//!
//! Most tests run the worker in process through `fanout::run`; one runs the
//! real `fanout` binary, to see what SIGTERM does to it.
//!
//! Pushes land only in timelines that are cached, so the users the tests
//! create start with a built, empty timeline, as if they had just read it
//! (after their follows: a follow drops the follower's timeline).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chirp_delivery::Delivery;
use chirp_domain::ids::Snowflake;
use chirp_grpc::Channel;
use chirp_kafka::KafkaArgs;
use chirp_proto::events::tweet_event::Kind;
use chirp_proto::events::{TweetCreated, TweetDeleted, TweetEvent};
use chirp_proto::graph::FollowRequest;
use chirp_proto::graph::graph_service_client::GraphServiceClient;
use chirp_stack::spawn_graph;
use chirp_test_support::{
    KAFKA, ServiceProcess, ensure_backends, eventually, fresh_database, local_listener, unique_name,
};
use chirp_timeline_store::{HomeTimelines, State, TimelineStoreArgs};
use clap::Parser;
use prost::Message;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use sqlx::Connection;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The streaming replica of `deploy/backends.sh up pg-replica`.
const REPLICA: &str = "127.0.0.1:5442";

/// How long an event may take to reach Redis before a test fails.
const DEADLINE: Duration = Duration::from_secs(15);

/// One isolated world: its own database, topic, consumer group and key prefix.
struct TestApp {
    database_url: String,
    graph_addr: String,
    graph: GraphServiceClient<Channel>,
    kafka: KafkaArgs,
    group_id: String,
    store: TimelineStoreArgs,
    timelines: HomeTimelines,
    producer: FutureProducer,
    ids: Snowflake,
}

/// A running worker and the means to stop it.
struct Worker {
    stop: oneshot::Sender<()>,
    task: JoinHandle<anyhow::Result<()>>,
}

impl Worker {
    /// Requests a graceful shutdown and waits for the worker to return.
    async fn stop(self) {
        let _ = self.stop.send(());
        let stopped = tokio::time::timeout(DEADLINE, self.task)
            .await
            .expect("the worker stops within the deadline");
        stopped
            .expect("worker task panicked")
            .expect("worker stops cleanly");
    }
}

async fn spawn_app(celebrity_threshold: i64) -> TestApp {
    spawn_app_with_partitions(celebrity_threshold, 1).await
}

/// A world whose topic has `partitions` partitions, for the tests of a
/// consumer group (the others need only one).
async fn spawn_app_with_partitions(celebrity_threshold: i64, partitions: i32) -> TestApp {
    ensure_backends();
    let database_url = fresh_database().await;
    let (listener, graph_addr) = local_listener().await;
    let store = chirp_test_support::timeline_store(&format!("{}:", unique_name("fanout_test")));
    let threshold = celebrity_threshold.to_string();
    let threshold = ["--celebrity-threshold", &threshold];
    spawn_graph(listener, &database_url, &store.redis, &threshold);
    let graph = GraphServiceClient::new(
        chirp_grpc::connect_lazy(&graph_addr, Duration::from_secs(10)).unwrap(),
    );

    let kafka = KafkaArgs {
        kafka_brokers: KAFKA.to_owned(),
        kafka_topic: unique_name("fanout_test"),
        kafka_topic_partitions: partitions,
        kafka_replication_factor: 1,
        kafka_min_insync_replicas: 1,
        kafka_retention_hours: 168,
    };
    kafka.ensure_topic().await.unwrap();
    let producer = kafka.client_config().create().unwrap();

    let timelines = HomeTimelines::connect(&store).await.unwrap();
    TestApp {
        database_url,
        graph_addr,
        graph,
        kafka,
        group_id: unique_name("fanout_test"),
        store,
        timelines,
        producer,
        ids: Snowflake::new(1),
    }
}

impl TestApp {
    fn start_worker(&self, follower_page_size: u32) -> Worker {
        self.start_worker_with_graph(&self.graph_addr, follower_page_size)
    }

    fn start_worker_with_graph(&self, graph_addr: &str, follower_page_size: u32) -> Worker {
        self.start_worker_with_args(&[
            "--graph-addr",
            graph_addr,
            "--follower-page-size",
            &follower_page_size.to_string(),
        ])
    }

    /// A worker of this app's group, topic and key prefix, with `args` on
    /// top (which must name the graph service).
    fn start_worker_with_args(&self, args: &[&str]) -> Worker {
        let mut argv = vec![
            "fanout",
            "--kafka-group-id",
            &self.group_id,
            "--kafka-brokers",
            &self.kafka.kafka_brokers,
            "--kafka-topic",
            &self.kafka.kafka_topic,
        ];
        argv.extend(chirp_test_support::redis_store_flags(&self.store.redis));
        argv.extend_from_slice(args);
        let config = fanout::Config::try_parse_from(argv).unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(fanout::run(config, async {
            let _ = stopped.await;
        }));
        Worker { stop, task }
    }

    /// Creates a user whose timeline is cached (built and empty).
    async fn create_user(&self, handle: &str) -> i64 {
        let user_id = self.create_inactive_user(handle).await;
        self.timelines.store_rebuilt(user_id, &[]).await.unwrap();
        user_id
    }

    /// Creates a user who has never read their timeline: none is cached.
    async fn create_inactive_user(&self, handle: &str) -> i64 {
        chirp_test_support::create_user(&self.graph, handle).await
    }

    /// Creates `count` users who all follow `followee_id`.
    async fn create_followers(&self, followee_id: i64, prefix: &str, count: usize) -> Vec<i64> {
        let mut followers = Vec::new();
        for n in 0..count {
            let follower_id = self.create_user(&format!("{prefix}{n}")).await;
            let follow = FollowRequest {
                follower_id,
                followee_id,
            };
            assert!(
                self.graph
                    .clone()
                    .follow(follow)
                    .await
                    .unwrap()
                    .into_inner()
                    .created
            );
            self.timelines
                .store_rebuilt(follower_id, &[])
                .await
                .unwrap();
            followers.push(follower_id);
        }
        followers
    }

    async fn produce(&self, key: i64, payload: Vec<u8>) {
        let key = key.to_string();
        let record = FutureRecord::to(&self.kafka.kafka_topic)
            .key(&key)
            .payload(&payload);
        self.producer
            .send(record, Duration::from_secs(5))
            .await
            .expect("event delivered to Kafka");
    }

    /// Produces a new tweet by `author_id` and returns its id.
    async fn tweet(&self, author_id: i64) -> i64 {
        let tweet_id = self.ids.next_id();
        self.produce_created(tweet_id, author_id).await;
        tweet_id
    }

    async fn produce_created(&self, tweet_id: i64, author_id: i64) {
        let created = Kind::Created(TweetCreated {
            tweet_id,
            author_id,
            created_at_ms: chirp_domain::ids::timestamp_ms(tweet_id),
        });
        self.produce(
            author_id,
            TweetEvent {
                kind: Some(created),
            }
            .encode_to_vec(),
        )
        .await;
    }

    async fn produce_deleted(&self, tweet_id: i64, author_id: i64) {
        let deleted = Kind::Deleted(TweetDeleted {
            tweet_id,
            author_id,
        });
        self.produce(
            author_id,
            TweetEvent {
                kind: Some(deleted),
            }
            .encode_to_vec(),
        )
        .await;
    }

    /// The real `fanout` binary as one more worker of this app's group,
    /// configured the way a container is: by environment.
    fn start_worker_process(&self, follower_page_size: u32) -> ServiceProcess {
        let follower_page_size = follower_page_size.to_string();
        ServiceProcess::start(
            env!("CARGO_BIN_EXE_fanout"),
            &[
                ("GRAPH_ADDR", &self.graph_addr),
                ("KAFKA_GROUP_ID", &self.group_id),
                ("FOLLOWER_PAGE_SIZE", &follower_page_size),
                ("KAFKA_BROKERS", &self.kafka.kafka_brokers),
                ("KAFKA_TOPIC", &self.kafka.kafka_topic),
                ("REDIS_URL", &self.store.redis.redis_url),
                ("REDIS_KEY_PREFIX", &self.store.redis.redis_key_prefix),
            ],
        )
    }

    /// The offset the group committed on the topic's partition, if any: the
    /// first event a restarted worker gets.
    async fn committed_offset(&self) -> Option<i64> {
        let client: BaseConsumer = self
            .kafka
            .client_config()
            .set("group.id", &self.group_id)
            .create()
            .unwrap();
        let mut partitions = TopicPartitionList::new();
        partitions.add_partition(&self.kafka.kafka_topic, 0);
        let committed = tokio::task::spawn_blocking(move || {
            client.committed_offsets(partitions, Duration::from_secs(10))
        })
        .await
        .unwrap()
        .expect("the group's committed offsets");
        match committed.elements()[0].offset() {
            Offset::Offset(offset) => Some(offset),
            _ => None,
        }
    }

    /// The partitions of this app's topic owned by each member of its
    /// consumer group, once the group has `members` members that all own
    /// some and together own all `partitions` (a rebalance in progress
    /// shows members with none, or a member's assignment from before).
    async fn wait_for_group(&self, members: usize, partitions: i32) -> Vec<Vec<i32>> {
        let client: Arc<BaseConsumer> = Arc::new(self.kafka.client_config().create().unwrap());
        let started = Instant::now();
        loop {
            let (client, group, topic) = (
                Arc::clone(&client),
                self.group_id.clone(),
                self.kafka.kafka_topic.clone(),
            );
            let owned: Vec<Vec<i32>> = tokio::task::spawn_blocking(move || {
                let Ok(list) = client.fetch_group_list(Some(&group), Duration::from_secs(5)) else {
                    return Vec::new();
                };
                list.groups()
                    .iter()
                    .flat_map(|group| group.members())
                    .map(|member| assigned_partitions(member.assignment().unwrap_or(&[]), &topic))
                    .collect()
            })
            .await
            .unwrap();
            let mut all = owned.concat();
            all.sort_unstable();
            if owned.len() == members
                && owned.iter().all(|owned| !owned.is_empty())
                && all == (0..partitions).collect::<Vec<_>>()
            {
                return owned;
            }
            assert!(
                started.elapsed() < DEADLINE * 2,
                "the group did not settle on {members} members owning partitions: {owned:?}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The delivery record of `tweet_id`, as the gateway reads it, once its
    /// (single) page is recorded: the worker writes it after the timelines.
    async fn delivery(&self, tweet_id: i64) -> Delivery {
        self.delivery_when(tweet_id, |record| record.first_write_ms.is_some())
            .await
    }

    /// The delivery record of `tweet_id` once `done` holds for it.
    async fn delivery_when(&self, tweet_id: i64, done: impl Fn(&Delivery) -> bool) -> Delivery {
        let redis = chirp_redis::connection::RedisConnection::connect(
            &self.store.redis.target(),
            self.store.redis.response_timeout(),
        )
        .await
        .unwrap();
        let log = chirp_delivery::DeliveryLog::new(redis, &self.store.redis.redis_key_prefix);
        eventually(DEADLINE, "the delivery record", || async {
            let record = log.read(tweet_id).await.unwrap()?;
            done(&record).then_some(record)
        })
        .await
    }

    async fn timeline(&self, user_id: i64) -> Vec<i64> {
        self.timelines.page(user_id, None, 1000).await.unwrap()
    }

    /// Polls the timelines of `user_ids` until `done` holds for every one of
    /// them, and fails the test if that takes longer than [`DEADLINE`].
    async fn wait_until(&self, user_ids: &[i64], done: impl Fn(&[i64]) -> bool) {
        let started = Instant::now();
        loop {
            let mut pending = Vec::new();
            for &user_id in user_ids {
                let timeline = self.timeline(user_id).await;
                if !done(&timeline) {
                    pending.push((user_id, timeline));
                }
            }
            if pending.is_empty() {
                return;
            }
            assert!(
                started.elapsed() < DEADLINE,
                "timelines (user, tweet ids) still not as expected after {DEADLINE:?}: {pending:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// The partitions of `topic` in a member's assignment, as the Kafka consumer
/// protocol encodes it: a version (i16), then an array (i32 length) of
/// topics, each a string (i16 length) and an array of partitions (i32s).
fn assigned_partitions(assignment: &[u8], topic: &str) -> Vec<i32> {
    fn take<const N: usize>(bytes: &mut &[u8]) -> Option<[u8; N]> {
        let (head, rest) = bytes.split_first_chunk::<N>()?;
        *bytes = rest;
        Some(*head)
    }
    let mut bytes = assignment;
    let mut owned = Vec::new();
    let parse = |bytes: &mut &[u8], owned: &mut Vec<i32>| -> Option<()> {
        take::<2>(bytes)?;
        for _ in 0..i32::from_be_bytes(take::<4>(bytes)?) {
            let name_len = usize::from(u16::from_be_bytes(take::<2>(bytes)?));
            let (name, rest) = bytes.split_at_checked(name_len)?;
            *bytes = rest;
            for _ in 0..i32::from_be_bytes(take::<4>(bytes)?) {
                let partition = i32::from_be_bytes(take::<4>(bytes)?);
                if name == topic.as_bytes() {
                    owned.push(partition);
                }
            }
        }
        Some(())
    };
    let _ = parse(&mut bytes, &mut owned);
    owned.sort_unstable();
    owned
}

fn everyone(author_id: i64, followers: &[i64]) -> Vec<i64> {
    [author_id]
        .into_iter()
        .chain(followers.iter().copied())
        .collect()
}

#[tokio::test]
async fn a_tweet_reaches_the_author_and_every_follower_across_pages() {
    let app = spawn_app(10_000).await;
    let author = app.create_user("author").await;
    let followers = app.create_followers(author, "follower", 5).await;
    let stranger = app.create_user("stranger").await;
    let worker = app.start_worker(2);

    let tweet = app.tweet(author).await;

    app.wait_until(&everyone(author, &followers), |timeline| {
        timeline == [tweet]
    })
    .await;
    assert!(
        app.timeline(stranger).await.is_empty(),
        "a non-follower got the tweet"
    );
    worker.stop().await;
}

#[tokio::test]
async fn timelines_list_the_newest_tweets_first() {
    let app = spawn_app(10_000).await;
    let author = app.create_user("author").await;
    let followers = app.create_followers(author, "follower", 1).await;
    let worker = app.start_worker(1000);

    let mut tweets = Vec::new();
    for _ in 0..3 {
        tweets.push(app.tweet(author).await);
    }

    tweets.reverse();
    app.wait_until(&everyone(author, &followers), |timeline| timeline == tweets)
        .await;
    worker.stop().await;
}

#[tokio::test]
async fn a_deleted_tweet_leaves_every_timeline() {
    let app = spawn_app(10_000).await;
    let author = app.create_user("author").await;
    let followers = app.create_followers(author, "follower", 5).await;
    let audience = everyone(author, &followers);
    let worker = app.start_worker(2);
    let kept = app.tweet(author).await;
    let deleted = app.tweet(author).await;
    app.wait_until(&audience, |timeline| timeline == [deleted, kept])
        .await;

    app.produce_deleted(deleted, author).await;

    app.wait_until(&audience, |timeline| timeline == [kept])
        .await;
    worker.stop().await;
}

#[tokio::test]
async fn replayed_events_leave_timelines_unchanged() {
    let app = spawn_app(10_000).await;
    let author = app.create_user("author").await;
    let followers = app.create_followers(author, "follower", 3).await;
    let audience = everyone(author, &followers);
    let worker = app.start_worker(2);
    let (first, second, deleted) = (app.ids.next_id(), app.ids.next_id(), app.ids.next_id());

    for _ in 0..2 {
        app.produce_created(first, author).await;
        app.produce_created(second, author).await;
        app.produce_created(deleted, author).await;
        app.produce_deleted(deleted, author).await;
    }
    let last = app.tweet(author).await;

    app.wait_until(&audience, |timeline| timeline.contains(&last))
        .await;
    for user_id in audience {
        assert_eq!(app.timeline(user_id).await, [last, second, first]);
    }
    worker.stop().await;
}

#[tokio::test]
async fn celebrity_tweets_are_not_pushed() {
    let app = spawn_app(2).await;
    let celebrity = app.create_user("celebrity").await;
    let fans = app.create_followers(celebrity, "fan", 2).await;
    let author = app.create_user("author").await;
    let followers = app.create_followers(author, "follower", 1).await;
    let worker = app.start_worker(1000);

    let celebrity_tweet = app.tweet(celebrity).await;
    let later = app.tweet(author).await;

    app.wait_until(&everyone(author, &followers), |timeline| {
        timeline == [later]
    })
    .await;
    assert_eq!(
        app.timeline(celebrity).await,
        [celebrity_tweet],
        "the author's own timeline holds it"
    );
    for user_id in fans {
        assert!(
            app.timeline(user_id).await.is_empty(),
            "a celebrity tweet was pushed"
        );
    }
    worker.stop().await;
}

/// The one kind of event that can never be applied goes to the dead-letter
/// topic, and the events behind it are applied.
#[tokio::test]
async fn undecodable_events_are_dead_lettered_and_skipped() {
    let app = spawn_app(10_000).await;
    let author = app.create_user("author").await;
    let worker = app.start_worker(1000);

    app.produce(author, b"\xff\xff\xff not a protobuf".to_vec())
        .await;
    app.produce(author, TweetEvent { kind: None }.encode_to_vec())
        .await;
    let tweet = app.tweet(author).await;

    app.wait_until(&[author], |timeline| timeline == [tweet])
        .await;
    let (payload, reason) = app.first_dead_letter().await;
    assert_eq!(payload, b"\xff\xff\xff not a protobuf");
    assert!(reason.starts_with("undecodable"), "{reason}");
    assert_eq!(app.dead_letters().await, 2);
    worker.stop().await;
}

#[tokio::test]
async fn events_of_unknown_users_are_skipped() {
    let app = spawn_app(10_000).await;
    let author = app.create_user("author").await;
    let worker = app.start_worker(1000);

    let ghost = author + 1_000_000;
    app.tweet(ghost).await;
    let tweet = app.tweet(author).await;

    // The author's later tweet arrived, so the ghost's event is behind the
    // worker; and it was skipped, not dead-lettered (it has nobody to reach,
    // which is not a failure).
    app.wait_until(&[author], |timeline| timeline == [tweet])
        .await;
    assert_eq!(app.dead_letters().await, 0, "the ghost's event was skipped");
    worker.stop().await;
}

#[tokio::test]
async fn events_wait_out_a_graph_outage() {
    let app = spawn_app(10_000).await;
    let author = app.create_user("author").await;
    let followers = app.create_followers(author, "follower", 2).await;
    // A second graph replica that accepts connections but does not answer yet.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let worker = app.start_worker_with_graph(&listener.local_addr().unwrap().to_string(), 1000);

    let tweet = app.tweet(author).await;
    refuse_one_connection(&listener).await;
    let threshold = ["--celebrity-threshold", "10000"];
    spawn_graph(listener, &app.database_url, &app.store.redis, &threshold);

    app.wait_until(&everyone(author, &followers), |timeline| {
        timeline == [tweet]
    })
    .await;
    worker.stop().await;
}

#[tokio::test]
async fn an_event_interrupted_by_shutdown_is_delivered_again() {
    let app = spawn_app(10_000).await;
    let author = app.create_user("author").await;
    let followers = app.create_followers(author, "follower", 2).await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let stuck = app.start_worker_with_graph(&listener.local_addr().unwrap().to_string(), 1000);
    let tweet = app.tweet(author).await;
    refuse_one_connection(&listener).await;

    stuck.stop().await;
    let worker = app.start_worker(1000);

    app.wait_until(&everyone(author, &followers), |timeline| {
        timeline == [tweet]
    })
    .await;
    worker.stop().await;
}

/// Waits for a worker to dial the graph replica behind `listener`, which it
/// does only once it holds an event, and hangs up on it.
async fn refuse_one_connection(listener: &TcpListener) {
    let accepted = tokio::time::timeout(DEADLINE, listener.accept()).await;
    let (connection, _) = accepted.expect("the worker dials the graph").unwrap();
    drop(connection);
}

#[tokio::test]
async fn a_restarted_worker_resumes_after_the_last_processed_event() {
    let app = spawn_app(10_000).await;
    let author = app.create_user("author").await;
    let followers = app.create_followers(author, "follower", 2).await;
    let audience = everyone(author, &followers);
    let worker = app.start_worker(1000);
    let before = app.tweet(author).await;
    app.wait_until(&audience, |timeline| timeline == [before])
        .await;
    worker.stop().await;

    // Erased by hand: if the next worker replayed the committed event, it
    // would come back.
    app.timelines.remove(&audience, before).await.unwrap();
    let during = app.tweet(author).await;
    let worker = app.start_worker(1000);
    let after = app.tweet(author).await;

    app.wait_until(&audience, |timeline| timeline == [after, during])
        .await;
    worker.stop().await;
}

/// Several workers as one consumer group: the topic's partitions (keyed by
/// author) are split between them, every tweet reaches every follower, and
/// when one worker stops the other takes over its partitions.
#[tokio::test]
async fn workers_of_one_group_split_the_partitions_and_take_over_a_stopped_ones() {
    const PARTITIONS: i32 = 4;
    let app = spawn_app_with_partitions(10_000, PARTITIONS).await;
    let mut authors = Vec::new();
    for n in 0..8 {
        let author = app.create_user(&format!("author{n}")).await;
        let followers = app
            .create_followers(author, &format!("a{n}follower"), 2)
            .await;
        authors.push((author, everyone(author, &followers)));
    }
    let first = app.start_worker(1000);
    let second = app.start_worker(1000);
    app.wait_for_group(2, PARTITIONS).await;

    let mut posted = BTreeMap::new();
    for (author, _) in &authors {
        posted.insert(*author, vec![app.tweet(*author).await]);
    }
    for (author, audience) in &authors {
        let expected = posted[author].clone();
        app.wait_until(audience, |timeline| timeline == expected)
            .await;
    }

    first.stop().await;
    app.wait_for_group(1, PARTITIONS).await;
    for (author, _) in &authors {
        let tweet = app.tweet(*author).await;
        posted.get_mut(author).unwrap().insert(0, tweet);
    }
    for (author, audience) in &authors {
        let expected = posted[author].clone();
        app.wait_until(audience, |timeline| timeline == expected)
            .await;
    }
    second.stop().await;
}

#[tokio::test]
async fn a_terminated_worker_process_commits_what_it_applied_and_exits_cleanly() {
    let app = spawn_app(10_000).await;
    let author = app.create_user("author").await;
    let followers = app.create_followers(author, "follower", 3).await;
    let audience = everyone(author, &followers);
    let process = app.start_worker_process(2);
    let mut tweets = vec![app.tweet(author).await];
    app.wait_until(&[author], |timeline| timeline == tweets)
        .await;

    // Events keep flowing before, during and after the signal.
    for n in 0..30 {
        if n == 15 {
            process.terminate();
        }
        tweets.push(app.tweet(author).await);
    }
    let exit = process.exit_within(DEADLINE).await;
    assert!(exit.status.success(), "the worker exited with {exit:?}");

    // Applied events form a prefix of the partition, each in full (every
    // page), and the group committed exactly that prefix: nothing applied
    // will be replayed, nothing committed is missing.
    let applied = app.timeline(author).await.len();
    assert_eq!(
        app.committed_offset().await,
        Some(applied as i64),
        "committed offset vs. events applied; worker output:\n{}",
        exit.output
    );
    let expected: Vec<i64> = tweets[..applied].iter().rev().copied().collect();
    for &user_id in &audience {
        assert_eq!(app.timeline(user_id).await, expected, "user {user_id}");
    }
    assert!(
        applied < tweets.len(),
        "the worker took events after SIGTERM: it applied all {applied}"
    );

    // A new worker of the group takes the rest; each tweet is in every
    // timeline once.
    let worker = app.start_worker(2);
    tweets.reverse();
    app.wait_until(&audience, |timeline| timeline == tweets)
        .await;
    worker.stop().await;
}

#[tokio::test]
async fn consumer_lag_and_batch_sizes_are_measured() {
    // Every test's topic has a partition 0, so one recorder for the whole
    // binary would mix the tests' lags up. This test records into its own,
    // local to the test's thread, where `#[tokio::test]` runs the worker too.
    let recorder = chirp_runtime::metrics::builder().build_recorder();
    let metrics = recorder.handle();
    let _recording = metrics::set_default_local_recorder(&recorder);
    let app = spawn_app(10_000).await;
    let author = app.create_user("author").await;
    app.create_followers(author, "follower", 3).await;
    // A backlog before any worker of the group exists.
    for _ in 0..5 {
        app.tweet(author).await;
    }
    let worker = app.start_worker_with_args(&[
        "--graph-addr",
        &app.graph_addr,
        "--follower-page-size",
        "2",
        "--consumer-lag-interval-ms",
        "100",
    ]);

    // The lag starts at the backlog and falls to 0 once every event is
    // applied and committed (the commit comes within 5 s).
    let started = Instant::now();
    let mut lags = Vec::new();
    while lags.last() != Some(&0.0) {
        let reading = series(&metrics.render(), "chirp_fanout_consumer_lag");
        assert!(
            reading.len() <= 1,
            "one series per partition of the topic, got {reading:?}"
        );
        if let Some(&lag) = reading.get(r#"partition="0""#)
            && lags.last() != Some(&lag)
        {
            lags.push(lag);
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the lag went {lags:?} and never reached 0"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        lags.first(),
        Some(&5.0),
        "the backlog, then down to 0: {lags:?}"
    );
    assert!(
        lags.is_sorted_by(|a, b| a >= b),
        "the lag only fell: {lags:?}"
    );

    // Per event: the author with the first page of 2 followers, then the
    // last follower.
    let rendered = metrics.render();
    let batches = series(&rendered, "chirp_fanout_batch_size_count");
    let entries = series(&rendered, "chirp_fanout_batch_size_sum");
    assert_eq!(batches.get(""), Some(&10.0), "{rendered}");
    assert_eq!(entries.get(""), Some(&20.0), "{rendered}");
    worker.stop().await;
}

/// The value of each series of metric `name` in a Prometheus text rendering,
/// keyed by its labels (`partition="0"`, or empty).
fn series(rendered: &str, name: &str) -> BTreeMap<String, f64> {
    rendered
        .lines()
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let labels = match series.strip_prefix(name)? {
                "" => "",
                labels => labels.strip_prefix('{')?.strip_suffix('}')?,
            };
            Some((labels.to_owned(), value.parse().ok()?))
        })
        .collect()
}

#[tokio::test]
async fn a_push_skips_followers_whose_timeline_is_not_cached_and_counts_them() {
    // A recorder local to the test's thread (see the lag test).
    let recorder = chirp_runtime::metrics::builder().build_recorder();
    let metrics = recorder.handle();
    let _recording = metrics::set_default_local_recorder(&recorder);
    let app = spawn_app(10_000).await;
    let author = app.create_user("author").await;
    let reader = app.create_followers(author, "reader", 1).await[0];
    let sleeper = app.create_inactive_user("sleeper").await;
    app.graph
        .clone()
        .follow(FollowRequest {
            follower_id: sleeper,
            followee_id: author,
        })
        .await
        .unwrap();
    let worker = app.start_worker(1000);

    let tweet = app.tweet(author).await;

    app.wait_until(&[author, reader], |timeline| timeline == [tweet])
        .await;
    let sleeper_timeline = app.timelines.read(sleeper, None, 10).await.unwrap();
    assert_eq!(sleeper_timeline.state, State::Missing, "no key was created");
    let rendered = metrics.render();
    let skipped = series(&rendered, "chirp_fanout_skipped_writes_total");
    assert_eq!(
        skipped.get(r#"reason="not_cached""#),
        Some(&1.0),
        "{rendered}"
    );
    let writes = series(&rendered, "chirp_fanout_timeline_writes_total");
    assert_eq!(writes.get(r#"change="push""#), Some(&2.0), "{rendered}");
    worker.stop().await;
}

/// Issue 22, activity by last read: with `--active-window-secs`, a follower
/// whose timeline is cached but who has not read within the window gets no
/// write, counted as `inactive`; one who read gets the tweet.
#[tokio::test]
async fn with_an_activity_window_only_followers_who_read_within_it_are_pushed_to() {
    // A recorder local to the test's thread (see the lag test).
    let recorder = chirp_runtime::metrics::builder().build_recorder();
    let metrics = recorder.handle();
    let _recording = metrics::set_default_local_recorder(&recorder);
    let app = spawn_app(10_000).await;
    let author = app.create_user("author").await;
    let [reader, idle]: [i64; 2] = app
        .create_followers(author, "follower", 2)
        .await
        .try_into()
        .unwrap();
    // A first read, as the timeline service makes it: its rebuild records
    // the reader as active.
    let window = TimelineStoreArgs {
        active_window_secs: 60,
        ..app.store.clone()
    };
    let reads = HomeTimelines::connect(&window).await.unwrap();
    for user in [author, reader] {
        reads.store_rebuilt(user, &[]).await.unwrap();
    }
    let worker = app.start_worker_with_args(&[
        "--graph-addr",
        &app.graph_addr,
        "--active-window-secs",
        "60",
    ]);

    let tweet = app.tweet(author).await;

    // One event, one pipeline: once the reader has it, the idle follower
    // was handled too.
    app.wait_until(&[author, reader], |timeline| timeline == [tweet])
        .await;
    assert!(
        app.timeline(idle).await.is_empty(),
        "an inactive follower was written"
    );
    // Recorded after the counters.
    let delivery = app.delivery(tweet).await;
    assert_eq!((delivery.pushed, delivery.skipped_inactive), (1, 1));
    let rendered = metrics.render();
    let skipped = series(&rendered, "chirp_fanout_skipped_writes_total");
    assert_eq!(
        skipped.get(r#"reason="inactive""#),
        Some(&1.0),
        "{rendered}"
    );
    worker.stop().await;
}

/// Issue 22, DeathStarBench's fan-out: with `--push-uncached`, a follower
/// who has no cached timeline gets one opened by the push, as being
/// rebuilt, so their first read still rebuilds it (and keeps the tweet).
#[tokio::test]
async fn pushing_to_every_follower_opens_the_timelines_of_those_who_do_not_read() {
    let app = spawn_app(10_000).await;
    let author = app.create_user("author").await;
    let sleeper = app.create_inactive_user("sleeper").await;
    app.graph
        .clone()
        .follow(FollowRequest {
            follower_id: sleeper,
            followee_id: author,
        })
        .await
        .unwrap();
    let worker =
        app.start_worker_with_args(&["--graph-addr", &app.graph_addr, "--push-uncached", "true"]);

    let tweet = app.tweet(author).await;

    app.wait_until(&[author, sleeper], |timeline| timeline == [tweet])
        .await;
    let opened = app.timelines.read(sleeper, None, 10).await.unwrap();
    assert_eq!(opened.state, State::Rebuilding, "served only once rebuilt");
    let delivery = app.delivery(tweet).await;
    assert_eq!((delivery.pushed, delivery.skipped_inactive), (1, 0));
    worker.stop().await;
}

/// Issue 22, Bluesky's lossy timelines: with `--lossy-fanout-limit 1`, a
/// follower of two accounts gets each tweet with probability 1/2, one of
/// one account gets them all; the drops are counted, in the metrics and
/// the delivery records, and replaying the events drops the same writes.
#[tokio::test]
async fn a_lossy_fanout_drops_writes_to_followers_of_many_accounts_the_same_way_twice() {
    const TWEETS: usize = 24;
    let recorder = chirp_runtime::metrics::builder().build_recorder();
    let metrics = recorder.handle();
    let _recording = metrics::set_default_local_recorder(&recorder);
    let app = spawn_app(10_000).await;
    let author = app.create_user("author").await;
    let other = app.create_user("other").await;
    let light = app.create_followers(author, "light", 1).await[0];
    let heavy = app.create_followers(author, "heavy", 1).await[0];
    let follow = FollowRequest {
        follower_id: heavy,
        followee_id: other,
    };
    app.graph.clone().follow(follow).await.unwrap();
    app.timelines.store_rebuilt(heavy, &[]).await.unwrap();
    let worker =
        app.start_worker_with_args(&["--graph-addr", &app.graph_addr, "--lossy-fanout-limit", "1"]);

    let mut tweets = Vec::new();
    for _ in 0..TWEETS {
        tweets.push(app.tweet(author).await);
    }
    tweets.reverse();
    app.wait_until(&[author, light], |timeline| timeline == tweets)
        .await;

    let kept = app.timeline(heavy).await;
    assert!(
        !kept.is_empty() && kept.len() < TWEETS,
        "about half of {TWEETS} kept, got {}",
        kept.len()
    );
    let dropped = (TWEETS - kept.len()) as f64;
    let rendered = metrics.render();
    let skipped = series(&rendered, "chirp_fanout_skipped_writes_total");
    assert_eq!(
        skipped.get(r#"reason="lossy""#),
        Some(&dropped),
        "{rendered}"
    );
    let mut firsts = Vec::new();
    for &tweet in &tweets {
        firsts.push(app.delivery(tweet).await);
    }
    let recorded: u64 = firsts.iter().map(|record| record.skipped_lossy).sum();
    assert_eq!(recorded as f64, dropped);

    // The same events again (applied in any order: wait for each record to
    // count its replay, written after the replay's timelines).
    for &tweet in tweets.iter().rev() {
        app.produce_created(tweet, author).await;
    }
    let handled = |record: &Delivery| record.pushed + record.skipped_lossy;
    for (&tweet, first) in tweets.iter().zip(&firsts) {
        let replayed = app
            .delivery_when(tweet, |record| handled(record) == 2 * handled(first))
            .await;
        assert_eq!(
            replayed.skipped_lossy,
            2 * first.skipped_lossy,
            "tweet {tweet}"
        );
    }
    assert_eq!(
        app.timeline(heavy).await,
        kept,
        "a replay drops exactly the same writes"
    );
    worker.stop().await;
}

/// Issue 10: a `TweetCreated` handled after its `TweetDeleted` (a replay
/// after a rebalance, say) must not push the deleted tweet back.
#[tokio::test]
async fn a_tweet_created_again_after_its_deletion_is_not_pushed_back() {
    let app = spawn_app(10_000).await;
    let author = app.create_user("author").await;
    let followers = app.create_followers(author, "follower", 2).await;
    let worker = app.start_worker(1000);
    let deleted = app.ids.next_id();

    app.produce_created(deleted, author).await;
    app.produce_deleted(deleted, author).await;
    app.produce_created(deleted, author).await;
    let later = app.tweet(author).await;

    app.wait_until(&everyone(author, &followers), |timeline| {
        timeline == [later]
    })
    .await;
    worker.stop().await;
}

#[tokio::test]
async fn deleting_a_celebrity_tweet_does_not_walk_the_followers() {
    // A recorder local to the test's thread (see the lag test).
    let recorder = chirp_runtime::metrics::builder().build_recorder();
    let metrics = recorder.handle();
    let _recording = metrics::set_default_local_recorder(&recorder);
    let app = spawn_app(2).await;
    let celebrity = app.create_user("celebrity").await;
    app.create_followers(celebrity, "fan", 3).await;
    let worker = app.start_worker(1);
    let tweet = app.tweet(celebrity).await;

    app.produce_deleted(tweet, celebrity).await;
    let later = app.tweet(celebrity).await;

    app.wait_until(&[celebrity], |timeline| timeline == [later])
        .await;
    let rendered = metrics.render();
    let writes = series(&rendered, "chirp_fanout_timeline_writes_total");
    assert_eq!(
        writes.get(r#"change="remove""#),
        Some(&1.0),
        "the author's timeline only: {rendered}"
    );
    worker.stop().await;
}

/// Issue 19, defect 2: an event Redis refuses for the data it holds (the
/// author's timeline key holds a string, so every write to it fails with
/// `WRONGTYPE`) is not dead-lettered, where its tweet would be lost to every
/// follower: it is retried until the data is mended. (Before the fix it was
/// dead-lettered after three attempts.) The event behind it, on the same
/// partition, does not wait for it, but the partition's offset does: a
/// worker stopped meanwhile leaves the refused event to the next one.
#[tokio::test]
async fn an_event_refused_for_its_data_is_retried_until_the_data_is_mended() {
    // A recorder local to the test's thread (see the lag test).
    let recorder = chirp_runtime::metrics::builder().build_recorder();
    let metrics = recorder.handle();
    let _recording = metrics::set_default_local_recorder(&recorder);
    let app = spawn_app(10_000).await;
    let author = app.create_user("author").await;
    let bystander = app.create_user("bystander").await;
    let worker = app.start_worker(1000);
    let first = app.tweet(author).await;
    app.wait_until(&[author], |timeline| timeline == [first])
        .await;

    // Make each of the author's timeline keys a string (the bystander's,
    // and the store's other keys, stay as they are).
    let client = redis::Client::open(app.store.redis.redis_url.as_str()).unwrap();
    let mut redis = client.get_multiplexed_async_connection().await.unwrap();
    let pattern = format!("{}tl:{{{author}}}*", app.store.redis.redis_key_prefix);
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(&pattern)
        .query_async(&mut redis)
        .await
        .unwrap();
    assert!(!keys.is_empty(), "the author's timeline is in Redis");
    for key in &keys {
        let () = redis::cmd("SET")
            .arg(key)
            .arg("not a timeline")
            .query_async(&mut redis)
            .await
            .unwrap();
    }

    let refused = app.tweet(author).await;
    let after = app.tweet(bystander).await;
    wait_for_retries(|| metrics.render(), 4.0).await;
    // The event behind the refused one does not wait for it.
    app.wait_until(&[bystander], |timeline| timeline == [after])
        .await;
    worker.stop().await;

    // Mended: the strings go, and the author reads (a rebuilt timeline).
    let () = redis::cmd("DEL")
        .arg(&keys)
        .query_async(&mut redis)
        .await
        .unwrap();
    app.timelines.store_rebuilt(author, &[]).await.unwrap();
    let worker = app.start_worker(1000);
    app.wait_until(&[author], |timeline| timeline == [refused])
        .await;
    assert_eq!(app.dead_letters().await, 0, "nothing was dead-lettered");
    worker.stop().await;
}

/// Issue 19, defect 2: a failure Postgres reports as passing (here `57014`,
/// a statement timing out behind a lock an operator holds on the follows)
/// is retried for as long as it lasts, and the event then reaches every
/// follower; nothing is dead-lettered. (Before the fix the graph answered
/// `Internal`, and the event was dead-lettered after three attempts.)
#[tokio::test]
async fn an_event_is_retried_through_a_postgres_fault_until_it_ends() {
    let recorder = chirp_runtime::metrics::builder().build_recorder();
    let metrics = recorder.handle();
    let _recording = metrics::set_default_local_recorder(&recorder);
    let app = spawn_app(10_000).await;
    let author = app.create_user("author").await;
    let followers = app.create_followers(author, "follower", 2).await;
    // A graph replica whose statements give up after 200 ms: new sessions
    // of this test's own database take the setting.
    let mut postgres = sqlx::PgConnection::connect(&app.database_url)
        .await
        .unwrap();
    let database = app.database_url.rsplit('/').next().unwrap();
    // The name is the test's own fresh database's.
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "ALTER DATABASE \"{database}\" SET statement_timeout = '200ms'"
    )))
    .execute(&mut postgres)
    .await
    .unwrap();
    let (listener, graph_addr) = local_listener().await;
    let threshold = ["--celebrity-threshold", "10000"];
    spawn_graph(listener, &app.database_url, &app.store.redis, &threshold);
    let worker = app.start_worker_with_graph(&graph_addr, 1000);

    let mut lock = postgres.begin().await.unwrap();
    sqlx::raw_sql("LOCK TABLE follows IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *lock)
        .await
        .unwrap();
    let tweet = app.tweet(author).await;
    wait_for_retries(|| metrics.render(), 4.0).await;
    lock.rollback().await.unwrap();

    app.wait_until(&everyone(author, &followers), |timeline| {
        timeline == [tweet]
    })
    .await;
    assert_eq!(app.dead_letters().await, 0, "nothing was dead-lettered");
    worker.stop().await;
}

/// Issue 19, defect 2: `fanout replay-dead-letters` copies the letters back
/// into the events topic, where the worker applies them as any event, and
/// remembers how far it got: a second run replays nothing.
#[tokio::test]
async fn replayed_dead_letters_reach_the_followers_timelines() {
    let app = spawn_app(10_000).await;
    let author = app.create_user("author").await;
    let followers = app.create_followers(author, "follower", 2).await;
    let worker = app.start_worker(1000);
    // A letter as a worker of the old rules dead-lettered it: a good
    // event, taken for a poison one during an outage.
    let dead_letters = KafkaArgs {
        kafka_topic: format!("{}-dead-letter", app.kafka.kafka_topic),
        ..app.kafka.clone()
    };
    dead_letters.ensure_topic().await.unwrap();
    let tweet = app.ids.next_id();
    let created = Kind::Created(TweetCreated {
        tweet_id: tweet,
        author_id: author,
        created_at_ms: chirp_domain::ids::timestamp_ms(tweet),
    });
    let payload = TweetEvent {
        kind: Some(created),
    }
    .encode_to_vec();
    let key = author.to_string();
    let headers = OwnedHeaders::new().insert(Header {
        key: "chirp-dead-letter-reason",
        value: Some("graph service answered Internal: internal"),
    });
    let record = FutureRecord::to(&dead_letters.kafka_topic)
        .key(&key)
        .payload(&payload)
        .headers(headers);
    app.producer
        .send(record, Duration::from_secs(5))
        .await
        .expect("dead letter written");

    let replay = replay_args(&app);
    let mut reported = Vec::new();
    let replayed = fanout::replay::replay_dead_letters(&replay, |progress| reported.push(progress))
        .await
        .unwrap();
    assert_eq!(replayed.letters, 1, "{replayed}");
    assert_eq!(
        reported
            .last()
            .map(|progress| (progress.replayed, progress.total)),
        Some((1, 1))
    );
    app.wait_until(&everyone(author, &followers), |timeline| {
        timeline == [tweet]
    })
    .await;

    let again = fanout::replay::replay_dead_letters(&replay, |_| {})
        .await
        .unwrap();
    assert_eq!(again.letters, 0, "a second run replays only new letters");
    worker.stop().await;
}

/// The flags of `fanout replay-dead-letters` for this app's topic, parsed as
/// the command line parses them, with a replay group of the test's own.
fn replay_args(app: &TestApp) -> fanout::replay::ReplayArgs {
    let group = unique_name("replay_test");
    let cli = fanout::Cli::try_parse_from([
        "fanout",
        "replay-dead-letters",
        "--kafka-brokers",
        &app.kafka.kafka_brokers,
        "--kafka-topic",
        &app.kafka.kafka_topic,
        "--replay-group-id",
        &group,
    ])
    .unwrap();
    match cli.command {
        Some(fanout::Command::ReplayDeadLetters(args)) => args,
        None => panic!("the replay command parses"),
    }
}

/// Waits until the worker has retried events `attempts` times in all, by its
/// events metric (`render`ed by the test's recorder).
async fn wait_for_retries(render: impl Fn() -> String, attempts: f64) {
    eventually(DEADLINE, "the worker retrying", || async {
        let rendered = render();
        let events = series(&rendered, "chirp_fanout_events_total");
        events
            .get(r#"outcome="retried""#)
            .is_some_and(|&retried| retried >= attempts)
            .then_some(())
    })
    .await;
}

/// Issue 19, defect 3: with a read replica configured, a follow that the
/// replica has not replayed yet (its WAL replay is paused) is in the
/// fan-out's follower listing all the same: the next tweet reaches the new
/// follower, whose timeline was rebuilt right after the follow. (Before the
/// fix the listing came from the replica, and the tweet never reached them.)
#[tokio::test]
async fn a_follow_the_replica_has_not_replayed_yet_still_gets_the_next_tweet() {
    chirp_test_support::ensure_scale_out("pg-replica");
    let app = spawn_app(10_000).await;
    let author = app.create_user("author").await;
    let reader = app.create_user("reader").await;
    let database = app.database_url.rsplit('/').next().unwrap();
    let replica_url = format!("postgres://postgres@{REPLICA}/{database}");
    // The users reach the replica through the WAL, like any write.
    let mut replica = eventually(
        Duration::from_secs(60),
        "the users on the replica",
        || async {
            let mut replica = sqlx::PgConnection::connect(&replica_url).await.ok()?;
            let users: i64 =
                sqlx::query_scalar("SELECT count(*) FROM users WHERE user_id = ANY($1)")
                    .bind([author, reader])
                    .fetch_one(&mut replica)
                    .await
                    .ok()?;
            (users == 2).then_some(replica)
        },
    )
    .await;
    let (listener, graph_addr) = local_listener().await;
    let flags = [
        "--celebrity-threshold",
        "10000",
        "--database-read-url",
        &replica_url,
    ];
    spawn_graph(listener, &app.database_url, &app.store.redis, &flags);
    let worker = app.start_worker_with_graph(&graph_addr, 1000);
    sqlx::query("SELECT pg_wal_replay_pause()")
        .execute(&mut replica)
        .await
        .unwrap();

    let outcome = async {
        let follow = FollowRequest {
            follower_id: reader,
            followee_id: author,
        };
        app.graph.clone().follow(follow).await.unwrap();
        // The reader's next read rebuilds their timeline: no tweet yet.
        app.timelines.store_rebuilt(reader, &[]).await.unwrap();
        let follows_on_replica: i64 = sqlx::query_scalar("SELECT count(*) FROM follows")
            .fetch_one(&mut replica)
            .await
            .unwrap();
        let tweet = app.tweet(author).await;
        let reached = tokio::time::timeout(DEADLINE, async {
            while app.timeline(reader).await != [tweet] {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await
        .is_ok();
        (follows_on_replica, reached)
    }
    .await;
    // Resume before asserting: the replica is shared by the tests of this run.
    sqlx::query("SELECT pg_wal_replay_resume()")
        .execute(&mut replica)
        .await
        .unwrap();
    let (follows_on_replica, reached) = outcome;
    assert_eq!(follows_on_replica, 0, "the replica lags behind the follow");
    assert!(reached, "the tweet reached the new follower");
    worker.stop().await;
    // The only user of the replica in this binary: stop it rather than have
    // it replay the WAL of every later test.
    chirp_test_support::stop_scale_out("pg-replica");
}

/// Issue 10, fix 5: a worker killed without leaving its group (SIGKILL)
/// hands its partitions over once its session times out, and the other
/// worker applies their events. The time from the kill to the last event
/// applied is printed, not asserted: docs/RELIABILITY.md reports it.
#[tokio::test]
async fn a_killed_workers_partitions_move_to_another_worker() {
    const PARTITIONS: i32 = 2;
    let app = spawn_app_with_partitions(10_000, PARTITIONS).await;
    let mut authors = Vec::new();
    for n in 0..6 {
        authors.push(app.create_user(&format!("author{n}")).await);
    }
    let survivor = app.start_worker(1000);
    let victim = app.start_worker_process(1000);
    app.wait_for_group(2, PARTITIONS).await;

    let status = std::process::Command::new("kill")
        .args(["-KILL", &victim.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let killed = Instant::now();
    let mut posted = Vec::new();
    for &author in &authors {
        posted.push((author, app.tweet(author).await));
    }
    for (author, tweet) in posted {
        app.wait_until(&[author], |timeline| timeline == [tweet])
            .await;
    }
    eprintln!(
        "every event applied {:?} after the SIGKILL",
        killed.elapsed()
    );
    survivor.stop().await;
}

impl TestApp {
    /// How many messages this app's dead-letter topic holds, over all its
    /// partitions (the worker creates it when it starts, with the default
    /// partition count).
    async fn dead_letters(&self) -> i64 {
        let client: BaseConsumer = self.kafka.client_config().create().unwrap();
        let topic = format!("{}-dead-letter", self.kafka.kafka_topic);
        tokio::task::spawn_blocking(move || {
            let timeout = Duration::from_secs(10);
            let metadata = client.fetch_metadata(Some(&topic), timeout).unwrap();
            let partitions = metadata.topics()[0].partitions();
            assert!(!partitions.is_empty(), "the dead-letter topic exists");
            partitions
                .iter()
                .map(|partition| {
                    let (low, high) = client
                        .fetch_watermarks(&topic, partition.id(), timeout)
                        .expect("the dead-letter topic's offsets");
                    high - low
                })
                .sum()
        })
        .await
        .unwrap()
    }

    /// The payload and the reason header of the first message on this app's
    /// dead-letter topic.
    async fn first_dead_letter(&self) -> (Vec<u8>, String) {
        use rdkafka::Message as _;
        use rdkafka::consumer::StreamConsumer;
        use rdkafka::message::Headers as _;

        let consumer: StreamConsumer = self
            .kafka
            .client_config()
            .set("group.id", unique_name("fanout_test"))
            .set("auto.offset.reset", "earliest")
            .create()
            .unwrap();
        let topic = format!("{}-dead-letter", self.kafka.kafka_topic);
        consumer.subscribe(&[&topic]).unwrap();
        let message = tokio::time::timeout(DEADLINE, consumer.recv())
            .await
            .expect("a dead letter within the deadline")
            .unwrap();
        let reason = message
            .headers()
            .and_then(|headers| {
                headers
                    .iter()
                    .find(|header| header.key == "chirp-dead-letter-reason")
            })
            .and_then(|header| header.value)
            .map(|value| String::from_utf8_lossy(value).into_owned())
            .unwrap_or_default();
        (message.payload().unwrap_or_default().to_vec(), reason)
    }
}
