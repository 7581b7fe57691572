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
//! `{hash tag}`), or the node answers `CROSSSLOT`. So must every key of one
//! pipeline: redis 1.8's cluster connection sends a pipeline whole to the
//! node of its first keyed command and refuses one whose commands name
//! different slots (`CROSSSLOT` before anything is sent). Callers that batch
//! many users' keys therefore split their batch with
//! [`RedisConnection::pipeline_groups`]: one pipeline on a single node, one
//! per slot on a cluster, sent concurrently.
//!
//! What the cluster connection cannot be trusted with: redis 1.8's cluster
//! driver can deadlock after a master dies under concurrent load (a node
//! repair queued for its connection map's lock is no longer polled once a
//! slot refresh waits for the same lock), and from then on every command
//! times out, for good, while the cluster itself is healthy again (seen in
//! `loadtest soak --clusters`: the graph service failed every follow for
//! minutes after a failover). So the cluster connection lives in a
//! [`cluster::Healing`], which replaces it with a fresh one once every
//! command has failed for [`cluster::WEDGED_AFTER`].

use std::collections::HashMap;
use std::time::Duration;

use anyhow::Context;
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::{ClusterClientBuilder, ClusterConfig};
use redis::cluster_routing::Slot;
use redis::{Cmd, Pipeline, RedisFuture, Value};

pub mod cluster;

/// Where a service's Redis is, from the environment: every service that
/// uses Redis reads the same three settings, so one deployment points all of
/// them at one Redis (or one cluster) and one key prefix.
#[derive(Debug, Clone, clap::Args)]
pub struct RedisArgs {
    /// Redis: one URL, or with `REDIS_CLUSTER` some of the cluster's nodes,
    /// comma-separated (the others are discovered).
    #[arg(long, env = "REDIS_URL", default_value = "redis://127.0.0.1:6379")]
    pub redis_url: String,
    /// Whether Redis is a Redis Cluster (see `REDIS_URL`).
    #[arg(long, env = "REDIS_CLUSTER", default_value_t = false, action = clap::ArgAction::Set)]
    pub redis_cluster: bool,
    /// Prefix of every key, so several deployments (or test runs) can share one Redis.
    #[arg(long, env = "REDIS_KEY_PREFIX", default_value = "chirp:")]
    pub redis_key_prefix: String,
    /// How long a command waits for Redis's answer, in milliseconds, before
    /// it fails (and is retried by its caller): a frozen node or cluster
    /// master then costs a failed call, never a hung worker. The default is
    /// the `redis` crate's own for a single node; its cluster connection
    /// has none. (The gateway connects lazily and bounds its Redis calls by
    /// `DOWNSTREAM_TIMEOUT_MS` instead.)
    #[arg(long, env = "REDIS_RESPONSE_TIMEOUT_MS", default_value_t = DEFAULT_RESPONSE_TIMEOUT_MS)]
    pub redis_response_timeout_ms: u64,
}

/// The default of `REDIS_RESPONSE_TIMEOUT_MS`.
pub const DEFAULT_RESPONSE_TIMEOUT_MS: u64 = 500;

impl RedisArgs {
    pub fn target(&self) -> RedisTarget<'_> {
        RedisTarget {
            urls: &self.redis_url,
            cluster: self.redis_cluster,
        }
    }

    /// `REDIS_RESPONSE_TIMEOUT_MS`.
    pub fn response_timeout(&self) -> Duration {
        Duration::from_millis(self.redis_response_timeout_ms)
    }
}

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
    Cluster(cluster::Healing),
}

impl RedisConnection {
    /// Connects now, with the `redis` crate's default retries, each command
    /// answered within `response_timeout` or failed, and fails if Redis does
    /// not answer: for services that cannot work without it.
    pub async fn connect(
        target: &RedisTarget<'_>,
        response_timeout: Duration,
    ) -> anyhow::Result<Self> {
        if target.cluster {
            let urls = cluster_urls(target)?;
            let client = ClusterClientBuilder::new(urls)
                .response_timeout(response_timeout)
                .build()
                .with_context(|| format!("parse REDIS_URL {}", shown(target.urls)))?;
            let cluster = client.get_async_connection().await.with_context(|| {
                format!("connect to the Redis Cluster at {}", shown(target.urls))
            })?;
            Ok(Self::Cluster(cluster::Healing::new(client, cluster)))
        } else {
            let url = single_url(target)?;
            let config =
                ConnectionManagerConfig::new().set_response_timeout(Some(response_timeout));
            let node = redis::Client::open(url)
                .with_context(|| format!("parse REDIS_URL {}", shown(url)))?
                .get_connection_manager_with_config(config)
                .await
                .with_context(|| format!("connect to Redis at {}", shown(url)))?;
            Ok(Self::Node(node))
        }
    }

    /// Positions of `keys` grouped so that the commands on each group's keys
    /// can be one pipeline: a single group on a node, one group per hash
    /// slot on a cluster (see the module doc). Groups keep the order of
    /// `keys` within them, and come in the order of their first key.
    pub fn pipeline_groups<K: AsRef<[u8]>>(&self, keys: &[K]) -> Vec<Vec<usize>> {
        match self {
            Self::Node(_) => vec![(0..keys.len()).collect()],
            Self::Cluster(_) => {
                let mut groups: Vec<Vec<usize>> = Vec::new();
                let mut by_slot: HashMap<Slot, usize> = HashMap::new();
                for (position, key) in keys.iter().enumerate() {
                    let group = *by_slot.entry(Slot::for_key(key)).or_insert_with(|| {
                        groups.push(Vec::new());
                        groups.len() - 1
                    });
                    groups[group].push(position);
                }
                groups
            }
        }
    }

    /// Connects in the background: commands sent before Redis answers fail
    /// (within `timeout`) instead of the caller failing to start. Must run
    /// inside a Tokio runtime.
    pub fn lazy(target: &RedisTarget<'_>, timeout: Duration) -> anyhow::Result<Self> {
        if target.cluster {
            let urls = cluster_urls(target)?;
            let client = ClusterClientBuilder::new(urls)
                .connection_timeout(timeout)
                .response_timeout(timeout)
                .build()
                .with_context(|| format!("parse REDIS_URL {}", shown(target.urls)))?;
            let config = ClusterConfig::new()
                .set_connection_timeout(timeout)
                .set_response_timeout(timeout);
            let cluster = client.get_pending_async_connection_with_config(config);
            Ok(Self::Cluster(cluster::Healing::new(client, cluster)))
        } else {
            let url = single_url(target)?;
            let config = ConnectionManagerConfig::new()
                .set_connection_timeout(Some(timeout))
                .set_response_timeout(Some(timeout))
                .set_number_of_retries(1);
            let client = redis::Client::open(url)
                .with_context(|| format!("parse REDIS_URL {}", shown(url)))?;
            Ok(Self::Node(ConnectionManager::new_lazy_with_config(
                client, config,
            )?))
        }
    }
}

fn node_urls<'a>(target: &RedisTarget<'a>) -> Vec<&'a str> {
    target
        .urls
        .split(',')
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .collect()
}

/// The seed nodes of a cluster: at least one.
fn cluster_urls<'a>(target: &RedisTarget<'a>) -> anyhow::Result<Vec<&'a str>> {
    let urls = node_urls(target);
    anyhow::ensure!(
        !urls.is_empty(),
        "REDIS_CLUSTER needs at least one node URL"
    );
    Ok(urls)
}

/// The one node of a single-node Redis.
fn single_url<'a>(target: &RedisTarget<'a>) -> anyhow::Result<&'a str> {
    match node_urls(target)[..] {
        [url] => Ok(url),
        _ => anyhow::bail!(
            "one Redis URL expected, got {:?}; set REDIS_CLUSTER=true for a list of cluster nodes",
            shown(target.urls)
        ),
    }
}

/// REDIS_URL as errors may show it: without its passwords.
fn shown(urls: &str) -> String {
    chirp_runtime::redact::url_credentials(urls)
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

    #[tokio::test]
    async fn errors_name_the_url_without_its_password() {
        let error = |urls: &'static str, cluster: bool| {
            let target = RedisTarget { urls, cluster };
            let error = RedisConnection::lazy(&target, Duration::from_secs(1))
                .err()
                .expect("a bad REDIS_URL");
            format!("{error:#}")
        };
        for message in [
            error("redis://:hunter2@127.0.0.1:notaport", false),
            error("redis://a:hunter2@h:1,redis://b:hunter2@h:2", false),
            error("redis://a:hunter2@h:notaport", true),
        ] {
            assert!(!message.contains("hunter2"), "{message}");
            assert!(message.contains(":***@"), "{message}");
        }
    }

    #[tokio::test]
    async fn a_cluster_batch_is_split_by_slot_and_a_nodes_is_not() {
        let keys = ["tl:{1}", "tl:{2}", "tl:{1}:rebuild", "tl:{3}", "tl:{2}"];
        let node = RedisTarget {
            urls: "redis://127.0.0.1:6379",
            cluster: false,
        };
        let node = RedisConnection::lazy(&node, Duration::from_secs(1)).unwrap();
        assert_eq!(node.pipeline_groups(&keys), vec![vec![0, 1, 2, 3, 4]]);
        let cluster = RedisTarget {
            urls: "redis://127.0.0.1:6391",
            cluster: true,
        };
        let cluster = RedisConnection::lazy(&cluster, Duration::from_secs(1)).unwrap();
        assert_eq!(
            cluster.pipeline_groups(&keys),
            vec![vec![0, 2], vec![1, 4], vec![3]]
        );
    }

    /// A Redis Cluster of one node that maps every slot to itself, answers
    /// the connection's set-up, and then freezes: it never answers `GET`.
    async fn frozen_cluster_node() -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            loop {
                let (mut socket, _) = listener.accept().await.unwrap();
                tokio::spawn(async move {
                    let mut buffer = vec![0; 4096];
                    loop {
                        let Ok(read) = socket.read(&mut buffer).await else {
                            return;
                        };
                        if read == 0 {
                            return;
                        }
                        let request = String::from_utf8_lossy(&buffer[..read]).to_uppercase();
                        let answer = if request.contains("SLOTS") {
                            format!(
                                "*1\r\n*3\r\n:0\r\n:16383\r\n*3\r\n$9\r\n127.0.0.1\r\n:{port}\r\n$4\r\nnode\r\n"
                            )
                        } else if request.contains("GET") {
                            continue;
                        } else {
                            // Set-up commands, pipelined or not: one OK each.
                            "+OK\r\n".repeat(request.matches('*').count().max(1))
                        };
                        if socket.write_all(answer.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        format!("redis://127.0.0.1:{port}")
    }

    /// Issue 19: the cluster connection had no response timeout, so a
    /// frozen node hung every caller (the fan-out worker, a rebuild) for good.
    #[tokio::test]
    async fn a_frozen_cluster_node_fails_the_command_instead_of_hanging_it() {
        let url = frozen_cluster_node().await;
        let target = RedisTarget {
            urls: &url,
            cluster: true,
        };
        let mut redis = RedisConnection::connect(&target, Duration::from_millis(200))
            .await
            .expect("the node answers the set-up");
        let mut get = redis::cmd("GET");
        get.arg("key");
        let get = get.query_async::<Option<String>>(&mut redis);
        let answered = tokio::time::timeout(Duration::from_secs(10), get)
            .await
            .expect("the command hung on the frozen node");
        assert!(answered.is_err(), "{answered:?}");
    }
}
