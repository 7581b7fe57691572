//! Two instances of every service, as `REPLICAS=2 deploy/run-local.sh up`
//! starts them: the real binaries, HAProxy in front of the gateways, and
//! every gRPC client balancing over its peer's two instances.
//!
//! The test shows what scaling out promises: the load spreads (every
//! instance's own request counter moves), and when one instance of every
//! service is killed (SIGKILL, as a crash) nothing is lost: each request a
//! client retried after a failure succeeds, and every tweet posted reaches
//! the follower's home timeline.
//!
//! The stack runs on ports of its own (`PORT_OFFSET`) with its own database,
//! keyspace, topic, consumer group and Redis prefix, so it shares only the
//! backends with the rest of the test run.

use std::time::Duration;

use chirp_client::Gateway;
use chirp_e2e::LocalStack;
use chirp_proto::graph::graph_service_server;
use chirp_proto::timeline::timeline_service_server;
use chirp_proto::tweet::tweet_service_server;
use chirp_runtime::metrics::total;
use chirp_test_support::{ensure_backends, eventually, fresh_database, unique_name};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const PORT_OFFSET: u16 = 2000;
const EDGE: &str = "http://127.0.0.1:10080";
const TWEETS_BEFORE: usize = 20;
const TWEETS_AFTER: usize = 20;

/// Metrics port of instance `i` (0, 1) of a service, as run-local.sh places them.
fn metrics_url(slot: u16, i: u16) -> String {
    format!(
        "http://127.0.0.1:{}/metrics",
        9200 + 10 * slot + i + PORT_OFFSET
    )
}
const GATEWAY: u16 = 0;
const TWEET: u16 = 1;
const GRAPH: u16 = 2;
const TIMELINE: u16 = 3;

/// Sends a request until it succeeds, as a client does after a 502 or a
/// refused connection; the `Idempotency-Key` of a post makes that safe.
async fn with_retries(
    gateway: &Gateway,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
    headers: &[(&str, &str)],
) -> (StatusCode, Value) {
    let mut failures = Vec::new();
    for _ in 0..20 {
        let mut request = gateway.request(method.clone(), path, token);
        if let Some(body) = &body {
            request = request.json(body);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        match request.send().await {
            Ok(response) if !response.status().is_server_error() => {
                let status = response.status();
                let json = response.json().await.unwrap_or(Value::Null);
                return (status, json);
            }
            Ok(response) => failures.push(response.status().to_string()),
            Err(error) => failures.push(error.to_string()),
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("{method} {path} failed 20 times: {failures:?}");
}

fn service_label(service: &str) -> String {
    format!("service=\"{service}\"")
}

async fn counter(url: &str, name: &str, label: &str) -> f64 {
    let text = reqwest::get(url)
        .await
        .unwrap_or_else(|e| panic!("{url}: {e}"))
        .text()
        .await
        .unwrap();
    if label.is_empty() {
        total(&text, name, &[]) - total(&text, name, &[r#"route="/healthz""#])
    } else {
        total(&text, name, &[label])
    }
}

#[tokio::test]
async fn two_of_each_spread_the_load_and_lose_nothing_when_one_of_each_dies() {
    ensure_backends();
    let database_url = fresh_database().await;
    let run_id = unique_name("scaleout");
    let extra = [
        ("REPLICAS", "2"),
        ("KAFKA_TOPIC_PARTITIONS", "4"),
        ("RATE_LIMIT_BURST", "1000"),
    ];
    let stack = LocalStack::new(&run_id, database_url, PORT_OFFSET, &extra);
    stack.run(&["up"]);
    let gateway = Gateway::new(EDGE).expect("an HTTP client");

    let sign_up = async |name: &str| {
        let handle = format!("{name}{}", &run_id[run_id.len() - 8..]);
        let body = json!({ "handle": handle, "display_name": name });
        let (status, user) =
            with_retries(&gateway, Method::POST, "/users", None, Some(body), &[]).await;
        assert_eq!(status, StatusCode::CREATED, "{user}");
        (
            user["user_id"].as_str().unwrap().to_owned(),
            user["token"].as_str().unwrap().to_owned(),
        )
    };
    let (author, author_token) = sign_up("author").await;
    let (reader, reader_token) = sign_up("reader").await;
    let follow = json!({ "target_user_id": author });
    let (status, _) = with_retries(
        &gateway,
        Method::POST,
        "/follow",
        Some(&reader_token),
        Some(follow),
        &[],
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    let mut posted = Vec::new();
    let timeline = format!("/users/{reader}/timeline?limit=100");
    let post = async |i: usize| {
        let key = format!("{run_id}-{i}");
        let (status, tweet) = with_retries(
            &gateway,
            Method::POST,
            "/tweets",
            Some(&author_token),
            Some(json!({ "content": format!("tweet {i}") })),
            &[("idempotency-key", key.as_str())],
        )
        .await;
        assert!(status.is_success(), "{status}: {tweet}");
        let (status, _) = with_retries(
            &gateway,
            Method::GET,
            &timeline,
            Some(&reader_token),
            None,
            &[],
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        tweet["id"].as_str().unwrap().to_owned()
    };
    for i in 0..TWEETS_BEFORE {
        posted.push(post(i).await);
    }

    // Every instance took part: each one's own counter has moved. Only
    // real calls count: the load balancer's and the clients' health checks
    // reach every instance whether it serves traffic or not.
    let mut idle = Vec::new();
    let grpc = "chirp_grpc_requests_total";
    for (slot, name, metric, label) in [
        (
            GATEWAY,
            "gateway",
            "chirp_http_requests_total",
            // Every route but the load balancer's /healthz (subtracted below).
            String::new(),
        ),
        (
            TWEET,
            "tweet",
            grpc,
            service_label(tweet_service_server::SERVICE_NAME),
        ),
        (
            GRAPH,
            "graph",
            grpc,
            service_label(graph_service_server::SERVICE_NAME),
        ),
        (
            TIMELINE,
            "timeline",
            grpc,
            service_label(timeline_service_server::SERVICE_NAME),
        ),
    ] {
        for i in 0..2 {
            let served = counter(&metrics_url(slot, i), metric, &label).await;
            eprintln!("{name} instance {}: {served} requests", i + 1);
            if served == 0.0 {
                idle.push(format!("{name} instance {}", i + 1));
            }
        }
    }
    assert!(idle.is_empty(), "instances that got no load: {idle:?}");

    // One of each dies at once; the clients retry what failed.
    stack.run(&["kill", "2"]);
    for i in TWEETS_BEFORE..TWEETS_BEFORE + TWEETS_AFTER {
        posted.push(post(i).await);
    }

    // Every tweet reaches the follower's home timeline, whichever fan-out
    // worker, timeline instance and gateway handled it.
    let missing = eventually(
        Duration::from_secs(60),
        "every tweet in the home timeline",
        || {
            let (gateway, timeline, reader_token, posted) =
                (&gateway, &timeline, &reader_token, &posted);
            async move {
                let (_, page) = with_retries(
                    gateway,
                    Method::GET,
                    timeline,
                    Some(reader_token),
                    None,
                    &[],
                )
                .await;
                let shown: Vec<&str> = page["items"]
                    .as_array()?
                    .iter()
                    .filter_map(|item| item["id"].as_str())
                    .collect();
                let missing: Vec<&String> = posted
                    .iter()
                    .filter(|id| !shown.contains(&id.as_str()))
                    .collect();
                missing.is_empty().then_some(missing.len())
            }
        },
    )
    .await;
    assert_eq!(missing, 0);
    assert_eq!(posted.len(), TWEETS_BEFORE + TWEETS_AFTER);
}
