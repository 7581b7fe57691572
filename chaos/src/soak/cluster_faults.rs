//! The soak's faults on the scale-out backends (a stack run with
//! `--clusters`): a broker of the three-broker Kafka killed, a Redis Cluster
//! master killed, the Postgres replica made to lag.
//!
//! Each takes the operator's way back — one member restarted alone on its
//! own data with `deploy/backends.sh restart`, never the whole cluster
//! made anew (issue 19's defect 7) — and then watches, from outside, for
//! the moment the cluster is whole again: every partition's replicas back
//! in sync, the old master a replica of the new one, the replica's listing
//! showing what the primary committed while it was paused. What each saw
//! comes back as one sentence for the report; a recovery not seen within
//! [`RECOVERY_LIMIT`] is the fault's error, which fails the soak.

use std::future::Future;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail, ensure};
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};

use crate::clusters::Clusters;
use crate::stack::{Process, Stack};
use crate::workload::{Caller, User};

/// How long a killed broker stays down: long enough that the partitions it
/// led move and the producers and the consumer group notice.
const BROKER_DOWN: Duration = Duration::from_secs(30);
/// How long the replica's replay stays paused.
const REPLICA_PAUSED: Duration = Duration::from_secs(30);
/// How long after its way back a cluster may take to be whole again.
const RECOVERY_LIMIT: Duration = Duration::from_secs(180);
/// One reading of a cluster's state gives up after this.
const READ_TIMEOUT: Duration = Duration::from_secs(10);
const POLL: Duration = Duration::from_millis(500);

/// SIGKILL of broker `which % 3 + 1`, down for [`BROKER_DOWN`] (by then
/// some partition must have dropped it from its in-sync replicas), restarted
/// alone; recovered when every partition has all its replicas in sync.
pub async fn kill_kafka_broker(
    stack: &Stack,
    clusters: &Clusters,
    which: usize,
) -> anyhow::Result<String> {
    let node = (which % clusters.kafka_ports.len()) as u8 + 1;
    let others: Vec<u8> = (1..=clusters.kafka_ports.len() as u8)
        .filter(|n| *n != node)
        .collect();
    let pids = |nodes: &[u8]| -> anyhow::Result<Vec<u32>> {
        nodes
            .iter()
            .map(|n| stack.pid(Process::KafkaBroker(*n)))
            .collect()
    };
    let survivors = pids(&others)?;
    let consumer: Arc<BaseConsumer> = Arc::new(
        ClientConfig::new()
            .set("bootstrap.servers", clusters.kafka_brokers())
            .create()
            .context("a Kafka client to read the cluster's metadata")?,
    );
    let pid = stack.signal(Process::KafkaBroker(node), "KILL")?;
    stack.exited(pid).await;
    tokio::time::sleep(BROKER_DOWN).await;
    // The cluster must have noticed, or "every replica in sync again" below
    // would be true of a cluster that never lost one.
    let shrunk = partitions_without(consumer.clone(), node).await;
    ensure!(
        shrunk > 0,
        "broker {node} was down {BROKER_DOWN:?}, yet no partition had dropped it from its in-sync replicas"
    );
    let restarting = Instant::now();
    stack
        .backends(&["restart", "kafka-cluster", &node.to_string()])
        .await?;
    let started = restarting.elapsed();
    ensure!(
        pids(&others)? == survivors,
        "restarting broker {node} restarted brokers {others:?} too"
    );
    let ((), in_sync) = wait_for(|| every_partition_in_sync(consumer.clone()))
        .await
        .ok_or_else(|| {
            anyhow!("broker {node} restarted, but some partition lacked a replica {RECOVERY_LIMIT:?} later")
        })?;
    Ok(format!(
        "SIGKILL broker {node} (pid {pid}), down {:.0} s, out of the in-sync replicas of \
         {shrunk} partitions by then; restarted alone on its own log in {:.1} s, brokers \
         {others:?} kept running; every partition's replicas in sync {:.1} s later",
        BROKER_DOWN.as_secs_f64(),
        started.as_secs_f64(),
        in_sync.as_secs_f64()
    ))
}

/// How many partitions list `node` as a replica but not as in sync (0 too
/// when the metadata cannot be read).
async fn partitions_without(consumer: Arc<BaseConsumer>, node: u8) -> usize {
    let read = tokio::task::spawn_blocking(move || {
        let metadata = consumer.fetch_metadata(None, READ_TIMEOUT).ok()?;
        let node = i32::from(node);
        Some(
            metadata
                .topics()
                .iter()
                .flat_map(|topic| topic.partitions())
                .filter(|p| p.replicas().contains(&node) && !p.isr().contains(&node))
                .count(),
        )
    });
    read.await.ok().flatten().unwrap_or(0)
}

/// Some when every partition of every topic has all its replicas in sync
/// (None too when the metadata cannot be read).
async fn every_partition_in_sync(consumer: Arc<BaseConsumer>) -> Option<()> {
    let read = tokio::task::spawn_blocking(move || {
        let metadata = consumer.fetch_metadata(None, READ_TIMEOUT).ok()?;
        Some(metadata.topics().iter().all(|topic| {
            topic.error().is_none()
                && topic
                    .partitions()
                    .iter()
                    .all(|p| p.error().is_none() && p.isr().len() == p.replicas().len())
        }))
    });
    matches!(read.await, Ok(Some(true))).then_some(())
}

/// SIGKILL of master `which % masters` of the Redis Cluster; recovered when
/// its replica has taken over, and again when the node, restarted alone,
/// has rejoined as a replica in sync.
pub async fn kill_redis_master(
    stack: &Stack,
    clusters: &Clusters,
    which: usize,
) -> anyhow::Result<String> {
    let nodes = cluster_nodes(clusters).await?;
    let masters: Vec<&Node> = nodes.iter().filter(|node| node.serves_slots).collect();
    ensure!(!masters.is_empty(), "no Redis Cluster master serves slots");
    let victim = masters[which % masters.len()];
    let replicas: Vec<u16> = nodes
        .iter()
        .filter(|node| node.replica_of.as_deref() == Some(victim.id.as_str()))
        .map(|node| node.port)
        .collect();
    ensure!(
        !replicas.is_empty(),
        "master {} has no replica to take over",
        victim.port
    );
    let pid = stack.signal(Process::RedisNode(victim.port), "KILL")?;
    stack.exited(pid).await;
    let live: Vec<u16> = clusters
        .redis_ports
        .iter()
        .copied()
        .filter(|port| *port != victim.port)
        .collect();
    let (promoted, failover) = wait_for(|| async {
        let mut promoted = None;
        for &port in &replicas {
            if role(port).await.as_deref() == Some("master") {
                promoted = Some(port);
            }
        }
        if cluster_ok(&live).await {
            promoted
        } else {
            None
        }
    })
    .await
    .ok_or_else(|| anyhow!("no replica of master {} took over", victim.port))?;
    let restarting = Instant::now();
    stack
        .backends(&["restart", "redis-cluster", &victim.port.to_string()])
        .await?;
    let script = restarting.elapsed();
    let ((), rejoined) = wait_for(|| async {
        let info = info_replication(victim.port).await.unwrap_or_default();
        (info.contains("role:slave") && info.contains("master_link_status:up")).then_some(())
    })
    .await
    .ok_or_else(|| {
        anyhow!(
            "master {} restarted but did not rejoin as a replica in sync",
            victim.port
        )
    })?;
    Ok(format!(
        "SIGKILL master {} (pid {pid}); its replica {promoted} took over {:.1} s later; \
         restarted alone on its own data, it rejoined as a replica in sync {:.1} s after the restart began",
        victim.port,
        failover.as_secs_f64(),
        (script + rejoined).as_secs_f64()
    ))
}

/// One line of `CLUSTER NODES`: who a node is and what it does.
#[derive(Debug)]
struct Node {
    id: String,
    port: u16,
    /// A master that is not failed and holds slots.
    serves_slots: bool,
    /// The id of its master, for a replica.
    replica_of: Option<String>,
}

/// The cluster as the first node that answers sees it.
async fn cluster_nodes(clusters: &Clusters) -> anyhow::Result<Vec<Node>> {
    for &port in &clusters.redis_ports {
        if let Some(text) = command(port, "CLUSTER", "NODES").await {
            return Ok(text.lines().filter_map(parse_node).collect());
        }
    }
    bail!("no Redis Cluster node answers CLUSTER NODES")
}

/// `<id> <ip:port@bus> <flags> <master> <ping> <pong> <epoch> <link> <slot>…`
fn parse_node(line: &str) -> Option<Node> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    let (id, address, flags, master) = (
        fields.first()?,
        fields.get(1)?,
        fields.get(2)?,
        fields.get(3)?,
    );
    let port = address
        .split('@')
        .next()?
        .rsplit(':')
        .next()?
        .parse()
        .ok()?;
    let failed = flags.split(',').any(|flag| flag == "fail");
    Some(Node {
        id: (*id).to_owned(),
        port,
        serves_slots: flags.contains("master") && !failed && fields.len() > 8,
        replica_of: (*master != "-").then(|| (*master).to_owned()),
    })
}

/// `cluster_state:ok` on every node of `ports`.
async fn cluster_ok(ports: &[u16]) -> bool {
    for &port in ports {
        let info = command(port, "CLUSTER", "INFO").await.unwrap_or_default();
        if !info.contains("cluster_state:ok") {
            return false;
        }
    }
    true
}

async fn role(port: u16) -> Option<String> {
    let info = info_replication(port).await?;
    info.lines()
        .find_map(|line| line.strip_prefix("role:"))
        .map(|role| role.trim().to_owned())
}

async fn info_replication(port: u16) -> Option<String> {
    command(port, "INFO", "replication").await
}

/// A two-word command to one node, its text answer; None if it does not
/// answer in time.
async fn command(port: u16, name: &str, arg: &str) -> Option<String> {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}")).ok()?;
    let ask = async {
        let mut connection = client.get_multiplexed_async_connection().await.ok()?;
        redis::cmd(name)
            .arg(arg)
            .query_async::<String>(&mut connection)
            .await
            .ok()
    };
    tokio::time::timeout(READ_TIMEOUT, ask).await.ok().flatten()
}

/// Replay paused on the replica for [`REPLICA_PAUSED`] while a follow is
/// committed on the primary and the graph serves follower listings from the
/// replica; recovered when, replay resumed, the listing shows the follow.
pub async fn lag_replica(
    stack: &Stack,
    clusters: &Clusters,
    caller: &Caller,
) -> anyhow::Result<String> {
    let prefix = chirp_load::seed::fresh_handle_prefix();
    let author = caller.sign_up(&format!("{prefix}lag_a")).await?;
    let fan = caller.sign_up(&format!("{prefix}lag_f")).await?;
    let replica = clusters.pg_replica_port;
    psql(replica, "SELECT pg_wal_replay_pause()").await?;
    let paused = async {
        wait_for(|| async {
            psql(replica, "SELECT pg_get_wal_replay_pause_state()")
                .await
                .is_ok_and(|state| state == "paused")
                .then_some(())
        })
        .await
        .ok_or_else(|| anyhow!("the replica's replay never paused"))?;
        let began = Instant::now();
        caller
            .retry(|| caller.gateway.follow(&fan.token, author.id))
            .await
            .map_err(|(failure, _)| anyhow!("follow: {}", failure.0))?;
        ensure!(
            !lists(caller, &author, fan.id).await?,
            "the paused replica's follower listing shows a follow made since: \
             the listing is not served from the replica"
        );
        tokio::time::sleep(REPLICA_PAUSED.saturating_sub(began.elapsed())).await;
        let primary_lsn = psql(stack.pg_port, "SELECT pg_current_wal_lsn()").await?;
        psql(
            replica,
            &format!("SELECT pg_wal_lsn_diff('{primary_lsn}', pg_last_wal_replay_lsn())"),
        )
        .await
    }
    .await;
    // Resumed whatever happened: a replica left paused lags for good.
    resume(replica).await?;
    let behind = paused?;
    let ((), caught_up) = wait_for(|| async {
        lists(caller, &author, fan.id)
            .await
            .unwrap_or(false)
            .then_some(())
    })
    .await
    .ok_or_else(|| anyhow!("the replica's listing never showed the follow after replay resumed"))?;
    Ok(format!(
        "replay paused on the replica for {:.0} s, {behind} bytes of WAL behind the primary at the \
         end; a follow committed meanwhile was missing from the follower listing it served; \
         replay resumed, the listing showed it {:.1} s later",
        REPLICA_PAUSED.as_secs_f64(),
        caught_up.as_secs_f64()
    ))
}

/// Resumes the replica's replay, and sees that it did. The resuming
/// statement itself can be cancelled ("conflict with recovery") by the very
/// replay it restarts, when that replay removes row versions a query on the
/// standby might see: so its answer proves nothing either way, and the
/// replay's state is what is read.
async fn resume(replica: u16) -> anyhow::Result<()> {
    wait_for(|| async {
        let _ = psql(replica, "SELECT pg_wal_replay_resume()").await;
        psql(replica, "SELECT pg_get_wal_replay_pause_state()")
            .await
            .is_ok_and(|state| state == "not paused")
            .then_some(())
    })
    .await
    .map(|_| ())
    .ok_or_else(|| anyhow!("the replica's replay could not be resumed"))
}

/// Whether `author`'s follower listing has `follower` (on its first page:
/// the fault's fresh author has no other follower).
async fn lists(caller: &Caller, author: &User, follower: i64) -> anyhow::Result<bool> {
    let page = caller
        .retry(|| caller.gateway.followers(author.id, None))
        .await
        .map_err(|(failure, _)| anyhow!("follower listing: {}", failure.0))?;
    Ok(page.items.iter().any(|profile| profile.id == follower))
}

/// One statement through psql as the stack's scripts connect (trust, user
/// postgres, database chirp); its single value.
async fn psql(port: u16, sql: &str) -> anyhow::Result<String> {
    let mut command = Command::new("psql");
    command.args([
        "-X",
        "-q",
        "-t",
        "-A",
        "-h",
        "127.0.0.1",
        "-U",
        "postgres",
        "-d",
        "chirp",
    ]);
    command.args(["-p", &port.to_string(), "-c", sql]);
    let output = tokio::task::spawn_blocking(move || command.output()).await??;
    ensure!(
        output.status.success(),
        "psql on :{port} `{sql}`: {}",
        String::from_utf8_lossy(&output.stderr).trim()
    );
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

/// Polls `done` until it gives a value or [`RECOVERY_LIMIT`] has passed;
/// the value and how long it took.
async fn wait_for<T, F, Fut>(mut done: F) -> Option<(T, Duration)>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let began = Instant::now();
    while began.elapsed() < RECOVERY_LIMIT {
        if let Some(value) = done().await {
            return Some((value, began.elapsed()));
        }
        tokio::time::sleep(POLL).await;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_nodes_lines_say_who_serves_slots_and_whom_a_replica_follows() {
        let master =
            parse_node("07c3 127.0.0.1:22391@32391 myself,master - 0 0 1 connected 0-5460")
                .expect("a master");
        assert_eq!((master.port, master.serves_slots), (22391, true));
        assert_eq!(master.replica_of, None);
        let replica =
            parse_node("e7d1 127.0.0.1:22394@32394 slave 07c3 0 1 1 connected").expect("a replica");
        assert_eq!(replica.replica_of.as_deref(), Some("07c3"));
        assert!(!replica.serves_slots);
        let failed = parse_node("07c3 127.0.0.1:22391@32391 master,fail - 0 0 1 disconnected")
            .expect("a failed master");
        assert!(!failed.serves_slots);
    }
}
