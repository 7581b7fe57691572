//! How far a tweet's fan-out has got: a small Redis hash per tweet, written
//! by the fan-out worker as it goes and read by the gateway's
//! `GET /tweets/{id}/delivery`.
//!
//! Fan-out is asynchronous, so a client that posted cannot otherwise see it
//! happen. The worker already knows, page by page, which followers' timelines
//! it wrote and which it skipped; recording that costs one more command in
//! each pipeline's round trip. A follower is counted in one of four ways:
//! *pushed* (their cached timeline has the tweet), *skipped as inactive* (no
//! timeline is cached, since they have not read lately: their next read
//! rebuilds it from the stores, the tweet included), *skipped as a
//! celebrity's follower* (the author is a celebrity: followers pull the tweet
//! when they read), or *skipped by the lossy fan-out* (with
//! `LOSSY_FANOUT_LIMIT`, a follower of very many accounts). The author's own timeline is not counted. The record is
//! observability, not state: it expires after [`RECORD_TTL_SECS`], a failed
//! write of it is logged and never fails the event, and a replayed event
//! adds its pages again (so the counts can exceed the audience after a
//! retry; the timelines themselves are still written once). This crate is
//! the one place that knows the key and the fields, for both sides.

use chirp_redis::connection::RedisConnection;
use redis::AsyncCommands;

/// How long a tweet's record lives after its last write: long enough to
/// look at a fan-out after posting, short enough that records cost nothing
/// at scale.
pub const RECORD_TTL_SECS: i64 = 3600;

const PUSHED: &str = "pushed";
const SKIPPED_INACTIVE: &str = "skipped_inactive";
const SKIPPED_CELEBRITY: &str = "skipped_celebrity";
const SKIPPED_LOSSY: &str = "skipped_lossy";
const FIRST_WRITE_MS: &str = "first_write_ms";
const LAST_WRITE_MS: &str = "last_write_ms";

/// What one page of a push did to the followers on it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reach {
    /// Followers whose cached timeline got the tweet.
    pub pushed: u64,
    /// Followers with no cached timeline, or not active, skipped.
    pub skipped_inactive: u64,
    /// Followers the lossy fan-out left out (`LOSSY_FANOUT_LIMIT`).
    pub skipped_lossy: u64,
}

/// What the worker recorded for one tweet.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Delivery {
    /// Followers whose cached home timeline the tweet was pushed into so far.
    pub pushed: u64,
    /// Followers skipped so far because no timeline of theirs is cached
    /// (or, with `ACTIVE_WINDOW_SECS`, they have not read within it): they
    /// get the tweet when their next read rebuilds their timeline.
    pub skipped_inactive: u64,
    /// Followers the lossy fan-out left out so far: they follow more
    /// accounts than `LOSSY_FANOUT_LIMIT`, and this tweet was drawn out of
    /// their timeline until its next rebuild.
    pub skipped_lossy: u64,
    /// `Some(followers)` when the author was a celebrity under the hybrid
    /// strategy: the tweet went to the author's own timeline only, and these
    /// followers (the author's count at fan-out time) pull it when they read.
    pub skipped_celebrity: Option<u64>,
    /// Wall-clock time of the first and the last pipeline that wrote it.
    pub first_write_ms: Option<i64>,
    pub last_write_ms: Option<i64>,
}

/// Handle to the records. Cloning is cheap: one multiplexed connection (or
/// a cluster's). A record is one key, so a Redis Cluster serves it as well.
#[derive(Clone)]
pub struct DeliveryLog {
    redis: RedisConnection,
    key_prefix: String,
}

impl DeliveryLog {
    pub fn new(redis: RedisConnection, key_prefix: &str) -> Self {
        Self {
            redis,
            key_prefix: key_prefix.to_owned(),
        }
    }

    fn key(&self, tweet_id: i64) -> String {
        format!("{}delivery:{tweet_id}", self.key_prefix)
    }

    /// Counts one more page of a push of `tweet_id`, written at `now_ms`.
    /// Best effort: a failure is logged, never returned.
    pub async fn pushed(&self, tweet_id: i64, reach: Reach, now_ms: i64) {
        let key = self.key(tweet_id);
        let mut pipe = redis::pipe();
        pipe.hincr(&key, PUSHED, reach.pushed)
            .ignore()
            .hincr(&key, SKIPPED_INACTIVE, reach.skipped_inactive)
            .ignore();
        if reach.skipped_lossy > 0 {
            pipe.hincr(&key, SKIPPED_LOSSY, reach.skipped_lossy)
                .ignore();
        }
        pipe.hset_nx(&key, FIRST_WRITE_MS, now_ms)
            .ignore()
            .hset(&key, LAST_WRITE_MS, now_ms)
            .ignore()
            .expire(&key, RECORD_TTL_SECS)
            .ignore();
        self.run(tweet_id, pipe).await;
    }

    /// Counts `followers` of a page of which the lossy fan-out left out
    /// every one, so that nothing was written. Best effort, as
    /// [`pushed`](Self::pushed).
    pub async fn lossy_skipped(&self, tweet_id: i64, followers: u64) {
        let key = self.key(tweet_id);
        let mut pipe = redis::pipe();
        pipe.hincr(&key, SKIPPED_LOSSY, followers)
            .ignore()
            .expire(&key, RECORD_TTL_SECS)
            .ignore();
        self.run(tweet_id, pipe).await;
    }

    /// Records that `tweet_id` was not pushed to the author's `followers`
    /// because the author is a celebrity. Best effort, as
    /// [`pushed`](Self::pushed).
    pub async fn celebrity_skipped(&self, tweet_id: i64, followers: u64) {
        let key = self.key(tweet_id);
        let mut pipe = redis::pipe();
        pipe.hset(&key, SKIPPED_CELEBRITY, followers)
            .ignore()
            .expire(&key, RECORD_TTL_SECS)
            .ignore();
        self.run(tweet_id, pipe).await;
    }

    async fn run(&self, tweet_id: i64, pipe: redis::Pipeline) {
        let written: redis::RedisResult<()> = pipe.query_async(&mut self.redis.clone()).await;
        if let Err(error) = written {
            tracing::warn!(tweet_id, %error, "could not record the delivery");
        }
    }

    /// The record of `tweet_id`; `None` when nothing was written yet, or
    /// the record expired.
    pub async fn read(&self, tweet_id: i64) -> redis::RedisResult<Option<Delivery>> {
        let fields: std::collections::HashMap<String, i64> =
            self.redis.clone().hgetall(self.key(tweet_id)).await?;
        if fields.is_empty() {
            return Ok(None);
        }
        let count = |field| fields.get(field).map(|&count: &i64| count.max(0) as u64);
        Ok(Some(Delivery {
            pushed: count(PUSHED).unwrap_or(0),
            skipped_inactive: count(SKIPPED_INACTIVE).unwrap_or(0),
            skipped_lossy: count(SKIPPED_LOSSY).unwrap_or(0),
            skipped_celebrity: count(SKIPPED_CELEBRITY),
            first_write_ms: fields.get(FIRST_WRITE_MS).copied(),
            last_write_ms: fields.get(LAST_WRITE_MS).copied(),
        }))
    }
}
