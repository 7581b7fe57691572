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
//! Not here yet: rebuilding a timeline that is missing from Redis (a cold or
//! evicted cache), and merging in the tweets of celebrities, whose tweets the
//! fan-out worker does not push. Both belong to the hybrid-timeline work.
//!
//! Reading order: [`config`], [`service`] (paging and hydration), [`error`].

pub mod config;
mod error;
mod service;

use std::future::Future;

use chirp_common::grpc::{DEFAULT_DEADLINE, connect_lazy};
use chirp_common::proto::timeline::timeline_service_server::TimelineServiceServer;
use chirp_common::proto::tweet::tweet_service_client::TweetServiceClient;
use chirp_common::timelines::HomeTimelines;
use tokio::net::TcpListener;
use tonic::transport::Server;

pub use config::Config;
pub use error::TimelineError;

/// Connects to Redis, dials the tweet service lazily, and serves gRPC on
/// `listener` until `shutdown` resolves.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let timelines = HomeTimelines::connect(&config.store).await?;
    let tweets = TweetServiceClient::new(connect_lazy(&config.tweet_addr, DEFAULT_DEADLINE)?);
    let service = service::Timeline::new(timelines, tweets);
    tracing::info!(addr = %listener.local_addr()?, "timeline service listening");
    let router = Server::builder().add_service(TimelineServiceServer::new(service));
    chirp_common::grpc::serve(router, listener, shutdown).await
}
