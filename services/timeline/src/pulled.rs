//! Step 3 of a page, the pulled ids: the newest ids of each author the page
//! pulls ([`crate::followed`]), below the cursor.
//!
//! A pulled author is read by many timelines at once, so each one's newest
//! ids are kept in [`PulledIds`] for `PULLED_IDS_TTL_MS` and refreshed by one
//! query however many reads need them (served stale while refreshed:
//! [`crate::cache`]). The cost is staleness: a pulled author's new tweet
//! shows up to one TTL (and one background refresh) late. The cache holds
//! only the newest ids; a page deeper than that asks the tweet store
//! directly, one query per author whose cached ids do not reach back. A
//! reader pulls from up to 5 000 authors, so a deep page could make 5 000
//! such queries, page after page: at most `PULLED_STORE_MAX_AUTHORS` are
//! made (the first authors in the list, by user id), and the others give
//! what their cache holds below the cursor, which the page's explanation
//! says ([`Pulled::left_out`]).

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
    /// Up to `want` ids older than `before`, and whether they are all there
    /// are: false when this snapshot does not reach far enough back to tell.
    fn below(&self, before: Option<i64>, want: usize) -> (Vec<i64>, bool) {
        let ids: Vec<i64> = self
            .ids
            .iter()
            .filter(|&&id| before.is_none_or(|before| id < before))
            .take(want)
            .copied()
            .collect();
        let exact = ids.len() == want || self.complete;
        (ids, exact)
    }
}

/// The pulled lists of one page, one per author, newest first.
pub struct Pulled {
    pub lists: Vec<Vec<i64>>,
    /// Authors whose cached ids did not reach back to the page: those read
    /// from the tweet store, and those left out by the bound on such reads
    /// (their list holds only what their cache had below the cursor).
    pub read: usize,
    pub left_out: usize,
}

impl PulledIds {
    pub fn new(tweets: TweetServiceClient<Channel>, ttl: Duration) -> Self {
        Self {
            tweets,
            cache: Revalidating::new("pulled_ids", ttl, MAX_CACHED_AUTHORS),
        }
    }

    /// Up to `want` ids older than `before` of each of `authors`, newest
    /// first, one list per author, in the order of `authors`: from the
    /// cache, and from the tweet store for at most `max_store_reads` of the
    /// authors whose cached ids do not reach back (the first in `authors`).
    pub async fn below_each(
        &self,
        authors: &[i64],
        before: Option<i64>,
        want: usize,
        max_store_reads: usize,
    ) -> Result<Pulled, TimelineError> {
        let cached: Vec<(Vec<i64>, bool)> = futures::stream::iter(authors.iter().copied())
            .map(|author_id| async move {
                let newest = self.newest(author_id).await?;
                Ok::<_, TimelineError>(newest.below(before, want))
            })
            .buffered(AUTHOR_CONCURRENCY)
            .try_collect()
            .await?;
        let short: Vec<usize> = (0..authors.len()).filter(|&i| !cached[i].1).collect();
        let read = short.len().min(max_store_reads);
        let mut lists: Vec<Vec<i64>> = cached.into_iter().map(|(ids, _)| ids).collect();
        let older: Vec<(usize, Vec<i64>)> = futures::stream::iter(short[..read].iter().copied())
            .map(|i| async move {
                let ids = recent_ids(self.tweets.clone(), authors[i], before, want).await?;
                Ok::<_, TimelineError>((i, ids))
            })
            .buffer_unordered(AUTHOR_CONCURRENCY)
            .try_collect()
            .await?;
        for (i, ids) in older {
            lists[i] = ids;
        }
        Ok(Pulled {
            lists,
            read,
            left_out: short.len() - read,
        })
    }

    /// `author_id`'s newest ids, from the cache.
    async fn newest(&self, author_id: i64) -> Result<Arc<NewestIds>, TimelineError> {
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
        Ok(newest)
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
