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

use std::path::PathBuf;

use loadtest::{Cli, Command};

#[tokio::test(flavor = "multi_thread")]
async fn a_short_soak_under_random_faults_keeps_every_promise() {
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
    let Command::Harness(chirp_chaos::Command::Soak(args)) =
        <Cli as clap::Parser>::parse_from(args).command
    else {
        unreachable!("parsed as soak");
    };
    let report = chirp_chaos::soak::soak(&args)
        .await
        .unwrap_or_else(|e| panic!("the soak could not complete: {e:#}"));
    let summary = serde_json::to_string_pretty(&serde_json::json!({
        "final_check": report.final_check,
        "injected": report.injected,
        "checks": report.checks,
        "not_measured": report.not_measured,
    }))
    .expect("serialisable");
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
    let fanned_out: u64 = report
        .intervals
        .iter()
        .flat_map(|row| &row.clients.fanout)
        .map(|bucket| bucket.seen)
        .sum();
    assert!(fanned_out > 0, "no fan-out delay was measured\n{summary}");
}
