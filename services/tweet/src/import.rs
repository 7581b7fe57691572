//! `ImportTweets`: tweet history loaded in bulk, the way a migration from
//! another system would load it, not the way a user posts.
//!
//! A posted tweet costs a lightweight transaction (the idempotency key, a
//! Paxos round of four messages), two writes and a Kafka event that fans it
//! out into every follower's timeline; about 550 tweets a second on a 2-core
//! machine. History needs none of that:
//!
//! - **No idempotency key.** The caller chooses each tweet's id (a Snowflake
//!   id of the past, as the source system's ids are), and every write is an
//!   upsert at the timestamp the id carries, so a retried call rewrites the
//!   same rows byte for byte: the id *is* the idempotency key.
//! - **Unlogged batches of partitions that share their replicas.** Each
//!   write is an upsert of one partition: an author's rows in
//!   `tweets_by_author`, or one tweet's row in `tweets`. Sent one request
//!   each, a call of 4 000 tweets is 4 800 requests, and the cost per request
//!   (a frame to parse, a task to dispatch, an answer to send) is most of
//!   what the node spends on rows this small. So the writes are grouped by
//!   the set of nodes that hold their partitions (the driver's token map
//!   says which) and sent as unlogged batches, each within one such group:
//!   the driver routes a batch by its first partition to a node that holds
//!   *all* of them, which applies them locally. That is not the batch
//!   anti-pattern Cassandra warns about, a coordinator waiting on replicas of
//!   unrelated partitions; on one node every write shares the group. No
//!   batch log either: a logged batch buys atomicity across partitions, which
//!   a retried import does not need. A batch stays under Cassandra's default
//!   warning thresholds (10 partitions, 5 KiB), so a bulk load does not
//!   flood its log, nor the driver's, with a warning per request.
//! - **No event.** History is not news: nobody should be notified and no
//!   cached timeline should grow. Home timelines find the imported tweets
//!   when they are next built from the stores, on a read. A timeline cached
//!   before the import does not show them until it is rebuilt, so history is
//!   imported before its users read, as a migration would be.
//!
//! Input is validated whole before anything is written: a bad tweet fails the
//! call and writes nothing. A store failure midway leaves part of the call
//! written; retrying it finishes the rest.

use std::collections::BTreeMap;

use chirp_domain::ids::{now_ms, timestamp_ms};
use chirp_proto::tweet::ImportedTweet;
use futures::future::BoxFuture;
use futures::{StreamExt, TryStreamExt, stream};
use scylla::client::session::Session;
use scylla::cluster::ClusterState;
use scylla::serialize::row::SerializeRow;
use scylla::statement::batch::{Batch, BatchType};
use scylla::statement::prepared::PreparedStatement;
use scylla::value::MaybeUnset;

use crate::TweetError;
use crate::cql::{Write, write_timestamp};
use crate::input::TweetContent;
use crate::store::{Statements, Store};

/// The most tweets one call may carry: a few hundred kilobytes of content.
pub const MAX_IMPORT: usize = 5_000;

/// Batches in flight at once for one call. The load tool sends six calls at
/// once, so about 240 rows are in flight, fewer than the 384 single writes of
/// the unbatched import: 16 per call (960 rows) queued past the driver's 3 s
/// timeout on a 2-core machine shared with other work.
const CONCURRENT_BATCHES: usize = 4;

/// Partitions per batch: Cassandra's default
/// `unlogged_batch_across_partitions_warn_threshold`.
const MAX_BATCH_PARTITIONS: usize = 10;

/// Estimated bytes per batch: under Cassandra's default
/// `batch_size_warn_threshold` of 5 KiB, which counts the rows' data.
const MAX_BATCH_BYTES: usize = 4_096;

/// What a row costs in a batch besides its content: keys, timestamp, cells.
const ROW_OVERHEAD: usize = 48;

/// A tweet of the import, checked.
struct Checked {
    tweet_id: i64,
    author_id: i64,
    content: TweetContent,
}

/// The bound values of one row, whichever statement it is for.
type Row<'a> = Box<dyn SerializeRow + Send + Sync + 'a>;

/// The rows of one partition (or of a slice of it small enough to batch),
/// and their estimated size in a batch.
struct PartitionWrite<W> {
    rows: Vec<W>,
    bytes: usize,
}

/// The writes of one import, grouped by the nodes that hold their
/// partitions (empty: the driver cannot say).
type Groups<'a> = BTreeMap<Vec<u128>, Vec<PartitionWrite<Write<'a>>>>;

/// Validates `tweets`, plans their batches, then writes them; returns how
/// many were written.
pub async fn import_tweets(store: &Store, tweets: Vec<ImportedTweet>) -> Result<u64, TweetError> {
    let checked = check_all(tweets, now_ms())?;
    let (session, statements) = store.session_and_statements();
    let groups = plan(&checked, statements, &session.get_cluster_state());
    write_all(session, groups).await?;
    Ok(checked.len() as u64)
}

/// Every tweet checked, or the first reason to refuse the call: a bad tweet
/// fails the call before anything is written.
fn check_all(tweets: Vec<ImportedTweet>, now_ms: i64) -> Result<Vec<Checked>, TweetError> {
    if tweets.len() > MAX_IMPORT {
        return Err(TweetError::InvalidArgument(format!(
            "at most {MAX_IMPORT} tweets per call, got {}",
            tweets.len()
        )));
    }
    tweets
        .into_iter()
        .map(|tweet| check(tweet, now_ms))
        .collect()
}

/// The rows of `checked`, as partition writes grouped by the nodes that
/// hold them: each author's `tweets_by_author` partition, cut where a batch
/// would grow past its size, and each tweet's `tweets` row.
fn plan<'a>(
    checked: &'a [Checked],
    statements: &'a Statements,
    cluster: &ClusterState,
) -> Groups<'a> {
    let mut by_author: BTreeMap<i64, Vec<&Checked>> = BTreeMap::new();
    for tweet in checked {
        by_author.entry(tweet.author_id).or_default().push(tweet);
    }
    let mut groups = Groups::new();
    let statement = &statements.insert_author_tweet;
    for tweets in by_author.values() {
        let mut part: PartitionWrite<Write<'_>> = PartitionWrite::default();
        for tweet in tweets {
            let row: Row<'_> = Box::new((
                tweet.author_id,
                tweet.tweet_id,
                tweet.content.as_str(),
                write_timestamp(tweet.tweet_id),
            ));
            let bytes = tweet.content.as_str().len() + ROW_OVERHEAD;
            if !part.rows.is_empty() && part.bytes + bytes > MAX_BATCH_BYTES {
                let replicas = replicas(cluster, statement, &part.rows[0].1);
                groups
                    .entry(replicas)
                    .or_default()
                    .push(std::mem::take(&mut part));
            }
            part.bytes += bytes;
            part.rows.push((statement, row));
        }
        let replicas = replicas(cluster, statement, &part.rows[0].1);
        groups.entry(replicas).or_default().push(part);
    }
    let statement = &statements.insert_tweet;
    for tweet in checked {
        // Unset, not null: a null would write a tombstone for the key column.
        let no_key: MaybeUnset<&str> = MaybeUnset::Unset;
        let row: Row<'_> = Box::new((
            tweet.tweet_id,
            tweet.author_id,
            tweet.content.as_str(),
            no_key,
            write_timestamp(tweet.tweet_id),
        ));
        let replicas = replicas(cluster, statement, &row);
        groups.entry(replicas).or_default().push(PartitionWrite {
            bytes: tweet.content.as_str().len() + ROW_OVERHEAD,
            rows: vec![(statement, row)],
        });
    }
    groups
}

/// Packs each group into batches and sends them, a few at a time.
async fn write_all(session: &Session, groups: Groups<'_>) -> Result<(), TweetError> {
    // Boxed, and built by loops rather than closures over borrowed rows, so
    // that the service's future stays `Send` (closures here trip rustc's
    // lifetime inference). They do nothing until the stream polls them.
    let mut writes: Vec<BoxFuture<'_, Result<(), TweetError>>> = Vec::new();
    for (replicas, partitions) in groups {
        for rows in pack(partitions, !replicas.is_empty()) {
            writes.push(Box::pin(write_batch(session, rows)));
        }
    }
    stream::iter(writes)
        .buffer_unordered(CONCURRENT_BATCHES)
        .try_collect::<()>()
        .await
}

impl<W> Default for PartitionWrite<W> {
    fn default() -> Self {
        Self {
            rows: Vec::new(),
            bytes: 0,
        }
    }
}

/// The nodes that hold the partition `row` writes, as the driver's token map
/// has them; empty if it cannot say (then the write is sent alone).
fn replicas(cluster: &ClusterState, statement: &PreparedStatement, row: &Row<'_>) -> Vec<u128> {
    let (Ok(Some(token)), Some(keyspace), Some(table)) = (
        statement.calculate_token(row),
        statement.get_keyspace_name(),
        statement.get_table_name(),
    ) else {
        return Vec::new();
    };
    let mut nodes: Vec<_> = cluster
        .get_token_endpoints(keyspace, table, token)
        .into_iter()
        .map(|(node, _shard)| node.host_id.as_u128())
        .collect();
    nodes.sort_unstable();
    nodes
}

/// Packs the partition writes of one group into batches of at most
/// [`MAX_BATCH_PARTITIONS`] partitions and about [`MAX_BATCH_BYTES`]; one
/// partition per batch when the group's nodes are unknown.
fn pack<W>(writes: Vec<PartitionWrite<W>>, shared: bool) -> Vec<Vec<W>> {
    let mut batches = Vec::new();
    let mut batch = Vec::new();
    let (mut partitions, mut bytes) = (0, 0);
    for write in writes {
        let full = partitions == MAX_BATCH_PARTITIONS || bytes + write.bytes > MAX_BATCH_BYTES;
        if partitions > 0 && (full || !shared) {
            batches.push(std::mem::take(&mut batch));
            (partitions, bytes) = (0, 0);
        }
        partitions += 1;
        bytes += write.bytes;
        batch.extend(write.rows);
    }
    if !batch.is_empty() {
        batches.push(batch);
    }
    batches
}

/// Sends one batch: unlogged, idempotent (every row is an upsert at a fixed
/// timestamp), so the driver may retry it.
async fn write_batch(session: &Session, rows: Vec<Write<'_>>) -> Result<(), TweetError> {
    let mut batch = Batch::new(BatchType::Unlogged);
    batch.set_is_idempotent(true);
    let mut values = Vec::with_capacity(rows.len());
    for (statement, row) in rows {
        batch.append_statement(statement.clone());
        values.push(row);
    }
    session.batch(&batch, values).await?;
    Ok(())
}

fn check(tweet: ImportedTweet, now_ms: i64) -> Result<Checked, TweetError> {
    if tweet.author_id <= 0 {
        return Err(TweetError::InvalidArgument(
            "author_id must be positive".to_owned(),
        ));
    }
    if tweet.tweet_id <= 0 || timestamp_ms(tweet.tweet_id) > now_ms {
        return Err(TweetError::InvalidArgument(format!(
            "tweet_id {} is not a Snowflake id of the past",
            tweet.tweet_id
        )));
    }
    Ok(Checked {
        tweet_id: tweet.tweet_id,
        author_id: tweet.author_id,
        content: TweetContent::parse(&tweet.content)?,
    })
}

#[cfg(test)]
mod tests {
    use chirp_domain::ids::Snowflake;

    use super::*;

    fn imported(tweet_id: i64, author_id: i64, content: &str) -> ImportedTweet {
        ImportedTweet {
            tweet_id,
            author_id,
            content: content.to_owned(),
        }
    }

    fn partition(rows: usize, bytes: usize) -> PartitionWrite<usize> {
        PartitionWrite {
            rows: (0..rows).collect(),
            bytes,
        }
    }

    #[test]
    fn batches_stay_under_the_partition_and_size_limits() {
        // 25 one-row partitions: 10, 10, 5.
        let sizes: Vec<usize> = pack((0..25).map(|_| partition(1, 100)).collect(), true)
            .iter()
            .map(Vec::len)
            .collect();
        assert_eq!(sizes, vec![10, 10, 5]);
        // 1.5 KB partitions: two per batch, and a partition is never split.
        let sizes: Vec<usize> = pack((0..5).map(|_| partition(5, 1_500)).collect(), true)
            .iter()
            .map(Vec::len)
            .collect();
        assert_eq!(sizes, vec![10, 10, 5]);
        // One partition bigger than a batch still goes, alone.
        assert_eq!(pack(vec![partition(3, 9_000)], true).len(), 1);
    }

    #[test]
    fn partitions_of_unknown_nodes_go_one_per_batch() {
        let batches = pack((0..4).map(|_| partition(2, 10)).collect(), false);
        assert_eq!(batches.len(), 4);
        assert!(batches.iter().all(|batch| batch.len() == 2));
    }

    #[test]
    fn only_ids_of_the_past_and_valid_tweets_pass() {
        let id = Snowflake::new(1).next_id();
        let now = now_ms();
        assert!(check(imported(id, 7, "hello"), now).is_ok());
        let future = id + (3_600_000 << 22);
        assert!(check(imported(future, 7, "hello"), now).is_err());
        assert!(check(imported(0, 7, "hello"), now).is_err());
        assert!(check(imported(id, 0, "hello"), now).is_err());
        assert!(check(imported(id, 7, "  "), now).is_err());
    }
}
