//! The timeline service: what a user sees when they open the app.
//!
//! Home timelines are precomputed by the fan-out worker into Redis, so a read
//! is one range query for a page of tweet ids plus one batched call to the
//! tweet service to turn them into tweets. The timelines hold ids only, never
//! content: each tweet's text exists once, in the tweet store, however many
//! timelines point at it; deleting a tweet does not have to chase down every
//! copy (a dangling id is simply dropped at hydration); and an entry costs a
//! few dozen bytes of Redis memory instead of a whole tweet. The price is the
//! hydration round trip on every read.
//!
//! Under the hybrid strategy the tweets of celebrities are not pushed; they
//! are pulled from the tweet store at read time and merged in, and a timeline
//! missing from Redis is rebuilt before it is served. See
//! `docs/hybrid-timeline.md` for the whole algorithm and its trade-offs.
//!
//! Reading order: [`config`], [`service`] (the gRPC surface and hydration),
//! `home` (assembling a page, rebuilding a timeline), `rebuilds` (each
//! rebuild a task of its own), `authors` (the newest ids of many authors,
//! bounded), `merge` (why paging across sources has no gaps), `recent`
//! (pulled authors and their cache), `followed` (which celebrities a
//! reader pulls), `refreshing_cache` (the caching both share),
//! `single_flight`, `hot_tweets` (hydration through a cache), `deletions`
//! (how that cache forgets deleted tweets), `expiry`, [`error`], `stats`
//! (what is measured).

mod authors;
pub mod config;
mod deletions;
mod error;
mod expiry;
mod followed;
mod home;
mod hot_tweets;
mod merge;
mod rebuilds;
mod recent;
mod refreshing_cache;
mod service;
mod single_flight;
mod stats;

use std::future::Future;
use std::time::Duration;

use chirp_common::grpc::{DEFAULT_DEADLINE, connect_lazy_with};
use chirp_common::proto::graph::graph_service_client::GraphServiceClient;
use chirp_common::proto::timeline::timeline_service_server::TimelineServiceServer;
use chirp_common::proto::tweet::tweet_service_client::TweetServiceClient;
use chirp_common::timelines::HomeTimelines;
use tokio::net::TcpListener;

pub use config::Config;
pub use error::TimelineError;

/// Connects to Redis, dials the tweet and graph services lazily, and serves gRPC on
/// `listener` until `shutdown` resolves.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    stats::describe();
    let timelines = HomeTimelines::connect(&config.store).await?;
    let token = &config.internal.internal_token;
    let tweets = TweetServiceClient::new(connect_lazy_with(
        &config.tweet_addr,
        DEFAULT_DEADLINE,
        token,
    )?);
    let graph = GraphServiceClient::new(connect_lazy_with(
        &config.graph_addr,
        DEFAULT_DEADLINE,
        token,
    )?);
    let home = home::Home::new(
        graph,
        tweets.clone(),
        timelines.clone(),
        config.store.timeline_strategy,
        Duration::from_millis(config.celebrity_cache_ttl_ms),
        Duration::from_millis(config.followed_celebrities_ttl_ms),
    );
    let hot_tweets = hot_tweets::HotTweets::new(
        tweets,
        Duration::from_millis(config.tweet_cache_ttl_ms),
        config.tweet_cache_capacity,
    );
    let forgetting = tokio::spawn(deletions::follow(timelines, hot_tweets.clone()));
    let service = service::Timeline::new(home, hot_tweets, config.store.timeline_strategy);
    tracing::info!(addr = %listener.local_addr()?, "timeline service listening");
    let served = chirp_common::grpc::serve(
        TimelineServiceServer::new(service),
        listener,
        config.internal.internal_token.clone(),
        shutdown,
    )
    .await;
    forgetting.abort();
    served
}
