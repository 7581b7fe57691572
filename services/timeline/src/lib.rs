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
//! Reading order: [`config`]; `home` (the gRPC surface, and a page as one
//! function naming its steps in order), then each step, called once:
//! `pushed` (1: the ids pushed into Redis), or `rebuild` (1 when Redis
//! lacks the timeline: writing it again from the stores); `followed` (2: the
//! authors merged in at read time); `pulled` (3: their newest ids, cached
//! by `cache`, served stale while revalidating); `stores` (4: past the
//! oldest id Redis keeps, the rest from the graph and the tweet store, the
//! reads a rebuild makes too); `merge` (5: why paging across lists has no
//! gaps); `hydrate` (6: ids into tweets, through a cache). Beside them:
//! `deletions` (how the hydration cache forgets deleted tweets),
//! [`error`], `stats` (what is measured).

mod cache;
pub mod config;
mod deletions;
mod error;
mod expiry;
mod followed;
mod home;
mod hydrate;
mod merge;
mod pulled;
mod pushed;
mod rebuild;
mod stats;
mod stores;

use std::future::Future;
use std::time::Duration;

use chirp_grpc::{DEFAULT_DEADLINE, connect_lazy_with};
use chirp_proto::graph::graph_service_client::GraphServiceClient;
use chirp_proto::timeline::timeline_service_server::TimelineServiceServer;
use chirp_proto::tweet::tweet_service_client::TweetServiceClient;
use chirp_timeline_store::HomeTimelines;
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
    let bounds = rebuild::Bounds {
        concurrent: config.max_concurrent_rebuilds,
        queue: Duration::from_millis(config.rebuild_queue_ms),
        deadline: Duration::from_millis(config.rebuild_deadline_ms),
    };
    let rebuilds = rebuild::Rebuilds::new(
        graph.clone(),
        tweets.clone(),
        timelines.clone(),
        strategy,
        bounds,
    );
    let pulled = pulled::PulledIds::new(
        tweets.clone(),
        Duration::from_millis(config.pulled_ids_ttl_ms),
    );
    let cached_tweets = hydrate::CachedTweets::new(
        tweets.clone(),
        Duration::from_millis(config.tweet_cache_ttl_ms),
        config.tweet_cache_capacity,
    );
    let forgetting = tokio::spawn(deletions::follow(timelines.clone(), cached_tweets.clone()));
    let service = home::Home {
        strategy,
        timelines,
        graph,
        tweets,
        rebuilds,
        pulled,
        hydration: cached_tweets,
        past_cap_max_authors: config.past_cap_max_authors,
        pulled_store_max_authors: config.pulled_store_max_authors,
        answer_while_rebuilding: config.answer_while_rebuilding,
    };
    tracing::info!(addr = %listener.local_addr()?, "timeline service listening");
    let served = chirp_grpc::serve(
        TimelineServiceServer::new(service),
        listener,
        token.clone(),
        shutdown,
    )
    .await;
    forgetting.abort();
    served
}
