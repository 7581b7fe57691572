//! Which celebrities a reader follows, from the graph service, cached for a
//! short TTL.
//!
//! Under the hybrid strategy every page merges in the newest tweets of the
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
//! expires. The caching itself is [`crate::cache::Revalidating`]'s.
//!
//! The list is read a page at a time, up to [`MAX_AUTHORS_SCANNED`]
//! celebrities, the bound a rebuild puts on the followees it reads: a page
//! then merges at most that many pulled authors, each from the in-process
//! cache. A reader following more celebrities than that does not see the
//! tweets of the ones past it (by user id): none are pushed, and none pulled.

use std::sync::Arc;
use std::time::Duration;

use chirp_common::grpc::Channel;
use chirp_proto::graph::ListFollowedCelebritiesRequest;
use chirp_proto::graph::graph_service_client::GraphServiceClient;

use crate::TimelineError;
use crate::authors::MAX_AUTHORS_SCANNED;
use crate::cache::Revalidating;

/// Celebrities fetched per `ListFollowedCelebrities` call.
const CELEBRITIES_PAGE: u32 = 1_000;
/// The most readers cached at once.
const MAX_CACHED_READERS: u64 = 100_000;

/// Cloning is shallow: clones share the cache.
#[derive(Clone)]
pub struct FollowedCelebrities {
    graph: GraphServiceClient<Channel>,
    cache: Revalidating<Arc<[i64]>>,
}

impl FollowedCelebrities {
    pub fn new(graph: GraphServiceClient<Channel>, ttl: Duration) -> Self {
        Self {
            graph,
            cache: Revalidating::new("followed_celebrities", ttl, MAX_CACHED_READERS),
        }
    }

    /// The celebrities `user_id` follows, at most one TTL (and one refresh)
    /// old.
    pub async fn of(&self, user_id: i64) -> Result<Arc<[i64]>, TimelineError> {
        let (celebrities, _) = self.cache.get(user_id, || self.fetch(user_id)).await?;
        Ok(celebrities)
    }

    /// The celebrities `user_id` follows, fresh from the graph, and cached.
    pub async fn refresh(&self, user_id: i64) -> Result<Arc<[i64]>, TimelineError> {
        self.cache.refresh(user_id, self.fetch(user_id)).await
    }

    /// Every page of the list, up to [`MAX_AUTHORS_SCANNED`] celebrities.
    fn fetch(
        &self,
        user_id: i64,
    ) -> impl Future<Output = Result<Arc<[i64]>, TimelineError>> + Send + 'static {
        let mut graph = self.graph.clone();
        async move {
            let mut celebrities = Vec::new();
            let mut after_user_id = None;
            loop {
                let page = graph
                    .list_followed_celebrities(ListFollowedCelebritiesRequest {
                        user_id,
                        after_user_id,
                        limit: CELEBRITIES_PAGE,
                    })
                    .await
                    .map_err(TimelineError::Graph)?
                    .into_inner();
                celebrities.extend(page.user_ids);
                match page.next_after_user_id {
                    Some(next) if celebrities.len() < MAX_AUTHORS_SCANNED => {
                        after_user_id = Some(next);
                    }
                    _ => break,
                }
            }
            celebrities.truncate(MAX_AUTHORS_SCANNED);
            Ok(celebrities.into())
        }
    }
}
