//! A Redis Cluster master killed under load
//! (`deploy/backends.sh up redis-cluster`, then `kill redis-cluster PORT`):
//! its replica takes over, and chirp's Redis connection
//! (`chirp_redis::connection`) follows it without a restart: every
//! key written before the kill is read back, and writes go on.
//!
//! Then `deploy/backends.sh up redis-cluster` brings the dead node back
//! alone, on its own data, into the same cluster, and leaves the others
//! running.
//!
//! Its own test binary: killing a master must not run beside the other
//! tests that use the cluster.

use std::collections::BTreeMap;
use std::time::Duration;

use chirp_redis::connection::{RedisConnection, RedisTarget};
use chirp_test_support::{
    REDIS_CLUSTER_URLS, backends_script, ensure_scale_out, eventually, scale_out_pid, unique_name,
};
use redis::AsyncCommands;

const KEYS: usize = 200;

#[tokio::test]
async fn a_killed_master_is_replaced_by_its_replica_and_nothing_is_lost() {
    ensure_scale_out("redis-cluster");
    let target = RedisTarget {
        urls: REDIS_CLUSTER_URLS,
        cluster: true,
    };
    let mut redis = RedisConnection::lazy(&target, Duration::from_secs(1)).unwrap();
    let prefix = unique_name("failover");
    // Keys without a shared hash tag: they spread over all three masters.
    let written: BTreeMap<String, usize> =
        (0..KEYS).map(|i| (format!("{prefix}:{i}"), i)).collect();
    for (key, value) in &written {
        let () = redis.set(key, *value).await.unwrap();
    }

    // The cluster outlives test runs, and an earlier failover may have
    // moved the masters: take the first node that is one now.
    let ids = node_ids().await;
    let mut master = None;
    for port in PORTS {
        let mut node = connect(port).await;
        let role: Vec<redis::Value> = redis::cmd("ROLE").query_async(&mut node).await.unwrap();
        if role.first() == Some(&redis::Value::BulkString(b"master".to_vec())) {
            master = Some((port, node));
            break;
        }
    }
    let (master, node) = master.expect("a master among the nodes");
    // Replication is asynchronous: wait until the replica has every write,
    // so that what the test kills is the node, not unreplicated data.
    eventually(Duration::from_secs(30), "the replica to catch up", || {
        let mut node = node.clone();
        async move {
            let info: String = redis::cmd("INFO")
                .arg("replication")
                .query_async(&mut node)
                .await
                .ok()?;
            let field = |name: &str| {
                info.lines()
                    .find_map(|line| line.strip_prefix(name))
                    .map(str::to_owned)
            };
            let master_offset = field("master_repl_offset:")?;
            let replica = field("slave0:")?;
            let replica_offset = replica
                .split(',')
                .find_map(|kv| kv.strip_prefix("offset="))?;
            (replica_offset.trim() == master_offset.trim()).then_some(())
        }
    })
    .await;

    backends_script(&["kill", "redis-cluster", &master.to_string()]);

    // Reads of the dead master's slots fail until its replica is promoted
    // (cluster-node-timeout 2 s) and the connection learns the new map.
    let read_all = || {
        let (mut redis, written) = (redis.clone(), &written);
        async move {
            for (key, value) in written {
                let read: Option<usize> = redis.get(key).await.ok()?;
                assert_eq!(read, Some(*value), "{key} changed");
            }
            Some(())
        }
    };
    eventually(
        Duration::from_secs(60),
        "every key readable after failover",
        read_all,
    )
    .await;
    let key = format!("{prefix}:after");
    let mut writer = redis.clone();
    let () = writer.set(&key, 1).await.unwrap();
    let read: Option<usize> = writer.get(&key).await.unwrap();
    assert_eq!(read, Some(1));

    // The dead node brought back as a user would: `up` starts it alone on
    // its own nodes.conf and data, the others keep running, and it rejoins
    // the same cluster (as its new master's replica).
    let survivors: Vec<_> = PORTS
        .iter()
        .filter(|&&port| port != master)
        .map(|&port| (port, scale_out_pid("redis-cluster", &port.to_string())))
        .collect();
    ensure_scale_out("redis-cluster");
    for (port, pid) in &survivors {
        assert!(pid.is_some(), "{port} ran before `up`");
        let now = scale_out_pid("redis-cluster", &port.to_string());
        assert_eq!(now, *pid, "`up` left {port} alone");
    }
    assert_eq!(node_ids().await, ids, "the same nodes in the same cluster");
    eventually(
        Duration::from_secs(60),
        "every key readable after the node's return",
        read_all,
    )
    .await;
    // The nodes should not outlive the test that needed them; their data
    // stays for the next `up`.
    chirp_test_support::stop_scale_out("redis-cluster");
}

/// The nodes of `deploy/backends.sh up redis-cluster`.
const PORTS: [u16; 6] = [6391, 6392, 6393, 6394, 6395, 6396];

async fn connect(port: u16) -> redis::aio::MultiplexedConnection {
    redis::Client::open(format!("redis://127.0.0.1:{port}"))
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

/// Each node's id (`CLUSTER MYID`), which a node re-created from scratch
/// would not keep.
async fn node_ids() -> Vec<String> {
    let mut ids = Vec::new();
    for port in PORTS {
        let id: String = redis::cmd("CLUSTER")
            .arg("MYID")
            .query_async(&mut connect(port).await)
            .await
            .unwrap();
        ids.push(id);
    }
    ids
}
