//! End-to-end tests live in `tests/`; this crate holds only what several of
//! them need and cannot get from a service crate.

use std::path::PathBuf;

/// The five services' binaries, built by the same `cargo test` as the calling
/// test (`cargo test --workspace` builds every package's binaries; with `-p
/// chirp-e2e` alone, `cargo build --bins` them first), unless `BIN_DIR` (as
/// `deploy/run-local.sh` reads it) points elsewhere.
pub fn service_binaries() -> PathBuf {
    let exe = std::env::current_exe().expect("the test's own path");
    // target/debug/deps/<test>-… → target/debug
    let dir = match std::env::var_os("BIN_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => exe
            .parent()
            .and_then(|deps| deps.parent())
            .expect("target/debug")
            .to_owned(),
    };
    for binary in ["graph", "tweet", "timeline", "fanout", "gateway"] {
        assert!(
            dir.join(binary).exists(),
            "{} is missing: run `cargo build --bins` (or `cargo test --workspace`) first",
            dir.join(binary).display()
        );
    }
    dir
}
