//! What the experiments' tests share: a scratch directory, the command line
//! parsed as the binary parses it, and the flags that point an experiment at
//! the test backends on a fresh database and keyspace.

use std::path::PathBuf;

use chirp_experiment::{Cli, Experiment};
use chirp_test_support::{self as testing, unique_name};
use clap::Parser;

/// A fresh directory for the manifest, the table and the reports.
pub fn scratch() -> PathBuf {
    let dir = std::env::temp_dir().join(unique_name("experiment"));
    std::fs::create_dir_all(&dir).expect("create a scratch directory");
    dir
}

/// `experiment NAME --backends… FLAGS…`, with a fresh database and keyspace
/// and `--out` at `out`.
pub async fn experiment(name: &str, flags: &[&str], out: &std::path::Path) -> Experiment {
    testing::ensure_backends();
    let database_url = testing::fresh_database().await;
    let keyspace = unique_name("experiment");
    let backends = [
        "--database-url",
        &database_url,
        "--cql-nodes",
        testing::CQL,
        "--cql-keyspace",
        &keyspace,
        "--kafka-brokers",
        testing::KAFKA,
        "--redis-url",
        testing::REDIS_URL,
        "--out",
        out.to_str().expect("a UTF-8 path"),
        "--quiet",
    ];
    let argv = ["experiment", name]
        .into_iter()
        .chain(backends)
        .chain(flags.iter().copied());
    Cli::try_parse_from(argv)
        .expect("valid arguments")
        .experiment
}
