//! Where one deployment keeps its data, and the flags that tell the
//! services so.
//!
//! A test takes a fresh set ([`Stores::fresh`]): its own Postgres database,
//! CQL keyspace, Kafka topic and Redis key prefix, all named after one unique
//! run id. An experiment names its own, to keep the graph and the tweets
//! from one deployment to the next and start each with empty timelines.

use chirp_redis::connection::RedisTarget;
use chirp_test_support::{self as testing, CQL, KAFKA, unique_name};

#[derive(Debug, Clone)]
pub struct Stores {
    /// Postgres of the graph service; the database must exist (migrations
    /// are applied at start).
    pub database_url: String,
    pub cql_nodes: String,
    /// Keyspace of the tweets, created if missing.
    pub cql_keyspace: String,
    pub kafka_brokers: String,
    /// Topic of the tweet events, and the fan-out worker's consumer group: a
    /// fresh one has no event to replay.
    pub kafka_topic: String,
    pub redis_url: String,
    /// Whether `redis_url` lists nodes of a Redis Cluster.
    pub redis_cluster: bool,
    /// Prefix of every Redis key: a fresh one has no timeline cached.
    pub redis_prefix: String,
}

impl Stores {
    /// A set no other test uses, on the test backends (started if needed).
    pub async fn fresh(prefix: &str) -> Self {
        testing::ensure_backends();
        let database_url = testing::fresh_database().await;
        let run_id = unique_name(prefix);
        let redis = testing::redis_target();
        Self {
            database_url,
            cql_nodes: CQL.to_owned(),
            cql_keyspace: run_id.clone(),
            kafka_brokers: KAFKA.to_owned(),
            kafka_topic: format!("tweets_{run_id}"),
            redis_url: redis.urls.to_owned(),
            redis_cluster: redis.cluster,
            redis_prefix: format!("{run_id}:"),
        }
    }

    /// Which Redis, without the key prefix.
    pub(crate) fn redis_server(&self) -> Vec<&str> {
        testing::redis_flags(RedisTarget {
            urls: &self.redis_url,
            cluster: self.redis_cluster,
        })
    }

    pub(crate) fn redis_prefix(&self) -> [&str; 2] {
        ["--redis-key-prefix", &self.redis_prefix]
    }

    pub(crate) fn kafka(&self) -> [&str; 4] {
        [
            "--kafka-brokers",
            &self.kafka_brokers,
            "--kafka-topic",
            &self.kafka_topic,
        ]
    }
}
