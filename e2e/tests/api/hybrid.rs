//! The hybrid timeline through the public API: celebrities' tweets pulled and
//! merged at read time, the strategy switch, and timelines rebuilt when Redis
//! no longer holds them.
//!
//! The celebrity threshold is lowered to 2 followers so that a test can make
//! a celebrity with two sign-ups.

use std::time::Duration;

use crate::helpers::{ExtraArgs, Stack, TestUser, handle, ids, spawn_stack_with_args};
use chirp_test_support::eventually;
use reqwest::{Method, StatusCode};
use serde_json::Value;

const THRESHOLD: &[&str] = &["--celebrity-threshold", "2"];
/// No reuse of pulled ids: each read sees the latest.
const NO_PULLED_CACHES: &[&str] = &["--pulled-ids-ttl-ms", "0"];

/// Every page of `reader`'s home timeline, `limit` at a time, concatenated.
async fn read_all(stack: &Stack, reader: &TestUser, limit: usize) -> Vec<String> {
    let mut page = stack
        .home_timeline(reader, &format!("?limit={limit}"))
        .await;
    let mut read = ids(&page);
    while let Some(cursor) = page["next_cursor"].as_str() {
        page = stack
            .home_timeline(reader, &format!("?limit={limit}&cursor={cursor}"))
            .await;
        read.extend(ids(&page));
    }
    read
}

/// Waits until `reader`'s first page holds exactly `expected`, newest first.
async fn wait_for_timeline(stack: &Stack, reader: &TestUser, expected: &[String]) {
    eventually(
        Duration::from_secs(15),
        "the expected home timeline",
        || async {
            (ids(&stack.home_timeline(reader, "?limit=100").await) == expected).then_some(())
        },
    )
    .await;
}

/// A stack where two followers make a celebrity, and pulled tweets are never cached.
async fn celebrity_stack() -> Stack {
    spawn_stack_with_args(ExtraArgs {
        graph: THRESHOLD,
        timeline: NO_PULLED_CACHES,
        ..ExtraArgs::default()
    })
    .await
}

/// The tweet ids pushed into `reader`'s timeline in Redis, newest first.
async fn pushed_ids(stack: &Stack, reader: &TestUser) -> Vec<String> {
    let pushed = stack
        .timelines()
        .await
        .page(reader.numeric_id(), None, 100)
        .await
        .unwrap();
    pushed.iter().map(i64::to_string).collect()
}

async fn post_id(stack: &Stack, author: &TestUser, content: &str) -> String {
    stack.post(author, content).await["id"]
        .as_str()
        .expect("tweet id")
        .to_owned()
}

#[tokio::test]
async fn celebrity_tweets_are_pulled_and_merged_in_order_across_pages() {
    let stack = celebrity_stack().await;
    let star = stack.sign_up(&handle("star")).await;
    let friend = stack.sign_up(&handle("friend")).await;
    let reader = stack.sign_up(&handle("reader")).await;
    let other_fan = stack.sign_up(&handle("fan")).await;
    stack.follow(&reader, &star).await;
    stack.follow(&other_fan, &star).await;
    stack.follow(&reader, &friend).await;

    let (mut posted, mut pushed) = (Vec::new(), Vec::new());
    for n in 0..4 {
        let id = post_id(&stack, &friend, &format!("friend {n}")).await;
        posted.push(id.clone());
        pushed.push(id);
        posted.push(post_id(&stack, &star, &format!("star {n}")).await);
    }
    posted.reverse();
    pushed.reverse();
    wait_for_timeline(&stack, &reader, &posted).await;

    for limit in [1, 3, 5] {
        assert_eq!(
            read_all(&stack, &reader, limit).await,
            posted,
            "page size {limit}"
        );
    }
    assert_eq!(
        pushed_ids(&stack, &reader).await,
        pushed,
        "only the friend's tweets were pushed"
    );
}

#[tokio::test]
async fn a_timeline_missing_from_redis_is_rebuilt_as_it_was() {
    let stack = spawn_stack_with_args(ExtraArgs {
        graph: THRESHOLD,
        ..ExtraArgs::default()
    })
    .await;
    let reader = stack.sign_up(&handle("reader")).await;
    let star = stack.sign_up(&handle("star")).await;
    let other_fan = stack.sign_up(&handle("fan")).await;
    let friends = [
        stack.sign_up(&handle("ann")).await,
        stack.sign_up(&handle("ben")).await,
    ];
    for followee in [&star, &friends[0], &friends[1]] {
        stack.follow(&reader, followee).await;
    }
    stack.follow(&other_fan, &star).await;
    let mut posted = Vec::new();
    for n in 0..3 {
        for author in [&friends[0], &star, &friends[1], &reader] {
            posted.push(post_id(&stack, author, &format!("{} {n}", author.handle)).await);
        }
    }
    posted.reverse();
    wait_for_timeline(&stack, &reader, &posted).await;
    let before = stack.home_timeline(&reader, "?limit=100").await;

    let timelines = stack.timelines().await;
    timelines.invalidate(&[reader.numeric_id()]).await.unwrap();
    assert!(
        timelines
            .page(reader.numeric_id(), None, 100)
            .await
            .unwrap()
            .is_empty()
    );

    // The same tweets in the same order; only where they came from changed.
    let sourceless = |mut page: Value| {
        for item in page["items"].as_array_mut().expect("items") {
            item.as_object_mut().expect("an item").remove("source");
        }
        page
    };
    assert_eq!(
        sourceless(stack.home_timeline(&reader, "?limit=100").await),
        sourceless(before)
    );
    assert_eq!(read_all(&stack, &reader, 4).await, posted);
    let rebuilt = timelines
        .page(reader.numeric_id(), None, 100)
        .await
        .unwrap();
    assert_eq!(
        rebuilt.len(),
        9,
        "the rebuilt timeline holds all but the celebrity's tweets"
    );
}

#[tokio::test]
async fn an_empty_timeline_stays_empty_without_rebuilding_on_every_read() {
    let stack = spawn_stack_with_args(ExtraArgs::default()).await;
    let loner = stack.sign_up(&handle("loner")).await;

    assert!(ids(&stack.home_timeline(&loner, "").await).is_empty());

    let timelines = stack.timelines().await;
    assert!(
        timelines
            .page(loner.numeric_id(), None, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        timelines
            .page_if_complete(loner.numeric_id(), None, 10)
            .await
            .unwrap()
            .is_some(),
        "built and empty is not missing"
    );
}

/// Under `push` the celebrity's tweets are pushed like anyone's; under `pull`
/// nothing is, and the home timeline is the same either way.
#[tokio::test]
async fn every_strategy_serves_the_same_timeline() {
    for strategy in ["push", "pull"] {
        let args = ["--timeline-strategy", strategy];
        let stack = spawn_stack_with_args(ExtraArgs {
            graph: THRESHOLD,
            timeline: &args,
            fanout: &args,
            ..ExtraArgs::default()
        })
        .await;
        let star = stack.sign_up(&handle("star")).await;
        let reader = stack.sign_up(&handle("reader")).await;
        let other_fan = stack.sign_up(&handle("fan")).await;
        stack.follow(&reader, &star).await;
        stack.follow(&other_fan, &star).await;

        let mut posted = Vec::new();
        for n in 0..3 {
            posted.push(post_id(&stack, &star, &format!("star {n}")).await);
            posted.push(post_id(&stack, &reader, &format!("reader {n}")).await);
        }
        posted.reverse();
        wait_for_timeline(&stack, &reader, &posted).await;
        assert_eq!(read_all(&stack, &reader, 4).await, posted, "{strategy}");

        let in_redis = pushed_ids(&stack, &reader).await;
        let expected_in_redis = if strategy == "push" { posted.len() } else { 0 };
        assert_eq!(in_redis.len(), expected_in_redis, "{strategy}");
    }
}

#[tokio::test]
async fn a_follow_brings_in_recent_tweets_and_an_unfollow_takes_them_out() {
    let stack = spawn_stack_with_args(ExtraArgs::default()).await;
    let reader = stack.sign_up(&handle("reader")).await;
    let author = stack.sign_up(&handle("author")).await;
    let mut posted = Vec::new();
    for n in 0..3 {
        posted.push(post_id(&stack, &author, &format!("before the follow {n}")).await);
    }
    posted.reverse();
    let own = post_id(&stack, &reader, "my own").await;
    wait_for_timeline(&stack, &reader, std::slice::from_ref(&own)).await;

    stack.follow(&reader, &author).await;
    let mut expected = vec![own.clone()];
    expected.extend(posted);
    assert_eq!(
        ids(&stack.home_timeline(&reader, "?limit=100").await),
        expected,
        "the followee's earlier tweets, at once"
    );

    let path = format!("/follow/{}", author.id);
    let (status, body) = stack
        .call(stack.request(reqwest::Method::DELETE, &path, Some(&reader.token)))
        .await;
    assert_eq!(status, reqwest::StatusCode::NO_CONTENT, "{body}");
    assert_eq!(
        ids(&stack.home_timeline(&reader, "?limit=100").await),
        [own]
    );
}

#[tokio::test]
async fn an_author_falling_below_the_threshold_keeps_their_tweets_in_timelines() {
    let stack = celebrity_stack().await;
    let star = stack.sign_up(&handle("star")).await;
    let reader = stack.sign_up(&handle("reader")).await;
    let leaver = stack.sign_up(&handle("leaver")).await;
    stack.follow(&reader, &star).await;
    stack.follow(&leaver, &star).await;
    let mut posted = vec![
        post_id(&stack, &star, "pulled, never pushed 1").await,
        post_id(&stack, &star, "pulled, never pushed 2").await,
    ];
    posted.reverse();
    wait_for_timeline(&stack, &reader, &posted).await;

    let unfollow = format!("/follow/{}", star.id);
    let (status, body) = stack
        .call(stack.request(reqwest::Method::DELETE, &unfollow, Some(&leaver.token)))
        .await;
    assert_eq!(status, reqwest::StatusCode::NO_CONTENT, "{body}");

    assert_eq!(
        ids(&stack.home_timeline(&reader, "?limit=100").await),
        posted,
        "no longer a celebrity, so no longer pulled; yet the tweets stay"
    );
}

/// An author rising above the threshold stops being pushed at once, and the
/// follow that made them a celebrity dropped their followers' timelines,
/// each stored with the list of celebrities it pulls: the reader's next read
/// rebuilds with the author in that list, so the author's next tweet shows
/// at once, in order, and what was pushed before is pulled now.
#[tokio::test]
async fn an_author_rising_above_the_threshold_is_pulled_from_the_next_read_on() {
    let stack = celebrity_stack().await;
    let author = stack.sign_up(&handle("riser")).await;
    let reader = stack.sign_up(&handle("reader")).await;
    let fan = stack.sign_up(&handle("fan")).await;
    stack.follow(&reader, &author).await;
    let pushed = post_id(&stack, &author, "pushed while ordinary").await;
    wait_for_timeline(&stack, &reader, std::slice::from_ref(&pushed)).await;

    // The second follower makes a celebrity.
    stack.follow(&fan, &author).await;
    let pulled = post_id(&stack, &author, "pulled from the next read on").await;

    assert_eq!(
        ids(&stack.home_timeline(&reader, "?limit=100").await),
        [pulled, pushed],
        "no wait: the reader's list of celebrities was rebuilt"
    );
    assert!(
        pushed_ids(&stack, &reader).await.is_empty(),
        "a celebrity's tweets are pulled, not pushed"
    );
}

/// Issue 22, Mastodon's 206: with the timeline service answering while it
/// rebuilds (`--answer-while-rebuilding`), a reader whose timeline is not
/// cached gets a first page at once, marked partial (here empty: nothing
/// was cached), with status 206; once the rebuild has run, a 200 with the
/// whole timeline and no `partial`.
#[tokio::test]
async fn a_page_answered_while_the_timeline_is_rebuilt_is_a_206_marked_partial() {
    let stack = spawn_stack_with_args(ExtraArgs {
        timeline: &["--answer-while-rebuilding", "true"],
        ..ExtraArgs::default()
    })
    .await;
    let author = stack.sign_up(&handle("author")).await;
    let reader = stack.sign_up(&handle("reader")).await;
    stack.follow(&reader, &author).await;
    let tweet = post_id(&stack, &author, "posted before the reader's first read").await;
    let path = format!("/users/{}/timeline", reader.id);
    let read = || stack.call(stack.request(Method::GET, &path, Some(&reader.token)));

    let (status, page) = read().await;

    assert_eq!(status, StatusCode::PARTIAL_CONTENT, "{page}");
    assert_eq!(page["partial"], true, "{page}");
    assert!(ids(&page).is_empty(), "nothing was cached: {page}");
    let page = eventually(Duration::from_secs(15), "the rebuilt timeline", || async {
        let (status, page) = read().await;
        (status == StatusCode::OK).then_some(page)
    })
    .await;
    assert_eq!(ids(&page), [tweet]);
    assert!(page.get("partial").is_none(), "{page}");
}
