//! Step 3 of a page, the pulled ids: the newest ids of each author the page
//! pulls ([`crate::followed`]), below the cursor.
//!
//! A pulled author is read by many timelines at once, so each one's newest
//! ids are kept in [`PulledIds`] for `PULLED_IDS_TTL_MS` and refreshed by one
//! query however many reads need them (served stale while refreshed:
//! [`crate::cache`]). The cost is staleness: a pulled author's new tweet
//! shows up to one TTL (and one background refresh) late. The cache holds
//! only the newest ids; a page deeper than that asks the tweet store
//! directly, which is rare and cheap.

use std::sync::Arc;
use std::time::Duration;

use chirp_grpc::Channel;
use chirp_proto::tweet::ListTweetsByAuthorRequest;
use chirp_proto::tweet::tweet_service_client::TweetServiceClient;
use futures::{StreamExt, TryStreamExt};
use metrics::counter;

use crate::cache::{Lookup, Revalidating};
use crate::stores::AUTHOR_CONCURRENCY;
use crate::{TimelineError, stats};

/// Ids cached per author: enough for the largest page plus its lookahead.
const CACHED_PER_AUTHOR: usize = 101;
/// The most authors cached at once.
const MAX_CACHED_AUTHORS: u64 = 100_000;

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

    /// Up to `want` ids older than `before` of each of `authors`, newest
    /// first, one list per author.
    pub async fn below_each(
        &self,
        authors: &[i64],
        before: Option<i64>,
        want: usize,
    ) -> Result<Vec<Vec<i64>>, TimelineError> {
        futures::stream::iter(authors.iter().copied())
            .map(|author_id| self.below(author_id, before, want))
            .buffer_unordered(AUTHOR_CONCURRENCY)
            .try_collect()
            .await
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
                let mut ids = recent_ids(tweets, author_id, None, CACHED_PER_AUTHOR + 1).await?;
                let complete = ids.len() <= CACHED_PER_AUTHOR;
                ids.truncate(CACHED_PER_AUTHOR);
                Ok(Arc::new(NewestIds { ids, complete }))
            }
        };
        let (newest, lookup) = self.cache.get(author_id, load).await?;
        let result = match lookup {
            Lookup::Hit => "hit",
            Lookup::Miss => "miss",
        };
        counter!(stats::PULLED_IDS_CACHE, "result" => result).increment(1);
        match newest.below(before, want) {
            Some(ids) => Ok(ids),
            None => recent_ids(self.tweets.clone(), author_id, before, want).await,
        }
    }
}

/// Up to `count` of `author_id`'s ids older than `before`, newest first, in
/// one `ListTweetsByAuthor`: a pulled list is at most a page and its
/// lookahead, well within the tweet service's page of 200, and a short
/// answer means the author has no more.
async fn recent_ids(
    mut tweets: TweetServiceClient<Channel>,
    author_id: i64,
    before: Option<i64>,
    count: usize,
) -> Result<Vec<i64>, TimelineError> {
    let page = tweets
        .list_tweets_by_author(ListTweetsByAuthorRequest {
            author_id,
            before_tweet_id: before,
            limit: count as u32,
        })
        .await
        .map_err(TimelineError::Tweet)?
        .into_inner();
    Ok(page.tweets.iter().map(|tweet| tweet.tweet_id).collect())
}
