//! `experiment policies`: the home-timeline policies of real networks
//! ([`crate::policy::POLICIES`]) side by side, each a configuration of
//! chirp's real services, on one seeded graph under one load.
//!
//! The procedure shares `strategies`' steps (one seed, a fresh deployment
//! per policy, warm readers, the mixed load, the fan-out worker's counters)
//! and adds what tells the policies apart:
//!
//! 1. The seed has authors in every follower-count bucket (1–10, 10–1 000,
//!    1 000 to the celebrity threshold, celebrities) and a few *heavy
//!    followers*, who follow thousands of accounts (the readers a lossy
//!    fan-out drops writes for); some read under the load, some return.
//! 2. Per policy: readers and the returning users are warmed; then the
//!    returning users are made to look away for [`crate::policy::ABSENCE_SECS`]
//!    (their activity record deleted, and their timeline too where the
//!    policy's timelines expire sooner: `user_keys::forget`); then the mixed
//!    load runs.
//! 3. After it: the Redis bytes of every per-user key; timed posts by the
//!    authors of each bucket (a pushed post: its delivery record's time to
//!    the last timeline write; a pulled one: until a follower sees it); each
//!    returning user's first read (its latency, whether it came back partial);
//!    and, for a sample of readers and every returning user, the share of
//!    the tweets they should have seen that their first page lacks
//!    ([`crate::readers`]).

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, anyhow, ensure};
use chirp_client::Gateway;
use chirp_client::reqwest::Method;
use chirp_load::graph_model::{HeavyFollowers, PowerLawParams};
use chirp_load::machine::Machine;
use chirp_load::manifest::{Manifest, SeededUser};
use chirp_load::recorder::Completion;
use chirp_load::run;
use chirp_load::seed;
use chirp_load::workload::{Actor, GatewayTarget};
use rand::rngs::SmallRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde::Deserialize;
use tokio::time::Instant;

use crate::counters;
use crate::deployment::{Deployment, Running, StoreArgs};
use crate::load::{self, MixedLoad};
use crate::policy::{BLUESKY_LOSSY_LIMIT, POLICIES, Policy};
use crate::policy_comparison::{BucketDelay, Missed, Percentiles, PolicyComparison, PolicyResult};
use crate::readers::{self, Share, Truth};
use crate::seeding::{Seed, run_id, seed_then};
use crate::strategies::until_visible;
use crate::user_keys;

#[derive(Debug, Clone, clap::Args)]
pub struct PoliciesArgs {
    #[command(flatten)]
    pub backends: StoreArgs,
    /// Policies to compare, in order: twitter-2012, mastodon, bluesky-lossy,
    /// deathstarbench, chirp-hybrid.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "twitter-2012,mastodon,bluesky-lossy,deathstarbench,chirp-hybrid",
        value_parser = parse_policy
    )]
    pub policies: Vec<Policy>,
    /// Users to seed.
    #[arg(long, default_value_t = 100_000)]
    pub users: u32,
    /// Users to give at least `--celebrity-threshold` followers.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    pub celebrities: u32,
    /// The graph service's CELEBRITY_THRESHOLD, and the bottom of the
    /// "celebrity" bucket.
    #[arg(long, default_value_t = 10_000)]
    pub celebrity_threshold: u32,
    /// Users who follow `--heavy-following` accounts each.
    #[arg(long, default_value_t = 20)]
    pub heavy_followers: u32,
    /// Below the timeline service's `MAX_AUTHORS_SCANNED` (5 000), so that
    /// a heavy follower's rebuild reads every author they follow: past it a
    /// rebuild leaves out the highest user ids, and the seed's newest
    /// tweets are theirs, so the first policy measured would count that
    /// cut as its own misses.
    #[arg(long, default_value_t = 4_000)]
    pub heavy_following: u32,
    /// The lossy policy's limit (Bluesky's is 2 000): lower it with the
    /// graph, so that the heavy followers follow more than it.
    #[arg(long, default_value_t = BLUESKY_LOSSY_LIMIT)]
    pub lossy_limit: u32,
    /// Tweets each user has posted before the runs.
    #[arg(long, default_value_t = 5)]
    pub tweets_per_user: u32,
    /// Seed of the graph, of the picks and of the load.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Requests per second of the mixed load (open loop).
    #[arg(long, default_value_t = 200.0)]
    pub rate: f64,
    /// How long the mixed load runs, per policy.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    /// Users whose home timelines the load reads (half the heavy followers
    /// among them).
    #[arg(long, default_value_t = 1_000, value_parser = clap::value_parser!(u32).range(1..))]
    pub readers: u32,
    /// Home-timeline reads per post in the mixed load.
    #[arg(long, default_value_t = 100.0)]
    pub read_write_ratio: f64,
    /// Users made returning (the other half of the heavy followers among
    /// them), apart from the readers.
    #[arg(long, default_value_t = 300)]
    pub returning: u32,
    /// Readers whose first page is compared with the truth (the heavy
    /// readers among them).
    #[arg(long, default_value_t = 100)]
    pub miss_readers: u32,
    /// Posts per follower-count bucket timed to their last timeline write.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    pub probes: u32,
    /// Directory for the manifest, the table, the plots and each run's report.
    #[arg(long, default_value = "experiment-policies")]
    pub out: PathBuf,
    /// No progress bars while seeding.
    #[arg(long)]
    pub quiet: bool,
}

fn parse_policy(name: &str) -> Result<Policy, String> {
    Policy::named(name).ok_or_else(|| {
        let names: Vec<&str> = POLICIES.iter().map(|policy| policy.name).collect();
        format!("no policy {name:?}; the policies are {}", names.join(", "))
    })
}

/// Readers warmed at once: the timeline service's rebuild slots
/// (MAX_CONCURRENT_REBUILDS), so that no warm-up rebuild queues for one.
const WARM_CONCURRENCY: usize = 8;

/// Followers of an author, from `low` up to (not including) `high`.
#[derive(Debug, Clone)]
struct Bucket {
    name: String,
    low: u64,
    high: Option<u64>,
}

/// The buckets of follower counts, each from its lower bound up to (not
/// including) the next: 1–10, 10–1 000, 1 000 to the threshold, and the
/// celebrities from the threshold on; bounds at or above the threshold are
/// left out.
fn buckets(threshold: u64) -> Vec<Bucket> {
    let mut bounds: Vec<u64> = [1, 10, 1_000]
        .into_iter()
        .filter(|&bound| bound < threshold)
        .collect();
    bounds.push(threshold);
    let mut buckets: Vec<Bucket> = bounds
        .windows(2)
        .map(|pair| Bucket {
            name: format!("{}–{}", spaced(pair[0]), spaced(pair[1])),
            low: pair[0],
            high: Some(pair[1]),
        })
        .collect();
    buckets.push(Bucket {
        name: format!("celebrity ({}+)", spaced(threshold)),
        low: threshold,
        high: None,
    });
    buckets
}

/// An author whose posts are timed, and a follower to watch a pulled post.
#[derive(Debug, Clone)]
struct Author {
    actor: Actor,
    follower: Option<Actor>,
}

/// Who does what, chosen once for every policy.
struct Picks {
    /// Heavy readers first, then readers drawn at random.
    readers: Vec<Actor>,
    returning: Vec<Actor>,
    /// By bucket, the authors of its probes (repeated when it has fewer).
    authors: Vec<(Bucket, Vec<Author>)>,
    /// Whom each compared reader and returning user follows.
    following: HashMap<i64, Vec<i64>>,
    heavy: HashSet<i64>,
}

/// Runs the experiment as `args` say, writes its table, plots and reports
/// into `args.out`, prints the table, and returns the comparison.
pub async fn policies(args: &PoliciesArgs) -> anyhow::Result<PolicyComparison> {
    ensure!(!args.policies.is_empty(), "name at least one policy");
    ensure!(
        args.readers + args.returning < args.users,
        "{} readers and {} returning users do not fit {} users",
        args.readers,
        args.returning,
        args.users
    );
    std::fs::create_dir_all(&args.out).with_context(|| format!("create {}", args.out.display()))?;
    let run = run_id();
    let graph = Seed {
        graph: PowerLawParams {
            users: args.users,
            celebrities: args.celebrities,
            celebrity_threshold: args.celebrity_threshold,
            exponent: seed::DEFAULT_EXPONENT,
            seed: args.seed,
        },
        heavy: HeavyFollowers {
            count: args.heavy_followers,
            following: args.heavy_following,
        },
        tweets_per_user: args.tweets_per_user,
        manifest: args.out.join("manifest.json"),
        quiet: args.quiet,
    };
    let (manifest, picks) = seed_then(&args.backends, &run, &graph, async |stack, manifest| {
        pick(args, &Gateway::new(&stack.gateway_url)?, manifest).await
    })
    .await?;

    let mut results = Vec::new();
    for policy in &args.policies {
        let policy = policy.with_lossy_limit(args.lossy_limit);
        let name = policy.name;
        let deployment = Deployment {
            strategy: policy.strategy,
            celebrity_threshold: args.celebrity_threshold,
            redis_prefix: format!("loadtest:{run}:{name}:"),
            kafka_topic: format!("loadtest-{run}-{name}"),
            settings: policy.settings(),
        };
        println!("policy {name}: starting the services");
        let mut stack = Running::start(&args.backends, &deployment).await?;
        let measured = measure(args, &mut stack, &deployment, &policy, &manifest, &picks).await;
        let stopped = stack.stop().await;
        let result = measured.with_context(|| format!("measure the {name} policy"))?;
        stopped?;
        deployment.discard(&args.backends).await?;
        println!("{}", result.summary_line());
        results.push(result);
    }

    let comparison = PolicyComparison {
        machine: Machine::this(),
        users: manifest.users.len() as u64,
        follows: manifest.follows,
        tweets: manifest.tweets,
        celebrity_threshold: args.celebrity_threshold,
        heavy_followers: picks.heavy.len() as u32,
        heavy_following: args.heavy_following,
        rate: args.rate,
        duration_secs: args.duration.as_secs_f64(),
        readers: picks.readers.len() as u32,
        read_write_ratio: args.read_write_ratio,
        returning: picks.returning.len() as u32,
        miss_readers: args.miss_readers.min(picks.readers.len() as u32),
        probes: args.probes,
        policies: results,
    };
    let page = comparison.write(&args.out)?;
    print!("{}", comparison.markdown());
    println!("report      {}", page.display());
    Ok(comparison)
}

/// Chooses the readers, the returning users and the probes' authors, and
/// lists whom the compared users follow (the graph does not change from
/// one policy to the next).
async fn pick(
    args: &PoliciesArgs,
    gateway: &Gateway,
    manifest: &Manifest,
) -> anyhow::Result<Picks> {
    let mut rng = SmallRng::seed_from_u64(args.seed);
    let is_heavy = |user: &SeededUser| {
        args.heavy_followers > 0 && user.following >= u64::from(args.heavy_following)
    };
    let heavy: Vec<&SeededUser> = manifest
        .users
        .iter()
        .filter(|user| is_heavy(user))
        .collect();
    let mut others: Vec<&SeededUser> = manifest
        .users
        .iter()
        .filter(|user| !is_heavy(user))
        .collect();
    others.shuffle(&mut rng);
    let (heavy_readers, heavy_returning) = heavy.split_at(heavy.len().div_ceil(2));
    let readers: Vec<Actor> = heavy_readers
        .iter()
        .chain(&others)
        .take(args.readers as usize)
        .map(|user| Actor::of(user))
        .collect();
    let taken = args.readers as usize - heavy_readers.len().min(args.readers as usize);
    let returning: Vec<Actor> = heavy_returning
        .iter()
        .chain(&others[taken.min(others.len())..])
        .take(args.returning as usize)
        .map(|user| Actor::of(user))
        .collect();

    let mut authors = Vec::new();
    for bucket in buckets(u64::from(args.celebrity_threshold)) {
        let mut candidates: Vec<&SeededUser> = manifest
            .users
            .iter()
            .filter(|user| {
                user.followers >= bucket.low && bucket.high.is_none_or(|high| user.followers < high)
            })
            .collect();
        if candidates.is_empty() {
            println!(
                "no author has {} followers: that bucket is left out",
                bucket.name
            );
            continue;
        }
        candidates.shuffle(&mut rng);
        let mut chosen = Vec::new();
        for user in candidates.iter().cycle().take(args.probes as usize) {
            let follower = gateway
                .followers(user.id, None)
                .await
                .map_err(|failure| anyhow!("list the followers of {}: {}", user.id, failure))?
                .items
                .first()
                .and_then(|profile| manifest.users.iter().find(|seeded| seeded.id == profile.id))
                .map(Actor::of);
            chosen.push(Author {
                actor: Actor::of(user),
                follower,
            });
        }
        authors.push((bucket, chosen));
    }

    let compared = readers
        .iter()
        .take(args.miss_readers as usize)
        .chain(&returning);
    let mut following = HashMap::new();
    for user in compared {
        following.insert(user.id, readers::following(gateway, user.id).await?);
    }
    Ok(Picks {
        readers,
        returning,
        authors,
        following,
        heavy: heavy.iter().map(|user| user.id).collect(),
    })
}

/// Everything measured of one policy, on a running `stack`.
async fn measure(
    args: &PoliciesArgs,
    stack: &mut Running,
    deployment: &Deployment,
    policy: &Policy,
    manifest: &Manifest,
    picks: &Picks,
) -> anyhow::Result<PolicyResult> {
    let name = policy.name;
    let gateway = Gateway::new(&stack.gateway_url)?;
    let tag = format!("{}-{name}", run_id());
    let first_author = &picks.readers[0];
    counters::join(stack, &gateway, first_author, &format!("{tag}-warm-up")).await?;

    let warm = picks.readers.iter().chain(&picks.returning);
    readers::warm(&gateway, warm, WARM_CONCURRENCY).await?;
    let returning: HashSet<i64> = picks.returning.iter().map(|user| user.id).collect();
    user_keys::forget(deployment, &args.backends, policy, &returning).await?;

    let mixed = MixedLoad {
        rate: args.rate,
        duration: args.duration,
        read_write_ratio: args.read_write_ratio,
        seed: args.seed,
    };
    let run_args = mixed.run_args(stack, None, args.out.join(name))?;
    let everyone: Vec<Actor> = manifest.users.iter().map(Actor::of).collect();
    let target = GatewayTarget::new(
        gateway.clone(),
        run::params(&run_args),
        picks.readers.clone(),
        everyone,
    )?;
    let title = format!("mixed load, {name}");
    let loaded = load::run(stack, target, &run_args, &title).await?;
    let weight = user_keys::weigh(deployment, &args.backends).await?;

    let mut rng = SmallRng::seed_from_u64(args.seed);
    let mut delay = Vec::new();
    for (bucket, authors) in &picks.authors {
        delay.push(probe(stack, &gateway, bucket, authors, &tag, &mut rng).await?);
    }

    let mut truth = Truth::new(gateway.clone());
    let mut missed = Missed::default();
    let mut cold = Vec::new();
    let (mut partial, mut unanswered) = (0, 0);
    let mut pages = Vec::new();
    for user in &picks.returning {
        let page = readers::first_page(&gateway, user).await?;
        cold.push(page.took.as_secs_f64() * 1e3);
        partial += u64::from(page.partial);
        pages.push((user.id, page));
    }
    for (user, page) in &pages {
        if page.unanswered {
            unanswered += 1;
            continue;
        }
        truth
            .compare(&mut missed.returning, *user, &picks.following[user], page)
            .await?;
    }
    for user in picks.readers.iter().take(args.miss_readers as usize) {
        let page = readers::first_page(&gateway, user).await?;
        if page.unanswered {
            unanswered += 1;
            continue;
        }
        let share: &mut Share = if picks.heavy.contains(&user.id) {
            &mut missed.heavy
        } else {
            &mut missed.readers
        };
        truth
            .compare(share, user.id, &picks.following[&user.id], &page)
            .await?;
    }
    stack.check()?;
    Ok(PolicyResult {
        policy: name,
        network: policy.network,
        settings: policy.command_line(args.celebrity_threshold),
        source: policy.source,
        redis_bytes: weight.bytes,
        timelines: weight.timelines,
        load: crate::comparison::Writes::new(loaded.posts, loaded.delta.pushed()),
        skipped_inactive: loaded.delta.skipped(Some("inactive")) as u64,
        skipped_lossy: loaded.delta.skipped(Some("lossy")) as u64,
        delay,
        home_timeline: loaded.home,
        home_timeline_reads: loaded.home_reads,
        load_errors: loaded.errors,
        cold_read: Percentiles::of(cold),
        partial,
        unanswered,
        missed,
        report: format!("{name}/report.html"),
    })
}

/// What the worker recorded of a tweet's fan-out, as far as this reads it.
#[derive(Debug, Deserialize)]
struct Delivery {
    state: String,
    post_to_last_write_ms: Option<f64>,
}

/// Posts once as each of `authors`, one at a time, and times each post to
/// its last timeline write (pushed) or to a follower's page (pulled). Posts
/// are spaced by a random pause of up to a second, so that they do not fall
/// into step with a cache's expiry.
async fn probe(
    stack: &mut Running,
    gateway: &Gateway,
    bucket: &Bucket,
    authors: &[Author],
    tag: &str,
    rng: &mut SmallRng,
) -> anyhow::Result<BucketDelay> {
    let mut samples = Vec::new();
    let (mut writes, mut pulled, mut unreached, mut lost) = (0.0, 0, 0, 0);
    for (n, author) in authors.iter().enumerate() {
        tokio::time::sleep(Duration::from_millis(rng.random_range(0..1_000))).await;
        let before = stack.fanout_metrics();
        let sent = Instant::now();
        let content = format!("probe {n} of {tag}, {} followers", bucket.name);
        let tweet = gateway
            .post_tweet(
                &author.actor.token,
                &content,
                Some(&format!("{tag}-{}-{n}", bucket.low)),
            )
            .await
            .map_err(|failure| anyhow!("post a probe: {}", failure))?;
        writes += counters::since(stack, &before, 1).await?.pushed();
        let path = format!("/tweets/{}/delivery", tweet.id);
        let delivery: Delivery = gateway
            .request(Method::GET, &path, None)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        match (delivery.state.as_str(), &author.follower) {
            ("pulled", Some(follower)) => {
                pulled += 1;
                match until_visible(gateway, follower, tweet.id, sent, "pulled").await {
                    Completion::Ok { .. } => samples.push(sent.elapsed().as_secs_f64() * 1e3),
                    _ => lost += 1,
                }
            }
            ("pulled", None) => unreached += 1,
            _ => match delivery.post_to_last_write_ms {
                Some(ms) => samples.push(ms),
                None => unreached += 1,
            },
        }
    }
    let posts = authors.len() as u64;
    Ok(BucketDelay {
        bucket: bucket.name.clone(),
        posts,
        writes_per_post: writes / posts.max(1) as f64,
        delay: Percentiles::of(samples),
        pulled,
        unreached,
        lost,
    })
}

/// `n` with its thousands apart by a space, as the docs write numbers.
fn spaced(n: u64) -> String {
    let digits = n.to_string();
    let mut text = String::new();
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            text.push(' ');
        }
        text.push(digit);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_buckets_line_up_with_the_threshold() {
        let names: Vec<String> = buckets(10_000).into_iter().map(|b| b.name).collect();
        assert_eq!(
            names,
            ["1–10", "10–1 000", "1 000–10 000", "celebrity (10 000+)"]
        );
        let small = buckets(40);
        let names: Vec<&str> = small.iter().map(|b| b.name.as_str()).collect();
        assert_eq!(names, ["1–10", "10–40", "celebrity (40+)"]);
        assert_eq!((small[2].low, small[2].high), (40, None));
    }
}
