//! The short version of `loadtest chaos`: every fault of issue 10 injected
//! into an isolated stack under a small mixed workload, and nothing lost,
//! phantom, doubled or skipped by paging afterwards.
//!
//! The stack is the real one, each service and backend its own process,
//! started by `deploy/run-local.sh` and `deploy/backends.sh` on ports and in
//! a folder of its own (`target/tmp/chaos-backends`), so the faults never
//! touch the backends the other tests share. Slow by nature (a second
//! Cassandra and Kafka boot, seven scenarios): one test, run with the rest.

use std::path::PathBuf;

use loadtest::{Cli, Command};

#[tokio::test(flavor = "multi_thread")]
async fn no_fault_loses_phantoms_or_doubles_a_tweet() {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let backends = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("chaos-backends");
    let bin_dir = chirp_e2e::service_binaries();
    let args = [
        "loadtest".to_owned(),
        "chaos".to_owned(),
        "--short".to_owned(),
        format!("--repo={}", repo.display()),
        format!("--backends-dir={}", backends.display()),
        "--profile=debug".to_owned(),
        format!("--bin-dir={}", bin_dir.display()),
        "--skip-build".to_owned(),
        // Other ports than the command's defaults (a manual run may be up), and
        // below Linux's ephemeral range (32768-60999): a backend cannot bind a
        // port an outgoing connection happens to hold.
        "--port-offset=4000".to_owned(),
        "--pg-port=24432".to_owned(),
        "--redis-port=24379".to_owned(),
        "--kafka-port=24092".to_owned(),
        "--kafka-controller-port=24093".to_owned(),
        "--cql-port=24042".to_owned(),
        "--cassandra-storage-port=24000".to_owned(),
    ];
    let Command::Harness(chirp_chaos::Command::Chaos(args)) =
        <Cli as clap::Parser>::parse_from(args).command
    else {
        unreachable!("parsed as chaos");
    };
    let rows = chirp_chaos::chaos(&args)
        .await
        .unwrap_or_else(|e| panic!("the chaos run could not complete: {e:#}"));
    assert_eq!(rows.len(), 7, "one row per fault");
    let table = chirp_chaos::report::table(&rows);
    for row in &rows {
        let f = &row.findings;
        assert!(
            row.posts_accepted > 0,
            "{}: nothing was posted\n{table}",
            row.fault
        );
        assert_eq!(
            (
                f.lost,
                f.phantom,
                f.duplicates,
                f.paging_gaps,
                row.unanswered
            ),
            (0, 0, 0, 0, 0),
            "{}: lost, phantom, duplicates, paging gaps, unanswered\n{table}",
            row.fault
        );
        assert!(
            row.recovered_after.is_some(),
            "{}: never recovered\n{table}",
            row.fault
        );
    }
}
