//! Fan-out throughput: timeline inserts per second through the worker,
//! against the same inserts written straight to Redis.
//!
//! The bench signs up an author, gives them `F` followers from the manifest
//! (one bulk import), and publishes `N` tweet events of theirs to the topic
//! the worker consumes, straight to Kafka: the tweet service is not what is
//! measured. All of one author's events share a partition, so the worker
//! applies them one after the other, each as pipelines of one follower page
//! (plus the author on the first). Its last write is therefore the last
//! event's id in the timeline of the follower with the highest id, and the
//! bench watches Redis for exactly that: the clock stops when the write has
//! landed, not when a metric says so. When the worker's `/metrics` is
//! given, its `chirp_fanout_timeline_writes_total` must have grown by the
//! `N × (F + 1)` inserts expected, a check that nothing was skipped.
//!
//! The floor writes the same `N × (F + 1)` entries through the very
//! function the worker uses (`HomeTimelines::push`), in pipelines of the
//! same pages, one after the other as the worker does, under a scratch key
//! prefix. What the worker adds to it is the price of the design: reading
//! the followers from the graph service for every event (and, under the
//! hybrid strategy, asking whether the author is a celebrity), and the
//! Kafka hop.
//!
//! The bench's tweet ids have no tweet behind them, so afterwards it deletes
//! them the same way (a `TweetDeleted` each, through the worker): left in
//! the followers' timelines, they would cost every later read of those a
//! lookup in the tweet store that finds nothing.

use std::time::Duration;

use anyhow::{Context, anyhow, ensure};
use chirp_client::Gateway;
use chirp_domain::ids::{MAX_WORKER_ID, Snowflake};
use chirp_grpc::DEFAULT_DEADLINE;
use chirp_kafka::KafkaArgs;
use chirp_proto::events::{TweetCreated, TweetDeleted, TweetEvent, tweet_event};
use chirp_proto::graph::graph_service_client::GraphServiceClient;
use chirp_proto::graph::{FollowRequest, ImportFollowsRequest};
use chirp_redis::connection::RedisArgs;
use chirp_timeline_store::{HomeTimelines, TimelineStoreArgs};
use prost::Message as _;
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde::Serialize;
use tokio::time::Instant;

use crate::manifest::Manifest;
use crate::prometheus::Scrape;
use crate::seed::fresh_handle_prefix;

/// Counter, label `change`: timeline entries the fan-out worker wrote.
const TIMELINE_WRITES: &str = "chirp_fanout_timeline_writes_total";
/// The longest the worker may take over all the events.
const DEADLINE: Duration = Duration::from_secs(300);
/// Edges per `ImportFollows` call (the graph service's limit).
const IMPORT_BATCH: usize = 10_000;

/// What to measure.
pub struct Setup<'a> {
    pub gateway: &'a Gateway,
    pub graph_addr: &'a str,
    pub store: &'a TimelineStoreArgs,
    pub kafka: &'a KafkaArgs,
    pub follower_page_size: u32,
    /// The worker's `/metrics`, to check its count of writes.
    pub metrics_url: Option<&'a str>,
    pub followers: u32,
    pub events: u32,
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct Fanout {
    pub followers: u32,
    pub events: u32,
    /// `events × (followers + 1)`: the author's own timeline too.
    pub inserts: u64,
    /// From publishing the first event to the last write landing in Redis.
    pub worker_secs: f64,
    pub worker_inserts_per_sec: f64,
    pub direct_secs: f64,
    pub direct_inserts_per_sec: f64,
    /// The growth of the worker's own counter, when its metrics were given.
    pub worker_counted: Option<u64>,
}

pub async fn measure(setup: &Setup<'_>, manifest: &Manifest) -> anyhow::Result<Fanout> {
    let followers = setup.followers as usize;
    ensure!(
        followers < manifest.users.len(),
        "--fanout-followers must be below the {} users of the manifest",
        manifest.users.len()
    );
    ensure!(
        setup.followers < manifest.celebrity_threshold,
        "--fanout-followers {} would make the author a celebrity (threshold {}), whose tweets \
         are not pushed under the hybrid strategy",
        setup.followers,
        manifest.celebrity_threshold
    );
    let handle = format!("{}fan", fresh_handle_prefix());
    let author = setup
        .gateway
        .sign_up(&handle, "Fan-out bench")
        .await
        .map_err(|failure| anyhow!("sign up the fan-out author: {}", failure))?
        .user_id;
    let mut follower_ids: Vec<i64> = manifest.users[..followers]
        .iter()
        .map(|user| user.id)
        .collect();
    follow(setup.graph_addr, author, &follower_ids).await?;
    follower_ids.sort_unstable();
    // Pushes land only in cached timelines: the audience reads, as it were.
    let timelines = HomeTimelines::connect(setup.store).await?;
    for &user_id in std::iter::once(&author).chain(&follower_ids) {
        timelines.store_rebuilt(user_id, &[]).await?;
    }

    let snowflake = Snowflake::new(MAX_WORKER_ID);
    let tweet_ids: Vec<i64> = (0..setup.events).map(|_| snowflake.next_id()).collect();
    let inserts = u64::from(setup.events) * (followers as u64 + 1);

    let http = reqwest::Client::new();
    let counted_before = match setup.metrics_url {
        Some(url) => Some(Scrape::fetch(&http, url).await?),
        None => None,
    };
    let events = Events {
        kafka: setup.kafka,
        producer: setup
            .kafka
            .client_config()
            .create()
            .context("create a Kafka producer")?,
        author,
        timelines,
    };
    let worker_secs = through_worker(&events, &follower_ids, &tweet_ids)
        .await?
        .as_secs_f64();

    let mut audience = vec![author];
    audience.extend(&follower_ids);
    let direct_secs = straight_to_redis(setup, &audience, &tweet_ids)
        .await?
        .as_secs_f64();
    // Read well after the last write: the worker counts a write once Redis
    // has acknowledged it, a moment after the write is visible there.
    let worker_counted = match (setup.metrics_url, counted_before) {
        (Some(url), Some(before)) => {
            let after = Scrape::fetch(&http, url).await?;
            let push = ["change=\"push\""];
            Some(
                (after.total(TIMELINE_WRITES, &push) - before.total(TIMELINE_WRITES, &push)) as u64,
            )
        }
        _ => None,
    };
    clean_up(&events, &follower_ids, &tweet_ids).await?;
    Ok(Fanout {
        followers: setup.followers,
        events: setup.events,
        inserts,
        worker_secs,
        worker_inserts_per_sec: inserts as f64 / worker_secs.max(1e-9),
        direct_secs,
        direct_inserts_per_sec: inserts as f64 / direct_secs.max(1e-9),
        worker_counted,
    })
}

/// Makes every one of `followers` follow `author`.
pub(crate) async fn follow(graph_addr: &str, author: i64, followers: &[i64]) -> anyhow::Result<()> {
    let mut graph =
        GraphServiceClient::new(crate::grpc::connect(graph_addr, DEFAULT_DEADLINE * 10)?);
    for batch in followers.chunks(IMPORT_BATCH) {
        let follows = batch
            .iter()
            .map(|&follower_id| FollowRequest {
                follower_id,
                followee_id: author,
            })
            .collect();
        graph
            .import_follows(ImportFollowsRequest { follows })
            .await
            .context("import the fan-out author's followers")?;
    }
    Ok(())
}

/// Publishes a `TweetCreated` per id and waits until the last id is in the
/// timeline of the last follower the worker writes.
async fn through_worker(
    events: &Events<'_>,
    followers: &[i64],
    tweet_ids: &[i64],
) -> anyhow::Result<Duration> {
    let (Some(&last_follower), Some(&last_tweet)) = (followers.last(), tweet_ids.last()) else {
        return Ok(Duration::ZERO);
    };
    let started = Instant::now();
    events
        .publish(tweet_ids, |tweet_id, author_id| {
            tweet_event::Kind::Created(TweetCreated {
                tweet_id,
                author_id,
                created_at_ms: chirp_domain::ids::timestamp_ms(tweet_id),
            })
        })
        .await?;
    events
        .wait_for(last_follower, |newest| newest == Some(last_tweet))
        .await?;
    Ok(started.elapsed())
}

/// Takes the bench's tweets out of the timelines again (their ids have no
/// tweet behind them), through the worker, and waits until it is done.
async fn clean_up(events: &Events<'_>, followers: &[i64], tweet_ids: &[i64]) -> anyhow::Result<()> {
    let (Some(&last_follower), Some(&last_tweet)) = (followers.last(), tweet_ids.last()) else {
        return Ok(());
    };
    events
        .publish(tweet_ids, |tweet_id, author_id| {
            tweet_event::Kind::Deleted(TweetDeleted {
                tweet_id,
                author_id,
            })
        })
        .await?;
    events
        .wait_for(last_follower, |newest| newest != Some(last_tweet))
        .await
}

/// The author's events, on the worker's topic, and the timelines they land in.
struct Events<'a> {
    kafka: &'a KafkaArgs,
    producer: FutureProducer,
    author: i64,
    timelines: HomeTimelines,
}

impl Events<'_> {
    /// Publishes one event per id, all at once, keyed by the author as the
    /// tweet service keys them.
    async fn publish(
        &self,
        tweet_ids: &[i64],
        kind: impl Fn(i64, i64) -> tweet_event::Kind,
    ) -> anyhow::Result<()> {
        let key = self.author.to_string();
        let payloads: Vec<Vec<u8>> = tweet_ids
            .iter()
            .map(|&tweet_id| {
                let kind = Some(kind(tweet_id, self.author));
                TweetEvent { kind }.encode_to_vec()
            })
            .collect();
        let sends = payloads.iter().map(|payload| {
            let record = FutureRecord::to(&self.kafka.kafka_topic)
                .key(&key)
                .payload(payload);
            self.producer.send(record, Duration::from_secs(10))
        });
        for sent in futures::future::join_all(sends).await {
            sent.map_err(|(error, _)| error)
                .context("publish a tweet event")?;
        }
        Ok(())
    }

    /// Waits until `done` holds of the newest id in `user_id`'s timeline
    /// (the bench's ids are the newest there).
    async fn wait_for(
        &self,
        user_id: i64,
        done: impl Fn(Option<i64>) -> bool,
    ) -> anyhow::Result<()> {
        let started = Instant::now();
        loop {
            let newest = self
                .timelines
                .page(user_id, None, 1)
                .await
                .context("read the last follower's timeline")?;
            if done(newest.first().copied()) {
                return Ok(());
            }
            ensure!(
                started.elapsed() < DEADLINE,
                "the fan-out worker did not apply the bench's events within {DEADLINE:?}: is it \
                 running, on topic {}?",
                self.kafka.kafka_topic
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
}

/// The same inserts in the same pipelines, straight to Redis under a
/// scratch prefix, which is dropped afterwards.
async fn straight_to_redis(
    setup: &Setup<'_>,
    audience: &[i64],
    tweet_ids: &[i64],
) -> anyhow::Result<Duration> {
    let scratch = TimelineStoreArgs {
        redis: RedisArgs {
            redis_key_prefix: format!("{}bench-zadd:", setup.store.redis.redis_key_prefix),
            ..setup.store.redis.clone()
        },
        ..setup.store.clone()
    };
    let timelines = HomeTimelines::connect(&scratch).await?;
    // The author rides with the first page of followers, as in the worker.
    let page = setup.follower_page_size as usize;
    let first = audience.len().min(page + 1);
    let pages: Vec<&[i64]> = std::iter::once(&audience[..first])
        .chain(audience[first..].chunks(page))
        .collect();
    for &user_id in audience {
        timelines.store_rebuilt(user_id, &[]).await?;
    }
    let started = Instant::now();
    for &tweet_id in tweet_ids {
        for user_ids in &pages {
            timelines.push(user_ids, tweet_id).await?;
        }
    }
    let elapsed = started.elapsed();
    for user_ids in &pages {
        timelines.invalidate(user_ids).await?;
    }
    Ok(elapsed)
}
