//! The transactional outbox: tweet events saved in the CQL store, in the same
//! logged batch as the write they announce, for the [`crate::relay`] to hand
//! to Kafka afterwards.
//!
//! # Why an outbox, and not publish-first with a reconciler
//!
//! Writing the tweet and then publishing its event is two systems and no
//! transaction: a process that dies in between, or a broker that is down
//! past the producer's timeout, leaves a tweet that exists but never reaches
//! its followers' timelines. Publishing first turns that around (an event
//! for a tweet that was never written, or a delete for a tweet that still
//! exists) and then needs a reconciler that scans the store and the log for
//! disagreements: more moving parts, and a window during which consumers act
//! on events the store contradicts. An outbox row instead commits or fails
//! with the tweet itself (a *logged* batch: Cassandra writes it to its
//! batchlog first and replays it until every statement applied), so the
//! store is the one source of truth and the log follows it. The price: a
//! request no longer waits for Kafka, so an event reaches the log a few
//! hundred milliseconds later, and a Kafka outage delays fan-out instead of
//! failing posts.
//!
//! # Layout
//!
//! `tweet_outbox` is partitioned by *shard* (`author_id mod` [`SHARDS`]) and
//! clustered by event id, so one author's events sit in one partition, in
//! order. A create's event id is the tweet id; a delete's is a fresh id and
//! always above the tweet's, so a tweet's delete sorts after its create on
//! every instance, whatever the clocks say. Two creates of one author made
//! on two instances are ordered by those instances' clocks; nobody can tell,
//! since they are independent.
//!
//! A relayed row is deleted, which in Cassandra is a tombstone that reads
//! skip over until compaction purges it (after `gc_grace_seconds`). A queue
//! is the classic way to fill a partition with tombstones, so the relay
//! reads from just behind the last row it deleted, not from the start (see
//! [`crate::relay`]), and the table keeps tombstones 3 hours, Cassandra's
//! default hint window, instead of 10 days: a replica that missed a delete
//! for longer could resurrect the row, and the only harm is one event sent
//! twice, which consumers absorb.
//!
//! `tweet_outbox_leases` says which instance relays which shard: a row per
//! shard, claimed and renewed with lightweight transactions and a TTL, so a
//! dead owner's shards free themselves.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use anyhow::Context;
use scylla::DeserializeRow;
use scylla::client::session::Session;
use scylla::statement::prepared::PreparedStatement;
use scylla::value::{CqlValue, Row};

use crate::TweetError;
use crate::store;

/// Shards of the outbox: how many relays can work in parallel across the
/// fleet. Every instance must agree on it (it decides an author's
/// partition), so it is a constant, not a setting.
pub const SHARDS: i32 = 8;

/// How long a lease lasts unless renewed.
pub const LEASE_TTL: Duration = Duration::from_secs(10);

pub const CREATE_TABLES: [&str; 2] = [
    "CREATE TABLE IF NOT EXISTS tweet_outbox (
        shard int,
        event_id bigint,
        tweet_id bigint,
        author_id bigint,
        deleted boolean,
        trace map<text, text>,
        PRIMARY KEY (shard, event_id, tweet_id)
    ) WITH gc_grace_seconds = 10800",
    "CREATE TABLE IF NOT EXISTS tweet_outbox_leases (
        shard int PRIMARY KEY,
        owner text
    )",
];

/// The statement that saves an event; store.rs puts it in the batch of the
/// write the event announces. Its values are [`EventRow`] plus a write
/// timestamp.
pub const ENQUEUE: &str = "INSERT INTO tweet_outbox (shard, event_id, tweet_id, author_id, deleted, trace) \
     VALUES (?, ?, ?, ?, ?, ?) USING TIMESTAMP ?";

/// An event waiting in the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingEvent {
    pub shard: i32,
    pub event_id: i64,
    pub tweet_id: i64,
    pub author_id: i64,
    /// `TweetDeleted` when true, `TweetCreated` otherwise.
    pub deleted: bool,
    /// The trace context of the request that caused it (see
    /// `chirp_common::trace_context::fields`); an empty map is stored as null.
    pub trace: HashMap<String, String>,
}

/// The shard that holds `author_id`'s events.
pub fn shard(author_id: i64) -> i32 {
    i32::try_from(author_id.rem_euclid(i64::from(SHARDS))).expect("a shard fits in an i32")
}

/// Reads, deletes and leases outbox rows: what the relay does. Writing them
/// is the store's, inside its batches.
pub struct Outbox {
    pending: PreparedStatement,
    held: PreparedStatement,
    remove: PreparedStatement,
    acquire: PreparedStatement,
    renew: PreparedStatement,
    release: PreparedStatement,
}

/// A row as read back: CQL stores an empty map as null.
#[derive(DeserializeRow)]
struct PendingRow {
    shard: i32,
    event_id: i64,
    tweet_id: i64,
    author_id: i64,
    deleted: bool,
    trace: Option<HashMap<String, String>>,
}

impl Outbox {
    pub async fn prepare(session: &Session) -> anyhow::Result<Self> {
        let prepare = |cql: &'static str, idempotent: bool| async move {
            let mut statement = session
                .prepare(cql)
                .await
                .with_context(|| format!("prepare {cql}"))?;
            statement.set_is_idempotent(idempotent);
            anyhow::Ok(statement)
        };
        Ok(Self {
            pending: prepare(
                "SELECT shard, event_id, tweet_id, author_id, deleted, trace FROM tweet_outbox \
                 WHERE shard = ? AND event_id >= ? LIMIT ?",
                true,
            )
            .await?,
            held: prepare("SELECT shard FROM tweet_outbox_leases", true).await?,
            remove: prepare(
                "DELETE FROM tweet_outbox USING TIMESTAMP ? \
                 WHERE shard = ? AND event_id = ? AND tweet_id = ?",
                true,
            )
            .await?,
            // Lightweight transactions are never retried by the driver: a
            // resent claim would find its own first attempt and fail.
            acquire: prepare(
                "INSERT INTO tweet_outbox_leases (shard, owner) VALUES (?, ?) IF NOT EXISTS USING TTL ?",
                false,
            )
            .await?,
            renew: prepare(
                "UPDATE tweet_outbox_leases USING TTL ? SET owner = ? WHERE shard = ? IF owner = ?",
                false,
            )
            .await?,
            release: prepare(
                "DELETE FROM tweet_outbox_leases WHERE shard = ? IF owner = ?",
                false,
            )
            .await?,
        })
    }

    /// Up to `limit` events of `shard` from event id `from` on, oldest first.
    pub async fn pending(
        &self,
        session: &Session,
        shard: i32,
        from: i64,
        limit: i32,
    ) -> Result<Vec<PendingEvent>, TweetError> {
        let result = session
            .execute_unpaged(&self.pending, (shard, from, limit))
            .await?
            .into_rows_result()?;
        let rows = result.rows::<PendingRow>()?;
        rows.map(|row| {
            let row = row?;
            Ok(PendingEvent {
                shard: row.shard,
                event_id: row.event_id,
                tweet_id: row.tweet_id,
                author_id: row.author_id,
                deleted: row.deleted,
                trace: row.trace.unwrap_or_default(),
            })
        })
        .collect()
    }

    /// Forgets an event the broker acknowledged.
    pub async fn remove(&self, session: &Session, event: &PendingEvent) -> Result<(), TweetError> {
        session
            .execute_unpaged(
                &self.remove,
                (
                    store::delete_timestamp(event.event_id),
                    event.shard,
                    event.event_id,
                    event.tweet_id,
                ),
            )
            .await?;
        Ok(())
    }

    /// The shards somebody holds: a plain read of a few rows, so that an
    /// instance tries a lightweight transaction only on shards that look free.
    pub async fn held_shards(&self, session: &Session) -> Result<HashSet<i32>, TweetError> {
        let result = session
            .execute_unpaged(&self.held, ())
            .await?
            .into_rows_result()?;
        let held = result.rows::<(i32,)>()?;
        held.map(|row| Ok(row?.0)).collect()
    }

    /// Takes `shard` for `owner` if nobody holds it.
    pub async fn acquire(
        &self,
        session: &Session,
        shard: i32,
        owner: &str,
    ) -> Result<bool, TweetError> {
        let ttl = lease_ttl_seconds();
        applied(
            session
                .execute_unpaged(&self.acquire, (shard, owner, ttl))
                .await?,
        )
    }

    /// Extends `owner`'s lease on `shard`; false if it is no longer theirs.
    pub async fn renew(
        &self,
        session: &Session,
        shard: i32,
        owner: &str,
    ) -> Result<bool, TweetError> {
        let ttl = lease_ttl_seconds();
        applied(
            session
                .execute_unpaged(&self.renew, (ttl, owner, shard, owner))
                .await?,
        )
    }

    /// Gives `shard` up, so that another instance can take it at once.
    pub async fn release(
        &self,
        session: &Session,
        shard: i32,
        owner: &str,
    ) -> Result<(), TweetError> {
        session
            .execute_unpaged(&self.release, (shard, owner))
            .await?;
        Ok(())
    }
}

fn lease_ttl_seconds() -> i32 {
    i32::try_from(LEASE_TTL.as_secs()).expect("a lease lasts seconds")
}

/// The `[applied]` flag of a lightweight transaction. Cassandra answers a
/// success with that column alone and a failure with the current row too;
/// ScyllaDB always adds the row: the first column is the flag either way.
fn applied(result: scylla::response::query_result::QueryResult) -> Result<bool, TweetError> {
    let row: Row = result.into_rows_result()?.single_row()?;
    match row.columns.first() {
        Some(Some(CqlValue::Boolean(applied))) => Ok(*applied),
        _ => Err(TweetError::CqlResult(
            "a lightweight transaction without its [applied] flag".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_author_always_maps_to_the_same_shard_in_range() {
        for author_id in [1, 7, 8, 9, 1_000_003, i64::MAX] {
            let shard = shard(author_id);
            assert!((0..SHARDS).contains(&shard));
            assert_eq!(shard, super::shard(author_id));
        }
        assert_ne!(shard(1), shard(2));
    }
}
