//! Following the feed of deleted tweets, so that the hydration cache
//! forgets them within a poll interval instead of one TTL.
//!
//! The fan-out worker appends every deletion to one Redis stream
//! (`chirp_timeline_store`); each timeline service reads what is new
//! every [`POLL`], a single cheap `XRANGE` whatever the traffic, where
//! checking every page's ids against tombstones would cost a round trip per
//! read. A failed poll is retried at the next one, from the same position,
//! so Redis being away delays forgetting but skips nothing (unless the
//! stream was trimmed past the position meanwhile: then the hydration
//! cache's TTL is the bound, as before this existed).

use std::time::Duration;

use chirp_timeline_store::HomeTimelines;
use metrics::counter;

use crate::hydrate::CachedTweets;
use crate::stats;

/// How often the feed is read: how late, at most, a deleted tweet leaves
/// the cache.
pub const POLL: Duration = Duration::from_millis(500);

/// Drops every tweet deleted from now on from `cache`. Runs until dropped.
pub async fn follow(timelines: HomeTimelines, cache: CachedTweets) {
    let mut position: Option<String> = None;
    let mut interval = tokio::time::interval(POLL);
    loop {
        interval.tick().await;
        match timelines.deleted_since(position.as_deref()).await {
            Ok((deleted, next)) => {
                let forgotten = cache.forget(&deleted).await;
                counter!(stats::FORGOTTEN_TWEETS).increment(forgotten as u64);
                position = Some(next);
            }
            Err(error) => tracing::warn!(%error, "reading the feed of deleted tweets failed"),
        }
    }
}
