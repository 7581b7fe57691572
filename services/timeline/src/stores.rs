//! Step 4 of a page, the stores past the cap: when a page runs past the
//! oldest id Redis keeps, the pushed authors' older ids, read from the graph
//! and the tweet store ([`past_cap`]); and the same reads for a rebuild
//! ([`crate::rebuild`]), which writes a timeline again from them.
//!
//! Redis holds at most `TIMELINE_CAPACITY` ids. Everything newer than the
//! oldest of them is in Redis (a complete timeline gets every push), so a
//! page that runs past it continues here with the authors a rebuild would
//! read, and paging down never ends early nor skips a pushed author.
//!
//! The work is bounded whoever the reader follows. Memory: the authors'
//! answers are merged as they arrive and cut to what was asked, so it never
//! holds more than a few pages' worth, not one list per author. Time: at
//! most [`MAX_AUTHORS_SCANNED`] followees are read (Twitter once capped
//! following at 5 000 for the same reason), and a rebuild asks each author
//! for only as many ids as its share of the capacity needs
//! ([`per_author`]). What is not read is not lost, only not cached: the
//! result says where it stops being exact, and pages below that point read
//! the stores.

use std::collections::HashSet;
use std::future::Future;

use chirp_grpc::Channel;
use chirp_proto::graph::graph_service_client::GraphServiceClient;
use chirp_proto::graph::{ListFollowedCelebritiesRequest, ListFollowsRequest, UserIdPage};
use chirp_proto::timeline::ItemSource;
use chirp_proto::tweet::ListTweetsByAuthorRequest;
use chirp_proto::tweet::tweet_service_client::TweetServiceClient;
use futures::{StreamExt, TryStreamExt};

use crate::TimelineError;

/// The most followees one rebuild or deep page reads. Someone following
/// more sees the older tweets of the first this many (by user id), and new
/// tweets of everyone, pushed as they are posted.
pub const MAX_AUTHORS_SCANNED: usize = 5_000;
/// Authors queried at once: enough to hide each query's latency, few enough
/// not to flood the tweet store.
pub const AUTHOR_CONCURRENCY: usize = 16;
/// The fewest ids a rebuild asks of one author: one small query each.
const MIN_PER_AUTHOR: usize = 20;
/// Followees fetched per `ListFollowing` call.
const FOLLOWING_PAGE: u32 = 5_000;
/// Celebrities fetched per `ListFollowedCelebrities` call.
const CELEBRITIES_PAGE: u32 = 1_000;
/// The most one `ListTweetsByAuthor` page may hold (the tweet service's cap).
const MAX_AUTHOR_PAGE: usize = 200;

/// The newest ids of a set of authors, newest first.
#[derive(Debug, Default)]
pub struct Newest {
    pub ids: Vec<i64>,
    /// Older ids exist below the last one.
    pub more: bool,
}

/// The rest of a page whose cached ids ran out, read from the stores.
pub struct PastCap {
    /// Newest first, each labelled as read from the store.
    pub ids: Vec<(i64, ItemSource)>,
    /// The authors read, and those pushed to the reader but left out by
    /// the bound on the authors one page reads.
    pub read: usize,
    pub left_out: usize,
}

/// Up to `count` ids older than `below` of the authors pushed to
/// `user_id` (all they follow but the `pulled`), from the stores: of the
/// reader and the first of their followees by user id, `max_authors` in
/// all, one tweet-store query each. Without the bound a page of someone
/// following thousands would cost thousands of queries, page after page.
pub async fn past_cap(
    graph: &GraphServiceClient<Channel>,
    tweets: &TweetServiceClient<Channel>,
    user_id: i64,
    pulled: &[i64],
    below: Option<i64>,
    count: usize,
    max_authors: usize,
) -> Result<PastCap, TimelineError> {
    let mut authors = pushed_to(graph, user_id, pulled).await?;
    let pushed = authors.len();
    // The reader, last, is kept: their own tweets come first.
    if pushed > max_authors.max(1) {
        authors.drain(max_authors.max(1) - 1..pushed - 1);
    }
    let older = newest(tweets, &authors, below, count, count).await?;
    Ok(PastCap {
        ids: older
            .ids
            .into_iter()
            .map(|id| (id, ItemSource::Store))
            .collect(),
        read: authors.len(),
        left_out: pushed - authors.len(),
    })
}

/// How many ids to ask of each of `authors` to fill `count` between them:
/// twice an even share, so that a busy author does not cut the result
/// short at once, within `[MIN_PER_AUTHOR, count]`.
pub fn per_author(count: usize, authors: usize) -> usize {
    (2 * count)
        .div_ceil(authors.max(1))
        .max(MIN_PER_AUTHOR)
        .min(count)
        .max(1)
}

/// Up to `count` of the newest ids of `authors` older than `before`, asking
/// each author for `per_author` of them.
///
/// When an author has more than `per_author`, everything older than their
/// `per_author`-th id is unknown (another author's older ids may be missing
/// in between), so the result stops there and says `more`. With
/// `per_author >= count` it never stops short of `count`: the newest
/// `count` ids of the union are each among the newest `count` of their own
/// author (the argument of [`crate::merge`]).
pub async fn newest(
    tweets: &TweetServiceClient<Channel>,
    authors: &[i64],
    before: Option<i64>,
    count: usize,
    per_author: usize,
) -> Result<Newest, TimelineError> {
    let mut answers = futures::stream::iter(authors.iter().copied())
        .map(|author_id| newest_of(tweets, author_id, before, per_author + 1))
        .buffer_unordered(AUTHOR_CONCURRENCY);
    // Ids older than the floor are not known completely.
    let mut floor: Option<i64> = None;
    let mut ids: Vec<i64> = Vec::new();
    let mut more = false;
    while let Some(mut author_ids) = answers.try_next().await? {
        if author_ids.len() > per_author {
            more = true;
            floor = floor.max(Some(author_ids[per_author - 1]));
            author_ids.truncate(per_author);
        }
        ids.extend(author_ids);
        if ids.len() > 4 * (count + 1) {
            more |= compact(&mut ids, floor, count + 1);
        }
    }
    more |= compact(&mut ids, floor, count);
    Ok(Newest { ids, more })
}

/// Up to `count` of `author_id`'s ids older than `before`, newest first,
/// straight from the tweet store, a page at a time.
async fn newest_of(
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

/// The authors whose tweets fan-out pushes to `user_id`: themselves and
/// whom they follow, but the `pulled` ones; at most [`MAX_AUTHORS_SCANNED`]
/// followees.
pub async fn pushed_to(
    graph: &GraphServiceClient<Channel>,
    user_id: i64,
    pulled: &[i64],
) -> Result<Vec<i64>, TimelineError> {
    let pulled: HashSet<i64> = pulled.iter().copied().collect();
    let mut authors = following(graph, user_id).await?;
    authors.retain(|author_id| !pulled.contains(author_id));
    authors.push(user_id);
    Ok(authors)
}

/// The users `user_id` follows, a page of the graph at a time, at most
/// [`MAX_AUTHORS_SCANNED`].
pub async fn following(
    graph: &GraphServiceClient<Channel>,
    user_id: i64,
) -> Result<Vec<i64>, TimelineError> {
    scan_user_ids(|after_user_id| {
        let mut graph = graph.clone();
        async move {
            let request = ListFollowsRequest {
                user_id,
                after_user_id,
                limit: FOLLOWING_PAGE,
                consistent: true,
                with_following_counts: false,
            };
            graph.list_following(request).await
        }
    })
    .await
}

/// The celebrities `user_id` follows, by user id, up to
/// [`MAX_AUTHORS_SCANNED`]: whose tweets the rebuilt timeline's pages pull
/// ([`crate::followed`] says why the list is stored with the timeline).
pub async fn celebrities(
    graph: &GraphServiceClient<Channel>,
    user_id: i64,
) -> Result<Vec<i64>, TimelineError> {
    scan_user_ids(|after_user_id| {
        let mut graph = graph.clone();
        async move {
            let request = ListFollowedCelebritiesRequest {
                user_id,
                after_user_id,
                limit: CELEBRITIES_PAGE,
            };
            graph.list_followed_celebrities(request).await
        }
    })
    .await
}

/// Up to [`MAX_AUTHORS_SCANNED`] ids of one of the graph's listings paged by
/// user id (`ListFollowing`, `ListFollowedCelebrities`): `page(after)` asks
/// for the page after `after`.
async fn scan_user_ids<F, Fut>(mut page: F) -> Result<Vec<i64>, TimelineError>
where
    F: FnMut(Option<i64>) -> Fut,
    Fut: Future<Output = Result<tonic::Response<UserIdPage>, tonic::Status>>,
{
    let mut ids = Vec::new();
    let mut after = None;
    loop {
        let UserIdPage {
            user_ids,
            next_after_user_id,
            ..
        } = page(after)
            .await
            .map_err(TimelineError::Graph)?
            .into_inner();
        ids.extend(user_ids);
        match next_after_user_id {
            Some(next) if ids.len() < MAX_AUTHORS_SCANNED => after = Some(next),
            _ => {
                ids.truncate(MAX_AUTHORS_SCANNED);
                return Ok(ids);
            }
        }
    }
}

/// Sorts newest first, drops duplicates and ids below `floor`, keeps
/// `keep`; true if it dropped any id for either reason.
fn compact(ids: &mut Vec<i64>, floor: Option<i64>, keep: usize) -> bool {
    ids.sort_unstable_by(|a, b| b.cmp(a));
    ids.dedup();
    let before = ids.len();
    if let Some(floor) = floor {
        ids.retain(|&id| id >= floor);
    }
    ids.truncate(keep);
    ids.len() < before
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_author_is_asked_for_a_share_of_the_capacity() {
        assert_eq!(per_author(800, 1), 800);
        assert_eq!(per_author(800, 4), 400);
        assert_eq!(per_author(800, 100), 20);
        assert_eq!(per_author(800, 100_000), 20);
        assert_eq!(per_author(5, 3), 5);
    }

    #[test]
    fn compacting_keeps_the_newest_above_the_floor() {
        let mut ids = vec![3, 9, 5, 9, 1, 7];
        assert!(compact(&mut ids, Some(4), 10));
        assert_eq!(ids, [9, 7, 5]);
        let mut ids = vec![3, 2];
        assert!(!compact(&mut ids, None, 2));
    }
}
