//! The graph service: who exists, and who follows whom.
//!
//! Users and follow edges live in Postgres, the one store here with
//! transactions: following someone inserts an edge and bumps two counters
//! atomically, so follower counts never drift from the edges. Every other
//! service asks this one whether an author is a *celebrity* (a flag that
//! rises at a threshold of followers and falls a little below it,
//! [`celebrity`]), which decides between push and pull in the timeline.
//!
//! A follow or an unfollow also drops the follower's home timeline from
//! Redis, so that its next read rebuilds it with the followee's tweets in (or
//! out). One rebuild per follow is cheap next to keeping fan-out, backfill
//! and removal in sync with the graph. So that no stale timeline is left
//! behind, that drop, and the drop of every follower's timeline when an
//! author crosses the threshold, are queued in Postgres by the transaction
//! of the change and retried until done ([`pending_drops`]); a failed drop
//! of the follower's own timeline also fails the call.
//!
//! Reading order: [`config`], [`handle`] (validation at the edge),
//! [`store`] (the SQL), [`celebrity`] (who is one), [`service`] (the gRPC surface), `invalidate` (dropping
//! timelines, retried once on a broken connection), [`error`]; [`import`]
//! is the bulk load a migration or a seed uses, [`popular`] the most-followed
//! users, [`replica_lag`] how far behind the read replica is.

mod celebrity;
pub mod config;
mod error;
mod handle;
mod import;
mod invalidate;
mod pending_drops;
mod popular;
mod replica_lag;
mod service;
mod sign_up;
mod store;

use std::future::Future;

use chirp_proto::graph::graph_service_server::GraphServiceServer;
use chirp_timeline_store::TimelineDrops;
use tokio::net::TcpListener;

pub use config::Config;
pub use error::GraphError;

/// Connects to Postgres and Redis, applies pending migrations, classifies
/// every author by the configured marks (queueing the drops a changed
/// threshold implies), and serves gRPC on `listener`, retrying queued
/// timeline drops and measuring the read replica's lag meanwhile, until
/// `shutdown` resolves.
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
    let marks = celebrity::Marks::new(
        config.celebrity_threshold,
        config.celebrity_hysteresis_percent,
    );
    let reclassified = celebrity::classify_all(store.pool(), marks).await?;
    if reclassified > 0 {
        tracing::info!(
            reclassified,
            "celebrity marks changed; those authors' followers' timelines queued to drop"
        );
    }
    let timelines = TimelineDrops::connect(&config.timelines).await?;
    let drops = pending_drops::PendingDrops::new(store.clone(), timelines);
    let replica_lag = config
        .database_read_url
        .as_deref()
        .map(|url| replica_lag::ReplicaLag::new(store.read_pool().clone(), url));
    let service = service::Graph::new(store, drops.clone(), marks);
    tracing::info!(addr = %listener.local_addr()?, "graph service listening");
    chirp_grpc::serve_beside(
        GraphServiceServer::new(service),
        listener,
        token,
        shutdown,
        |shutdown| async move {
            let measuring = async {
                if let Some(replica_lag) = replica_lag {
                    replica_lag.run(shutdown.clone()).await;
                }
            };
            tokio::join!(drops.run(shutdown.clone()), measuring);
        },
    )
    .await
}
