//! The graph service: who exists, and who follows whom.
//!
//! Users and follow edges live in Postgres, the one store here with
//! transactions: following someone inserts an edge and bumps two counters
//! atomically, so follower counts never drift from the edges. Every other
//! service asks this one whether an author is a *celebrity* (followers at or
//! above a threshold), which decides between push and pull in the timeline.
//!
//! A follow or an unfollow also drops the follower's home timeline from
//! Redis, so that its next read rebuilds it with the followee's tweets in (or
//! out). One rebuild per follow is cheap next to keeping fan-out, backfill
//! and removal in sync with the graph, and it cannot leave a stale timeline
//! behind: a failed drop fails the call, and retrying it is harmless. The one
//! drop a retry could not redo, that of every follower's timeline when an
//! author falls below the celebrity threshold, is queued in Postgres and
//! retried until done ([`pending_drops`]).
//!
//! Reading order: [`config`], [`handle`] (validation at the edge),
//! [`store`] (the SQL), [`service`] (the gRPC surface), `invalidate` (dropping
//! timelines, retried once on a broken connection), [`error`]; [`import`]
//! is the bulk load a migration or a seed uses, [`popular`] the most-followed
//! users.

pub mod config;
mod error;
mod handle;
mod import;
mod invalidate;
mod pending_drops;
mod popular;
mod service;
mod sign_up;
mod store;

use std::future::Future;

use chirp_proto::graph::graph_service_server::GraphServiceServer;
use chirp_timelines::TimelineDrops;
use futures::FutureExt;
use tokio::net::TcpListener;

pub use config::Config;
pub use error::GraphError;

/// Connects to Postgres and Redis, applies pending migrations, and serves gRPC on
/// `listener`, retrying queued timeline drops meanwhile, until `shutdown`
/// resolves.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let token = config.internal.token("graph")?;
    let store = store::Store::connect(
        &config.database_url,
        config.database_read_url.as_deref(),
        config.database_max_connections,
    )
    .await?;
    let timelines = TimelineDrops::connect(&config.timelines).await?;
    let drops = pending_drops::PendingDrops::new(store.clone(), timelines.clone());
    let service = service::Graph::new(store, timelines, drops.clone(), config.celebrity_threshold);
    tracing::info!(addr = %listener.local_addr()?, "graph service listening");
    let shutdown = shutdown.shared();
    let serving = chirp_common::grpc::serve(
        GraphServiceServer::new(service),
        listener,
        token,
        shutdown.clone(),
    );
    let (served, ()) = tokio::join!(serving, drops.run(shutdown));
    served
}
