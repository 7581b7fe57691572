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
    /// Push to every follower: a follower with no cached timeline gets one
    /// opened for the push (as being rebuilt, so their first read still
    /// rebuilds it and nothing is lost) instead of being skipped, as
    /// DeathStarBench's fan-out writes every follower's timeline. Costs a
    /// write and a key per follower who does not read; an inactive follower
    /// (`ACTIVE_WINDOW_SECS`) is skipped either way. See
    /// `chirp_timeline_store`.
    #[arg(long, env = "FANOUT_PUSH_UNCACHED", default_value_t = false,
          action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub push_uncached: bool,
    /// When above 0, a follower who follows more accounts than this gets
    /// each push with probability limit / their following count, drawn by
    /// a hash of (tweet, follower) so a replay drops the same writes:
    /// Bluesky's lossy timelines (limit 2 000). Caps what one reader of
    /// very many accounts costs the fan-out; their timeline misses tweets
    /// until it is rebuilt. See `fanout`.
    #[arg(long, env = "LOSSY_FANOUT_LIMIT", default_value_t = 0)]
    pub lossy_fanout_limit: u32,
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

    #[test]
    fn the_policies_are_off_unless_asked_for() {
        let config = Config::try_parse_from(["fanout"]).unwrap();
        assert!(!config.push_uncached);
        assert_eq!(config.lossy_fanout_limit, 0);
        assert_eq!(config.store.active_window_secs, 0);
        let config = Config::try_parse_from([
            "fanout",
            "--push-uncached",
            "true",
            "--lossy-fanout-limit",
            "2000",
            "--active-window-secs",
            "604800",
        ])
        .unwrap();
        assert!(config.push_uncached);
        assert_eq!(config.lossy_fanout_limit, 2_000);
        assert_eq!(config.store.active_window_secs, 604_800);
        let switch = Config::try_parse_from(["fanout", "--push-uncached"]).unwrap();
        assert!(switch.push_uncached, "a bare switch is true");
    }
}
