//! The web console in a real browser: a whole stack in this process, and
//! `e2e/browser/console.test.mjs` driving Debian's Chromium against its
//! gateway (sign up, follow, post, the explained timeline, the fan-out, the
//! live system view, the strategy lab), then `e2e/browser/interview.test.mjs`
//! (the Interview view, its timer and its live answers).
//!
//! A test binary of its own because it installs the process-global metrics
//! exporter: every in-process service records into it, and the gateway's
//! live view scrapes it once per service name, each reading its own series.
//! Ignored by a plain `cargo test`: it needs Chromium and the npm package,
//! which `deploy/browser-test.sh` installs before running it.

#[path = "api/helpers.rs"]
#[allow(dead_code)] // shared with tests/api, which uses more of it
mod helpers;

use std::path::PathBuf;
use std::process::Command;

use chirp_runtime::metrics::MetricsArgs;
use chirp_test_support::local_listener;
use helpers::spawn_stack_with;

#[tokio::test]
#[ignore = "needs Chromium and playwright-core: run deploy/browser-test.sh"]
async fn the_console_works_in_a_real_browser() {
    let (listener, metrics_addr) = local_listener().await;
    drop(listener);
    chirp_runtime::metrics::install(&MetricsArgs {
        metrics_addr: Some(metrics_addr.parse().expect("an address")),
    })
    .expect("serve /metrics");
    let targets = ["gateway", "tweet", "graph", "timeline", "fanout"]
        .map(|name| format!("{name}={metrics_addr}"))
        .join(",");
    let stack = spawn_stack_with(&[
        "--rate-limit-burst",
        "1000",
        "--console-metrics-targets",
        &targets,
    ])
    .await;

    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("browser");
    let screenshots = std::env::var("CHIRP_SCREENSHOTS").ok();
    let status = tokio::task::spawn_blocking(move || {
        let mut node = Command::new("node");
        node.current_dir(&dir)
            .args([
                "--test",
                "--test-concurrency=1",
                "console.test.mjs",
                "interview.test.mjs",
            ])
            .env("CHIRP_URL", stack.gateway.base_url());
        if let Some(screenshots) = screenshots {
            node.env("CHIRP_SCREENSHOTS", screenshots);
        }
        node.status()
    })
    .await
    .expect("the browser's thread")
    .expect("node starts");
    assert!(
        status.success(),
        "the browser test failed (see its report above)"
    );
}
