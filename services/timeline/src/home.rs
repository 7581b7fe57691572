//! Assembling one page of a home timeline from its sources: the ids the
//! fan-out worker pushed into Redis, the ids pulled at read time from the
//! authors it did not push (celebrities, under the hybrid strategy), and,
//! below what Redis holds, the tweet store itself.
//!
//! The pushed half is a cache: when a user's timeline is missing from Redis
//! (never built, expired, evicted, invalidated by a follow) it is rebuilt
//! here from the graph and the tweet store before being served, by a task
//! of its own that every read of that timeline shares ([`crate::rebuilds`]).
//! Redis holds at most `TIMELINE_CAPACITY` ids; a page that runs past the
//! oldest of them continues from the stores, reading the same authors a
//! rebuild would, so paging down never ends early nor skips a pushed
//! author. Under the hybrid strategy a page also needs the celebrities its
//! reader follows ([`crate::followed`]): cached for a warm timeline,
//! fetched afresh by a rebuild and shared with the page that waited on it.
//!
//! Every id of a page carries where it came from, and the page records how
//! long each step took: the `explain` of the API.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chirp_common::grpc::Channel;
use chirp_common::proto::graph::ListFollowsRequest;
use chirp_common::proto::graph::graph_service_client::GraphServiceClient;
use chirp_common::proto::timeline::{Hop, ItemSource, TimelineCache};
use chirp_common::proto::tweet::tweet_service_client::TweetServiceClient;
use chirp_common::timelines::{HomeTimelines, State, Strategy};
use futures::{StreamExt, TryStreamExt};
use metrics::{counter, histogram};

use crate::TimelineError;
use crate::authors::{self, AUTHOR_CONCURRENCY, MAX_AUTHORS_SCANNED};
use crate::followed::FollowedCelebrities;
use crate::merge;
use crate::rebuilds::Rebuilds;
use crate::recent::RecentTweets;
use crate::stats;

/// Followees fetched per `ListFollowing` call.
const FOLLOWING_PAGE: u32 = 5_000;

pub struct Home {
    sources: Sources,
    /// Pulled authors' recent ids, reused across reads for a short TTL.
    recent: RecentTweets,
    rebuilds: Rebuilds<Rebuilt>,
}

/// What a page and a rebuild read from. Cloning is cheap (handles on shared
/// connections), so a rebuild task owns its copy.
#[derive(Clone)]
struct Sources {
    graph: GraphServiceClient<Channel>,
    tweets: TweetServiceClient<Channel>,
    timelines: HomeTimelines,
    strategy: Strategy,
    celebrities: Arc<FollowedCelebrities>,
}

/// One page of ids and how it was made.
pub struct Page {
    /// Newest first.
    pub ids: Vec<i64>,
    /// Where each id came from.
    pub sources: HashMap<i64, ItemSource>,
    pub next_before: Option<i64>,
    pub cache: TimelineCache,
    pub pulled_authors: Arc<[i64]>,
    pub hops: Hops,
}

/// What a rebuild read: the ids it wrote (or would have written, had it not
/// been stale) and the celebrities it left out.
struct Rebuilt {
    /// Newest first, at most the capacity.
    ids: Vec<i64>,
    /// Older ids exist below the last one.
    cut: bool,
    pulled: Arc<[i64]>,
}

/// The pushed half of a page: ids newest first, each with its source.
struct Pushed {
    ids: Vec<(i64, ItemSource)>,
    cache: TimelineCache,
    pulled: Arc<[i64]>,
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
            rebuilds: Rebuilds::new(),
        }
    }

    /// Up to `limit` ids of `user_id`'s home timeline older than `before`,
    /// newest first, and the cursor of the next page when there is one.
    pub async fn page(
        &self,
        user_id: i64,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Page, TimelineError> {
        let mut hops = Hops::start();
        // Every source is asked for one more than the page: see `merge`.
        let want = limit + 1;
        let pushed = match self.sources.strategy {
            Strategy::Push | Strategy::Hybrid => {
                self.pushed(user_id, before, want, &mut hops).await?
            }
            Strategy::Pull => {
                let mut authors = self.sources.following(user_id).await?;
                authors.push(user_id);
                hops.lap("graph");
                Pushed {
                    ids: Vec::new(),
                    cache: TimelineCache::None,
                    pulled: authors.into(),
                }
            }
        };
        histogram!(stats::CELEBRITIES_PULLED).record(pushed.pulled.len() as f64);
        let mut pulled: Vec<Vec<i64>> = futures::stream::iter(pushed.pulled.iter().copied())
            .map(|author_id| self.recent.below(author_id, before, want))
            .buffer_unordered(AUTHOR_CONCURRENCY)
            .try_collect()
            .await?;
        if !pushed.pulled.is_empty() {
            hops.lap("pull");
        }
        let mut sources: HashMap<i64, ItemSource> = pushed.ids.iter().copied().collect();
        for &id in pulled.iter().flatten() {
            sources.entry(id).or_insert(ItemSource::Pulled);
        }
        pulled.push(pushed.ids.iter().map(|&(id, _)| id).collect());
        let (ids, next_before) = merge::newest_first(pulled, limit);
        sources.retain(|id, _| ids.contains(id));
        hops.lap("merge");
        Ok(Page {
            ids,
            sources,
            next_before,
            cache: pushed.cache,
            pulled_authors: pushed.pulled,
            hops,
        })
    }

    /// The pushed half of a page: from Redis, rebuilding the timeline first
    /// if Redis does not hold it complete, and from the stores below the
    /// oldest id Redis holds; and the celebrities to pull (under the hybrid
    /// strategy; none under push).
    async fn pushed(
        &self,
        user_id: i64,
        before: Option<i64>,
        want: usize,
        hops: &mut Hops,
    ) -> Result<Pushed, TimelineError> {
        let timelines = &self.sources.timelines;
        let cached = timelines.read(user_id, before, want).await?;
        hops.lap("redis page");
        let (mut ids, cut, cache, pulled) = match cached.state {
            State::Complete { cut } => {
                let pulled = self.sources.followed_celebrities(user_id).await?;
                let ids = tag(cached.ids, ItemSource::Pushed);
                (ids, cut, TimelineCache::Hit, pulled)
            }
            State::Missing | State::Rebuilding => {
                let sources = self.sources.clone();
                let rebuilt = self
                    .rebuilds
                    .run(user_id, move || sources.rebuild(user_id))
                    .await?;
                hops.lap("rebuild");
                // Pushes that landed during the rebuild are in Redis only.
                let landed = timelines.page(user_id, before, want).await?;
                let ids = with_rebuilt(&rebuilt.ids, landed, before, want);
                (
                    ids,
                    rebuilt.cut,
                    TimelineCache::Rebuilt,
                    Arc::clone(&rebuilt.pulled),
                )
            }
        };
        if cut && ids.len() < want {
            let below = ids.last().map_or(before, |&(id, _)| Some(id));
            let authors = self.sources.pushed_authors(user_id, &pulled).await?;
            let count = want - ids.len();
            let older =
                authors::newest(&self.sources.tweets, &authors, below, count, count).await?;
            ids.extend(tag(older.ids, ItemSource::Store));
            hops.lap("store");
        }
        Ok(Pushed { ids, cache, pulled })
    }
}

impl Sources {
    /// The celebrities `user_id` pulls: under hybrid, the cached list;
    /// under push, none.
    async fn followed_celebrities(&self, user_id: i64) -> Result<Arc<[i64]>, TimelineError> {
        match self.strategy {
            Strategy::Hybrid => self.celebrities.of(user_id).await,
            Strategy::Push | Strategy::Pull => Ok(Arc::default()),
        }
    }

    /// Rebuilds `user_id`'s pushed timeline: the newest ids of every author
    /// fan-out would have pushed to them (themselves and the followees who
    /// are not pulled), written to Redis if no follow change made them
    /// stale meanwhile.
    ///
    /// The order matters: the rebuild is registered (its token stored)
    /// *before* the graph is read, so a follow change committed after that
    /// read invalidates the token, and this rebuild cannot complete.
    #[tracing::instrument(skip(self))]
    async fn rebuild(self, user_id: i64) -> Result<Rebuilt, TimelineError> {
        counter!(stats::REBUILDS).increment(1);
        let token = self.timelines.begin_rebuild(user_id).await?;
        let pulled = match self.strategy {
            Strategy::Hybrid => self.celebrities.refresh(user_id).await?,
            Strategy::Push | Strategy::Pull => Arc::default(),
        };
        let authors = self.pushed_authors(user_id, &pulled).await?;
        let capacity = self.timelines.capacity();
        let per_author = authors::per_author(capacity, authors.len());
        let newest = authors::newest(&self.tweets, &authors, None, capacity, per_author).await?;
        let completed = self
            .timelines
            .complete_rebuild(user_id, &token, &newest.ids, newest.more)
            .await?;
        if !completed {
            counter!(stats::STALE_REBUILDS).increment(1);
        }
        tracing::info!(
            authors = authors.len(),
            tweets = newest.ids.len(),
            cut = newest.more,
            completed,
            "timeline rebuilt"
        );
        Ok(Rebuilt {
            ids: newest.ids,
            cut: newest.more,
            pulled,
        })
    }

    /// The authors whose tweets fan-out pushes to `user_id`: themselves and
    /// whom they follow, but the `pulled` ones; at most
    /// [`MAX_AUTHORS_SCANNED`] followees.
    async fn pushed_authors(
        &self,
        user_id: i64,
        pulled: &[i64],
    ) -> Result<Vec<i64>, TimelineError> {
        let pulled: HashSet<i64> = pulled.iter().copied().collect();
        let mut authors = self.following(user_id).await?;
        authors.retain(|author_id| !pulled.contains(author_id));
        authors.push(user_id);
        Ok(authors)
    }

    /// The users `user_id` follows, a page of the graph at a time, at most
    /// [`MAX_AUTHORS_SCANNED`].
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
                Some(next) if followees.len() < MAX_AUTHORS_SCANNED => after_user_id = Some(next),
                _ => {
                    followees.truncate(MAX_AUTHORS_SCANNED);
                    return Ok(followees);
                }
            }
        }
    }
}

fn tag(ids: Vec<i64>, source: ItemSource) -> Vec<(i64, ItemSource)> {
    ids.into_iter().map(|id| (id, source)).collect()
}

/// The rebuilt ids older than `before`, and the ids Redis holds there (the
/// rebuilt ones, plus pushes that landed during the rebuild; or nothing, if
/// the rebuild could not complete), merged: up to `want`, newest first.
fn with_rebuilt(
    rebuilt: &[i64],
    landed: Vec<i64>,
    before: Option<i64>,
    want: usize,
) -> Vec<(i64, ItemSource)> {
    let rebuilt: HashSet<i64> = rebuilt
        .iter()
        .copied()
        .filter(|&id| before.is_none_or(|before| id < before))
        .collect();
    let mut ids: Vec<i64> = landed.into_iter().chain(rebuilt.iter().copied()).collect();
    ids.sort_unstable_by(|a, b| b.cmp(a));
    ids.dedup();
    ids.truncate(want);
    ids.into_iter()
        .map(|id| {
            let source = if rebuilt.contains(&id) {
                ItemSource::Rebuilt
            } else {
                ItemSource::Pushed
            };
            (id, source)
        })
        .collect()
}

/// The time each step of a read took, in order. Measured on every read
/// (an `Instant::now()` per step); sent only when asked for.
pub struct Hops {
    last: Instant,
    hops: Vec<Hop>,
}

impl Hops {
    pub fn start() -> Self {
        Self {
            last: Instant::now(),
            hops: Vec::new(),
        }
    }

    /// Ends the step `name`, which began when the previous one ended.
    pub fn lap(&mut self, name: &str) {
        let now = Instant::now();
        self.hops.push(Hop {
            name: name.to_owned(),
            micros: now.duration_since(self.last).as_micros() as u64,
        });
        self.last = now;
    }

    pub fn into_vec(self) -> Vec<Hop> {
        self.hops
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rebuilt_page_merges_the_pushes_that_landed_meanwhile() {
        let page = with_rebuilt(&[9, 7, 5, 3], vec![8, 7, 5], Some(9), 3);
        assert_eq!(
            page,
            [
                (8, ItemSource::Pushed),
                (7, ItemSource::Rebuilt),
                (5, ItemSource::Rebuilt)
            ]
        );
        let page = with_rebuilt(&[9, 7], vec![10, 9, 7], None, 5);
        assert_eq!(page[0], (10, ItemSource::Pushed));
        assert_eq!(page.len(), 3);
    }
}
