//! Traces without Docker: `JAEGER=1 deploy/run-local.sh up` starts Jaeger
//! natively (`deploy/jaeger.sh`) beside the real binaries, and a post's
//! trace arrives there whole, with the logs quieted to `RUST_LOG=warn` as the
//! README recommends for load tests (the trace filter is not the log filter).
//!
//! `tests/trace.rs` checks the spans' tree in process; this checks the part it
//! cannot: the binaries' own telemetry set-up, OTLP export, the script that
//! builds and starts the viewer, and its query API, as a person would use
//! them. The first run on a machine builds Jaeger from source with Go (minutes,
//! niced; `deploy/jaeger.sh build`), later runs reuse the cached binary.
//!
//! The stack runs on ports of its own (`PORT_OFFSET`, Jaeger's moved with
//! them) with its own database, keyspace, topic, consumer group and Redis
//! prefix, so it shares only the backends with the rest of the test run.

use std::time::Duration;

use chirp_e2e::LocalStack;
use chirp_test_support::{ensure_backends, eventually, fresh_database, unique_name};
use reqwest::StatusCode;
use serde_json::{Value, json};

const PORT_OFFSET: u16 = 6000;
const EDGE: &str = "http://127.0.0.1:14080";
/// Jaeger's UI and query API: 16686 moved by `PORT_OFFSET`, as run-local.sh moves it.
const JAEGER: &str = "http://127.0.0.1:22686";

/// The services whose spans Jaeger holds for `trace_id`, and how many spans.
async fn services_in_trace(trace_id: &str) -> Option<(Vec<String>, usize)> {
    let response = reqwest::get(format!("{JAEGER}/api/traces/{trace_id}"))
        .await
        .ok()?;
    if response.status() != StatusCode::OK {
        return None;
    }
    let body: Value = response.json().await.ok()?;
    let trace = body["data"].get(0)?;
    let mut services: Vec<String> = trace["processes"]
        .as_object()?
        .values()
        .filter_map(|process| process["serviceName"].as_str().map(str::to_owned))
        .collect();
    services.sort();
    services.dedup();
    Some((services, trace["spans"].as_array()?.len()))
}

#[tokio::test]
async fn a_post_through_a_native_stack_arrives_whole_in_jaeger_with_quiet_logs() {
    ensure_backends();
    let database_url = fresh_database().await;
    let run_id = unique_name("traces");
    // What the README recommends for load tests: quiet logs, whole traces.
    let stack = LocalStack::new(&run_id, database_url, PORT_OFFSET, &[("JAEGER", "1")]);
    // Builds Jaeger first if this machine has not yet (the script waits for it).
    stack.run(&["up"]);

    let http = reqwest::Client::new();
    let handle = format!("tr{}", &run_id[run_id.len() - 8..]);
    let user: Value = http
        .post(format!("{EDGE}/users"))
        .json(&json!({ "handle": handle, "display_name": "tracer" }))
        .send()
        .await
        .expect("sign up")
        .json()
        .await
        .expect("a user");
    let token = user["token"].as_str().expect("a token").to_owned();

    // Our own trace id, in a W3C traceparent, so that the trace is found by id.
    let trace_id = format!("{:032x}", rand::random::<u128>() | 1);
    let response = http
        .post(format!("{EDGE}/tweets"))
        .bearer_auth(&token)
        .header(
            "traceparent",
            format!("00-{trace_id}-{:016x}-01", 1u64 << 40),
        )
        .header("idempotency-key", &run_id)
        .json(&json!({ "content": "a traced post" }))
        .send()
        .await
        .expect("post");
    assert_eq!(response.status(), StatusCode::CREATED);

    // The fan-out worker's spans join the trace through the Kafka headers:
    // the trace is whole when they are in too. Spans are exported in batches
    // every few seconds.
    let (services, spans) = eventually(
        Duration::from_secs(90),
        "the post's trace in Jaeger, from the gateway to the fan-out",
        async || {
            services_in_trace(&trace_id).await.filter(|(services, _)| {
                ["gateway", "tweet", "fanout"]
                    .iter()
                    .all(|name| services.iter().any(|s| s == name))
            })
        },
    )
    .await;
    println!("trace {trace_id}: {spans} spans from {services:?}");

    // And the query the README's reader makes: the gateway's traces.
    let listed: Value = reqwest::get(format!("{JAEGER}/api/traces?service=gateway&limit=20"))
        .await
        .expect("query Jaeger")
        .json()
        .await
        .expect("a JSON answer");
    let found = listed["data"]
        .as_array()
        .expect("a list of traces")
        .iter()
        .any(|trace| trace["traceID"].as_str() == Some(trace_id.as_str()));
    assert!(
        found,
        "the post's trace is not among the gateway's: {listed}"
    );
}
