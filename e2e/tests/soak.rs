//! The short version of `loadtest soak`: a few hundred seeded users, a
//! steady load and faults drawn from the seeded schedule for three
//! minutes, and the same checker as the hour-long soak: nothing lost,
//! phantom, doubled, out of order, skipped by paging or visible after an
//! unfollow, every watched request answered, no dead letter, every fault
//! recovered from.
//!
//! The stack is the real one, each service and backend its own process,
//! started by the project's scripts on ports and in a folder of its own
//! (`target/tmp/soak-backends`), distinct from the chaos test's, so the
//! two can run at once. Growth is not asserted here: three minutes show no
//! trend (the report says "not judged" or judges a handful of points); the
//! long soak is where curves are judged.
//!
//! The second soak runs the same stack with `--clusters` (three Kafka
//! brokers, a Redis Cluster, a Postgres replica, on ports and in a folder of
//! their own again) and only the three faults on them, drawn by a seed that
//! brings each of them once: a broker killed, a master killed, the replica
//! lagging. The two soaks take turns (see [`ONE_AT_A_TIME`]).

use std::path::PathBuf;

use chirp_chaos::soak::report::SoakReport;
use loadtest::{Cli, Command};

/// Each soak starts a whole stack (Cassandra, Kafka, the services; the
/// clusters add three more JVMs and seven servers): two at once on CI's two
/// cores would each be judged on the other's load. `cargo test` runs the
/// tests of one binary in parallel, so they take turns here.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test(flavor = "multi_thread")]
async fn a_short_soak_under_random_faults_keeps_every_promise() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let bin_dir = chirp_e2e::service_binaries();
    let args = [
        "loadtest".to_owned(),
        "soak".to_owned(),
        format!("--repo={}", repo.display()),
        format!("--backends-dir={}", tmp.join("soak-backends").display()),
        format!("--out={}", tmp.join("soak-report").display()),
        "--profile=debug".to_owned(),
        format!("--bin-dir={}", bin_dir.display()),
        "--skip-build".to_owned(),
        // One instance of each service: a second needs HAProxy, which CI
        // does not install; the lease handover is the long soak's.
        "--replicas=1".to_owned(),
        // Other ports than the command's defaults and the chaos test's, below
        // Linux's ephemeral range (32768-60999).
        "--port-offset=6000".to_owned(),
        "--pg-port=23432".to_owned(),
        "--redis-port=23379".to_owned(),
        "--kafka-port=23092".to_owned(),
        "--kafka-controller-port=23093".to_owned(),
        "--cql-port=23042".to_owned(),
        "--cassandra-storage-port=23000".to_owned(),
        "--users=300".to_owned(),
        "--celebrities=2".to_owned(),
        "--celebrity-threshold=30".to_owned(),
        "--tweets-per-user=2".to_owned(),
        "--duration=3m".to_owned(),
        // Debug builds on a shared 2-core machine: a light load, few in flight.
        "--post-rate=2".to_owned(),
        "--read-ratio=5".to_owned(),
        "--max-in-flight=24".to_owned(),
        "--interval=15s".to_owned(),
        "--warm-up=20s".to_owned(),
        "--fault-every=25s".to_owned(),
        "--check-every=60s".to_owned(),
        "--settle=40s".to_owned(),
        "--watchers=4".to_owned(),
        "--watched-every=4s".to_owned(),
        "--toggle-every=10s".to_owned(),
        "--seed=19".to_owned(),
    ];
    let args = soak_args(args);
    let report = chirp_chaos::soak::soak(&args)
        .await
        .unwrap_or_else(|e| panic!("the soak could not complete: {e:#}"));
    let summary = summary(&report);
    assert!(
        !report.injected.is_empty(),
        "the schedule injected no fault\n{summary}"
    );
    for fault in &report.injected {
        assert!(
            fault.error.is_none(),
            "fault {} failed\n{summary}",
            fault.fault
        );
    }
    assert_promises_kept(&report, &summary);
    let fanned_out: u64 = report
        .intervals
        .iter()
        .flat_map(|row| &row.clients.fanout)
        .map(|bucket| bucket.seen)
        .sum();
    assert!(fanned_out > 0, "no fan-out delay was measured\n{summary}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_short_soak_on_the_clusters_survives_a_broker_a_master_and_a_lagging_replica() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let bin_dir = chirp_e2e::service_binaries();
    let args = [
        "loadtest".to_owned(),
        "soak".to_owned(),
        format!("--repo={}", repo.display()),
        format!(
            "--backends-dir={}",
            tmp.join("soak-cluster-backends").display()
        ),
        format!("--out={}", tmp.join("soak-cluster-report").display()),
        "--profile=debug".to_owned(),
        format!("--bin-dir={}", bin_dir.display()),
        "--skip-build".to_owned(),
        "--replicas=1".to_owned(),
        "--clusters".to_owned(),
        // Ports of its own, apart from the other soak's (23xxx), the
        // command's (22xxx) and chaos's (24xxx), and below Linux's ephemeral
        // range (32768-60999) with the Redis nodes' buses (10 000 above)
        // too; deploy/test.sh reserves the gRPC ports the offset moves
        // into that range.
        "--port-offset=7000".to_owned(),
        "--pg-port=21432".to_owned(),
        "--redis-port=21379".to_owned(),
        "--kafka-port=21092".to_owned(),
        "--kafka-controller-port=21093".to_owned(),
        "--cql-port=21042".to_owned(),
        "--cassandra-storage-port=21000".to_owned(),
        "--redis-cluster-port=21391".to_owned(),
        "--kafka-cluster-port=21192".to_owned(),
        "--pg-replica-port=21442".to_owned(),
        "--users=300".to_owned(),
        "--celebrities=2".to_owned(),
        "--celebrity-threshold=30".to_owned(),
        "--tweets-per-user=2".to_owned(),
        "--duration=4m".to_owned(),
        "--post-rate=2".to_owned(),
        "--read-ratio=5".to_owned(),
        "--max-in-flight=24".to_owned(),
        "--interval=15s".to_owned(),
        "--warm-up=30s".to_owned(),
        "--check-every=60s".to_owned(),
        "--settle=40s".to_owned(),
        "--watchers=4".to_owned(),
        "--watched-every=4s".to_owned(),
        "--toggle-every=10s".to_owned(),
        "--faults=kafka-broker-kill,redis-master-kill,replica-lag".to_owned(),
        // Seed 28 at one fault per 50 s draws the three once each, from 43 s
        // on, back to back (a broker's kill takes a minute or so): the
        // schedule asserted below says so before anything starts.
        "--fault-every=50s".to_owned(),
        "--seed=28".to_owned(),
    ];
    let args = soak_args(args);
    let faults = ["kafka-broker-kill", "redis-master-kill", "replica-lag"];
    let planned = args.schedule();
    let mut drawn: Vec<String> = planned.iter().map(|plan| plan.fault.slug()).collect();
    drawn.sort();
    assert_eq!(
        drawn, faults,
        "the seed no longer draws each fault once: {planned:?}"
    );

    let report = chirp_chaos::soak::soak(&args)
        .await
        .unwrap_or_else(|e| panic!("the soak could not complete: {e:#}"));
    let summary = summary(&report);
    for fault in faults {
        let injected = report.injected.iter().find(|i| i.fault == fault);
        let injected = injected.unwrap_or_else(|| panic!("{fault} was never injected\n{summary}"));
        assert!(
            injected.error.is_none(),
            "{fault} was not recovered from\n{summary}"
        );
        // What the fault saw of the recovery, step by step.
        assert!(injected.detail.is_some(), "{fault} said nothing\n{summary}");
    }
    assert_promises_kept(&report, &summary);
}

/// Nothing lost, phantom, doubled, out of order or visible after an unfollow,
/// with posts accepted to judge. Growth is not judged: minutes cannot show it.
fn assert_promises_kept(report: &SoakReport, summary: &str) {
    let promises: Vec<&String> = report
        .verdict
        .reasons
        .iter()
        .filter(|reason| !reason.contains(" grows: "))
        .collect();
    assert!(
        promises.is_empty(),
        "broken promises: {promises:?}\n{summary}"
    );
    assert!(report.final_check.posts_accepted > 0, "{summary}");
}

/// What a failed assertion shows of the report (the rest is in soak.json).
fn summary(report: &SoakReport) -> String {
    serde_json::to_string_pretty(&serde_json::json!({
        "final_check": report.final_check,
        "injected": report.injected,
        "checks": report.checks,
        "not_measured": report.not_measured,
    }))
    .expect("serialisable")
}

/// `loadtest soak ARGS`, parsed as the command line parses it.
fn soak_args(args: impl IntoIterator<Item = String>) -> Box<chirp_chaos::soak::SoakArgs> {
    let Command::Harness(chirp_chaos::Command::Soak(args)) =
        <Cli as clap::Parser>::parse_from(args).command
    else {
        unreachable!("parsed as soak");
    };
    args
}
