//! `run`: loads the gateway with a workload for a while, as the seeded
//! users, then writes and prints the report.
//!
//! The parts are separate on purpose: [`crate::workload`] says what to send,
//! [`crate::schedule`] when, [`crate::recorder`] what came back, and
//! [`crate::report`] how it reads. Only this module knows about manifests
//! and flags.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use anyhow::{Context, bail, ensure};
use chirp_client::Gateway;
use reqwest::StatusCode;

use crate::manifest::Manifest;
use crate::report::Report;
use crate::schedule::{Mode, Plan};
use crate::tokens::SeededArgs;
use crate::workload::{Actor, GatewayTarget, Params, Workload};

#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    /// What to send.
    #[arg(value_enum)]
    pub workload: Workload,
    /// The seeded users: the manifest, the gateway, their tokens' secret.
    #[command(flatten)]
    pub seeded: SeededArgs,
    /// Open loop: requests per second on a fixed schedule, latency measured
    /// from each request's intended send time. Default: 100, unless
    /// --connections alone asks for a closed loop.
    #[arg(long)]
    pub rate: Option<f64>,
    /// Alone: a closed loop of this many connections, each sending its next
    /// request when the previous one has answered. With --rate: an open loop
    /// over at most this many connections (as wrk2's -R with -c), due
    /// requests waiting for a free one.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub connections: Option<u32>,
    /// How long to send for (e.g. 30s, 2m).
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    /// A request unanswered after this long counts as a timeout.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
    /// Open loop: requests in flight beyond which a due request is dropped
    /// (and counted) instead of sent.
    #[arg(long, default_value_t = 1_000, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_in_flight: u32,
    /// Home-timeline pages a reader reads, by cursor, before starting over.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    pub pages: u32,
    /// Tweets per timeline page (1-100), home timelines and users' own.
    /// Default: the gateway's (20), or the page a DeathStarBench mix asks for.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub page_size: Option<u32>,
    /// Read as only this many of the users, drawn at random (default: all).
    /// A few keep their timelines and tweets hot in the caches; all of
    /// them measure the misses too.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub readers: Option<u32>,
    /// Reads per write in `mixed` and `celebrity-post` (the article's 100:1).
    #[arg(long, default_value_t = 100.0)]
    pub read_write_ratio: f64,
    /// Seed of the choice of users: the same seed sends the same requests.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Directory for report.json and report.html.
    #[arg(long, default_value = "loadtest-report")]
    pub out: PathBuf,
}

/// The default open-loop rate.
const DEFAULT_RATE: f64 = 100.0;
/// `celebrity-post` and `hot-tweet` read as at most this many of their
/// authors' followers.
const MAX_FOLLOWER_READERS: usize = 10_000;
/// How long `hot-tweet` waits for its tweet's fan-out before reading anyway.
const HOT_TWEET_DELIVERY: Duration = Duration::from_secs(30);

impl RunArgs {
    /// The schedule the flags describe.
    pub fn plan(&self) -> anyhow::Result<Plan> {
        let mode = match (self.rate, self.connections) {
            (None, Some(connections)) => Mode::ClosedLoop {
                connections: connections as usize,
            },
            (rate, connections) => {
                let rate = rate.unwrap_or(DEFAULT_RATE);
                ensure!(
                    rate.is_finite() && rate > 0.0,
                    "--rate must be positive, got {rate}"
                );
                Mode::OpenLoop {
                    rate,
                    max_in_flight: self.max_in_flight as usize,
                    connections: connections.map(|connections| connections as usize),
                }
            }
        };
        ensure!(!self.duration.is_zero(), "--duration must be positive");
        ensure!(!self.timeout.is_zero(), "--timeout must be positive");
        Ok(Plan {
            mode,
            duration: self.duration,
            timeout: self.timeout,
        })
    }
}

/// Runs the workload as `args` say, writes the report into `args.out`,
/// prints its summary, and returns it.
pub async fn run(args: &RunArgs) -> anyhow::Result<Report> {
    let plan = args.plan()?;
    let manifest = args.seeded.users()?;
    let target = target(args, &manifest).await?;
    let url = target.gateway().base_url().to_owned();
    let report = Report::measure(args.workload.name(), &url, target, plan).await;
    let page = report.write(&args.out)?;
    print!("{report}");
    println!("report      {}", page.display());
    Ok(report)
}

/// The workload `args` name, against the gateway `args` (or the manifest)
/// names, as the manifest's users; checks first that the gateway takes
/// their tokens.
pub async fn target(args: &RunArgs, manifest: &Manifest) -> anyhow::Result<GatewayTarget> {
    let gateway = Gateway::new(args.seeded.gateway(manifest))?;
    let everyone: Vec<Actor> = manifest.users.iter().map(Actor::of).collect();
    check_tokens(&gateway, &everyone).await?;
    let (readers, writers) = match args.workload {
        Workload::HomeTimeline | Workload::UserTimeline => (everyone, Vec::new()),
        Workload::Post => (Vec::new(), everyone),
        Workload::Mixed | Workload::DsbMixed | Workload::NightcoreMixed => {
            (everyone.clone(), everyone)
        }
        Workload::CelebrityPost => celebrities_and_followers(&gateway, manifest, everyone).await?,
        Workload::HotTweet => (hot_tweet(&gateway, manifest, everyone).await?, Vec::new()),
    };
    GatewayTarget::new(gateway, params(args), readers, writers)
}

/// How the workload `args` name picks and paces its requests: for a caller
/// that chooses the readers and writers itself.
pub fn params(args: &RunArgs) -> Params {
    Params {
        workload: args.workload,
        // Everyone reads the page the hot tweet is on, and no other.
        pages: if args.workload == Workload::HotTweet {
            1
        } else {
            args.pages
        },
        // A DeathStarBench mix reads pages of the size its benchmark asks for.
        page_size: args
            .page_size
            .or(args.workload.mix().map(|mix| mix.page_size)),
        readers: args.readers.map(|count| count as usize),
        read_write_ratio: args.read_write_ratio,
        seed: args.seed,
        run_tag: run_tag(),
    }
}

/// Fails fast, with the likely reason, when the gateway is down or does not
/// take the manifest's tokens.
async fn check_tokens(gateway: &Gateway, users: &[Actor]) -> anyhow::Result<()> {
    let Some(user) = users.first() else {
        bail!("the manifest has no users: seed first");
    };
    match gateway
        .home_timeline(user.id, &user.token, None, None)
        .await
    {
        Ok(_) => Ok(()),
        Err(failure) if failure.status() == Some(StatusCode::UNAUTHORIZED) => bail!(
            "the gateway at {} refuses the tokens minted for the manifest's users: pass the \
             gateway's own TOKEN_SECRET",
            gateway.base_url()
        ),
        Err(failure) => Err(anyhow::anyhow!(
            "the gateway at {} does not answer as expected ({}); is it up?",
            gateway.base_url(),
            failure
        )),
    }
}

/// For `celebrity-post`: the celebrities write, and as many of their
/// followers as [`MAX_FOLLOWER_READERS`] read, found through the gateway.
async fn celebrities_and_followers(
    gateway: &Gateway,
    manifest: &Manifest,
    everyone: Vec<Actor>,
) -> anyhow::Result<(Vec<Actor>, Vec<Actor>)> {
    ensure!(
        !manifest.celebrities.is_empty(),
        "the manifest has no celebrities: seed with --celebrities N and a --celebrity-threshold \
         that N users can reach (and start the services with the same CELEBRITY_THRESHOLD)"
    );
    let mut by_id: HashMap<i64, Actor> = everyone.into_iter().map(|a| (a.id, a)).collect();
    let writers = manifest
        .celebrities
        .iter()
        .filter_map(|id| by_id.get(id).cloned())
        .collect();
    let readers = followers_of(gateway, &manifest.celebrities)
        .await?
        .iter()
        .filter_map(|id| by_id.remove(id))
        .collect();
    Ok((readers, writers))
}

/// For `hot-tweet`: posts the one tweet as the most-followed seeded author
/// who is not a celebrity, waits for its fan-out to finish, and returns the
/// readers, as many of that author's followers as [`MAX_FOLLOWER_READERS`].
/// Not a celebrity, so that the tweet is pushed and on every reader's page
/// once the fan-out is done; a celebrity's would be pulled, and show only
/// when each timeline service's cache of that author's ids next refreshes
/// (`PULLED_IDS_TTL_MS`).
///
/// Their home timelines are the path that exercises the shared tweet cache:
/// every page is hydrated through the timeline service's cache, whether the
/// tweet was pushed into it or is pulled (a celebrity's) or comes with a
/// rebuild, whereas `GET /tweets/{id}` goes to the tweet service and
/// caches nothing. Readers whose timeline is not cached rebuild it on their
/// first read, the tweet included.
async fn hot_tweet(
    gateway: &Gateway,
    manifest: &Manifest,
    everyone: Vec<Actor>,
) -> anyhow::Result<Vec<Actor>> {
    let author = manifest
        .users
        .iter()
        .filter(|user| !manifest.celebrities.contains(&user.id))
        .max_by_key(|user| user.followers)
        .filter(|user| user.followers > 0)
        .context("no seeded author but a celebrity has followers: seed a graph first")?;
    let mut by_id: HashMap<i64, Actor> = everyone.into_iter().map(|a| (a.id, a)).collect();
    let token = &by_id[&author.id].token;
    let tag = run_tag();
    let tweet = gateway
        .post_tweet(token, &format!("The hot tweet of {tag}"), Some(&tag))
        .await
        .map_err(|failure| anyhow::anyhow!("post the hot tweet: {failure}"))?;
    let deadline = tokio::time::Instant::now() + HOT_TWEET_DELIVERY;
    let delivered = loop {
        let delivery = gateway
            .delivery(tweet.id)
            .await
            .map_err(|failure| anyhow::anyhow!("read the hot tweet's delivery: {failure}"))?;
        if delivery.done() || tokio::time::Instant::now() >= deadline {
            break delivery;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    println!(
        "hot tweet   {} by @{} ({} followers), fan-out {} ({} pushed); \
         watch: GET /tweets/{}/delivery, the console's Interview view (Bottlenecks)",
        tweet.id,
        author.handle,
        author.followers,
        delivered.state,
        delivered.followers_pushed,
        tweet.id
    );
    Ok(followers_of(gateway, &[author.id])
        .await?
        .iter()
        .filter_map(|id| by_id.remove(id))
        .collect())
}

/// The followers of `authors`, each once, up to [`MAX_FOLLOWER_READERS`],
/// listed through the gateway.
async fn followers_of(gateway: &Gateway, authors: &[i64]) -> anyhow::Result<Vec<i64>> {
    let mut follower_ids = Vec::new();
    let mut seen = HashSet::new();
    for &author in authors {
        let mut cursor = None;
        loop {
            let page = gateway
                .followers(author, cursor.as_deref())
                .await
                .map_err(|failure| anyhow::anyhow!("{}", failure))
                .with_context(|| format!("list the followers of {author}"))?;
            for profile in page.items {
                if seen.insert(profile.id) {
                    follower_ids.push(profile.id);
                }
                if follower_ids.len() == MAX_FOLLOWER_READERS {
                    return Ok(follower_ids);
                }
            }
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
    }
    Ok(follower_ids)
}

/// A tag unique to this run, for its posts' idempotency keys.
fn run_tag() -> String {
    let millis = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |since| since.as_millis());
    format!("run{millis}")
}
