//! `visible`: how long a post takes to reach the home timeline of the last
//! of its author's followers, for the largest audience that is still pushed.
//!
//! An author with `threshold − 1` followers is the worst case of fan-out on
//! write: one more follower and the hybrid strategy stops pushing their
//! tweets (readers pull them instead). So the tool signs up a fresh author
//! through the gateway, makes `threshold − 1` of the manifest's users follow
//! them (one bulk import), and reads each follower's first page once through
//! the gateway: pushes land only in timelines that are cached, so an
//! audience that never read would see nothing until its next read, and the
//! measurement would wait forever. Then, one post at a time, it posts
//! through the gateway (`POST /tweets`: the tweet store, the outbox, the
//! relay, Kafka, the fan-out worker, Redis) and polls, straight in Redis,
//! the cached timeline of the follower with the highest id, the one the
//! worker writes last, until the tweet shows: that is the post's time to the
//! last follower. A check of every follower's timeline follows, untimed, so
//! that "last" is a fact and not an assumption about the worker's order.
//!
//! The clock runs on this machine only (post and polls both start here), so
//! no clock skew enters it. Nothing here is undone: the author and the
//! follows stay, as seeded data does; the scale benchmark drops the whole
//! database afterwards.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, anyhow, ensure};
use chirp_client::Gateway;
use chirp_timeline_store::{HomeTimelines, TimelineStoreArgs};
use futures::{StreamExt, TryStreamExt};
use serde::Serialize;
use tokio::time::Instant;

use crate::bench::fanout::follow;
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
    /// The services' timeline store: the polls read their very keys.
    #[command(flatten)]
    pub store: TimelineStoreArgs,
    /// The author's followers. Default: the manifest's celebrity threshold
    /// minus one, the largest audience a push still reaches.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub followers: Option<u32>,
    /// Posts timed, one after the other.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    pub posts: u32,
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
/// How often the last follower's timeline is read while waiting.
const POLL: Duration = Duration::from_millis(1);

/// What `visible` measured.
#[derive(Debug, Clone, Serialize)]
pub struct Visibility {
    pub followers: u32,
    pub celebrity_threshold: u32,
    /// Per post: until the gateway answered the `POST /tweets`.
    pub post_ms: Vec<f64>,
    /// Per post: until it was in the last follower's cached timeline.
    pub last_follower_ms: Vec<f64>,
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

    // The last users of the manifest: `bench`'s fan-out stage takes the first.
    let audience: Vec<Actor> = manifest.users[manifest.users.len() - count as usize..]
        .iter()
        .map(|user| Actor {
            id: user.id,
            token: user.token.clone(),
        })
        .collect();
    let ids: Vec<i64> = audience.iter().map(|actor| actor.id).collect();
    follow(&args.graph_addr, author.user_id, &ids).await?;
    println!("warming the {count} followers' timelines up");
    warm_up(&gateway, &audience, None, CONCURRENCY).await?;
    let timelines = HomeTimelines::connect(&args.store).await?;
    let last = *ids.iter().max().context("no follower")?;

    let mut result = Visibility {
        followers: count,
        celebrity_threshold: threshold,
        post_ms: Vec::new(),
        last_follower_ms: Vec::new(),
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
        loop {
            let newest = timelines.page(last, None, 1).await?;
            if newest.first() == Some(&tweet_id) {
                break;
            }
            ensure!(
                started.elapsed() < args.deadline,
                "post {tweet_id} did not reach user {last}'s cached timeline within {:?}: is the \
                 fan-out worker running, on this key prefix?",
                args.deadline
            );
            tokio::time::sleep(POLL).await;
        }
        result.last_follower_ms.push(millis(started.elapsed()));
        everyone_has(&timelines, &ids, tweet_id).await?;
    }
    std::fs::create_dir_all(&args.out)?;
    let path = args.out.join("visible.json");
    std::fs::write(&path, serde_json::to_string_pretty(&result)?)
        .with_context(|| format!("write {}", path.display()))?;
    let (min, median, max) = result.spread();
    println!(
        "post to last follower visible ({count} followers, {} posts): median {median:.1} ms, \
         min {min:.1} ms, max {max:.1} ms",
        args.posts
    );
    Ok(result)
}

/// Fails unless `tweet_id` is in every one of `followers`' cached timelines
/// (the bench's posts are the newest there, one at a time).
async fn everyone_has(
    timelines: &HomeTimelines,
    followers: &[i64],
    tweet_id: i64,
) -> anyhow::Result<()> {
    let missing: Vec<i64> = futures::stream::iter(followers)
        .map(|&user_id| async move {
            let newest = timelines.page(user_id, None, 1).await?;
            anyhow::Ok((newest.first() != Some(&tweet_id)).then_some(user_id))
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
            post_ms: vec![1.0; 3],
            last_follower_ms: vec![30.0, 10.0, 20.0],
        };
        assert_eq!(visibility.spread(), (10.0, 20.0, 30.0));
    }
}
