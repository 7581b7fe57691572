//! The soak's steady load on the seeded population, in the article's shape:
//! an open loop of home-timeline reads and posts at a fixed ratio, readers
//! drawn from a power law (a few users read far more than most), follows
//! of popular authors (celebrities among them) undone half a minute later,
//! and deletes of recent posts.
//!
//! Why an open loop: requests leave on a schedule whatever the answers, so
//! a slow stack meets the load it would meet in production instead of
//! slowing its own clients down; what cannot start because too many are in
//! flight is counted as dropped, never silently skipped. The posts are
//! retried with one idempotency key like any careful client's
//! ([`Caller::post`]); their record is not checked (the watched cohort,
//! [`super::cohort`], carries the promises), so the ledger this caller fills
//! is emptied each interval.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Zipf};
use tokio::sync::{Mutex, Semaphore};

use super::tally::{Op, Tally};
use crate::workload::{Caller, User};

/// How often the loop looks at what is due.
const TICK: Duration = Duration::from_millis(5);
/// One read's deadline.
const READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Page size of a home-timeline read (an app's first screen).
const READ_PAGE: u32 = 20;
/// How long a bulk follow lasts before it is undone.
const FOLLOW_LASTS: Duration = Duration::from_secs(30);
/// Recent posts a delete may pick from.
const RECENT: usize = 1_000;
/// The exponent of the readers' power law (Zipf's law proper).
const READER_SKEW: f64 = 1.0;

/// Operations per second of each kind.
#[derive(Debug, Clone, Copy)]
pub struct Rates {
    pub posts: f64,
    pub reads: f64,
    /// Follows per second; as many unfollows undo them.
    pub follows: f64,
    pub deletes: f64,
}

/// The population and what the load remembers between operations.
pub struct Bulk {
    pub caller: Caller,
    users: Vec<User>,
    /// Who posts: indexes into `users` (all of them, or one outbox shard's).
    authors: Vec<usize>,
    skew: Zipf<f64>,
    tally: Arc<Tally>,
    recent: Mutex<VecDeque<(usize, i64)>>,
    followed: Mutex<VecDeque<(usize, usize, Instant)>>,
    in_flight: Arc<Semaphore>,
    prefix: String,
    /// Posts accepted and deletes sent: the events the load put in the outbox.
    events: AtomicU64,
}

#[derive(Debug, Clone, Copy)]
enum Lane {
    Post,
    Read,
    Follow,
    Unfollow,
    Delete,
}

impl Bulk {
    /// `users` in seed order (the first are the celebrities, the most
    /// followed), of whom those `may_post` keeps post; at most
    /// `max_in_flight` operations at once.
    pub fn new(
        caller: Caller,
        users: Vec<User>,
        may_post: impl Fn(&User) -> bool,
        tally: Arc<Tally>,
        max_in_flight: usize,
        prefix: &str,
    ) -> anyhow::Result<Self> {
        anyhow::ensure!(users.len() >= 2, "the load needs at least two seeded users");
        let authors: Vec<usize> = (0..users.len()).filter(|&i| may_post(&users[i])).collect();
        anyhow::ensure!(!authors.is_empty(), "no seeded user may post");
        Ok(Self {
            caller,
            skew: Zipf::new(users.len() as f64, READER_SKEW)?,
            authors,
            users,
            tally,
            recent: Mutex::default(),
            followed: Mutex::default(),
            in_flight: Arc::new(Semaphore::new(max_in_flight)),
            prefix: prefix.to_owned(),
            events: AtomicU64::new(0),
        })
    }

    /// Outbox events the load caused so far (accepted posts and deletes).
    pub fn events(&self) -> u64 {
        self.events.load(Ordering::Relaxed)
    }

    /// A user by power-law rank: rank 1 is the first in seed order.
    fn popular(&self, rng: &mut SmallRng) -> usize {
        (self.skew.sample(rng) as usize).clamp(1, self.users.len()) - 1
    }

    /// Runs until `stop`; every operation's intended start is on the
    /// schedule `rates` make, from `start`.
    pub async fn run(self: Arc<Self>, rates: Rates, start: Instant, stop: Arc<AtomicBool>) {
        let lanes = [
            (Lane::Post, rates.posts),
            (Lane::Read, rates.reads),
            (Lane::Follow, rates.follows),
            (Lane::Unfollow, rates.follows),
            (Lane::Delete, rates.deletes),
        ];
        let mut done = [0u64; 5];
        let mut rng = SmallRng::seed_from_u64(0x50a);
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        while !stop.load(Ordering::Relaxed) {
            tick.tick().await;
            let elapsed = start.elapsed().as_secs_f64();
            for (i, (lane, rate)) in lanes.iter().enumerate() {
                if *rate <= 0.0 {
                    continue;
                }
                let due = (rate * elapsed) as u64;
                while done[i] < due {
                    let n = done[i];
                    done[i] += 1;
                    let intended = start + Duration::from_secs_f64(n as f64 / rate);
                    let Ok(permit) = self.in_flight.clone().try_acquire_owned() else {
                        self.tally.dropped(intended);
                        continue;
                    };
                    let (this, lane, seed) = (self.clone(), *lane, rng.random());
                    tokio::spawn(async move {
                        this.operation(lane, n, intended, seed).await;
                        drop(permit);
                    });
                }
            }
        }
    }

    async fn operation(&self, lane: Lane, n: u64, intended: Instant, seed: u64) {
        let mut rng = SmallRng::seed_from_u64(seed);
        match lane {
            Lane::Read => {
                let reader = &self.users[self.users.len() - 1 - self.popular(&mut rng)];
                let read = self.caller.gateway.home_timeline(
                    reader.id,
                    &reader.token,
                    None,
                    Some(READ_PAGE),
                );
                let ok = matches!(tokio::time::timeout(READ_TIMEOUT, read).await, Ok(Ok(_)));
                self.tally.read(intended, ok.then(|| intended.elapsed()));
            }
            Lane::Post => {
                let who = self.authors[rng.random_range(0..self.authors.len())];
                let key = format!("{}b{n}", self.prefix);
                let posted = self
                    .caller
                    .post(&self.users[who], &format!("soak {key}"), &key)
                    .await;
                self.tally
                    .post(intended, posted.map(|_| intended.elapsed()));
                if let Some(id) = posted {
                    self.events.fetch_add(1, Ordering::Relaxed);
                    let mut recent = self.recent.lock().await;
                    recent.push_back((who, id));
                    if recent.len() > RECENT {
                        recent.pop_front();
                    }
                }
            }
            Lane::Delete => {
                let victim = {
                    let mut recent = self.recent.lock().await;
                    let len = recent.len();
                    (len > 0)
                        .then(|| recent.swap_remove_back(rng.random_range(0..len)))
                        .flatten()
                };
                if let Some((who, id)) = victim {
                    self.caller.delete(&self.users[who], id).await;
                    self.events.fetch_add(1, Ordering::Relaxed);
                    self.tally.op(intended, Op::Delete);
                }
            }
            Lane::Follow => {
                let follower = rng.random_range(0..self.users.len());
                let author = self.popular(&mut rng);
                if follower != author
                    && self
                        .caller
                        .follow(&self.users[follower], self.users[author].id)
                        .await
                        .is_ok()
                {
                    self.followed
                        .lock()
                        .await
                        .push_back((follower, author, Instant::now()));
                    self.tally.op(intended, Op::Follow);
                }
            }
            Lane::Unfollow => {
                let due = {
                    let mut followed = self.followed.lock().await;
                    match followed.front() {
                        Some((_, _, at)) if at.elapsed() >= FOLLOW_LASTS => followed.pop_front(),
                        _ => None,
                    }
                };
                if let Some((follower, author, _)) = due
                    && self
                        .caller
                        .unfollow(&self.users[follower], self.users[author].id)
                        .await
                        .is_ok()
                {
                    self.tally.op(intended, Op::Unfollow);
                }
            }
        }
    }
}
