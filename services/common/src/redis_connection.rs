//! One handle on Redis, whether it is a single node or a Redis Cluster.
//!
//! A single node is reached through a `ConnectionManager` (one multiplexed
//! connection, reconnected on failure); a cluster through the `redis` crate's
//! cluster connection, which learns the slot map from the seed nodes, sends
//! each command to the master of its key's slot, follows `MOVED` and
//! `ASK` redirections and refreshes the map when a replica is promoted. Both
//! are behind [`RedisConnection`], which is itself a connection: commands,
//! scripts and pipelines run on it unchanged, so code written against it
//! runs on either deployment, chosen by configuration (`REDIS_CLUSTER`).
//!
//! What a cluster asks of callers, and the connection cannot hide: every key
//! of one command, script or transaction must hash to one slot (share a
//! `{hash tag}`), or the node answers `CROSSSLOT`. A pipeline may mix slots:
//! the cluster connection splits it per node and puts the answers back in
//! order, but it is then no longer one round trip.

use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::{ClusterClientBuilder, ClusterConfig};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisFuture, Value};

/// Where Redis is, as configured: `urls` is one `redis://` URL, or with
/// `cluster` a comma-separated list of seed nodes (any few of the cluster's
/// nodes: the rest are discovered).
#[derive(Debug, Clone)]
pub struct RedisTarget<'a> {
    pub urls: &'a str,
    pub cluster: bool,
}

/// A connection to a single node or to a cluster. Cloning is cheap, and
/// clones share the underlying connections.
#[derive(Clone)]
pub enum RedisConnection {
    Node(ConnectionManager),
    Cluster(ClusterConnection),
}

impl RedisConnection {
    /// Connects in the background: commands sent before Redis answers fail
    /// (within `timeout`) instead of the caller failing to start. Must run
    /// inside a Tokio runtime.
    pub fn lazy(target: &RedisTarget<'_>, timeout: Duration) -> anyhow::Result<Self> {
        let urls: Vec<&str> = target
            .urls
            .split(',')
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .collect();
        if target.cluster {
            anyhow::ensure!(
                !urls.is_empty(),
                "REDIS_CLUSTER needs at least one node URL"
            );
            let client = ClusterClientBuilder::new(urls)
                .connection_timeout(timeout)
                .response_timeout(timeout)
                .build()?;
            let config = ClusterConfig::new()
                .set_connection_timeout(timeout)
                .set_response_timeout(timeout);
            Ok(Self::Cluster(
                client.get_pending_async_connection_with_config(config),
            ))
        } else {
            let [url] = urls.as_slice() else {
                anyhow::bail!(
                    "one Redis URL expected, got {:?}; set REDIS_CLUSTER=true for a list of cluster nodes",
                    target.urls
                );
            };
            let config = ConnectionManagerConfig::new()
                .set_connection_timeout(Some(timeout))
                .set_response_timeout(Some(timeout))
                .set_number_of_retries(1);
            let client = redis::Client::open(*url)?;
            Ok(Self::Node(ConnectionManager::new_lazy_with_config(
                client, config,
            )?))
        }
    }
}

impl ConnectionLike for RedisConnection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Node(node) => node.req_packed_command(cmd),
            Self::Cluster(cluster) => cluster.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Node(node) => node.req_packed_commands(pipeline, offset, count),
            Self::Cluster(cluster) => cluster.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Node(node) => node.get_db(),
            Self::Cluster(cluster) => cluster.get_db(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_list_of_nodes_needs_cluster_mode() {
        let two = RedisTarget {
            urls: "redis://127.0.0.1:6391,redis://127.0.0.1:6392",
            cluster: false,
        };
        assert!(RedisConnection::lazy(&two, Duration::from_secs(1)).is_err());
        let cluster = RedisTarget {
            cluster: true,
            ..two
        };
        assert!(RedisConnection::lazy(&cluster, Duration::from_secs(1)).is_ok());
    }
}
