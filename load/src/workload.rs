//! The workloads of `run`: what each request sends, as a [`Target`] over the
//! gateway.
//!
//! Every request is one HTTP call, so `--rate` is HTTP requests per second
//! and each operation gets its own histogram. Which user acts is decided by
//! the request's number and `--seed` alone, so two runs with the same seed
//! send the same requests in the same order.
//!
//! Home-timeline readers take turns in a fixed shuffled order, and each one
//! reads page 1, then on their next turn the page after it by the cursor
//! the last page returned, up to `--pages`, then page 1 again. Paging thus
//! uses real cursors without a request ever waiting for another (which an
//! open loop must not do).

use std::sync::{Mutex, PoisonError};

use anyhow::ensure;
use chirp_client::Gateway;
use futures::StreamExt;
use rand::distr::Alphanumeric;
use rand::rngs::SmallRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde::Serialize;

use chirp_domain::input::MAX_TWEET_CHARS;

use crate::dsb::{DSB_MIXED, Mix, NIGHTCORE_MIXED, Request};
use crate::manifest::SeededUser;
use crate::schedule::{Failure, Outcome, Target};

/// What `run` sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Workload {
    /// Home timelines: page 1, then the next pages by cursor.
    HomeTimeline,
    /// Users' own tweets (`GET /users/{id}/tweets`), first page.
    UserTimeline,
    /// New tweets, each with its own idempotency key.
    Post,
    /// Home-timeline reads and posts, `--read-write-ratio` to 1.
    Mixed,
    /// Celebrities post and their followers read their home timelines,
    /// `--read-write-ratio` to 1: the hybrid timeline's pull path under load.
    CelebrityPost,
    /// One tweet, posted at the start by the most-followed seeded author who
    /// is not a celebrity (so it is pushed), read by everyone: that author's followers read the first page of
    /// their home timelines, the tweet on each, hydrated through the
    /// timeline service's shared tweet cache (its hit ratio and coalesced
    /// waits: the console's Interview view, Bottlenecks).
    HotTweet,
    /// DeathStarBench's wrk2 mixed workload: 60 % home timelines, 30 % user
    /// timelines, 10 % posts; pages of 10 unless --page-size.
    DsbMixed,
    /// The Nightcore artifact's DeathStarBench mix: 40 % user timelines,
    /// 25 % home timelines, 30 % posts, 5 % follows; pages of 1 unless
    /// --page-size.
    NightcoreMixed,
}

impl Workload {
    pub fn name(self) -> &'static str {
        match self {
            Self::HomeTimeline => "home-timeline",
            Self::UserTimeline => "user-timeline",
            Self::Post => "post",
            Self::Mixed => "mixed",
            Self::CelebrityPost => "celebrity-post",
            Self::HotTweet => "hot-tweet",
            Self::DsbMixed => "dsb-mixed",
            Self::NightcoreMixed => "nightcore-mixed",
        }
    }

    /// The DeathStarBench request mix the workload sends, if it is one.
    pub fn mix(self) -> Option<&'static Mix> {
        match self {
            Self::DsbMixed => Some(&DSB_MIXED),
            Self::NightcoreMixed => Some(&NIGHTCORE_MIXED),
            _ => None,
        }
    }

    /// Whether the workload reads (and needs readers) and whether it posts
    /// (and needs writers).
    fn reads_and_writes(self) -> (bool, bool) {
        match self {
            Self::HomeTimeline | Self::UserTimeline | Self::HotTweet => (true, false),
            Self::Post => (false, true),
            Self::Mixed | Self::CelebrityPost | Self::DsbMixed | Self::NightcoreMixed => {
                (true, true)
            }
        }
    }
}

/// The operations, named by their route as the gateway's metrics name them.
pub const HOME_FIRST_PAGE: &str = "GET /users/{id}/timeline";
pub const HOME_NEXT_PAGE: &str = "GET /users/{id}/timeline?cursor";
pub const USER_TWEETS: &str = "GET /users/{id}/tweets";
pub const POST_TWEET: &str = "POST /tweets";
pub const FOLLOW: &str = "POST /follow";

/// A seeded user the workload acts as.
#[derive(Debug, Clone)]
pub struct Actor {
    pub id: i64,
    pub token: String,
}

impl Actor {
    /// Acts as the seeded `user`, with the token minted for it
    /// ([`crate::tokens`]).
    pub fn of(user: &SeededUser) -> Self {
        Actor {
            id: user.id,
            token: user.token.clone(),
        }
    }
}

/// Reads the first home-timeline page of each of `readers` once,
/// `concurrency` at a time, so that a measurement starts warm: every
/// timeline in Redis, every tweet in the timeline service's cache.
pub async fn warm_up<'a>(
    gateway: &Gateway,
    readers: impl IntoIterator<Item = &'a Actor>,
    page_size: Option<u32>,
    concurrency: usize,
) -> anyhow::Result<()> {
    let mut reads = futures::stream::iter(readers)
        .map(|reader| gateway.home_timeline(reader.id, &reader.token, None, page_size))
        .buffer_unordered(concurrency);
    while let Some(read) = reads.next().await {
        read.map_err(|failure| anyhow::anyhow!("warm a home timeline up: {}", failure))?;
    }
    Ok(())
}

/// How a workload picks and paces its requests.
#[derive(Debug, Clone)]
pub struct Params {
    pub workload: Workload,
    /// Home-timeline pages a reader reads before starting over.
    pub pages: u32,
    /// Tweets per timeline page (home and own); `None` for the gateway's
    /// default.
    pub page_size: Option<u32>,
    /// Read as only this many users, drawn at random: few keep their
    /// timelines hot in the caches, many measure the misses.
    pub readers: Option<usize>,
    /// Reads per write in `mixed` and `celebrity-post`.
    pub read_write_ratio: f64,
    pub seed: u64,
    /// Unique to this run, so that its posts' idempotency keys are new.
    pub run_tag: String,
}

/// A workload against one gateway.
pub struct GatewayTarget {
    gateway: Gateway,
    params: Params,
    /// Home-timeline readers, in their shuffled turn order (or, for
    /// `user-timeline`, the users whose tweets are read).
    readers: Vec<Actor>,
    writers: Vec<Actor>,
    /// Where each reader's next page starts, if they are mid-way.
    cursors: Vec<Mutex<Option<NextPage>>>,
}

#[derive(Debug)]
struct NextPage {
    cursor: String,
    /// Pages read so far in this pass.
    read: u32,
}

/// 2^64 / φ: spreads consecutive request numbers over the seed space.
const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

impl GatewayTarget {
    pub fn new(
        gateway: Gateway,
        params: Params,
        mut readers: Vec<Actor>,
        writers: Vec<Actor>,
    ) -> anyhow::Result<Self> {
        let workload = params.workload.name();
        let (reads, writes) = params.workload.reads_and_writes();
        ensure!(
            !reads || !readers.is_empty(),
            "{workload} needs readers, found none"
        );
        ensure!(
            !writes || !writers.is_empty(),
            "{workload} needs writers, found none"
        );
        ensure!(
            params.read_write_ratio >= 0.0 && params.read_write_ratio.is_finite(),
            "the read:write ratio must be a number >= 0"
        );
        ensure!(params.pages >= 1, "a reader reads at least one page");
        readers.shuffle(&mut SmallRng::seed_from_u64(params.seed));
        if let Some(count) = params.readers {
            ensure!(count >= 1, "read as at least one user");
            readers.truncate(count);
        }
        let cursors = readers.iter().map(|_| Mutex::new(None)).collect();
        Ok(Self {
            gateway,
            params,
            readers,
            writers,
            cursors,
        })
    }

    pub fn gateway(&self) -> &Gateway {
        &self.gateway
    }

    /// The readers, in turn order: after `--readers`, the only users whose
    /// timelines the workload reads.
    pub fn readers(&self) -> &[Actor] {
        &self.readers
    }

    /// Reader `n mod readers`'s next page: the one after their last, or
    /// page 1. The cursor is taken out while the request is in flight, so a
    /// reader's turn coming round again meanwhile starts a fresh pass.
    async fn read_home_timeline(&self, n: u64) -> Outcome {
        let turn = (n % self.readers.len() as u64) as usize;
        let reader = &self.readers[turn];
        let slot = &self.cursors[turn];
        let next = slot.lock().unwrap_or_else(PoisonError::into_inner).take();
        let (operation, cursor, read) = match &next {
            Some(next) => (HOME_NEXT_PAGE, Some(next.cursor.as_str()), next.read),
            None => (HOME_FIRST_PAGE, None, 0),
        };
        let result = self
            .gateway
            .home_timeline(reader.id, &reader.token, cursor, self.params.page_size)
            .await;
        let result = result.map_err(Failure::from).map(|page| {
            let read = read + 1;
            if let Some(cursor) = page.next_cursor.filter(|_| read < self.params.pages) {
                *slot.lock().unwrap_or_else(PoisonError::into_inner) =
                    Some(NextPage { cursor, read });
            }
        });
        Outcome { operation, result }
    }

    async fn read_user_timeline(&self, pick: usize) -> Outcome {
        let user = &self.readers[pick % self.readers.len()];
        let result = match self.params.page_size {
            Some(limit) => self.gateway.user_tweets_page(user.id, None, limit).await,
            None => self.gateway.user_tweets(user.id).await,
        };
        let result = result.map(drop).map_err(Failure::from);
        Outcome {
            operation: USER_TWEETS,
            result,
        }
    }

    /// A post by a random writer; `chars`, if given, pads its text with
    /// random letters and digits to that many characters (a benchmark's post
    /// size), up to chirp's limit.
    async fn post(&self, n: u64, pick: usize, chars: Option<(usize, &mut SmallRng)>) -> Outcome {
        let author = &self.writers[pick % self.writers.len()];
        let key = format!("{}-{n}", self.params.run_tag);
        let mut content = format!("Load test post {n} of run {}", self.params.run_tag);
        if let Some((chars, rng)) = chars {
            content.push(' ');
            let pad = chars.min(MAX_TWEET_CHARS).saturating_sub(content.len());
            content.extend((0..pad).map(|_| char::from(rng.sample(Alphanumeric))));
        }
        let result = self
            .gateway
            .post_tweet(&author.token, &content, Some(&key))
            .await
            .map(drop)
            .map_err(Failure::from);
        Outcome {
            operation: POST_TWEET,
            result,
        }
    }

    /// A random writer follows another one (following someone already
    /// followed succeeds too, as in the benchmark).
    async fn follow(&self, pick: usize, other: usize) -> Outcome {
        let count = self.writers.len();
        let follower = &self.writers[pick % count];
        // Anyone but the follower: chirp refuses a self-follow as bad input.
        let followee = &self.writers[(pick % count + 1 + other % (count - 1).max(1)) % count];
        let result = self
            .gateway
            .follow(&follower.token, followee.id)
            .await
            .map_err(Failure::from);
        Outcome {
            operation: FOLLOW,
            result,
        }
    }

    /// One request of a DeathStarBench mix, of the kind `rng` draws.
    async fn mixed(&self, mix: &Mix, n: u64, pick: usize, rng: &mut SmallRng) -> Outcome {
        match mix.pick(rng.random()) {
            Request::HomeTimeline => self.read_home_timeline(n).await,
            Request::UserTimeline => self.read_user_timeline(pick).await,
            Request::Post => self.post(n, pick, Some((mix.post_chars, rng))).await,
            Request::Follow => {
                let other = rng.random_range(0..usize::MAX);
                self.follow(pick, other).await
            }
        }
    }
}

impl Target for GatewayTarget {
    async fn call(&self, n: u64) -> Outcome {
        let mut rng = SmallRng::seed_from_u64(self.params.seed ^ n.wrapping_mul(GOLDEN));
        let pick = rng.random_range(0..usize::MAX);
        let write_share = 1.0 / (self.params.read_write_ratio + 1.0);
        match self.params.workload {
            Workload::HomeTimeline | Workload::HotTweet => self.read_home_timeline(n).await,
            Workload::UserTimeline => self.read_user_timeline(pick).await,
            Workload::Post => self.post(n, pick, None).await,
            Workload::Mixed | Workload::CelebrityPost => {
                if rng.random_bool(write_share) {
                    self.post(n, pick, None).await
                } else {
                    self.read_home_timeline(n).await
                }
            }
            Workload::DsbMixed => self.mixed(&DSB_MIXED, n, pick, &mut rng).await,
            Workload::NightcoreMixed => self.mixed(&NIGHTCORE_MIXED, n, pick, &mut rng).await,
        }
    }
}
