//! A stand-in tweet service, for the tests that must control what the
//! timeline service's calls see: each answer slowed down (so concurrent
//! reads overlap), or author listings held at a gate the test opens (so a
//! rebuild can be held between its start and its end); and every call
//! counted.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use chirp_proto::tweet::tweet_service_server::{TweetService, TweetServiceServer};
use chirp_proto::tweet::{
    BatchGetTweetsRequest, BatchGetTweetsResponse, CreateTweetRequest, CreateTweetResponse,
    DeleteTweetRequest, DeleteTweetResponse, GetTweetRequest, ImportTweetsRequest,
    ImportTweetsResponse, ListTweetsByAuthorRequest, Tweet, TweetPage,
};
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};

#[derive(Clone, Default)]
pub struct StandInTweets {
    /// Each author's tweet ids, newest first.
    by_author: Arc<HashMap<i64, Vec<i64>>>,
    /// How long each answer takes.
    delay: Duration,
    /// Author listings wait until it holds `true`; none when absent.
    gate: Option<watch::Receiver<bool>>,
    /// Notified when a listing reaches the gate.
    pub arrived: Arc<Notify>,
    pub batch_gets: Arc<AtomicUsize>,
    pub author_lists: Arc<AtomicUsize>,
}

impl StandInTweets {
    /// Answering after `delay`, from `by_author`.
    pub fn slow(by_author: HashMap<i64, Vec<i64>>, delay: Duration) -> Self {
        Self {
            by_author: Arc::new(by_author),
            delay,
            ..Self::default()
        }
    }

    /// Listing authors from `by_author` once the gate opens; the gate's
    /// handle.
    pub fn gated(by_author: HashMap<i64, Vec<i64>>) -> (Self, watch::Sender<bool>) {
        let (gate, open) = watch::channel(false);
        let tweets = Self {
            by_author: Arc::new(by_author),
            gate: Some(open),
            ..Self::default()
        };
        (tweets, gate)
    }

    /// Serves it on a port of its own; returns the address.
    pub async fn serve(&self) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(TweetServiceServer::new(self.clone()))
                .serve_with_incoming(incoming),
        );
        addr
    }
}

fn tweet(tweet_id: i64, author_id: i64) -> Tweet {
    Tweet {
        tweet_id,
        author_id,
        content: format!("tweet {tweet_id}"),
        created_at_ms: 0,
    }
}

#[tonic::async_trait]
impl TweetService for StandInTweets {
    async fn batch_get_tweets(
        &self,
        request: tonic::Request<BatchGetTweetsRequest>,
    ) -> Result<tonic::Response<BatchGetTweetsResponse>, tonic::Status> {
        self.batch_gets.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(self.delay).await;
        let wanted = request.into_inner().tweet_ids;
        let tweets = self
            .by_author
            .iter()
            .flat_map(|(&author_id, ids)| ids.iter().map(move |&id| tweet(id, author_id)))
            .filter(|tweet| wanted.contains(&tweet.tweet_id))
            .collect();
        Ok(tonic::Response::new(BatchGetTweetsResponse { tweets }))
    }

    async fn list_tweets_by_author(
        &self,
        request: tonic::Request<ListTweetsByAuthorRequest>,
    ) -> Result<tonic::Response<TweetPage>, tonic::Status> {
        self.author_lists.fetch_add(1, Ordering::SeqCst);
        self.arrived.notify_one();
        if let Some(gate) = &self.gate {
            gate.clone().wait_for(|&open| open).await.unwrap();
        }
        tokio::time::sleep(self.delay).await;
        let request = request.into_inner();
        let ids = self.by_author.get(&request.author_id);
        let tweets = ids
            .into_iter()
            .flatten()
            .filter(|&&id| request.before_tweet_id.is_none_or(|before| id < before))
            .map(|&id| tweet(id, request.author_id))
            .collect();
        Ok(tonic::Response::new(TweetPage {
            tweets,
            next_before_tweet_id: None,
        }))
    }

    async fn create_tweet(
        &self,
        _: tonic::Request<CreateTweetRequest>,
    ) -> Result<tonic::Response<CreateTweetResponse>, tonic::Status> {
        Err(tonic::Status::unimplemented("not needed by the timeline"))
    }

    async fn get_tweet(
        &self,
        _: tonic::Request<GetTweetRequest>,
    ) -> Result<tonic::Response<Tweet>, tonic::Status> {
        Err(tonic::Status::unimplemented("not needed by the timeline"))
    }

    async fn delete_tweet(
        &self,
        _: tonic::Request<DeleteTweetRequest>,
    ) -> Result<tonic::Response<DeleteTweetResponse>, tonic::Status> {
        Err(tonic::Status::unimplemented("not needed by the timeline"))
    }

    async fn import_tweets(
        &self,
        _: tonic::Request<ImportTweetsRequest>,
    ) -> Result<tonic::Response<ImportTweetsResponse>, tonic::Status> {
        Err(tonic::Status::unimplemented("not needed by the timeline"))
    }
}
