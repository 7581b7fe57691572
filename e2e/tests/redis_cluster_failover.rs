//! A Redis Cluster master killed under load
//! (`deploy/backends.sh up redis-cluster`, then `kill redis-cluster PORT`):
//! its replica takes over, and chirp's Redis connection
//! (`chirp_redis::connection`) follows it without a restart: every
//! key written before the kill is read back, and writes go on.
//!
//! Its own test binary: killing a master must not run beside the other
//! tests that use the cluster. The next `up` rebuilds the cluster, since a
//! node is missing.

use std::collections::BTreeMap;
use std::time::Duration;

use chirp_redis::connection::{RedisConnection, RedisTarget};
use chirp_testing::{
    REDIS_CLUSTER_URLS, backends_script, ensure_scale_out, eventually, unique_name,
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

    let master = 6391;
    let mut node = redis::Client::open(format!("redis://127.0.0.1:{master}"))
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let role: Vec<redis::Value> = redis::cmd("ROLE").query_async(&mut node).await.unwrap();
    assert_eq!(
        role.first(),
        Some(&redis::Value::BulkString(b"master".to_vec())),
        "{master} is a master after `redis-cli --cluster create`"
    );
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
    let () = redis.set(&key, 1).await.unwrap();
    let read: Option<usize> = redis.get(&key).await.unwrap();
    assert_eq!(read, Some(1));
    // A cluster short of a node is rebuilt by the next `up` anyway.
    chirp_testing::stop_scale_out("redis-cluster");
}
