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
use chirp_load::graph_model::PowerLawParams;
use chirp_load::machine::Machine;
use chirp_load::manifest::{Manifest, SeededUser};
use chirp_load::prometheus::Scrape;
use chirp_load::recorder::{Completion, Recorder};
use chirp_load::report::Report;
use chirp_load::run::{self, RunArgs};
use chirp_load::seed::{self, SeedArgs};
use chirp_load::tokens::{SeededArgs, TokenArgs};
use chirp_load::workload::{Actor, HOME_FIRST_PAGE, POST_TWEET, Workload, warm_up};
use chirp_stack::TOKEN_SECRET;
use chirp_timeline_store::Strategy;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tokio::time::Instant;

use crate::comparison::{Comparison, StrategyResult, Visibility, Writes};
use crate::deployment::{Deployment, Running, StoreArgs, strategy_name};

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

/// Counter, label `change`: timeline entries the fan-out worker wrote.
const TIMELINE_WRITES: &str = "chirp_fanout_timeline_writes_total";
/// Counter, label `reason`: pushes the worker skipped, the follower's
/// timeline not being cached. Counted with the writes: every follower a
/// push reaches costs the walk, cached or not.
const SKIPPED_WRITES: &str = "chirp_fanout_skipped_writes_total";
/// Counter, label `outcome`: events the fan-out worker handled.
const EVENTS: &str = "chirp_fanout_events_total";
/// The longest a post may take to show up before it counts as lost.
const VISIBLE_DEADLINE: Duration = Duration::from_secs(15);
/// How often a follower's page is read while waiting for a post.
const POLL: Duration = Duration::from_millis(5);
/// The longest the fan-out worker may take to catch up with a phase.
const DRAIN_DEADLINE: Duration = Duration::from_secs(60);
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
    let deployment = Deployment {
        strategy: Strategy::Hybrid,
        celebrity_threshold: args.celebrity_threshold,
        redis_prefix: format!("loadtest:{run}:seed:"),
        kafka_topic: format!("loadtest-{run}-seed"),
    };
    println!(
        "seeding {} users through a deployment of their own",
        args.users
    );
    let stack = Running::start(&args.backends, &deployment).await?;
    let seeded = async {
        let seed_args = SeedArgs::power_law(
            seed::Services {
                gateway: stack.gateway_url.clone(),
                graph_addr: stack.graph_addr.clone(),
                tweet_addr: stack.tweet_addr.clone(),
            },
            PowerLawParams {
                users: args.users,
                celebrities: args.celebrities,
                celebrity_threshold: args.celebrity_threshold,
                exponent: seed::DEFAULT_EXPONENT,
                seed: args.seed,
            },
            args.tweets_per_user,
            args.out.join("manifest.json"),
            args.quiet,
        );
        let mut manifest = seed::seed(&seed_args).await?;
        TokenArgs::new(TOKEN_SECRET)?.mint(&mut manifest);
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
        let ordinary = probe(&gateway, &manifest, ordinary).await?;
        let celebrity = probe(&gateway, &manifest, celebrity).await?;
        anyhow::Ok((manifest, ordinary, celebrity))
    }
    .await;
    stack.stop().await?;
    deployment.discard(&args.backends).await?;
    seeded
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

    // The worker has joined its group once it has applied a first event.
    gateway
        .post_tweet(
            &ordinary.author.token,
            "warming up",
            Some(&format!("{tag}-warm-up")),
        )
        .await
        .map_err(|failure| anyhow!("post a first tweet: {}", failure))?;
    drain(stack, 1.0).await?;

    let run_args = RunArgs {
        workload: Workload::Mixed,
        seeded: SeededArgs {
            manifest: PathBuf::new(),
            gateway: Some(stack.gateway_url.clone()),
            tokens: TokenArgs::new(TOKEN_SECRET)?,
        },
        rate: Some(args.rate),
        connections: None,
        duration: args.duration,
        timeout: Duration::from_secs(5),
        max_in_flight: 1_000,
        pages: 1,
        page_size: None,
        readers: Some(args.readers),
        read_write_ratio: args.read_write_ratio,
        seed: args.seed,
        out: args.out.join(name),
    };
    let target = run::target(&run_args, manifest).await?;
    let mut warm: Vec<&Actor> = target.readers().iter().collect();
    warm.extend([&ordinary.reader, &celebrity.reader]);
    warm_up(&gateway, warm, None, WARM_CONCURRENCY).await?;

    let before = stack.fanout_metrics();
    let title = format!("mixed load, {name} timelines");
    let report = Report::measure(&title, &stack.gateway_url, target, run_args.plan()?).await;
    report.write(&run_args.out)?;
    let operation = |name: &str| report.summary.operations.get(name);
    let posts = operation(POST_TWEET).map_or(0, |post| post.answered - post.errors);
    let home = operation(HOME_FIRST_PAGE)
        .ok_or_else(|| anyhow!("the mixed load read no home timeline"))?;
    let load = writes(stack, &before, posts).await?;

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
        home_timeline: home.latency,
        home_timeline_reads: home.answered,
        load_errors: report.summary.counts.errors + report.summary.counts.timeouts,
        ordinary: ordinary_visible,
        celebrity: celebrity_visible,
        report: format!("{name}/report.html"),
    })
}

/// The timeline writes of `posts` tweets posted since `before`, once the
/// worker has applied them all.
async fn writes(stack: &mut Running, before: &Scrape, posts: u64) -> anyhow::Result<Writes> {
    let applied = before.total(EVENTS, &["outcome=\"applied\""]);
    let after = drain(stack, applied + posts as f64).await?;
    let push = ["change=\"push\""];
    let timeline_writes = after.total(TIMELINE_WRITES, &push)
        - before.total(TIMELINE_WRITES, &push)
        + after.total(SKIPPED_WRITES, &[])
        - before.total(SKIPPED_WRITES, &[]);
    Ok(Writes {
        tweets: posts,
        timeline_writes: timeline_writes as u64,
        per_tweet: if posts == 0 {
            0.0
        } else {
            timeline_writes / posts as f64
        },
    })
}

/// Waits until the fan-out worker has applied `applied` events in all, and
/// returns its counters then.
async fn drain(stack: &mut Running, applied: f64) -> anyhow::Result<Scrape> {
    let deadline = Instant::now() + DRAIN_DEADLINE;
    loop {
        stack.check()?;
        let scrape = stack.fanout_metrics();
        if scrape.total(EVENTS, &["outcome=\"applied\""]) >= applied {
            return Ok(scrape);
        }
        ensure!(
            Instant::now() < deadline,
            "the fan-out worker applied {} of {applied} events in {DRAIN_DEADLINE:?}",
            scrape.total(EVENTS, &["outcome=\"applied\""])
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
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
        writes: writes(stack, &before, u64::from(probes)).await?,
        visible,
        lost: summary.counts.timeouts + summary.counts.errors,
    })
}

/// Reads `reader`'s first page until `tweet_id` is on it.
async fn until_visible(
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

/// Names this experiment's keys and topics apart from every earlier one's.
fn run_id() -> String {
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_millis());
    format!("x{millis}")
}
