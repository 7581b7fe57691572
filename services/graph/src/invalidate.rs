//! Dropping home timelines, retried once on a broken Redis connection.
//!
//! The Redis connection manager reconnects by itself, but only once a
//! command has failed on the dead connection: after a Redis restart the first
//! drop would fail with `broken pipe`, and the follow that needed it would
//! answer 503. A drop is a `DEL`, idempotent, so it is sent once more on the
//! fresh connection; any other failure, or a second one, is the caller's.
//! One retry, not a loop: a Redis that is really down fails fast.

use chirp_timeline_store::TimelineDrops;

/// Drops the timelines of `user_ids`, as [`TimelineDrops::invalidate`] does.
pub async fn timelines(timelines: &TimelineDrops, user_ids: &[i64]) -> redis::RedisResult<()> {
    match timelines.invalidate(user_ids).await {
        Err(error) if error.is_connection_dropped() || error.is_unrecoverable_error() => {
            tracing::warn!(%error, "redis connection broken, dropping the timelines again");
            timelines.invalidate(user_ids).await
        }
        outcome => outcome,
    }
}
