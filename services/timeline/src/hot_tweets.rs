//! Hydration through an in-process cache of recently read tweets.
//!
//! A popular tweet sits in millions of timelines and is hydrated on every one
//! of their reads; without a cache each read asks the tweet store for it
//! again, and when it is not cached yet, every concurrent read misses at
//! once (a thundering herd). Here a miss starts one `BatchGetTweets` for all
//! the ids that are neither cached nor already being fetched, and every read
//! that needs one of those ids meanwhile waits for that same call. The fetch
//! runs as its own task, so it completes and fills the cache even if the
//! read that started it is cancelled. The cost is staleness: tweets are
//! immutable, but a deleted one stays visible for up to one TTL.
//!
//! An expired tweet is still served while the first read that finds it
//! expired refreshes it in the background (stale while revalidate): no read
//! waits for a refresh, so expiry never shows as a latency spike, and a
//! deleted tweet stays visible at most one refresh longer. The refresh is
//! batched per read, which is why this cache is not a
//! [`crate::refreshing_cache`], whose loads are one key each. Expiry
//! times are spread over the second half of the TTL, by tweet id
//! ([`crate::expiry`]), so that the tweets cached together (after a
//! restart, say) are not all refreshed together.
//!
//! A deleted tweet does not wait for its TTL: [`crate::deletions`] follows
//! the feed of deletions the fan-out worker writes and drops each from the
//! cache within about a second, so a stray id of it (a race kept it in a
//! timeline, or a pulled list not yet refreshed) hydrates to nothing.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use chirp_common::grpc::Channel;
use chirp_common::proto::tweet::tweet_service_client::TweetServiceClient;
use chirp_common::proto::tweet::{BatchGetTweetsRequest, Tweet};
use futures::FutureExt;
use futures::future::{BoxFuture, Shared};
use metrics::counter;
use tracing::Instrument;

use crate::TimelineError;
use crate::{expiry, stats};

/// One `BatchGetTweets` in flight, shared by every read waiting on it.
type Fetch = Shared<BoxFuture<'static, Result<Arc<HashMap<i64, Tweet>>, TimelineError>>>;

type Slots = Arc<Mutex<HashMap<i64, Slot>>>;

/// Cloning is shallow: clones share the cache.
#[derive(Clone)]
pub struct HotTweets {
    tweets: TweetServiceClient<Channel>,
    ttl: Duration,
    /// The most tweets cached; past it, new tweets are served but not kept
    /// until expired ones make room.
    capacity: usize,
    /// A plain mutex: held only to look up or insert, never across an await.
    slots: Slots,
}

#[derive(Clone)]
enum Slot {
    Cached {
        tweet: Tweet,
        expires_at: Instant,
        /// Expired, and a background fetch is refreshing it.
        refreshing: bool,
    },
    Fetching(Fetch),
}

impl HotTweets {
    pub fn new(tweets: TweetServiceClient<Channel>, ttl: Duration, capacity: usize) -> Self {
        Self {
            tweets,
            ttl,
            capacity,
            slots: Arc::default(),
        }
    }

    /// The tweets behind `ids`, in the order of `ids`. Ids the tweet service
    /// does not know were deleted after they reached the timeline: dropped.
    pub async fn hydrate(&self, ids: &[i64]) -> Result<Vec<Tweet>, TimelineError> {
        let mut found: HashMap<i64, Tweet> = HashMap::new();
        let mut fetches: Vec<Fetch> = Vec::new();
        {
            let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
            let now = Instant::now();
            let mut misses = Vec::new();
            let mut expired = Vec::new();
            let mut hits = 0;
            for &id in ids {
                match slots.get_mut(&id) {
                    Some(Slot::Cached {
                        tweet,
                        expires_at,
                        refreshing,
                    }) => {
                        found.insert(id, tweet.clone());
                        hits += 1;
                        if *expires_at <= now && !*refreshing {
                            *refreshing = true;
                            expired.push(id);
                        }
                    }
                    Some(Slot::Fetching(fetch)) => fetches.push(fetch.clone()),
                    None => misses.push(id),
                }
            }
            counter!(stats::TWEET_CACHE, "result" => "hit").increment(hits);
            counter!(stats::TWEET_CACHE, "result" => "miss").increment(ids.len() as u64 - hits);
            if !expired.is_empty() {
                // Nobody waits for it: the task refreshes the slots by itself.
                drop(self.start_fetch(expired));
            }
            if !misses.is_empty() {
                let fetch = self.start_fetch(misses.clone());
                for id in misses {
                    slots.insert(id, Slot::Fetching(fetch.clone()));
                }
                fetches.push(fetch);
            }
        }
        for batch in futures::future::join_all(fetches).await {
            found.extend(batch?.iter().map(|(&id, tweet)| (id, tweet.clone())));
        }
        Ok(ids.iter().filter_map(|id| found.remove(id)).collect())
    }

    /// Drops `ids` from the cache (they were deleted); returns how many
    /// were cached. A fetch already in flight for one of them may still
    /// cache it, found just before the deletion: for at most one TTL.
    pub fn forget(&self, ids: &[i64]) -> usize {
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        let mut forgotten = 0;
        for id in ids {
            if let Some(Slot::Cached { .. }) = slots.get(id) {
                slots.remove(id);
                forgotten += 1;
            }
        }
        forgotten
    }

    fn start_fetch(&self, ids: Vec<i64>) -> Fetch {
        // The task continues the trace of the read that started it.
        let task = tokio::spawn(
            fetch(
                self.tweets.clone(),
                Arc::clone(&self.slots),
                ids,
                self.ttl,
                self.capacity,
            )
            .in_current_span(),
        );
        async move {
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

/// Fetches `ids`, caches what was found, and clears the slots (fetching, or
/// expired and refreshing) of what was not, or of everything on failure, so
/// a later read asks again.
async fn fetch(
    tweets: TweetServiceClient<Channel>,
    slots: Slots,
    ids: Vec<i64>,
    ttl: Duration,
    capacity: usize,
) -> Result<Arc<HashMap<i64, Tweet>>, TimelineError> {
    let response = tweets
        .clone()
        .batch_get_tweets(BatchGetTweetsRequest {
            tweet_ids: ids.clone(),
        })
        .await
        .map_err(TimelineError::Tweet);
    let mut slots = slots.lock().unwrap_or_else(PoisonError::into_inner);
    for id in &ids {
        slots.remove(id);
    }
    let found: HashMap<i64, Tweet> = response?
        .into_inner()
        .tweets
        .into_iter()
        .map(|tweet| (tweet.tweet_id, tweet))
        .collect();
    let now = Instant::now();
    if slots.len() + found.len() > capacity {
        slots.retain(|_, slot| match slot {
            Slot::Cached { expires_at, .. } => *expires_at > now,
            Slot::Fetching(_) => true,
        });
    }
    for tweet in found.values() {
        if slots.len() >= capacity {
            break;
        }
        let tweet = tweet.clone();
        let expires_at = now + expiry::spread(ttl, tweet.tweet_id);
        slots.insert(
            tweet.tweet_id,
            Slot::Cached {
                tweet,
                expires_at,
                refreshing: false,
            },
        );
    }
    Ok(Arc::new(found))
}
