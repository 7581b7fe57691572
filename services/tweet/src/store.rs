//! Tweets in a CQL store (Cassandra or ScyllaDB): three tables, one per
//! question asked of them, because a wide-column store answers only the
//! queries its partition keys were designed for.
//!
//! - `tweets`, keyed by `tweet_id`: the source of truth, and what hydrating a
//!   timeline reads. There is no `created_at` column: the Snowflake id carries
//!   its creation time ([`timestamp_ms`]), so writing a tweet again produces a
//!   byte-identical row and a replayed create can never disagree with itself.
//! - `tweets_by_author`, partitioned by author and clustered by `tweet_id`
//!   descending: an author's tweets, newest first, as one sequential read.
//!   The content is copied in (denormalised) so a profile page is one query,
//!   not one plus N. One partition per author grows without bound, which a
//!   prolific account eventually makes a hot, oversized partition; the usual
//!   fix is a time bucket in the partition key (`(author_id, month)`), with
//!   reads walking back bucket by bucket. chirp keeps the simple key.
//! - `tweet_idempotency`, keyed by `(author_id, idempotency_key)`: which tweet
//!   a client's key produced. It is claimed with a lightweight transaction
//!   (`IF NOT EXISTS`, a Paxos round) so that two concurrent retries cannot
//!   both win, and it expires after 24 hours, like Stripe's idempotency keys: a
//!   retry comes within seconds or minutes, and a key table that never forgets
//!   grows forever.
//!
//! Every write here goes through the outbox ([`crate::outbox`]), which adds
//! the event it announces to the same logged batch. Write timestamps, and
//! why they make replays safe, are in [`crate::cql`].

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chirp_domain::ids::{now_ms, timestamp_ms};
use futures::{StreamExt, TryStreamExt};
use scylla::DeserializeRow;
use scylla::client::session::Session;
use scylla::statement::prepared::PreparedStatement;
use scylla::value::MaybeUnset;

use crate::TweetError;
use crate::cql::{Write, delete_timestamp, prepare, write_timestamp};
use crate::input::{IdempotencyKey, TweetContent};
use crate::outbox::{Outbox, PendingEvent};

/// How long a client may retry a create with the same key.
const IDEMPOTENCY_TTL: Duration = Duration::from_secs(24 * 60 * 60);

/// Reads in flight at once for one batch get.
const CONCURRENT_READS: usize = 32;

pub const CREATE_TABLES: [&str; 3] = [
    "CREATE TABLE IF NOT EXISTS tweets (
        tweet_id bigint PRIMARY KEY,
        author_id bigint,
        content text,
        idempotency_key text
    )",
    "CREATE TABLE IF NOT EXISTS tweets_by_author (
        author_id bigint,
        tweet_id bigint,
        content text,
        PRIMARY KEY (author_id, tweet_id)
    ) WITH CLUSTERING ORDER BY (tweet_id DESC)",
    "CREATE TABLE IF NOT EXISTS tweet_idempotency (
        author_id bigint,
        idempotency_key text,
        tweet_id bigint,
        content text,
        deleted boolean,
        PRIMARY KEY ((author_id, idempotency_key))
    )",
];

/// A tweet, as every read returns it.
#[derive(Debug, Clone, PartialEq, Eq, DeserializeRow)]
pub struct Tweet {
    pub tweet_id: i64,
    pub author_id: i64,
    pub content: String,
}

/// A row of `tweets`: the tweet, plus the key it was created with, which a
/// delete must mark so that the key cannot bring the tweet back.
#[derive(Debug, DeserializeRow)]
pub struct StoredTweet {
    pub tweet_id: i64,
    pub author_id: i64,
    pub content: String,
    pub idempotency_key: Option<String>,
}

impl StoredTweet {
    pub fn into_tweet(self) -> Tweet {
        Tweet {
            tweet_id: self.tweet_id,
            author_id: self.author_id,
            content: self.content,
        }
    }
}

/// The outcome of claiming an idempotency key.
#[derive(Debug)]
pub enum Claim {
    /// The key was free: this request's tweet is new.
    Won,
    /// An earlier request holds the key.
    Taken(KeyHolder),
}

/// What an idempotency key already stands for.
#[derive(Debug)]
pub struct KeyHolder {
    pub tweet_id: i64,
    pub content: String,
    pub deleted: bool,
}

/// The result of `INSERT … IF NOT EXISTS` when the row already existed: the
/// `[applied]` flag, then the existing row.
#[derive(DeserializeRow)]
struct ClaimResult {
    #[scylla(rename = "[applied]")]
    applied: bool,
    #[expect(
        dead_code,
        reason = "in the result, and known: it is the key just sent"
    )]
    author_id: Option<i64>,
    #[expect(
        dead_code,
        reason = "in the result, and known: it is the key just sent"
    )]
    idempotency_key: Option<String>,
    tweet_id: Option<i64>,
    content: Option<String>,
    deleted: Option<bool>,
}

pub struct Store {
    session: Arc<Session>,
    statements: Statements,
    /// Where every write goes, with its event.
    outbox: Arc<Outbox>,
}

pub(crate) struct Statements {
    claim_key: PreparedStatement,
    /// Also for [`crate::import`], which writes the same rows in bulk.
    pub(crate) insert_tweet: PreparedStatement,
    pub(crate) insert_author_tweet: PreparedStatement,
    mark_key_deleted: PreparedStatement,
    delete_tweet: PreparedStatement,
    delete_author_tweet: PreparedStatement,
    select_tweet: PreparedStatement,
    select_author_tweets: PreparedStatement,
}

impl Store {
    /// Prepares every statement on `session`, whose keyspace holds
    /// [`CREATE_TABLES`].
    pub async fn new(session: Arc<Session>, outbox: Arc<Outbox>) -> anyhow::Result<Self> {
        let statements = Statements::prepare(&session).await?;
        Ok(Self {
            session,
            statements,
            outbox,
        })
    }

    /// Claims `key` for a new tweet, or returns what already holds it. The
    /// claim expires after [`IDEMPOTENCY_TTL`].
    pub async fn claim_key(
        &self,
        author_id: i64,
        key: &IdempotencyKey,
        tweet_id: i64,
        content: &TweetContent,
    ) -> Result<Claim, TweetError> {
        let ttl = ttl_seconds(IDEMPOTENCY_TTL);
        let result = self
            .session
            .execute_unpaged(
                &self.statements.claim_key,
                (author_id, key.as_str(), tweet_id, content.as_str(), ttl),
            )
            .await?
            .into_rows_result()?;
        // Cassandra answers a successful claim with the `[applied]` column
        // alone; ScyllaDB always adds the previous row's columns (null when
        // there was none). Both add them when the claim fails.
        if result.column_specs().len() == 1 {
            let (applied,): (bool,) = result.single_row()?;
            return if applied {
                Ok(Claim::Won)
            } else {
                Err(TweetError::CqlResult(
                    "a refused claim without the existing row".into(),
                ))
            };
        }
        let row: ClaimResult = result.single_row()?;
        if row.applied {
            return Ok(Claim::Won);
        }
        match (row.tweet_id, row.content) {
            (Some(tweet_id), Some(content)) => Ok(Claim::Taken(KeyHolder {
                tweet_id,
                content,
                deleted: row.deleted.unwrap_or(false),
            })),
            _ => Err(TweetError::CqlResult(
                "an idempotency row without its tweet".into(),
            )),
        }
    }

    /// Writes `tweet` to both tables and its `TweetCreated` event to the
    /// outbox, in one logged batch: all three or none. Plain upserts of fixed
    /// values at a fixed timestamp: doing it twice is the same as doing it
    /// once, and a replay after the relay already sent and removed the event
    /// writes an outbox row that the removal's later tombstone shadows.
    pub async fn write_tweet(
        &self,
        tweet: &Tweet,
        key: Option<&IdempotencyKey>,
        trace: &HashMap<String, String>,
    ) -> Result<(), TweetError> {
        let written_at = write_timestamp(tweet.tweet_id);
        // Unset, not null: a null would write a tombstone for the empty column.
        let key = key.map_or(MaybeUnset::Unset, |key| MaybeUnset::Set(key.as_str()));
        let rows: Vec<Write<'_>> = vec![
            (
                &self.statements.insert_tweet,
                Box::new((
                    tweet.tweet_id,
                    tweet.author_id,
                    tweet.content.as_str(),
                    key,
                    written_at,
                )),
            ),
            (
                &self.statements.insert_author_tweet,
                Box::new((
                    tweet.author_id,
                    tweet.tweet_id,
                    tweet.content.as_str(),
                    written_at,
                )),
            ),
        ];
        let event = PendingEvent::new(
            tweet.tweet_id,
            tweet.author_id,
            tweet.tweet_id,
            false,
            trace.clone(),
        );
        self.outbox.write(rows, &event).await
    }

    /// Deletes `tweet` and writes its `TweetDeleted` event (`event_id`, above
    /// the tweet's id) to the outbox, in one logged batch. With the key the
    /// tweet was created with, it also marks that key as pointing at a
    /// deleted tweet, so replaying it answers "deleted" instead of recreating
    /// the tweet.
    ///
    /// The key's whole row is written again rather than one `deleted` cell
    /// updated: cells expire one by one, and a lone `deleted` cell with its
    /// own TTL would outlive or predecease the rest of the row. The new TTL is
    /// what is left of the key's 24 hours, counted from the tweet's creation
    /// (an expired key is left alone). A plain write over a row that Paxos
    /// wrote is safe here because it comes later, so its timestamp wins, and
    /// the only condition ever checked on that table is whether the row exists.
    pub async fn delete(
        &self,
        tweet: &Tweet,
        key: Option<&str>,
        event_id: i64,
        trace: &HashMap<String, String>,
    ) -> Result<(), TweetError> {
        let deleted_at = delete_timestamp(tweet.tweet_id);
        let mut rows: Vec<Write<'_>> = Vec::with_capacity(3);
        if let Some((key, ttl)) = key.zip(remaining_key_ttl(tweet)) {
            let mark = (
                tweet.author_id,
                key,
                tweet.tweet_id,
                tweet.content.as_str(),
                ttl_seconds(ttl),
            );
            rows.push((&self.statements.mark_key_deleted, Box::new(mark)));
        }
        let unlist = (deleted_at, tweet.author_id, tweet.tweet_id);
        rows.push((&self.statements.delete_author_tweet, Box::new(unlist)));
        let delete = (deleted_at, tweet.tweet_id);
        rows.push((&self.statements.delete_tweet, Box::new(delete)));
        let event = PendingEvent::new(
            tweet.tweet_id,
            tweet.author_id,
            event_id,
            true,
            trace.clone(),
        );
        self.outbox.write(rows, &event).await
    }

    /// For [`crate::import`], which writes the same rows in bulk.
    pub(crate) fn session_and_statements(&self) -> (&Session, &Statements) {
        (&*self.session, &self.statements)
    }

    pub async fn tweet(&self, tweet_id: i64) -> Result<Option<StoredTweet>, TweetError> {
        let result = self
            .session
            .execute_unpaged(&self.statements.select_tweet, (tweet_id,))
            .await?
            .into_rows_result()?;
        Ok(result.maybe_first_row()?)
    }

    /// The tweets among `tweet_ids` that exist, in the order asked.
    ///
    /// One single-partition read per id, a bounded number in flight, rather
    /// than one `WHERE tweet_id IN (…)`: an `IN` over partition keys makes a
    /// single coordinator gather rows from many replicas, holding them all
    /// and waiting for the slowest, whereas separate reads each go straight to
    /// a replica that owns the id and spread the load over the cluster.
    pub async fn tweets(&self, tweet_ids: &[i64]) -> Result<Vec<Tweet>, TweetError> {
        futures::stream::iter(tweet_ids.iter().copied())
            .map(|tweet_id| self.tweet(tweet_id))
            .buffered(CONCURRENT_READS)
            .try_filter_map(|found| async move { Ok(found.map(StoredTweet::into_tweet)) })
            .try_collect()
            .await
    }

    /// Up to `limit` of `author_id`'s tweets older than `before` (all when
    /// `None`), newest first.
    pub async fn tweets_by_author(
        &self,
        author_id: i64,
        before: Option<i64>,
        limit: i32,
    ) -> Result<Vec<Tweet>, TweetError> {
        let result = self
            .session
            .execute_unpaged(
                &self.statements.select_author_tweets,
                (author_id, before.unwrap_or(i64::MAX), limit),
            )
            .await?
            .into_rows_result()?;
        Ok(result.rows::<Tweet>()?.collect::<Result<_, _>>()?)
    }
}

/// What is left of the idempotency key's 24 hours for `tweet`, if anything.
fn remaining_key_ttl(tweet: &Tweet) -> Option<Duration> {
    let age =
        Duration::from_millis(u64::try_from(now_ms() - timestamp_ms(tweet.tweet_id)).unwrap_or(0));
    IDEMPOTENCY_TTL
        .checked_sub(age)
        .filter(|left| !left.is_zero())
}

impl Statements {
    async fn prepare(session: &Session) -> anyhow::Result<Self> {
        let s = session;
        Ok(Self {
            // A claim is not idempotent: resent, it would find its own first
            // attempt's row and report a replay.
            claim_key: prepare(
                s,
                "INSERT INTO tweet_idempotency (author_id, idempotency_key, tweet_id, content, deleted) \
                 VALUES (?, ?, ?, ?, false) IF NOT EXISTS USING TTL ?",
                false,
            )
            .await?,
            insert_tweet: prepare(
                s,
                "INSERT INTO tweets (tweet_id, author_id, content, idempotency_key) \
                 VALUES (?, ?, ?, ?) USING TIMESTAMP ?",
                true,
            )
            .await?,
            insert_author_tweet: prepare(
                s,
                "INSERT INTO tweets_by_author (author_id, tweet_id, content) \
                 VALUES (?, ?, ?) USING TIMESTAMP ?",
                true,
            )
            .await?,
            mark_key_deleted: prepare(
                s,
                "INSERT INTO tweet_idempotency (author_id, idempotency_key, tweet_id, content, deleted) \
                 VALUES (?, ?, ?, ?, true) USING TTL ?",
                true,
            )
            .await?,
            delete_tweet: prepare(
                s,
                "DELETE FROM tweets USING TIMESTAMP ? WHERE tweet_id = ?",
                true,
            )
            .await?,
            delete_author_tweet: prepare(
                s,
                "DELETE FROM tweets_by_author USING TIMESTAMP ? WHERE author_id = ? AND tweet_id = ?",
                true,
            )
            .await?,
            select_tweet: prepare(
                s,
                "SELECT tweet_id, author_id, content, idempotency_key FROM tweets WHERE tweet_id = ?",
                true,
            )
            .await?,
            select_author_tweets: prepare(
                s,
                "SELECT tweet_id, author_id, content FROM tweets_by_author \
                 WHERE author_id = ? AND tweet_id < ? LIMIT ?",
                true,
            )
            .await?,
        })
    }
}

fn ttl_seconds(ttl: Duration) -> i32 {
    i32::try_from(ttl.as_secs().max(1)).unwrap_or(i32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttls_are_whole_positive_seconds() {
        assert_eq!(ttl_seconds(IDEMPOTENCY_TTL), 86_400);
        assert_eq!(ttl_seconds(Duration::from_millis(300)), 1);
    }
}
