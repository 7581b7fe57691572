//! The recent tweet ids of one author, from the tweet store: what a home
//! timeline pulls instead of having it pushed.
//!
//! A celebrity is read by many timelines at once, so their newest ids are
//! cached in process for a short TTL and refreshed by one query however many
//! reads miss together. The cost is staleness: a celebrity's new tweet shows
//! up to one TTL late. The cache holds only the newest ids; a page deeper than
//! that asks the tweet store directly, which is rare and cheap.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use chirp_common::grpc::Channel;
use chirp_common::proto::tweet::ListTweetsByAuthorRequest;
use chirp_common::proto::tweet::tweet_service_client::TweetServiceClient;
use metrics::counter;

use crate::TimelineError;
use crate::single_flight::SingleFlight;
use crate::stats;

/// Ids cached per author: enough for the largest page plus its lookahead.
const CACHED_PER_AUTHOR: usize = 101;
/// The most authors cached at once; past it, stale entries are dropped, and
/// if none are, new authors are served but not cached.
const MAX_CACHED_AUTHORS: usize = 100_000;
/// The most one `ListTweetsByAuthor` page may hold (the tweet service's cap).
const MAX_AUTHOR_PAGE: usize = 200;

pub struct RecentTweets {
    tweets: TweetServiceClient<Channel>,
    ttl: Duration,
    /// A plain mutex: held only to look up or insert, never across an await.
    cache: Cache,
    refreshes: SingleFlight<i64, Result<Arc<Recent>, TimelineError>>,
}

type Cache = Arc<Mutex<HashMap<i64, Cached>>>;

struct Cached {
    recent: Arc<Recent>,
    fetched_at: Instant,
}

/// An author's newest ids at one moment.
struct Recent {
    /// Newest first.
    ids: Vec<i64>,
    /// The author had no more: a cursor below the last id finds nothing.
    complete: bool,
}

impl Recent {
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

impl RecentTweets {
    pub fn new(tweets: TweetServiceClient<Channel>, ttl: Duration) -> Self {
        Self {
            tweets,
            ttl,
            cache: Arc::default(),
            refreshes: SingleFlight::new("celebrity_refresh"),
        }
    }

    /// Up to `want` of `author_id`'s ids older than `before`, newest first.
    pub async fn below(
        &self,
        author_id: i64,
        before: Option<i64>,
        want: usize,
    ) -> Result<Vec<i64>, TimelineError> {
        let recent = match self.fresh(author_id) {
            Some(recent) => {
                counter!(stats::CELEBRITY_CACHE, "result" => "hit").increment(1);
                recent
            }
            None => {
                counter!(stats::CELEBRITY_CACHE, "result" => "miss").increment(1);
                let (tweets, cache, ttl) = (self.tweets.clone(), Arc::clone(&self.cache), self.ttl);
                self.refreshes
                    .run(author_id, move || refresh(tweets, cache, ttl, author_id))
                    .await?
            }
        };
        match recent.below(before, want) {
            Some(ids) => Ok(ids),
            None => newest(&self.tweets, author_id, before, want).await,
        }
    }

    fn fresh(&self, author_id: i64) -> Option<Arc<Recent>> {
        let cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        let cached = cache.get(&author_id)?;
        (cached.fetched_at.elapsed() < self.ttl).then(|| Arc::clone(&cached.recent))
    }
}

async fn refresh(
    tweets: TweetServiceClient<Channel>,
    cache: Cache,
    ttl: Duration,
    author_id: i64,
) -> Result<Arc<Recent>, TimelineError> {
    let mut ids = newest(&tweets, author_id, None, CACHED_PER_AUTHOR + 1).await?;
    let complete = ids.len() <= CACHED_PER_AUTHOR;
    ids.truncate(CACHED_PER_AUTHOR);
    let recent = Arc::new(Recent { ids, complete });
    let mut cache = cache.lock().unwrap_or_else(PoisonError::into_inner);
    if cache.len() >= MAX_CACHED_AUTHORS {
        cache.retain(|_, cached| cached.fetched_at.elapsed() < ttl);
    }
    if cache.len() < MAX_CACHED_AUTHORS {
        let fetched_at = Instant::now();
        let recent = Arc::clone(&recent);
        cache.insert(author_id, Cached { recent, fetched_at });
    }
    Ok(recent)
}

/// Up to `count` of `author_id`'s ids older than `before`, newest first,
/// straight from the tweet store, a page at a time.
pub async fn newest(
    tweets: &TweetServiceClient<Channel>,
    author_id: i64,
    mut before: Option<i64>,
    count: usize,
) -> Result<Vec<i64>, TimelineError> {
    let mut ids = Vec::new();
    while ids.len() < count {
        let limit = (count - ids.len()).min(MAX_AUTHOR_PAGE);
        let page = tweets
            .clone()
            .list_tweets_by_author(ListTweetsByAuthorRequest {
                author_id,
                before_tweet_id: before,
                limit: limit as u32,
            })
            .await
            .map_err(TimelineError::Tweet)?
            .into_inner();
        ids.extend(page.tweets.iter().map(|tweet| tweet.tweet_id));
        match page.next_before_tweet_id {
            Some(next) => before = Some(next),
            None => break,
        }
    }
    Ok(ids)
}
