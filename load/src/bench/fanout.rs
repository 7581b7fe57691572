//! Fan-out throughput: timeline inserts per second through the worker,
//! against the same inserts written straight to Redis, on an audience the
//! bench makes for itself so that no one else's timeline is touched.
//!
//! The audience: an author and `F` followers who follow only them, created
//! for this stage through the graph service's bulk import (the seed's path;
//! fresh handles), each of whose home timelines is then read once through
//! the gateway with a token minted for them, which caches it (pushes land
//! only in cached timelines). The bench then publishes `N` tweet events of
//! the author to the topic the worker consumes, straight to Kafka: the tweet
//! service is not what is measured. The worker applies up to its
//! `FANOUT_CONCURRENCY` of them at once, each as pipelines of one follower
//! page (plus the author on the first), in order of follower id. An event's
//! last write therefore lands in the timeline of the follower with the
//! highest id, and the bench watches that one key in Redis (one of its own
//! users') until it holds all `N` ids: the clock stops when the writes have
//! landed, not when a metric says so. When the worker's `/metrics` is given, its
//! `chirp_fanout_timeline_writes_total` must have grown by the `N × (F + 1)`
//! inserts expected, a check that nothing was skipped.
//!
//! The floor writes the same `N × (F + 1)` entries through the very
//! function the worker uses (`HomeTimelines::push`), in pipelines of the
//! same pages, as many events at once as the worker, under a key prefix
//! of its own (the services' prefix followed by `bench-zadd:`). What the
//! worker adds to it is the price of the design: reading the followers from
//! the graph service for every event (and, under the hybrid strategy,
//! asking whether the author is a celebrity), and the Kafka hop.
//!
//! What the stage leaves behind: afterwards it deletes its audience's
//! timelines and the floor's keys, so the bench's tweet ids (which have no
//! tweet behind them) are nowhere in Redis. The worker's delivery record of
//! each of those ids (`delivery:{id}`, an hour's TTL) expires on its own,
//! and the audience and its follows stay in the graph, as seeded users do.
//! No key of a user the bench did not create is written, and no shared one
//! (the bench publishes no deletion, whose tombstones and feed the timeline
//! services read).

use std::time::Duration;

use anyhow::{Context, ensure};
use chirp_client::Gateway;
use chirp_domain::ids::{MAX_WORKER_ID, Snowflake};
use chirp_kafka::KafkaArgs;
use chirp_proto::events::{TweetCreated, TweetEvent, tweet_event};
use chirp_redis::connection::RedisArgs;
use chirp_timeline_store::{HomeTimelines, TimelineStoreArgs};
use futures::{StreamExt as _, TryStreamExt as _};
use prost::Message as _;
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde::Serialize;
use tokio::time::Instant;

use crate::prometheus::Scrape;
use crate::seed::{fresh_handle_prefix, import_audience};
use crate::tokens::TokenArgs;
use crate::workload::warm_up;

/// Counter, label `change`: timeline entries the fan-out worker wrote.
const TIMELINE_WRITES: &str = "chirp_fanout_timeline_writes_total";
/// The longest the worker may take over all the events.
const DEADLINE: Duration = Duration::from_secs(300);
/// The audience's timelines read at once to cache them.
const WARM_CONCURRENCY: usize = 32;

/// What to measure.
pub struct Setup<'a> {
    pub gateway: &'a Gateway,
    /// Mints the tokens the audience reads its timelines with.
    pub tokens: &'a TokenArgs,
    pub graph_addr: &'a str,
    pub store: &'a TimelineStoreArgs,
    pub kafka: &'a KafkaArgs,
    pub follower_page_size: u32,
    /// The worker's `/metrics`, to check its count of writes.
    pub metrics_url: Option<&'a str>,
    /// The graph service's, as the seed recorded it: the audience must stay
    /// below it, or the hybrid strategy would not push.
    pub celebrity_threshold: u32,
    pub followers: u32,
    pub events: u32,
    /// Events applied at once, by the worker and by the floor alike.
    pub concurrency: usize,
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

pub async fn measure(setup: &Setup<'_>) -> anyhow::Result<Fanout> {
    ensure!(
        setup.followers < setup.celebrity_threshold,
        "--fanout-followers {} would make the author a celebrity (threshold {}), whose tweets \
         are not pushed under the hybrid strategy",
        setup.followers,
        setup.celebrity_threshold
    );
    // `f` keeps the handles apart from a seed's started in the same second.
    let prefix = format!("{}f", fresh_handle_prefix());
    let audience = import_audience(setup.graph_addr, &prefix, setup.followers).await?;
    let (author, follower_ids) = (audience[0], &audience[1..]);
    // Pushes land only in cached timelines: the audience reads, as a user
    // would, and the timeline service caches what it read.
    warm_up(
        setup.gateway,
        &setup.tokens.actors(&audience),
        Some(1),
        WARM_CONCURRENCY,
    )
    .await?;
    let timelines = HomeTimelines::connect(setup.store).await?;
    let last_follower = *follower_ids.last().context("no follower")?;
    ensure!(
        timelines
            .page_if_complete(last_follower, None, 1)
            .await?
            .is_some(),
        "user {last_follower}'s timeline is not in Redis under the prefix {:?} after a read: the \
         services must run with TIMELINE_STRATEGY push or hybrid and this REDIS_KEY_PREFIX",
        setup.store.redis.redis_key_prefix
    );

    let snowflake = Snowflake::new(MAX_WORKER_ID);
    let tweet_ids: Vec<i64> = (0..setup.events).map(|_| snowflake.next_id()).collect();
    let inserts = u64::from(setup.events) * (follower_ids.len() as u64 + 1);

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
        timelines: timelines.clone(),
    };
    let measured = through_worker(&events, last_follower, &tweet_ids).await;
    let worker_secs = match measured {
        Ok(elapsed) => elapsed.as_secs_f64(),
        Err(error) => {
            // Whatever the worker wrote so far goes too.
            timelines.invalidate(&audience).await?;
            return Err(error);
        }
    };
    // The worker is done with the audience: its last write has landed.
    timelines
        .invalidate(&audience)
        .await
        .context("delete the audience's timelines")?;

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

/// Publishes a `TweetCreated` per id and waits until the last id is in the
/// timeline of the last follower the worker writes.
async fn through_worker(
    events: &Events<'_>,
    last_follower: i64,
    tweet_ids: &[i64],
) -> anyhow::Result<Duration> {
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
    events.wait_for(last_follower, tweet_ids.len()).await?;
    Ok(started.elapsed())
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

    /// Waits until `user_id`'s timeline holds `entries` ids (the bench's
    /// audience follows only its author, so they are all the bench's).
    async fn wait_for(&self, user_id: i64, entries: usize) -> anyhow::Result<()> {
        let started = Instant::now();
        loop {
            let held = self
                .timelines
                .page(user_id, None, entries)
                .await
                .context("read the last follower's timeline")?;
            if held.len() >= entries {
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
    futures::stream::iter(tweet_ids)
        .map(|&tweet_id| {
            let (timelines, pages) = (&timelines, &pages);
            async move {
                for user_ids in pages {
                    timelines.push(user_ids, tweet_id).await?;
                }
                anyhow::Ok(())
            }
        })
        .buffer_unordered(setup.concurrency)
        .try_collect::<()>()
        .await?;
    let elapsed = started.elapsed();
    for user_ids in &pages {
        timelines.invalidate(user_ids).await?;
    }
    Ok(elapsed)
}
