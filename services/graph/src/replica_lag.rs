//! How far behind the primary the read replica is, measured every second
//! and exported as `chirp_graph_replica_lag_seconds{replica="host:port"}`.
//!
//! The reads that go to the replica (a profile's followers, [`crate::store`])
//! are as stale as the replica is behind, so that is the figure to watch. It
//! is measured on the replica itself, by the pool those reads use:
//! `now() - pg_last_xact_replay_timestamp()` while the replica has received
//! WAL it has not replayed yet, and 0 once it has replayed all it received.
//! Taken alone that difference grows while the primary is idle, when nothing
//! is behind at all; the comparison of the two WAL positions is what tells
//! idle from behind. While it is behind, the figure is an upper bound: the
//! age of the newest commit it has replayed, which overstates the lag by the
//! quiet time before the first unreplayed commit.
//!
//! Not the primary's `pg_stat_replication.replay_lag`: that is computed from
//! the standby's replies, so it stops moving while replay is paused or the
//! standby is cut off (it shows the last lag it saw, not the growing one),
//! it resets to null when the standby idles, and the primary would have to
//! be told which of its walsenders is this service's replica. Measured from
//! the replica, the figure is the staleness the reads there actually get,
//! from the same connection pool. (Both clocks are the primary's commit
//! timestamp and the replica's `now()`: across machines, their skew is in it.)
//!
//! Without `DATABASE_READ_URL` nothing is measured and no series is
//! exported. A read URL that turns out not to be a replica (not in
//! recovery) is logged once and not measured either; a measurement that
//! fails exports NaN (unknown) until one succeeds, rather than leave the
//! last good value standing for a replica that stopped answering.

use std::future::Future;
use std::str::FromStr;
use std::time::Duration;

use metrics::{Unit, describe_gauge, gauge};
use sqlx::PgPool;
use sqlx::postgres::PgConnectOptions;

/// Gauge, label `replica` (its host:port): seconds the replica is behind the
/// primary, 0 when it has replayed everything it received.
pub const REPLICA_LAG: &str = "chirp_graph_replica_lag_seconds";

/// How often the lag is measured: one cheap query on one pooled connection.
const MEASURE_EVERY: Duration = Duration::from_secs(1);

/// Watches one replica.
pub struct ReplicaLag {
    pool: PgPool,
    /// The `replica` label: host and port of its URL, never its credentials.
    replica: String,
}

/// What one measurement found.
#[derive(Debug, PartialEq)]
enum Reading {
    /// The server is not in recovery: a primary, not a replica.
    NotAReplica,
    /// Seconds behind; `None` when it has replayed no transaction yet.
    Behind(Option<f64>),
}

impl ReplicaLag {
    /// A watcher of the replica at `read_url`, through `pool` (the pool the
    /// replica's reads use).
    pub fn new(pool: PgPool, read_url: &str) -> Self {
        let replica = PgConnectOptions::from_str(read_url).map_or_else(
            |_| "replica".to_owned(),
            |options| format!("{}:{}", options.get_host(), options.get_port()),
        );
        Self { pool, replica }
    }

    /// Measures every [`MEASURE_EVERY`] until `shutdown` resolves.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        describe_gauge!(
            REPLICA_LAG,
            Unit::Seconds,
            "Seconds the graph's read replica is behind the primary (0: everything received is replayed)."
        );
        let lag = gauge!(REPLICA_LAG, "replica" => self.replica.clone());
        tokio::pin!(shutdown);
        loop {
            match self.measure().await {
                Ok(Reading::Behind(Some(seconds))) => lag.set(seconds.max(0.0)),
                Ok(Reading::Behind(None)) => lag.set(f64::NAN),
                Ok(Reading::NotAReplica) => {
                    tracing::warn!(replica = %self.replica,
                        "DATABASE_READ_URL is not in recovery (not a replica): its lag is not measured");
                    lag.set(f64::NAN);
                    return;
                }
                Err(error) => {
                    tracing::warn!(replica = %self.replica, %error, "replica lag not measured");
                    lag.set(f64::NAN);
                }
            }
            tokio::select! {
                () = &mut shutdown => return,
                () = tokio::time::sleep(MEASURE_EVERY) => {}
            }
        }
    }

    async fn measure(&self) -> Result<Reading, sqlx::Error> {
        let (in_recovery, lag): (bool, Option<f64>) = sqlx::query_as(
            "SELECT pg_is_in_recovery(), \
             CASE WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0::float8 \
             ELSE extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float8 END",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(if in_recovery {
            Reading::Behind(lag)
        } else {
            Reading::NotAReplica
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The label names the replica by address only: a password in the URL
    /// never reaches the metrics.
    #[tokio::test]
    async fn the_replica_is_labelled_by_host_and_port_only() {
        let pool = PgPool::connect_lazy("postgres://postgres@127.0.0.1:5442/x").unwrap();
        let lag = ReplicaLag::new(pool, "postgres://reader:secret@10.0.0.7:5433/chirp");
        assert_eq!(lag.replica, "10.0.0.7:5433");
    }

    /// The primary of this run is not in recovery: a read URL pointing at
    /// it is not a replica, and no lag is made up for it.
    #[tokio::test]
    async fn a_primary_is_not_measured_as_a_replica() {
        let url = chirp_test_support::fresh_database().await;
        let pool = PgPool::connect(&url).await.unwrap();
        let lag = ReplicaLag::new(pool, &url);
        assert_eq!(lag.measure().await.unwrap(), Reading::NotAReplica);
    }
}
