//! The graph service across a Redis restart, against its own Redis.
//!
//! A follow drops the follower's home timeline in Redis. After Redis
//! restarts, the connection the service holds is dead, and the first command
//! on it fails; the service must retry that drop on a fresh connection rather
//! than fail the follow. The test kills and restarts a `redis-server` of its
//! own, on a port of its own: never the shared one other tests use.

use std::time::Duration;

use chirp_proto::graph::FollowRequest;
use chirp_proto::graph::graph_service_client::GraphServiceClient;
use chirp_test_support::{OwnRedis, create_user, fresh_database, local_listener, spawn_service};
use clap::Parser;

#[tokio::test]
async fn the_first_follow_after_a_redis_restart_succeeds() {
    let redis = OwnRedis::start().await;
    let database_url = fresh_database().await;
    let redis_url = redis.url();
    let config = graph::Config::try_parse_from([
        "graph",
        "--database-url",
        &database_url,
        "--redis-url",
        &redis_url,
    ])
    .unwrap();
    let (listener, addr) = local_listener().await;
    spawn_service(
        "graph",
        graph::run(config, listener, std::future::pending()),
    );
    let channel = chirp_grpc::connect_lazy(&addr, Duration::from_secs(30)).unwrap();
    let mut graph = GraphServiceClient::new(channel);
    let mut ids = Vec::new();
    for handle in ["alice", "bob", "carol"] {
        ids.push(create_user(&graph, handle).await);
    }
    let follow = |followee_id| FollowRequest {
        follower_id: ids[0],
        followee_id,
    };
    graph
        .follow(follow(ids[1]))
        .await
        .expect("a follow with Redis up");

    let _redis = redis.restart().await;
    graph
        .follow(follow(ids[2]))
        .await
        .expect("the first follow after the restart drops the timeline on a new connection");
}
