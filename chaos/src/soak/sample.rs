//! What the soak reads from the system each interval, besides what its own
//! clients saw: the curves that must stay flat.
//!
//! - consumer lag and dead letters, from the fan-out workers' `/metrics`
//!   (summed over instances);
//! - outbox depth and the age of its oldest event, from the tweet store
//!   itself (a bounded read of each shard's partition from the relay's own
//!   checkpoint on, so that the sampler never reads through the tombstones
//!   of what was relayed, which is the defect it watches for): the relay's
//!   backlog as the store holds it;
//! - Redis used memory, from `INFO memory` (summed over the nodes of a
//!   Redis Cluster: masters and their replicas' copies);
//! - the resident memory of every process of the stack, from `/proc` via
//!   the pid files the scripts write.
//!
//! Every reading is optional: a backend that is down for a fault leaves a
//! gap in its curve, not a failed soak.

use std::collections::BTreeMap;
use std::time::Duration;

use chirp_domain::ids::{now_ms, timestamp_ms};
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use scylla::statement::Statement;
use serde::Serialize;

use crate::stack::Stack;
use chirp_load::prometheus::Scrape;

/// The fan-out worker's metrics slot in run-local.sh.
const FANOUT_SLOT: u16 = 4;
/// Gauge: messages behind the log end, per partition.
const CONSUMER_LAG: &str = "chirp_fanout_consumer_lag";
/// Counter of events by outcome; `dead_lettered` are the dead letters.
const FANOUT_EVENTS: &str = "chirp_fanout_events_total";
/// The outbox's shards (the tweet service's `SHARDS`).
const OUTBOX_SHARDS: i32 = 8;
/// Rows read per shard at most: a depth at this cap reads "at least".
pub const OUTBOX_READ_CAP: usize = 10_000;
/// A reading that takes longer is a gap.
const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// One interval's readings.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SystemSample {
    pub consumer_lag: Option<f64>,
    /// Since the workers started (a restarted worker counts from zero).
    pub dead_letters: Option<f64>,
    pub outbox_depth: Option<u64>,
    pub outbox_oldest_secs: Option<f64>,
    pub redis_used_bytes: Option<u64>,
    /// Resident memory by process (pid file name).
    pub rss_bytes: BTreeMap<String, u64>,
}

/// Connections the sampler keeps between readings.
pub struct Sampler {
    http: reqwest::Client,
    /// The single node, or every node of the cluster.
    redis: Vec<redis::Client>,
    cql: Option<Session>,
    keyspace: String,
}

impl Sampler {
    pub async fn new(stack: &Stack, keyspace: &str) -> Self {
        let redis = stack
            .redis_ports()
            .into_iter()
            .filter_map(|port| redis::Client::open(format!("redis://127.0.0.1:{port}")).ok())
            .collect();
        let cql = SessionBuilder::new()
            .known_node(format!("127.0.0.1:{}", stack.cql_port))
            .build()
            .await
            .ok();
        Self {
            http: reqwest::Client::new(),
            redis,
            cql,
            keyspace: keyspace.to_owned(),
        }
    }

    pub async fn sample(&self, stack: &Stack) -> SystemSample {
        let mut sample = SystemSample::default();
        let mut lag = None;
        let mut dead = None;
        for n in 0..stack.replicas {
            let url = stack.metrics_url(FANOUT_SLOT, n);
            if let Ok(scrape) = Scrape::fetch(&self.http, &url).await {
                // Each worker measures the whole group's lag (every
                // partition), so the workers' readings are alternatives,
                // not shares: the largest is the freshest bad news.
                let reading = scrape.total(CONSUMER_LAG, &[]);
                lag = Some(lag.map_or(reading, |seen: f64| seen.max(reading)));
                *dead.get_or_insert(0.0) +=
                    scrape.total(FANOUT_EVENTS, &["outcome=\"dead_lettered\""]);
            }
        }
        (sample.consumer_lag, sample.dead_letters) = (lag, dead);
        sample.redis_used_bytes = self.redis_memory().await;
        if let Some((depth, oldest)) = self.outbox().await {
            sample.outbox_depth = Some(depth);
            sample.outbox_oldest_secs = oldest;
        }
        for (name, pid) in stack.processes() {
            if let Some(rss) = rss_bytes(pid) {
                sample.rss_bytes.insert(name, rss);
            }
        }
        sample
    }

    /// Summed over the nodes that answer; None if none does.
    async fn redis_memory(&self) -> Option<u64> {
        let mut total = None;
        for client in &self.redis {
            if let Some(used) = Self::used_memory(client).await {
                *total.get_or_insert(0) += used;
            }
        }
        total
    }

    async fn used_memory(client: &redis::Client) -> Option<u64> {
        let read = async {
            let mut connection = client.get_multiplexed_async_connection().await.ok()?;
            let info: String = redis::cmd("INFO")
                .arg("memory")
                .query_async(&mut connection)
                .await
                .ok()?;
            info.lines()
                .find_map(|line| line.strip_prefix("used_memory:"))
                .and_then(|value| value.trim().parse().ok())
        };
        tokio::time::timeout(READ_TIMEOUT, read)
            .await
            .ok()
            .flatten()
    }

    /// Where the relay's reads of `shard` start (0 before its first save).
    async fn checkpoint(&self, session: &Session, shard: i32) -> Option<i64> {
        let mut statement = Statement::new(format!(
            "SELECT scan_from FROM {}.tweet_outbox_checkpoints WHERE shard = ?",
            self.keyspace
        ));
        statement.set_request_timeout(Some(READ_TIMEOUT));
        let result = session.query_unpaged(statement, (shard,)).await.ok()?;
        let rows = result.into_rows_result().ok()?;
        let scan_from = rows
            .maybe_first_row::<(Option<i64>,)>()
            .ok()?
            .and_then(|(scan_from,)| scan_from);
        Some(scan_from.unwrap_or(0))
    }

    /// Rows waiting in the outbox (up to the cap per shard) and the age of
    /// the oldest.
    async fn outbox(&self) -> Option<(u64, Option<f64>)> {
        let session = self.cql.as_ref()?;
        let mut depth = 0;
        let mut oldest: Option<i64> = None;
        for shard in 0..OUTBOX_SHARDS {
            let scan_from = self.checkpoint(session, shard).await?;
            let mut statement = Statement::new(format!(
                "SELECT event_id FROM {}.tweet_outbox WHERE shard = ? AND event_id >= ? \
                 LIMIT {OUTBOX_READ_CAP}",
                self.keyspace
            ));
            statement.set_request_timeout(Some(READ_TIMEOUT));
            let result = session
                .query_unpaged(statement, (shard, scan_from))
                .await
                .ok()?;
            let rows = result.into_rows_result().ok()?;
            let ids: Vec<i64> = rows
                .rows::<(i64,)>()
                .ok()?
                .filter_map(|row| row.ok().map(|(id,)| id))
                .collect();
            depth += ids.len() as u64;
            if let Some(&first) = ids.first() {
                oldest = Some(oldest.map_or(first, |o| o.min(first)));
            }
        }
        let age = oldest.map(|id| (now_ms() - timestamp_ms(id)).max(0) as f64 / 1000.0);
        Some((depth, age))
    }
}

/// `VmRSS` of a process, in bytes.
fn rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}
