//! The worker's side of `GET /tweets/{id}/delivery`: each push it makes is
//! also counted in the tweet's delivery record (`chirp_redis::delivery`),
//! so a client can watch a fan-out progress and see when it ended.
//!
//! It is kept apart from [`crate::fanout`] so that what a tweet does to the
//! timelines reads without it: two one-line hooks there, and the policy
//! here. Only pushes are recorded (a delete has nobody waiting on it), and a
//! failed record never fails the event: the record is for people watching,
//! the timelines are what matter.

use chirp_redis::connection::RedisConnection;
use chirp_redis::delivery;
use chirp_timelines::TimelineStoreArgs;

pub use chirp_redis::delivery::DeliveryLog;

/// A log in the Redis that holds the timelines (a node or a cluster), under
/// the same key prefix.
pub async fn connect(store: &TimelineStoreArgs) -> anyhow::Result<DeliveryLog> {
    let redis =
        RedisConnection::connect(&store.redis.target(), store.redis.response_timeout()).await?;
    Ok(DeliveryLog::new(redis, &store.redis.redis_key_prefix))
}

/// After one pipeline wrote `timelines` timelines with `change` (the
/// timeline-writes metric's label) for `tweet_id`.
pub async fn written(log: Option<&DeliveryLog>, change: &str, tweet_id: i64, timelines: usize) {
    if let (Some(log), "push") = (log, change) {
        log.pushed(tweet_id, timelines, delivery::now_ms()).await;
    }
}

/// After a celebrity's tweet went to the author's timeline only.
pub async fn celebrity_skipped(log: Option<&DeliveryLog>, tweet_id: i64) {
    if let Some(log) = log {
        log.celebrity_skipped(tweet_id).await;
    }
}
