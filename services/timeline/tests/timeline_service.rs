//! The timeline service against the real stack: a real tweet service on its
//! own keyspace and topic, home timelines in Redis under a fresh key prefix.
//!
//! Most tests write timelines directly with `HomeTimelines::push`, standing
//! in for the fan-out worker, into a timeline built empty (pushes land only
//! in cached timelines), then read them back through gRPC as a client
//! would. Others follow real users in the (real) graph service and let the
//! timeline be rebuilt from the stores. The store's own specification is
//! in `timeline_service/store.rs`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use chirp_common::grpc::Channel;
use chirp_common::proto::timeline::timeline_service_client::TimelineServiceClient;
use chirp_common::proto::timeline::{GetHomeTimelineRequest, HomeTimelinePage};
use chirp_common::proto::tweet::tweet_service_client::TweetServiceClient;
use chirp_common::proto::tweet::tweet_service_server::{TweetService, TweetServiceServer};
use chirp_common::proto::tweet::{
    BatchGetTweetsRequest, BatchGetTweetsResponse, CreateTweetRequest, CreateTweetResponse,
    DeleteTweetRequest, DeleteTweetResponse, GetTweetRequest, ListTweetsByAuthorRequest, Tweet,
    TweetPage,
};
use chirp_common::testing::{CQL, KAFKA, ensure_backends, fresh_database, unique_name};
use chirp_common::timelines::HomeTimelines;
use clap::Parser;
use tokio::net::TcpListener;

#[path = "timeline_service/store.rs"]
mod store;

/// The reader whose home timeline the tests fill.
const READER: i64 = 42;

struct TestApp {
    timeline: TimelineServiceClient<Channel>,
    tweets: TweetServiceClient<Channel>,
    timelines: HomeTimelines,
}

/// A tweet service and a timeline service in front of it.
async fn spawn_app() -> TestApp {
    ensure_backends();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let tweet_addr = listener.local_addr().unwrap().to_string();
    let config = tweet::Config::try_parse_from([
        "tweet",
        "--cql-nodes",
        CQL,
        "--cql-keyspace",
        &unique_name("timeline_test"),
        "--kafka-brokers",
        KAFKA,
        "--kafka-topic",
        &unique_name("timeline_test"),
    ])
    .unwrap();
    tokio::spawn(tweet::run(config, listener, std::future::pending()));
    // Generous: the first calls wait while the tweet service creates its keyspace.
    let tweets = TweetServiceClient::new(
        chirp_common::grpc::connect_lazy(&tweet_addr, Duration::from_secs(60)).unwrap(),
    );
    let graph_addr = spawn_graph().await;
    let (timeline, timelines) = spawn_timeline(&tweet_addr, &graph_addr).await;
    TestApp {
        timeline,
        tweets,
        timelines,
    }
}

/// A graph service on a fresh database; returns its address.
async fn spawn_graph() -> String {
    let database_url = fresh_database().await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let config = graph::Config::try_parse_from(["graph", "--database-url", &database_url]).unwrap();
    tokio::spawn(graph::run(config, listener, std::future::pending()));
    addr
}

/// A timeline service that hydrates through `tweet_addr` and asks the graph
/// at `graph_addr`, and a handle on the Redis timelines it reads.
async fn spawn_timeline(
    tweet_addr: &str,
    graph_addr: &str,
) -> (TimelineServiceClient<Channel>, HomeTimelines) {
    let store =
        chirp_common::testing::timeline_store(&format!("{}:", unique_name("timeline_test")));
    let config = timeline::Config::try_parse_from([
        "timeline",
        "--tweet-addr",
        tweet_addr,
        "--graph-addr",
        graph_addr,
        "--redis-url",
        &store.redis_url,
        "--redis-key-prefix",
        &store.redis_key_prefix,
    ])
    .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(timeline::run(config, listener, std::future::pending()));
    let client = TimelineServiceClient::new(
        chirp_common::grpc::connect_lazy(&addr, Duration::from_secs(10)).unwrap(),
    );
    (client, HomeTimelines::connect(&store).await.unwrap())
}

impl TestApp {
    /// Creates `count` tweets, oldest first, and pushes each into the
    /// reader's timeline the way the fan-out worker would.
    async fn tweets_in_timeline(&self, count: usize) -> Vec<Tweet> {
        // The reader has read before: their timeline is cached.
        self.timelines.store_rebuilt(READER, &[]).await.unwrap();
        let mut created = Vec::new();
        for n in 0..count {
            let request = CreateTweetRequest {
                author_id: 1 + n as i64 % 3,
                content: format!("tweet number {n}"),
                idempotency_key: String::new(),
            };
            let response = self.tweets.clone().create_tweet(request).await.unwrap();
            let tweet = response.into_inner().tweet.expect("a created tweet");
            self.timelines
                .push(&[READER], tweet.tweet_id)
                .await
                .unwrap();
            created.push(tweet);
        }
        created
    }

    async fn delete(&self, tweet: &Tweet) {
        let request = DeleteTweetRequest {
            tweet_id: tweet.tweet_id,
            requester_id: tweet.author_id,
        };
        self.tweets.clone().delete_tweet(request).await.unwrap();
    }

    async fn page(&self, before_tweet_id: Option<i64>, limit: u32) -> HomeTimelinePage {
        self.try_page(READER, before_tweet_id, limit).await.unwrap()
    }

    async fn try_page(
        &self,
        user_id: i64,
        before_tweet_id: Option<i64>,
        limit: u32,
    ) -> Result<HomeTimelinePage, tonic::Status> {
        let request = GetHomeTimelineRequest {
            user_id,
            before_tweet_id,
            limit,
            ..Default::default()
        };
        Ok(self
            .timeline
            .clone()
            .get_home_timeline(request)
            .await?
            .into_inner())
    }

    /// Follows the cursor from the newest page to the last one.
    async fn all_pages(&self, limit: u32) -> Vec<HomeTimelinePage> {
        let mut pages = vec![self.page(None, limit).await];
        while let Some(before) = pages.last().and_then(|page| page.next_before_tweet_id) {
            pages.push(self.page(Some(before), limit).await);
        }
        pages
    }
}

fn ids(tweets: &[Tweet]) -> Vec<i64> {
    tweets.iter().map(|tweet| tweet.tweet_id).collect()
}

#[tokio::test]
async fn pages_run_newest_first_without_gaps_or_duplicates() {
    let app = spawn_app().await;
    let mut created = app.tweets_in_timeline(7).await;
    created.reverse();

    let pages = app.all_pages(3).await;

    let sizes: Vec<usize> = pages.iter().map(|page| page.tweets.len()).collect();
    assert_eq!(sizes, [3, 3, 1]);
    let read: Vec<Tweet> = pages.into_iter().flat_map(|page| page.tweets).collect();
    assert_eq!(
        read, created,
        "every tweet once, newest first, with its content"
    );
}

#[tokio::test]
async fn deleted_tweets_are_dropped_while_the_cursor_moves_past_them() {
    let app = spawn_app().await;
    let [t1, t2, t3, t4, t5]: [Tweet; 5] = app.tweets_in_timeline(5).await.try_into().unwrap();
    app.delete(&t3).await;
    app.delete(&t4).await;

    let first = app.page(None, 3).await;
    assert_eq!(ids(&first.tweets), [t5.tweet_id]);
    assert_eq!(
        first.next_before_tweet_id,
        Some(t3.tweet_id),
        "the cursor is the last id read"
    );
    let second = app.page(first.next_before_tweet_id, 3).await;
    assert_eq!(ids(&second.tweets), [t2.tweet_id, t1.tweet_id]);
    assert_eq!(second.next_before_tweet_id, None);
}

#[tokio::test]
async fn limits_default_to_20_and_are_capped_at_100() {
    let app = spawn_app().await;
    app.tweets_in_timeline(101).await;

    assert_eq!(app.page(None, 0).await.tweets.len(), 20);
    assert_eq!(app.page(None, 5).await.tweets.len(), 5);
    let capped = app.page(None, 1000).await;
    assert_eq!(capped.tweets.len(), 100);
    assert!(capped.next_before_tweet_id.is_some());
}

#[tokio::test]
async fn an_empty_timeline_is_an_empty_last_page() {
    let app = spawn_app().await;

    let page = app.page(None, 10).await;

    assert!(page.tweets.is_empty());
    assert_eq!(page.next_before_tweet_id, None);
}

#[tokio::test]
async fn user_ids_and_cursors_must_be_positive() {
    let app = spawn_app().await;

    for (user_id, before) in [(0, None), (-1, None), (READER, Some(0))] {
        let status = app.try_page(user_id, before, 10).await.unwrap_err();
        assert_eq!(
            status.code(),
            tonic::Code::InvalidArgument,
            "{user_id} {before:?}"
        );
    }
}

#[tokio::test]
async fn a_tweet_service_outage_is_unavailable() {
    ensure_backends();
    let nothing_listens = {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        listener.local_addr().unwrap().to_string()
    };
    let graph_addr = spawn_graph().await;
    let (timeline, timelines) = spawn_timeline(&nothing_listens, &graph_addr).await;
    timelines.store_rebuilt(READER, &[1]).await.unwrap();

    let request = GetHomeTimelineRequest {
        user_id: READER,
        before_tweet_id: None,
        limit: 10,
        ..Default::default()
    };
    let status = timeline
        .clone()
        .get_home_timeline(request)
        .await
        .unwrap_err();

    assert_eq!(status.code(), tonic::Code::Unavailable);
}

/// A stand-in tweet service that counts the calls a timeline makes and
/// answers each slowly, so that concurrent reads overlap them.
#[derive(Default, Clone)]
struct CountingTweets {
    batch_gets: Arc<AtomicUsize>,
    author_lists: Arc<AtomicUsize>,
}

#[tonic::async_trait]
impl TweetService for CountingTweets {
    async fn batch_get_tweets(
        &self,
        request: tonic::Request<BatchGetTweetsRequest>,
    ) -> Result<tonic::Response<BatchGetTweetsResponse>, tonic::Status> {
        self.batch_gets.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(300)).await;
        let tweets = request
            .into_inner()
            .tweet_ids
            .into_iter()
            .map(|tweet_id| Tweet {
                tweet_id,
                author_id: 7,
                content: format!("tweet {tweet_id}"),
                created_at_ms: 0,
            })
            .collect();
        Ok(tonic::Response::new(BatchGetTweetsResponse { tweets }))
    }

    async fn list_tweets_by_author(
        &self,
        _: tonic::Request<ListTweetsByAuthorRequest>,
    ) -> Result<tonic::Response<TweetPage>, tonic::Status> {
        self.author_lists.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(300)).await;
        Ok(tonic::Response::new(TweetPage::default()))
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
}

/// A timeline service in front of a [`CountingTweets`].
async fn spawn_with_counting_tweets() -> (
    TimelineServiceClient<Channel>,
    HomeTimelines,
    CountingTweets,
) {
    ensure_backends();
    let fake = CountingTweets::default();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let tweet_addr = listener.local_addr().unwrap().to_string();
    let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TweetServiceServer::new(fake.clone()))
            .serve_with_incoming(incoming),
    );
    let (timeline, timelines) = spawn_timeline(&tweet_addr, &spawn_graph().await).await;
    (timeline, timelines, fake)
}

async fn read_first_page(
    timeline: &TimelineServiceClient<Channel>,
    user_id: i64,
) -> HomeTimelinePage {
    let request = GetHomeTimelineRequest {
        user_id,
        before_tweet_id: None,
        limit: 10,
        ..Default::default()
    };
    timeline
        .clone()
        .get_home_timeline(request)
        .await
        .unwrap()
        .into_inner()
}

#[tokio::test]
async fn concurrent_reads_of_an_uncached_tweet_fetch_it_once() {
    let (timeline, timelines, fake) = spawn_with_counting_tweets().await;
    let hot_tweet = 1_000;
    let readers: Vec<i64> = (1..=50).collect();
    for &reader in &readers {
        timelines.store_rebuilt(reader, &[hot_tweet]).await.unwrap();
    }

    let reads = readers
        .iter()
        .map(|&reader| read_first_page(&timeline, reader));
    let pages = futures::future::join_all(reads).await;

    for page in &pages {
        assert_eq!(ids(&page.tweets), [hot_tweet]);
    }
    assert_eq!(
        fake.batch_gets.load(Ordering::SeqCst),
        1,
        "one fetch for all readers"
    );
    read_first_page(&timeline, 1).await;
    assert_eq!(
        fake.batch_gets.load(Ordering::SeqCst),
        1,
        "then served from the cache"
    );
}

#[tokio::test]
async fn concurrent_reads_of_a_missing_timeline_rebuild_it_once() {
    let (timeline, timelines, fake) = spawn_with_counting_tweets().await;

    let reads = (0..20).map(|_| read_first_page(&timeline, READER));
    let pages = futures::future::join_all(reads).await;

    assert!(pages.iter().all(|page| page.tweets.is_empty()));
    // The reader follows nobody: a rebuild lists the reader's own tweets only.
    assert_eq!(
        fake.author_lists.load(Ordering::SeqCst),
        1,
        "one rebuild for all reads"
    );
    assert!(
        timelines
            .page_if_complete(READER, None, 10)
            .await
            .unwrap()
            .is_some()
    );
    read_first_page(&timeline, READER).await;
    assert_eq!(
        fake.author_lists.load(Ordering::SeqCst),
        1,
        "then read from Redis"
    );
}
