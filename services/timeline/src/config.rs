//! Configuration, from flags or the environment; `timeline --help` lists it all.

use std::net::SocketAddr;

use chirp_common::telemetry::LogArgs;
use chirp_common::timelines::TimelineStoreArgs;
use clap::Parser;

#[derive(Debug, Clone, Parser)]
#[command(
    name = "timeline",
    about = "chirp timeline service: home timelines from Redis, hydrated into tweets"
)]
pub struct Config {
    /// Address the gRPC server listens on.
    #[arg(long, env = "LISTEN_ADDR", default_value = "0.0.0.0:50053")]
    pub listen_addr: SocketAddr,
    /// Address of the tweet service, which turns timeline ids into tweets.
    #[arg(long, env = "TWEET_ADDR", default_value = "127.0.0.1:50051")]
    pub tweet_addr: String,
    #[command(flatten)]
    pub store: TimelineStoreArgs,
    #[command(flatten)]
    pub log: LogArgs,
}
