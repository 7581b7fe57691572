//! Which celebrities a reader follows, from the graph service, cached for a
//! short TTL.
//!
//! Under the hybrid strategy every page merges in the recent tweets of the
//! celebrities its reader follows, so every page needs that list. Asking the
//! graph for it each time costs a call and a Postgres query per page, more
//! than the Redis read it complements. The list changes only when the reader
//! follows or unfollows a celebrity or a followee crosses the threshold, so
//! it is kept for `CELEBRITY_CACHE_TTL_MS`, the staleness the pulled tweets
//! already have: a celebrity just followed or unfollowed is pulled, or not,
//! up to one TTL (and one refresh) late, except that a rebuild of the
//! reader's timeline (which a follow or an unfollow causes) fetches it
//! afresh. The caching itself (stale while revalidate, coalesced misses,
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
