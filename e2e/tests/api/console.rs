//! What the web console reads besides the plain API: where each timeline
//! item came from and how the page was assembled (`?explain=true`,
//! `Server-Timing`), a tweet's fan-out (`/tweets/{id}/delivery`), the most
//! followed users (`/users/popular`) and the live view of the services'
//! metrics (`/console/live`); and the console itself, served at `/`.

use std::time::Duration;

use axum::routing::get;
use chirp_test_support::{eventually, local_listener};
use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::helpers::{
    ExtraArgs, Stack, TestUser, handle, ids, spawn_stack, spawn_stack_with, spawn_stack_with_args,
};

/// The delivery record of `tweet_id` once `done` holds for it.
async fn delivery_when(stack: &Stack, tweet_id: &str, done: impl Fn(&Value) -> bool) -> Value {
    let path = format!("/tweets/{tweet_id}/delivery");
    eventually(Duration::from_secs(15), "the fan-out recorded", || async {
        let (status, body) = stack.call(stack.request(Method::GET, &path, None)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        done(&body).then_some(body)
    })
    .await
}

async fn reader_and_author(stack: &Stack) -> (TestUser, TestUser) {
    let reader = stack.sign_up(&handle("reader")).await;
    let author = stack.sign_up(&handle("author")).await;
    stack.follow(&reader, &author).await;
    (reader, author)
}

/// Issue 20: the record tells a follower whose timeline is cached (pushed)
/// from one who has not read since following, whose timeline is not cached
/// (skipped as inactive: nothing is written for them), instead of counting
/// both as reached.
#[tokio::test]
async fn a_tweet_s_delivery_tells_pushed_followers_from_inactive_ones() {
    let stack = spawn_stack().await;
    let (reader, author) = reader_and_author(&stack).await;
    let sleeper = stack.sign_up(&handle("sleeper")).await;
    stack.follow(&sleeper, &author).await;
    // The reader reads after following, which caches their timeline; the
    // sleeper does not.
    stack.home_timeline(&reader, "").await;
    let tweet = stack.post(&author, "watch me fan out").await;
    let id = tweet["id"].as_str().expect("tweet id");

    let delivery = delivery_when(&stack, id, |d| d["state"] == "delivered").await;
    assert_eq!(delivery["tweet_id"], id);
    assert_eq!(delivery["author_id"], author.id.as_str());
    assert_eq!(delivery["followers"], 2);
    assert_eq!(delivery["followers_pushed"], 1, "{delivery}");
    assert_eq!(delivery["followers_skipped_inactive"], 1, "{delivery}");
    assert_eq!(delivery["followers_skipped_celebrity"], 0, "{delivery}");
    let first = delivery["post_to_first_write_ms"]
        .as_i64()
        .expect("first write");
    let last = delivery["post_to_last_write_ms"]
        .as_i64()
        .expect("last write");
    assert!(0 <= first && first <= last, "{delivery}");
    // What the record says is so: the sleeper's next read rebuilds their
    // timeline, the tweet included.
    let page = stack.home_timeline(&sleeper, "").await;
    assert_eq!(ids(&page), [id]);
}

#[tokio::test]
async fn a_celebrity_s_tweet_is_pulled_not_delivered() {
    let stack = spawn_stack_with_args(ExtraArgs {
        graph: &["--celebrity-threshold", "1"],
        ..ExtraArgs::default()
    })
    .await;
    let (_reader, author) = reader_and_author(&stack).await;
    let tweet = stack.post(&author, "too famous to push").await;
    let id = tweet["id"].as_str().expect("tweet id");

    let delivery = delivery_when(&stack, id, |d| d["state"] == "pulled").await;
    assert_eq!(delivery["followers"], 1);
    assert_eq!(delivery["followers_pushed"], 0);
    assert_eq!(delivery["followers_skipped_inactive"], 0);
    assert_eq!(delivery["followers_skipped_celebrity"], 1);
}

#[tokio::test]
async fn the_delivery_of_a_tweet_that_does_not_exist_is_not_found() {
    let stack = spawn_stack().await;
    let (status, body) = stack
        .call(stack.request(Method::GET, "/tweets/12345/delivery", None))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, body) = stack
        .call(stack.request(Method::GET, "/tweets/x/delivery", None))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}

/// The timeline of `reader` once `tweet_id` was pushed into it.
async fn pushed_into(stack: &Stack, reader: &TestUser, tweet_id: &str) {
    let timelines = stack.timelines().await;
    eventually(Duration::from_secs(15), "the tweet pushed", || async {
        let page = timelines.page(reader.numeric_id(), None, 10).await.ok()?;
        page.iter()
            .any(|id| id.to_string() == tweet_id)
            .then_some(())
    })
    .await;
}

#[tokio::test]
async fn every_timeline_response_carries_server_timing_and_explains_only_on_request() {
    let stack = spawn_stack().await;
    let (reader, author) = reader_and_author(&stack).await;
    // Built once: pushes go only into cached timelines.
    stack.home_timeline(&reader, "").await;
    let id = stack.post(&author, "timed").await["id"]
        .as_str()
        .expect("tweet id")
        .to_owned();
    pushed_into(&stack, &reader, &id).await;

    let path = format!("/users/{}/timeline", reader.id);
    let response = stack
        .request(Method::GET, &path, Some(&reader.token))
        .send()
        .await
        .expect("gateway answers");
    let timing = response
        .headers()
        .get("server-timing")
        .expect("a Server-Timing header")
        .to_str()
        .expect("ASCII")
        .to_owned();
    assert!(timing.contains("gateway-timeline-call;dur="), "{timing}");
    assert!(timing.contains("gateway-author-handles;dur="), "{timing}");
    let page: Value = response.json().await.expect("JSON");
    assert_eq!(ids(&page), [id]);
    assert!(page.get("explain").is_none(), "{page}");

    for bad in [
        "?explain=maybe",
        "?explain=true&explain=false",
        "?explained=true",
    ] {
        let (status, body) = stack
            .call(stack.request(Method::GET, &format!("{path}{bad}"), Some(&reader.token)))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
    }
}

/// Needs the timeline service to fill `sources` and `explain`
/// (`HomeTimelinePage`); until it does, this test fails.
#[tokio::test]
async fn explain_says_where_each_item_came_from_and_how_the_page_was_read() {
    let stack = spawn_stack().await;
    let (reader, author) = reader_and_author(&stack).await;
    // Built once, so the read below finds the timeline complete in Redis.
    stack.home_timeline(&reader, "").await;
    let id = stack.post(&author, "explained").await["id"]
        .as_str()
        .expect("tweet id")
        .to_owned();
    pushed_into(&stack, &reader, &id).await;

    let page = stack.home_timeline(&reader, "?explain=true").await;
    assert_eq!(ids(&page), [id]);
    assert_eq!(page["items"][0]["source"], "pushed", "{page}");
    let explain = &page["explain"];
    assert_eq!(explain["strategy"], "hybrid", "{page}");
    assert_eq!(explain["cache"], "hit", "{page}");
    assert_eq!(explain["pulled_authors"], serde_json::json!([]), "{page}");
    let hops = explain["hops"].as_array().expect("hops");
    assert!(
        hops.iter().any(|hop| hop["service"] == "timeline"),
        "the timeline service's own steps are listed: {page}"
    );
    assert!(hops.iter().any(|hop| hop["service"] == "gateway"), "{page}");
}

#[tokio::test]
async fn popular_accounts_come_most_followed_first() {
    let stack = spawn_stack().await;
    let quiet = stack.sign_up(&handle("quiet")).await;
    let known = stack.sign_up(&handle("known")).await;
    let famous = stack.sign_up(&handle("famous")).await;
    stack.follow(&quiet, &famous).await;
    stack.follow(&known, &famous).await;
    stack.follow(&famous, &known).await;

    let (status, body) = stack
        .call(stack.request(Method::GET, "/users/popular?limit=2", None))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let order: Vec<&str> = body["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|user| user["id"].as_str().expect("id"))
        .collect();
    assert_eq!(order, [famous.id.as_str(), known.id.as_str()]);
    assert_eq!(body["items"][0]["follower_count"], 2);

    for bad in ["?limit=0", "?limit=101", "?limit=x", "?cursor=a"] {
        let (status, body) = stack
            .call(stack.request(Method::GET, &format!("/users/popular{bad}"), None))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
    }
}

#[tokio::test]
async fn the_console_is_served_at_the_root_with_its_modules() {
    let stack = spawn_stack().await;
    let page = stack
        .request(Method::GET, "/", None)
        .send()
        .await
        .expect("gateway answers");
    assert_eq!(page.status(), StatusCode::OK);
    let policy = page.headers()["content-security-policy"]
        .to_str()
        .expect("ASCII")
        .to_owned();
    assert!(policy.starts_with("default-src 'self'"), "{policy}");
    let html = page.text().await.expect("a body");
    assert!(html.contains("/console/app.js"), "{html}");
    let script = stack
        .request(Method::GET, "/console/app.js", None)
        .send()
        .await
        .expect("gateway answers");
    assert_eq!(script.status(), StatusCode::OK);
    assert!(
        script.headers()["content-type"]
            .to_str()
            .expect("ASCII")
            .starts_with("text/javascript")
    );
}

/// A stand-in `/metrics` endpoint for one gateway: this process's recorder,
/// which every in-process service records into, as Prometheus would read it.
async fn serve_metrics() -> String {
    let recorder = crate::metrics::recorder();
    let (listener, addr) = local_listener().await;
    let app = axum::Router::new().route("/metrics", get(move || async move { recorder.render() }));
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

#[tokio::test]
async fn the_live_view_turns_two_scrapes_into_rates() {
    let metrics = serve_metrics().await;
    let targets = format!("gateway={metrics},timeline={metrics},graph={metrics},dead=127.0.0.1:1");
    let stack = spawn_stack_with(&["--console-metrics-targets", &targets]).await;
    let user = stack.sign_up(&handle("live")).await;
    stack.home_timeline(&user, "").await;

    let (status, first) = stack
        .call(stack.request(Method::GET, "/console/live", None))
        .await;
    assert_eq!(status, StatusCode::OK, "{first}");
    let names: Vec<&str> = first["services"]
        .as_array()
        .expect("services")
        .iter()
        .map(|service| service["name"].as_str().expect("name"))
        .collect();
    assert_eq!(names, ["gateway", "timeline", "graph", "dead"]);
    assert_eq!(first["services"][0]["up"], true, "{first}");
    assert_eq!(first["services"][3]["up"], false, "{first}");
    assert!(first["timeline"].is_object(), "{first}");
    assert!(
        first["timeline"]["tweet_coalesced_waits"].is_number(),
        "{first}"
    );
    assert_eq!(
        first["graph"]["replicas"],
        serde_json::json!([]),
        "no graph service here reads from a replica, so none is measured: {first}"
    );

    // The next reading is a second later, with this test's reads in between.
    let second = eventually(Duration::from_secs(10), "a second reading", || async {
        stack.home_timeline(&user, "").await;
        let (_, live) = stack
            .call(stack.request(Method::GET, "/console/live", None))
            .await;
        (live["interval_secs"].as_f64() > Some(0.0)).then_some(live)
    })
    .await;
    let gateway = &second["services"][0];
    assert!(gateway["requests_per_sec"].as_f64() > Some(0.0), "{second}");
    assert!(gateway["p99_ms"].as_f64() > Some(0.0), "{second}");
    assert!(
        second["services"][1]["requests_per_sec"].as_f64() > Some(0.0),
        "the timeline service's calls, told apart by their service label: {second}"
    );
}
