//! The tweet service as its callers see it: a real server on port 0, backed
//! by the real Cassandra and Kafka, driven through the generated gRPC client.
//!
//! Each test gets its own keyspace and topic, so tests run in parallel, and
//! drops them when it passes; a failing test leaves them behind to inspect.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

use chirp_domain::ids::{id_at, now_ms};
use chirp_grpc::Channel;
use chirp_kafka::KafkaArgs;
use chirp_proto::events::tweet_event::Kind;
use chirp_proto::events::{TweetCreated, TweetDeleted, TweetEvent};
use chirp_proto::tweet::tweet_service_client::TweetServiceClient;
use chirp_proto::tweet::{
    BatchGetTweetsRequest, CreateTweetRequest, CreateTweetResponse, DeleteTweetRequest,
    GetTweetRequest, ImportTweetsRequest, ImportedTweet, ListTweetsByAuthorRequest, Tweet,
    TweetPage,
};
use chirp_test_support::{CQL, KAFKA, ensure_backends, unique_name};
use clap::Parser;
use futures::StreamExt as _;
use prost::Message as _;
use rdkafka::Message as _;
use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::{Code, Status};

/// How long starting the service (a new keyspace takes seconds on
/// Cassandra) or an event reaching a consumer may take before a test fails.
const DEADLINE: Duration = Duration::from_secs(60);

/// One running tweet service on its own keyspace and topic.
struct TestApp {
    client: TweetServiceClient<Channel>,
    /// The CQL node it stores on.
    cql: &'static str,
    keyspace: String,
    kafka: KafkaArgs,
    stop: oneshot::Sender<()>,
    server: JoinHandle<anyhow::Result<()>>,
}

async fn spawn_app() -> TestApp {
    let kafka = kafka_args(KAFKA, &unique_name("tweet_test"));
    spawn_instance(&unique_name("tweet_test"), kafka).await
}

fn kafka_args(brokers: &str, topic: &str) -> KafkaArgs {
    KafkaArgs {
        kafka_brokers: brokers.to_owned(),
        kafka_topic: topic.to_owned(),
        kafka_topic_partitions: 2,
        kafka_replication_factor: 1,
        kafka_min_insync_replicas: 1,
        kafka_retention_hours: 168,
    }
}

/// A broker address nobody listens on: the port of a listener just closed.
async fn dead_broker() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap().to_string()
}

/// One instance of the tweet service on `keyspace`; several may share one,
/// as replicas of a deployment do.
async fn spawn_instance(keyspace: &str, kafka: KafkaArgs) -> TestApp {
    spawn_instance_on(CQL, keyspace, kafka).await
}

/// As [`spawn_instance`], storing on the CQL node at `cql`.
async fn spawn_instance_on(cql: &'static str, keyspace: &str, kafka: KafkaArgs) -> TestApp {
    ensure_backends();
    // Replicas need distinct Snowflake worker ids, as in a deployment.
    static NODE_IDS: AtomicU16 = AtomicU16::new(0);
    let node_id = (NODE_IDS.fetch_add(1, Ordering::Relaxed) % 1000).to_string();
    let keyspace = keyspace.to_owned();
    let config = tweet::Config::try_parse_from([
        "tweet",
        "--node-id",
        &node_id,
        "--cql-nodes",
        cql,
        "--cql-keyspace",
        &keyspace,
        "--kafka-brokers",
        &kafka.kafka_brokers,
        "--kafka-topic",
        &kafka.kafka_topic,
        "--kafka-topic-partitions",
        &kafka.kafka_topic_partitions.to_string(),
    ])
    .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (stop, stopped) = oneshot::channel::<()>();
    let mut server = tokio::spawn(tweet::run(config, listener, async {
        let _ = stopped.await;
    }));
    let channel = chirp_grpc::connect_lazy(&addr, Duration::from_secs(10)).unwrap();
    let client = TweetServiceClient::new(channel);

    // The service serves only once its schema and topic exist: wait for its
    // first answer, or for it to fail.
    tokio::select! {
        exit = &mut server => panic!("the tweet service stopped while starting: {exit:?}"),
        () = wait_until_serving(client.clone()) => {}
    }
    TestApp {
        client,
        cql,
        keyspace,
        kafka,
        stop,
        server,
    }
}

async fn wait_until_serving(mut client: TweetServiceClient<Channel>) {
    let deadline = Instant::now() + DEADLINE;
    loop {
        match client.get_tweet(GetTweetRequest { tweet_id: 1 }).await {
            Err(status) if status.code() == Code::NotFound => return,
            answer => assert!(
                Instant::now() < deadline,
                "the tweet service did not start serving: {answer:?}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Signals the service to stop, and fails the test unless it stops cleanly
/// within the deadline.
async fn stop_server(stop: oneshot::Sender<()>, server: JoinHandle<anyhow::Result<()>>) {
    let _ = stop.send(());
    let exit = tokio::time::timeout(DEADLINE, server)
        .await
        .expect("the tweet service stops within the deadline");
    exit.expect("tweet service task panicked")
        .expect("the tweet service stops cleanly");
}

impl TestApp {
    /// Stops the service gracefully and leaves its keyspace and topic alone.
    async fn stop(self) {
        stop_server(self.stop, self.server).await;
    }

    /// Stops the service the way a crash does: mid-flight, releasing nothing.
    fn crash(self) {
        self.server.abort();
    }

    /// Stops the service gracefully, then drops the keyspace and the topic.
    /// Dropping is best effort: a leftover is a nuisance, not a failed test.
    async fn teardown(self) {
        let Self {
            client,
            cql,
            keyspace,
            kafka,
            stop,
            server,
        } = self;
        drop(client);
        stop_server(stop, server).await;

        if let Err(error) = drop_keyspace(cql, &keyspace).await {
            eprintln!("could not drop keyspace {keyspace}: {error:#}");
        }
        let admin: AdminClient<DefaultClientContext> = kafka.client_config().create().unwrap();
        if let Err(error) = admin
            .delete_topics(&[&kafka.kafka_topic], &AdminOptions::new())
            .await
        {
            eprintln!("could not delete topic {}: {error}", kafka.kafka_topic);
        }
    }

    async fn create(
        &self,
        author_id: i64,
        content: &str,
        idempotency_key: &str,
    ) -> Result<CreateTweetResponse, Status> {
        let request = CreateTweetRequest {
            author_id,
            content: content.to_owned(),
            idempotency_key: idempotency_key.to_owned(),
        };
        Ok(self
            .client
            .clone()
            .create_tweet(request)
            .await?
            .into_inner())
    }

    /// Creates a tweet that must succeed, and returns it.
    async fn tweet(&self, author_id: i64, content: &str) -> Tweet {
        let response = self.create(author_id, content, "").await.unwrap();
        assert!(response.created);
        response.tweet.unwrap()
    }

    async fn get(&self, tweet_id: i64) -> Result<Tweet, Status> {
        Ok(self
            .client
            .clone()
            .get_tweet(GetTweetRequest { tweet_id })
            .await?
            .into_inner())
    }

    async fn batch_get(&self, tweet_ids: Vec<i64>) -> Result<Vec<Tweet>, Status> {
        let request = BatchGetTweetsRequest { tweet_ids };
        Ok(self
            .client
            .clone()
            .batch_get_tweets(request)
            .await?
            .into_inner()
            .tweets)
    }

    async fn list(&self, author_id: i64, before_tweet_id: Option<i64>, limit: u32) -> TweetPage {
        let request = ListTweetsByAuthorRequest {
            author_id,
            before_tweet_id,
            limit,
        };
        self.client
            .clone()
            .list_tweets_by_author(request)
            .await
            .unwrap()
            .into_inner()
    }

    /// Every tweet of `author_id`, newest first, walking pages of `limit`.
    async fn list_all(&self, author_id: i64, limit: u32) -> Vec<Tweet> {
        let mut tweets = Vec::new();
        let mut before = None;
        loop {
            let page = self.list(author_id, before, limit).await;
            assert!(page.tweets.len() <= limit as usize);
            tweets.extend(page.tweets);
            match page.next_before_tweet_id {
                Some(next) => before = Some(next),
                None => return tweets,
            }
        }
    }

    async fn delete(&self, tweet_id: i64, requester_id: i64) -> Result<(), Status> {
        let request = DeleteTweetRequest {
            tweet_id,
            requester_id,
        };
        self.client.clone().delete_tweet(request).await?;
        Ok(())
    }

    /// The first `count` events on the topic, with their keys, read by a
    /// consumer group of its own from the beginning.
    async fn events(&self, count: usize) -> Vec<(String, Kind)> {
        let consumer: StreamConsumer = self
            .kafka
            .client_config()
            .set("group.id", unique_name("tweet_test"))
            .set("auto.offset.reset", "earliest")
            .set("enable.auto.commit", "false")
            .create()
            .unwrap();
        consumer.subscribe(&[&self.kafka.kafka_topic]).unwrap();
        let deadline = tokio::time::Instant::now() + DEADLINE;
        let mut events = Vec::new();
        while events.len() < count {
            let received = tokio::time::timeout_at(deadline, consumer.recv())
                .await
                .unwrap_or_else(|_| {
                    panic!(
                        "only {} of {count} events arrived: {events:?}",
                        events.len()
                    )
                });
            // The relay creates the topic once Kafka answers: until then a
            // consumer is told it does not exist, and keeps polling.
            let message = match received {
                Err(KafkaError::MessageConsumption(RDKafkaErrorCode::UnknownTopicOrPartition)) => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
                other => other.unwrap(),
            };
            let key = String::from_utf8(message.key().unwrap().to_vec()).unwrap();
            let event = TweetEvent::decode(message.payload().unwrap()).unwrap();
            events.push((key, event.kind.unwrap()));
        }
        events
    }
}

async fn drop_keyspace(cql: &str, keyspace: &str) -> anyhow::Result<()> {
    let session = scylla::client::session_builder::SessionBuilder::new()
        .known_node(cql)
        .build()
        .await?;
    let mut statement =
        scylla::statement::Statement::new(format!("DROP KEYSPACE IF EXISTS {keyspace}"));
    statement.set_request_timeout(Some(DEADLINE));
    session.query_unpaged(statement, ()).await?;
    Ok(())
}

fn ids(tweets: &[Tweet]) -> Vec<i64> {
    tweets.iter().map(|tweet| tweet.tweet_id).collect()
}

fn assert_code<T: std::fmt::Debug>(result: Result<T, Status>, code: Code) -> Status {
    match result {
        Err(status) if status.code() == code => status,
        other => panic!("expected {code:?}, got {other:?}"),
    }
}

#[tokio::test]
async fn tweets_are_read_back_by_id_by_author_and_in_batches() {
    let app = spawn_app().await;
    let (author, other_author) = (11, 12);
    let before = now_ms();
    let mut created = Vec::new();
    for n in 0..5 {
        created.push(app.tweet(author, &format!("tweet number {n}")).await);
    }
    let other = app.tweet(other_author, "someone else").await;

    let first = app.get(created[0].tweet_id).await.unwrap();
    assert_eq!(first, created[0]);
    assert_eq!(
        (first.author_id, first.content.as_str()),
        (author, "tweet number 0")
    );
    assert!((before..=now_ms()).contains(&first.created_at_ms));
    assert_code(app.get(12_345).await, Code::NotFound);

    // Newest first, and walking pages of 2 sees every tweet exactly once.
    let newest_first: Vec<i64> = ids(&created).into_iter().rev().collect();
    let first_page = app.list(author, None, 2).await;
    assert_eq!(ids(&first_page.tweets), newest_first[..2]);
    assert_eq!(first_page.next_before_tweet_id, Some(newest_first[1]));
    let walked = app.list_all(author, 2).await;
    assert_eq!(ids(&walked), newest_first);
    assert_eq!(
        walked
            .iter()
            .map(|t| t.tweet_id)
            .collect::<HashSet<_>>()
            .len(),
        5
    );
    let whole = app.list(author, None, 0).await;
    assert_eq!(ids(&whole.tweets), newest_first);
    assert_eq!(whole.next_before_tweet_id, None);
    assert_eq!(ids(&app.list_all(other_author, 2).await), [other.tweet_id]);

    // The order of the request, minus what does not exist.
    let asked = vec![
        created[3].tweet_id,
        999,
        other.tweet_id,
        created[0].tweet_id,
    ];
    let found = app.batch_get(asked).await.unwrap();
    assert_eq!(found, [created[3].clone(), other, created[0].clone()]);
    assert_eq!(app.batch_get(vec![]).await.unwrap(), []);
    let too_many = assert_code(
        app.batch_get((1..=201).collect()).await,
        Code::InvalidArgument,
    );
    assert!(too_many.message().contains("200"), "{too_many:?}");

    app.teardown().await;
}

#[tokio::test]
async fn retrying_with_an_idempotency_key_returns_the_first_tweet() {
    let app = spawn_app().await;
    let author = 21;

    let first = app.create(author, "caf\u{e9}", "key-1").await.unwrap();
    assert!(first.created);
    // The same text typed with a combining accent is the same tweet.
    let retry = app.create(author, "cafe\u{301}", "key-1").await.unwrap();
    assert!(!retry.created);
    assert_eq!(retry.tweet, first.tweet);

    let reused = assert_code(
        app.create(author, "something else", "key-1").await,
        Code::Aborted,
    );
    assert!(reused.message().contains("idempotency key"), "{reused:?}");

    // Keys belong to an author: another author's identical key is unrelated.
    let elsewhere = app.create(author + 1, "caf\u{e9}", "key-1").await.unwrap();
    assert!(elsewhere.created);
    assert_ne!(
        elsewhere.tweet.unwrap().tweet_id,
        first.tweet.as_ref().unwrap().tweet_id
    );

    // Without a key, every request is a new tweet.
    let unkeyed = [
        app.tweet(author, "again").await,
        app.tweet(author, "again").await,
    ];
    assert_ne!(unkeyed[0].tweet_id, unkeyed[1].tweet_id);
    assert_eq!(app.list_all(author, 10).await.len(), 3);

    app.teardown().await;
}

#[tokio::test]
async fn content_and_keys_are_validated() {
    let app = spawn_app().await;
    let author = 31;

    for blank in ["", "   ", "\n\t "] {
        let refused = assert_code(app.create(author, blank, "").await, Code::InvalidArgument);
        assert!(refused.message().contains("empty"), "{refused:?}");
    }
    let too_long = assert_code(
        app.create(author, &"a".repeat(281), "").await,
        Code::InvalidArgument,
    );
    assert!(too_long.message().contains("280"), "{too_long:?}");
    assert_code(app.create(0, "hello", "").await, Code::InvalidArgument);
    assert_code(
        app.create(author, "hello", &"k".repeat(129)).await,
        Code::InvalidArgument,
    );
    assert_code(
        app.create(author, "hello", "new\nline").await,
        Code::InvalidArgument,
    );

    // Limits count characters, not bytes, after composing accents.
    let birds = "🐦".repeat(280);
    assert_eq!(app.tweet(author, &birds).await.content, birds);
    let composed = app.tweet(author, "e\u{301}").await;
    assert_eq!(composed.content, "\u{e9}");
    assert_eq!(app.get(composed.tweet_id).await.unwrap().content, "\u{e9}");
    app.tweet(author, &"e\u{301}".repeat(280)).await;

    assert_eq!(app.list_all(author, 10).await.len(), 3);
    app.teardown().await;
}

#[tokio::test]
async fn only_the_author_deletes_and_a_deleted_tweet_stays_deleted() {
    let app = spawn_app().await;
    let (author, stranger) = (41, 42);
    let kept = app.tweet(author, "staying").await;
    let doomed = app
        .create(author, "going", "doomed-key")
        .await
        .unwrap()
        .tweet
        .unwrap();

    assert_code(
        app.delete(doomed.tweet_id, stranger).await,
        Code::PermissionDenied,
    );
    assert_eq!(app.get(doomed.tweet_id).await.unwrap(), doomed);

    app.delete(doomed.tweet_id, author).await.unwrap();
    assert_code(app.get(doomed.tweet_id).await, Code::NotFound);
    assert_code(app.delete(doomed.tweet_id, author).await, Code::NotFound);
    assert_eq!(ids(&app.list_all(author, 10).await), [kept.tweet_id]);
    let asked = vec![doomed.tweet_id, kept.tweet_id];
    assert_eq!(app.batch_get(asked).await.unwrap(), [kept]);

    // Replaying the key cannot bring the tweet back.
    let replay = assert_code(
        app.create(author, "going", "doomed-key").await,
        Code::NotFound,
    );
    assert!(replay.message().contains("deleted"), "{replay:?}");
    assert_code(
        app.create(author, "other text", "doomed-key").await,
        Code::Aborted,
    );
    assert_code(app.get(doomed.tweet_id).await, Code::NotFound);

    app.teardown().await;
}

#[tokio::test]
async fn every_create_and_delete_is_published_keyed_by_author() {
    let app = spawn_app().await;
    let author = 51;
    let tweet = app
        .create(author, "hello, consumers", "event-key")
        .await
        .unwrap()
        .tweet
        .unwrap();
    // A replay writes the same outbox row again: one event, never two.
    app.create(author, "hello, consumers", "event-key")
        .await
        .unwrap();
    app.delete(tweet.tweet_id, author).await.unwrap();

    let created = Kind::Created(TweetCreated {
        tweet_id: tweet.tweet_id,
        author_id: author,
        created_at_ms: tweet.created_at_ms,
    });
    let deleted = Kind::Deleted(TweetDeleted {
        tweet_id: tweet.tweet_id,
        author_id: author,
    });
    let key = author.to_string();
    assert_eq!(
        app.events(2).await,
        [(key.clone(), created), (key, deleted)]
    );

    app.teardown().await;
}

fn created(tweet: &Tweet) -> (String, Kind) {
    let kind = Kind::Created(TweetCreated {
        tweet_id: tweet.tweet_id,
        author_id: tweet.author_id,
        created_at_ms: tweet.created_at_ms,
    });
    (tweet.author_id.to_string(), kind)
}

fn deleted(tweet: &Tweet) -> (String, Kind) {
    let kind = Kind::Deleted(TweetDeleted {
        tweet_id: tweet.tweet_id,
        author_id: tweet.author_id,
    });
    (tweet.author_id.to_string(), kind)
}

/// Issue 10, fix 1: posting does not depend on Kafka, and an instance that
/// dies after writing a tweet leaves its event to another one.
#[tokio::test]
async fn posts_succeed_while_kafka_is_down_and_a_crash_loses_no_event() {
    let keyspace = unique_name("tweet_test");
    let topic = unique_name("tweet_test");
    let cut_off = spawn_instance(&keyspace, kafka_args(&dead_broker().await, &topic)).await;
    let author = 61;
    let first = cut_off.tweet(author, "posted while Kafka is down").await;
    let second = cut_off.tweet(author, "and another").await;
    cut_off.delete(first.tweet_id, author).await.unwrap();
    assert_eq!(ids(&cut_off.list_all(author, 10).await), [second.tweet_id]);
    cut_off.crash();

    let healthy = spawn_instance(&keyspace, kafka_args(KAFKA, &topic)).await;
    assert_eq!(
        healthy.events(3).await,
        [created(&first), created(&second), deleted(&first)]
    );
    healthy.teardown().await;
}

/// Issue 10, fix 1: with several instances writing, each event is relayed
/// once, and one author's events stay in order.
#[tokio::test]
async fn several_instances_relay_each_event_once_in_order() {
    let keyspace = unique_name("tweet_test");
    let topic = unique_name("tweet_test");
    let one = spawn_instance(&keyspace, kafka_args(KAFKA, &topic)).await;
    let other = spawn_instance(&keyspace, kafka_args(KAFKA, &topic)).await;
    let author = 62;
    let first = one.tweet(author, "from one").await;
    let second = other.tweet(author, "from the other").await;
    other.delete(first.tweet_id, author).await.unwrap();
    one.delete(second.tweet_id, author).await.unwrap();
    assert_eq!(
        one.events(4).await,
        [
            created(&first),
            created(&second),
            deleted(&first),
            deleted(&second)
        ]
    );
    other.stop().await;
    one.teardown().await;
}

/// The second Cassandra of `deploy/backends.sh up cassandra-tombstones`:
/// one read fails past 1 000 tombstones (Cassandra's default is 100 000).
const CQL_TOMBSTONES: &str = "127.0.0.1:9142";

/// Events per burst in [`the_relay_never_reads_the_tombstones_it_left`]:
/// more than half of that node's limit, so two bursts exceed it.
const BURST: usize = 700;

/// How far the relay's checkpoint trails the newest event (the outbox's
/// `LOOKBACK`), plus a margin for this machine's load.
const RELAY_LOOKBACK: Duration = Duration::from_secs(32);

/// Issue 19, defect 1: every relayed event leaves a tombstone, and a relay
/// that reads a shard from its start (a new lease owner did) or from a fixed
/// distance behind its last event (the old relay did on every read) fails
/// once more than Cassandra's limit lie there: posts go on succeeding and no
/// event reaches Kafka again. Two bursts on one shard, more than the limit
/// together, each less alone; the lease handed over after them; then one
/// more post must still be relayed.
#[tokio::test]
async fn the_relay_never_reads_the_tombstones_it_left() {
    chirp_test_support::ensure_scale_out("cassandra-tombstones");
    let keyspace = unique_name("tweet_test");
    let topic = unique_name("tweet_test");
    let first = spawn_instance_on(CQL_TOMBSTONES, &keyspace, kafka_args(KAFKA, &topic)).await;
    // Authors of one outbox shard (author id mod 8).
    let authors = [3, 11, 19, 27];
    let burst = post_burst(&first, &authors, 1).await;
    assert_eq!(first.events(BURST).await.len(), BURST);

    // The relay leaves these tombstones behind for good once they are older
    // than its lookback: a wait for the clock, not for another task.
    let newest = burst.iter().map(|tweet| tweet.created_at_ms).max().unwrap();
    let settled = Duration::from_millis(u64::try_from(newest + 1 - now_ms()).unwrap_or(0));
    tokio::time::sleep(settled + RELAY_LOOKBACK).await;
    post_burst(&first, &authors, 2).await;
    assert_eq!(first.events(2 * BURST).await.len(), 2 * BURST);

    first.stop().await;
    let second = spawn_instance_on(CQL_TOMBSTONES, &keyspace, kafka_args(KAFKA, &topic)).await;
    let last = second.tweet(authors[0], "after the handover").await;
    let events = second.events(2 * BURST + 1).await;
    assert!(
        events.contains(&created(&last)),
        "the last post was not relayed"
    );
    second.teardown().await;
    // Nothing else uses that node: a passing run stops what it started.
    chirp_test_support::stop_scale_out("cassandra-tombstones");
}

/// Issue 19, defect 1: with the relay no longer reading a shard from its
/// start, a create replayed long after its first attempt (which claimed the
/// key and died before writing) writes its event below where the relay
/// reads; the writer flags it late, and the relay still sends it. Before the
/// fix it waited for the 5-minute full scan; without the flag it would wait
/// forever.
#[tokio::test]
async fn a_create_replayed_long_after_its_claim_is_still_relayed() {
    let app = spawn_app().await;
    let author = 65;
    // The relay is running and has read the shard: its start is now past
    // anything older than its lookback.
    let fresh = app.tweet(author, "a fresh post").await;
    assert_eq!(app.events(1).await, [created(&fresh)]);

    // A first attempt a minute ago: the key claimed, nothing else written.
    let claimed_id = id_at(now_ms() - 60_000, 1_022, 0);
    let content = "claimed a minute ago";
    let session = scylla::client::session_builder::SessionBuilder::new()
        .known_node(app.cql)
        .build()
        .await
        .unwrap();
    let claim = format!(
        "INSERT INTO {}.tweet_idempotency (author_id, idempotency_key, tweet_id, content, deleted) \
         VALUES (?, 'late-replay', ?, ?, false) USING TTL 86400",
        app.keyspace
    );
    session
        .query_unpaged(claim, (author, claimed_id, content))
        .await
        .unwrap();

    let replay = app.create(author, content, "late-replay").await.unwrap();
    assert!(!replay.created);
    let replayed = replay.tweet.unwrap();
    assert_eq!(replayed.tweet_id, claimed_id);
    assert_eq!(app.events(2).await, [created(&fresh), created(&replayed)]);
    app.teardown().await;
}

/// [`BURST`] posts by `authors` in turn, a few at a time.
async fn post_burst(app: &TestApp, authors: &[i64], burst: usize) -> Vec<Tweet> {
    let posts = (0..BURST).map(|i| {
        let author = authors[i % authors.len()];
        async move { app.tweet(author, &format!("burst {burst} post {i}")).await }
    });
    futures::stream::iter(posts)
        .buffer_unordered(16)
        .collect()
        .await
}

fn imported(tweet_id: i64, author_id: i64, content: &str) -> ImportedTweet {
    ImportedTweet {
        tweet_id,
        author_id,
        content: content.to_owned(),
    }
}

#[tokio::test]
async fn imported_history_is_read_back_without_an_event_and_a_bad_batch_writes_nothing() {
    let app = spawn_app().await;
    let (author, other) = (7_001, 7_002);
    // Ids of the past, a second apart, as a migration's source would have.
    let hour_ago = now_ms() - 3_600_000;
    let id = |n: i64| id_at(hour_ago + n * 1_000, 1_023, 0);
    let history = vec![
        imported(id(1), author, "first"),
        imported(id(2), other, "elsewhere"),
        imported(id(3), author, "second"),
    ];
    let import = |tweets: Vec<ImportedTweet>| {
        let mut client = app.client.clone();
        async move {
            client
                .import_tweets(ImportTweetsRequest { tweets })
                .await
                .map(|response| response.into_inner().written)
        }
    };
    assert_eq!(import(history.clone()).await.unwrap(), 3);
    assert_eq!(
        import(history).await.unwrap(),
        3,
        "a retry rewrites the same rows"
    );
    assert_eq!(ids(&app.list_all(author, 10).await), vec![id(3), id(1)]);
    let first = app.get(id(1)).await.unwrap();
    assert_eq!(first.created_at_ms, hour_ago + 1_000);
    assert_eq!(first.content, "first");

    // One tweet from the future fails the whole call, before any write.
    let future = id_at(now_ms() + 3_600_000, 1_023, 0);
    let bad = vec![
        imported(id(4), author, "never written"),
        imported(future, author, "from the future"),
    ];
    assert_code(import(bad).await, Code::InvalidArgument);
    assert_code(app.get(id(4)).await, Code::NotFound);
    let empty = vec![imported(id(5), author, "   ")];
    assert_code(import(empty).await, Code::InvalidArgument);

    // No event for the history: the first event of the author's partition is
    // the one of a tweet posted afterwards.
    let posted = app.tweet(author, "news").await;
    let [(_, kind)] = &app.events(1).await[..] else {
        unreachable!("one event")
    };
    assert!(
        matches!(kind, Kind::Created(created) if created.tweet_id == posted.tweet_id),
        "{kind:?}"
    );

    app.teardown().await;
}

/// One author's long history is more than Cassandra takes in one batch (it
/// refuses batches over 50 KiB by default): the import cuts it, and packs
/// many small partitions together, and every row is written all the same.
#[tokio::test]
async fn a_history_larger_than_one_batch_is_written_whole() {
    let app = spawn_app().await;
    let (author, others) = (7_101, 7_200..7_260);
    let hour_ago = now_ms() - 3_600_000;
    let id = |n: i64| id_at(hour_ago + n, 1_023, 0);
    let long = "x".repeat(250);
    // 400 tweets of 250 bytes by one author: about 100 KB in one partition.
    let mut history: Vec<ImportedTweet> = (0..400)
        .map(|n| imported(id(n), author, &format!("{n} {long}")))
        .collect();
    // And 60 authors of one tweet each: more partitions than one batch holds.
    history.extend(
        others
            .clone()
            .map(|other| imported(id(other), other, "one of many")),
    );
    let written = app
        .client
        .clone()
        .import_tweets(ImportTweetsRequest { tweets: history })
        .await
        .expect("the import")
        .into_inner()
        .written;
    assert_eq!(written, 460);
    let listed = app.list_all(author, 100).await;
    assert_eq!(listed.len(), 400);
    assert_eq!(ids(&listed), (0..400).rev().map(id).collect::<Vec<_>>());
    for other in others {
        assert_eq!(app.get(id(other)).await.unwrap().content, "one of many");
        assert_eq!(ids(&app.list_all(other, 10).await), vec![id(other)]);
    }
    app.teardown().await;
}
