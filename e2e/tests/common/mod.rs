//! What the deployment checks share: `compose_file.rs` and `k8s_manifests.rs`
//! hold two descriptions of one deployment to the same code, so what a
//! service reads and how a failure reads are written once.
//!
//! Each test binary compiles its own copy and uses a different part of it,
//! hence the `dead_code` allowance.
#![allow(dead_code)]

pub mod config_vars;

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

/// Fails with every problem at once, one per line, so a single run shows
/// all that is wrong with `file`.
pub fn assert_no_problems(file: &str, problems: Vec<String>) {
    if !problems.is_empty() {
        let mut message = format!("{file} is wrong in {} way(s):", problems.len());
        for problem in problems {
            let _ = write!(message, "\n  - {problem}");
        }
        panic!("{message}");
    }
}

/// `name`, relative to the repository root.
pub fn repo_path(name: impl AsRef<Path>) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(name)
}

pub fn read_repo_file(name: impl AsRef<Path>) -> String {
    let path = repo_path(name);
    fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}
