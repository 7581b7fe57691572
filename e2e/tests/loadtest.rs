//! The load tool against a whole stack: `seed` builds a small graph through
//! the services, `run` sends each workload for two seconds at a low rate,
//! and the reports must add up. Smoke tests of the machinery, not
//! benchmarks: nothing here asserts a latency or a throughput.

#[path = "api/helpers.rs"]
#[allow(dead_code)] // Shared with the api binary, which uses the rest.
mod helpers;

use std::path::{Path, PathBuf};

use chirp_common::proto::graph::graph_service_server;
use chirp_common::proto::tweet::tweet_service_server;
use chirp_common::testing::unique_name;
use clap::Parser;
use loadtest::client::Gateway;
use loadtest::manifest::Manifest;
use loadtest::report::Report;
use loadtest::workload::{HOME_FIRST_PAGE, HOME_NEXT_PAGE, POST_TWEET, USER_TWEETS};
use loadtest::{Cli, Command};

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

fn parse(argv: &[&str]) -> Command {
    let argv = ["loadtest"].iter().chain(argv);
    Cli::try_parse_from(argv).expect("valid arguments").command
}

/// `loadtest seed` against `stack`, with `extra` flags.
async fn seed(stack: &Stack, manifest: &Path, extra: &[&str]) -> Manifest {
    let mut argv = vec![
        "seed",
        "--gateway",
        &stack.base_url,
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
    let manifest = loadtest::seed::seed(&args).await.expect("seed");
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
    ];
    argv.extend_from_slice(extra);
    let Command::Run(args) = parse(&argv) else {
        unreachable!("a run command")
    };
    let report = loadtest::run::run(&args).await.expect("run");

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
    let gateway = Gateway::new(&stack.base_url).unwrap();
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
    let fixture =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../loadtest/tests/fixtures/tiny.edges");
    let fixture = fixture.to_str().expect("a UTF-8 path");
    let manifest = seed(
        &stack,
        &dir.join("manifest.json"),
        &["--edges", fixture, "--undirected", "--tweets-per-user", "1"],
    )
    .await;
    assert_eq!((manifest.users.len(), manifest.follows), (8, 20));
    assert!(manifest.celebrities.is_empty());

    let gateway = Gateway::new(&stack.base_url).unwrap();
    for seeded in &manifest.users {
        let profile = gateway.user(seeded.id).await.expect("the seeded user");
        let expected = (seeded.followers as i64, seeded.following as i64);
        assert_eq!((profile.follower_count, profile.following_count), expected);
        assert_eq!(seeded.followers, seeded.following, "friendship is mutual");
    }
    assert_eq!(manifest.users[0].followers, 4);
}
