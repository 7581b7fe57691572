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
//! Reading order, one step of a page per module: [`config`]; [`service`]
//! (the gRPC surface); `home` (the steps of a page, in order); `pushed`
//! (step 1: the ids pushed into Redis); `rebuild` (step 1 when Redis lacks
//! the timeline: writing it again from the stores); `pulled` (step 2: the
//! authors merged in at read time, and their cached newest ids), with
//! `followed` (which celebrities a reader pulls); `merge` (step 3: why
//! paging across sources has no gaps); `hydrate` (step 4: ids into tweets,
//! through a cache) and `deletions` (how that cache forgets deleted
//! tweets). Beside them: `authors` (the graph and the tweet store, bounded),
//! `cache` (the caches on moka, and serving stale while revalidating),
//! [`error`], `stats` (what is measured).

mod authors;
mod cache;
pub mod config;
mod deletions;
mod error;
mod followed;
mod home;
mod hydrate;
mod merge;
mod pulled;
mod pushed;
mod rebuild;
mod service;
mod stats;

use std::future::Future;
use std::time::Duration;

use chirp_common::grpc::{DEFAULT_DEADLINE, connect_lazy_with};
use chirp_proto::graph::graph_service_client::GraphServiceClient;
use chirp_proto::timeline::timeline_service_server::TimelineServiceServer;
use chirp_proto::tweet::tweet_service_client::TweetServiceClient;
use chirp_timelines::HomeTimelines;
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
    let token = &config.internal.token("timeline")?;
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
    let strategy = config.store.timeline_strategy;
    let rebuilds =
        rebuild::Rebuilds::new(graph.clone(), tweets.clone(), timelines.clone(), strategy);
    let pulled_ids = pulled::PulledIds::new(
        tweets.clone(),
        Duration::from_millis(config.pulled_ids_ttl_ms),
    );
    let pulled = pulled::Pulled::new(strategy, graph.clone(), pulled_ids);
    let home = home::Home::new(
        strategy,
        timelines.clone(),
        graph,
        tweets.clone(),
        rebuilds,
        pulled,
    );
    let cached_tweets = hydrate::CachedTweets::new(
        tweets,
        Duration::from_millis(config.tweet_cache_ttl_ms),
        config.tweet_cache_capacity,
    );
    let forgetting = tokio::spawn(deletions::follow(timelines, cached_tweets.clone()));
    let service = service::Timeline::new(home, cached_tweets, strategy);
    tracing::info!(addr = %listener.local_addr()?, "timeline service listening");
    let served = chirp_common::grpc::serve(
        TimelineServiceServer::new(service),
        listener,
        token.clone(),
        shutdown,
    )
    .await;
    forgetting.abort();
    served
}
