//! Sign-ups that can be retried: the same `Idempotency-Key` and body answer
//! the user the first call created (200, a token that works), so a client
//! whose answer was lost does not find its handle taken by itself; the same
//! key with another body, or another key for a taken handle, is a 409.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Stack, handle, spawn_stack};

async fn sign_up(stack: &Stack, key: Option<&str>, body: &Value) -> (StatusCode, Value) {
    let mut request = stack.request(Method::POST, "/users", None).json(body);
    if let Some(key) = key {
        request = request.header("idempotency-key", key);
    }
    stack.call(request).await
}

#[tokio::test]
async fn a_retried_sign_up_answers_the_same_user_and_a_reused_key_is_refused() {
    let stack = spawn_stack().await;
    let name = handle("retry");
    let body = json!({ "handle": name, "display_name": "Retry" });
    let key = format!("sign-up-{name}");

    let (status, first) = sign_up(&stack, Some(&key), &body).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    // The answer was "lost": the client sends the same request again.
    let (status, again) = sign_up(&stack, Some(&key), &body).await;
    assert_eq!(status, StatusCode::OK, "a retry, not a new user: {again}");
    assert_eq!(again["user_id"], first["user_id"], "{again}");
    assert_eq!(again["user"]["handle"], name.as_str());
    let timeline = format!("/users/{}/timeline", again["user_id"].as_str().unwrap());
    let token = again["token"].as_str().expect("a token");
    let (status, page) = stack
        .call(stack.request(Method::GET, &timeline, Some(token)))
        .await;
    assert_eq!(status, StatusCode::OK, "the retry's token works: {page}");

    let other = json!({ "handle": name, "display_name": "Someone else" });
    let (status, problem) = sign_up(&stack, Some(&key), &other).await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    assert_eq!(problem["code"], "conflict", "{problem}");

    let (status, problem) = sign_up(&stack, Some("another-key"), &body).await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    assert_eq!(problem["code"], "already_exists", "the handle is taken");
    let (status, problem) = sign_up(&stack, None, &body).await;
    assert_eq!(problem["code"], "already_exists", "{status}: {problem}");

    let (status, problem) = sign_up(&stack, Some(&"k".repeat(200)), &body).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{problem}");
}

#[tokio::test]
async fn concurrent_retries_of_one_sign_up_make_one_user() {
    let stack = spawn_stack().await;
    let name = handle("race");
    let body = json!({ "handle": name, "display_name": "Race" });
    let key = format!("sign-up-{name}");
    let attempts =
        futures::future::join_all((0..4).map(|_| sign_up(&stack, Some(&key), &body))).await;
    let created = attempts
        .iter()
        .filter(|(status, _)| *status == StatusCode::CREATED)
        .count();
    assert_eq!(created, 1, "{attempts:?}");
    for (status, answer) in &attempts {
        assert!(status.is_success(), "{status}: {answer}");
        assert_eq!(answer["user_id"], attempts[0].1["user_id"]);
    }
}
