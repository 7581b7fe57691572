//! Per-user write and home-timeline read limits and per-network sign-up
//! limits: a burst goes through, the next request is told when to come back,
//! and nobody else is affected. Sign-ups are refused while their limiter
//! cannot count them.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{Stack, handle, spawn_gateway_only, spawn_stack_with};

/// A stack behind one proxy (whose `X-Forwarded-For` names the client)
/// that lets each client network sign up twice at once, then once a minute.
async fn behind_a_proxy_with_a_sign_up_burst_of_two() -> Stack {
    spawn_stack_with(&[
        "--rate-limit-signup-burst",
        "2",
        "--rate-limit-signups-per-minute",
        "1",
        "--trusted-proxy-hops",
        "1",
    ])
    .await
}

/// A sign-up of `name` that the proxy says comes from `client`.
fn sign_up_from(stack: &Stack, name: &str, client: &str) -> reqwest::RequestBuilder {
    let body = json!({ "handle": handle(name), "display_name": name });
    stack
        .request(Method::POST, "/users", None)
        .header("x-forwarded-for", client)
        .json(&body)
}

#[tokio::test]
async fn writes_beyond_the_burst_are_refused_with_retry_after() {
    let stack = spawn_stack_with(&[
        "--rate-limit-burst",
        "3",
        "--rate-limit-writes-per-minute",
        "1",
    ])
    .await;
    let alice = stack.sign_up(&handle("alice")).await;
    let bob = stack.sign_up(&handle("bob")).await;

    stack.follow(&alice, &bob).await;
    let first = stack.post(&alice, "one").await;
    stack.post(&alice, "two").await;

    let request = stack
        .request(Method::POST, "/tweets", Some(&alice.token))
        .json(&json!({ "content": "three" }));
    let response = request.send().await.expect("gateway answers");
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = response
        .headers()
        .get("retry-after")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse().ok())
        .expect("a Retry-After in seconds");
    assert!(
        (1..=60).contains(&retry_after),
        "one token a minute: {retry_after}"
    );
    let problem: serde_json::Value = response.json().await.expect("problem+json");
    assert_eq!(problem["code"], "rate_limited", "{problem}");
    assert_eq!(problem["status"], 429, "{problem}");

    let delete = format!("/tweets/{}", first["id"].as_str().expect("tweet id"));
    let (status, _) = stack
        .call(stack.request(Method::DELETE, &delete, Some(&alice.token)))
        .await;
    assert_eq!(
        status,
        StatusCode::TOO_MANY_REQUESTS,
        "deletes share the budget"
    );
    let (status, _) = stack.call(stack.request(Method::GET, &delete, None)).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "reads are not limited, and the refused delete did nothing"
    );
    let timeline = format!("/users/{}/timeline", alice.id);
    let (status, _) = stack
        .call(stack.request(Method::GET, &timeline, Some(&alice.token)))
        .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "home-timeline reads have a budget of their own"
    );

    stack.post(&bob, "my own budget").await;
    let (status, _) = stack
        .call(
            stack
                .request(Method::POST, "/tweets", None)
                .json(&json!({ "content": "x" })),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "strangers are refused before they are counted"
    );
}

/// The buckets on a Redis Cluster: each user's bucket is one key, on the
/// master of its slot, and users land on different masters. A limiter that
/// spoke to one node only would get `MOVED` for most users and fail open.
#[tokio::test]
async fn the_limit_holds_on_a_redis_cluster() {
    chirp_test_support::ensure_scale_out("redis-cluster");
    let stack = spawn_stack_with(&[
        "--redis-cluster",
        "true",
        "--redis-url",
        chirp_test_support::REDIS_CLUSTER_URLS,
        "--rate-limit-burst",
        "2",
        "--rate-limit-writes-per-minute",
        "1",
    ])
    .await;
    for name in ["carol", "dave", "erin", "frank"] {
        let user = stack.sign_up(&handle(name)).await;
        stack.post(&user, "one").await;
        stack.post(&user, "two").await;
        let request = stack
            .request(Method::POST, "/tweets", Some(&user.token))
            .json(&json!({ "content": "three" }));
        let (status, body) = stack.call(request).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{name}: {body}");
    }
}

#[tokio::test]
async fn sign_ups_are_limited_per_client_address() {
    let stack = behind_a_proxy_with_a_sign_up_burst_of_two().await;
    let sign_up = |name: &str, client: &str| sign_up_from(&stack, name, client);
    for name in ["one", "two"] {
        let (status, body) = stack.call(sign_up(name, "192.0.2.1")).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let (status, problem) = stack.call(sign_up("three", "192.0.2.1")).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{problem}");
    assert_eq!(problem["code"], "rate_limited");

    let (status, body) = stack.call(sign_up("four", "192.0.2.2")).await;
    assert_eq!(status, StatusCode::CREATED, "another client: {body}");
    let (status, _) = stack.call(sign_up("three", "192.0.2.1")).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "still limited");
}

#[tokio::test]
async fn sign_ups_from_one_ipv6_64_share_one_bucket() {
    let stack = behind_a_proxy_with_a_sign_up_burst_of_two().await;
    let sign_up = |name: &str, client: &str| sign_up_from(&stack, name, client);
    for (name, client) in [("one", "2001:db8:1:2::1"), ("two", "2001:db8:1:2::2")] {
        let (status, body) = stack.call(sign_up(name, client)).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    // Another address of the same /64 costs its owner nothing to take.
    let (status, problem) = stack
        .call(sign_up("three", "2001:db8:1:2:ffff:1234:5678:9abc"))
        .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{problem}");
    let (status, body) = stack.call(sign_up("four", "2001:db8:1:3::1")).await;
    assert_eq!(status, StatusCode::CREATED, "another /64: {body}");
}

#[tokio::test]
async fn sign_ups_are_refused_while_their_limiter_cannot_count() {
    // A gateway whose Redis is a closed port; sign-ups never reach graph.
    let stack = spawn_gateway_only(&["--redis-url", "redis://127.0.0.1:1"]).await;
    let body = json!({ "handle": handle("paused"), "display_name": "Paused" });
    let response = stack
        .request(Method::POST, "/users", None)
        .json(&body)
        .send()
        .await
        .expect("gateway answers");
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(response.headers().contains_key("retry-after"));
    let problem: serde_json::Value = response.json().await.expect("problem+json");
    assert_eq!(problem["code"], "unavailable", "{problem}");
    let detail = problem["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("paused"), "says why: {problem}");
}

#[tokio::test]
async fn home_timeline_reads_beyond_the_burst_are_refused_with_retry_after() {
    let stack = spawn_stack_with(&[
        "--rate-limit-read-burst",
        "3",
        "--rate-limit-reads-per-minute",
        "1",
    ])
    .await;
    let alice = stack.sign_up(&handle("alice")).await;
    let bob = stack.sign_up(&handle("bob")).await;
    let read = |user: &crate::helpers::TestUser| {
        let path = format!("/users/{}/timeline", user.id);
        stack.request(Method::GET, &path, Some(&user.token))
    };
    for _ in 0..3 {
        let (status, body) = stack.call(read(&alice)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let response = read(&alice).send().await.expect("gateway answers");
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = response
        .headers()
        .get("retry-after")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse().ok())
        .expect("a Retry-After in seconds");
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    let problem: serde_json::Value = response.json().await.expect("problem+json");
    assert_eq!(problem["code"], "rate_limited", "{problem}");

    let (status, body) = stack.call(read(&bob)).await;
    assert_eq!(status, StatusCode::OK, "bob's own budget: {body}");
    let (status, _) = stack
        .call(stack.request(Method::GET, &format!("/users/{}/timeline", alice.id), None))
        .await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "strangers are refused before they are counted"
    );
}
