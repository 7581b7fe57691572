//! The graph service: who exists, and who follows whom.
//!
//! Users and follow edges live in Postgres, the one store here with
//! transactions: following someone inserts an edge and bumps two counters
//! atomically, so follower counts never drift from the edges. Every other
//! service asks this one whether an author is a *celebrity* (followers at or
//! above a threshold), which decides between push and pull in the timeline.
//!
//! Reading order: [`config`], [`handle`] (validation at the edge),
//! [`store`] (the SQL), [`service`] (the gRPC surface), [`error`].

pub mod config;
mod error;
mod handle;
mod service;
mod store;

use std::future::Future;

use chirp_common::proto::graph::graph_service_server::GraphServiceServer;
use tokio::net::TcpListener;
use tonic::transport::Server;

pub use config::Config;
pub use error::GraphError;

/// Connects to Postgres, applies pending migrations, and serves gRPC on
/// `listener` until `shutdown` resolves.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let store = store::Store::connect(&config.database_url, config.database_max_connections).await?;
    let service = service::Graph::new(store, config.celebrity_threshold);
    tracing::info!(addr = %listener.local_addr()?, "graph service listening");
    let router = Server::builder().add_service(GraphServiceServer::new(service));
    chirp_common::grpc::serve(router, listener, shutdown).await
}
