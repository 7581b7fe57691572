//! Home timelines in Redis: the precomputed half of the design.
//!
//! A home timeline is a sorted set of tweet ids, newest last in Redis order
//! and read in reverse. Every member has the same score (0) and is the id
//! written as 19 zero-padded digits, so Redis orders members
//! lexicographically, which for equal-width digits is numeric order. A float
//! score cannot carry the id: a 63-bit Snowflake does not fit the 53-bit
//! mantissa of a double, and neighbouring tweets would tie. Padded ids also
//! make the page query a plain `ZRANGE … BYLEX REV`, exclusive of the cursor.
//!
//! Redis is a cache here, not the source of truth: a timeline can be missing
//! (never built, expired after [`TimelineStoreArgs::timeline_ttl_secs`] of
//! inactivity, evicted, invalidated by a follow) and is then rebuilt from the
//! graph and the tweet store. Redis deletes an empty sorted set, so a
//! *complete* timeline always holds a sentinel member, id 0 (no tweet has it),
//! which sorts below every tweet: it makes "built and empty" distinguishable
//! from "missing", and a key without it (created by a push to a timeline
//! nobody has built) counts as missing. Reads exclude it by their range, so
//! no caller ever sees it.
//!
//! The fan-out worker writes here and the timeline service reads here; this
//! module is the one place that knows the key and member layout.

use anyhow::Context;
use clap::{Args, ValueEnum};
use redis::aio::ConnectionManager;

/// Which authors' tweets are pushed into home timelines when written, and
/// which are pulled at read time. The fan-out worker and the timeline service
/// must agree, so both read this one setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Strategy {
    /// Push every tweet to every follower: the cheapest reads, and a
    /// celebrity's tweet costs millions of writes.
    Push,
    /// Push nothing; each read merges the recent tweets of every followee:
    /// the cheapest writes, and a read costs one query per followee.
    Pull,
    /// Push the tweets of ordinary authors, pull those of celebrities
    /// (`CELEBRITY_THRESHOLD` in the graph service): both stay bounded.
    Hybrid,
}

impl Strategy {
    /// Whether a new tweet of this author is written into followers' timelines.
    pub fn pushes(self, author_is_celebrity: bool) -> bool {
        match self {
            Self::Push => true,
            Self::Pull => false,
            Self::Hybrid => !author_is_celebrity,
        }
    }
}

#[derive(Debug, Clone, Args)]
pub struct TimelineStoreArgs {
    /// Redis holding the home timelines.
    #[arg(long, env = "REDIS_URL", default_value = "redis://127.0.0.1:6379")]
    pub redis_url: String,
    /// Prefix of every key, so several deployments (or test runs) can share one Redis.
    #[arg(long, env = "REDIS_KEY_PREFIX", default_value = "chirp:")]
    pub redis_key_prefix: String,
    /// Entries kept per home timeline; older ones are trimmed on write
    /// (Twitter kept 800). Reading further back falls through to the stores.
    #[arg(long, env = "TIMELINE_CAPACITY", default_value_t = 800)]
    pub timeline_capacity: usize,
    /// A timeline nobody read for this long expires and is rebuilt on the
    /// next read, so Redis holds the timelines of active users only.
    #[arg(long, env = "TIMELINE_TTL_SECS", default_value_t = 7 * 24 * 3600,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub timeline_ttl_secs: u64,
    /// push, pull or hybrid: see [`Strategy`].
    #[arg(long, env = "TIMELINE_STRATEGY", value_enum, default_value_t = Strategy::Hybrid)]
    pub timeline_strategy: Strategy,
}

/// Handle to the home timelines. Cloning is cheap: the connection manager is
/// one multiplexed connection that reconnects by itself.
#[derive(Clone)]
pub struct HomeTimelines {
    redis: ConnectionManager,
    key_prefix: String,
    capacity: usize,
    ttl_secs: u64,
}

impl HomeTimelines {
    pub async fn connect(args: &TimelineStoreArgs) -> anyhow::Result<Self> {
        let client = redis::Client::open(args.redis_url.as_str())
            .with_context(|| format!("parse REDIS_URL {}", args.redis_url))?;
        let redis = client
            .get_connection_manager()
            .await
            .with_context(|| format!("connect to Redis at {}", args.redis_url))?;
        Ok(Self {
            redis,
            key_prefix: args.redis_key_prefix.clone(),
            capacity: args.timeline_capacity.max(1),
            ttl_secs: args.timeline_ttl_secs,
        })
    }

    /// Entries kept per timeline: also how far back a rebuild reaches.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    fn key(&self, user_id: i64) -> String {
        format!("{}timeline:{user_id}", self.key_prefix)
    }

    /// Inserts `tweet_id` into the timeline of every user in `user_ids` and
    /// trims each to capacity, in one pipelined round trip. Adding a member
    /// that is already there changes nothing, so replaying an event is safe.
    ///
    /// A push to a missing timeline creates a partial one (no sentinel): a
    /// rebuild racing with this push then merges it instead of losing it.
    /// Such a key gets the TTL only if it has none (`NX`), so the timelines
    /// of users who never read expire, while pushes alone never keep a
    /// timeline alive.
    #[tracing::instrument(name = "timelines.push", skip(self, user_ids), fields(timelines = user_ids.len()))]
    pub async fn push(&self, user_ids: &[i64], tweet_id: i64) -> redis::RedisResult<()> {
        if user_ids.is_empty() {
            return Ok(());
        }
        let member = encode(tweet_id);
        let mut pipe = redis::pipe();
        for &user_id in user_ids {
            let key = self.key(user_id);
            pipe.zadd(&key, &member, 0).ignore();
            self.trim(&mut pipe, &key);
            pipe.cmd("EXPIRE")
                .arg(&key)
                .arg(self.ttl_secs)
                .arg("NX")
                .ignore();
        }
        pipe.query_async(&mut self.redis.clone()).await
    }

    /// Writes a rebuilt timeline: `tweet_ids` (newest first, at most
    /// capacity) plus the sentinel that marks it complete, merged with
    /// whatever pushes landed while it was being rebuilt, in one transaction.
    #[tracing::instrument(name = "timelines.store_rebuilt", skip(self, tweet_ids), fields(tweets = tweet_ids.len()))]
    pub async fn store_rebuilt(&self, user_id: i64, tweet_ids: &[i64]) -> redis::RedisResult<()> {
        let key = self.key(user_id);
        let mut members = vec![(0, encode(SENTINEL))];
        members.extend(tweet_ids.iter().map(|&id| (0, encode(id))));
        let mut pipe = redis::pipe();
        pipe.atomic().zadd_multiple(&key, &members).ignore();
        self.trim(&mut pipe, &key);
        pipe.expire(&key, self.ttl_secs as i64).ignore();
        pipe.query_async(&mut self.redis.clone()).await
    }

    /// Drops the timelines of `user_ids`, so their next read rebuilds them.
    #[tracing::instrument(name = "timelines.invalidate", skip(self, user_ids), fields(timelines = user_ids.len()))]
    pub async fn invalidate(&self, user_ids: &[i64]) -> redis::RedisResult<()> {
        if user_ids.is_empty() {
            return Ok(());
        }
        let keys: Vec<String> = user_ids.iter().map(|&id| self.key(id)).collect();
        redis::cmd("DEL")
            .arg(keys)
            .exec_async(&mut self.redis.clone())
            .await
    }

    /// Trims to capacity, oldest first, keeping the sentinel at rank 0.
    fn trim(&self, pipe: &mut redis::Pipeline, key: &str) {
        let newest_to_drop = -(self.capacity as isize) - 1;
        pipe.zremrangebyrank(key, 1, newest_to_drop).ignore();
    }

    /// Removes `tweet_id` from the timeline of every user in `user_ids`.
    #[tracing::instrument(name = "timelines.remove", skip(self, user_ids), fields(timelines = user_ids.len()))]
    pub async fn remove(&self, user_ids: &[i64], tweet_id: i64) -> redis::RedisResult<()> {
        if user_ids.is_empty() {
            return Ok(());
        }
        let member = encode(tweet_id);
        let mut pipe = redis::pipe();
        for &user_id in user_ids {
            pipe.zrem(self.key(user_id), &member).ignore();
        }
        pipe.query_async(&mut self.redis.clone()).await
    }

    /// Up to `limit` tweet ids of `user_id`'s timeline, newest first, all
    /// strictly older than `before` when given. A missing timeline reads as
    /// empty; see [`Self::page_if_complete`] to tell the two apart.
    #[tracing::instrument(name = "timelines.page", skip(self))]
    pub async fn page(
        &self,
        user_id: i64,
        before: Option<i64>,
        limit: usize,
    ) -> redis::RedisResult<Vec<i64>> {
        let members: Vec<String> = self
            .page_command(user_id, before, limit)
            .query_async(&mut self.redis.clone())
            .await?;
        Ok(members.iter().filter_map(|m| decode(m)).collect())
    }

    /// Like [`Self::page`], but `None` when the timeline is not complete
    /// (missing, or only partial pushes): the caller must rebuild it. A
    /// complete timeline has its TTL refreshed, in the same round trip.
    #[tracing::instrument(name = "timelines.page_if_complete", skip(self))]
    pub async fn page_if_complete(
        &self,
        user_id: i64,
        before: Option<i64>,
        limit: usize,
    ) -> redis::RedisResult<Option<Vec<i64>>> {
        let key = self.key(user_id);
        let mut pipe = redis::pipe();
        pipe.zscore(&key, encode(SENTINEL))
            .expire(&key, self.ttl_secs as i64)
            .ignore()
            .add_command(self.page_command(user_id, before, limit));
        let (sentinel, members): (Option<f64>, Vec<String>) =
            pipe.query_async(&mut self.redis.clone()).await?;
        Ok(sentinel.map(|_| members.iter().filter_map(|m| decode(m)).collect()))
    }

    /// `ZRANGE` from just below `before` (or the newest) down to just above
    /// the sentinel, which the exclusive lower bound leaves out.
    fn page_command(&self, user_id: i64, before: Option<i64>, limit: usize) -> redis::Cmd {
        let newest = before.map_or_else(|| "+".to_owned(), |id| format!("({}", encode(id)));
        let mut cmd = redis::cmd("ZRANGE");
        cmd.arg(self.key(user_id))
            .arg(newest)
            .arg(format!("({}", encode(SENTINEL)))
            .arg("BYLEX")
            .arg("REV")
            .arg("LIMIT")
            .arg(0)
            .arg(limit);
        cmd
    }
}

/// The member that marks a timeline complete; see the module doc.
const SENTINEL: i64 = 0;

fn encode(tweet_id: i64) -> String {
    format!("{tweet_id:019}")
}

fn decode(member: &str) -> Option<i64> {
    member.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_sorts_like_the_numbers() {
        let ids = [1_i64, 9, 10, 99_999, 7_000_000_000_000_000_000, i64::MAX];
        let mut encoded: Vec<String> = ids.iter().map(|&id| encode(id)).collect();
        encoded.sort();
        let decoded: Vec<i64> = encoded.iter().filter_map(|m| decode(m)).collect();
        assert_eq!(decoded, ids);
    }
}
