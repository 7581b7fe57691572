//! `experiment strategies`: the same data and the same load against the
//! push, pull and hybrid timelines, to see what each costs and buys.
//!
//! The procedure, so that only the strategy differs between the runs:
//!
//! 1. Seed one social graph (users, a power-law follow graph with a few
//!    celebrities, a tweet history) through a deployment of its own. The
//!    graph and the tweets stay in Postgres and the CQL store for every run.
//! 2. For each strategy, start the services with it, on a fresh Redis key
//!    prefix (no timeline is cached yet) and a fresh Kafka topic (no event is
//!    pending), and:
//!    - read every reader's first page once, so that every strategy is
//!      measured warm (the cold rebuild is a one-off cost, not the steady
//!      state);
//!    - run the `mixed` workload (home-timeline reads and posts) on an open
//!      loop, through `run`'s own machinery: the home-timeline latency;
//!    - post as an ordinary author, then as a celebrity, a few times each,
//!      and poll a follower's first page until the tweet shows: the
//!      post-to-visible latency, which is what fan-out on write buys;
//!    - read the fan-out worker's `chirp_fanout_timeline_writes_total`
//!      before and after each phase, once the worker has applied every event
//!      of it (`chirp_fanout_events_total`): the Redis writes per tweet,
//!      which is what it costs.
//! 3. Stop the services, and on to the next strategy.
//!
//! A timeline write here is one timeline entry: one `ZADD` (with the trim and
//! the TTL that ride with it in the same pipeline, three commands in all).

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, anyhow, ensure};
use chirp_client::Gateway;
use chirp_load::graph_model::{HeavyFollowers, PowerLawParams};
use chirp_load::machine::Machine;
use chirp_load::manifest::{Manifest, SeededUser};
use chirp_load::recorder::{Completion, Recorder};
use chirp_load::run;
use chirp_load::seed;
use chirp_load::workload::{Actor, warm_up};
use chirp_timeline_store::Strategy;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tokio::time::Instant;

use crate::comparison::{Comparison, StrategyResult, Visibility, Writes};
use crate::counters;
use crate::deployment::{Deployment, Running, Settings, StoreArgs, strategy_name};
use crate::load::{self, MixedLoad};
use crate::seeding::{Seed, run_id, seed_then};

#[derive(Debug, Clone, clap::Args)]
pub struct StrategiesArgs {
    #[command(flatten)]
    pub backends: StoreArgs,
    /// Strategies to compare, in order.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "push,pull,hybrid"
    )]
    pub strategies: Vec<Strategy>,
    /// Users to seed.
    #[arg(long, default_value_t = 2_000)]
    pub users: u32,
    /// Users to give at least `--celebrity-threshold` followers.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..))]
    pub celebrities: u32,
    /// The graph service's CELEBRITY_THRESHOLD in every run.
    #[arg(long, default_value_t = 500)]
    pub celebrity_threshold: u32,
    /// Tweets each user has posted before the runs.
    #[arg(long, default_value_t = 5)]
    pub tweets_per_user: u32,
    /// Seed of the graph and of the load: the same seed, the same runs.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Requests per second of the mixed load (open loop).
    #[arg(long, default_value_t = 100.0)]
    pub rate: f64,
    /// How long the mixed load runs, per strategy.
    #[arg(long, default_value = "15s", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    /// Users whose home timelines the load reads.
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u32).range(1..))]
    pub readers: u32,
    /// Home-timeline reads per post in the mixed load.
    #[arg(long, default_value_t = 100.0)]
    pub read_write_ratio: f64,
    /// Posts per kind of author (ordinary, celebrity) timed to visibility.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    pub probes: u32,
    /// Directory for the manifest, the table, the plot and each run's report.
    #[arg(long, default_value = "experiment-strategies")]
    pub out: PathBuf,
    /// No progress bars while seeding.
    #[arg(long)]
    pub quiet: bool,
}

/// The longest a post may take to show up before it counts as lost.
pub(crate) const VISIBLE_DEADLINE: Duration = Duration::from_secs(15);
/// How often a follower's page is read while waiting for a post.
pub(crate) const POLL: Duration = Duration::from_millis(5);
/// Readers warmed up at once.
const WARM_CONCURRENCY: usize = 16;
const VISIBLE_ORDINARY: &str = "post to visible, ordinary author";
const VISIBLE_CELEBRITY: &str = "post to visible, celebrity";

/// Who posts and who watches in the post-to-visible probes.
struct Probe {
    author: Actor,
    followers: u64,
    reader: Actor,
}

/// Runs the experiment as `args` say, writes its table, plot and reports
/// into `args.out`, prints the table, and returns the comparison.
pub async fn strategies(args: &StrategiesArgs) -> anyhow::Result<Comparison> {
    ensure!(!args.strategies.is_empty(), "name at least one strategy");
    std::fs::create_dir_all(&args.out).with_context(|| format!("create {}", args.out.display()))?;
    let run = run_id();
    let (manifest, ordinary, celebrity) = seed_once(args, &run).await?;

    let mut results = Vec::new();
    for &strategy in &args.strategies {
        let name = strategy_name(strategy);
        let deployment = Deployment {
            strategy,
            celebrity_threshold: args.celebrity_threshold,
            redis_prefix: format!("loadtest:{run}:{name}:"),
            kafka_topic: format!("loadtest-{run}-{name}"),
            settings: Settings::default(),
        };
        println!("strategy {name}: starting the services");
        let mut stack = Running::start(&args.backends, &deployment).await?;
        let measured = measure(args, &mut stack, strategy, &manifest, &ordinary, &celebrity).await;
        let stopped = stack.stop().await;
        let result = measured.with_context(|| format!("measure the {name} strategy"))?;
        stopped?;
        deployment.discard(&args.backends).await?;
        println!("{}", result.summary_line());
        results.push(result);
    }

    let comparison = Comparison {
        machine: Machine::this(),
        users: manifest.users.len() as u64,
        follows: manifest.follows,
        tweets: manifest.tweets,
        celebrity_threshold: args.celebrity_threshold,
        rate: args.rate,
        duration_secs: args.duration.as_secs_f64(),
        readers: args.readers,
        read_write_ratio: args.read_write_ratio,
        probes: args.probes,
        strategies: results,
    };
    let page = comparison.write(&args.out)?;
    print!("{}", comparison.markdown());
    println!("report      {}", page.display());
    Ok(comparison)
}

/// Seeds the graph through a deployment of its own and picks the probes'
/// authors and readers: the ordinary author with the most followers, the
/// biggest celebrity, and a follower of each.
async fn seed_once(args: &StrategiesArgs, run: &str) -> anyhow::Result<(Manifest, Probe, Probe)> {
    let graph = Seed {
        graph: PowerLawParams {
            users: args.users,
            celebrities: args.celebrities,
            celebrity_threshold: args.celebrity_threshold,
            exponent: seed::DEFAULT_EXPONENT,
            seed: args.seed,
        },
        heavy: HeavyFollowers::default(),
        tweets_per_user: args.tweets_per_user,
        manifest: args.out.join("manifest.json"),
        quiet: args.quiet,
    };
    let (manifest, (ordinary, celebrity)) =
        seed_then(&args.backends, run, &graph, async |stack, manifest| {
            let gateway = Gateway::new(&stack.gateway_url)?;
            let threshold = u64::from(args.celebrity_threshold);
            let celebrities: HashSet<i64> = manifest.celebrities.iter().copied().collect();
            let ordinary = manifest
                .users
                .iter()
                .filter(|user| user.followers < threshold && !celebrities.contains(&user.id))
                .max_by_key(|user| user.followers)
                .filter(|user| user.followers > 0)
                .ok_or_else(|| anyhow!("no ordinary user has a follower: seed more users"))?;
            let celebrity = manifest
                .users
                .iter()
                .filter(|user| celebrities.contains(&user.id))
                .max_by_key(|user| user.followers)
                .ok_or_else(|| anyhow!("the seed made no celebrity"))?;
            let ordinary = probe(&gateway, manifest, ordinary).await?;
            let celebrity = probe(&gateway, manifest, celebrity).await?;
            anyhow::Ok((ordinary, celebrity))
        })
        .await?;
    Ok((manifest, ordinary, celebrity))
}

/// `author` and the first of their followers, as the gateway lists them.
async fn probe(
    gateway: &Gateway,
    manifest: &Manifest,
    author: &SeededUser,
) -> anyhow::Result<Probe> {
    let followers = gateway
        .followers(author.id, None)
        .await
        .map_err(|failure| anyhow!("list the followers of {}: {}", author.id, failure))?;
    let reader = followers
        .items
        .first()
        .and_then(|profile| manifest.users.iter().find(|user| user.id == profile.id))
        .ok_or_else(|| anyhow!("@{} has no follower in the manifest", author.handle))?;
    Ok(Probe {
        author: Actor::of(author),
        followers: author.followers,
        reader: Actor::of(reader),
    })
}

/// Everything measured of one strategy, on a running `stack`.
async fn measure(
    args: &StrategiesArgs,
    stack: &mut Running,
    strategy: Strategy,
    manifest: &Manifest,
    ordinary: &Probe,
    celebrity: &Probe,
) -> anyhow::Result<StrategyResult> {
    let name = strategy_name(strategy);
    let gateway = Gateway::new(&stack.gateway_url)?;
    let tag = format!("{}-{name}", run_id());

    counters::join(stack, &gateway, &ordinary.author, &format!("{tag}-warm-up")).await?;

    let mixed = MixedLoad {
        rate: args.rate,
        duration: args.duration,
        read_write_ratio: args.read_write_ratio,
        seed: args.seed,
    };
    let run_args = mixed.run_args(stack, Some(args.readers), args.out.join(name))?;
    let target = run::target(&run_args, manifest).await?;
    let mut warm: Vec<&Actor> = target.readers().iter().collect();
    warm.extend([&ordinary.reader, &celebrity.reader]);
    warm_up(&gateway, warm, None, WARM_CONCURRENCY).await?;

    let title = format!("mixed load, {name} timelines");
    let loaded = load::run(stack, target, &run_args, &title).await?;
    let load = walked(loaded.posts, &loaded.delta);

    let mut rng = SmallRng::seed_from_u64(args.seed);
    let ordinary_visible = visibility(
        stack,
        &gateway,
        ordinary,
        args.probes,
        (&format!("{tag}-ordinary"), VISIBLE_ORDINARY),
        &mut rng,
    )
    .await?;
    let celebrity_visible = visibility(
        stack,
        &gateway,
        celebrity,
        args.probes,
        (&format!("{tag}-celebrity"), VISIBLE_CELEBRITY),
        &mut rng,
    )
    .await?;
    stack.check()?;
    Ok(StrategyResult {
        strategy: name,
        load,
        home_timeline: loaded.home,
        home_timeline_reads: loaded.home_reads,
        load_errors: loaded.errors,
        ordinary: ordinary_visible,
        celebrity: celebrity_visible,
        report: format!("{name}/report.html"),
    })
}

/// The timeline writes of `tweets` tweets: every follower a push reaches
/// costs the walk, cached or not, so the skipped pushes count with the
/// written ones.
fn walked(tweets: u64, delta: &counters::Delta) -> Writes {
    Writes::new(tweets, delta.pushed() + delta.skipped(None))
}

/// Posts `probes` tweets as `probe.author`, each timed from the moment it
/// was sent until it shows on the first page of `probe.reader`'s home
/// timeline; and what they cost in timeline writes. Probes are spaced by a
/// random pause of up to a second, so that they do not fall into step with
/// a cache's expiry.
async fn visibility(
    stack: &mut Running,
    gateway: &Gateway,
    probe: &Probe,
    probes: u32,
    (tag, operation): (&str, &'static str),
    rng: &mut SmallRng,
) -> anyhow::Result<Visibility> {
    let before = stack.fanout_metrics();
    let mut recorder = Recorder::new();
    let started = Instant::now();
    for n in 0..probes {
        tokio::time::sleep(Duration::from_millis(rng.random_range(0..1_000))).await;
        let sent = Instant::now();
        let content = format!("probe {n} of {tag}");
        let tweet_id = gateway
            .post_tweet(&probe.author.token, &content, Some(&format!("{tag}-{n}")))
            .await
            .map_err(|failure| anyhow!("post a probe: {}", failure))?
            .id;
        let completion = until_visible(gateway, &probe.reader, tweet_id, sent, operation).await;
        recorder.record(sent - started, sent.elapsed(), completion);
    }
    let summary = recorder.finish(started.elapsed()).summary();
    let visible = summary
        .operations
        .get(operation)
        .map(|operation| operation.latency)
        .unwrap_or(summary.latency);
    Ok(Visibility {
        author_id: probe.author.id,
        author_followers: probe.followers,
        writes: walked(
            u64::from(probes),
            &counters::since(stack, &before, u64::from(probes)).await?,
        ),
        visible,
        lost: summary.counts.timeouts + summary.counts.errors,
    })
}

/// Reads `reader`'s first page until `tweet_id` is on it.
pub(crate) async fn until_visible(
    gateway: &Gateway,
    reader: &Actor,
    tweet_id: i64,
    sent: Instant,
    operation: &'static str,
) -> Completion {
    loop {
        match gateway
            .home_timeline(reader.id, &reader.token, None, None)
            .await
        {
            Ok(page) if page.items.iter().any(|tweet| tweet.id == tweet_id) => {
                return Completion::Ok { operation };
            }
            Ok(_) => {}
            Err(error) => {
                let failure = error.into();
                return Completion::Failed { operation, failure };
            }
        }
        if sent.elapsed() > VISIBLE_DEADLINE {
            return Completion::TimedOut;
        }
        tokio::time::sleep(POLL).await;
    }
}
