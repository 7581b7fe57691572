//! The load tool against a whole stack: `seed` builds a small graph through
//! the services, `run` sends each workload for two seconds at a low rate,
//! `bench` runs for a second or so per step, and the reports must add up. Smoke tests of the machinery, not benchmarks:
//! nothing here asserts a latency or a throughput.

#[path = "api/helpers.rs"]
#[allow(dead_code)] // Shared with the api binary, which uses the rest.
mod helpers;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use futures::TryStreamExt as _;
use redis::AsyncCommands as _;

use chirp_load::Command;
use chirp_load::bench::fanout;
use chirp_load::manifest::Manifest;
use chirp_load::report::Report;
use chirp_load::tokens::TokenArgs;
use chirp_load::workload::{
    Actor, HOME_FIRST_PAGE, HOME_NEXT_PAGE, POST_TWEET, USER_TWEETS, warm_up,
};
use chirp_proto::graph::graph_service_server;
use chirp_proto::timeline::timeline_service_server;
use chirp_proto::tweet::tweet_service_server;
use chirp_test_support::{self as testing, unique_name};
use clap::Parser;
use loadtest::Cli;

use helpers::{ExtraArgs, Stack, spawn_stack_with_args};

/// Low enough for 60 users to make 2 celebrities.
const THRESHOLD: &str = "20";

/// A stack whose graph service calls 20 followers a celebrity.
async fn stack() -> Stack {
    spawn_stack_with_args(ExtraArgs {
        graph: &["--celebrity-threshold", THRESHOLD],
        ..ExtraArgs::default()
    })
    .await
}

/// A fresh directory for one test's manifests and reports.
fn scratch() -> PathBuf {
    let dir = std::env::temp_dir().join(unique_name("loadtest"));
    std::fs::create_dir_all(&dir).expect("create a scratch directory");
    dir
}

/// The address of `stack`'s gRPC service named `service`: `seed` writes
/// follows and tweets there directly.
fn grpc_addr<'a>(stack: &'a Stack, service: &str) -> &'a str {
    let (_, addr) = stack
        .grpc_services
        .iter()
        .find(|(name, _)| *name == service)
        .unwrap_or_else(|| panic!("the stack runs no {service}"));
    addr
}

/// The load tool's subcommand in `argv`, parsed as the `loadtest` binary
/// parses it.
fn parse(argv: &[&str]) -> Command {
    let full = ["loadtest"].iter().chain(argv);
    let loadtest::Command::Load(command) =
        Cli::try_parse_from(full).expect("valid arguments").command
    else {
        panic!("not a load tool subcommand: {argv:?}");
    };
    *command
}

/// `loadtest seed` against `stack`, with `extra` flags.
async fn seed(stack: &Stack, manifest: &Path, extra: &[&str]) -> Manifest {
    let mut argv = vec![
        "seed",
        "--gateway",
        stack.gateway.base_url(),
        "--graph-addr",
        grpc_addr(stack, graph_service_server::SERVICE_NAME),
        "--tweet-addr",
        grpc_addr(stack, tweet_service_server::SERVICE_NAME),
        "--celebrity-threshold",
        THRESHOLD,
        "--manifest",
        manifest.to_str().expect("a UTF-8 path"),
        "--quiet",
    ];
    argv.extend_from_slice(extra);
    let Command::Seed(args) = parse(&argv) else {
        unreachable!("a seed command")
    };
    let manifest = chirp_load::seed::seed(&args).await.expect("seed");
    assert!(args.manifest.exists());
    manifest
}

/// `loadtest run` of `workload` for 2 s, reading `manifest`, writing into
/// `out`; checks what every report must satisfy and returns it.
async fn run(manifest: &Path, out: &Path, workload: &str, extra: &[&str]) -> Report {
    let mut argv = vec![
        "run",
        workload,
        "--manifest",
        manifest.to_str().expect("a UTF-8 path"),
        "--out",
        out.to_str().expect("a UTF-8 path"),
        "--duration",
        "2s",
        "--timeout",
        "10s",
        "--token-secret",
        helpers::TOKEN_SECRET,
    ];
    argv.extend_from_slice(extra);
    let Command::Run(args) = parse(&argv) else {
        unreachable!("a run command")
    };
    let report = chirp_load::run::run(&args).await.expect("run");

    let json = std::fs::read_to_string(out.join("report.json")).expect("report.json");
    let json: serde_json::Value = serde_json::from_str(&json).expect("report.json parses");
    let html = std::fs::read_to_string(out.join("report.html")).expect("report.html");
    assert_eq!(html.matches("<svg").count(), 2, "two inline plots");
    let count = |name: &str| json["counts"][name].as_u64().expect(name);
    let (sent, ok, errors) = (count("sent"), count("ok"), count("errors"));
    let (timeouts, dropped) = (count("timeouts"), count("dropped"));
    assert_eq!(ok + errors + timeouts, sent, "{workload}: {json}");
    assert_eq!(sent + dropped, json["scheduled"], "{workload}");
    assert_eq!(
        (errors, timeouts, dropped),
        (0, 0, 0),
        "{workload} on a healthy stack: {}",
        json["errors_by_kind"]
    );
    report
}

fn answered(report: &Report, operation: &str) -> u64 {
    report
        .summary
        .operations
        .get(operation)
        .map_or(0, |operation| operation.answered)
}

#[tokio::test]
async fn a_seeded_power_law_graph_takes_every_workload() {
    let stack = stack().await;
    let dir = scratch();
    let manifest_path = dir.join("manifest.json");
    let manifest = seed(
        &stack,
        &manifest_path,
        &[
            "--users",
            "60",
            "--celebrities",
            "2",
            "--tweets-per-user",
            "8",
        ],
    )
    .await;
    assert_eq!(manifest.users.len(), 60);
    assert_eq!(manifest.tweets, 480);
    assert_eq!(manifest.celebrities.len(), 2);
    let followers: u64 = manifest.users.iter().map(|user| user.followers).sum();
    assert_eq!(followers, manifest.follows);

    // What the graph service counts is what the seed built: the two
    // celebrities and a few ordinary users.
    let gateway = &stack.gateway;
    for seeded in manifest
        .users
        .iter()
        .take(2)
        .chain(manifest.users.iter().step_by(13))
    {
        let profile = gateway.user(seeded.id).await.expect("the seeded user");
        assert_eq!(
            (profile.follower_count, profile.following_count),
            (seeded.followers as i64, seeded.following as i64),
            "@{}",
            seeded.handle
        );
    }
    for &celebrity in &manifest.celebrities {
        let profile = gateway.user(celebrity).await.unwrap();
        assert!(profile.follower_count >= 20, "{profile:?}");
    }

    // The history was imported without events, yet a home timeline built on
    // its first read holds the followees' tweets, newest first, and the
    // token minted from the gateway's secret is accepted.
    let mut minted = manifest.clone();
    chirp_load::tokens::TokenArgs::new(helpers::TOKEN_SECRET)
        .unwrap()
        .mint(&mut minted);
    let reader = minted
        .users
        .iter()
        .find(|user| user.following > 0)
        .expect("someone follows someone");
    let page = gateway
        .home_timeline(reader.id, &reader.token, None, Some(100))
        .await
        .expect("the reader's home timeline");
    assert!(page.items.len() >= 8, "8 tweets per followee: {page:?}");
    let ids: Vec<i64> = page.items.iter().map(|tweet| tweet.id).collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "{ids:?}");

    // 2 s at 20 requests per second: exactly 40 requests scheduled.
    let open_loop = ["--rate", "20"];
    let report = run(
        &manifest_path,
        &dir.join("home"),
        "home-timeline",
        &open_loop,
    )
    .await;
    assert_eq!(report.scheduled, 40);
    assert_eq!(answered(&report, HOME_FIRST_PAGE), 40);

    let report = run(
        &manifest_path,
        &dir.join("user"),
        "user-timeline",
        &open_loop,
    )
    .await;
    assert_eq!(answered(&report, USER_TWEETS), 40);

    let report = run(&manifest_path, &dir.join("post"), "post", &open_loop).await;
    assert_eq!(answered(&report, POST_TWEET), 40);

    let mixed = ["--rate", "20", "--read-write-ratio", "3"];
    let report = run(&manifest_path, &dir.join("mixed"), "mixed", &mixed).await;
    assert_eq!(report.scheduled, 40);
    let celebrities = run(&manifest_path, &dir.join("celeb"), "celebrity-post", &mixed).await;
    assert_eq!(celebrities.scheduled, 40);
    for report in [&report, &celebrities] {
        let reads = answered(report, HOME_FIRST_PAGE) + answered(report, HOME_NEXT_PAGE);
        assert_eq!(reads + answered(report, POST_TWEET), 40, "{}", report.title);
    }

    // One hot tweet, read by everyone: the most-followed ordinary author's
    // followers, each on the first page of their home timeline, the tweet
    // at its head.
    let hot = run(&manifest_path, &dir.join("hot"), "hot-tweet", &open_loop).await;
    assert_eq!(answered(&hot, HOME_FIRST_PAGE), 40);
    assert_eq!(answered(&hot, HOME_NEXT_PAGE), 0, "page 1 only");
    let author = minted
        .users
        .iter()
        .filter(|user| !minted.celebrities.contains(&user.id))
        .max_by_key(|user| user.followers)
        .unwrap();
    let newest = gateway.user_tweets(author.id).await.unwrap().items[0].id;
    let follower = gateway.followers(author.id, None).await.unwrap().items[0].id;
    let follower = minted.users.iter().find(|u| u.id == follower).unwrap();
    let page = gateway
        .home_timeline(follower.id, &follower.token, None, None)
        .await
        .unwrap();
    assert_eq!(
        page.items.first().map(|tweet| tweet.id),
        Some(newest),
        "the hot tweet heads its readers' timelines"
    );

    // A closed loop over a few readers returns to each of them often
    // enough for them to page by cursor.
    let closed_loop = ["--connections", "2", "--readers", "4", "--page-size", "5"];
    let report = run(
        &manifest_path,
        &dir.join("closed"),
        "home-timeline",
        &closed_loop,
    )
    .await;
    assert!(report.throughput.target_per_sec.is_none());
    assert!(answered(&report, HOME_NEXT_PAGE) > 0, "{report}");
}

#[tokio::test]
async fn an_edge_list_imports_with_its_follower_counts() {
    let stack = stack().await;
    let dir = scratch();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("../load/tests/fixtures/tiny.edges");
    let fixture = fixture.to_str().expect("a UTF-8 path");
    let manifest = seed(
        &stack,
        &dir.join("manifest.json"),
        &["--edges", fixture, "--undirected", "--tweets-per-user", "1"],
    )
    .await;
    assert_eq!((manifest.users.len(), manifest.follows), (8, 20));
    assert!(manifest.celebrities.is_empty());

    let gateway = &stack.gateway;
    for seeded in &manifest.users {
        let profile = gateway.user(seeded.id).await.expect("the seeded user");
        let expected = (seeded.followers as i64, seeded.following as i64);
        assert_eq!((profile.follower_count, profile.following_count), expected);
        assert_eq!(seeded.followers, seeded.following, "friendship is mutual");
    }
    assert_eq!(manifest.users[0].followers, 4);
}

/// `bench` against a small stack, a second per stage: every stage answers
/// without failures, the open loop runs at the fraction of saturation asked
/// for, and the fan-out stage writes what the graph says it must.
#[tokio::test]
async fn the_bench_measures_every_layer_of_the_read_path() {
    let stack = stack().await;
    let dir = scratch();
    let manifest = dir.join("manifest.json");
    seed(
        &stack,
        &manifest,
        &[
            "--users",
            "40",
            "--celebrities",
            "1",
            "--tweets-per-user",
            "2",
        ],
    )
    .await;
    let out = dir.join("bench");
    let Command::Bench(args) = parse(&[
        "bench",
        "--manifest",
        manifest.to_str().expect("a UTF-8 path"),
        "--timeline-addr",
        grpc_addr(&stack, timeline_service_server::SERVICE_NAME),
        "--graph-addr",
        grpc_addr(&stack, graph_service_server::SERVICE_NAME),
        "--redis-url",
        testing::REDIS_URL,
        "--redis-key-prefix",
        &stack.redis_prefix,
        "--kafka-brokers",
        testing::KAFKA,
        "--kafka-topic",
        &stack.kafka_topic,
        "--duration",
        "1s",
        "--connections",
        "4",
        "--readers",
        "10",
        "--fanout-followers",
        "10",
        "--token-secret",
        helpers::TOKEN_SECRET,
        "--fanout-events",
        "3",
        "--out",
        out.to_str().expect("a UTF-8 path"),
    ]) else {
        unreachable!("a bench command")
    };
    let results = chirp_load::bench::bench(&args).await.expect("the bench");

    for file in ["bench.json", "bench.md"] {
        assert!(out.join(file).exists(), "{file}");
    }
    let stages = [
        &results.redis_floor,
        &results.timeline_grpc,
        &results.gateway_http,
        &results.gateway_http_open,
    ];
    for stage in stages {
        assert!(out.join(&stage.report).exists(), "{}", stage.report);
        assert!(stage.ok_per_sec > 0.0, "{}", stage.report);
        assert_eq!(stage.failed, 0, "{}", stage.report);
        // The services run inside this test process, so their CPU is
        // accounted as the load tool's.
        let us = stage.cpu_us_per_request.get("loadtest");
        assert!(us.is_some_and(|&us| us > 0.0), "{}: {us:?}", stage.report);
    }
    let rate = results
        .gateway_http_open
        .target_per_sec
        .expect("an open loop");
    let expected = (results.gateway_http.ok_per_sec * 0.7).max(1.0);
    assert!((rate - expected).abs() < 1e-6, "{rate} vs {expected}");
    let fanout = results.fanout;
    assert_eq!(fanout.inserts, 3 * (10 + 1));
    assert!(fanout.worker_inserts_per_sec > 0.0 && fanout.direct_inserts_per_sec > 0.0);
    let ratios = results.ratios();
    assert!(ratios.gateway_vs_floor.is_finite() && ratios.fanout_vs_zadd.is_finite());
    let table = std::fs::read_to_string(out.join("bench.md")).expect("bench.md");
    assert!(
        table.contains("| fan-out ≥ 0.5× pipelined ZADD |"),
        "{table}"
    );
    assert!(table.contains("| CPU µs per page, by process |"), "{table}");
}

/// `visible` against a small stack, told of its gateway and graph service
/// only (no Redis): an author with threshold − 1 (19) followers posts
/// through the gateway, and each post reaches every follower's home
/// timeline as the gateway serves it (the tool fails otherwise), timed by
/// polls at the cadence it records.
#[tokio::test]
async fn a_post_reaches_every_one_of_threshold_minus_one_followers() {
    let stack = stack().await;
    let dir = scratch();
    let manifest = dir.join("manifest.json");
    seed(
        &stack,
        &manifest,
        &[
            "--users",
            "30",
            "--celebrities",
            "1",
            "--tweets-per-user",
            "1",
        ],
    )
    .await;
    let out = dir.join("visible");
    let Command::Visible(args) = parse(&[
        "visible",
        "--manifest",
        manifest.to_str().expect("a UTF-8 path"),
        "--graph-addr",
        grpc_addr(&stack, graph_service_server::SERVICE_NAME),
        "--token-secret",
        helpers::TOKEN_SECRET,
        "--posts",
        "2",
        "--out",
        out.to_str().expect("a UTF-8 path"),
    ]) else {
        unreachable!("a visible command")
    };
    let visibility = chirp_load::visible::visible(&args)
        .await
        .expect("every post visible");
    assert_eq!(visibility.followers, 19);
    assert_eq!(visibility.last_follower_ms.len(), 2);
    assert_eq!(visibility.post_ms.len(), 2);
    assert_eq!(visibility.deciding_poll_ms.len(), 2);
    assert_eq!(visibility.poll_interval_ms, 10.0, "the default cadence");
    for (post, visible) in visibility.post_ms.iter().zip(&visibility.last_follower_ms) {
        // The clock starts before the post and stops after a read that
        // showed it: never before the post was accepted.
        assert!(
            visible >= post,
            "{visible} ms to visible, {post} ms to post"
        );
    }
    let json = std::fs::read_to_string(out.join("visible.json")).expect("visible.json");
    for field in ["last_follower_ms", "poll_interval_ms", "deciding_poll_ms"] {
        assert!(json.contains(field), "{field}: {json}");
    }
}

/// Every key under `prefix` with its value as `DUMP` serializes it (the
/// content and encoding, not the TTL).
async fn keyspace(prefix: &str) -> BTreeMap<String, Vec<u8>> {
    let client = redis::Client::open(testing::REDIS_URL).expect("a Redis URL");
    let mut redis = client
        .get_multiplexed_async_connection()
        .await
        .expect("connect to Redis");
    let keys: Vec<String> = redis
        .scan_match(format!("{prefix}*"))
        .await
        .expect("SCAN")
        .try_collect()
        .await
        .expect("SCAN");
    let mut dumped = BTreeMap::new();
    for key in keys {
        let value: Option<Vec<u8>> = redis::cmd("DUMP")
            .arg(&key)
            .query_async(&mut redis)
            .await
            .expect("DUMP");
        if let Some(value) = value {
            dumped.insert(key, value);
        }
    }
    dumped
}

/// The bench's fan-out stage on a stack whose every user has read their
/// home timeline (so their timelines and lists of pulled celebrities are in
/// Redis): afterwards every key is as it was, and of its own the stage
/// leaves only the worker's delivery records of the bench's tweet ids,
/// which expire by themselves. (It used to take the first users of the
/// manifest as its audience and store their timelines empty.)
#[tokio::test]
async fn the_fanout_stage_writes_into_no_timeline_but_its_own() {
    let stack = stack().await;
    let dir = scratch();
    let manifest_path = dir.join("manifest.json");
    let mut manifest = seed(
        &stack,
        &manifest_path,
        &[
            "--users",
            "40",
            "--celebrities",
            "1",
            "--tweets-per-user",
            "2",
        ],
    )
    .await;
    let tokens = TokenArgs::new(helpers::TOKEN_SECRET).expect("a secret");
    tokens.mint(&mut manifest);
    let everyone: Vec<Actor> = manifest.users.iter().map(Actor::of).collect();
    warm_up(&stack.gateway, &everyone, None, 8)
        .await
        .expect("every user reads");
    let prefix = &stack.redis_prefix;
    let before = keyspace(prefix).await;
    let pulled = before.keys().filter(|key| key.ends_with(":pulled")).count();
    assert!(
        pulled > 0,
        "someone follows the celebrity: {:?}",
        before.keys()
    );

    let Command::Bench(args) = parse(&[
        "bench",
        "--manifest",
        manifest_path.to_str().expect("a UTF-8 path"),
        "--redis-url",
        testing::REDIS_URL,
        "--redis-key-prefix",
        prefix,
        "--kafka-brokers",
        testing::KAFKA,
        "--kafka-topic",
        &stack.kafka_topic,
        "--token-secret",
        helpers::TOKEN_SECRET,
    ]) else {
        unreachable!("a bench command")
    };
    let fanout = fanout::measure(&fanout::Setup {
        gateway: &stack.gateway,
        tokens: &tokens,
        graph_addr: grpc_addr(&stack, graph_service_server::SERVICE_NAME),
        store: &args.store,
        kafka: &args.kafka,
        follower_page_size: args.follower_page_size,
        metrics_url: None,
        celebrity_threshold: manifest.celebrity_threshold,
        followers: 15,
        events: 3,
        concurrency: args.fanout_concurrency.into(),
    })
    .await
    .expect("the fan-out stage");
    assert_eq!(fanout.inserts, 3 * (15 + 1));

    let after = keyspace(prefix).await;
    for (key, value) in &before {
        assert_eq!(after.get(key), Some(value), "{key} changed or went");
    }
    let left: Vec<&String> = after
        .keys()
        .filter(|key| !before.contains_key(*key))
        .collect();
    let delivery = format!("{prefix}delivery:");
    assert!(
        left.iter().all(|key| key.starts_with(&delivery)),
        "the stage left {left:?}"
    );
    assert_eq!(left.len(), 3, "a delivery record per event: {left:?}");
}
