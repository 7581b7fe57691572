//! Home timelines on a Redis Cluster through a master's death, a whole
//! stack on top (`chirp_test_support::use_redis_cluster`): posts and
//! reads go on while one master is killed and its replica promoted, the
//! timelines the replica did not have are rebuilt by their next read, and no
//! tweet is missing from any follower's timeline afterwards.
//!
//! Replication is asynchronous, so a promoted replica may lack what its
//! master held. The test makes that loss certain instead of lucky: before
//! the kill, the replica is made to evict some timelines on its own (a
//! replica short of memory does so when `replica-ignore-maxmemory` is off),
//! then given its memory back. Those timelines are gone with the master;
//! the others of the same master survive on the replica with their pushes.
//!
//! Its own test binary: it kills a cluster node, which no other test may
//! see. The next `deploy/backends.sh up redis-cluster` starts it again alone.

#[path = "api/helpers.rs"]
#[allow(dead_code)] // Shared with the api binary, which uses the rest.
mod helpers;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use chirp_test_support::{backends_script, eventually, stop_scale_out, use_redis_cluster};
use chirp_timeline_store::{State, layout};
use helpers::{Stack, TestUser, handle, spawn_stack_with};
use redis::Value;
use redis::aio::MultiplexedConnection;

/// Followers of the one author: with three masters, at least three of them
/// share one master, the one the test kills.
const FOLLOWERS: usize = 9;
/// Tweets posted before the kill, and while it happens.
const BEFORE: usize = 3;
const DURING: usize = 6;
const WAIT: Duration = Duration::from_secs(60);

#[tokio::test]
async fn a_killed_masters_timelines_lose_no_tweet_and_the_ones_it_took_are_rebuilt_on_read() {
    use_redis_cluster();
    let stack = spawn_stack_with(&["--rate-limit-burst", "1000"]).await;
    let timelines = stack.timelines().await;
    let author = stack.sign_up(&handle("author")).await;
    let mut followers = Vec::new();
    for _ in 0..FOLLOWERS {
        let follower = stack.sign_up(&handle("fan")).await;
        stack.follow(&follower, &author).await;
        followers.push(follower);
    }

    // Which master holds each follower's timeline; the victim is the master
    // holding the most of them.
    let shards = shards().await;
    let mut by_master: BTreeMap<u16, Vec<&TestUser>> = BTreeMap::new();
    for follower in &followers {
        let key = layout::timeline_key(&stack.redis_prefix, follower.numeric_id());
        by_master
            .entry(master_of(&shards, &key).await.master)
            .or_default()
            .push(follower);
    }
    let (&victim, on_victim) = by_master
        .iter()
        .max_by_key(|(_, users)| users.len())
        .unwrap();
    let replica = shards.iter().find(|s| s.master == victim).unwrap().replica;
    let (lost, kept) = on_victim.split_at(on_victim.len() / 2);
    let elsewhere: Vec<&TestUser> = by_master
        .iter()
        .filter(|&(&master, _)| master != victim)
        .flat_map(|(_, users)| users.iter().copied())
        .collect();
    assert!(!lost.is_empty() && !kept.is_empty());

    // The lost ones' timelines are cached, reach the replica, and the
    // replica evicts them: its master keeps them, it does not.
    let key = |user_id: i64| layout::timeline_key(&stack.redis_prefix, user_id);
    for user in lost {
        assert!(
            stack.home_timeline(user, "").await["items"]
                .as_array()
                .unwrap()
                .is_empty()
        );
    }
    let mut on_replica = node(replica).await;
    let () = redis::cmd("READONLY")
        .query_async(&mut on_replica)
        .await
        .unwrap();
    let count_on_replica = |keys: Vec<String>| {
        let mut on_replica = on_replica.clone();
        async move {
            let mut present = 0;
            for key in keys {
                let exists: bool = redis::cmd("EXISTS")
                    .arg(key)
                    .query_async(&mut on_replica)
                    .await
                    .unwrap();
                present += usize::from(exists);
            }
            present
        }
    };
    let lost_keys: Vec<String> = lost.iter().map(|user| key(user.numeric_id())).collect();
    let count_on_replica = &count_on_replica;
    eventually(WAIT, "the replica to hold the lost ones", || {
        let keys = lost_keys.clone();
        async move { (count_on_replica(keys).await == lost.len()).then_some(()) }
    })
    .await;
    config_set(
        on_replica.clone(),
        &[("replica-ignore-maxmemory", "no"), ("maxmemory", "100kb")],
    )
    .await;
    eventually(WAIT, "the replica to evict them", || {
        let keys = lost_keys.clone();
        async move { (count_on_replica(keys).await == 0).then_some(()) }
    })
    .await;
    config_set(
        on_replica.clone(),
        &[("maxmemory", "1gb"), ("replica-ignore-maxmemory", "yes")],
    )
    .await;

    // The others are cached, and get the first tweets on the master and,
    // by replication, on the replica.
    let readers: Vec<&TestUser> = kept.iter().chain(&elsewhere).copied().collect();
    for user in &readers {
        stack.home_timeline(user, "").await;
    }
    let mut posted = Vec::new();
    for n in 0..BEFORE {
        posted.push(post(&stack, &author, &format!("before {n}")).await);
    }
    for user in &readers {
        wait_for_timeline(&stack, user, &posted).await;
    }
    let kept_keys: Vec<String> = kept.iter().map(|user| key(user.numeric_id())).collect();
    let newest = layout::encode(posted.last().unwrap().parse().unwrap());
    eventually(WAIT, "the replica to hold the pushes", || {
        let (mut on_replica, keys) = (on_replica.clone(), kept_keys.clone());
        async move {
            for key in keys {
                let score: Option<f64> = redis::cmd("ZSCORE")
                    .arg(&key)
                    .arg(&newest[..])
                    .query_async(&mut on_replica)
                    .await
                    .ok()?;
                score?;
            }
            Some(())
        }
    })
    .await;

    // Under load: the author posts and the readers read while the master
    // dies, until its replica serves and every reader has every tweet.
    let reading = AtomicBool::new(true);
    let failed_reads = AtomicUsize::new(0);
    let posting = async {
        for n in 0..DURING {
            if n == 2 {
                backends_script(&["kill", "redis-cluster", &victim.to_string()]);
            }
            posted.push(post(&stack, &author, &format!("during {n}")).await);
        }
        eventually(WAIT, "the replica to be promoted", || {
            let mut on_replica = on_replica.clone();
            async move {
                let role: Vec<Value> =
                    redis::cmd("ROLE").query_async(&mut on_replica).await.ok()?;
                (role.first() == Some(&Value::BulkString(b"master".to_vec()))).then_some(())
            }
        })
        .await;
        // Nothing is lost: every reader's timeline ends with every tweet.
        for user in &readers {
            wait_for_timeline(&stack, user, &posted).await;
        }
        reading.store(false, Ordering::Relaxed);
    };
    let load = async {
        while reading.load(Ordering::Relaxed) {
            for user in &readers {
                if read(&stack, user).await.is_none() {
                    failed_reads.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    };
    tokio::join!(posting, load);
    eprintln!(
        "reads not served while the master was down (each read again until served): {}",
        failed_reads.load(Ordering::Relaxed)
    );

    // The evicted timelines are gone with the master, and their first read
    // rebuilds them from the stores, whole.
    for user in lost {
        let cached = timelines.read(user.numeric_id(), None, 50).await.unwrap();
        assert_eq!(cached.state, State::Missing, "{} was lost", user.handle);
        wait_for_timeline(&stack, user, &posted).await;
        let cached = timelines.read(user.numeric_id(), None, 50).await.unwrap();
        assert!(matches!(cached.state, State::Complete { .. }), "rebuilt");
    }
    stop_scale_out("redis-cluster");
}

/// One master's slots and its replica, from `CLUSTER SLOTS`.
struct Shard {
    slots: (i64, i64),
    master: u16,
    replica: u16,
}

async fn node(port: u16) -> MultiplexedConnection {
    redis::Client::open(format!("redis://127.0.0.1:{port}"))
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

/// The cluster's shards, once each lists its replica: a member restarted by an
/// earlier test rejoins as a replica a moment after the cluster answers.
async fn shards() -> Vec<Shard> {
    let slots: Vec<Vec<Value>> =
        eventually(Duration::from_secs(60), "every shard's replica", || async {
            let slots: Vec<Vec<Value>> = redis::cmd("CLUSTER")
                .arg("SLOTS")
                .query_async(&mut node(6391).await)
                .await
                .unwrap();
            slots.iter().all(|range| range.len() > 3).then_some(slots)
        })
        .await;
    let port = |node: &Value| -> u16 {
        let Value::Array(fields) = node else {
            panic!("node {node:?}")
        };
        redis::from_redis_value_ref(&fields[1]).unwrap()
    };
    slots
        .iter()
        .map(|range| Shard {
            slots: (
                redis::from_redis_value_ref(&range[0]).unwrap(),
                redis::from_redis_value_ref(&range[1]).unwrap(),
            ),
            master: port(&range[2]),
            replica: port(&range[3]),
        })
        .collect()
}

async fn master_of<'a>(shards: &'a [Shard], key: &str) -> &'a Shard {
    let slot: i64 = redis::cmd("CLUSTER")
        .arg("KEYSLOT")
        .arg(key)
        .query_async(&mut node(6391).await)
        .await
        .unwrap();
    shards
        .iter()
        .find(|shard| (shard.slots.0..=shard.slots.1).contains(&slot))
        .unwrap()
}

async fn config_set(mut node: MultiplexedConnection, settings: &[(&str, &str)]) {
    for (name, value) in settings {
        let () = redis::cmd("CONFIG")
            .arg("SET")
            .arg(name)
            .arg(value)
            .query_async(&mut node)
            .await
            .unwrap();
    }
}

/// Posts and returns the tweet's id; a post never touches Redis but for
/// the rate limiter, which lets writes through when Redis does not answer.
async fn post(stack: &Stack, author: &TestUser, content: &str) -> String {
    stack.post(author, content).await["id"]
        .as_str()
        .expect("tweet id")
        .to_owned()
}

/// A page of `user`'s timeline, or `None` if it was not served.
async fn read(stack: &Stack, user: &TestUser) -> Option<Vec<String>> {
    let page = stack
        .gateway
        .home_timeline(user.numeric_id(), &user.token, None, Some(50))
        .await
        .ok()?;
    Some(page.items.iter().map(|item| item.id.to_string()).collect())
}

/// Waits until `user`'s timeline is exactly `posted`, newest first, reading
/// it again after any failed read.
async fn wait_for_timeline(stack: &Stack, user: &TestUser, posted: &[String]) {
    let expected: Vec<String> = posted.iter().rev().cloned().collect();
    let expected = &expected;
    eventually(
        WAIT,
        &format!("{}'s timeline to hold every tweet", user.handle),
        || async move { (read(stack, user).await.as_ref() == Some(expected)).then_some(()) },
    )
    .await;
}
