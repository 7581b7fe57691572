//! The recent tweet ids of one author, from the tweet store: what a home
//! timeline pulls instead of having it pushed.
//!
//! A celebrity is read by many timelines at once, so their newest ids are
//! cached in process for a short TTL and refreshed by one query however many
//! reads miss together. The cost is staleness: a celebrity's new tweet shows
//! up to one TTL late. The cache holds only the newest ids; a page deeper than
//! that asks the tweet store directly, which is rare and cheap.
//!
//! An expired entry is still served while one background query refreshes it
//! (stale while revalidate), so no read waits for a refresh: a new tweet
//! shows up to one TTL and one refresh late. The caching itself is
//! [`crate::refreshing_cache`]'s.

use std::sync::Arc;
use std::time::Duration;

use chirp_common::grpc::Channel;
use chirp_common::proto::tweet::ListTweetsByAuthorRequest;
use chirp_common::proto::tweet::tweet_service_client::TweetServiceClient;
use metrics::counter;

use crate::TimelineError;
use crate::refreshing_cache::{RefreshingCache, Source};
use crate::stats;

/// Ids cached per author: enough for the largest page plus its lookahead.
const CACHED_PER_AUTHOR: usize = 101;
/// The most authors cached at once.
const MAX_CACHED_AUTHORS: usize = 100_000;
/// The most one `ListTweetsByAuthor` page may hold (the tweet service's cap).
const MAX_AUTHOR_PAGE: usize = 200;

pub struct RecentTweets {
    tweets: TweetServiceClient<Channel>,
    cache: RefreshingCache<Arc<Recent>>,
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
            cache: RefreshingCache::new("celebrity_refresh", ttl, MAX_CACHED_AUTHORS),
        }
    }

    /// Up to `want` of `author_id`'s ids older than `before`, newest first.
    pub async fn below(
        &self,
        author_id: i64,
        before: Option<i64>,
        want: usize,
    ) -> Result<Vec<i64>, TimelineError> {
        let tweets = self.tweets.clone();
        let load = move || async move {
            let mut ids = newest(&tweets, author_id, None, CACHED_PER_AUTHOR + 1).await?;
            let complete = ids.len() <= CACHED_PER_AUTHOR;
            ids.truncate(CACHED_PER_AUTHOR);
            Ok(Arc::new(Recent { ids, complete }))
        };
        let (recent, source) = self.cache.get(author_id, load).await?;
        let result = match source {
            Source::Cache => "hit",
            Source::Load => "miss",
        };
        counter!(stats::CELEBRITY_CACHE, "result" => result).increment(1);
        match recent.below(before, want) {
            Some(ids) => Ok(ids),
            None => newest(&self.tweets, author_id, before, want).await,
        }
    }
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
