//! The CQL session the tweet tables ([`crate::store`]) and the outbox
//! ([`crate::outbox`]) share: connecting, creating the schema, preparing
//! statements, and the write timestamps every write carries.
//!
//! Statements are prepared once at start: the cluster parses them once, and
//! the driver learns each one's partition key and sends every request straight
//! to a replica that owns it.
//!
//! Every write of a tweet's rows carries the tweet's creation time as its
//! write timestamp, and every delete a later one. Cassandra keeps the cell
//! with the newest timestamp, so a replayed create racing a delete can
//! rewrite the rows as often as it likes: the delete still wins.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use chirp_domain::ids::{now_ms, timestamp_ms};
use scylla::client::execution_profile::ExecutionProfile;
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use scylla::serialize::row::SerializeRow;
use scylla::statement::Statement;
use scylla::statement::prepared::PreparedStatement;

/// A statement and the values of one of its rows, for a batch (the outbox's
/// writes, the bulk import).
pub type Write<'a> = (
    &'a PreparedStatement,
    Box<dyn SerializeRow + Send + Sync + 'a>,
);

/// Client-side bound on any one request, retries included. Cassandra's own
/// write timeout is 2 s; a little more lets its answer arrive first.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(3);

/// Schema changes wait for every node to agree, which takes seconds.
const SCHEMA_TIMEOUT: Duration = Duration::from_secs(60);

/// Connects, and creates the keyspace and `tables` unless they exist.
///
/// `IF NOT EXISTS` makes a restart harmless; two instances creating the
/// same table for the first time at the same moment is not, on Cassandra,
/// so a fleet's first start should be one instance (or a migration job).
pub async fn connect(
    nodes: &[String],
    keyspace: &str,
    replication_factor: u32,
    tables: &[&str],
) -> anyhow::Result<Arc<Session>> {
    let profile = ExecutionProfile::builder()
        .request_timeout(Some(REQUEST_TIMEOUT))
        .build();
    let session = SessionBuilder::new()
        .known_nodes(nodes)
        .connection_timeout(Duration::from_secs(3))
        .default_execution_profile_handle(profile.into_handle())
        .build()
        .await
        .with_context(|| format!("connect to the CQL cluster at {}", nodes.join(",")))?;
    create_schema(&session, keyspace, replication_factor, tables).await?;
    Ok(Arc::new(session))
}

/// The keyspace uses `NetworkTopologyStrategy`, the one strategy both
/// Cassandra and current ScyllaDB accept (ScyllaDB is dropping
/// `SimpleStrategy`); `replication_factor` applies to every datacenter. On
/// ScyllaDB the keyspace must not use tablets, with which many ScyllaDB
/// versions refuse the lightweight transaction behind idempotency keys: the
/// compose file starts ScyllaDB with tablets off.
async fn create_schema(
    session: &Session,
    keyspace: &str,
    replication_factor: u32,
    tables: &[&str],
) -> anyhow::Result<()> {
    let create_keyspace = format!(
        "CREATE KEYSPACE IF NOT EXISTS {keyspace} WITH replication = \
         {{'class': 'NetworkTopologyStrategy', 'replication_factor': {replication_factor}}}"
    );
    session
        .query_unpaged(schema_statement(create_keyspace), ())
        .await
        .with_context(|| format!("create keyspace {keyspace}"))?;
    session
        .use_keyspace(keyspace, false)
        .await
        .with_context(|| format!("use keyspace {keyspace}"))?;
    for table in tables {
        session
            .query_unpaged(schema_statement((*table).to_owned()), ())
            .await
            .with_context(|| format!("create table in {keyspace}"))?;
    }
    session
        .await_schema_agreement()
        .await
        .context("wait for the cluster to agree on the schema")?;
    Ok(())
}

fn schema_statement(cql: String) -> Statement {
    let mut statement = Statement::new(cql);
    statement.set_request_timeout(Some(SCHEMA_TIMEOUT));
    statement
}

/// Prepares `cql`. The driver only retries (or speculatively re-sends)
/// statements marked idempotent; a lightweight transaction is not: sent
/// twice, the second attempt would find the first one's row and fail.
pub async fn prepare(
    session: &Session,
    cql: &'static str,
    idempotent: bool,
) -> anyhow::Result<PreparedStatement> {
    let mut statement = session
        .prepare(cql)
        .await
        .with_context(|| format!("prepare {cql}"))?;
    statement.set_is_idempotent(idempotent);
    Ok(statement)
}

/// The write timestamp (microseconds) of every write of a tweet's rows: its
/// creation time, the same on every attempt. An outbox row is written at
/// its event id's.
pub fn write_timestamp(id: i64) -> i64 {
    timestamp_ms(id) * 1000
}

/// The write timestamp of a delete: now, and in any case later than the
/// writes it must shadow, even if this host's clock lags the one that
/// created the tweet (or the outbox row, for an event id).
pub fn delete_timestamp(id: i64) -> i64 {
    (now_ms() * 1000).max(write_timestamp(id) + 1)
}

#[cfg(test)]
mod tests {
    use chirp_domain::ids::Snowflake;

    use super::*;

    #[test]
    fn deletes_shadow_every_write_of_the_tweet() {
        let tweet_id = Snowflake::new(0).next_id();
        assert!(delete_timestamp(tweet_id) > write_timestamp(tweet_id));
        let from_the_future = tweet_id + (3_600_000 << 22);
        assert!(delete_timestamp(from_the_future) > write_timestamp(from_the_future));
    }
}
