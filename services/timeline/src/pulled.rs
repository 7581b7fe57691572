//! Step 2 of a page, the pulled authors: whose tweets a page merges in at
//! read time because fan-out did not push them, and their newest ids.
//!
//! Who is pulled depends on the strategy: under hybrid, the celebrities the
//! reader follows, stored with the timeline by its rebuild
//! ([`crate::followed`]); under pull, everyone they follow and themselves;
//! under push, nobody. A pulled author is read by many
//! timelines at once, so each one's newest ids are kept in [`PulledIds`]
//! for `PULLED_IDS_TTL_MS` and refreshed by one query however many reads
//! need them. The cost is staleness: a pulled author's new tweet shows up to
//! one TTL (and one background refresh) late. The cache holds only the
//! newest ids; a page deeper than that asks the tweet store directly, which
//! is rare and cheap.

use std::sync::Arc;
use std::time::Duration;

use chirp_common::grpc::Channel;
use chirp_proto::graph::graph_service_client::GraphServiceClient;
use chirp_proto::tweet::tweet_service_client::TweetServiceClient;
use chirp_timelines::Strategy;
use futures::{StreamExt, TryStreamExt};
use metrics::{counter, histogram};

use crate::authors::{self, AUTHOR_CONCURRENCY};
use crate::cache::{Revalidating, Source};
use crate::{TimelineError, stats};

/// Ids cached per author: enough for the largest page plus its lookahead.
const CACHED_PER_AUTHOR: usize = 101;
/// The most authors cached at once.
const MAX_CACHED_AUTHORS: u64 = 100_000;

pub struct Pulled {
    strategy: Strategy,
    graph: GraphServiceClient<Channel>,
    ids: PulledIds,
}

impl Pulled {
    pub fn new(strategy: Strategy, graph: GraphServiceClient<Channel>, ids: PulledIds) -> Self {
        Self {
            strategy,
            graph,
            ids,
        }
    }

    /// The authors `user_id`'s page pulls, given those `stored` with the
    /// pushed page.
    pub async fn authors(
        &self,
        user_id: i64,
        stored: Arc<[i64]>,
    ) -> Result<Arc<[i64]>, TimelineError> {
        let authors = match self.strategy {
            Strategy::Hybrid => stored,
            Strategy::Pull => {
                let mut authors = authors::following(&self.graph, user_id).await?;
                authors.push(user_id);
                authors.into()
            }
            Strategy::Push => Arc::default(),
        };
        histogram!(stats::PULLED_AUTHORS).record(authors.len() as f64);
        Ok(authors)
    }

    /// Up to `want` ids older than `before` of each of `authors`, newest
    /// first, one list per author.
    pub async fn ids(
        &self,
        authors: &[i64],
        before: Option<i64>,
        want: usize,
    ) -> Result<Vec<Vec<i64>>, TimelineError> {
        futures::stream::iter(authors.iter().copied())
            .map(|author_id| self.ids.below(author_id, before, want))
            .buffer_unordered(AUTHOR_CONCURRENCY)
            .try_collect()
            .await
    }
}

/// Each pulled author's newest tweet ids, from the tweet store, cached.
pub struct PulledIds {
    tweets: TweetServiceClient<Channel>,
    cache: Revalidating<Arc<NewestIds>>,
}

/// An author's newest ids at one moment.
struct NewestIds {
    /// Newest first.
    ids: Vec<i64>,
    /// The author had no more: a cursor below the last id finds nothing.
    complete: bool,
}

impl NewestIds {
    /// Up to `want` ids older than `before`, or `None` when this snapshot
    /// does not reach far enough back to tell.
    fn below(&self, before: Option<i64>, want: usize) -> Option<Vec<i64>> {
        let ids: Vec<i64> = self
            .ids
            .iter()
            .filter(|&&id| before.is_none_or(|before| id < before))
            .take(want)
            .copied()
            .collect();
        (ids.len() == want || self.complete).then_some(ids)
    }
}

impl PulledIds {
    pub fn new(tweets: TweetServiceClient<Channel>, ttl: Duration) -> Self {
        Self {
            tweets,
            cache: Revalidating::new("pulled_ids", ttl, MAX_CACHED_AUTHORS),
        }
    }

    /// Up to `want` of `author_id`'s ids older than `before`, newest first.
    async fn below(
        &self,
        author_id: i64,
        before: Option<i64>,
        want: usize,
    ) -> Result<Vec<i64>, TimelineError> {
        let load = || {
            let tweets = self.tweets.clone();
            async move {
                let mut ids =
                    authors::newest_of(&tweets, author_id, None, CACHED_PER_AUTHOR + 1).await?;
                let complete = ids.len() <= CACHED_PER_AUTHOR;
                ids.truncate(CACHED_PER_AUTHOR);
                Ok(Arc::new(NewestIds { ids, complete }))
            }
        };
        let (newest, source) = self.cache.get(author_id, load).await?;
        let result = match source {
            Source::Cache => "hit",
            Source::Load => "miss",
        };
        counter!(stats::PULLED_IDS_CACHE, "result" => result).increment(1);
        match newest.below(before, want) {
            Some(ids) => Ok(ids),
            None => authors::newest_of(&self.tweets, author_id, before, want).await,
        }
    }
}
