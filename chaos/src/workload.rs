//! The mixed workload of `chaos`: sign-ups, follows, unfollows, posts,
//! deletes and paged home-timeline reads through the gateway, by clients
//! that retry as a careful app does, and a [`Ledger`] of everything the
//! system accepted, which the checks hold it to.
//!
//! Why clients retry until answered: a fault makes requests fail, and the
//! question is not whether they fail but whether a retry is safe. A post is
//! retried with the same `Idempotency-Key`, so it exists once however often
//! it was sent; follows, unfollows and deletes are idempotent by design.
//! A request the client never got an answer to is counted as unanswered, not
//! guessed at. Each scenario signs up users of its own, so its checks see
//! only its own traffic.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use chirp_client::{Gateway, Page};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tokio::sync::Mutex;

use chirp_load::schedule::Failure;

/// One call's deadline: longer than the gateway's 3 s to its services, so a
/// slow answer is the gateway's to give.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// Pause between two attempts of a request.
const RETRY_PAUSE: Duration = Duration::from_millis(300);
/// How long a client keeps retrying one request before it gives up.
pub const RETRY_BUDGET: Duration = Duration::from_secs(120);
/// Page size of the workload's reads: small, so that reads page.
const READ_PAGE: u32 = 10;

/// How many users act, and how fast.
#[derive(Debug, Clone, Copy)]
pub struct Size {
    pub authors: usize,
    pub readers: usize,
    /// Pause between two posts of one author.
    pub post_every: Duration,
    /// Users who sign up and follow an author during the run.
    pub newcomers: usize,
}

#[derive(Debug, Clone)]
pub struct User {
    pub id: i64,
    pub token: String,
}

#[derive(Debug, Clone)]
pub struct Post {
    pub author: i64,
    pub id: i64,
    /// When the client first sent it: followers from before then must get it.
    pub sent: Instant,
    /// When the client got its 2xx.
    pub accepted: Instant,
}

#[derive(Debug, Clone, Copy)]
pub struct Edge {
    pub follower: i64,
    pub followee: i64,
    /// A follow: when it was answered. An unfollow: when it was first sent.
    pub at: Instant,
}

/// One HTTP attempt: when, and whether the server failed it.
#[derive(Debug, Clone, Copy)]
pub struct Attempt {
    pub started: Instant,
    pub finished: Instant,
    /// A 5xx, or no answer within [`ATTEMPT_TIMEOUT`].
    pub server_error: bool,
}

/// What the system accepted, as the clients saw it.
#[derive(Debug, Default, Clone)]
pub struct Ledger {
    pub posts: Vec<Post>,
    /// Ids of tweets whose delete was answered 2xx, and when.
    pub deletes: Vec<(i64, Instant)>,
    /// Ids of tweets whose delete was never answered: neither check applies.
    pub deletes_unanswered: Vec<i64>,
    /// Authors with a post that was never answered (it may exist).
    pub posts_unanswered: Vec<i64>,
    pub follows: Vec<Edge>,
    pub unfollows: Vec<Edge>,
    pub attempts: Vec<Attempt>,
    /// Whose home timelines the checks read.
    pub readers: Vec<User>,
    pub authors: Vec<User>,
}

/// A gateway client that records every attempt in a shared ledger.
#[derive(Debug, Clone)]
pub struct Caller {
    pub gateway: Gateway,
    pub ledger: Arc<Mutex<Ledger>>,
}

/// What to do after a failed attempt.
fn retryable(failure: &Failure) -> bool {
    let text = failure.0.as_str();
    text.starts_with("http 5") || text.starts_with("http 429") || text.starts_with("transport")
}

fn server_error(failure: &Failure) -> bool {
    failure.0.starts_with("http 5") || failure.0 == "transport: timeout"
}

impl Caller {
    pub fn new(gateway: Gateway) -> Self {
        Self {
            gateway,
            ledger: Arc::default(),
        }
    }

    /// One attempt, recorded.
    pub async fn attempt<T, F>(&self, call: F) -> Result<T, Failure>
    where
        F: Future<Output = Result<T, chirp_client::Error>>,
    {
        let started = Instant::now();
        let result = match tokio::time::timeout(ATTEMPT_TIMEOUT, call).await {
            Ok(result) => result.map_err(Failure::from),
            Err(_) => Err(Failure("transport: timeout".to_owned())),
        };
        let server_error = result.as_ref().err().is_some_and(server_error);
        self.ledger.lock().await.attempts.push(Attempt {
            started,
            finished: Instant::now(),
            server_error,
        });
        result
    }

    /// Attempts until answered, a failure that a retry cannot fix, or
    /// [`RETRY_BUDGET`]; `Err` carries the last failure and whether any
    /// attempt failed before it (the request may have taken effect).
    pub async fn retry<T, F, Fut>(&self, mut call: F) -> Result<T, (Failure, bool)>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, chirp_client::Error>>,
    {
        let give_up = Instant::now() + RETRY_BUDGET;
        let mut failed_before = false;
        loop {
            match self.attempt(call()).await {
                Ok(value) => return Ok(value),
                Err(failure) if retryable(&failure) && Instant::now() < give_up => {
                    failed_before = true;
                    tokio::time::sleep(RETRY_PAUSE).await;
                }
                Err(failure) => return Err((failure, failed_before)),
            }
        }
    }

    pub async fn sign_up(&self, handle: &str) -> anyhow::Result<User> {
        let signed_up = self
            .retry(|| self.gateway.sign_up(handle, handle))
            .await
            .map_err(|(failure, _)| anyhow::anyhow!("sign-up of {handle}: {}", failure.0))?;
        Ok(User {
            id: signed_up.user_id,
            token: signed_up.token,
        })
    }

    pub async fn follow(&self, follower: &User, followee: i64) -> anyhow::Result<()> {
        self.retry(|| self.gateway.follow(&follower.token, followee))
            .await
            .map_err(|(failure, _)| anyhow::anyhow!("follow: {}", failure.0))?;
        self.ledger.lock().await.follows.push(Edge {
            follower: follower.id,
            followee,
            at: Instant::now(),
        });
        Ok(())
    }

    pub async fn unfollow(&self, follower: &User, followee: i64) -> anyhow::Result<()> {
        self.ledger.lock().await.unfollows.push(Edge {
            follower: follower.id,
            followee,
            at: Instant::now(),
        });
        self.retry(|| self.gateway.unfollow(&follower.token, followee))
            .await
            .map_err(|(failure, _)| anyhow::anyhow!("unfollow: {}", failure.0))
    }

    /// Posts with one idempotency key for every attempt; the id, once
    /// accepted.
    pub async fn post(&self, author: &User, content: &str, key: &str) -> Option<i64> {
        let sent = Instant::now();
        let posted = self
            .retry(|| async move {
                let tweet = self
                    .gateway
                    .post_tweet(&author.token, content, Some(key))
                    .await?;
                Ok(tweet.id)
            })
            .await;
        let mut ledger = self.ledger.lock().await;
        match posted {
            Ok(id) => {
                ledger.posts.push(Post {
                    author: author.id,
                    id,
                    sent,
                    accepted: Instant::now(),
                });
                Some(id)
            }
            Err(_) => {
                ledger.posts_unanswered.push(author.id);
                None
            }
        }
    }

    /// Deletes; a 404 after a failed attempt means that attempt deleted it.
    pub async fn delete(&self, author: &User, tweet_id: i64) {
        let deleted = self
            .retry(|| self.gateway.delete_tweet(&author.token, tweet_id))
            .await;
        let mut ledger = self.ledger.lock().await;
        match deleted {
            Ok(()) => ledger.deletes.push((tweet_id, Instant::now())),
            Err((failure, true)) if failure.0.starts_with("http 404") => {
                ledger.deletes.push((tweet_id, Instant::now()))
            }
            Err(_) => ledger.deletes_unanswered.push(tweet_id),
        }
    }

    /// Reads a home timeline's first two pages, as an app scrolling does.
    pub async fn scroll(&self, reader: &User) {
        let first = self
            .attempt(
                self.gateway
                    .home_timeline(reader.id, &reader.token, None, Some(READ_PAGE)),
            )
            .await;
        if let Ok(Page {
            next_cursor: Some(cursor),
            ..
        }) = first
        {
            let _ = self
                .attempt(self.gateway.home_timeline(
                    reader.id,
                    &reader.token,
                    Some(&cursor),
                    Some(READ_PAGE),
                ))
                .await;
        }
    }
}

/// The users of one scenario and the follows between them.
#[derive(Debug, Clone)]
pub struct Cast {
    pub authors: Vec<User>,
    pub readers: Vec<User>,
    /// Prefix of every handle of the scenario (unique per run).
    pub prefix: String,
}

/// Signs up `size.authors` authors and `size.readers` readers, each reader
/// following every author.
pub async fn cast(caller: &Caller, prefix: &str, size: Size) -> anyhow::Result<Cast> {
    let mut authors = Vec::new();
    for i in 0..size.authors {
        authors.push(caller.sign_up(&format!("{prefix}a{i}")).await?);
    }
    let mut readers = Vec::new();
    for i in 0..size.readers {
        let reader = caller.sign_up(&format!("{prefix}r{i}")).await?;
        for author in &authors {
            caller.follow(&reader, author.id).await?;
        }
        readers.push(reader);
    }
    let mut ledger = caller.ledger.lock().await;
    ledger.authors.extend(authors.iter().cloned());
    ledger.readers.extend(readers.iter().cloned());
    drop(ledger);
    Ok(Cast {
        authors,
        readers,
        prefix: prefix.to_owned(),
    })
}

/// Runs the workload until `stop` is set: every author posts and now and
/// then deletes one of its posts, every reader scrolls, newcomers sign up
/// and follow, and one reader unfollows an author halfway.
pub async fn run(caller: Caller, cast: Cast, size: Size, stop: Arc<AtomicBool>) {
    let mut tasks = Vec::new();
    for (n, author) in cast.authors.iter().cloned().enumerate() {
        let (caller, stop, prefix) = (caller.clone(), stop.clone(), cast.prefix.clone());
        tasks.push(tokio::spawn(async move {
            let mut rng = SmallRng::seed_from_u64(n as u64);
            let mut mine = Vec::new();
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                let key = format!("{prefix}-{n}-{i}");
                if let Some(id) = caller.post(&author, &format!("chaos {key}"), &key).await {
                    mine.push(id);
                }
                i += 1;
                if i % 4 == 0 && !mine.is_empty() {
                    let victim = mine.swap_remove(rng.random_range(0..mine.len()));
                    caller.delete(&author, victim).await;
                }
                tokio::time::sleep(size.post_every).await;
            }
        }));
    }
    for reader in cast.readers.clone() {
        let (caller, stop) = (caller.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                caller.scroll(&reader).await;
                tokio::time::sleep(Duration::from_millis(400)).await;
            }
        }));
    }
    let (churn_caller, churn_stop) = (caller.clone(), stop.clone());
    tasks.push(tokio::spawn(async move {
        churn(churn_caller, cast, size, churn_stop).await;
    }));
    for task in tasks {
        let _ = task.await;
    }
}

/// Newcomers sign up and follow an author, one every 2 s; after the first,
/// the first reader unfollows the last author. Only the cast's own authors
/// are followed and unfollowed (not one a fault added, whose follower count
/// the fault depends on).
async fn churn(caller: Caller, cast: Cast, size: Size, stop: Arc<AtomicBool>) {
    let authors = &cast.authors[..size.authors];
    for i in 0..size.newcomers {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        let author = &authors[i % authors.len()];
        let Ok(newcomer) = caller.sign_up(&format!("{}n{i}", cast.prefix)).await else {
            continue;
        };
        caller.ledger.lock().await.readers.push(newcomer.clone());
        let _ = caller.follow(&newcomer, author.id).await;
        if i == 0
            && let (Some(reader), Some(last)) = (cast.readers.first(), authors.last())
        {
            let _ = caller.unfollow(reader, last.id).await;
        }
    }
}
