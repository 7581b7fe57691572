//! The tweet service: the one writer of tweets and the one source of tweet
//! events.
//!
//! Tweets live in a CQL store (Cassandra, or ScyllaDB in production-like
//! setups), the write-heavy, horizontally scalable half of the design: every
//! read is a single-partition lookup by tweet id or by author. Creating or
//! deleting a tweet also publishes an event to Kafka, which the fan-out worker
//! consumes to update home timelines; the service waits for the broker to
//! acknowledge it, and idempotency keys make a client's retry finish whatever
//! a failed attempt left undone, so the store and the log converge without a
//! distributed transaction.
//!
//! Reading order: [`config`], [`input`] (validation at the edge), [`store`]
//! (the schema and why), [`events`], [`service`] (each operation, step by
//! step), [`error`].

pub mod config;
mod error;
mod events;
mod input;
mod service;
mod store;

use std::future::Future;

use chirp_common::ids::Snowflake;
use chirp_common::proto::tweet::tweet_service_server::TweetServiceServer;
use tokio::net::TcpListener;

pub use config::Config;
pub use error::TweetError;

/// Connects to the CQL store (creating the schema if needed) and to Kafka
/// (creating the topic if needed), then serves gRPC on `listener` until
/// `shutdown` resolves.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let store = store::Store::connect(
        &config.cql_nodes,
        &config.cql_keyspace,
        config.cql_replication_factor,
    )
    .await?;
    config.kafka.ensure_topic().await?;
    let events = events::Events::new(&config.kafka)?;
    let service = service::Tweets::new(store, events, Snowflake::new(config.node_id));
    tracing::info!(addr = %listener.local_addr()?, node_id = config.node_id, "tweet service listening");
    chirp_common::grpc::serve(
        TweetServiceServer::new(service),
        listener,
        config.internal.internal_token.clone(),
        shutdown,
    )
    .await
}
