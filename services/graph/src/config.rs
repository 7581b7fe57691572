//! Configuration, from flags or the environment; `graph --help` lists it all.

use std::net::SocketAddr;

use chirp_grpc::service_auth::ServiceAuthArgs;
use chirp_redis::connection::RedisArgs;
use chirp_runtime::metrics::MetricsArgs;
use chirp_runtime::telemetry::LogArgs;
use clap::Parser;

#[derive(Debug, Clone, Parser)]
#[command(
    name = "graph",
    about = "chirp graph service: users and follows in Postgres"
)]
pub struct Config {
    /// Address the gRPC server listens on.
    #[arg(long, env = "LISTEN_ADDR", default_value = "0.0.0.0:50052")]
    pub listen_addr: SocketAddr,
    /// Postgres connection string. Migrations are applied at start.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/chirp"
    )]
    pub database_url: String,
    /// A streaming replica of that database for the reads that tolerate its
    /// lag (follower listings); unset: every read goes to the primary.
    #[arg(long, env = "DATABASE_READ_URL")]
    pub database_read_url: Option<String>,
    /// Size of the Postgres connection pool (and of the replica's).
    #[arg(long, env = "DATABASE_MAX_CONNECTIONS", default_value_t = 16)]
    pub database_max_connections: u32,
    /// Authors with at least this many followers are celebrities: their tweets
    /// are pulled at read time instead of pushed to every follower.
    #[arg(long, env = "CELEBRITY_THRESHOLD", default_value_t = 10_000)]
    pub celebrity_threshold: i64,
    /// A celebrity stays one until their followers fall below the threshold
    /// less this percentage of it (rounded down to whole followers; 0: below
    /// the threshold itself), so that one follow toggled at the threshold
    /// does not drop every follower's timeline each time.
    #[arg(
        long,
        env = "CELEBRITY_HYSTERESIS_PERCENT",
        default_value_t = 10,
        value_parser = clap::value_parser!(u8).range(0..=100)
    )]
    pub celebrity_hysteresis_percent: u8,
    /// The home timelines in Redis: a follow or an unfollow drops the
    /// follower's, so that their next read rebuilds it with the new followee.
    /// Where they are is all this service needs: it never writes an entry.
    #[command(flatten)]
    pub timelines: RedisArgs,
    #[command(flatten)]
    pub metrics: MetricsArgs,
    #[command(flatten)]
    pub log: LogArgs,
    /// The credential of calls between services.
    #[command(flatten)]
    pub internal: ServiceAuthArgs,
}
