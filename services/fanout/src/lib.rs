//! The fan-out worker: turns tweet events into home-timeline writes.
//!
//! The tweet service publishes `TweetCreated` and `TweetDeleted` to Kafka; this
//! worker, one member of a consumer group, pushes each new tweet id into the
//! Redis home timeline of the author and every follower, and takes deleted
//! ones out. Writing at tweet time is what makes reading a timeline cheap: it
//! is already assembled. Authors with very many followers (*celebrities*) are
//! the exception; their tweets are merged in at read time instead (see
//! `TIMELINE_STRATEGY` for pushing everyone or no one).
//!
//! Delivery is *at least once, applied idempotently*. An event's offset is
//! stored only after all its Redis writes succeeded, and only stored offsets
//! are ever committed, so a crash or a rebalance can replay events but never
//! lose one. Replays are harmless because every write is idempotent: a
//! timeline is a set of ids. This is simpler and cheaper than exactly-once
//! (Kafka transactions cannot span Redis anyway), and yields the same
//! timelines. A failing dependency stalls its partition rather than
//! dropping events: the worker retries with backoff until it heals.
//!
//! Reading order: [`config`], [`consumer`] (the Kafka loop and its delivery
//! guarantees), [`fanout`] (what one event does), [`error`], `stats` (what is
//! measured).

pub mod config;
mod consumer;
mod error;
mod fanout;
mod stats;

use std::future::Future;

use chirp_common::grpc::{DEFAULT_DEADLINE, connect_lazy};
use chirp_common::proto::graph::graph_service_client::GraphServiceClient;
use chirp_common::timelines::HomeTimelines;

pub use config::Config;
pub use error::FanoutError;

/// Makes sure the topic exists, joins the consumer group, and applies events
/// until `shutdown` resolves; then finishes the event in hand, commits, and
/// returns.
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    stats::describe();
    config.kafka.ensure_topic().await?;
    let timelines = HomeTimelines::connect(&config.store).await?;
    let graph = GraphServiceClient::new(connect_lazy(&config.graph_addr, DEFAULT_DEADLINE)?);
    let fanout = fanout::Fanout::new(
        graph,
        timelines,
        config.follower_page_size,
        config.store.timeline_strategy,
    );
    let consumer = consumer::subscribe(&config.kafka, &config.kafka_group_id)?;
    tracing::info!(
        topic = %config.kafka.kafka_topic,
        group_id = %config.kafka_group_id,
        "fan-out worker consuming"
    );
    consumer::consume(consumer, &fanout, shutdown).await
}
