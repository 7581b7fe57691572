//! The graph service against real Postgres and Redis, through its gRPC API.
//!
//! Each test gets its own database and Redis key prefix. So far this binary
//! covers the bulk paths: `BatchGetUsers`; `ImportFollows`, a batch of which
//! must leave the graph exactly as the same follows made one by one would, and
//! be safe to retry; `ImportGraph`, which must be all or nothing; the
//! most-followed users, `ListPopularUsers`; and the pages of
//! `ListFollowedCelebrities`.

use std::time::Duration;

use chirp_grpc::Channel;
use chirp_proto::graph::graph_service_client::GraphServiceClient;
use chirp_proto::graph::{
    BatchGetUsersRequest, CreateUserRequest, FollowRequest, GetUserByHandleRequest, GetUserRequest,
    ImportFollowsRequest, ImportGraphChunk, ImportGraphSummary, ImportedFollow,
    ListFollowedCelebritiesRequest, ListFollowsRequest, ListPopularUsersRequest, User,
};
use chirp_stack::spawn_graph;
use chirp_test_support::{
    OwnRedis, eventually, fresh_database, local_listener, spawn_service, unique_name,
};
use chirp_timeline_store::{HomeTimelines, TimelineStoreArgs};
use clap::Parser;
use tonic::Code;

struct TestApp {
    graph: GraphServiceClient<Channel>,
    timelines: HomeTimelines,
    /// For what only the catalog shows (a constraint's state).
    database_url: String,
    /// Where the timelines are, for another instance on the same stores.
    store: TimelineStoreArgs,
}

/// A graph service on a fresh database and Redis key prefix.
async fn spawn_app() -> TestApp {
    spawn_app_with(chirp_test_support::REDIS_URL, 10_000).await
}

/// A graph service on a fresh database, with its timelines in the Redis at
/// `redis_url`, and celebrities from `celebrity_threshold` followers on.
async fn spawn_app_with(redis_url: &str, celebrity_threshold: i64) -> TestApp {
    let threshold = celebrity_threshold.to_string();
    spawn_app_flags(redis_url, &["--celebrity-threshold", &threshold]).await
}

/// A graph service on a fresh database, with its timelines in the Redis at
/// `redis_url`, started with `flags`.
async fn spawn_app_flags(redis_url: &str, flags: &[&str]) -> TestApp {
    let database_url = fresh_database().await;
    let mut store = chirp_test_support::timeline_store(&format!("{}:", unique_name("graph_test")));
    // One Redis node, at `redis_url`.
    redis_url.clone_into(&mut store.redis.redis_url);
    store.redis.redis_cluster = false;
    TestApp::start(&database_url, store, flags).await
}

impl TestApp {
    /// A graph service on the database at `database_url` and the timelines
    /// of `store`, started with `flags`: one more instance, when another
    /// already runs there.
    async fn start(database_url: &str, store: TimelineStoreArgs, flags: &[&str]) -> Self {
        let (listener, addr) = local_listener().await;
        spawn_graph(listener, database_url, &store.redis, flags);
        // Generous: the first call waits while the service applies its migrations.
        let channel = chirp_grpc::connect_lazy(&addr, Duration::from_secs(30)).unwrap();
        TestApp {
            graph: GraphServiceClient::new(channel),
            timelines: HomeTimelines::connect(&store).await.unwrap(),
            database_url: database_url.to_owned(),
            store,
        }
    }
}

fn edge(follower_id: i64, followee_id: i64) -> FollowRequest {
    FollowRequest {
        follower_id,
        followee_id,
    }
}

impl TestApp {
    async fn users(&self, count: usize) -> Vec<i64> {
        let mut ids = Vec::new();
        for n in 0..count {
            let request = CreateUserRequest {
                handle: format!("user{n}"),
                display_name: format!("User {n}"),
                ..Default::default()
            };
            ids.push(self.graph.clone().create_user(request).await.unwrap());
        }
        ids.into_iter()
            .map(|user| user.into_inner().user.expect("a user").user_id)
            .collect()
    }

    async fn user(&self, user_id: i64) -> User {
        let request = GetUserRequest { user_id };
        self.graph
            .clone()
            .get_user(request)
            .await
            .unwrap()
            .into_inner()
    }

    async fn import(&self, follows: Vec<FollowRequest>) -> Result<u64, tonic::Status> {
        let request = ImportFollowsRequest { follows };
        let response = self.graph.clone().import_follows(request).await?;
        Ok(response.into_inner().created)
    }

    /// The (follower count, following count) of each user.
    async fn counts(&self, users: &[i64]) -> Vec<(i64, i64)> {
        let mut counts = Vec::new();
        for &user_id in users {
            let user = self.user(user_id).await;
            counts.push((user.follower_count, user.following_count));
        }
        counts
    }

    async fn follow(&self, follower_id: i64, followee_id: i64) {
        self.try_follow(follower_id, followee_id).await.unwrap();
    }

    async fn try_follow(&self, follower_id: i64, followee_id: i64) -> Result<(), tonic::Status> {
        let request = edge(follower_id, followee_id);
        self.graph.clone().follow(request).await?;
        Ok(())
    }

    /// Whether `user_id`'s cached timeline is there (complete), as a read
    /// would find it.
    async fn cached(&self, user_id: i64) -> bool {
        let page = self.timelines.page_if_complete(user_id, None, 10).await;
        page.unwrap().is_some()
    }

    /// Waits until `user_id`'s cached timeline is gone.
    async fn until_dropped(&self, user_id: i64, what: &str) {
        eventually(Duration::from_secs(30), what, || async {
            (!self.cached(user_id).await).then_some(())
        })
        .await;
    }

    async fn unfollow(&self, follower_id: i64, followee_id: i64) -> Result<bool, tonic::Status> {
        let request = edge(follower_id, followee_id);
        Ok(self
            .graph
            .clone()
            .unfollow(request)
            .await?
            .into_inner()
            .removed)
    }

    async fn followers(&self, user_id: i64) -> Vec<i64> {
        let request = ListFollowsRequest {
            user_id,
            after_user_id: None,
            limit: 100,
            consistent: false,
            with_following_counts: false,
        };
        let page = self.graph.clone().list_followers(request).await.unwrap();
        page.into_inner().user_ids
    }
}

#[tokio::test]
async fn an_import_counts_like_single_follows_and_a_retry_changes_nothing() {
    let app = spawn_app().await;
    let [a, b, c, d] = app.users(4).await[..] else {
        unreachable!("four users")
    };
    app.graph.clone().follow(edge(d, a)).await.unwrap();

    // b and c follow a, a follows b back, everyone follows d; (d, a) exists
    // already and the duplicate (c, a) is one edge.
    let batch = vec![
        edge(b, a),
        edge(c, a),
        edge(c, a),
        edge(a, b),
        edge(a, d),
        edge(b, d),
        edge(c, d),
        edge(d, a),
    ];
    assert_eq!(app.import(batch.clone()).await.unwrap(), 6);
    let expected = vec![(3, 2), (1, 2), (0, 2), (3, 1)];
    assert_eq!(app.counts(&[a, b, c, d]).await, expected);
    assert_eq!(app.followers(a).await, vec![b, c, d]);

    assert_eq!(app.import(batch).await.unwrap(), 0, "a retry adds nothing");
    assert_eq!(app.counts(&[a, b, c, d]).await, expected);
}

/// Issue 22: the lossy fan-out needs each follower's following count; a
/// listing gives it, index for index, only when asked, and pages as
/// before.
#[tokio::test]
async fn followers_are_listed_with_their_following_counts_only_when_asked() {
    let app = spawn_app().await;
    let [a, b, c, d] = app.users(4).await[..] else {
        unreachable!("four users")
    };
    for (follower, followee) in [(b, a), (c, a), (d, a), (c, b), (d, b), (d, c)] {
        app.follow(follower, followee).await;
    }
    let listing = |after_user_id, with_following_counts| {
        let mut graph = app.graph.clone();
        async move {
            let request = ListFollowsRequest {
                user_id: a,
                after_user_id,
                limit: 2,
                consistent: true,
                with_following_counts,
            };
            graph.list_followers(request).await.unwrap().into_inner()
        }
    };

    let first = listing(None, true).await;
    assert_eq!(first.user_ids, [b, c]);
    assert_eq!(first.following_counts, [1, 2]);
    let last = listing(first.next_after_user_id, true).await;
    assert_eq!((last.user_ids, last.following_counts), (vec![d], vec![3]));
    assert_eq!(last.next_after_user_id, None);
    let without = listing(None, false).await;
    assert_eq!(without.user_ids, [b, c]);
    assert!(without.following_counts.is_empty());
}

#[tokio::test]
async fn an_import_with_an_unknown_user_or_a_self_follow_writes_nothing() {
    let app = spawn_app().await;
    let [a, b] = app.users(2).await[..] else {
        unreachable!("two users")
    };
    let unknown = b + 1_000;

    let error = app
        .import(vec![edge(a, b), edge(a, unknown)])
        .await
        .unwrap_err();
    assert_eq!(error.code(), Code::NotFound, "{error:?}");
    let error = app.import(vec![edge(a, b), edge(b, b)]).await.unwrap_err();
    assert_eq!(error.code(), Code::FailedPrecondition, "{error:?}");
    let too_many = (0..10_001).map(|_| edge(a, b)).collect();
    let error = app.import(too_many).await.unwrap_err();
    assert_eq!(error.code(), Code::InvalidArgument, "{error:?}");

    assert_eq!(app.counts(&[a, b]).await, vec![(0, 0), (0, 0)]);
    assert!(app.followers(b).await.is_empty());
    assert_eq!(app.import(Vec::new()).await.unwrap(), 0);
}

#[tokio::test]
async fn an_import_drops_the_followers_cached_timelines() {
    let app = spawn_app().await;
    let [author, reader, bystander] = app.users(3).await[..] else {
        unreachable!("three users")
    };
    for user_id in [reader, bystander] {
        app.timelines.store_rebuilt(user_id, &[]).await.unwrap();
    }

    app.import(vec![edge(reader, author)]).await.unwrap();

    let page = |user_id| app.timelines.page_if_complete(user_id, None, 10);
    assert_eq!(
        page(reader).await.unwrap(),
        None,
        "rebuilt on the next read"
    );
    assert_eq!(page(bystander).await.unwrap(), Some(Vec::new()));
}

fn new_user(handle: &str) -> CreateUserRequest {
    CreateUserRequest {
        handle: handle.to_owned(),
        display_name: format!("Imported {handle}"),
        ..Default::default()
    }
}

fn numbered(follower: u32, followee: u32) -> ImportedFollow {
    ImportedFollow { follower, followee }
}

impl TestApp {
    async fn import_graph(
        &self,
        chunks: Vec<ImportGraphChunk>,
    ) -> Result<ImportGraphSummary, tonic::Status> {
        let response = self
            .graph
            .clone()
            .import_graph(futures::stream::iter(chunks))
            .await?;
        Ok(response.into_inner())
    }

    async fn handle_exists(&self, handle: &str) -> bool {
        let request = GetUserByHandleRequest {
            handle: handle.to_owned(),
        };
        match self.graph.clone().get_user_by_handle(request).await {
            Ok(_) => true,
            Err(status) if status.code() == Code::NotFound => false,
            Err(status) => panic!("{status:?}"),
        }
    }
}

#[tokio::test]
async fn a_graph_import_numbers_its_users_and_counts_their_follows() {
    let app = spawn_app().await;
    // Users over two chunks, the second also carrying the first follows;
    // 2 → 0 is sent twice and counts once.
    let chunks = vec![
        ImportGraphChunk {
            user_count: 4,
            users: vec![new_user("imp0"), new_user("imp1")],
            follows: Vec::new(),
        },
        ImportGraphChunk {
            user_count: 0,
            users: vec![new_user("imp2"), new_user("imp3")],
            follows: vec![numbered(1, 0), numbered(2, 0)],
        },
        ImportGraphChunk {
            user_count: 0,
            users: Vec::new(),
            follows: vec![numbered(3, 0), numbered(0, 1), numbered(2, 0)],
        },
    ];
    let summary = app.import_graph(chunks).await.unwrap();
    assert_eq!((summary.users, summary.follows), (4, 4));
    let ids: Vec<i64> = (0..4).map(|n| summary.first_user_id + n).collect();
    for (number, &id) in ids.iter().enumerate() {
        assert_eq!(app.user(id).await.handle, format!("imp{number}"));
    }
    assert_eq!(app.counts(&ids).await, vec![(3, 1), (1, 1), (0, 1), (0, 1)]);
    assert_eq!(app.followers(ids[0]).await, vec![ids[1], ids[2], ids[3]]);

    // The first import rebuilt the keys it dropped: a follow that exists is
    // still refused as a duplicate, and sign-ups continue after the block.
    let again = app.graph.clone().follow(edge(ids[1], ids[0])).await;
    assert!(!again.unwrap().into_inner().created);
    let [after] = app.users(1).await[..] else {
        unreachable!("one user")
    };
    assert!(after > ids[3]);

    // A second import goes into a graph that is no longer empty.
    let chunks = vec![ImportGraphChunk {
        user_count: 2,
        users: vec![new_user("second0"), new_user("second1")],
        follows: vec![numbered(0, 1)],
    }];
    let second = app.import_graph(chunks).await.unwrap();
    assert_eq!((second.users, second.follows), (2, 1));
    assert!(second.first_user_id > after);
    let follower = second.first_user_id;
    assert_eq!(app.followers(follower + 1).await, vec![follower]);
    assert_eq!(app.counts(&[follower]).await, vec![(0, 1)]);
}

#[tokio::test]
async fn a_failed_graph_import_leaves_nothing_behind() {
    let app = spawn_app().await;
    let [existing] = app.users(1).await[..] else {
        unreachable!("one user")
    };
    let existing = app.user(existing).await.handle;
    let users = || vec![new_user("gone0"), new_user("gone1")];

    // Every user was copied in before the bad follow (number 2 of 2 users).
    let chunks = vec![
        ImportGraphChunk {
            user_count: 2,
            users: users(),
            follows: vec![numbered(0, 1)],
        },
        ImportGraphChunk {
            user_count: 0,
            users: Vec::new(),
            follows: vec![numbered(1, 2)],
        },
    ];
    let error = app.import_graph(chunks).await.unwrap_err();
    assert_eq!(error.code(), Code::InvalidArgument, "{error:?}");
    assert!(!app.handle_exists("gone0").await);

    let self_follow = vec![ImportGraphChunk {
        user_count: 2,
        users: users(),
        follows: vec![numbered(1, 1)],
    }];
    let error = app.import_graph(self_follow).await.unwrap_err();
    assert_eq!(error.code(), Code::FailedPrecondition, "{error:?}");

    let taken = vec![ImportGraphChunk {
        user_count: 2,
        users: vec![new_user("gone0"), new_user(&existing)],
        follows: Vec::new(),
    }];
    let error = app.import_graph(taken).await.unwrap_err();
    assert_eq!(error.code(), Code::AlreadyExists, "{error:?}");
    assert!(!app.handle_exists("gone0").await);

    let short = vec![ImportGraphChunk {
        user_count: 3,
        users: users(),
        follows: Vec::new(),
    }];
    let error = app.import_graph(short).await.unwrap_err();
    assert_eq!(error.code(), Code::InvalidArgument, "{error:?}");
    let error = app.import_graph(Vec::new()).await.unwrap_err();
    assert_eq!(error.code(), Code::InvalidArgument, "{error:?}");
    assert!(!app.handle_exists("gone1").await);

    // After all that, the same import succeeds whole.
    let chunks = vec![ImportGraphChunk {
        user_count: 2,
        users: users(),
        follows: vec![numbered(0, 1)],
    }];
    assert_eq!(app.import_graph(chunks).await.unwrap().follows, 1);
    assert!(app.handle_exists("gone1").await);
}

#[tokio::test]
async fn popular_users_come_most_followed_first_ties_by_id() {
    let app = spawn_app().await;
    let users = app.users(4).await;
    let follows = vec![
        edge(users[0], users[2]),
        edge(users[1], users[2]),
        edge(users[0], users[1]),
    ];
    app.import(follows).await.unwrap();
    let popular = |limit| {
        let mut graph = app.graph.clone();
        async move {
            let request = ListPopularUsersRequest { limit };
            let users = graph.list_popular_users(request).await.unwrap();
            users
                .into_inner()
                .users
                .iter()
                .map(|user| (user.user_id, user.follower_count))
                .collect::<Vec<_>>()
        }
    };
    // users[0] and users[3] have no follower: the lower id comes first.
    let expected = [(users[2], 2), (users[1], 1), (users[0], 0), (users[3], 0)];
    assert_eq!(popular(3).await, expected[..3]);
    assert_eq!(popular(0).await, expected, "0 asks for the default, 20");
}

#[tokio::test]
async fn a_batch_get_returns_the_known_users_in_the_order_asked() {
    let app = spawn_app().await;
    let [a, b, c] = app.users(3).await[..] else {
        unreachable!("three users")
    };
    let unknown = c + 1_000;
    let request = BatchGetUsersRequest {
        user_ids: vec![c, unknown, a, b],
    };
    let users = app.graph.clone().batch_get_users(request).await.unwrap();
    let users = users.into_inner().users;
    let ids: Vec<i64> = users.iter().map(|user| user.user_id).collect();
    assert_eq!(ids, [c, a, b], "unknown ids are left out");
    assert_eq!(users[1], app.user(a).await, "the same profile as GetUser");

    let too_many = BatchGetUsersRequest {
        user_ids: (0..5_001).collect(),
    };
    let error = app
        .graph
        .clone()
        .batch_get_users(too_many)
        .await
        .unwrap_err();
    assert_eq!(error.code(), Code::InvalidArgument, "{error:?}");
}

#[tokio::test]
async fn with_an_internal_token_only_calls_that_carry_it_are_answered() {
    let token = "internal-token-of-at-least-32-bytes";
    let config = graph::Config::try_parse_from([
        "graph",
        "--database-url",
        &fresh_database().await,
        "--internal-token",
        token,
    ])
    .unwrap();
    let (listener, addr) = local_listener().await;
    spawn_service(
        "graph",
        graph::run(config, listener, std::future::pending()),
    );
    let deadline = Duration::from_secs(30);
    let request = || CreateUserRequest {
        handle: "alice".into(),
        display_name: "Alice".into(),
        ..Default::default()
    };

    let stranger = chirp_grpc::connect_lazy(&addr, deadline).unwrap();
    let error = GraphServiceClient::new(stranger.clone())
        .create_user(request())
        .await
        .unwrap_err();
    assert_eq!(error.code(), Code::Unauthenticated, "{error:?}");
    let health = tonic_health::pb::health_client::HealthClient::new(stranger)
        .check(tonic_health::pb::HealthCheckRequest::default())
        .await;
    assert!(health.is_ok(), "probes need no token: {health:?}");

    let token = chirp_grpc::service_auth::ServiceToken::parse(token).unwrap();
    let peer = chirp_grpc::connect_lazy_with(&addr, deadline, &token).unwrap();
    let created = GraphServiceClient::new(peer).create_user(request()).await;
    assert!(created.is_ok(), "{created:?}");
}

/// Issue 10, fix 2: when the unfollow that takes an author below the
/// threshold cannot drop the remaining followers' timelines, the drop is
/// not lost with the failed call: the client's retry finds no edge, and the
/// timelines are dropped all the same once Redis heals.
#[tokio::test]
async fn a_celebrity_falling_below_the_threshold_is_not_lost_to_a_failing_redis() {
    let redis = OwnRedis::start().await;
    let app = spawn_app_with(&redis.url(), 3).await;
    let [author, stays, also_stays, leaves] = app.users(4).await[..] else {
        unreachable!("four users")
    };
    for follower in [stays, also_stays, leaves] {
        app.follow(follower, author).await;
    }
    // Complete timelines without the author's tweets: while the author was a
    // celebrity, those were pulled at read time, never stored.
    for follower in [stays, also_stays] {
        app.timelines.store_rebuilt(follower, &[]).await.unwrap();
    }

    redis.refuse_writes(true).await;
    let failed = app.unfollow(leaves, author).await;
    assert_eq!(failed.unwrap_err().code(), Code::Unavailable);
    redis.refuse_writes(false).await;
    assert!(
        !app.unfollow(leaves, author).await.unwrap(),
        "the retry finds the edge gone"
    );

    for follower in [stays, also_stays] {
        eventually(
            Duration::from_secs(30),
            "the remaining followers' timelines to be dropped",
            || async {
                let page = app.timelines.page_if_complete(follower, None, 10).await;
                page.unwrap().is_none().then_some(())
            },
        )
        .await;
    }
}

/// A follower's cached timeline is stored with the celebrities it pulls:
/// the follow that takes an author up to the threshold drops the timelines
/// of everyone who already followed them (their stored lists lack the
/// author, whose tweets are no longer pushed), and no one else's.
#[tokio::test]
async fn a_follow_that_makes_a_celebrity_drops_the_followers_timelines() {
    let app = spawn_app_with(chirp_test_support::REDIS_URL, 3).await;
    let [author, first, second, third, bystander] = app.users(5).await[..] else {
        unreachable!("five users")
    };
    app.follow(first, author).await;
    app.follow(second, author).await;
    for user_id in [first, second, bystander] {
        app.timelines.store_rebuilt(user_id, &[]).await.unwrap();
    }

    app.follow(third, author).await;

    let page = |user_id| app.timelines.page_if_complete(user_id, None, 10);
    assert_eq!(page(first).await.unwrap(), None, "rebuilt on the next read");
    assert_eq!(
        page(second).await.unwrap(),
        None,
        "rebuilt on the next read"
    );
    assert_eq!(page(bystander).await.unwrap(), Some(Vec::new()));
    assert!(app.user(author).await.is_celebrity);
}

/// The same through a bulk import, which may take several authors across
/// at once: each one's followers' timelines are dropped.
#[tokio::test]
async fn an_import_that_makes_a_celebrity_drops_the_followers_timelines() {
    let app = spawn_app_with(chirp_test_support::REDIS_URL, 2).await;
    let [author, earlier, later, bystander] = app.users(4).await[..] else {
        unreachable!("four users")
    };
    app.follow(earlier, author).await;
    for user_id in [earlier, bystander] {
        app.timelines.store_rebuilt(user_id, &[]).await.unwrap();
    }

    app.import(vec![edge(later, author), edge(later, bystander)])
        .await
        .unwrap();

    let page = |user_id| app.timelines.page_if_complete(user_id, None, 10);
    assert_eq!(
        page(earlier).await.unwrap(),
        None,
        "rebuilt on the next read"
    );
    assert_eq!(
        page(bystander).await.unwrap(),
        Some(Vec::new()),
        "one follower is below the threshold: nothing to drop"
    );
}

/// Issue 9: the followed celebrities come a page at a time, so a reader of
/// more than one page of them loses none; a client that sends no limit (one
/// written before paging) still gets its first page.
#[tokio::test]
async fn followed_celebrities_are_paged_by_user_id() {
    let app = spawn_app_with(chirp_test_support::REDIS_URL, 1).await;
    let [reader, a, b, c, nobody] = app.users(5).await[..] else {
        unreachable!("five users")
    };
    for celebrity in [c, a, b] {
        app.follow(reader, celebrity).await;
    }
    let page = |after_user_id, limit| {
        let request = ListFollowedCelebritiesRequest {
            user_id: reader,
            after_user_id,
            limit,
        };
        let mut graph = app.graph.clone();
        async move {
            let page = graph.list_followed_celebrities(request).await.unwrap();
            let page = page.into_inner();
            (page.user_ids, page.next_after_user_id)
        }
    };

    assert_eq!(page(None, 2).await, (vec![a, b], Some(b)));
    assert_eq!(page(Some(b), 2).await, (vec![c], None));
    assert_eq!(page(None, 0).await, (vec![a, b, c], None));
    assert!(!page(None, 0).await.0.contains(&nobody));
}

/// A first load adds the follows' foreign keys back `NOT VALID` and
/// validates them after its commit: they end up validated, and enforced.
#[tokio::test]
async fn a_first_graph_import_ends_with_its_foreign_keys_validated_and_enforced() {
    let app = spawn_app().await;
    let chunks = vec![ImportGraphChunk {
        user_count: 3,
        users: vec![new_user("fk0"), new_user("fk1"), new_user("fk2")],
        follows: vec![numbered(0, 1), numbered(2, 1)],
    }];
    let summary = app.import_graph(chunks).await.unwrap();
    assert_eq!(summary.follows, 2);
    let pool = sqlx::PgPool::connect(&app.database_url).await.unwrap();
    let state = || async {
        sqlx::query_as::<_, (i64, bool)>(
            "SELECT count(*), coalesce(bool_and(convalidated), false) FROM pg_constraint \
             WHERE conrelid = 'follows'::regclass AND contype = 'f'",
        )
        .fetch_one(&pool)
        .await
        .unwrap()
    };
    eventually(
        Duration::from_secs(60),
        "validated foreign keys",
        || async { (state().await == (2, true)).then_some(()) },
    )
    .await;
    let unknown = summary.first_user_id + 1_000;
    let error = app
        .graph
        .clone()
        .follow(edge(summary.first_user_id, unknown))
        .await
        .unwrap_err();
    assert_eq!(error.code(), Code::NotFound, "{error:?}");
}

/// Issue 19, defect 4: when the follower's own timeline cannot be dropped
/// after the edge committed, and the client never retries, the drop is not
/// lost with the failed call: it is done once Redis heals. The same for an
/// unfollow.
#[tokio::test]
async fn a_failed_drop_of_the_followers_own_timeline_is_done_without_a_retry() {
    let redis = OwnRedis::start().await;
    let app = spawn_app_with(&redis.url(), 10_000).await;
    let [reader, author] = app.users(2).await[..] else {
        unreachable!("two users")
    };

    for change in ["follow", "unfollow"] {
        // A complete timeline, as the reader's last read left it.
        app.timelines.store_rebuilt(reader, &[]).await.unwrap();
        redis.refuse_writes(true).await;
        let failed = match change {
            "follow" => app.try_follow(reader, author).await,
            _ => app.unfollow(reader, author).await.map(|_| ()),
        };
        assert_eq!(failed.unwrap_err().code(), Code::Unavailable, "{change}");
        redis.refuse_writes(false).await;

        app.until_dropped(
            reader,
            &format!("the reader's timeline dropped after the {change}"),
        )
        .await;
    }
    assert!(
        app.followers(author).await.is_empty(),
        "the unfollow went in"
    );
}

/// Issue 19, defect 5: an author flips between celebrity and not at two
/// marks, the threshold and 10 % below it, so a follow toggled at the
/// threshold drops no one's timeline; going below the lower mark does.
#[tokio::test]
async fn a_follow_toggled_at_the_threshold_drops_no_timelines_until_the_lower_mark() {
    let app = spawn_app_flags(
        chirp_test_support::REDIS_URL,
        &[
            "--celebrity-threshold",
            "10",
            "--celebrity-hysteresis-percent",
            "10",
        ],
    )
    .await;
    let users = app.users(11).await;
    let (author, followers) = (users[0], &users[1..]);
    for &follower in followers {
        app.follow(follower, author).await;
    }
    assert!(app.user(author).await.is_celebrity);
    let (toggler, second, stays) = (followers[9], followers[8], followers[0]);
    app.timelines.store_rebuilt(stays, &[]).await.unwrap();

    for _ in 0..3 {
        assert!(app.unfollow(toggler, author).await.unwrap());
        assert!(
            app.user(author).await.is_celebrity,
            "9 is above the lower mark"
        );
        app.follow(toggler, author).await;
        assert!(app.user(author).await.is_celebrity);
        assert!(app.cached(stays).await, "no crossing, no drop");
    }

    app.unfollow(toggler, author).await.unwrap();
    app.unfollow(second, author).await.unwrap();
    let author_row = app.user(author).await;
    assert_eq!(author_row.follower_count, 8);
    assert!(!author_row.is_celebrity, "8 is below the lower mark, 9");
    app.until_dropped(
        stays,
        "the remaining followers' timelines dropped on the fall",
    )
    .await;
}

/// Issue 19, defect 5: an instance started with another threshold classifies
/// every author again, and drops the followers' timelines of each one it
/// moves across, both ways, through the durable queue.
#[tokio::test]
async fn a_start_with_a_changed_threshold_reclassifies_and_drops_the_timelines_it_must() {
    let no_gap = |threshold: &'static str| {
        [
            "--celebrity-threshold",
            threshold,
            "--celebrity-hysteresis-percent",
            "0",
        ]
    };
    let first = spawn_app_flags(chirp_test_support::REDIS_URL, &no_gap("3")).await;
    let users = first.users(7).await;
    let (rises, rises_fans) = (users[0], &users[1..3]);
    let (stays, stays_fans) = (users[3], &users[4..7]);
    for &fan in rises_fans {
        first.follow(fan, rises).await;
    }
    for &fan in stays_fans {
        first.follow(fan, stays).await;
    }
    assert!(!first.user(rises).await.is_celebrity);
    assert!(first.user(stays).await.is_celebrity);
    for &fan in rises_fans.iter().chain(stays_fans) {
        first.timelines.store_rebuilt(fan, &[]).await.unwrap();
    }

    // Lowered to 2: the author with 2 followers rises; the one with 3 stays.
    let lowered = TestApp::start(&first.database_url, first.store.clone(), &no_gap("2")).await;
    assert!(lowered.user(rises).await.is_celebrity);
    assert!(lowered.user(stays).await.is_celebrity);
    for &fan in rises_fans {
        lowered
            .until_dropped(fan, "a risen author's followers' timelines dropped")
            .await;
    }
    for &fan in stays_fans {
        assert!(lowered.cached(fan).await, "no crossing, no drop");
    }

    // Raised to 4: both fall.
    for &fan in rises_fans {
        first.timelines.store_rebuilt(fan, &[]).await.unwrap();
    }
    let raised = TestApp::start(&first.database_url, first.store.clone(), &no_gap("4")).await;
    assert!(!raised.user(rises).await.is_celebrity);
    assert!(!raised.user(stays).await.is_celebrity);
    for &fan in rises_fans.iter().chain(stays_fans) {
        raised
            .until_dropped(fan, "a fallen author's followers' timelines dropped")
            .await;
    }
}
