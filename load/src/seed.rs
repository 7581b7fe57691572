//! `seed`: builds a social graph and its tweet history in a running chirp,
//! the way a data migration would, and writes the manifest that `run` reads.
//!
//! Two stages, each a bulk path of the service that owns the data, each
//! with a progress bar:
//!
//! 1. **The graph** (users, then follows) streams to the graph service's
//!    `ImportGraph` as one gRPC call: the service `COPY`s the rows into
//!    Postgres as they arrive and commits once at the end, so the stage is all
//!    or nothing. The bars show users and follows sent, then a spinner the
//!    commit (users inserted with their counters, the follows' keys and
//!    indexes rebuilt), which is timed apart. The
//!    generator ([`crate::graph_model`]) derives each user's followers from
//!    the seed and that user alone, and a blocking task streams them through
//!    a short channel, so memory holds a few chunks of edges, never the
//!    twenty million of a million users. Users are named by number; the
//!    service answers with the first id of the consecutive block they got.
//! 2. **The tweet history** goes to the tweet service's `ImportTweets`, a few
//!    thousand tweets a call, a few calls in flight: unlogged batches of
//!    partitions that live on the same nodes, no idempotency key, no Kafka
//!    event (timelines are built on read). Each tweet's id is chosen here, a Snowflake id of the past
//!    ([`IMPORT_WORKER_ID`], one millisecond apart, round-robin over the
//!    users so that home timelines interleave their authors), so a call
//!    retried after a timeout rewrites the same rows.
//!
//! Users do not sign up through the gateway and get no token here: `run` and
//! `bench` mint tokens with the gateway's secret ([`crate::tokens`]).
//!
//! When a stage fails the seed stops with the error. A failed graph stage
//! leaves nothing behind: re-running starts clean. A failed tweet stage
//! leaves the graph and part of the history; the manifest was written after
//! the graph, so `seed --resume-tweets MANIFEST` writes the history again with
//! the same ids (rewriting what was written, adding the rest) and completes
//! the manifest.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail, ensure};
use chirp_domain::ids::{id_at, now_ms};
use chirp_grpc::Channel;
use chirp_proto::graph::graph_service_client::GraphServiceClient;
use chirp_proto::graph::{CreateUserRequest, ImportGraphChunk, ImportedFollow};
use chirp_proto::tweet::tweet_service_client::TweetServiceClient;
use chirp_proto::tweet::{ImportTweetsRequest, ImportedTweet};
use futures::{StreamExt, TryStreamExt, stream};
use indicatif::{ProgressBar, ProgressStyle};
use tokio::sync::mpsc;

use crate::graph_model::{EdgeList, HeavyFollowers, PowerLaw, PowerLawParams, SocialGraph};
use crate::manifest::{Manifest, SeededUser, Timings};

#[derive(Debug, Clone, clap::Args)]
pub struct SeedArgs {
    /// The gateway (HTTP) the manifest names for `run`; the seed itself
    /// does not call it.
    #[arg(long, env = "GATEWAY_URL", default_value = "http://127.0.0.1:8080")]
    pub gateway: String,
    /// The graph service (gRPC): users and follows are imported there.
    #[arg(long, env = "GRAPH_ADDR", default_value = "127.0.0.1:50052")]
    pub graph_addr: String,
    /// The tweet service (gRPC): the tweet history is imported there.
    #[arg(long, env = "TWEET_ADDR", default_value = "127.0.0.1:50051")]
    pub tweet_addr: String,
    /// Users to create.
    #[arg(long, default_value_t = 10_000, conflicts_with = "edges")]
    pub users: u32,
    /// Users to give at least `--celebrity-threshold` followers.
    #[arg(long, default_value_t = 5, conflicts_with = "edges")]
    pub celebrities: u32,
    /// The services' CELEBRITY_THRESHOLD (the graph service's default is
    /// 10 000, which 10 000 users cannot reach: lower both together).
    #[arg(long, env = "CELEBRITY_THRESHOLD", default_value_t = 10_000)]
    pub celebrity_threshold: u32,
    /// `s` in P(k followers) ∝ (k + 1)^-s for everyone but the celebrities.
    #[arg(long, default_value_t = DEFAULT_EXPONENT, conflicts_with = "edges")]
    pub exponent: f64,
    /// Users (the last numbers) who also follow `--heavy-following`
    /// accounts each: the readers a lossy fan-out drops writes for, whom the
    /// power law alone never makes.
    #[arg(long, default_value_t = 0, conflicts_with = "edges")]
    pub heavy_followers: u32,
    /// Accounts each of `--heavy-followers` follows.
    #[arg(long, default_value_t = 5_000, conflicts_with = "edges")]
    pub heavy_following: u32,
    /// Tweets each user posts.
    #[arg(long, default_value_t = 5)]
    pub tweets_per_user: u32,
    /// Seed of the random graph: the same seed builds the same graph.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Import this graph instead of generating one: `a b` lines (a follows
    /// b; `#` and `%` start comments) or a MatrixMarket `.mtx` file.
    #[arg(long)]
    pub edges: Option<PathBuf>,
    /// Each edge of `--edges` is a friendship: import it as two follows.
    #[arg(long, requires = "edges")]
    pub undirected: bool,
    /// Handles are this prefix and the user's number. Default: a fresh
    /// prefix per seed, so that seeding twice into one database works.
    #[arg(long, value_parser = parse_handle_prefix)]
    pub handle_prefix: Option<String>,
    /// Skip the graph: write the tweet history of the manifest's users again
    /// (after a failed tweet stage), with the same ids, and complete it.
    #[arg(long, value_name = "MANIFEST", conflicts_with = "edges")]
    pub resume_tweets: Option<PathBuf>,
    /// Where to write the manifest `run` reads.
    #[arg(long, default_value = "loadtest-manifest.json")]
    pub manifest: PathBuf,
    /// No progress bars (they are also hidden when stderr is no terminal).
    #[arg(long)]
    pub quiet: bool,
}

/// The default of `--exponent`, for callers that seed without flags.
pub const DEFAULT_EXPONENT: f64 = 1.7;

/// The Snowflake worker id of imported tweets. The services' `NODE_ID`s
/// count up from 0, so the top of the range never meets a live generator.
pub const IMPORT_WORKER_ID: u16 = chirp_domain::ids::MAX_WORKER_ID;

/// Longest handle the graph service accepts.
const MAX_HANDLE: usize = 15;
/// Users or follows per message of the graph stream: ~150 KB of follows.
const GRAPH_CHUNK: usize = 10_000;
/// Chunks generated ahead of the network: enough to keep the stream busy.
const GRAPH_AHEAD: usize = 4;
/// The graph import is one call for the whole stage.
const GRAPH_DEADLINE: Duration = Duration::from_secs(3 * 60 * 60);
/// Tweets per `ImportTweets` call (the service takes at most 5 000).
const TWEETS_PER_CALL: usize = 4_000;
/// `ImportTweets` calls in flight; each keeps dozens of writes in flight.
const TWEET_CALLS: usize = 6;
/// Deadline of one `ImportTweets` call.
const TWEET_DEADLINE: Duration = Duration::from_secs(60);
/// Attempts of a call that is safe to repeat, on a transient failure.
const ATTEMPTS: u32 = 3;

fn parse_handle_prefix(raw: &str) -> Result<String, String> {
    let valid = raw.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if raw.is_empty() || raw.len() > MAX_HANDLE - 1 || !valid {
        return Err("1-14 letters, digits or underscores".to_owned());
    }
    Ok(raw.to_owned())
}

/// A prefix no earlier seed used (to the second): `s` and the time in base 36.
pub fn fresh_handle_prefix() -> String {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut seconds = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let mut digits = Vec::new();
    while seconds > 0 {
        digits.push(DIGITS[(seconds % 36) as usize]);
        seconds /= 36;
    }
    digits.reverse();
    // Six base-36 digits last 70 years; keep at most the last five (two
    // years before they repeat) to leave room for seven-digit user numbers.
    let tail = &digits[digits.len().saturating_sub(5)..];
    format!("s{}_", String::from_utf8_lossy(tail))
}

/// Where a seed sends its users, follows and tweets: a deployment's
/// gateway, graph service and tweet service.
#[derive(Debug, Clone)]
pub struct Services {
    pub gateway: String,
    pub graph_addr: String,
    pub tweet_addr: String,
}

impl SeedArgs {
    /// A power-law seed of `graph` into `services`, fresh handles, the
    /// manifest written to `manifest`: what a program that seeds its own
    /// deployment asks for (the soak, the strategies experiment).
    pub fn power_law(
        services: Services,
        graph: PowerLawParams,
        tweets_per_user: u32,
        manifest: PathBuf,
        quiet: bool,
    ) -> Self {
        Self {
            gateway: services.gateway,
            graph_addr: services.graph_addr,
            tweet_addr: services.tweet_addr,
            users: graph.users,
            celebrities: graph.celebrities,
            celebrity_threshold: graph.celebrity_threshold,
            exponent: graph.exponent,
            heavy_followers: 0,
            heavy_following: 0,
            tweets_per_user,
            seed: graph.seed,
            edges: None,
            undirected: false,
            handle_prefix: None,
            resume_tweets: None,
            manifest,
            quiet,
        }
    }

    /// The same seed with `heavy` heavy followers.
    pub fn with_heavy_followers(self, heavy: HeavyFollowers) -> Self {
        Self {
            heavy_followers: heavy.count,
            heavy_following: heavy.following,
            ..self
        }
    }

    fn graph(&self) -> anyhow::Result<SocialGraph> {
        Ok(match &self.edges {
            Some(path) => SocialGraph::Imported(EdgeList::read(path, self.undirected)?),
            None => SocialGraph::PowerLaw(PowerLaw::with_heavy_followers(
                PowerLawParams {
                    users: self.users,
                    celebrities: self.celebrities,
                    celebrity_threshold: self.celebrity_threshold,
                    exponent: self.exponent,
                    seed: self.seed,
                },
                HeavyFollowers {
                    count: self.heavy_followers,
                    following: self.heavy_following,
                },
            )?),
        })
    }

    fn source(&self) -> String {
        match &self.edges {
            Some(path) if self.undirected => format!("{} (undirected)", path.display()),
            Some(path) => path.display().to_string(),
            None if self.heavy_followers > 0 => format!(
                "power law (exponent {}, seed {}), {} heavy followers of {} accounts",
                self.exponent, self.seed, self.heavy_followers, self.heavy_following
            ),
            None => format!("power law (exponent {}, seed {})", self.exponent, self.seed),
        }
    }
}

/// Seeds the services as `args` say, writes the manifest, and returns it.
pub async fn seed(args: &SeedArgs) -> anyhow::Result<Manifest> {
    let mut manifest = match &args.resume_tweets {
        Some(path) => Manifest::read(path)?,
        None => seed_graph(args).await?,
    };
    let tweet_service =
        TweetServiceClient::new(crate::grpc::connect(&args.tweet_addr, TWEET_DEADLINE)?);
    let started = Instant::now();
    let tweets = import_tweets(tweet_service, &manifest, args.quiet)
        .await
        .with_context(|| {
            format!(
                "the tweet stage failed; the graph is in place and the manifest {} written: \
                 `seed --resume-tweets {0}` writes the history again",
                args.manifest.display()
            )
        })?;
    manifest.tweets = tweets;
    manifest.timings.tweets_secs = started.elapsed().as_secs_f64();
    report_stage("tweets", tweets, manifest.timings.tweets_secs);
    manifest.write(&args.manifest)?;
    println!(
        "manifest: {} ({} celebrities at threshold {})",
        args.manifest.display(),
        manifest.celebrities.len(),
        manifest.celebrity_threshold
    );
    Ok(manifest)
}

/// The graph stage: imports users and follows, then writes the manifest
/// without tweets (what `--resume-tweets` starts from).
async fn seed_graph(args: &SeedArgs) -> anyhow::Result<Manifest> {
    let graph = Arc::new(args.graph()?);
    let prefix = args
        .handle_prefix
        .clone()
        .unwrap_or_else(fresh_handle_prefix);
    let digits = (graph.users().max(1) - 1).to_string().len();
    if prefix.len() + digits > MAX_HANDLE {
        bail!(
            "handles of {} users need a --handle-prefix of at most {} characters",
            graph.users(),
            MAX_HANDLE - digits
        );
    }
    let graph_service =
        GraphServiceClient::new(crate::grpc::connect(&args.graph_addr, GRAPH_DEADLINE)?);
    let history_end_ms = now_ms();
    let imported = import_graph(
        graph_service,
        Arc::clone(&graph),
        prefix.clone(),
        args.quiet,
    )
    .await
    .context("the graph stage failed and was rolled back: nothing of it was kept")?;
    report_stage("users", u64::from(graph.users()), imported.users_secs);
    report_stage("follows", imported.follows, imported.follows_secs);
    report_stage("commit", imported.follows, imported.commit_secs);

    let users: Vec<SeededUser> = (0..graph.users())
        .map(|number| SeededUser {
            id: imported.first_user_id + i64::from(number),
            handle: format!("{prefix}{number}"),
            token: String::new(),
            followers: u64::from(imported.followers[number as usize]),
            following: u64::from(imported.following[number as usize]),
        })
        .collect();
    let threshold = u64::from(args.celebrity_threshold);
    let manifest = Manifest {
        gateway: args.gateway.clone(),
        source: args.source(),
        celebrity_threshold: args.celebrity_threshold,
        celebrities: users
            .iter()
            .filter(|user| user.followers >= threshold)
            .map(|user| user.id)
            .collect(),
        users,
        follows: imported.follows,
        tweets: 0,
        tweets_per_user: args.tweets_per_user,
        history_end_ms,
        timings: Timings {
            users_secs: imported.users_secs,
            follows_secs: imported.follows_secs,
            graph_commit_secs: imported.commit_secs,
            tweets_secs: 0.0,
        },
    };
    manifest.write(&args.manifest)?;
    Ok(manifest)
}

fn report_stage(stage: &str, count: u64, secs: f64) {
    let rate = count as f64 / secs.max(1e-3);
    println!("{stage:<8} {count:>10} in {secs:>7.1} s ({rate:.0}/s)");
}

fn progress(stage: &'static str, len: u64, quiet: bool) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let style = ProgressStyle::with_template(
        "{prefix:<8} [{bar:40}] {human_pos}/{human_len} {per_sec} eta {eta}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .progress_chars("=> ");
    ProgressBar::new(len).with_style(style).with_prefix(stage)
}

/// The graph's commit has no count to show, only that it is still going.
fn commit_spinner(quiet: bool) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let style = ProgressStyle::with_template("{prefix:<8} {spinner} {elapsed}")
        .unwrap_or_else(|_| ProgressStyle::default_spinner());
    ProgressBar::new_spinner()
        .with_style(style)
        .with_prefix("commit")
}

/// What the graph stage did.
struct ImportedGraph {
    first_user_id: i64,
    follows: u64,
    /// Per user number, as the graph service counts them.
    followers: Vec<u32>,
    following: Vec<u32>,
    users_secs: f64,
    follows_secs: f64,
    commit_secs: f64,
}

/// What the producer sent, and when it finished each part.
struct Produced {
    followers: Vec<u32>,
    following: Vec<u32>,
    edges: u64,
    users_done: Instant,
    follows_done: Instant,
}

/// Creates an author and `followers` users who follow them and nobody else,
/// through `ImportGraph` (the seed's bulk path, with no sign-up limit to
/// meet), handles `{prefix}0` (the author) to `{prefix}{followers}`. Returns
/// their ids, the author's first: a fresh audience for a measurement that
/// must not write into anyone else's timeline (`bench`'s fan-out stage).
pub(crate) async fn import_audience(
    graph_addr: &str,
    prefix: &str,
    followers: u32,
) -> anyhow::Result<Vec<i64>> {
    let digits = followers.to_string().len();
    ensure!(
        prefix.len() + digits <= MAX_HANDLE,
        "handles of {followers} followers need a prefix of at most {} characters",
        MAX_HANDLE - digits
    );
    let graph = SocialGraph::Imported(EdgeList {
        users: followers + 1,
        edges: (1..=followers).map(|follower| (follower, 0)).collect(),
    });
    let graph_service = GraphServiceClient::new(crate::grpc::connect(graph_addr, GRAPH_DEADLINE)?);
    let imported = import_graph(graph_service, Arc::new(graph), prefix.to_owned(), true)
        .await
        .context("import the audience")?;
    Ok((0..=followers)
        .map(|number| imported.first_user_id + i64::from(number))
        .collect())
}

/// Streams `graph` to `ImportGraph`: a blocking task generates the chunks
/// into a short channel, the call sends them as the service takes them.
async fn import_graph(
    mut graph_service: GraphServiceClient<Channel>,
    graph: Arc<SocialGraph>,
    prefix: String,
    quiet: bool,
) -> anyhow::Result<ImportedGraph> {
    let users_bar = progress("users", u64::from(graph.users()), quiet);
    let follows_bar = progress("follows", graph.edge_count(), quiet);
    let commit_bar = commit_spinner(quiet);
    let (sender, receiver) = mpsc::channel(GRAPH_AHEAD);
    let started = Instant::now();
    let spinner = commit_bar.clone();
    let producer = tokio::task::spawn_blocking(move || {
        let produced = produce(&graph, &prefix, &sender, &users_bar, &follows_bar);
        spinner.reset_elapsed();
        spinner.enable_steady_tick(Duration::from_millis(200));
        produced
    });
    let chunks = stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|chunk| (chunk, receiver))
    });
    let answer = graph_service.import_graph(chunks).await;
    let finished = Instant::now();
    commit_bar.finish();
    // The service's answer explains a failure better than the producer's
    // "stopped reading", so it is looked at first.
    let summary = answer
        .map_err(|status| anyhow!("import graph: {} ({})", status.message(), status.code()))?
        .into_inner();
    let produced = producer.await.context("the graph generator panicked")??;
    ensure!(
        summary.follows == produced.edges,
        "the graph service imported {} follows of the {} sent: the graph has duplicate edges",
        summary.follows,
        produced.edges
    );
    Ok(ImportedGraph {
        first_user_id: summary.first_user_id,
        follows: summary.follows,
        followers: produced.followers,
        following: produced.following,
        users_secs: (produced.users_done - started).as_secs_f64(),
        follows_secs: (produced.follows_done - produced.users_done).as_secs_f64(),
        commit_secs: (finished - produced.follows_done).as_secs_f64(),
    })
}

/// Generates the import stream: the user count, the users, then every edge,
/// counting each user's followers and following on the way.
fn produce(
    graph: &SocialGraph,
    prefix: &str,
    sender: &mpsc::Sender<ImportGraphChunk>,
    users_bar: &ProgressBar,
    follows_bar: &ProgressBar,
) -> anyhow::Result<Produced> {
    let send = |chunk: ImportGraphChunk| {
        sender
            .blocking_send(chunk)
            .map_err(|_| anyhow!("the graph service stopped reading the import"))
    };
    let users = graph.users();
    let mut numbers = 0..users;
    let mut user_count = users;
    loop {
        let chunk: Vec<CreateUserRequest> = numbers
            .by_ref()
            .take(GRAPH_CHUNK)
            .map(|number| CreateUserRequest {
                handle: format!("{prefix}{number}"),
                display_name: format!("Load user {number}"),
                ..Default::default()
            })
            .collect();
        if chunk.is_empty() {
            break;
        }
        let sent = chunk.len() as u64;
        send(ImportGraphChunk {
            user_count: std::mem::take(&mut user_count),
            users: chunk,
            follows: Vec::new(),
        })?;
        users_bar.inc(sent);
    }
    users_bar.finish();
    let users_done = Instant::now();

    let mut followers = vec![0_u32; users as usize];
    let mut following = vec![0_u32; users as usize];
    let mut edges = 0_u64;
    let mut chunk = Vec::with_capacity(GRAPH_CHUNK);
    for (follower, followee) in graph.edges() {
        followers[followee as usize] += 1;
        following[follower as usize] += 1;
        chunk.push(ImportedFollow { follower, followee });
        if chunk.len() == GRAPH_CHUNK {
            edges += chunk.len() as u64;
            follows_bar.inc(chunk.len() as u64);
            send(follows_chunk(std::mem::replace(
                &mut chunk,
                Vec::with_capacity(GRAPH_CHUNK),
            )))?;
        }
    }
    if !chunk.is_empty() {
        edges += chunk.len() as u64;
        follows_bar.inc(chunk.len() as u64);
        send(follows_chunk(chunk))?;
    }
    follows_bar.finish();
    Ok(Produced {
        followers,
        following,
        edges,
        users_done,
        follows_done: Instant::now(),
    })
}

fn follows_chunk(follows: Vec<ImportedFollow>) -> ImportGraphChunk {
    ImportGraphChunk {
        follows,
        ..ImportGraphChunk::default()
    }
}

/// Writes `manifest.tweets_per_user` tweets for each of its users; returns
/// how many.
async fn import_tweets(
    tweet_service: TweetServiceClient<Channel>,
    manifest: &Manifest,
    quiet: bool,
) -> anyhow::Result<u64> {
    let per_user = manifest.tweets_per_user.max(1) as usize;
    let users_per_call = (TWEETS_PER_CALL / per_user).max(1);
    let total = manifest.users.len() as u64 * manifest.tweets_per_user as u64;
    let bar = progress("tweets", total, quiet);
    let mut written = stream::iter(manifest.users.chunks(users_per_call).enumerate())
        .map(|(call, users)| {
            let first_number = call * users_per_call;
            let tweets = history(manifest, first_number, users);
            let tweet_service = tweet_service.clone();
            async move {
                let count = tweets.len() as u64;
                retry("import tweets", || {
                    let request = ImportTweetsRequest {
                        tweets: tweets.clone(),
                    };
                    let mut tweet_service = tweet_service.clone();
                    async move { tweet_service.import_tweets(request).await }
                })
                .await?;
                anyhow::Ok(count)
            }
        })
        .buffer_unordered(TWEET_CALLS);
    let mut total_written = 0;
    while let Some(count) = written.try_next().await? {
        total_written += count;
        bar.inc(count);
    }
    bar.finish();
    Ok(total_written)
}

/// The tweets of `users` (user numbers from `first_number`): each user's
/// `tweets_per_user`, with ids one millisecond apart in round-robin order
/// over all the manifest's users, ending just before the seed started.
fn history(manifest: &Manifest, first_number: usize, users: &[SeededUser]) -> Vec<ImportedTweet> {
    let everyone = manifest.users.len() as i64;
    let total = everyone * i64::from(manifest.tweets_per_user);
    let mut tweets = Vec::with_capacity(users.len() * manifest.tweets_per_user as usize);
    for (offset, user) in users.iter().enumerate() {
        let number = (first_number + offset) as i64;
        for round in 0..manifest.tweets_per_user {
            let position = i64::from(round) * everyone + number;
            let at = manifest.history_end_ms - total + position;
            tweets.push(ImportedTweet {
                tweet_id: id_at(at, IMPORT_WORKER_ID, 0),
                author_id: user.id,
                content: tweet_text(&user.handle, round),
            });
        }
    }
    tweets
}

/// The text of a seeded tweet: its number, its author, and a filler of a
/// length that varies from tweet to tweet (as real tweets' lengths do).
fn tweet_text(handle: &str, round: u32) -> String {
    const FILLER: &str = "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do \
        eiusmod tempor incididunt ut labore et dolore magna aliqua. Ut enim ad minim veniam, \
        quis nostrud exercitation ullamco laboris nisi ut aliquip ex ea commodo consequat.";
    let length = (handle.len() * 37 + round as usize * 53) % FILLER.len();
    format!("Tweet {round} by @{handle}. {}", &FILLER[..length])
}

/// Calls `call` until it succeeds, up to [`ATTEMPTS`] times while it fails
/// in a way worth retrying. Only for calls that are safe to repeat.
async fn retry<T, F, Fut>(what: &str, mut call: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
{
    let mut backoff = Duration::from_millis(200);
    let mut attempt = 1;
    loop {
        match call().await {
            Ok(response) => return Ok(response.into_inner()),
            Err(status) if attempt < ATTEMPTS && transient(status.code()) => {
                tokio::time::sleep(backoff).await;
                backoff *= 2;
                attempt += 1;
            }
            Err(status) => {
                return Err(anyhow!("{what}: {} ({})", status.message(), status.code()));
            }
        }
    }
}

fn transient(code: tonic::Code) -> bool {
    matches!(
        code,
        tonic::Code::Unavailable | tonic::Code::DeadlineExceeded | tonic::Code::Aborted
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_prefixes_leave_room_for_a_million_users() {
        let prefix = fresh_handle_prefix();
        assert!(parse_handle_prefix(&prefix).is_ok(), "{prefix}");
        assert!(prefix.len() + "999999".len() <= MAX_HANDLE, "{prefix}");
    }

    #[test]
    fn tweets_are_valid_and_vary_in_length() {
        let lengths: Vec<usize> = (0..5)
            .map(|round| tweet_text("s1abcd_999999", round).chars().count())
            .collect();
        assert!(
            lengths.iter().all(|&n| (1..=280).contains(&n)),
            "{lengths:?}"
        );
        assert!(lengths.windows(2).any(|w| w[0] != w[1]), "{lengths:?}");
    }

    #[test]
    fn history_ids_are_distinct_of_the_past_and_round_robin() {
        let users: Vec<SeededUser> = (0..4)
            .map(|number| SeededUser {
                id: 100 + number,
                handle: format!("u{number}"),
                token: String::new(),
                followers: 0,
                following: 0,
            })
            .collect();
        let end = now_ms();
        let manifest = Manifest {
            gateway: String::new(),
            source: String::new(),
            celebrity_threshold: 1,
            users: users.clone(),
            celebrities: Vec::new(),
            follows: 0,
            tweets: 0,
            tweets_per_user: 3,
            history_end_ms: end,
            timings: Timings::default(),
        };
        // Two calls of two users each, as `import_tweets` would split them.
        let mut tweets = history(&manifest, 0, &users[..2]);
        tweets.extend(history(&manifest, 2, &users[2..]));
        assert_eq!(tweets.len(), 12);
        tweets.sort_by_key(|tweet| tweet.tweet_id);
        let authors: Vec<i64> = tweets.iter().map(|tweet| tweet.author_id).collect();
        assert_eq!(&authors[..8], &[100, 101, 102, 103, 100, 101, 102, 103]);
        assert!(tweets.windows(2).all(|w| w[0].tweet_id < w[1].tweet_id));
        let last = tweets.last().unwrap().tweet_id;
        assert!(chirp_domain::ids::timestamp_ms(last) < end);
    }

    #[test]
    fn handle_prefixes_are_checked() {
        assert!(parse_handle_prefix("lt_").is_ok());
        assert!(parse_handle_prefix("").is_err());
        assert!(parse_handle_prefix("no-dash").is_err());
        assert!(parse_handle_prefix("fifteen_chars_x").is_err());
    }
}
