//! The graph on a primary and a real streaming replica
//! (`deploy/backends.sh up pg-replica`): which reads go where, and what the
//! replica's lag means for them.
//!
//! To make the lag visible without timing anything, the test pauses WAL
//! replay on the replica (`pg_wal_replay_pause()`): the replica then lags by
//! everything written after that moment, for as long as the test likes, and
//! the graph service's `chirp_graph_replica_lag_seconds` says so.

use std::time::Duration;

use chirp_proto::graph::graph_service_client::GraphServiceClient;
use chirp_proto::graph::{
    FollowRequest, GetUserRequest, ListFollowedCelebritiesRequest, ListFollowsRequest,
};
use chirp_test_support::{create_user, eventually, fresh_database, local_listener, unique_name};
use sqlx::Connection;

/// The replica of `deploy/backends.sh`, and the primary it follows.
const REPLICA: &str = "127.0.0.1:5442";

/// The graph service's replica lag, as its `/metrics` would show it.
fn replica_lag(exposition: &str) -> Option<f64> {
    let label = format!("replica=\"{REPLICA}\"");
    exposition
        .lines()
        .filter(|line| {
            line.starts_with("chirp_graph_replica_lag_seconds{") && line.contains(&label)
        })
        .find_map(|line| line.rsplit_once(' ')?.1.parse().ok())
}

#[tokio::test]
async fn profile_follower_listings_come_from_the_replica_and_the_fanout_s_from_the_primary() {
    chirp_test_support::ensure_scale_out("pg-replica");
    let metrics = chirp_runtime::metrics::builder()
        .install_recorder()
        .expect("the only recorder of this test binary");
    let database_url = fresh_database().await;
    let database = database_url.rsplit('/').next().unwrap().to_owned();
    let replica_url = format!("postgres://postgres@{REPLICA}/{database}");
    // The new database reaches the replica through the WAL, like any write.
    let mut replica = eventually(
        Duration::from_secs(60),
        "the database on the replica",
        || {
            let url = replica_url.clone();
            async move { sqlx::PgConnection::connect(&url).await.ok() }
        },
    )
    .await;

    let store = chirp_test_support::timeline_store(&format!("{}:", unique_name("replica")));
    let (listener, addr) = local_listener().await;
    let flags = [
        "--database-read-url",
        &replica_url,
        "--celebrity-threshold",
        "1",
    ];
    chirp_stack::spawn_graph(listener, &database_url, &store.redis, &flags);
    let channel = chirp_grpc::connect_lazy(&addr, Duration::from_secs(30)).unwrap();
    let mut graph = GraphServiceClient::new(channel);

    let author = create_user(&graph, &unique_name("author")[..15]).await;
    let reader = create_user(&graph, &unique_name("reader")[..15]).await;
    // `consistent`: as the fan-out lists them, from the primary.
    let listing = |graph: GraphServiceClient<_>, consistent| async move {
        let mut graph = graph;
        let request = ListFollowsRequest {
            user_id: author,
            after_user_id: None,
            limit: 10,
            consistent,
            with_following_counts: false,
        };
        graph
            .list_followers(request)
            .await
            .map(|page| page.into_inner().user_ids)
    };
    let followers = |graph| listing(graph, false);
    // The schema has reached the replica once a listing answers there; from
    // the pause on, the replica lags by everything written after it.
    eventually(Duration::from_secs(60), "the schema on the replica", || {
        let graph = graph.clone();
        async move { followers(graph).await.ok().filter(Vec::is_empty) }
    })
    .await;
    sqlx::query("SELECT pg_wal_replay_pause()")
        .execute(&mut replica)
        .await
        .unwrap();

    let request = FollowRequest {
        follower_id: reader,
        followee_id: author,
    };
    let outcome = async {
        graph.follow(request).await.unwrap();
        let stale_followers = followers(graph.clone()).await.unwrap();
        let fanout_followers = listing(graph.clone(), true).await.unwrap();
        let count = graph
            .get_user(GetUserRequest { user_id: author })
            .await
            .unwrap()
            .into_inner()
            .follower_count;
        let celebrities = graph
            .list_followed_celebrities(ListFollowedCelebritiesRequest {
                user_id: reader,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .user_ids;
        // With replay paused behind the follow, the lag the graph service
        // measures grows past a second (its measurement's period).
        let lagging = tokio::time::timeout(Duration::from_secs(30), async {
            loop {
                if let Some(lag) = replica_lag(&metrics.render()).filter(|&lag| lag > 1.0) {
                    return lag;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
        .await
        .ok();
        (
            stale_followers,
            fanout_followers,
            count,
            celebrities,
            lagging,
        )
    }
    .await;
    // Resume before asserting: the replica is shared by the tests of this run.
    sqlx::query("SELECT pg_wal_replay_resume()")
        .execute(&mut replica)
        .await
        .unwrap();
    let (stale_followers, fanout_followers, count, celebrities, lagging) = outcome;
    assert!(
        lagging.is_some(),
        "the paused replica's lag grows: {:?}",
        replica_lag(&metrics.render())
    );
    assert_eq!(
        stale_followers,
        Vec::<i64>::new(),
        "the follower listing is read from the (paused) replica"
    );
    assert_eq!(
        fanout_followers,
        vec![reader],
        "the fan-out's (consistent) listing is read from the primary"
    );
    assert_eq!(count, 1, "follower counts are read from the primary");
    assert_eq!(
        celebrities,
        vec![author],
        "the threshold logic reads the primary: the author is a celebrity at once"
    );
    // Once the replica has replayed the follow, the listing shows it.
    let caught_up = eventually(Duration::from_secs(60), "the follow on the replica", || {
        let graph = graph.clone();
        async move { followers(graph).await.ok().filter(|ids| !ids.is_empty()) }
    })
    .await;
    assert_eq!(caught_up, vec![reader]);
    // And its lag falls back under the second it had grown past.
    eventually(Duration::from_secs(30), "the replica caught up", || {
        let lag = replica_lag(&metrics.render());
        async move { lag.filter(|&lag| lag < 1.0) }
    })
    .await;
    // The only user of the replica: stop it rather than have it replay the
    // WAL of every later test.
    chirp_test_support::stop_scale_out("pg-replica");
}
