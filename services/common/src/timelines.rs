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
//! The fan-out worker writes here and the timeline service reads here; this
//! module is the one place that knows the key and member layout.

use anyhow::Context;
use clap::Args;
use redis::aio::ConnectionManager;

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
}

/// Handle to the home timelines. Cloning is cheap: the connection manager is
/// one multiplexed connection that reconnects by itself.
#[derive(Clone)]
pub struct HomeTimelines {
    redis: ConnectionManager,
    key_prefix: String,
    capacity: usize,
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
        })
    }

    fn key(&self, user_id: i64) -> String {
        format!("{}timeline:{user_id}", self.key_prefix)
    }

    /// Inserts `tweet_id` into the timeline of every user in `user_ids` and
    /// trims each to capacity, in one pipelined round trip. Adding a member
    /// that is already there changes nothing, so replaying an event is safe.
    pub async fn push(&self, user_ids: &[i64], tweet_id: i64) -> redis::RedisResult<()> {
        if user_ids.is_empty() {
            return Ok(());
        }
        let member = encode(tweet_id);
        let oldest_to_drop = -(self.capacity as isize) - 1;
        let mut pipe = redis::pipe();
        for &user_id in user_ids {
            let key = self.key(user_id);
            pipe.zadd(&key, &member, 0).ignore();
            pipe.zremrangebyrank(&key, 0, oldest_to_drop).ignore();
        }
        pipe.query_async(&mut self.redis.clone()).await
    }

    /// Removes `tweet_id` from the timeline of every user in `user_ids`.
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
    /// strictly older than `before` when given.
    pub async fn page(
        &self,
        user_id: i64,
        before: Option<i64>,
        limit: usize,
    ) -> redis::RedisResult<Vec<i64>> {
        let newest = before.map_or_else(|| "+".to_owned(), |id| format!("({}", encode(id)));
        let members: Vec<String> = redis::cmd("ZRANGE")
            .arg(self.key(user_id))
            .arg(newest)
            .arg("-")
            .arg("BYLEX")
            .arg("REV")
            .arg("LIMIT")
            .arg(0)
            .arg(limit)
            .query_async(&mut self.redis.clone())
            .await?;
        Ok(members.iter().filter_map(|m| decode(m)).collect())
    }
}

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
