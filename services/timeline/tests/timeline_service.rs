//! The timeline service against the real stack: a real tweet service on its
//! own keyspace and topic, home timelines in Redis under a fresh key prefix.
//!
//! Most tests write timelines directly with `HomeTimelines::push`, standing
//! in for the fan-out worker, into a timeline built empty (pushes land only
//! in cached timelines), then read them back through gRPC as a client
//! would. Others follow real users in the (real) graph service and let the
//! timeline be rebuilt from the stores. The store's own specification is
//! in `timeline_service/store.rs`.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use chirp_grpc::Channel;
use chirp_proto::graph::graph_service_client::GraphServiceClient;
use chirp_proto::graph::{CreateUserRequest, FollowRequest, ImportGraphChunk, ImportedFollow};
use chirp_proto::timeline::timeline_service_client::TimelineServiceClient;
use chirp_proto::timeline::{GetHomeTimelineRequest, HomeTimelinePage, ItemSource, TimelineCache};
use chirp_proto::tweet::tweet_service_client::TweetServiceClient;
use chirp_proto::tweet::{CreateTweetRequest, DeleteTweetRequest, Tweet};
use chirp_test_support::{
    CQL, KAFKA, ensure_backends, eventually, fresh_database, local_listener, redis_store_flags,
    spawn_service, unique_name,
};
use chirp_timeline_store::{HomeTimelines, State, TimelineStoreArgs};
use clap::Parser;
use tokio::net::TcpListener;

#[path = "timeline_service/stand_in.rs"]
mod stand_in;
#[path = "timeline_service/store.rs"]
mod store;

use stand_in::StandInTweets;

/// The reader whose home timeline the tests fill.
const READER: i64 = 42;

struct TestApp {
    tweet_addr: String,
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
        chirp_grpc::connect_lazy(&tweet_addr, Duration::from_secs(60)).unwrap(),
    );
    let graph_addr = spawn_graph().await;
    let (timeline, timelines) = spawn_timeline(&tweet_addr, &graph_addr).await;
    // The services connect to their stores before they serve (a fresh
    // keyspace takes seconds on a busy machine): wait for a real read.
    eventually(
        Duration::from_secs(60),
        "the timeline service to answer",
        || {
            let mut timeline = timeline.clone();
            async move {
                let request = GetHomeTimelineRequest {
                    user_id: 1,
                    limit: 1,
                    ..Default::default()
                };
                timeline.get_home_timeline(request).await.ok().map(|_| ())
            }
        },
    )
    .await;
    TestApp {
        tweet_addr,
        timeline,
        tweets,
        timelines,
    }
}

/// A graph service on a fresh database, with a key prefix of its own;
/// returns its address.
async fn spawn_graph() -> String {
    let store = chirp_test_support::timeline_store(&format!("{}:", unique_name("graph_test")));
    spawn_graph_on(&store, &[]).await
}

/// A timeline service that hydrates through `tweet_addr` and asks the graph
/// at `graph_addr`, and a handle on the Redis timelines it reads.
async fn spawn_timeline(
    tweet_addr: &str,
    graph_addr: &str,
) -> (TimelineServiceClient<Channel>, HomeTimelines) {
    let store = chirp_test_support::timeline_store(&format!("{}:", unique_name("timeline_test")));
    let mut argv = vec![
        "timeline",
        "--tweet-addr",
        tweet_addr,
        "--graph-addr",
        graph_addr,
    ];
    argv.extend(redis_store_flags(&store.redis));
    let config = timeline::Config::try_parse_from(argv).unwrap();
    let (listener, addr) = local_listener().await;
    spawn_service(
        "timeline",
        timeline::run(config, listener, std::future::pending()),
    );
    let client = TimelineServiceClient::new(
        chirp_grpc::connect_lazy(&addr, Duration::from_secs(10)).unwrap(),
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

/// A timeline service in front of a [`StandInTweets`] that knows `by_author`
/// and answers each call after 300 ms, so that concurrent reads overlap.
async fn spawn_with_counting_tweets(
    by_author: HashMap<i64, Vec<i64>>,
) -> (TimelineServiceClient<Channel>, HomeTimelines, StandInTweets) {
    ensure_backends();
    let fake = StandInTweets::slow(by_author, Duration::from_millis(300));
    let tweet_addr = fake.serve().await;
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
    // The only test of this binary to install a recorder; the others'
    // services record into it too, so only growth is asserted.
    let metrics = chirp_runtime::metrics::builder()
        .install_recorder()
        .expect("the only recorder of this test binary");
    let waits = || {
        let exposition = metrics.render();
        chirp_runtime::metrics::total(
            &exposition,
            "chirp_timeline_coalesced_waits_total",
            &["work=\"tweet\""],
        )
    };
    let waited_before = waits();
    let hot_tweet = 1_000;
    let (timeline, timelines, fake) =
        spawn_with_counting_tweets([(7, vec![hot_tweet])].into()).await;
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
    assert!(
        waits() > waited_before,
        "the reads that found the tweet being fetched are counted as coalesced waits"
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
    let (timeline, timelines, fake) = spawn_with_counting_tweets(HashMap::new()).await;

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

/// A graph service on a fresh database that invalidates timelines under
/// `store`'s prefix, as the deployed one does, with `extra` flags; returns
/// its address.
async fn spawn_graph_on(store: &TimelineStoreArgs, extra: &[&str]) -> String {
    let database_url = fresh_database().await;
    let (listener, addr) = local_listener().await;
    chirp_stack::spawn_graph(listener, &database_url, &store.redis, extra);
    addr
}

/// A timeline service in front of `tweet_addr` and a graph that share its
/// key prefix, with `args` on top; the graph's celebrity threshold is 2.
struct Stack {
    timeline: TimelineServiceClient<Channel>,
    graph: GraphServiceClient<Channel>,
    timelines: HomeTimelines,
}

async fn spawn_stack(tweet_addr: &str, args: &[&str]) -> Stack {
    ensure_backends();
    let store = chirp_test_support::timeline_store(&format!("{}:", unique_name("stack_test")));
    let graph_addr = spawn_graph_on(&store, &["--celebrity-threshold", "2"]).await;
    let mut argv = vec![
        "timeline",
        "--tweet-addr",
        tweet_addr,
        "--graph-addr",
        &graph_addr,
    ];
    argv.extend(redis_store_flags(&store.redis));
    argv.extend_from_slice(args);
    let config = timeline::Config::try_parse_from(argv).unwrap();
    let (listener, addr) = local_listener().await;
    spawn_service(
        "timeline",
        timeline::run(config, listener, std::future::pending()),
    );
    let connect = |addr: &str| chirp_grpc::connect_lazy(addr, Duration::from_secs(60));
    Stack {
        timeline: TimelineServiceClient::new(connect(&addr).unwrap()),
        graph: GraphServiceClient::new(connect(&graph_addr).unwrap()),
        timelines: HomeTimelines::connect(&TimelineStoreArgs {
            timeline_capacity: config_capacity(args),
            ..store
        })
        .await
        .unwrap(),
    }
}

/// The `--timeline-capacity` among `args`, or the default.
fn config_capacity(args: &[&str]) -> usize {
    args.windows(2)
        .find(|pair| pair[0] == "--timeline-capacity")
        .map_or(800, |pair| pair[1].parse().unwrap())
}

impl Stack {
    /// Reads `reader`'s first page on a task of its own, so that the test
    /// can act while the read waits at the gate of [`spawn_gated`].
    fn read_in_the_background(
        &self,
        reader: i64,
    ) -> tokio::task::JoinHandle<Result<tonic::Response<HomeTimelinePage>, tonic::Status>> {
        let mut timeline = self.timeline.clone();
        tokio::spawn(async move {
            let request = GetHomeTimelineRequest {
                user_id: reader,
                limit: 10,
                ..Default::default()
            };
            timeline.get_home_timeline(request).await
        })
    }

    async fn user(&self, handle: &str) -> i64 {
        chirp_test_support::create_user(&self.graph, handle).await
    }

    async fn follow(&self, follower_id: i64, followee_id: i64) {
        let request = FollowRequest {
            follower_id,
            followee_id,
        };
        self.graph.clone().follow(request).await.unwrap();
    }

    async fn page(&self, user_id: i64, before: Option<i64>, limit: u32) -> HomeTimelinePage {
        let request = GetHomeTimelineRequest {
            user_id,
            before_tweet_id: before,
            limit,
            explain: true,
        };
        let page = self.timeline.clone().get_home_timeline(request).await;
        page.unwrap().into_inner()
    }

    /// Every page from the newest, following the cursor.
    async fn all_pages(&self, user_id: i64, limit: u32) -> Vec<HomeTimelinePage> {
        let mut pages = vec![self.page(user_id, None, limit).await];
        while let Some(before) = pages.last().and_then(|page| page.next_before_tweet_id) {
            pages.push(self.page(user_id, Some(before), limit).await);
        }
        pages
    }
}

async fn post(tweets: &TweetServiceClient<Channel>, author_id: i64) -> i64 {
    let request = CreateTweetRequest {
        author_id,
        content: format!("by {author_id}"),
        idempotency_key: String::new(),
    };
    let response = tweets.clone().create_tweet(request).await.unwrap();
    response
        .into_inner()
        .tweet
        .expect("a created tweet")
        .tweet_id
}

fn sources(page: &HomeTimelinePage) -> Vec<ItemSource> {
    page.sources
        .iter()
        .map(|&source| ItemSource::try_from(source).unwrap())
        .collect()
}

/// Issue 9: with a capacity of 5, a reader of 14 tweets pages through all
/// 14, the older ones read from the stores; the page's sources and
/// explanation say so.
async fn paging_past_the_cap(strategy: &str) {
    let app = spawn_app().await;
    let stack = spawn_stack(
        &app.tweet_addr,
        &["--timeline-capacity", "5", "--timeline-strategy", strategy],
    )
    .await;
    let [reader, friend, star, fan] = ["reader", "friend", "star", "fan"].map(|h| stack.user(h));
    let (reader, friend, star, fan) = (reader.await, friend.await, star.await, fan.await);
    for (follower, followee) in [(reader, friend), (reader, star), (fan, star)] {
        stack.follow(follower, followee).await;
    }
    let mut posted = Vec::new();
    for _ in 0..4 {
        for author in [friend, star, reader] {
            posted.push(post(&app.tweets, author).await);
        }
    }

    let first = stack.page(reader, None, 3).await;
    let explain = first.explain.clone().expect("explained");
    assert_eq!(explain.strategy, strategy);
    assert_eq!(explain.cache, TimelineCache::Rebuilt as i32);
    let hops: Vec<&str> = explain.hops.iter().map(|hop| hop.name.as_str()).collect();
    assert!(hops.starts_with(&["redis page", "rebuild"]), "{hops:?}");
    assert_eq!(hops.last(), Some(&"hydrate"));
    if strategy == "hybrid" {
        assert_eq!(explain.pulled_author_ids, [star]);
        assert_eq!(
            sources(&first),
            [ItemSource::Rebuilt, ItemSource::Pulled, ItemSource::Rebuilt]
        );
    } else {
        assert!(explain.pulled_author_ids.is_empty());
        assert_eq!(sources(&first), [ItemSource::Rebuilt; 3]);
    }

    // Two more, pushed as the fan-out worker would; the cache now holds
    // these and the three newest before them.
    for _ in 0..2 {
        let tweet_id = post(&app.tweets, friend).await;
        stack.timelines.push(&[reader], tweet_id).await.unwrap();
        posted.push(tweet_id);
    }
    posted.reverse();

    let pages = stack.all_pages(reader, 3).await;

    let read: Vec<i64> = pages.iter().flat_map(|page| ids(&page.tweets)).collect();
    assert_eq!(read, posted, "every tweet once, newest first");
    let explain = pages[0].explain.as_ref().unwrap();
    assert_eq!(explain.cache, TimelineCache::Hit as i32);
    assert_eq!(sources(&pages[0])[..2], [ItemSource::Pushed; 2]);
    let all_sources: Vec<ItemSource> = pages.iter().flat_map(sources).collect();
    assert_eq!(all_sources.len(), posted.len(), "one source per tweet");
    assert!(all_sources.contains(&ItemSource::Store), "{all_sources:?}");
    assert!(!all_sources.contains(&ItemSource::Unspecified));
}

#[tokio::test]
async fn pages_past_the_cap_continue_from_the_stores_under_push() {
    paging_past_the_cap("push").await;
}

#[tokio::test]
async fn pages_past_the_cap_continue_from_the_stores_under_hybrid() {
    paging_past_the_cap("hybrid").await;
}

/// Issue 19: a page past the cap read the older tweets of every followee,
/// one tweet-store query each: thousands, page after page, for someone
/// following thousands. Now at most `--past-cap-max-authors`, and the page
/// says which were left out.
#[tokio::test]
async fn a_page_past_the_cap_reads_a_bounded_number_of_authors() {
    let app = spawn_app().await;
    let args = [
        "--timeline-capacity",
        "5",
        "--timeline-strategy",
        "push",
        "--past-cap-max-authors",
        "2",
    ];
    let stack = spawn_stack(&app.tweet_addr, &args).await;
    let reader = stack.user("reader").await;
    let friend = stack.user("friend").await;
    let other = stack.user("other").await;
    for followee in [friend, other] {
        stack.follow(reader, followee).await;
    }
    for _ in 0..4 {
        for author in [friend, other, reader] {
            post(&app.tweets, author).await;
        }
    }

    let pages = stack.all_pages(reader, 3).await;

    let from_store: Vec<i64> = pages
        .iter()
        .flat_map(|page| {
            let labelled = page.tweets.iter().zip(sources(page));
            labelled
                .filter(|(_, source)| *source == ItemSource::Store)
                .map(|(tweet, _)| tweet.author_id)
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(!from_store.is_empty(), "no page went past the cap");
    assert!(
        from_store.iter().all(|&author| author != other),
        "the store was read for an author past the bound: {from_store:?}"
    );
    let notes: Vec<&String> = pages
        .iter()
        .flat_map(|page| page.explain.iter().flat_map(|explain| &explain.notes))
        .collect();
    assert!(
        notes.iter().any(|note| note.contains("2 of the 3")),
        "{notes:?}"
    );
}

/// Issue 19: a page deeper than the pulled authors' cached ids read each of
/// them from the tweet store, one query per author: up to 5 000 for a
/// reader of 5 000 celebrities, page after page. Now at most
/// `--pulled-store-max-authors`, and the page says how many were left out.
#[tokio::test]
async fn a_deep_page_reads_a_bounded_number_of_pulled_authors() {
    // Users are numbered 1 (the reader), 2 (a fan), 3, 4, 5 (celebrities
    // at the graph's threshold of 2) in a fresh graph database.
    let (reader, fan, celebrities) = (1, 2, [3, 4, 5]);
    // More tweets each than the pulled-ids cache keeps (101), interleaved.
    let by_author: HashMap<i64, Vec<i64>> = celebrities
        .iter()
        .map(|&author| (author, (1..=150).rev().map(|n| n * 10 + author).collect()))
        .collect();
    let fake = StandInTweets::slow(by_author, Duration::ZERO);
    let tweet_addr = fake.serve().await;
    let args = [
        "--timeline-strategy",
        "hybrid",
        "--pulled-store-max-authors",
        "2",
    ];
    let stack = spawn_stack(&tweet_addr, &args).await;
    for handle in ["reader", "fan", "c3", "c4", "c5"] {
        stack.user(handle).await;
    }
    for follower in [reader, fan] {
        for celebrity in celebrities {
            stack.follow(follower, celebrity).await;
        }
    }

    // Below every author's cached ids (their 101 newest reach down to 500).
    let page = stack.page(reader, Some(300), 10).await;

    let explain = page.explain.as_ref().expect("explained");
    assert_eq!(explain.pulled_author_ids, celebrities);
    let authors: HashSet<i64> = page.tweets.iter().map(|tweet| tweet.author_id).collect();
    assert_eq!(
        authors,
        HashSet::from([3, 4]),
        "the first two by user id are read from the store, the third left out"
    );
    assert_eq!(ids(&page.tweets)[0], 294, "the newest below the cursor");
    assert!(
        explain
            .notes
            .iter()
            .any(|note| note.contains("2 of the 3 pulled")),
        "{:?}",
        explain.notes
    );
}

#[tokio::test]
async fn a_deleted_tweet_leaves_the_hydration_cache_without_waiting_for_its_ttl() {
    let app = spawn_app().await;
    let [kept, deleted]: [Tweet; 2] = app.tweets_in_timeline(2).await.try_into().unwrap();
    assert_eq!(ids(&app.page(None, 10).await.tweets).len(), 2, "now cached");

    // A race left the id in the timeline; the fan-out worker buried it.
    app.delete(&deleted).await;
    app.timelines.bury(deleted.tweet_id).await.unwrap();

    let started = std::time::Instant::now();
    while ids(&app.page(None, 10).await.tweets) != [kept.tweet_id] {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the deleted tweet is still served from the hydration cache"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A [`Stack`] in front of a [`StandInTweets`] whose author listings,
/// from `by_author`, wait at a gate; the gate's handle, and the signal of
/// a listing reaching it.
async fn spawn_gated(
    by_author: HashMap<i64, Vec<i64>>,
) -> (
    Stack,
    tokio::sync::watch::Sender<bool>,
    Arc<tokio::sync::Notify>,
) {
    spawn_gated_with(by_author, &[]).await
}

/// [`spawn_gated`], the timeline service with `args` on top.
async fn spawn_gated_with(
    by_author: HashMap<i64, Vec<i64>>,
    args: &[&str],
) -> (
    Stack,
    tokio::sync::watch::Sender<bool>,
    Arc<tokio::sync::Notify>,
) {
    let (fake, gate) = StandInTweets::gated(by_author);
    let tweet_addr = fake.serve().await;
    (spawn_stack(&tweet_addr, args).await, gate, fake.arrived)
}

/// Issue 10: the reader follows someone while their timeline is being
/// rebuilt from the followees of before. That rebuild must not complete the
/// timeline, or the new followee's tweets would be missing for as long as
/// the reader keeps reading.
#[tokio::test]
async fn a_follow_during_a_rebuild_keeps_the_stale_rebuild_from_completing() {
    // Users are numbered 1, 2 in a fresh graph database.
    let (reader, author, tweet) = (1, 2, 100);
    let (stack, gate, arrived) = spawn_gated([(author, vec![tweet])].into()).await;
    assert_eq!(stack.user("reader").await, reader);
    assert_eq!(stack.user("author").await, author);

    let read = stack.read_in_the_background(reader);
    arrived.notified().await;
    stack.follow(reader, author).await;
    gate.send(true).unwrap();
    read.await.unwrap().unwrap();

    let state = stack.timelines.read(reader, None, 10).await.unwrap().state;
    assert_ne!(
        state,
        State::Complete { cut: false },
        "the stale rebuild completed"
    );
    assert_eq!(ids(&stack.page(reader, None, 10).await.tweets), [tweet]);
}

/// Issue 10: a rebuild whose read was cancelled (the client hung up) still
/// runs to its end, as a task of its own, instead of waiting, half done,
/// for a later read to resume it with the followees of back then.
#[tokio::test]
async fn a_rebuild_outlives_the_cancelled_read_that_started_it() {
    let reader = 1;
    let (stack, gate, arrived) = spawn_gated([(reader, vec![7])].into()).await;
    assert_eq!(stack.user("reader").await, reader);

    let read = stack.read_in_the_background(reader);
    arrived.notified().await;
    // The server runs on this test's (single) thread, so an event it emits
    // reaches a subscriber set for this thread.
    let (cancelled, _subscriber) = on_event("read stopped waiting, the rebuild goes on");
    read.abort();
    // The rebuild goes on only once the server has dropped the read.
    tokio::time::timeout(Duration::from_secs(10), cancelled.notified())
        .await
        .expect("the server saw the read cancelled");
    gate.send(true).unwrap();

    let started = std::time::Instant::now();
    loop {
        let cached = stack.timelines.read(reader, None, 10).await.unwrap();
        if cached.state == (State::Complete { cut: false }) {
            assert_eq!(cached.ids, [7]);
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the rebuild stopped with the read: {cached:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A signal of `message` logged on this thread, as long as the guard lives.
fn on_event(
    message: &'static str,
) -> (Arc<tokio::sync::Notify>, tracing::subscriber::DefaultGuard) {
    use tracing_subscriber::layer::{Context, Layer, SubscriberExt};

    struct Signal {
        message: &'static str,
        seen: Arc<tokio::sync::Notify>,
    }
    struct Message(String);
    impl tracing::field::Visit for Message {
        fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
            if field.name() == "message" {
                self.0 = format!("{value:?}");
            }
        }
    }
    impl<S: tracing::Subscriber> Layer<S> for Signal {
        fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
            let mut message = Message(String::new());
            event.record(&mut message);
            if message.0 == self.message {
                self.seen.notify_one();
            }
        }
    }
    let seen = Arc::new(tokio::sync::Notify::new());
    let layer = Signal {
        message,
        seen: Arc::clone(&seen),
    };
    let subscriber = tracing_subscriber::registry().with(layer);
    (seen, tracing::subscriber::set_default(subscriber))
}

/// Issue 9: a reader following more than a page (1 000) of celebrities
/// sees the tweets of the ones past it: none are pushed, so each must be
/// pulled. The graph's threshold is 2: every user the reader and a fan
/// both follow is a celebrity.
#[tokio::test]
async fn a_tweet_of_the_1001st_followed_celebrity_is_pulled() {
    const CELEBRITIES: u32 = 1_001;
    let app = spawn_app().await;
    let stack = spawn_stack(&app.tweet_addr, &["--timeline-strategy", "hybrid"]).await;
    let (reader, last_celebrity) = follow_celebrities(&stack, CELEBRITIES).await;
    let tweet_id = post(&app.tweets, last_celebrity).await;

    let page = stack.page(reader, None, 10).await;

    let explain = page.explain.as_ref().expect("explained");
    assert_eq!(explain.pulled_author_ids.len(), CELEBRITIES as usize);
    assert!(explain.notes.is_empty(), "{:?}", explain.notes);
    assert_eq!(ids(&page.tweets), [tweet_id]);
    assert_eq!(sources(&page), [ItemSource::Pulled]);
}

/// Issue 19: a reader following more celebrities than a page pulls from
/// (5 000) lost the tweets of the ones past it with no word in the page;
/// its explanation now says so.
#[tokio::test]
async fn a_page_says_when_followed_celebrities_past_the_bound_are_left_out() {
    const CELEBRITIES: u32 = 5_001;
    let app = spawn_app().await;
    let stack = spawn_stack(&app.tweet_addr, &["--timeline-strategy", "hybrid"]).await;
    let (reader, _) = follow_celebrities(&stack, CELEBRITIES).await;

    let page = stack.page(reader, None, 10).await;

    let explain = page.explain.as_ref().expect("explained");
    assert_eq!(explain.pulled_author_ids.len(), 5_000);
    assert!(
        explain.notes.iter().any(|note| note.contains("first 5000")),
        "{:?}",
        explain.notes
    );
}

/// A reader (returned), a fan, and `celebrities` users both follow (each a
/// celebrity at the stack's threshold of 2); the last celebrity's id.
async fn follow_celebrities(stack: &Stack, celebrities: u32) -> (i64, i64) {
    // Numbered 0 (the reader), 1 (the fan), then the celebrities.
    let users = (0..celebrities + 2)
        .map(|n| CreateUserRequest {
            handle: format!("user{n}"),
            display_name: format!("User {n}"),
            ..Default::default()
        })
        .collect();
    let follows = (2..celebrities + 2)
        .flat_map(|celebrity| {
            [0, 1].map(|follower| ImportedFollow {
                follower,
                followee: celebrity,
            })
        })
        .collect();
    let chunk = ImportGraphChunk {
        user_count: celebrities + 2,
        users,
        follows,
    };
    let imported = stack
        .graph
        .clone()
        .import_graph(futures::stream::iter([chunk]))
        .await
        .unwrap()
        .into_inner();
    let reader = imported.first_user_id;
    (reader, reader + i64::from(celebrities) + 1)
}

/// Issue 22, Mastodon's 206: with `--answer-while-rebuilding`, a first page
/// whose timeline is missing does not wait for the rebuild: it is answered
/// at once with what Redis holds (here nothing), marked partial, and the
/// rebuild runs to its end although no read waits for it.
#[tokio::test]
async fn a_first_page_needing_a_rebuild_is_answered_at_once_and_marked_partial() {
    let reader = 1;
    let (stack, gate, arrived) = spawn_gated_with(
        [(reader, vec![7])].into(),
        &["--answer-while-rebuilding", "true"],
    )
    .await;
    assert_eq!(stack.user("reader").await, reader);

    let page = stack.page(reader, None, 10).await;
    assert!(page.partial, "answered while the rebuild waits at the gate");
    assert!(page.tweets.is_empty());
    let cache = page.explain.map(|explain| explain.cache);
    assert_eq!(cache, Some(TimelineCache::Partial as i32));
    arrived.notified().await;
    assert!(
        stack.page(reader, None, 10).await.partial,
        "still rebuilding"
    );
    gate.send(true).unwrap();

    let started = std::time::Instant::now();
    while stack.timelines.read(reader, None, 10).await.unwrap().state
        != (State::Complete { cut: false })
    {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the rebuild nobody waited for did not complete"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let page = stack.page(reader, None, 10).await;
    assert!(!page.partial);
    assert_eq!(ids(&page.tweets), [7]);
}

/// Issue 22: pages past the first (a cursor) wait for the rebuild as
/// before, even with `--answer-while-rebuilding`.
#[tokio::test]
async fn a_page_past_the_first_waits_for_the_rebuild_even_when_answering_while_rebuilding() {
    let reader = 1;
    let (stack, gate, arrived) = spawn_gated_with(
        [(reader, vec![7, 5])].into(),
        &["--answer-while-rebuilding", "true"],
    )
    .await;
    assert_eq!(stack.user("reader").await, reader);

    let mut timeline = stack.timeline.clone();
    let deeper = tokio::spawn(async move {
        let request = GetHomeTimelineRequest {
            user_id: reader,
            before_tweet_id: Some(7),
            limit: 10,
            explain: false,
        };
        timeline.get_home_timeline(request).await
    });
    arrived.notified().await;
    gate.send(true).unwrap();
    let page = deeper.await.unwrap().unwrap().into_inner();

    assert!(!page.partial);
    assert_eq!(ids(&page.tweets), [5]);
}

/// Issue 22, activity by last read: the reader's timeline is still cached,
/// but they have not read within `--active-window-secs`, so pushes skipped
/// them; their next read treats it as stale and rebuilds it, as Mastodon
/// regenerates a returning user's feed. The read after that is a hit.
#[tokio::test]
async fn a_returning_readers_cached_timeline_is_rebuilt() {
    let app = spawn_app().await;
    let stack = spawn_stack(&app.tweet_addr, &["--active-window-secs", "60"]).await;
    let (reader, author) = (stack.user("reader").await, stack.user("author").await);
    stack.follow(reader, author).await;
    let tweet = post(&app.tweets, author).await;
    // Cached, but without the tweet, which the fan-out skipped: the reader
    // was not active.
    stack.timelines.store_rebuilt(reader, &[]).await.unwrap();

    let returned = stack.page(reader, None, 10).await;
    let again = stack.page(reader, None, 10).await;

    let cache = |page: &HomeTimelinePage| page.explain.as_ref().map(|explain| explain.cache);
    assert_eq!(cache(&returned), Some(TimelineCache::Rebuilt as i32));
    assert_eq!(ids(&returned.tweets), [tweet]);
    assert_eq!(cache(&again), Some(TimelineCache::Hit as i32));
    assert_eq!(ids(&again.tweets), [tweet]);
    assert!(!returned.partial && !again.partial);
}
