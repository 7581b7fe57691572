//! Configuration, from flags or the environment; `tweet --help` lists it all.

use std::net::SocketAddr;

use chirp_domain::ids::MAX_WORKER_ID;
use chirp_grpc::service_auth::ServiceAuthArgs;
use chirp_kafka::KafkaArgs;
use chirp_runtime::metrics::MetricsArgs;
use chirp_runtime::telemetry::LogArgs;
use clap::Parser;

#[derive(Debug, Clone, Parser)]
#[command(
    name = "tweet",
    about = "chirp tweet service: tweets in a CQL store, events to Kafka"
)]
pub struct Config {
    /// Address the gRPC server listens on.
    #[arg(long, env = "LISTEN_ADDR", default_value = "0.0.0.0:50051")]
    pub listen_addr: SocketAddr,
    /// Contact points of the Cassandra or ScyllaDB cluster, comma-separated;
    /// the driver discovers the other nodes from any one of them.
    #[arg(
        long,
        env = "CQL_NODES",
        value_delimiter = ',',
        default_value = "127.0.0.1:9042"
    )]
    pub cql_nodes: Vec<String>,
    /// Keyspace holding the tweet tables; created at start if missing.
    #[arg(long, env = "CQL_KEYSPACE", default_value = "chirp", value_parser = keyspace_name)]
    pub cql_keyspace: String,
    /// Replication factor of the keyspace when the service has to create it.
    #[arg(long, env = "CQL_REPLICATION_FACTOR", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub cql_replication_factor: u32,
    /// Snowflake worker id of this instance. Two running instances with the
    /// same id can mint the same tweet id, so each replica needs its own.
    #[arg(long, env = "NODE_ID", default_value_t = 0,
          value_parser = clap::value_parser!(u16).range(..=i64::from(MAX_WORKER_ID)))]
    pub node_id: u16,
    /// The longest the outbox relay waits between polls for other
    /// instances' events once its polls find nothing (it starts at 200 ms
    /// and doubles): the most the first event another instance writes after
    /// a quiet spell can wait. 0 polls every 200 ms, always.
    #[arg(long, env = "RELAY_IDLE_POLL_MS", default_value_t = 2000)]
    pub relay_idle_poll_ms: u64,
    #[command(flatten)]
    pub kafka: KafkaArgs,
    #[command(flatten)]
    pub metrics: MetricsArgs,
    #[command(flatten)]
    pub log: LogArgs,
    /// The credential of calls between services.
    #[command(flatten)]
    pub internal: ServiceAuthArgs,
}

/// A keyspace name goes into DDL text (CQL cannot bind identifiers), so it is
/// held to CQL's unquoted-identifier rules before it gets anywhere near a query.
fn keyspace_name(raw: &str) -> Result<String, String> {
    let mut chars = raw.chars();
    let starts_with_letter = chars.next().is_some_and(|c| c.is_ascii_alphabetic());
    let rest_valid = chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if starts_with_letter && rest_valid && raw.len() <= 48 {
        Ok(raw.to_owned())
    } else {
        Err(
            "a keyspace name is 1-48 letters, digits or underscores, starting with a letter"
                .to_owned(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_parse() {
        let config = Config::try_parse_from(["tweet"]).unwrap();
        assert_eq!(config.cql_nodes, ["127.0.0.1:9042"]);
        assert_eq!(config.cql_keyspace, "chirp");
        assert_eq!(config.node_id, 0);
    }

    #[test]
    fn nodes_split_on_commas() {
        let config = Config::try_parse_from(["tweet", "--cql-nodes", "a:9042,b:9042"]).unwrap();
        assert_eq!(config.cql_nodes, ["a:9042", "b:9042"]);
    }

    #[test]
    fn node_ids_beyond_the_snowflake_range_are_refused() {
        let max = MAX_WORKER_ID.to_string();
        let too_big = (MAX_WORKER_ID + 1).to_string();
        assert!(Config::try_parse_from(["tweet", "--node-id", &max]).is_ok());
        assert!(Config::try_parse_from(["tweet", "--node-id", &too_big]).is_err());
    }

    #[test]
    fn keyspace_names_cannot_smuggle_cql() {
        assert!(keyspace_name("chirp_test_01").is_ok());
        for bad in [
            "",
            "1chirp",
            "chirp; DROP KEYSPACE x",
            "chirp.tweets",
            &"k".repeat(49),
        ] {
            assert!(keyspace_name(bad).is_err(), "{bad}");
        }
    }
}
