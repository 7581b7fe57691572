//! `visible`: how long a post takes to reach the home timeline of the last
//! of its author's followers, for the largest audience that is still pushed,
//! measured as a user would see it: through the public API only.
//!
//! An author with `threshold − 1` followers is the worst case of fan-out on
//! write: one more follower and the hybrid strategy stops pushing their
//! tweets (readers pull them instead). So the tool signs up a fresh author
//! through the gateway, makes `threshold − 1` of the manifest's users follow
//! them (one bulk import through the graph service, the seed's own path),
//! and reads each follower's first page once through the gateway: pushes
//! land only in timelines that are cached, and this is the read that caches
//! them, as a user's would. Then, one post at a time, it posts through the
//! gateway (`POST /tweets`: the tweet store, the outbox, the relay, Kafka,
//! the fan-out worker, Redis) and reads, through the gateway again
//! (`GET /users/{id}/timeline`, one tweet a page, with that follower's
//! token), the home timeline of the follower with the highest id, the one
//! the worker writes last, until the post is its newest tweet: that is the
//! post's time to the last follower. A read of every follower's first page
//! follows, untimed, so that "last" is a fact and not an assumption about
//! the worker's order.
//!
//! **The polling cadence, and what it does to the figure.** A poll starts
//! every [`VisibleArgs::poll_interval`] (default 10 ms), or as soon as the
//! last one answered when one takes longer. The clock stops when the first
//! poll that shows the post *answers*, so each figure overstates the moment
//! the post became readable by up to one interval plus one poll's round
//! trip (on average about half an interval plus the part of a round trip
//! after the timeline service read Redis); `visible.json` records the
//! interval and the round trip of each deciding poll, so a reader can
//! subtract. A shorter interval tightens the bound and adds load: each poll
//! is a cached page through the gateway and the timeline service. 10 ms is
//! 100 pages a second, the gateway's default sustained read limit per user
//! (`RATE_LIMIT_READS_PER_MINUTE`), so the polls are never the ones
//! throttled.
//!
//! The clock runs on this machine only (post and polls both start here), so
//! no clock skew enters it. Nothing here is undone: the author, the follows
//! and the posts stay, as seeded data does; the scale benchmark drops the
//! whole database afterwards.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, anyhow, ensure};
use chirp_client::Gateway;
use chirp_grpc::DEFAULT_DEADLINE;
use chirp_proto::graph::graph_service_client::GraphServiceClient;
use chirp_proto::graph::{FollowRequest, ImportFollowsRequest};
use futures::{StreamExt, TryStreamExt};
use serde::Serialize;
use tokio::time::Instant;

use crate::seed::fresh_handle_prefix;
use crate::tokens::SeededArgs;
use crate::workload::{Actor, warm_up};

#[derive(Debug, Clone, clap::Args)]
pub struct VisibleArgs {
    /// The seeded users: the manifest, the gateway, their tokens' secret.
    #[command(flatten)]
    pub seeded: SeededArgs,
    /// The graph service (gRPC): the follows are imported there.
    #[arg(long, env = "GRAPH_ADDR", default_value = "127.0.0.1:50052")]
    pub graph_addr: String,
    /// The author's followers. Default: the manifest's celebrity threshold
    /// minus one, the largest audience a push still reaches.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub followers: Option<u32>,
    /// Posts timed, one after the other.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    pub posts: u32,
    /// How often the last follower's home timeline is read through the
    /// gateway while waiting: each figure overstates the truth by up to one
    /// interval plus one read's round trip.
    #[arg(long, default_value = "10ms", value_parser = humantime::parse_duration)]
    pub poll_interval: Duration,
    /// The longest one post may take to reach every follower.
    #[arg(long, default_value = "120s", value_parser = humantime::parse_duration)]
    pub deadline: Duration,
    /// Directory for visible.json.
    #[arg(long, default_value = "bench-results")]
    pub out: PathBuf,
}

/// Followers' timelines read at once while warming them up, and checked at
/// once after each post.
const CONCURRENCY: usize = 32;
/// Edges per `ImportFollows` call (the graph service's limit).
const IMPORT_BATCH: usize = 10_000;

/// What `visible` measured.
#[derive(Debug, Clone, Serialize)]
pub struct Visibility {
    pub followers: u32,
    pub celebrity_threshold: u32,
    /// How often the last follower's timeline was read while waiting.
    pub poll_interval_ms: f64,
    /// Per post: until the gateway answered the `POST /tweets`.
    pub post_ms: Vec<f64>,
    /// Per post: until a read of the last follower's home timeline through
    /// the gateway answered with it as the newest tweet.
    pub last_follower_ms: Vec<f64>,
    /// Per post: the round trip of that deciding read, part of what
    /// `last_follower_ms` overstates.
    pub deciding_poll_ms: Vec<f64>,
}

impl Visibility {
    /// `(min, median, max)` of `last_follower_ms`.
    pub fn spread(&self) -> (f64, f64, f64) {
        let mut sorted = self.last_follower_ms.clone();
        sorted.sort_by(f64::total_cmp);
        let at = |i: usize| sorted.get(i).copied().unwrap_or(f64::NAN);
        (
            at(0),
            at(sorted.len() / 2),
            at(sorted.len().saturating_sub(1)),
        )
    }
}

/// Runs the measurement as `args` say, writes `visible.json` into
/// `args.out`, prints a line, and returns it.
pub async fn visible(args: &VisibleArgs) -> anyhow::Result<Visibility> {
    ensure!(
        !args.poll_interval.is_zero(),
        "--poll-interval must be above zero"
    );
    let manifest = args.seeded.users()?;
    let threshold = manifest.celebrity_threshold;
    let count = match args.followers {
        Some(count) => count,
        None => threshold
            .checked_sub(1)
            .filter(|&count| count > 0)
            .ok_or_else(|| anyhow!("the manifest's celebrity threshold is {threshold}"))?,
    };
    ensure!(
        count < threshold,
        "{count} followers would make the author a celebrity (threshold {threshold}): their \
         posts would not be pushed"
    );
    ensure!(
        (count as usize) <= manifest.users.len(),
        "the manifest has {} users, fewer than {count} followers",
        manifest.users.len()
    );
    let gateway = Gateway::new(args.seeded.gateway(&manifest))?;
    let handle = format!("{}vis", fresh_handle_prefix());
    let author = gateway
        .sign_up(&handle, "Visibility probe")
        .await
        .map_err(|failure| anyhow!("sign up the author: {}", failure))?;

    // The last users of the manifest, as the last ones a seeded workload
    // would pick.
    let audience: Vec<Actor> = manifest.users[manifest.users.len() - count as usize..]
        .iter()
        .map(Actor::of)
        .collect();
    let ids: Vec<i64> = audience.iter().map(|actor| actor.id).collect();
    follow(&args.graph_addr, author.user_id, &ids).await?;
    println!("warming the {count} followers' timelines up");
    warm_up(&gateway, &audience, None, CONCURRENCY).await?;
    let last = audience
        .iter()
        .max_by_key(|actor| actor.id)
        .context("no follower")?;

    let mut result = Visibility {
        followers: count,
        celebrity_threshold: threshold,
        poll_interval_ms: millis(args.poll_interval),
        post_ms: Vec::new(),
        last_follower_ms: Vec::new(),
        deciding_poll_ms: Vec::new(),
    };
    for post in 0..args.posts {
        let started = Instant::now();
        let content = format!("Visibility probe {post} by @{handle}");
        let tweet_id = gateway
            .post_tweet(&author.token, &content, Some(&format!("{handle}-{post}")))
            .await
            .map_err(|failure| anyhow!("post through the gateway: {}", failure))?
            .id;
        result.post_ms.push(millis(started.elapsed()));
        let mut next_poll = Instant::now();
        loop {
            let polled = Instant::now();
            if newest(&gateway, last).await? == Some(tweet_id) {
                result.deciding_poll_ms.push(millis(polled.elapsed()));
                break;
            }
            ensure!(
                started.elapsed() < args.deadline,
                "post {tweet_id} did not reach user {}'s home timeline within {:?}: is the \
                 fan-out worker running?",
                last.id,
                args.deadline
            );
            // A fixed cadence from the polls' starts; a late poll is not
            // made up for with a burst.
            next_poll += args.poll_interval;
            next_poll = next_poll.max(Instant::now());
            tokio::time::sleep_until(next_poll).await;
        }
        result.last_follower_ms.push(millis(started.elapsed()));
        everyone_has(&gateway, &audience, tweet_id).await?;
    }
    std::fs::create_dir_all(&args.out)?;
    let path = args.out.join("visible.json");
    std::fs::write(&path, serde_json::to_string_pretty(&result)?)
        .with_context(|| format!("write {}", path.display()))?;
    let (min, median, max) = result.spread();
    println!(
        "post to last follower visible through the gateway ({count} followers, {} posts, a poll \
         every {:?}): median {median:.1} ms, min {min:.1} ms, max {max:.1} ms",
        args.posts, args.poll_interval
    );
    Ok(result)
}

/// Makes every one of `followers` follow `author`, through the graph
/// service's `ImportFollows`: a transaction per batch, each follow as
/// `Follow` would make it (counters moved, the follower's cached timeline
/// dropped).
async fn follow(graph_addr: &str, author: i64, followers: &[i64]) -> anyhow::Result<()> {
    let mut graph =
        GraphServiceClient::new(crate::grpc::connect(graph_addr, DEFAULT_DEADLINE * 10)?);
    for batch in followers.chunks(IMPORT_BATCH) {
        let follows = batch
            .iter()
            .map(|&follower_id| FollowRequest {
                follower_id,
                followee_id: author,
            })
            .collect();
        graph
            .import_follows(ImportFollowsRequest { follows })
            .await
            .context("import the author's followers")?;
    }
    Ok(())
}

/// The id of the newest tweet of `reader`'s home timeline, read through the
/// gateway as `reader`.
async fn newest(gateway: &Gateway, reader: &Actor) -> anyhow::Result<Option<i64>> {
    let page = gateway
        .home_timeline(reader.id, &reader.token, None, Some(1))
        .await
        .map_err(|failure| anyhow!("read user {}'s home timeline: {}", reader.id, failure))?;
    Ok(page.items.first().map(|tweet| tweet.id))
}

/// Fails unless `tweet_id` is the newest tweet of every one of `followers`'
/// home timelines, read through the gateway (the probe's posts are the
/// newest there, one at a time).
async fn everyone_has(gateway: &Gateway, followers: &[Actor], tweet_id: i64) -> anyhow::Result<()> {
    let missing: Vec<i64> = futures::stream::iter(followers)
        .map(|follower| async move {
            let newest = newest(gateway, follower).await?;
            anyhow::Ok((newest != Some(tweet_id)).then_some(follower.id))
        })
        .buffer_unordered(CONCURRENCY)
        .try_filter_map(|missing| async move { Ok(missing) })
        .try_collect()
        .await?;
    ensure!(
        missing.is_empty(),
        "post {tweet_id} reached the last follower but not {} others (e.g. user {}): the \
         fan-out worker does not write the highest id last, or skipped a cached timeline",
        missing.len(),
        missing[0]
    );
    Ok(())
}

fn millis(elapsed: Duration) -> f64 {
    elapsed.as_secs_f64() * 1_000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spread_is_min_median_max() {
        let visibility = Visibility {
            followers: 9,
            celebrity_threshold: 10,
            poll_interval_ms: 10.0,
            post_ms: vec![1.0; 3],
            last_follower_ms: vec![30.0, 10.0, 20.0],
            deciding_poll_ms: vec![1.0; 3],
        };
        assert_eq!(visibility.spread(), (10.0, 20.0, 30.0));
    }
}
