//! The watched cohort: the few users whose every post, delete, follow and
//! unfollow the soak records, so that the checks can hold the system to
//! them, and whose posts time fan-out from the outside.
//!
//! Why a cohort and not the whole population: a check reads every watcher's
//! home timeline to its end and every watched author's profile, which for a
//! million users would be the load itself. So a handful of fresh watchers
//! follow one author of each follower-count bucket (a fresh author with
//! only the watchers; seeded authors with about a hundred and a few
//! thousand followers; a celebrity) and one *borderline* author, raised to
//! exactly one follower below the celebrity threshold, whom the last
//! watcher follows and unfollows in turn: every toggle takes the author
//! across the threshold and back, the case pending drops exist for.
//!
//! The watched authors are left out of the bulk load, so their profiles
//! hold only the cohort's posts (and their seeded history, which the
//! checks' window excludes).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use futures::{StreamExt, stream};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tokio::sync::Semaphore;

use super::tally::{Bucket, Op, Tally};
use crate::faults::Unfollow;
use crate::workload::{Caller, User};
use chirp_load::manifest::Manifest;

/// How long a probe watches for a post before it counts as late.
const PROBE_PATIENCE: Duration = Duration::from_secs(120);
/// Between two looks of a probe.
const PROBE_EVERY: Duration = Duration::from_millis(500);
/// Probes at once: a post that finds them all busy is not timed (the
/// delays are a sample), so that a slow stack is not buried under probes.
const PROBES: usize = 4;
/// The largest page: a slow post stays on it long enough to be seen.
const PROBE_PAGE: u32 = 100;
/// Follows made at once while raising the borderline author.
const SETUP_CONCURRENCY: usize = 16;
/// One in this many watched posts is deleted again.
const DELETE_EVERY: u64 = 5;
/// A delete picks among the author's last this many posts.
const RECENT_DELETE: usize = 3;

/// A watched author.
#[derive(Debug, Clone)]
pub struct Watched {
    pub user: User,
    /// Why it was chosen: a bucket's label or "borderline".
    pub role: String,
}

/// The cohort and its roles.
#[derive(Debug, Clone)]
pub struct Cohort {
    /// Fresh users who follow every watched author (the last one toggles
    /// the borderline author instead).
    pub watchers: Vec<User>,
    pub authors: Vec<Watched>,
    /// The borderline author's index in `authors`, if one was set up.
    pub borderline: Option<usize>,
    /// What the cohort could not set up, in words, for the report.
    pub missing: Vec<String>,
}

/// How the cohort is built.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    pub watchers: usize,
    pub threshold: i64,
    /// Follows the soak may make to raise the borderline author.
    pub max_setup_follows: usize,
}

impl Cohort {
    /// Signs the watchers up, picks and follows the authors; `seeded` are
    /// the seeded users with their tokens, `manifest` says who has how
    /// many followers.
    pub async fn set_up(
        caller: &Caller,
        helper: &Caller,
        seeded: &[User],
        manifest: &Manifest,
        prefix: &str,
        shape: Shape,
    ) -> anyhow::Result<Self> {
        ensure!(shape.watchers >= 3, "the cohort needs at least 3 watchers");
        ensure!(
            shape.watchers < 10,
            "more than 9 watchers would take the fresh author out of the 1-10 bucket"
        );
        let mut watchers = Vec::new();
        for i in 0..shape.watchers {
            watchers.push(caller.sign_up(&format!("{prefix}w{i}")).await?);
        }
        let mut authors = vec![Watched {
            user: caller.sign_up(&format!("{prefix}a")).await?,
            role: Bucket::Few.label().to_owned(),
        }];
        let mut missing = Vec::new();
        let celebrities: std::collections::HashSet<i64> =
            manifest.celebrities.iter().copied().collect();
        let ordinary = || {
            manifest
                .users
                .iter()
                .zip(seeded)
                .filter(|(seed, _)| !celebrities.contains(&seed.id))
        };
        // The watchers but the toggler follow it too: room is left for them.
        let room = (shape.threshold - shape.watchers as i64).max(0) as u64;
        let borderline_pick = ordinary()
            .filter(|(seed, _)| seed.followers <= room)
            .max_by_key(|(seed, _)| seed.followers);
        let mut taken = Vec::new();
        if let Some((_, user)) = borderline_pick {
            taken.push(user.id);
        }
        for (bucket, low, high, aim) in [
            (Bucket::Hundreds, 10, 1_000, 100.0_f64),
            (Bucket::Thousands, 1_000, 10_000, 3_000.0),
        ] {
            let high = high.min(shape.threshold as u64);
            if high <= low {
                missing.push(format!(
                    "the celebrity threshold ({}) leaves no bucket {}",
                    shape.threshold,
                    bucket.label()
                ));
                continue;
            }
            let pick = ordinary()
                .filter(|(seed, user)| {
                    (low..high).contains(&seed.followers) && !taken.contains(&user.id)
                })
                .min_by(|(a, _), (b, _)| {
                    let off = |n: u64| ((n as f64).ln() - aim.ln()).abs();
                    off(a.followers).total_cmp(&off(b.followers))
                });
            match pick {
                Some((_, user)) => {
                    taken.push(user.id);
                    authors.push(Watched {
                        user: user.clone(),
                        role: bucket.label().to_owned(),
                    });
                }
                None => missing.push(format!(
                    "no seeded author with {low}-{high} followers: bucket {} not measured",
                    bucket.label()
                )),
            }
        }
        let celebrity = manifest
            .users
            .iter()
            .zip(seeded)
            .filter(|(seed, _)| celebrities.contains(&seed.id))
            .min_by_key(|(seed, _)| seed.followers);
        match celebrity {
            Some((_, user)) => authors.push(Watched {
                user: user.clone(),
                role: Bucket::Celebrity.label().to_owned(),
            }),
            None => missing.push("no seeded celebrity: bucket celebrity not measured".to_owned()),
        }
        let toggler = watchers.last().expect("three watchers").clone();
        let mut borderline = None;
        if let Some((_, user)) = borderline_pick {
            authors.push(Watched {
                user: user.clone(),
                role: "borderline".to_owned(),
            });
            borderline = Some(authors.len() - 1);
        }
        for watcher in &watchers {
            for (i, author) in authors.iter().enumerate() {
                if Some(i) == borderline && watcher.id == toggler.id {
                    continue;
                }
                caller.follow(watcher, author.user.id).await?;
            }
        }
        {
            let mut ledger = caller.ledger.lock().await;
            ledger.readers.extend(watchers.iter().cloned());
            ledger
                .authors
                .extend(authors.iter().map(|author| author.user.clone()));
        }
        if let Some(i) = borderline {
            let raised = raise(
                helper,
                &authors[i].user,
                seeded,
                &taken_ids(&authors),
                shape,
            )
            .await?;
            if !raised {
                missing.push(format!(
                    "the borderline author is more than {} follows below the threshold: \
                     no toggling across it",
                    shape.max_setup_follows
                ));
                borderline = None;
            }
        }
        Ok(Self {
            watchers,
            authors,
            borderline,
            missing,
        })
    }

    /// The pair the graph fault unfollows in (then follows again): the
    /// first watcher and the fresh author.
    pub fn graph_pair(&self) -> Unfollow {
        Unfollow {
            fan: self.watchers[0].clone(),
            celebrity: self.authors[0].user.id,
        }
    }

    /// The watchers whose follows change during the load: the toggler and
    /// the graph fault's.
    pub fn churning(&self) -> Vec<i64> {
        let toggler = self.watchers.last().expect("three watchers");
        vec![self.watchers[0].id, toggler.id]
    }

    /// The watcher whose timeline the probes read: follows every author.
    fn prober(&self) -> &User {
        &self.watchers[1]
    }
}

fn taken_ids(authors: &[Watched]) -> Vec<i64> {
    authors.iter().map(|author| author.user.id).collect()
}

/// Has seeded users follow `author` until it is one below the threshold;
/// false if that would take more than the allowed follows.
async fn raise(
    helper: &Caller,
    author: &User,
    seeded: &[User],
    skip: &[i64],
    shape: Shape,
) -> anyhow::Result<bool> {
    let target = shape.threshold - 1;
    let mut candidates = seeded.iter().rev().filter(|user| !skip.contains(&user.id));
    let mut spent = 0;
    loop {
        let followers = helper
            .retry(|| helper.gateway.user(author.id))
            .await
            .map_err(|(failure, _)| anyhow::anyhow!("borderline profile: {}", failure.0))?
            .follower_count;
        ensure!(
            followers <= target,
            "the borderline author has {followers} followers, above {target}"
        );
        let deficit = (target - followers) as usize;
        if deficit == 0 {
            return Ok(true);
        }
        if spent + deficit > shape.max_setup_follows {
            return Ok(false);
        }
        let batch: Vec<&User> = candidates.by_ref().take(deficit).collect();
        ensure!(
            !batch.is_empty(),
            "no seeded user left to raise the borderline author"
        );
        spent += batch.len();
        stream::iter(batch)
            .map(|fan| helper.follow(fan, author.id))
            .buffer_unordered(SETUP_CONCURRENCY)
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect::<anyhow::Result<Vec<()>>>()
            .context("raising the borderline author")?;
    }
}

/// The cohort's activity until `stop`: each author posts every `every`
/// (and deletes one post in [`DELETE_EVERY`]), each post is probed for
/// fan-out delay, and the last watcher toggles the borderline author every
/// `toggle_every`.
pub async fn run(
    caller: Caller,
    cohort: Arc<Cohort>,
    tally: Arc<Tally>,
    threshold: i64,
    (every, toggle_every): (Duration, Duration),
    stop: Arc<AtomicBool>,
) {
    let mut tasks = Vec::new();
    let probes = Arc::new(Semaphore::new(PROBES));
    for (n, author) in cohort.authors.iter().cloned().enumerate() {
        let (caller, cohort, stop) = (caller.clone(), cohort.clone(), stop.clone());
        let watch = Watch {
            tally: tally.clone(),
            probes: probes.clone(),
            threshold,
        };
        tasks.push(tokio::spawn(async move {
            post_loop(caller, cohort, watch, (n, author.user), every, stop).await;
        }));
    }
    if let Some(i) = cohort.borderline {
        let (caller, stop) = (caller.clone(), stop.clone());
        let toggler = cohort.watchers.last().expect("watchers").clone();
        let author = cohort.authors[i].user.id;
        tasks.push(tokio::spawn(async move {
            let mut following = false;
            while !stop.load(Ordering::Relaxed) {
                tokio::time::sleep(toggle_every).await;
                let done = if following {
                    caller.unfollow(&toggler, author).await
                } else {
                    caller.follow(&toggler, author).await
                };
                following ^= done.is_ok();
            }
        }));
    }
    for task in tasks {
        let _ = task.await;
    }
}

/// Where a post loop files its fan-out delays.
struct Watch {
    tally: Arc<Tally>,
    probes: Arc<Semaphore>,
    threshold: i64,
}

async fn post_loop(
    caller: Caller,
    cohort: Arc<Cohort>,
    watch: Watch,
    (n, author): (usize, User),
    every: Duration,
    stop: Arc<AtomicBool>,
) {
    let mut rng = SmallRng::seed_from_u64(n as u64);
    let mut mine = Vec::new();
    let mut followers = 0;
    let mut i = 0u64;
    // Authors start apart, so the cohort's posts spread over the interval.
    tokio::time::sleep(every.mul_f64(n as f64 / cohort.authors.len() as f64)).await;
    while !stop.load(Ordering::Relaxed) {
        if let Ok(profile) = caller.attempt(caller.gateway.user(author.id)).await {
            followers = profile.follower_count;
        }
        let key = format!("{}-{n}-{i}", author.id);
        if let Some(id) = caller.post(&author, &format!("watched {key}"), &key).await {
            mine.push(id);
            let accepted = Instant::now();
            let bucket = Bucket::of(followers, watch.threshold);
            if let Ok(permit) = watch.probes.clone().try_acquire_owned() {
                let (caller, prober) = (caller.clone(), cohort.prober().clone());
                let tally = watch.tally.clone();
                tokio::spawn(async move {
                    let seen = probe(&caller, &prober, id, accepted).await;
                    tally.delay(accepted, bucket, seen);
                    drop(permit);
                });
            }
        }
        i += 1;
        if i.is_multiple_of(DELETE_EVERY) && !mine.is_empty() {
            // One of its last few posts, as a user deletes a typo: a check
            // during the load reads older posts, which stay put.
            let recent = mine.len().saturating_sub(RECENT_DELETE)..mine.len();
            let victim = mine.remove(rng.random_range(recent));
            caller.delete(&author, victim).await;
            watch.tally.op(Instant::now(), Op::Delete);
        }
        tokio::time::sleep(every).await;
    }
}

/// Reads `reader`'s first page until `id` shows; the delay from `accepted`.
async fn probe(caller: &Caller, reader: &User, id: i64, accepted: Instant) -> Option<Duration> {
    while accepted.elapsed() < PROBE_PATIENCE {
        let page = tokio::time::timeout(
            Duration::from_secs(10),
            caller
                .gateway
                .home_timeline(reader.id, &reader.token, None, Some(PROBE_PAGE)),
        )
        .await;
        if let Ok(Ok(page)) = page
            && page.items.iter().any(|item| item.id == id)
        {
            return Some(accepted.elapsed());
        }
        tokio::time::sleep(PROBE_EVERY).await;
    }
    None
}
