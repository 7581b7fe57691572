//! The vertical slice: one tweet travels the whole path of the design.
//!
//! gateway → tweet service → Cassandra + Kafka → fan-out worker → Redis →
//! timeline service → gateway.

use std::time::Duration;

use reqwest::{Method, StatusCode};

use crate::helpers::{handle, ids, spawn_stack};
use chirp_test_support::eventually;

#[tokio::test]
async fn a_tweet_reaches_a_followers_home_timeline() {
    let stack = spawn_stack().await;
    let alice = stack.sign_up(&handle("alice")).await;
    let bob = stack.sign_up(&handle("bob")).await;
    stack.follow(&bob, &alice).await;

    let tweet = stack.post(&alice, "hello, world").await;
    let tweet_id = tweet["id"].as_str().expect("tweet id").to_owned();
    assert_eq!(tweet["content"], "hello, world");
    assert_eq!(tweet["author_id"], alice.id.as_str());
    assert_eq!(tweet["author_handle"], alice.handle.as_str());

    let timeline = eventually(
        Duration::from_secs(10),
        "the tweet on bob's timeline",
        || {
            let (stack, bob, tweet_id) = (&stack, &bob, &tweet_id);
            async move {
                let page = stack.home_timeline(bob, "").await;
                ids(&page).contains(tweet_id).then_some(page)
            }
        },
    )
    .await;
    assert_eq!(timeline["items"][0]["content"], "hello, world");
    assert_eq!(timeline["items"][0]["author_handle"], alice.handle.as_str());

    let (status, fetched) = stack
        .call(stack.request(Method::GET, &format!("/tweets/{tweet_id}"), None))
        .await;
    assert_eq!(status, StatusCode::OK, "{fetched}");
    assert_eq!(fetched, tweet);

    let (status, own) = stack
        .call(stack.request(Method::GET, &format!("/users/{}/tweets", alice.id), None))
        .await;
    assert_eq!(status, StatusCode::OK, "{own}");
    assert_eq!(ids(&own), vec![tweet_id]);
}
