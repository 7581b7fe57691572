//! Which celebrities a reader follows, from the graph service, cached for a
//! short TTL.
//!
//! Under the hybrid strategy every page merges in the recent tweets of the
//! celebrities its reader follows, so every page needs that list. Asking the
//! graph for it each time costs a call and a Postgres query per page, more
//! than the Redis read it complements. The list changes only when the reader
//! follows or unfollows someone, or a followee crosses the threshold. The
//! first two drop the reader's timeline (the graph service does it), and a
//! rebuild fetches the list afresh; so does a followee falling below the
//! threshold, which drops their followers' timelines. Only a followee rising
//! above it is seen late: the list is kept for
//! `FOLLOWED_CELEBRITIES_TTL_MS`, and until it expires the new celebrity's
//! tweets, no longer pushed, are not pulled either; they show up once it
//! expires. The caching itself (stale while revalidate, coalesced misses,
//! spread expiry) is [`crate::refreshing_cache`]'s.

use std::sync::Arc;
use std::time::Duration;

use chirp_common::grpc::Channel;
use chirp_common::proto::graph::ListFollowedCelebritiesRequest;
use chirp_common::proto::graph::graph_service_client::GraphServiceClient;

use crate::TimelineError;
use crate::refreshing_cache::RefreshingCache;

/// The most readers cached at once.
const MAX_CACHED_READERS: usize = 100_000;

pub struct FollowedCelebrities {
    graph: GraphServiceClient<Channel>,
    cache: RefreshingCache<Arc<[i64]>>,
}

impl FollowedCelebrities {
    pub fn new(graph: GraphServiceClient<Channel>, ttl: Duration) -> Self {
        Self {
            graph,
            cache: RefreshingCache::new("followed_celebrities", ttl, MAX_CACHED_READERS),
        }
    }

    /// The celebrities `user_id` follows, at most one TTL (and one refresh)
    /// old.
    pub async fn of(&self, user_id: i64) -> Result<Arc<[i64]>, TimelineError> {
        let (celebrities, _) = self.cache.get(user_id, || self.fetch(user_id)).await?;
        Ok(celebrities)
    }

    /// The celebrities `user_id` follows, fresh from the graph (one call
    /// however many ask at once), and cached.
    pub async fn refresh(&self, user_id: i64) -> Result<Arc<[i64]>, TimelineError> {
        self.cache.refresh(user_id, || self.fetch(user_id)).await
    }

    fn fetch(
        &self,
        user_id: i64,
    ) -> impl Future<Output = Result<Arc<[i64]>, TimelineError>> + Send + 'static {
        let mut graph = self.graph.clone();
        async move {
            let celebrities = graph
                .list_followed_celebrities(ListFollowedCelebritiesRequest { user_id })
                .await
                .map_err(TimelineError::Graph)?
                .into_inner()
                .user_ids;
            Ok(celebrities.into())
        }
    }
}
