//! The transactional outbox: tweet events saved in the CQL store, in the same
//! logged batch as the write they announce, for the [`crate::relay`] to hand
//! to Kafka afterwards. This module owns every row of it: it creates the
//! tables, writes an event with the rows it announces ([`Outbox::write`]),
//! reads, leases, checkpoints and removes; nothing else touches them.
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
//! # Tombstones: a checkpoint per shard, and late events flagged by writers
//!
//! A relayed row is deleted, which in Cassandra is a tombstone that every
//! read of its range scans until compaction purges it (after
//! `gc_grace_seconds`, 3 hours here, Cassandra's default hint window: a
//! replica that missed a delete for longer could resurrect the row, and the
//! only harm is one event sent twice). Past `tombstone_failure_threshold`
//! (100 000 per read by default) a read fails outright, so the relay must
//! never read the range it already drained. Each shard has a durable
//! checkpoint (`tweet_outbox_checkpoints`): the event id below which every
//! row was relayed, or flagged as late. Reads start there, and so does a new
//! lease owner. The checkpoint trails the newest event by [`LOOKBACK`]
//! (rows become visible out of id order: instances' clocks differ, a batch
//! takes time), so a read scans the tombstones of that window only: bounded
//! by the event rate, never by the shard's history.
//!
//! A row written with an event id older than [`LATE_AFTER`] may land below
//! the checkpoint, where no read looks: a create replayed long after its
//! first attempt (the first attempt died before its batch). Its writer
//! knows it is late and adds a marker to `tweet_outbox_late` in the same
//! batch; the relay reads the markers and looks each row up by its key. A
//! replay of a create already relayed rewrites a row that the removal's
//! later tombstone shadows, so the lookup finds nothing and nothing is sent
//! twice, as before. Late markers are rare, so their own tombstones stay few.
//!
//! The alternative, partitions bucketed by time and never read again once
//! drained, bounds tombstones the same way, but a late row lands in its
//! (old) bucket all the same, so it needs the same markers; it also needs a
//! bucket walk in every read and a choice of bucket width that is right for
//! one rate only. A checkpoint is one row per shard.
//!
//! # Leases
//!
//! `tweet_outbox_leases` says which instance relays which shard: a row per
//! shard, claimed and renewed with lightweight transactions and a TTL, so a
//! dead owner's shards free themselves.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use chirp_domain::ids::{EPOCH_MS, id_at, now_ms, timestamp_ms};
use scylla::DeserializeRow;
use scylla::client::session::Session;
use scylla::statement::batch::{Batch, BatchType};
use scylla::statement::prepared::PreparedStatement;
use scylla::value::{CqlValue, Row};

use crate::TweetError;
use crate::cql::{Write, delete_timestamp, prepare, write_timestamp};

/// Shards of the outbox: how many relays can work in parallel across the
/// fleet. Every instance must agree on it (it decides an author's
/// partition), so it is a constant, not a setting.
pub const SHARDS: i32 = 8;

/// How long a lease lasts unless renewed.
pub const LEASE_TTL: Duration = Duration::from_secs(10);

/// How far the checkpoint trails the present: a row whose event id is newer
/// than this is still looked for by every read, so it may become visible
/// after later ones (a slow batch, another instance's clock).
pub const LOOKBACK: Duration = Duration::from_secs(30);

/// How old an event id may be when written before its writer flags it as
/// late. Below [`LOOKBACK`] by a margin that covers a write's own duration
/// (the driver gives up after 3 s) and the clock difference of two hosts.
pub const LATE_AFTER: Duration = Duration::from_secs(10);

pub const CREATE_TABLES: [&str; 4] = [
    "CREATE TABLE IF NOT EXISTS tweet_outbox (
        shard int,
        event_id bigint,
        tweet_id bigint,
        author_id bigint,
        deleted boolean,
        trace map<text, text>,
        PRIMARY KEY (shard, event_id, tweet_id)
    ) WITH gc_grace_seconds = 10800",
    "CREATE TABLE IF NOT EXISTS tweet_outbox_late (
        shard int,
        event_id bigint,
        tweet_id bigint,
        written_ms bigint,
        PRIMARY KEY (shard, event_id, tweet_id)
    ) WITH gc_grace_seconds = 10800",
    "CREATE TABLE IF NOT EXISTS tweet_outbox_checkpoints (
        shard int PRIMARY KEY,
        scan_from bigint
    )",
    "CREATE TABLE IF NOT EXISTS tweet_outbox_leases (
        shard int PRIMARY KEY,
        owner text
    )",
];

/// An event in the outbox: about to be written, or waiting to be relayed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingEvent {
    pub shard: i32,
    pub event_id: i64,
    pub tweet_id: i64,
    pub author_id: i64,
    /// `TweetDeleted` when true, `TweetCreated` otherwise.
    pub deleted: bool,
    /// The trace context of the request that caused it (see
    /// `chirp_runtime::trace_context::fields`); an empty map is stored as null.
    pub trace: HashMap<String, String>,
}

impl PendingEvent {
    pub fn new(
        tweet_id: i64,
        author_id: i64,
        event_id: i64,
        deleted: bool,
        trace: HashMap<String, String>,
    ) -> Self {
        Self {
            shard: shard(author_id),
            event_id,
            tweet_id,
            author_id,
            deleted,
            trace,
        }
    }
}

/// A late event's marker, as the relay reads it.
#[derive(Debug, Clone, Copy, DeserializeRow)]
pub struct LateMarker {
    pub event_id: i64,
    pub tweet_id: i64,
    /// When the marker was written (Unix ms): a marker whose row is not there
    /// is kept for [`LOOKBACK`], in case the rest of its batch is still on
    /// its way.
    pub written_ms: i64,
}

/// The shard that holds `author_id`'s events.
pub fn shard(author_id: i64) -> i32 {
    i32::try_from(author_id.rem_euclid(i64::from(SHARDS))).expect("a shard fits in an i32")
}

/// The lowest event id minted at `unix_ms`: where a read that must see every
/// event from then on starts.
pub fn first_id_at(unix_ms: i64) -> i64 {
    id_at(unix_ms.max(EPOCH_MS), 0, 0)
}

/// The outbox's statements, on the session of the store it lives in.
pub struct Outbox {
    session: Arc<Session>,
    enqueue: PreparedStatement,
    mark_late: PreparedStatement,
    pending: PreparedStatement,
    one: PreparedStatement,
    late: PreparedStatement,
    remove: PreparedStatement,
    unmark: PreparedStatement,
    checkpoint: PreparedStatement,
    save_checkpoint: PreparedStatement,
    held: PreparedStatement,
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

impl From<PendingRow> for PendingEvent {
    fn from(row: PendingRow) -> Self {
        Self {
            shard: row.shard,
            event_id: row.event_id,
            tweet_id: row.tweet_id,
            author_id: row.author_id,
            deleted: row.deleted,
            trace: row.trace.unwrap_or_default(),
        }
    }
}

impl Outbox {
    /// Prepares the outbox's statements on `session`, whose keyspace holds
    /// [`CREATE_TABLES`].
    pub async fn new(session: Arc<Session>) -> anyhow::Result<Self> {
        let s = &session;
        Ok(Self {
            enqueue: prepare(
                s,
                "INSERT INTO tweet_outbox (shard, event_id, tweet_id, author_id, deleted, trace) \
                 VALUES (?, ?, ?, ?, ?, ?) USING TIMESTAMP ?",
                true,
            )
            .await?,
            mark_late: prepare(
                s,
                "INSERT INTO tweet_outbox_late (shard, event_id, tweet_id, written_ms) \
                 VALUES (?, ?, ?, ?)",
                true,
            )
            .await?,
            pending: prepare(
                s,
                "SELECT shard, event_id, tweet_id, author_id, deleted, trace FROM tweet_outbox \
                 WHERE shard = ? AND event_id >= ? LIMIT ?",
                true,
            )
            .await?,
            one: prepare(
                s,
                "SELECT shard, event_id, tweet_id, author_id, deleted, trace FROM tweet_outbox \
                 WHERE shard = ? AND event_id = ? AND tweet_id = ?",
                true,
            )
            .await?,
            late: prepare(
                s,
                "SELECT event_id, tweet_id, written_ms FROM tweet_outbox_late \
                 WHERE shard = ? LIMIT ?",
                true,
            )
            .await?,
            remove: prepare(
                s,
                "DELETE FROM tweet_outbox USING TIMESTAMP ? \
                 WHERE shard = ? AND event_id = ? AND tweet_id = ?",
                true,
            )
            .await?,
            unmark: prepare(
                s,
                "DELETE FROM tweet_outbox_late WHERE shard = ? AND event_id = ? AND tweet_id = ?",
                true,
            )
            .await?,
            checkpoint: prepare(
                s,
                "SELECT scan_from FROM tweet_outbox_checkpoints WHERE shard = ?",
                true,
            )
            .await?,
            save_checkpoint: prepare(
                s,
                "UPDATE tweet_outbox_checkpoints SET scan_from = ? WHERE shard = ?",
                true,
            )
            .await?,
            held: prepare(s, "SELECT shard FROM tweet_outbox_leases", true).await?,
            acquire: prepare(
                s,
                "INSERT INTO tweet_outbox_leases (shard, owner) VALUES (?, ?) IF NOT EXISTS USING TTL ?",
                false,
            )
            .await?,
            renew: prepare(
                s,
                "UPDATE tweet_outbox_leases USING TTL ? SET owner = ? WHERE shard = ? IF owner = ?",
                false,
            )
            .await?,
            release: prepare(
                s,
                "DELETE FROM tweet_outbox_leases WHERE shard = ? IF owner = ?",
                false,
            )
            .await?,
            session,
        })
    }

    /// Writes `rows` and `event` in one logged batch: Cassandra saves it to
    /// its batchlog before applying it, so either every statement applies
    /// (replayed if the coordinator dies) or none. Each statement brings its
    /// own timestamp; the event's row is written at its event id's time,
    /// which is all the relay needs to know to remove it with a later one,
    /// whatever the clocks of the two hosts. An event older than
    /// [`LATE_AFTER`] also gets its late marker.
    pub async fn write(
        &self,
        rows: Vec<Write<'_>>,
        event: &PendingEvent,
    ) -> Result<(), TweetError> {
        let mut batch = Batch::new(BatchType::Logged);
        // Every statement in it is idempotent, so the driver may retry it.
        batch.set_is_idempotent(true);
        let mut values = Vec::with_capacity(rows.len() + 2);
        for (statement, row) in rows {
            batch.append_statement(statement.clone());
            values.push(row);
        }
        batch.append_statement(self.enqueue.clone());
        values.push(Box::new((
            event.shard,
            event.event_id,
            event.tweet_id,
            event.author_id,
            event.deleted,
            &event.trace,
            write_timestamp(event.event_id),
        )));
        let now = now_ms();
        if timestamp_ms(event.event_id) < now - LATE_AFTER.as_millis() as i64 {
            batch.append_statement(self.mark_late.clone());
            values.push(Box::new((event.shard, event.event_id, event.tweet_id, now)));
        }
        self.session.batch(&batch, values).await?;
        Ok(())
    }

    /// Up to `limit` events of `shard` from event id `from` on, oldest first.
    pub async fn pending(
        &self,
        shard: i32,
        from: i64,
        limit: i32,
    ) -> Result<Vec<PendingEvent>, TweetError> {
        let result = self
            .session
            .execute_unpaged(&self.pending, (shard, from, limit))
            .await?
            .into_rows_result()?;
        let rows = result.rows::<PendingRow>()?;
        rows.map(|row| Ok(row?.into())).collect()
    }

    /// Up to `limit` late markers of `shard`.
    pub async fn late(&self, shard: i32, limit: i32) -> Result<Vec<LateMarker>, TweetError> {
        let result = self
            .session
            .execute_unpaged(&self.late, (shard, limit))
            .await?
            .into_rows_result()?;
        Ok(result.rows::<LateMarker>()?.collect::<Result<_, _>>()?)
    }

    /// The event a late marker points at, unless it was relayed already.
    pub async fn marked(
        &self,
        shard: i32,
        marker: &LateMarker,
    ) -> Result<Option<PendingEvent>, TweetError> {
        let result = self
            .session
            .execute_unpaged(&self.one, (shard, marker.event_id, marker.tweet_id))
            .await?
            .into_rows_result()?;
        Ok(result.maybe_first_row::<PendingRow>()?.map(Into::into))
    }

    /// Forgets an event the broker acknowledged.
    pub async fn remove(&self, event: &PendingEvent) -> Result<(), TweetError> {
        let values = (
            delete_timestamp(event.event_id),
            event.shard,
            event.event_id,
            event.tweet_id,
        );
        self.session.execute_unpaged(&self.remove, values).await?;
        Ok(())
    }

    /// Forgets a late marker whose event was relayed.
    pub async fn unmark(&self, shard: i32, marker: &LateMarker) -> Result<(), TweetError> {
        let values = (shard, marker.event_id, marker.tweet_id);
        self.session.execute_unpaged(&self.unmark, values).await?;
        Ok(())
    }

    /// Where reads of `shard` start: 0 for a shard never relayed.
    pub async fn checkpoint(&self, shard: i32) -> Result<i64, TweetError> {
        let result = self
            .session
            .execute_unpaged(&self.checkpoint, (shard,))
            .await?
            .into_rows_result()?;
        let saved: Option<(Option<i64>,)> = result.maybe_first_row()?;
        Ok(saved.and_then(|(scan_from,)| scan_from).unwrap_or(0))
    }

    /// Saves where reads of `shard` start. A plain overwrite: an owner that
    /// lost its lease may still save once, and its value is as true as the
    /// new owner's, since both only pass rows that were relayed.
    pub async fn save_checkpoint(&self, shard: i32, scan_from: i64) -> Result<(), TweetError> {
        self.session
            .execute_unpaged(&self.save_checkpoint, (scan_from, shard))
            .await?;
        Ok(())
    }

    /// The shards somebody holds: a plain read of a few rows, so that an
    /// instance tries a lightweight transaction only on shards that look free.
    pub async fn held_shards(&self) -> Result<HashSet<i32>, TweetError> {
        let result = self
            .session
            .execute_unpaged(&self.held, ())
            .await?
            .into_rows_result()?;
        let held = result.rows::<(i32,)>()?;
        held.map(|row| Ok(row?.0)).collect()
    }

    /// Takes `shard` for `owner` if nobody holds it.
    pub async fn acquire(&self, shard: i32, owner: &str) -> Result<bool, TweetError> {
        let values = (shard, owner, lease_ttl_seconds());
        applied(self.session.execute_unpaged(&self.acquire, values).await?)
    }

    /// Extends `owner`'s lease on `shard`; false if it is no longer theirs.
    pub async fn renew(&self, shard: i32, owner: &str) -> Result<bool, TweetError> {
        let values = (lease_ttl_seconds(), owner, shard, owner);
        applied(self.session.execute_unpaged(&self.renew, values).await?)
    }

    /// Gives `shard` up, so that another instance can take it at once.
    pub async fn release(&self, shard: i32, owner: &str) -> Result<(), TweetError> {
        self.session
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
    use chirp_domain::ids::Snowflake;

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

    #[test]
    fn the_first_id_of_a_millisecond_is_below_every_id_minted_then() {
        let id = Snowflake::new(7).next_id();
        let at = timestamp_ms(id);
        assert!(first_id_at(at) <= id);
        assert!(first_id_at(at + 1) > id);
        assert_eq!(first_id_at(0), 0);
    }
}
