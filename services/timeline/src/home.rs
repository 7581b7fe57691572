//! Assembling one page of a home timeline from its two halves: the ids the
//! fan-out worker pushed into Redis, and the ids pulled at read time from the
//! authors it did not push (celebrities, under the hybrid strategy).
//!
//! The pushed half is a cache: when a user's timeline is missing from Redis
//! (never built, expired, invalidated by a follow) it is rebuilt here from
//! the graph and the tweet store before being served. Concurrent reads of one
//! missing timeline share a single rebuild, so a burst of requests from one
//! cold user (or many app instances at once) does not become a burst of
//! rebuilds. Under the hybrid strategy a page also needs the celebrities its
//! reader follows ([`crate::followed`]): cached for a warm timeline, fetched
//! once for a cold one and shared by the page and the rebuild.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use chirp_common::grpc::Channel;
use chirp_common::proto::graph::ListFollowsRequest;
use chirp_common::proto::graph::graph_service_client::GraphServiceClient;
use chirp_common::proto::tweet::tweet_service_client::TweetServiceClient;
use chirp_common::timelines::{HomeTimelines, Strategy};
use futures::{StreamExt, TryStreamExt};
use metrics::{counter, histogram};

use crate::TimelineError;
use crate::followed::FollowedCelebrities;
use crate::merge;
use crate::recent::{self, RecentTweets};
use crate::single_flight::SingleFlight;
use crate::stats;

/// Authors queried at once while pulling or rebuilding: enough to hide the
/// latency of each query, few enough not to flood the tweet store.
const AUTHOR_CONCURRENCY: usize = 16;
/// Followees fetched per `ListFollowing` call.
const FOLLOWING_PAGE: u32 = 5_000;

pub struct Home {
    sources: Sources,
    /// Pulled authors' recent ids, reused across reads for a short TTL.
    recent: RecentTweets,
    rebuilds: SingleFlight<i64, Result<(), TimelineError>>,
}

/// What a page and a rebuild read from. Cloning is cheap (handles on shared
/// connections), so a rebuild owns its copy and outlives the read that
/// started it when that read is cancelled.
#[derive(Clone)]
struct Sources {
    graph: GraphServiceClient<Channel>,
    tweets: TweetServiceClient<Channel>,
    timelines: HomeTimelines,
    strategy: Strategy,
    celebrities: Arc<FollowedCelebrities>,
}

impl Home {
    pub fn new(
        graph: GraphServiceClient<Channel>,
        tweets: TweetServiceClient<Channel>,
        timelines: HomeTimelines,
        strategy: Strategy,
        celebrity_cache_ttl: Duration,
        followed_celebrities_ttl: Duration,
    ) -> Self {
        Self {
            recent: RecentTweets::new(tweets.clone(), celebrity_cache_ttl),
            sources: Sources {
                celebrities: Arc::new(FollowedCelebrities::new(
                    graph.clone(),
                    followed_celebrities_ttl,
                )),
                graph,
                tweets,
                timelines,
                strategy,
            },
            rebuilds: SingleFlight::new("rebuild"),
        }
    }

    /// Up to `limit` ids of `user_id`'s home timeline older than `before`,
    /// newest first, and the cursor of the next page when there is one.
    pub async fn page(
        &self,
        user_id: i64,
        before: Option<i64>,
        limit: usize,
    ) -> Result<(Vec<i64>, Option<i64>), TimelineError> {
        // Every source is asked for one more than the page: see `merge`.
        let want = limit + 1;
        let (pushed, pulled_authors) = match self.sources.strategy {
            Strategy::Push | Strategy::Hybrid => self.pushed(user_id, before, want).await?,
            Strategy::Pull => {
                let mut authors = self.sources.following(user_id).await?;
                authors.push(user_id);
                (Vec::new(), authors.into())
            }
        };
        histogram!(stats::CELEBRITIES_PULLED).record(pulled_authors.len() as f64);
        let mut sources: Vec<Vec<i64>> = futures::stream::iter(pulled_authors.iter().copied())
            .map(|author_id| self.recent.below(author_id, before, want))
            .buffer_unordered(AUTHOR_CONCURRENCY)
            .try_collect()
            .await?;
        sources.push(pushed);
        Ok(merge::newest_first(sources, limit))
    }

    /// The pushed half of a page, rebuilding the timeline first if Redis
    /// does not hold it complete; and the celebrities to pull (under the
    /// hybrid strategy; none under push).
    ///
    /// A timeline goes missing when its reader follows or unfollows someone,
    /// the very moment the followed celebrities change: so the rebuild, and
    /// this page with it, work from a list fresh from the graph, fetched
    /// once. A complete timeline takes the cached list.
    async fn pushed(
        &self,
        user_id: i64,
        before: Option<i64>,
        want: usize,
    ) -> Result<(Vec<i64>, Arc<[i64]>), TimelineError> {
        let hybrid = self.sources.strategy == Strategy::Hybrid;
        let celebrities = &self.sources.celebrities;
        let timelines = &self.sources.timelines;
        if let Some(ids) = timelines.page_if_complete(user_id, before, want).await? {
            let pulled = if hybrid {
                celebrities.of(user_id).await?
            } else {
                Arc::default()
            };
            return Ok((ids, pulled));
        }
        let pulled = if hybrid {
            celebrities.refresh(user_id).await?
        } else {
            Arc::default()
        };
        let (sources, skipped) = (self.sources.clone(), Arc::clone(&pulled));
        self.rebuilds
            .run(user_id, move || async move {
                sources.rebuild(user_id, skipped).await
            })
            .await?;
        Ok((timelines.page(user_id, before, want).await?, pulled))
    }
}

impl Sources {
    /// Rebuilds `user_id`'s pushed timeline: the newest ids of every author
    /// fan-out would have pushed to them (themselves and the followees it
    /// does not skip, the `pulled` celebrities), merged and cut to capacity,
    /// then written to Redis.
    #[tracing::instrument(skip(self))]
    async fn rebuild(self, user_id: i64, pulled: Arc<[i64]>) -> Result<(), TimelineError> {
        counter!(stats::REBUILDS).increment(1);
        let pulled: HashSet<i64> = pulled.iter().copied().collect();
        let mut authors = self.following(user_id).await?;
        authors.retain(|author_id| !pulled.contains(author_id));
        authors.push(user_id);
        let capacity = self.timelines.capacity();
        let sources: Vec<Vec<i64>> = futures::stream::iter(authors.iter().copied())
            .map(|author_id| {
                let tweets = self.tweets.clone();
                async move { recent::newest(&tweets, author_id, None, capacity).await }
            })
            .buffer_unordered(AUTHOR_CONCURRENCY)
            .try_collect()
            .await?;
        let (ids, _) = merge::newest_first(sources, capacity);
        self.timelines.store_rebuilt(user_id, &ids).await?;
        tracing::info!(
            authors = authors.len(),
            tweets = ids.len(),
            "timeline rebuilt"
        );
        Ok(())
    }

    /// Every user `user_id` follows, a page of the graph at a time.
    async fn following(&self, user_id: i64) -> Result<Vec<i64>, TimelineError> {
        let mut followees = Vec::new();
        let mut after_user_id = None;
        loop {
            let page = self
                .graph
                .clone()
                .list_following(ListFollowsRequest {
                    user_id,
                    after_user_id,
                    limit: FOLLOWING_PAGE,
                })
                .await
                .map_err(TimelineError::Graph)?
                .into_inner();
            followees.extend(page.user_ids);
            match page.next_after_user_id {
                Some(next) => after_user_id = Some(next),
                None => return Ok(followees),
            }
        }
    }
}
