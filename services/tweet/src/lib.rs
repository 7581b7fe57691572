//! The tweet service: the one writer of tweets and the one source of tweet
//! events.
//!
//! Tweets live in a CQL store (Cassandra, or ScyllaDB in production-like
//! setups), the write-heavy, horizontally scalable half of the design: every
//! read is a single-partition lookup by tweet id or by author. Creating or
//! deleting a tweet also publishes an event to Kafka, which the fan-out worker
//! consumes to update home timelines. The event is written to an outbox table
//! in the same batch as the tweet and relayed to Kafka by a background loop,
//! so a tweet and its event exist together or not at all, whatever fails in
//! between, and posting keeps working while Kafka is down; idempotency keys
//! make a client's retry finish whatever a failed attempt left undone.
//!
//! Reading order: [`config`], [`input`] (validation at the edge), [`service`]
//! (each operation, step by step), [`store`] (the tweet tables and why),
//! [`outbox`] (why an outbox, and every row of it), [`relay`] (how it
//! reaches Kafka with several instances, and who creates the topic),
//! [`events`], [`cql`] (the session and write timestamps), [`error`];
//! [`import`] is the bulk load of tweet history.

pub mod config;
mod cql;
mod error;
mod events;
mod idle_poll;
mod import;
mod input;
mod outbox;
mod relay;
mod service;
mod stats;
mod store;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chirp_domain::ids::{Snowflake, now_ms};
use chirp_proto::tweet::tweet_service_server::TweetServiceServer;
use tokio::net::TcpListener;
use tokio::sync::Notify;

pub use config::Config;
pub use error::TweetError;

/// Connects to the CQL store (creating the schema if needed), then serves
/// gRPC on `listener` and relays the outbox to Kafka (creating the topic once
/// Kafka answers) until `shutdown` resolves; then releases the outbox shards
/// it held, so another instance takes them over at once.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let token = config.internal.token("tweet")?;
    let tables: Vec<&str> = store::CREATE_TABLES
        .iter()
        .chain(&outbox::CREATE_TABLES)
        .copied()
        .collect();
    let session = cql::connect(
        &config.cql_nodes,
        &config.cql_keyspace,
        config.cql_replication_factor,
        &tables,
    )
    .await?;
    let outbox = Arc::new(outbox::Outbox::new(session.clone()).await?);
    let store = Arc::new(store::Store::new(session, outbox.clone()).await?);
    let events = events::Events::new(&config.kafka)?;
    let wake = Arc::new(Notify::new());
    // Unique per process run: a restarted instance is a new lease holder.
    let owner = format!(
        "node{}-pid{}-{}",
        config.node_id,
        std::process::id(),
        now_ms()
    );
    let relay = relay::Relay::new(
        outbox,
        events,
        config.kafka.clone(),
        owner,
        wake.clone(),
        Duration::from_millis(config.relay_idle_poll_ms),
    );
    let service = service::Tweets::new(store, Snowflake::new(config.node_id), wake);
    tracing::info!(addr = %listener.local_addr()?, node_id = config.node_id, "tweet service listening");
    chirp_grpc::serve_beside(
        TweetServiceServer::new(service),
        listener,
        token,
        shutdown,
        |shutdown| relay.run(shutdown),
    )
    .await
}
