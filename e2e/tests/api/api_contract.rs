//! The public contract around the slice: auth, idempotent writes, pagination
//! and the error shape, each asserted as a client sees it.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Stack, TestUser, handle, ids, spawn_stack};
use chirp_test_support::eventually;

/// Asserts an RFC 9457 problem with the given status and machine code.
fn assert_problem(status: StatusCode, body: &Value, expected: StatusCode, code: &str) {
    assert_eq!(status, expected, "{body}");
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(body["status"], expected.as_u16(), "{body}");
    assert!(body["detail"].is_string(), "{body}");
}

async fn post_with_key(
    stack: &Stack,
    author: &TestUser,
    key: &str,
    content: &str,
) -> (StatusCode, Value) {
    let request = stack
        .request(Method::POST, "/tweets", Some(&author.token))
        .header("idempotency-key", key)
        .json(&json!({ "content": content }));
    stack.call(request).await
}

#[tokio::test]
async fn writes_need_a_valid_token_and_act_only_for_its_owner() {
    let stack = spawn_stack().await;
    let alice = stack.sign_up(&handle("alice")).await;
    let bob = stack.sign_up(&handle("bob")).await;
    let tweet = json!({ "content": "hi" });

    let (status, body) = stack
        .call(stack.request(Method::POST, "/tweets", None).json(&tweet))
        .await;
    assert_problem(status, &body, StatusCode::UNAUTHORIZED, "unauthenticated");
    let (status, body) = stack
        .call(
            stack
                .request(Method::POST, "/tweets", Some("not-a-token"))
                .json(&tweet),
        )
        .await;
    assert_problem(status, &body, StatusCode::UNAUTHORIZED, "unauthenticated");

    let alices_timeline = format!("/users/{}/timeline", alice.id);
    let (status, body) = stack
        .call(stack.request(Method::GET, &alices_timeline, Some(&bob.token)))
        .await;
    assert_problem(status, &body, StatusCode::FORBIDDEN, "permission_denied");

    let posted = stack.post(&alice, "mine").await;
    let path = format!("/tweets/{}", posted["id"].as_str().unwrap());
    let (status, body) = stack
        .call(stack.request(Method::DELETE, &path, Some(&bob.token)))
        .await;
    assert_problem(status, &body, StatusCode::FORBIDDEN, "permission_denied");
    let (status, _) = stack.call(stack.request(Method::GET, &path, None)).await;
    assert_eq!(status, StatusCode::OK, "a refused delete changes nothing");
}

#[tokio::test]
async fn a_retried_post_returns_the_first_tweet() {
    let stack = spawn_stack().await;
    let alice = stack.sign_up(&handle("alice")).await;

    let (first_status, first) = post_with_key(&stack, &alice, "retry-1", "only once").await;
    assert_eq!(first_status, StatusCode::CREATED, "{first}");
    let (status, replay) = post_with_key(&stack, &alice, "retry-1", "only once").await;
    assert_eq!(status, StatusCode::OK, "{replay}");
    assert_eq!(replay["id"], first["id"]);

    let (status, body) = post_with_key(&stack, &alice, "retry-1", "something else").await;
    assert_problem(status, &body, StatusCode::CONFLICT, "conflict");

    let concurrent = (0..8).map(|_| post_with_key(&stack, &alice, "retry-2", "raced"));
    let answers = futures::future::join_all(concurrent).await;
    let created = answers
        .iter()
        .filter(|(s, _)| *s == StatusCode::CREATED)
        .count();
    assert_eq!(
        created, 1,
        "exactly one concurrent retry creates: {answers:?}"
    );
    assert!(
        answers
            .iter()
            .all(|(_, body)| body["id"] == answers[0].1["id"]),
        "{answers:?}"
    );

    let own = format!("/users/{}/tweets", alice.id);
    let (_, page) = stack.call(stack.request(Method::GET, &own, None)).await;
    assert_eq!(ids(&page).len(), 2, "two keys, two tweets: {page}");
}

#[tokio::test]
async fn bad_input_gets_a_clear_4xx_and_changes_nothing() {
    let stack = spawn_stack().await;
    let alice = stack.sign_up(&handle("alice")).await;
    let post = |body: Value| {
        stack
            .request(Method::POST, "/tweets", Some(&alice.token))
            .json(&body)
    };

    for content in ["", "  \n\t ", &"x".repeat(281)] {
        let (status, problem) = stack.call(post(json!({ "content": content }))).await;
        assert_problem(
            status,
            &problem,
            StatusCode::BAD_REQUEST,
            "invalid_argument",
        );
    }
    let (status, _) = stack
        .call(post(json!({ "content": "🐦".repeat(280) })))
        .await;
    assert_eq!(status, StatusCode::CREATED, "280 emoji are 280 characters");

    let (status, problem) = stack
        .call(post(json!({ "content": "hi", "extra": 1 })))
        .await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "unknown fields are refused: {problem}"
    );
    let (status, problem) = stack
        .call(
            stack
                .request(Method::POST, "/tweets", Some(&alice.token))
                .body("{\"content\":"),
        )
        .await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{problem}");
    let (status, problem) = stack
        .call(
            stack
                .request(Method::POST, "/tweets", Some(&alice.token))
                .header("content-type", "application/json")
                .body("{\"content\":"),
        )
        .await;
    assert_problem(
        status,
        &problem,
        StatusCode::BAD_REQUEST,
        "invalid_argument",
    );

    let oversized = json!({ "content": "x".repeat(20 * 1024) });
    let (status, problem) = stack.call(post(oversized)).await;
    assert_problem(
        status,
        &problem,
        StatusCode::PAYLOAD_TOO_LARGE,
        "invalid_argument",
    );

    let (status, problem) = stack
        .call(stack.request(Method::GET, "/tweets/abc", None))
        .await;
    assert_problem(
        status,
        &problem,
        StatusCode::BAD_REQUEST,
        "invalid_argument",
    );
    let (status, problem) = stack
        .call(stack.request(Method::GET, "/tweets/12345", None))
        .await;
    assert_problem(status, &problem, StatusCode::NOT_FOUND, "not_found");

    let own = format!("/users/{}/tweets", alice.id);
    for query in [
        "?cursor=forged",
        "?limit=0",
        "?limit=101",
        "?limit=x",
        "?offset=20",
    ] {
        let (status, problem) = stack
            .call(stack.request(Method::GET, &format!("{own}{query}"), None))
            .await;
        assert_problem(
            status,
            &problem,
            StatusCode::BAD_REQUEST,
            "invalid_argument",
        );
    }

    let (_, page) = stack.call(stack.request(Method::GET, &own, None)).await;
    assert_eq!(ids(&page).len(), 1, "only the valid post exists: {page}");
}

#[tokio::test]
async fn users_and_follows() {
    let stack = spawn_stack().await;
    let alice = stack.sign_up(&handle("alice")).await;
    let bob = stack.sign_up(&handle("bob")).await;

    let shouted = alice.handle.to_uppercase();
    let body = json!({ "handle": shouted, "display_name": "Imposter" });
    let (status, problem) = stack
        .call(stack.request(Method::POST, "/users", None).json(&body))
        .await;
    assert_problem(status, &problem, StatusCode::CONFLICT, "already_exists");
    let body = json!({ "handle": "no spaces", "display_name": "x" });
    let (status, problem) = stack
        .call(stack.request(Method::POST, "/users", None).json(&body))
        .await;
    assert_problem(
        status,
        &problem,
        StatusCode::BAD_REQUEST,
        "invalid_argument",
    );

    stack.follow(&bob, &alice).await;
    stack.follow(&bob, &alice).await;
    let (status, profile) = stack
        .call(stack.request(Method::GET, &format!("/users/by-handle/{shouted}"), None))
        .await;
    assert_eq!(status, StatusCode::OK, "{profile}");
    assert_eq!(profile["id"], alice.id.as_str());
    assert_eq!(profile["follower_count"], 1, "following twice counts once");

    let follow = |target: &str| {
        stack
            .request(Method::POST, "/follow", Some(&bob.token))
            .json(&json!({ "target_user_id": target }))
    };
    let (status, problem) = stack.call(follow(&bob.id)).await;
    assert_problem(
        status,
        &problem,
        StatusCode::UNPROCESSABLE_ENTITY,
        "unprocessable",
    );
    let (status, problem) = stack.call(follow("999999999")).await;
    assert_problem(status, &problem, StatusCode::NOT_FOUND, "not_found");

    let (status, followers) = stack
        .call(stack.request(Method::GET, &format!("/users/{}/followers", alice.id), None))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ids(&followers), vec![bob.id.clone()]);

    let unfollow = format!("/follow/{}", alice.id);
    let (status, _) = stack
        .call(stack.request(Method::DELETE, &unfollow, Some(&bob.token)))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, profile) = stack
        .call(stack.request(Method::GET, &format!("/users/{}", alice.id), None))
        .await;
    assert_eq!(profile["follower_count"], 0);
}

#[tokio::test]
async fn timeline_pages_stay_stable_while_new_tweets_arrive() {
    let stack = spawn_stack().await;
    let alice = stack.sign_up(&handle("alice")).await;
    let bob = stack.sign_up(&handle("bob")).await;
    stack.follow(&bob, &alice).await;
    let mut posted = Vec::new();
    for n in 0..7 {
        posted.push(
            stack.post(&alice, &format!("tweet {n}")).await["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    eventually(
        Duration::from_secs(10),
        "all 7 tweets on bob's timeline",
        || async { (ids(&stack.home_timeline(&bob, "?limit=100").await).len() == 7).then_some(()) },
    )
    .await;

    let mut seen = Vec::new();
    let mut page = stack.home_timeline(&bob, "?limit=3").await;
    loop {
        seen.extend(ids(&page));
        stack.post(&alice, "posted between two page requests").await;
        let Some(cursor) = page["next_cursor"].as_str() else {
            break;
        };
        page = stack
            .home_timeline(&bob, &format!("?limit=3&cursor={cursor}"))
            .await;
    }
    posted.reverse();
    assert_eq!(seen, posted, "every older tweet exactly once, newest first");

    let newest = posted[0].clone();
    let (status, _) = stack
        .call(stack.request(
            Method::DELETE,
            &format!("/tweets/{newest}"),
            Some(&alice.token),
        ))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = stack
        .call(stack.request(Method::GET, &format!("/tweets/{newest}"), None))
        .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "the tweet itself is gone at once"
    );

    // Timelines converge: the fan-out worker removes the id from every
    // timeline when it applies TweetDeleted, and the timeline service's
    // hot-tweet cache forgets the tweet within its TTL. After that, it never
    // shows again.
    eventually(
        Duration::from_secs(10),
        "the deleted tweet to leave bob's timeline",
        || async {
            let timeline = stack.home_timeline(&bob, "?limit=100").await;
            (!ids(&timeline).contains(&newest)).then_some(())
        },
    )
    .await;
    for _ in 0..3 {
        let timeline = stack.home_timeline(&bob, "?limit=100").await;
        assert!(
            !ids(&timeline).contains(&newest),
            "a deleted tweet never comes back: {timeline}"
        );
    }
}

/// Every downstream call has a deadline: a service that refuses connections
/// and one that accepts and never answers both turn into a 503 problem,
/// never a hung request.
#[tokio::test]
async fn a_dead_or_silent_service_is_a_503_never_a_hang() {
    let refusing = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("address").to_string()
    };
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let silent_addr = silent.local_addr().expect("address").to_string();
    tokio::spawn(async move {
        let mut held_open = Vec::new();
        while let Ok((connection, _)) = silent.accept().await {
            held_open.push(connection);
        }
    });
    let stack = crate::helpers::spawn_gateway_only(&[
        "--graph-addr",
        &refusing,
        "--timeline-addr",
        &refusing,
        "--tweet-addr",
        &silent_addr,
        "--downstream-timeout-ms",
        "500",
    ])
    .await;
    let client_patience = std::time::Duration::from_secs(20);

    for path in ["/users/1", "/tweets/1"] {
        let request = stack
            .request(Method::GET, path, None)
            .timeout(client_patience);
        let (status, problem) = stack.call(request).await;
        assert_problem(
            status,
            &problem,
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
        );
    }
}
