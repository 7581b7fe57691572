//! Users made through the graph service's own API, as the tests of the
//! services that read the graph (graph, fan-out, timeline) need them: one
//! helper, so that what a test user is stays the same everywhere.

use chirp_grpc::Channel;
use chirp_proto::graph::CreateUserRequest;
use chirp_proto::graph::graph_service_client::GraphServiceClient;

/// Creates a user with `handle` as handle and display name, and returns its
/// id; fails the test if the graph refuses.
pub async fn create_user(graph: &GraphServiceClient<Channel>, handle: &str) -> i64 {
    let request = CreateUserRequest {
        handle: handle.to_owned(),
        display_name: handle.to_owned(),
        ..Default::default()
    };
    graph
        .clone()
        .create_user(request)
        .await
        .unwrap_or_else(|e| panic!("create user {handle}: {e}"))
        .into_inner()
        .user
        .expect("a user")
        .user_id
}
