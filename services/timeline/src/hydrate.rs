//! The last step of a page, hydration: tweet ids into tweets, through an
//! in-process cache of the tweets read recently.
//!
//! A popular tweet sits in millions of timelines and is hydrated on every one
//! of their reads; without a cache each read asks the tweet store for it
//! again, and when it is not cached yet, every concurrent read misses at
//! once (a thundering herd). Here a read's misses are fetched by one
//! `BatchGetTweets`, and a read that misses an id another read is already
//! fetching waits for that fetch (moka's `try_get_with` shares one load per
//! key). The fetch runs as a task of its own, so it completes and fills the
//! cache even if the read that started it is cancelled.
//!
//! Tweets never change, so the TTL (`TWEET_CACHE_TTL_MS`, spread by tweet
//! id) only bounds how long a deleted tweet can show where a race kept its
//! id. An expired tweet is simply fetched again with the page's other
//! misses: no stale-while-revalidate here, since a page with a miss pays
//! the one batched call any new tweet costs it anyway.
//!
//! A deleted tweet does not wait for its TTL: [`crate::deletions`] follows
//! the feed of deletions the fan-out worker writes and drops each from the
//! cache within about a second, so a stray id of it (a race kept it in a
//! timeline, or a pulled list not yet refreshed) hydrates to nothing.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chirp_common::grpc::Channel;
use chirp_proto::tweet::tweet_service_client::TweetServiceClient;
use chirp_proto::tweet::{BatchGetTweetsRequest, Tweet};
use futures::FutureExt;
use futures::future::{BoxFuture, Shared};
use metrics::counter;
use moka::future::Cache;
use tracing::Instrument;

use crate::cache::Spread;
use crate::{TimelineError, stats};

/// One `BatchGetTweets`, shared by the ids it fetches.
type Fetch = Shared<BoxFuture<'static, Result<Arc<HashMap<i64, Tweet>>, TimelineError>>>;

/// Why an id is not hydrated.
#[derive(Debug)]
enum Missing {
    /// The tweet service does not know it: deleted after it reached the
    /// timeline.
    Deleted,
    Failed(TimelineError),
}

/// Cloning is shallow: clones share the cache.
#[derive(Clone)]
pub struct CachedTweets {
    tweets: TweetServiceClient<Channel>,
    cache: Cache<i64, Tweet>,
}

impl CachedTweets {
    pub fn new(tweets: TweetServiceClient<Channel>, ttl: Duration, capacity: u64) -> Self {
        let cache = Cache::builder()
            .max_capacity(capacity)
            .expire_after(Spread(ttl))
            .build();
        Self { tweets, cache }
    }

    /// The tweets behind `ids`, in the order of `ids`; deleted ones are
    /// dropped.
    pub async fn hydrate(&self, ids: &[i64]) -> Result<Vec<Tweet>, TimelineError> {
        let mut found: Vec<Option<Tweet>> = Vec::with_capacity(ids.len());
        let mut misses = Vec::new();
        for (index, id) in ids.iter().enumerate() {
            let tweet = self.cache.get(id).await;
            if tweet.is_none() {
                misses.push(index);
            }
            found.push(tweet);
        }
        let hits = (ids.len() - misses.len()) as u64;
        counter!(stats::TWEET_CACHE, "result" => "hit").increment(hits);
        if !misses.is_empty() {
            counter!(stats::TWEET_CACHE, "result" => "miss").increment(misses.len() as u64);
            let fetch = self.fetch(misses.iter().map(|&index| ids[index]).collect());
            let loads = misses.iter().map(|&index| {
                let (id, fetch) = (ids[index], fetch.clone());
                self.cache.try_get_with(id, async move {
                    match fetch.await {
                        Ok(fetched) => fetched.get(&id).cloned().ok_or(Missing::Deleted),
                        Err(error) => Err(Missing::Failed(error)),
                    }
                })
            });
            let loaded = futures::future::join_all(loads).await;
            for (&index, outcome) in misses.iter().zip(loaded) {
                match outcome {
                    Ok(tweet) => found[index] = Some(tweet),
                    Err(missing) => match &*missing {
                        Missing::Deleted => {}
                        Missing::Failed(error) => return Err(error.clone()),
                    },
                }
            }
        }
        Ok(found.into_iter().flatten().collect())
    }

    /// Drops `ids` from the cache (they were deleted); returns how many
    /// were cached. A fetch already in flight for one of them may still
    /// cache it, found just before the deletion: for at most one TTL.
    pub async fn forget(&self, ids: &[i64]) -> usize {
        let mut forgotten = 0;
        for id in ids {
            if self.cache.remove(id).await.is_some() {
                forgotten += 1;
            }
        }
        forgotten
    }

    /// One `BatchGetTweets` for `ids`, started when first awaited, as a task
    /// that continues the trace of the read that started it.
    fn fetch(&self, ids: Vec<i64>) -> Fetch {
        let mut tweets = self.tweets.clone();
        let span = tracing::Span::current();
        async move {
            let task = tokio::spawn(
                async move {
                    let response = tweets
                        .batch_get_tweets(BatchGetTweetsRequest { tweet_ids: ids })
                        .await
                        .map_err(TimelineError::Tweet)?;
                    let fetched = response.into_inner().tweets.into_iter();
                    let by_id: HashMap<i64, Tweet> =
                        fetched.map(|tweet| (tweet.tweet_id, tweet)).collect();
                    Ok::<_, TimelineError>(Arc::new(by_id))
                }
                .instrument(span),
            );
            task.await.unwrap_or_else(|error| {
                Err(TimelineError::Tweet(tonic::Status::unavailable(format!(
                    "hydration stopped: {error}"
                ))))
            })
        }
        .boxed()
        .shared()
    }
}
