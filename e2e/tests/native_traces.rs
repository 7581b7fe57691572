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

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use chirp_test_support::{ensure_backends, eventually, fresh_database, unique_name};
use reqwest::StatusCode;
use serde_json::{Value, json};

const PORT_OFFSET: u16 = 6000;
const EDGE: &str = "http://127.0.0.1:14080";
/// Jaeger's UI and query API: 16686 moved by `PORT_OFFSET`, as run-local.sh moves it.
const JAEGER: &str = "http://127.0.0.1:22686";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The stack of `run-local.sh` with its Jaeger, both stopped when the test
/// ends, passed or not.
struct TracedStack {
    env: Vec<(String, String)>,
}

impl TracedStack {
    fn script(&self, script: &str, args: &[&str]) -> std::process::ExitStatus {
        Command::new("bash")
            .arg(repo().join(script))
            .args(args)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .status()
            .unwrap_or_else(|error| panic!("run {script}: {error}"))
    }
}

impl Drop for TracedStack {
    fn drop(&mut self) {
        self.script("deploy/run-local.sh", &["down"]);
        // run-local.sh leaves Jaeger up, as it leaves the backends: the test
        // started this one (on its own ports), so it stops it.
        self.script("deploy/jaeger.sh", &["down"]);
    }
}

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
    let bin_dir = chirp_e2e::service_binaries();
    let database_url = fresh_database().await;
    let run_id = unique_name("traces");
    let run_dir = std::env::temp_dir().join(&run_id);
    std::fs::create_dir_all(&run_dir).unwrap();
    let env = [
        ("JAEGER", "1".to_owned()),
        ("PORT_OFFSET", PORT_OFFSET.to_string()),
        ("SKIP_BUILD", "1".to_owned()),
        ("BIN_DIR", bin_dir.display().to_string()),
        ("CHIRP_RUN_DIR", run_dir.display().to_string()),
        // What the README recommends for load tests: quiet logs, whole traces.
        ("RUST_LOG", "warn".to_owned()),
        ("DATABASE_URL", database_url),
        ("CQL_KEYSPACE", run_id.clone()),
        ("KAFKA_TOPIC", format!("tweets_{run_id}")),
        ("KAFKA_GROUP_ID", run_id.clone()),
        ("REDIS_KEY_PREFIX", format!("{run_id}:")),
    ];
    let stack = TracedStack {
        env: env
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect(),
    };
    // Builds Jaeger first if this machine has not yet (the script waits for it).
    let status = stack.script("deploy/run-local.sh", &["up"]);
    assert!(
        status.success(),
        "JAEGER=1 run-local.sh up failed: {status}"
    );

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
