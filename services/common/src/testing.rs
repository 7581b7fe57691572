//! Support for integration tests, which always run against the real backends.
//!
//! Tests never skip: if a backend does not answer, [`ensure_backends`] starts
//! the stack with the project's own `deploy/backends.sh up` (idempotent, and
//! safe to call from parallel test binaries), and fails loudly if that does
//! not bring everything up. Each test then isolates itself with
//! [`unique_name`]: its own database, keyspace, topic and Redis key prefix,
//! so tests run in parallel without seeing each other's data.

use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use rand::Rng;

/// Where the stack of `deploy/backends.sh` listens.
pub const POSTGRES: &str = "127.0.0.1:5432";
pub const REDIS: &str = "127.0.0.1:6379";
pub const KAFKA: &str = "127.0.0.1:9092";
pub const CQL: &str = "127.0.0.1:9042";

/// The maintenance database URL; tests create their own databases from it.
pub const POSTGRES_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";
pub const REDIS_URL: &str = "redis://127.0.0.1:6379";

/// Makes sure Postgres, Redis, Kafka and the CQL store answer, starting them
/// if needed. Runs the check (and the script) at most once per test binary.
pub fn ensure_backends() {
    static READY: OnceLock<()> = OnceLock::new();
    READY.get_or_init(|| {
        if down_backends().is_empty() {
            return;
        }
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../deploy/backends.sh");
        eprintln!("backends not all up; running {} up", script.display());
        let status = Command::new("bash")
            .arg(&script)
            .arg("up")
            .status()
            .unwrap_or_else(|e| panic!("could not run {}: {e}", script.display()));
        let still_down = down_backends();
        assert!(
            status.success() && still_down.is_empty(),
            "the test backends are not reachable ({still_down:?} down after `{} up` exited with {status}); \
             see the logs under .backends/",
            script.display()
        );
    });
}

fn down_backends() -> Vec<&'static str> {
    [POSTGRES, REDIS, KAFKA, CQL]
        .into_iter()
        .filter(|addr| {
            let addr: SocketAddr = addr.parse().expect("valid backend address");
            TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err()
        })
        .collect()
}

/// `prefix` plus a random suffix, valid as a Postgres database, a CQL
/// keyspace, a Kafka topic and a Redis key prefix (lowercase, digits, `_`).
pub fn unique_name(prefix: &str) -> String {
    let suffix: u64 = rand::rng().random();
    format!("{prefix}_{suffix:016x}")
}

/// Creates an empty Postgres database with a unique name and returns its URL.
/// Each test gets its own, so schemas, sequences and rows never collide.
pub async fn fresh_database() -> String {
    use sqlx::Connection;

    ensure_backends();
    let name = unique_name("test");
    let mut admin = sqlx::PgConnection::connect(POSTGRES_ADMIN_URL)
        .await
        .unwrap_or_else(|e| panic!("connect to {POSTGRES_ADMIN_URL}: {e}"));
    let statement = format!("CREATE DATABASE {name}");
    sqlx::raw_sql(sqlx::AssertSqlSafe(statement))
        .execute(&mut admin)
        .await
        .unwrap_or_else(|e| panic!("create database {name}: {e}"));
    format!("postgres://postgres@{POSTGRES}/{name}")
}
