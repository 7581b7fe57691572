//! `seed`: builds a social graph in a running chirp, fast, and writes the
//! manifest that `run` reads.
//!
//! Three stages, each with bounded concurrency and a progress bar:
//!
//! 1. **Users sign up through the gateway** (`POST /users`), which returns
//!    each user's bearer token. The alternative, minting tokens here with
//!    the gateway's `TOKEN_SECRET`, would hand the load tool the key that
//!    can impersonate anyone and tie it to the token format; signing up the
//!    way a client does needs no secret, reuses the gateway's own code by
//!    calling it, and costs one HTTP round trip per user, the cheapest of
//!    the three stages. Sign-up is not rate-limited.
//! 2. **Follows go to the graph service in bulk** (`ImportFollows`, gRPC),
//!    thousands of edges per transaction. The gateway is no way in: it
//!    rate-limits writes per user (a celebrity gains thousands of followers
//!    but each follower follows only a few, so the limit would bite on the
//!    followers' side at scale), and a `Follow` per edge is a transaction
//!    per edge, hours for the 20-odd million edges of a million users.
//! 3. **Tweets go to the tweet service** (`CreateTweet`, gRPC), round-robin
//!    over the users so that home timelines interleave their authors. Each
//!    carries an idempotency key, so a call retried after a timeout cannot
//!    post twice. The fan-out worker pushes them into timelines like any
//!    other tweet, so a seeded system is in the state real traffic leaves.
//!
//! Seeding 10 000 users with 5 tweets each takes under a minute on a 2-core
//! machine, most of it in the tweet history; a million users, an hour or
//! more (the README has the measurements and the extrapolation).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail};
use chirp_common::grpc::{Channel, connect_lazy};
use chirp_common::proto::graph::graph_service_client::GraphServiceClient;
use chirp_common::proto::graph::{FollowRequest, ImportFollowsRequest};
use chirp_common::proto::tweet::CreateTweetRequest;
use chirp_common::proto::tweet::tweet_service_client::TweetServiceClient;
use futures::{StreamExt, TryStreamExt, stream};
use indicatif::{ProgressBar, ProgressStyle};

use crate::client::Gateway;
use crate::graph_model::{Edge, EdgeList, PowerLaw, PowerLawParams, SocialGraph};
use crate::manifest::{Manifest, SeededUser, Timings};

#[derive(Debug, Clone, clap::Args)]
pub struct SeedArgs {
    /// The gateway (HTTP): users sign up through it and get their tokens.
    #[arg(long, env = "GATEWAY_URL", default_value = "http://127.0.0.1:8080")]
    pub gateway: String,
    /// The graph service (gRPC): follows are imported there in bulk.
    #[arg(long, env = "GRAPH_ADDR", default_value = "127.0.0.1:50052")]
    pub graph_addr: String,
    /// The tweet service (gRPC): the tweet history is written there.
    #[arg(long, env = "TWEET_ADDR", default_value = "127.0.0.1:50051")]
    pub tweet_addr: String,
    /// Users to create. Scales to a million (see the README for timings).
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
    /// Sign-ups and tweets in flight at once. Creating a tweet waits on a
    /// lightweight transaction (the idempotency key) in the CQL store, so
    /// throughput grows with concurrency well past the number of cores.
    #[arg(long, default_value_t = DEFAULT_CONCURRENCY, value_parser = clap::value_parser!(u32).range(1..))]
    pub concurrency: u32,
    /// Edges per `ImportFollows` call (at most 10 000).
    #[arg(long, default_value_t = DEFAULT_BATCH_SIZE, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub batch_size: u32,
    /// Where to write the manifest `run` reads.
    #[arg(long, default_value = "loadtest-manifest.json")]
    pub manifest: PathBuf,
    /// No progress bars (they are also hidden when stderr is no terminal).
    #[arg(long)]
    pub quiet: bool,
}

/// The defaults of the flags below, for callers that seed without them.
pub const DEFAULT_EXPONENT: f64 = 1.7;
pub const DEFAULT_CONCURRENCY: u32 = 128;
pub const DEFAULT_BATCH_SIZE: u32 = 5_000;

/// Longest handle the graph service accepts.
const MAX_HANDLE: usize = 15;
/// `ImportFollows` calls in flight. A batch locks the row of every user it
/// touches, so batches that share users wait for each other (in a graph of
/// ten thousand users nearly all do; in one of a million, few): a few in
/// flight hide the round trips, more would only queue on the locks.
const IMPORT_CONCURRENCY: usize = 4;
/// Attempts of a call that is safe to repeat, on a transient failure.
const ATTEMPTS: u32 = 3;
/// Deadline of one sign-up or one tweet.
const CALL_DEADLINE: Duration = Duration::from_secs(10);
/// Deadline of one import batch, which may wait for row locks.
const IMPORT_DEADLINE: Duration = Duration::from_secs(60);

fn parse_handle_prefix(raw: &str) -> Result<String, String> {
    let valid = raw.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if raw.is_empty() || raw.len() > MAX_HANDLE - 1 || !valid {
        return Err("1-14 letters, digits or underscores".to_owned());
    }
    Ok(raw.to_owned())
}

/// A prefix no earlier seed used (to the second): `s` and the time in base 36.
pub(crate) fn fresh_handle_prefix() -> String {
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

impl SeedArgs {
    fn graph(&self) -> anyhow::Result<SocialGraph> {
        Ok(match &self.edges {
            Some(path) => SocialGraph::Imported(EdgeList::read(path, self.undirected)?),
            None => SocialGraph::PowerLaw(PowerLaw::new(PowerLawParams {
                users: self.users,
                celebrities: self.celebrities,
                celebrity_threshold: self.celebrity_threshold,
                exponent: self.exponent,
                seed: self.seed,
            })?),
        })
    }

    fn source(&self) -> String {
        match &self.edges {
            Some(path) if self.undirected => format!("{} (undirected)", path.display()),
            Some(path) => path.display().to_string(),
            None => format!("power law (exponent {}, seed {})", self.exponent, self.seed),
        }
    }
}

/// Seeds the services as `args` say, writes the manifest, and returns it.
pub async fn seed(args: &SeedArgs) -> anyhow::Result<Manifest> {
    let graph = args.graph()?;
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
    let gateway = Gateway::new(&args.gateway)?;
    let graph_service = GraphServiceClient::new(connect_lazy(&args.graph_addr, IMPORT_DEADLINE)?);
    let tweet_service = TweetServiceClient::new(connect_lazy(&args.tweet_addr, CALL_DEADLINE)?);
    let concurrency = args.concurrency as usize;

    let started = Instant::now();
    let mut users = sign_up(&gateway, &prefix, graph.users(), concurrency, args.quiet).await?;
    let users_secs = started.elapsed().as_secs_f64();
    report_stage("users", users.len() as u64, users_secs);

    let started = Instant::now();
    let ids: Vec<i64> = users.iter().map(|user| user.id).collect();
    let follows = import_follows(graph_service, &graph, &ids, &mut users, args).await?;
    let follows_secs = started.elapsed().as_secs_f64();
    report_stage("follows", follows, follows_secs);

    let started = Instant::now();
    let tweets = post_tweets(
        tweet_service,
        &users,
        args.tweets_per_user,
        concurrency,
        args.quiet,
    )
    .await?;
    let tweets_secs = started.elapsed().as_secs_f64();
    report_stage("tweets", tweets, tweets_secs);

    let threshold = u64::from(args.celebrity_threshold);
    let manifest = Manifest {
        gateway: gateway.base_url().to_owned(),
        source: args.source(),
        celebrity_threshold: args.celebrity_threshold,
        celebrities: users
            .iter()
            .filter(|user| user.followers >= threshold)
            .map(|user| user.id)
            .collect(),
        users,
        follows,
        tweets,
        timings: Timings {
            users_secs,
            follows_secs,
            tweets_secs,
        },
    };
    manifest.write(&args.manifest)?;
    println!(
        "manifest: {} ({} celebrities at threshold {})",
        args.manifest.display(),
        manifest.celebrities.len(),
        manifest.celebrity_threshold
    );
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

/// Signs up users `0..count` as `{prefix}{number}`; returns them in order.
async fn sign_up(
    gateway: &Gateway,
    prefix: &str,
    count: u32,
    concurrency: usize,
    quiet: bool,
) -> anyhow::Result<Vec<SeededUser>> {
    let bar = progress("users", u64::from(count), quiet);
    let mut users: Vec<Option<SeededUser>> = vec![None; count as usize];
    let mut signed_up = stream::iter(0..count)
        .map(|number| {
            let handle = format!("{prefix}{number}");
            async move {
                let display_name = format!("Load user {number}");
                let result =
                    tokio::time::timeout(CALL_DEADLINE, gateway.sign_up(&handle, &display_name))
                        .await;
                match result {
                    Ok(Ok(signed_up)) => Ok((number, handle, signed_up)),
                    Ok(Err(failure)) if failure.0.starts_with("http 409") => Err(anyhow!(
                        "sign up @{handle}: the handle is taken; pass another --handle-prefix"
                    )),
                    Ok(Err(failure)) => Err(anyhow!("sign up @{handle}: {}", failure.0)),
                    Err(_) => Err(anyhow!("sign up @{handle}: no answer in {CALL_DEADLINE:?}")),
                }
            }
        })
        .buffer_unordered(concurrency);
    while let Some((number, handle, signed_up)) = signed_up.try_next().await? {
        users[number as usize] = Some(SeededUser {
            id: signed_up.user_id,
            handle,
            token: signed_up.token,
            followers: 0,
            following: 0,
        });
        bar.inc(1);
    }
    bar.finish();
    Ok(users.into_iter().flatten().collect())
}

/// Imports every edge of `graph` (user numbers mapped to `ids`) and counts
/// each user's followers and following into `users` on the way.
async fn import_follows(
    graph_service: GraphServiceClient<Channel>,
    graph: &SocialGraph,
    ids: &[i64],
    users: &mut [SeededUser],
    args: &SeedArgs,
) -> anyhow::Result<u64> {
    let bar = progress("follows", graph.edge_count(), args.quiet);
    let mut imported = stream::iter(graph.edges())
        .chunks(args.batch_size as usize)
        .map(|batch: Vec<Edge>| {
            for &(follower, followee) in &batch {
                users[follower as usize].following += 1;
                users[followee as usize].followers += 1;
            }
            let follows: Vec<FollowRequest> = batch
                .iter()
                .map(|&(follower, followee)| FollowRequest {
                    follower_id: ids[follower as usize],
                    followee_id: ids[followee as usize],
                })
                .collect();
            let graph_service = graph_service.clone();
            async move {
                let edges = follows.len() as u64;
                retry("import follows", || {
                    let request = ImportFollowsRequest {
                        follows: follows.clone(),
                    };
                    let mut graph_service = graph_service.clone();
                    async move { graph_service.import_follows(request).await }
                })
                .await?;
                anyhow::Ok(edges)
            }
        })
        .buffer_unordered(IMPORT_CONCURRENCY);
    let mut total = 0;
    while let Some(edges) = imported.try_next().await? {
        total += edges;
        bar.inc(edges);
    }
    bar.finish();
    Ok(total)
}

/// Posts `per_user` tweets for every user, round-robin over the users.
async fn post_tweets(
    tweet_service: TweetServiceClient<Channel>,
    users: &[SeededUser],
    per_user: u32,
    concurrency: usize,
    quiet: bool,
) -> anyhow::Result<u64> {
    let total = users.len() as u64 * u64::from(per_user);
    let bar = progress("tweets", total, quiet);
    let tweets = (0..per_user).flat_map(|round| users.iter().map(move |user| (round, user)));
    let mut posted = stream::iter(tweets)
        .map(|(round, user)| {
            let request = CreateTweetRequest {
                author_id: user.id,
                content: tweet_text(&user.handle, round),
                idempotency_key: format!("seed-{}-{round}", user.handle),
            };
            let tweet_service = tweet_service.clone();
            retry("create tweet", move || {
                let (mut tweet_service, request) = (tweet_service.clone(), request.clone());
                async move { tweet_service.create_tweet(request).await }
            })
        })
        .buffer_unordered(concurrency);
    while posted.try_next().await?.is_some() {
        bar.inc(1);
    }
    bar.finish();
    Ok(total)
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
    fn handle_prefixes_are_checked() {
        assert!(parse_handle_prefix("lt_").is_ok());
        assert!(parse_handle_prefix("").is_err());
        assert!(parse_handle_prefix("no-dash").is_err());
        assert!(parse_handle_prefix("fifteen_chars_x").is_err());
    }
}
