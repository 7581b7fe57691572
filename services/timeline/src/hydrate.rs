//! Step 6 of a page, hydration: tweet ids into tweets, through an
//! in-process cache of the tweets read recently.
//!
//! A popular tweet sits in millions of timelines and is hydrated on every one
//! of their reads; without a cache each read asks the tweet store for it
//! again, and when it is not cached yet, every concurrent read misses at
//! once (a thundering herd). Here a read's misses are fetched by one
//! `BatchGetTweets`, and a read that misses an id another read is already
//! fetching waits for that fetch (the cache's placeholder for the id: one
//! load per key). The fetch runs as a task of its own, so a read cancelled
//! mid-fetch does not cut the call short for the reads that wait on it.
//!
//! The cache is `quick_cache`'s, not moka's like the service's other caches
//! ([`crate::cache`]): every page reads 20 or more tweets from it, and
//! moka's per-read bookkeeping (each read recorded for its eviction policy,
//! the records replayed on the readers) was the biggest single item of the
//! service's CPU per cached page (docs/BENCHMARKS.md). quick_cache keeps a
//! hit to a hash lookup under a shard's read lock. It has no expiry, so an
//! entry carries its own deadline and an expired one reads as a miss.
//!
//! Tweets never change, so the TTL (`TWEET_CACHE_TTL_MS`, spread by tweet
//! id, `crate::expiry::spread`) only bounds how long a deleted tweet can
//! show where a race kept its id. An expired tweet is simply fetched again
//! with the page's other misses: no stale-while-revalidate here, since a
//! page with a miss pays the one batched call any new tweet costs it anyway.
//!
//! A deleted tweet does not wait for its TTL: [`crate::deletions`] follows
//! the feed of deletions the fan-out worker writes and drops each from the
//! cache within about a second, so a stray id of it (a race kept it in a
//! timeline, or a pulled list not yet refreshed) hydrates to nothing.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::expiry::spread;
use chirp_grpc::Channel;
use chirp_proto::tweet::tweet_service_client::TweetServiceClient;
use chirp_proto::tweet::{BatchGetTweetsRequest, Tweet};
use futures::FutureExt;
use futures::future::{BoxFuture, Shared};
use metrics::counter;
use quick_cache::sync::Cache;
use tracing::Instrument;

use crate::{TimelineError, stats};

/// One `BatchGetTweets`, shared by the ids it fetches.
type Fetch = Shared<BoxFuture<'static, Result<Arc<HashMap<i64, Tweet>>, TimelineError>>>;

/// A cached tweet and the moment it stops being served.
#[derive(Clone)]
struct Entry {
    tweet: Tweet,
    expires: Instant,
}

/// Cloning is shallow: clones share the cache.
#[derive(Clone)]
pub struct CachedTweets {
    tweets: TweetServiceClient<Channel>,
    cache: Arc<Cache<i64, Entry>>,
    ttl: Duration,
}

impl CachedTweets {
    /// Keeps about `capacity` tweets, each for [`spread`] of `ttl`.
    pub fn new(tweets: TweetServiceClient<Channel>, ttl: Duration, capacity: u64) -> Self {
        let capacity = usize::try_from(capacity).unwrap_or(usize::MAX).max(1);
        Self {
            tweets,
            cache: Arc::new(Cache::new(capacity)),
            ttl,
        }
    }

    /// The tweets behind `ids`, in the order of `ids`; deleted ones are
    /// dropped.
    pub async fn hydrate(&self, ids: &[i64]) -> Result<Vec<Tweet>, TimelineError> {
        let now = Instant::now();
        let mut found: Vec<Option<Tweet>> = Vec::with_capacity(ids.len());
        let mut misses = Vec::new();
        for (index, id) in ids.iter().enumerate() {
            let tweet = match self.cache.get(id) {
                Some(entry) if entry.expires > now => Some(entry.tweet),
                Some(_) => {
                    self.cache.remove(id);
                    None
                }
                None => None,
            };
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
            let loads = misses
                .iter()
                .map(|&index| self.load(ids[index], fetch.clone()));
            let loaded = futures::future::join_all(loads).await;
            for (&index, outcome) in misses.iter().zip(loaded) {
                found[index] = outcome?;
            }
        }
        Ok(found.into_iter().flatten().collect())
    }

    /// `id`, from the read already loading it, or else from `fetch` (this
    /// read's batch), cached for the reads after it; `None` when the tweet
    /// service does not know it (deleted after it reached the timeline).
    /// A loader that fails or finds nothing caches nothing: a read waiting
    /// on it then loads the id through its own batch.
    async fn load(&self, id: i64, fetch: Fetch) -> Result<Option<Tweet>, TimelineError> {
        let guard = match self.cache.get_value_or_guard_async(&id).await {
            Ok(entry) => {
                // Another read's fetch brought it: the herd this cache spares
                // the tweet store, counted as the other caches count theirs.
                counter!(stats::COALESCED_WAITS, "work" => "tweet").increment(1);
                return Ok(Some(entry.tweet));
            }
            Err(guard) => guard,
        };
        let Some(tweet) = fetch.await?.get(&id).cloned() else {
            return Ok(None);
        };
        let expires = Instant::now() + spread(self.ttl, id);
        let _ = guard.insert(Entry {
            tweet: tweet.clone(),
            expires,
        });
        Ok(Some(tweet))
    }

    /// Drops `ids` from the cache (they were deleted); returns how many
    /// were cached. A fetch already in flight for one of them may still
    /// cache it, found just before the deletion: for at most one TTL.
    pub async fn forget(&self, ids: &[i64]) -> usize {
        let mut forgotten = 0;
        for id in ids {
            if self.cache.remove(id).is_some() {
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
