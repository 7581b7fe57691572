//! The gRPC surface of the tweet service: validates requests, runs each
//! operation against the store in a crash-safe order, and turns rows into
//! protobuf messages.
//!
//! No request waits for Kafka: each write saves its event in the outbox in
//! the same batch ([`crate::outbox`]) and the relay publishes it. Each call
//! runs within the caller's deadline (the `grpc-timeout` header, which
//! tonic enforces by dropping the call when it passes): a caller that gave
//! up is never answered later by a write that went on without it, and a
//! call cut short has done nothing or everything a retry with the same
//! idempotency key would do.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use chirp_domain::ids::{Snowflake, timestamp_ms};
use chirp_domain::paging::{self, PageSize};
use chirp_proto::tweet::{
    BatchGetTweetsRequest, BatchGetTweetsResponse, CreateTweetRequest, CreateTweetResponse,
    DeleteTweetRequest, DeleteTweetResponse, GetTweetRequest, ImportTweetsRequest,
    ImportTweetsResponse, ListTweetsByAuthorRequest, Tweet as TweetProto, TweetPage,
    tweet_service_server::TweetService,
};
use chirp_runtime::trace_context;
use metrics::histogram;
use tokio::sync::Notify;
use tonic::{Request, Response, Status};

use crate::TweetError;
use crate::input::{IdempotencyKey, TweetContent};
use crate::stats;
use crate::store::{Claim, Store, Tweet};

/// The most ids one batch get may ask for: a timeline page, with room to spare.
const MAX_BATCH: usize = 200;
/// Page size when the caller asks for none, and the most one page may hold.
const PAGE: PageSize = PageSize {
    default: 20,
    max: 200,
};

pub struct Tweets {
    store: Arc<Store>,
    ids: Snowflake,
    /// Tells this instance's relay that an event is waiting.
    relay: Arc<Notify>,
}

impl Tweets {
    pub fn new(store: Arc<Store>, ids: Snowflake, relay: Arc<Notify>) -> Self {
        Self { store, ids, relay }
    }

    /// Creates a tweet, or completes the one `key` already stands for.
    /// Returns the tweet and whether it is new.
    ///
    /// A replay does the write again, deliberately: the first attempt may
    /// have died between claiming the key and writing the tweet, and a
    /// replay cannot tell. The write is idempotent (the rows, outbox row
    /// included, are rewritten byte for byte at the same timestamp, and an
    /// outbox row the relay already removed stays removed), so repeating it
    /// is always safe and is what finishes an interrupted create.
    async fn create(
        &self,
        author_id: i64,
        content: TweetContent,
        key: Option<IdempotencyKey>,
    ) -> Result<(Tweet, bool), TweetError> {
        let new_id = self.ids.next_id();
        let (tweet_id, created) = match &key {
            None => (new_id, true),
            Some(key) => match timed(
                "claim",
                self.store.claim_key(author_id, key, new_id, &content),
            )
            .await?
            {
                Claim::Won => (new_id, true),
                Claim::Taken(holder) if holder.content != content.as_str() => {
                    return Err(TweetError::IdempotencyKeyReused);
                }
                Claim::Taken(holder) if holder.deleted => return Err(TweetError::TweetDeleted),
                Claim::Taken(holder) => (holder.tweet_id, false),
            },
        };
        let tweet = Tweet {
            tweet_id,
            author_id,
            content: content.as_str().to_owned(),
        };
        let trace = trace_context::fields(&trace_context::current());
        timed(
            "write",
            self.store.write_tweet(&tweet, key.as_ref(), &trace),
        )
        .await?;
        self.relay.notify_one();
        Ok((tweet, created))
    }

    /// Deletes a tweet: its rows, its key's claim and its `TweetDeleted`
    /// event, in one batch, so there is no state in between for a retry to
    /// finish. The event's id is minted now, and forced above the tweet's,
    /// so the relay sends it after the tweet's `TweetCreated` whatever the
    /// clocks of the instances that minted them.
    async fn delete(&self, tweet_id: i64, requester_id: i64) -> Result<(), TweetError> {
        let stored = self
            .store
            .tweet(tweet_id)
            .await?
            .ok_or(TweetError::TweetNotFound(tweet_id))?;
        if stored.author_id != requester_id {
            return Err(TweetError::NotTheAuthor);
        }
        let key = stored.idempotency_key.clone();
        let tweet = stored.into_tweet();
        let event_id = self.ids.next_id().max(tweet.tweet_id + 1);
        let trace = trace_context::fields(&trace_context::current());
        self.store
            .delete(&tweet, key.as_deref(), event_id, &trace)
            .await?;
        self.relay.notify_one();
        Ok(())
    }
}

#[tonic::async_trait]
impl TweetService for Tweets {
    #[tracing::instrument(skip_all, fields(author_id = request.get_ref().author_id))]
    async fn create_tweet(
        &self,
        request: Request<CreateTweetRequest>,
    ) -> Result<Response<CreateTweetResponse>, Status> {
        let request = request.into_inner();
        if request.author_id <= 0 {
            return Err(
                TweetError::InvalidArgument("author_id must be positive".to_owned()).into(),
            );
        }
        let content = TweetContent::parse(&request.content)?;
        let key = IdempotencyKey::parse(&request.idempotency_key)?;
        let (tweet, created) = self.create(request.author_id, content, key).await?;
        if created {
            tracing::info!(tweet_id = tweet.tweet_id, "tweet created");
        } else {
            tracing::info!(tweet_id = tweet.tweet_id, "tweet create replayed");
        }
        Ok(Response::new(CreateTweetResponse {
            tweet: Some(to_proto(tweet)),
            created,
        }))
    }

    async fn get_tweet(
        &self,
        request: Request<GetTweetRequest>,
    ) -> Result<Response<TweetProto>, Status> {
        let tweet_id = request.into_inner().tweet_id;
        let stored = self
            .store
            .tweet(tweet_id)
            .await?
            .ok_or(TweetError::TweetNotFound(tweet_id))?;
        Ok(Response::new(to_proto(stored.into_tweet())))
    }

    async fn batch_get_tweets(
        &self,
        request: Request<BatchGetTweetsRequest>,
    ) -> Result<Response<BatchGetTweetsResponse>, Status> {
        let tweet_ids = request.into_inner().tweet_ids;
        if tweet_ids.len() > MAX_BATCH {
            return Err(TweetError::InvalidArgument(format!(
                "at most {MAX_BATCH} tweet_ids per call, got {}",
                tweet_ids.len()
            ))
            .into());
        }
        let tweets = self.store.tweets(&tweet_ids).await?;
        Ok(Response::new(BatchGetTweetsResponse {
            tweets: tweets.into_iter().map(to_proto).collect(),
        }))
    }

    async fn list_tweets_by_author(
        &self,
        request: Request<ListTweetsByAuthorRequest>,
    ) -> Result<Response<TweetPage>, Status> {
        let request = request.into_inner();
        let limit = PAGE.resolve(request.limit);
        let tweets = self
            .store
            .tweets_by_author(request.author_id, request.before_tweet_id, limit as i32 + 1)
            .await?;
        Ok(Response::new(page(tweets, limit)))
    }

    #[tracing::instrument(skip_all, fields(tweets = request.get_ref().tweets.len()))]
    async fn import_tweets(
        &self,
        request: Request<ImportTweetsRequest>,
    ) -> Result<Response<ImportTweetsResponse>, Status> {
        let written =
            crate::import::import_tweets(&self.store, request.into_inner().tweets).await?;
        Ok(Response::new(ImportTweetsResponse { written }))
    }

    #[tracing::instrument(skip_all, fields(tweet_id = request.get_ref().tweet_id, requester_id = request.get_ref().requester_id))]
    async fn delete_tweet(
        &self,
        request: Request<DeleteTweetRequest>,
    ) -> Result<Response<DeleteTweetResponse>, Status> {
        let DeleteTweetRequest {
            tweet_id,
            requester_id,
        } = request.into_inner();
        self.delete(tweet_id, requester_id).await?;
        tracing::info!("tweet deleted");
        Ok(Response::new(DeleteTweetResponse {}))
    }
}

fn to_proto(tweet: Tweet) -> TweetProto {
    TweetProto {
        created_at_ms: timestamp_ms(tweet.tweet_id),
        tweet_id: tweet.tweet_id,
        author_id: tweet.author_id,
        content: tweet.content,
    }
}

/// The page of `tweets`, read with one row more than `limit`.
fn page(mut tweets: Vec<Tweet>, limit: usize) -> TweetPage {
    TweetPage {
        next_before_tweet_id: paging::cut(&mut tweets, limit, |tweet| tweet.tweet_id),
        tweets: tweets.into_iter().map(to_proto).collect(),
    }
}

/// `step` of a post, timed into [`stats::POST_STEP`], whether it succeeds
/// or fails.
async fn timed<T>(step: &'static str, work: impl Future<Output = T>) -> T {
    let started = Instant::now();
    let outcome = work.await;
    histogram!(stats::POST_STEP, "step" => step).record(started.elapsed().as_secs_f64());
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tweets(ids: &[i64]) -> Vec<Tweet> {
        ids.iter()
            .map(|&tweet_id| Tweet {
                tweet_id,
                author_id: 1,
                content: "hi".to_owned(),
            })
            .collect()
    }

    #[test]
    fn a_cursor_only_when_more_rows_exist() {
        let full = page(tweets(&[9, 8, 7]), 2);
        assert_eq!(full.next_before_tweet_id, Some(8));
        assert_eq!(
            full.tweets.iter().map(|t| t.tweet_id).collect::<Vec<_>>(),
            [9, 8]
        );
        assert_eq!(page(tweets(&[9, 8]), 2).next_before_tweet_id, None);
        assert_eq!(page(tweets(&[]), 2).next_before_tweet_id, None);
    }

    #[test]
    fn page_sizes_are_bounded() {
        assert_eq!(PAGE.resolve(0), 20);
        assert_eq!(PAGE.resolve(7), 7);
        assert_eq!(PAGE.resolve(u32::MAX), 200);
    }
}
