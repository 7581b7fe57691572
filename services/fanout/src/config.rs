//! Configuration, from flags or the environment; `fanout --help` lists it all.

use std::time::Duration;

use chirp_grpc::service_auth::ServiceAuthArgs;
use chirp_kafka::KafkaArgs;
use chirp_runtime::metrics::MetricsArgs;
use chirp_runtime::telemetry::LogArgs;
use chirp_timeline_store::TimelineStoreArgs;
use clap::Parser;

#[derive(Debug, Clone, Parser)]
#[command(
    name = "fanout",
    about = "chirp fan-out worker: pushes new tweets into home timelines"
)]
pub struct Config {
    /// Address of the graph service, asked for authors and their followers.
    #[arg(long, env = "GRAPH_ADDR", default_value = "127.0.0.1:50052")]
    pub graph_addr: String,
    /// Kafka consumer group. Workers sharing it split the topic's partitions
    /// between them; the group's committed offsets are where a restart resumes.
    #[arg(long, env = "KAFKA_GROUP_ID", default_value = "fanout")]
    pub kafka_group_id: String,
    /// Followers fetched and written per round trip: bounds the memory one
    /// event needs, however many followers its author has.
    #[arg(long, env = "FOLLOWER_PAGE_SIZE", default_value_t = 1000,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub follower_page_size: u32,
    /// Events applied at once by this worker, whatever their partition: each
    /// is a chain of round trips, so applying them one by one leaves the
    /// worker waiting (see `consumer`). Also bounds the memory in flight, a
    /// follower page per event.
    #[arg(long, env = "FANOUT_CONCURRENCY", default_value_t = 16,
          value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub fanout_concurrency: u16,
    /// How often the consumer group's lag is measured, in milliseconds:
    /// each measurement costs a few requests to the brokers (see `lag`).
    #[arg(long, env = "CONSUMER_LAG_INTERVAL_MS", default_value_t = 5000,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub consumer_lag_interval_ms: u64,
    #[command(flatten)]
    pub kafka: KafkaArgs,
    #[command(flatten)]
    pub store: TimelineStoreArgs,
    #[command(flatten)]
    pub metrics: MetricsArgs,
    #[command(flatten)]
    pub log: LogArgs,
    /// The credential of calls between services.
    #[command(flatten)]
    pub internal: ServiceAuthArgs,
}

impl Config {
    pub fn consumer_lag_interval(&self) -> Duration {
        Duration::from_millis(self.consumer_lag_interval_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follower_pages_are_never_empty() {
        let config = Config::try_parse_from(["fanout"]).unwrap();
        assert_eq!(config.follower_page_size, 1000);
        assert!(Config::try_parse_from(["fanout", "--follower-page-size", "0"]).is_err());
    }
}
