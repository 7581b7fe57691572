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
//! - **Unlogged batches, one per partition.** An author's tweets go to
//!   `tweets_by_author` as one unlogged batch: one partition, so one
//!   mutation on one replica set, with no batch log (a logged batch buys
//!   atomicity across partitions, which a retried import does not need). In
//!   `tweets` every tweet is a partition of its own, so those rows are single
//!   writes, many in flight. A batch spanning partitions would make one
//!   coordinator wait for all their replicas: the anti-pattern Cassandra's
//!   batch size warnings exist for.
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

use chirp_common::ids::{now_ms, timestamp_ms};
use chirp_common::proto::tweet::ImportedTweet;
use futures::future::BoxFuture;
use futures::{StreamExt, TryStreamExt, stream};
use scylla::errors::ExecutionError;
use scylla::statement::batch::{Batch, BatchType};
use scylla::value::MaybeUnset;

use crate::TweetError;
use crate::input::TweetContent;
use crate::store::{Store, write_timestamp};

/// The most tweets one call may carry: a few hundred kilobytes of content.
pub const MAX_IMPORT: usize = 5_000;

/// Writes in flight at once for one call: enough to keep a node's write path
/// busy while each write waits on its commit log.
const CONCURRENT_WRITES: usize = 64;

/// A tweet of the import, checked.
struct Checked {
    tweet_id: i64,
    author_id: i64,
    content: TweetContent,
}

/// Validates `tweets`, then writes them; returns how many were written.
pub async fn import_tweets(store: &Store, tweets: Vec<ImportedTweet>) -> Result<u64, TweetError> {
    if tweets.len() > MAX_IMPORT {
        return Err(TweetError::InvalidArgument(format!(
            "at most {MAX_IMPORT} tweets per call, got {}",
            tweets.len()
        )));
    }
    let now = now_ms();
    let checked = tweets
        .into_iter()
        .map(|tweet| check(tweet, now))
        .collect::<Result<Vec<_>, _>>()?;
    let mut by_author: BTreeMap<i64, Vec<&Checked>> = BTreeMap::new();
    for tweet in &checked {
        by_author.entry(tweet.author_id).or_default().push(tweet);
    }

    let (session, statements) = store.session_and_statements();
    let mut author_batch = Batch::new(BatchType::Unlogged);
    author_batch.set_is_idempotent(true);
    // Boxed so that both kinds of write fit in one list: the futures do
    // nothing until the stream below polls them, a bounded number at a time.
    let mut writes: Vec<BoxFuture<'_, Result<(), ExecutionError>>> =
        Vec::with_capacity(by_author.len() + checked.len());
    for tweets in by_author.values() {
        let mut batch = author_batch.clone();
        let mut values = Vec::with_capacity(tweets.len());
        for tweet in tweets {
            batch.append_statement(statements.insert_author_tweet.clone());
            values.push((
                tweet.author_id,
                tweet.tweet_id,
                tweet.content.as_str(),
                write_timestamp(tweet.tweet_id),
            ));
        }
        writes.push(Box::pin(async move {
            session.batch(&batch, values).await.map(drop)
        }));
    }
    for tweet in &checked {
        // Unset, not null: a null would write a tombstone for the key column.
        let no_key: MaybeUnset<&str> = MaybeUnset::Unset;
        let values = (
            tweet.tweet_id,
            tweet.author_id,
            tweet.content.as_str(),
            no_key,
            write_timestamp(tweet.tweet_id),
        );
        writes.push(Box::pin(async move {
            session
                .execute_unpaged(&statements.insert_tweet, values)
                .await
                .map(drop)
        }));
    }
    stream::iter(writes)
        .buffer_unordered(CONCURRENT_WRITES)
        .try_collect::<()>()
        .await?;
    Ok(checked.len() as u64)
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
    use chirp_common::ids::Snowflake;

    use super::*;

    fn imported(tweet_id: i64, author_id: i64, content: &str) -> ImportedTweet {
        ImportedTweet {
            tweet_id,
            author_id,
            content: content.to_owned(),
        }
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
