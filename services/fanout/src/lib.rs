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
//! dropping events: the worker retries with backoff until it heals, whatever
//! the failure. Only an event that does not decode, which no retry can help,
//! goes to a dead-letter topic instead, so that it does not stall the events
//! behind it; `fanout replay-dead-letters` copies such letters back once
//! their cause is mended.
//!
//! # Shutdown
//!
//! On SIGTERM the worker takes no further event, finishes those in hand
//! (every page of each) and stores their offsets, commits the stored offsets
//! and leaves the group, so its partitions move to another worker at once,
//! which resumes right after the last events applied here. An event still
//! waiting to be retried is left unstored, and its next owner applies it.
//! Then `run` returns and the process exits 0.
//!
//! Reading order: [`config`], [`consumer`] (the Kafka loop and its delivery
//! guarantees), [`fanout`] (what one event does, and its progress recorded
//! for clients to watch), [`error`], `dead_letter` (where events that can
//! never apply go), [`replay`] (bringing them back), `stats` (what is
//! measured), `lag` (how far behind the group is), `watermark` (which
//! offset may be stored when events finish out of order).

pub mod config;
mod consumer;
mod dead_letter;
mod error;
mod fanout;
mod lag;
pub mod replay;
mod stats;
mod watermark;

use std::future::Future;

use chirp_delivery::DeliveryLog;
use chirp_grpc::{DEFAULT_DEADLINE, connect_lazy_with};
use chirp_proto::graph::graph_service_client::GraphServiceClient;
use chirp_redis::connection::RedisConnection;
use chirp_timeline_store::HomeTimelines;
use clap::{Parser, Subcommand};

pub use config::Config;
pub use dead_letter::topic_for as dead_letter_topic;
pub use error::FanoutError;

/// The `fanout` command line: the worker, or one of its maintenance commands.
#[derive(Debug, Parser)]
#[command(
    name = "fanout",
    about = "chirp fan-out worker: pushes new tweets into home timelines",
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Without a command: run the worker.
    #[command(flatten)]
    pub worker: Config,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Copy the dead-letter topic's letters back into the events topic (those
    /// not replayed before), then exit.
    ReplayDeadLetters(replay::ReplayArgs),
}

/// Waits for the topic (the tweet service creates it), joins the consumer
/// group, and applies events until `shutdown` resolves; then finishes the
/// event in hand, commits, and returns. Meanwhile the group's lag is measured every
/// `CONSUMER_LAG_INTERVAL_MS`.
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    stats::describe();
    let mut shutdown = std::pin::pin!(shutdown);
    tokio::select! {
        () = &mut shutdown => return Ok(()),
        waited = config.kafka.wait_for_topic() => waited?,
    }
    let timelines = HomeTimelines::connect(&config.store)
        .await?
        .opening_uncached(config.push_uncached);
    // The delivery records live beside the timelines, under the same prefix.
    let deliveries = DeliveryLog::new(
        RedisConnection::connect(
            &config.store.redis.target(),
            config.store.redis.response_timeout(),
        )
        .await?,
        &config.store.redis.redis_key_prefix,
    );
    let token = &config.internal.token("fanout")?;
    let graph = GraphServiceClient::new(connect_lazy_with(
        &config.graph_addr,
        DEFAULT_DEADLINE,
        token,
    )?);
    let fanout = fanout::Fanout::new(
        graph,
        timelines,
        deliveries,
        config.follower_page_size,
        config.store.timeline_strategy,
        config.lossy_fanout_limit,
    );
    let dead_letters = dead_letter::DeadLetters::connect(&config.kafka).await?;
    let consumer = consumer::subscribe(&config.kafka, &config.kafka_group_id)?;
    let lag = lag::LagProbe::new(&config.kafka, &config.kafka_group_id)?;
    tracing::info!(
        topic = %config.kafka.kafka_topic,
        group_id = %config.kafka_group_id,
        "fan-out worker consuming"
    );
    // The probe never returns: it stops when the consumer does.
    tokio::select! {
        stopped = consumer::consume(
            consumer,
            &fanout,
            &dead_letters,
            config.fanout_concurrency.into(),
            shutdown,
        ) => stopped,
        never = lag.run(config.consumer_lag_interval()) => match never {},
    }
}
