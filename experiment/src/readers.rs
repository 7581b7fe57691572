//! What readers see, against what they should: a first page read as a
//! client reads it, and the truth computed from the stores through the
//! gateway (the newest tweets of the reader and of everyone they follow).
//!
//! The truth is what a complete, fresh timeline would show. A tweet counts
//! as missed when it is in the truth, not on the page, and was posted at
//! least [`GRACE`] before the read: chirp's timeline service documents up to
//! PULLED_IDS_TTL_MS (2 s by default) of staleness for pulled tweets, plus a
//! second for the read's own path, and a policy is not charged for a delay
//! the reader could not have noticed yet. Where the page
//! is full, only the truth down to its oldest entry is compared: what is
//! older belongs to the next page.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use anyhow::{anyhow, ensure};
use chirp_client::reqwest::{Method, StatusCode};
use chirp_client::{Gateway, Page, ProfilePage};
use chirp_domain::ids::{now_ms, timestamp_ms};
use chirp_load::workload::Actor;
use futures::{StreamExt, TryStreamExt, stream};
use serde::Serialize;
use tokio::time::Instant;

/// Tweets on a first page, for the reads and the truth alike.
pub const PAGE: u32 = 20;
/// How old a tweet must be at the read to count as missed.
pub const GRACE: Duration = Duration::from_secs(3);
/// Authors' tweets fetched at once while computing the truth.
const FETCH_CONCURRENCY: usize = 32;
/// The longest a warm-up waits for a timeline answered partial to be whole.
const WARM_DEADLINE: Duration = Duration::from_secs(60);
/// How often a timeline answered partial is read again while warming up.
const WARM_POLL: Duration = Duration::from_millis(50);

/// A first page of a home timeline, as the reader got it.
#[derive(Debug, Clone)]
pub struct FirstPage {
    pub ids: Vec<i64>,
    /// Answered 206: what the cache held while the timeline is rebuilt.
    pub partial: bool,
    /// Answered 5xx (e.g. a rebuild that outran the gateway's deadline; it
    /// goes on, and a later read finds it done): no page at all.
    pub unanswered: bool,
    /// When the read was sent, in Unix milliseconds.
    pub read_ms: i64,
    pub took: Duration,
}

/// Reads `reader`'s first page: 200, 206 for a partial one, or a 5xx for
/// none; any other answer is an error.
pub async fn first_page(gateway: &Gateway, reader: &Actor) -> anyhow::Result<FirstPage> {
    let read_ms = now_ms();
    let started = Instant::now();
    let path = format!("/users/{}/timeline?limit={PAGE}", reader.id);
    let response = gateway
        .request(Method::GET, &path, Some(&reader.token))
        .send()
        .await?;
    let status = response.status();
    let ids = match status {
        StatusCode::OK | StatusCode::PARTIAL_CONTENT => {
            let page: Page = response.json().await?;
            page.items.iter().map(|tweet| tweet.id).collect()
        }
        _ if status.is_server_error() => Vec::new(),
        _ => {
            let body = response.text().await.unwrap_or_default();
            return Err(anyhow!(
                "read the home timeline of {}: {status} {body}",
                reader.id
            ));
        }
    };
    Ok(FirstPage {
        ids,
        partial: status == StatusCode::PARTIAL_CONTENT,
        unanswered: status.is_server_error(),
        read_ms,
        took: started.elapsed(),
    })
}

/// Reads the first page of each of `users`, `concurrency` at a time, until
/// it comes back whole: a timeline service that answers while it rebuilds
/// (`--answer-while-rebuilding`) answers the first read partial, a rebuild
/// slower than the gateway's deadline (a reader following thousands) is
/// answered 503 and goes on, and a warm reader is one whose timeline is
/// built. A reader is done before the next starts, so at most `concurrency`
/// rebuilds run for the warm-up.
pub async fn warm<'a>(
    gateway: &Gateway,
    users: impl IntoIterator<Item = &'a Actor>,
    concurrency: usize,
) -> anyhow::Result<()> {
    stream::iter(users)
        .map(|user| async move {
            let deadline = Instant::now() + WARM_DEADLINE;
            loop {
                let page = first_page(gateway, user).await?;
                if !page.partial && !page.unanswered {
                    return anyhow::Ok(());
                }
                ensure!(
                    Instant::now() < deadline,
                    "the home timeline of {} was still being rebuilt after {WARM_DEADLINE:?}",
                    user.id
                );
                tokio::time::sleep(WARM_POLL).await;
            }
        })
        .buffer_unordered(concurrency)
        .try_collect::<Vec<()>>()
        .await
        .map(drop)
}

/// Everyone `user_id` follows, as `GET /users/{id}/following` lists them.
pub async fn following(gateway: &Gateway, user_id: i64) -> anyhow::Result<Vec<i64>> {
    let mut followed = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("/users/{user_id}/following?limit=100");
        if let Some(cursor) = &cursor {
            path += &format!("&cursor={cursor}");
        }
        let response = gateway.request(Method::GET, &path, None).send().await?;
        let page: ProfilePage = response.error_for_status()?.json().await?;
        followed.extend(page.items.iter().map(|profile| profile.id));
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => return Ok(followed),
        }
    }
}

/// How many tweets readers should have seen, and how many of those they
/// did not.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Share {
    pub readers: u64,
    pub expected: u64,
    pub missed: u64,
    /// `missed / expected`, 0 when nothing was expected.
    pub share: f64,
}

impl Share {
    fn add(&mut self, (expected, missed): (u64, u64)) {
        self.readers += 1;
        self.expected += expected;
        self.missed += missed;
        self.share = if self.expected == 0 {
            0.0
        } else {
            self.missed as f64 / self.expected as f64
        };
    }
}

/// The newest tweets of authors, each fetched once per deployment.
pub struct Truth {
    gateway: Gateway,
    newest: HashMap<i64, Vec<i64>>,
}

impl Truth {
    pub fn new(gateway: Gateway) -> Self {
        Self {
            gateway,
            newest: HashMap::new(),
        }
    }

    /// Adds to `share` what `reader`, who follows `followed`, missed on
    /// `page`.
    pub async fn compare(
        &mut self,
        share: &mut Share,
        reader: i64,
        followed: &[i64],
        page: &FirstPage,
    ) -> anyhow::Result<()> {
        let authors: Vec<i64> = std::iter::once(reader)
            .chain(followed.iter().copied())
            .collect();
        let missing: Vec<i64> = authors
            .iter()
            .copied()
            .filter(|author| !self.newest.contains_key(author))
            .collect();
        let gateway = &self.gateway;
        let fetched: Vec<(i64, Vec<i64>)> = stream::iter(missing)
            .map(|author| async move {
                let tweets = gateway
                    .user_tweets_page(author, None, PAGE)
                    .await
                    .map_err(|failure| anyhow!("list the tweets of {author}: {failure}"))?;
                anyhow::Ok((author, tweets.items.iter().map(|tweet| tweet.id).collect()))
            })
            .buffer_unordered(FETCH_CONCURRENCY)
            .try_collect()
            .await?;
        self.newest.extend(fetched);
        let candidates = authors.iter().flat_map(|author| &self.newest[author]);
        share.add(missed(page, candidates.copied()));
        Ok(())
    }
}

/// What of the truth (drawn from `candidates`) `page` should hold, and how
/// much of that it lacks.
fn missed(page: &FirstPage, candidates: impl Iterator<Item = i64>) -> (u64, u64) {
    let cutoff = page.read_ms - GRACE.as_millis() as i64;
    let mut truth: Vec<i64> = candidates
        .filter(|&id| timestamp_ms(id) <= cutoff)
        .collect::<HashSet<i64>>()
        .into_iter()
        .collect();
    truth.sort_unstable_by(|a, b| b.cmp(a));
    truth.truncate(PAGE as usize);
    let oldest_shown = page.ids.iter().copied().min();
    if page.ids.len() >= PAGE as usize
        && let Some(oldest) = oldest_shown
    {
        truth.retain(|&id| id >= oldest);
    }
    let shown: HashSet<i64> = page.ids.iter().copied().collect();
    let lacking = truth.iter().filter(|id| !shown.contains(id)).count();
    (truth.len() as u64, lacking as u64)
}

#[cfg(test)]
mod tests {
    use chirp_domain::ids::id_at;

    use super::*;

    /// A tweet posted `ago_ms` before `now`.
    fn tweet(now: i64, ago_ms: i64, sequence: u16) -> i64 {
        id_at(now - ago_ms, 1, sequence)
    }

    fn page(now: i64, ids: Vec<i64>) -> FirstPage {
        FirstPage {
            ids,
            partial: false,
            unanswered: false,
            read_ms: now,
            took: Duration::ZERO,
        }
    }

    #[test]
    fn a_complete_page_misses_nothing_and_fresh_tweets_are_not_charged() {
        let now = now_ms();
        let old: Vec<i64> = (0..5).map(|n| tweet(now, 10_000 + n, 0)).collect();
        let fresh = tweet(now, 1_500, 0);
        let shown = page(now, old.clone());
        let candidates = old.iter().copied().chain([fresh]);
        assert_eq!(missed(&shown, candidates), (5, 0));
    }

    #[test]
    fn a_tweet_of_the_truth_not_on_the_page_is_missed() {
        let now = now_ms();
        let old: Vec<i64> = (0..5).map(|n| tweet(now, 10_000 + n, 0)).collect();
        let shown = page(now, old[1..].to_vec());
        assert_eq!(missed(&shown, old.iter().copied()), (5, 1));
        let empty = FirstPage {
            partial: true,
            ..page(now, Vec::new())
        };
        assert_eq!(missed(&empty, old.iter().copied()), (5, 5));
    }

    #[test]
    fn a_full_page_is_compared_down_to_its_oldest_entry() {
        let now = now_ms();
        let truth: Vec<i64> = (0..30).map(|n| tweet(now, 10_000 + 10 * n, 0)).collect();
        // Twenty newer tweets the reader sees, the oldest of the truth
        // pushed to the next page.
        let newer: Vec<i64> = (0..20).map(|n| tweet(now, 3_000 + n, 0)).collect();
        let shown = page(now, newer.clone());
        let candidates = truth.iter().chain(&newer).copied();
        assert_eq!(missed(&shown, candidates), (20, 0));
    }
}
