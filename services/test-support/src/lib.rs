//! Support for integration tests, which always run against the real backends.
//!
//! Tests never skip: if a backend does not answer, [`ensure_backends`] starts
//! the stack with the project's own `deploy/backends.sh up` (idempotent, and
//! safe to call from parallel test binaries), and fails loudly if that does
//! not bring everything up. Each test then isolates itself with
//! [`unique_name`]: its own database, keyspace, topic and Redis key prefix,
//! so tests run in parallel without seeing each other's data.
//! [`ServiceProcess`] runs a service's real binary, for what only a process
//! shows: how it takes a signal, and its exit code. [`OwnRedis`] is a Redis
//! of one test's own, for the tests that break it. [`create_user`] makes a
//! user through the graph service's API.
//!
//! A crate of its own, which services name under `[dev-dependencies]` only:
//! `sqlx` (to create test databases) and these helpers stay out of every
//! binary. `chirp-stack`, which starts the services themselves in one
//! process, builds on it; it cannot live there, since the services' own
//! tests use these helpers and `chirp-stack` depends on the services.

use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use rand::Rng;

mod own_redis;
mod users;
pub use own_redis::OwnRedis;
pub use users::create_user;

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

/// Whether `name` is one [`unique_name`] could have made: the stores
/// `sweep-test-stores` (a binary of this crate) drops.
pub fn is_unique_name(name: &str) -> bool {
    name.rsplit_once('_').is_some_and(|(prefix, suffix)| {
        !prefix.is_empty()
            && prefix
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            && suffix.len() == 16
            && suffix
                .chars()
                .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
    })
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

/// A listener on a port of the OS's choosing, and its address: bound before
/// the service starts, so tests never race for ports.
pub async fn local_listener() -> (tokio::net::TcpListener, String) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("bind a port: {e}"));
    let addr = listener
        .local_addr()
        .unwrap_or_else(|e| panic!("bound address: {e}"));
    (listener, addr.to_string())
}

/// Runs a service (its `run` future) in the background for the rest of the
/// test; a service that stops with an error fails the test loudly.
pub fn spawn_service(
    name: &'static str,
    service: impl std::future::Future<Output = anyhow::Result<()>> + Send + 'static,
) {
    tokio::spawn(async move {
        if let Err(error) = service.await {
            panic!("{name} stopped: {error:#}");
        }
    });
}

/// Polls `probe` until it returns `Some`, and fails the test if that takes
/// longer than `deadline`: waiting on what callers can observe, never a sleep.
pub async fn eventually<T, F, Fut>(deadline: Duration, what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = std::time::Instant::now();
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(
            start.elapsed() < deadline,
            "timed out after {deadline:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until the graph, tweet and timeline services at these addresses
/// answer: they connect to their stores before they serve, and creating a
/// keyspace takes seconds.
///
/// Graph and tweet are asked a real read, which changes nothing. Timeline is
/// asked the health protocol instead: a home timeline read is not read-only
/// (a missing timeline is rebuilt and cached), and a probe of user 1 would
/// cache that user's empty timeline before a test imports their follows and
/// tweets without events, which would then never show.
pub async fn wait_until_serving(graph: &str, tweet: &str, timeline: &str) {
    use chirp_proto::graph::GetUserRequest;
    use chirp_proto::graph::graph_service_client::GraphServiceClient;
    use chirp_proto::timeline::timeline_service_server::SERVICE_NAME as TIMELINE;
    use chirp_proto::tweet::GetTweetRequest;
    use chirp_proto::tweet::tweet_service_client::TweetServiceClient;
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::health_client::HealthClient;

    let channel = |addr: &str| {
        chirp_grpc::connect_lazy(addr, Duration::from_secs(2))
            .unwrap_or_else(|e| panic!("bad address {addr}: {e}"))
    };
    let graph = GraphServiceClient::new(channel(graph));
    let tweet = TweetServiceClient::new(channel(tweet));
    let timeline = HealthClient::new(channel(timeline));
    eventually(
        Duration::from_secs(60),
        "the services to start serving",
        || {
            let (mut graph, mut tweet, mut timeline) =
                (graph.clone(), tweet.clone(), timeline.clone());
            async move {
                let graph_up = answers(graph.get_user(GetUserRequest { user_id: 1 }).await);
                let tweet_up = answers(tweet.get_tweet(GetTweetRequest { tweet_id: 1 }).await);
                let request = HealthCheckRequest {
                    service: TIMELINE.to_owned(),
                };
                let timeline_up = timeline
                    .check(request)
                    .await
                    .is_ok_and(|response| response.get_ref().status() == ServingStatus::Serving);
                (graph_up && tweet_up && timeline_up).then_some(())
            }
        },
    )
    .await;
}

/// A service that answers NotFound for an unknown id is serving.
fn answers<T>(result: Result<T, tonic::Status>) -> bool {
    match result {
        Ok(_) => true,
        Err(status) => status.code() == tonic::Code::NotFound,
    }
}

/// A chirp binary run as its own process, the way a container runs it:
/// configured by environment variables alone, stopped by a signal. Its
/// output goes to a file (a pipe nobody reads could fill up and block it),
/// shown when a test fails. Dropping it kills the process, so a failing
/// test leaves no orphan behind.
pub struct ServiceProcess {
    child: std::process::Child,
    output: PathBuf,
}

/// How a [`ServiceProcess`] ended.
#[derive(Debug)]
pub struct Exit {
    pub status: std::process::ExitStatus,
    /// Everything it wrote to stdout and stderr.
    pub output: String,
}

impl ServiceProcess {
    /// Starts `binary` (e.g. `env!("CARGO_BIN_EXE_gateway")`) with exactly
    /// `env` and `RUST_LOG=warn`: nothing leaks in from the test's own
    /// environment.
    pub fn start(binary: &str, env: &[(&str, &str)]) -> Self {
        let output = std::env::temp_dir().join(format!("{}.log", unique_name("chirp_process")));
        let file = std::fs::File::create(&output)
            .unwrap_or_else(|e| panic!("create {}: {e}", output.display()));
        let stderr = file
            .try_clone()
            .unwrap_or_else(|e| panic!("share {}: {e}", output.display()));
        let child = Command::new(binary)
            .env_clear()
            .env("RUST_LOG", "warn")
            .envs(env.iter().copied())
            .stdin(std::process::Stdio::null())
            .stdout(file)
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("start {binary}: {e}"));
        Self { child, output }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM, as `docker stop` and Kubernetes do.
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .unwrap_or_else(|e| panic!("run kill: {e}"));
        assert!(
            status.success(),
            "kill -TERM {} failed: {status}",
            self.pid()
        );
    }

    /// Everything the process has written so far.
    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.output).unwrap_or_default()
    }

    /// Waits for the process to exit, and fails the test if it is still
    /// running after `bound`.
    pub async fn exit_within(mut self, bound: Duration) -> Exit {
        let start = std::time::Instant::now();
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => {
                    return Exit {
                        status,
                        output: self.output(),
                    };
                }
                Ok(None) => {}
                Err(e) => panic!("wait for process {}: {e}", self.pid()),
            }
            assert!(
                start.elapsed() < bound,
                "process {} still running {bound:?} after it was asked to stop; its output:\n{}",
                self.pid(),
                self.output()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        let _ = std::fs::remove_file(&self.output);
    }
}

/// The home-timeline store as a test's services see it: this run's Redis
/// ([`redis_target`]), every key under `redis_key_prefix`, capacity and
/// strategy as deployed.
pub fn timeline_store(redis_key_prefix: &str) -> chirp_timeline_store::TimelineStoreArgs {
    let redis = redis_target();
    chirp_timeline_store::TimelineStoreArgs {
        redis: chirp_redis::connection::RedisArgs {
            redis_url: redis.urls.to_owned(),
            redis_cluster: redis.cluster,
            redis_key_prefix: redis_key_prefix.to_owned(),
            redis_response_timeout_ms: chirp_redis::connection::DEFAULT_RESPONSE_TIMEOUT_MS,
        },
        timeline_capacity: 800,
        timeline_ttl_secs: 3600,
        timeline_strategy: chirp_timeline_store::Strategy::Hybrid,
        active_window_secs: 0,
    }
}

/// Seed nodes of the Redis Cluster of `deploy/backends.sh up redis-cluster`,
/// as `REDIS_URL` lists them with `REDIS_CLUSTER=true`.
pub const REDIS_CLUSTER_URLS: &str =
    "redis://127.0.0.1:6391,redis://127.0.0.1:6392,redis://127.0.0.1:6393";

/// Set to `1`, the tests that put data in Redis through [`redis_target`]
/// (and [`timeline_store`]) use the Redis Cluster instead
/// of the single node: `deploy/test.sh` runs a named subset of the tests a
/// second time so, to show that each behaviour holds on both deployments.
pub const REDIS_CLUSTER_ENV: &str = "CHIRP_TEST_REDIS_CLUSTER";

/// The Redis of this test run: the single node, or with
/// [`REDIS_CLUSTER_ENV`] the Redis Cluster, started first if it is not up.
pub fn redis_target() -> chirp_redis::connection::RedisTarget<'static> {
    let cluster = *REDIS_CLUSTER_RUN.get_or_init(|| {
        let cluster = std::env::var(REDIS_CLUSTER_ENV).is_ok_and(|v| v == "1");
        if cluster {
            ensure_scale_out("redis-cluster");
        }
        cluster
    });
    chirp_redis::connection::RedisTarget {
        urls: if cluster {
            REDIS_CLUSTER_URLS
        } else {
            REDIS_URL
        },
        cluster,
    }
}

/// Whether this test binary's Redis is the cluster, decided once.
static REDIS_CLUSTER_RUN: OnceLock<bool> = OnceLock::new();

/// Makes this test binary's Redis the cluster whatever the environment says
/// (starting it if needed): for the binaries that are about the cluster.
/// Call it before anything asks for [`redis_target`].
pub fn use_redis_cluster() {
    let cluster = *REDIS_CLUSTER_RUN.get_or_init(|| {
        ensure_scale_out("redis-cluster");
        true
    });
    assert!(cluster, "this binary already used the single Redis node");
}

/// The flags that point a service at `redis` (without a key prefix).
pub fn redis_flags(redis: chirp_redis::connection::RedisTarget<'_>) -> Vec<&str> {
    let mut flags = vec!["--redis-url", redis.urls];
    if redis.cluster {
        flags.extend(["--redis-cluster", "true"]);
    }
    flags
}

/// The flags that point a service at `redis`, its key prefix included: the
/// store of [`timeline_store`], as a service's command line names it.
pub fn redis_store_flags(redis: &chirp_redis::connection::RedisArgs) -> Vec<&str> {
    let mut flags = redis_flags(redis.target());
    flags.extend(["--redis-key-prefix", &redis.redis_key_prefix]);
    flags
}

/// A connection to this run's Redis, for tests that look behind the
/// services' back.
pub async fn redis_connection() -> chirp_redis::connection::RedisConnection {
    let timeout = Duration::from_millis(chirp_redis::connection::DEFAULT_RESPONSE_TIMEOUT_MS);
    chirp_redis::connection::RedisConnection::connect(&redis_target(), timeout)
        .await
        .expect("connect to this run's Redis")
}

/// Starts one of the scale-out backends of `deploy/backends.sh` (`redis-cluster`,
/// `pg-replica`, `kafka-cluster`) unless it runs, and fails the test if it
/// does not come up. They are not part of [`ensure_backends`]: only the tests
/// that need them pay for them.
pub fn ensure_scale_out(name: &str) {
    ensure_backends();
    backends_script(&["up", name]);
}

/// Stops a scale-out backend, for the tests that are its last user; its data
/// stays for the next [`ensure_scale_out`].
pub fn stop_scale_out(name: &str) {
    backends_script(&["down", name]);
}

/// The pid of one member of a scale-out backend (`redis-cluster` and a port,
/// `kafka-cluster` and a node id) as `deploy/backends.sh` recorded it, if it
/// runs: for tests that check which members a command left alone.
pub fn scale_out_pid(name: &str, member: &str) -> Option<u32> {
    let dir = std::env::var_os("CHIRP_BACKENDS_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.backends"),
        PathBuf::from,
    );
    let pidfile = dir.join("run").join(format!("{name}-{member}.pid"));
    let pid: u32 = std::fs::read_to_string(pidfile).ok()?.trim().parse().ok()?;
    std::path::Path::new(&format!("/proc/{pid}"))
        .exists()
        .then_some(pid)
}

/// Runs `deploy/backends.sh` with `args` and fails the test if it fails.
pub fn backends_script(args: &[&str]) {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../deploy/backends.sh");
    let status = Command::new("bash")
        .arg(&script)
        .args(args)
        .status()
        .unwrap_or_else(|e| panic!("could not run {}: {e}", script.display()));
    assert!(
        status.success(),
        "`{} {}` failed ({status}); see its output above and the logs under .backends/logs",
        script.display(),
        args.join(" ")
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_unique_name_is_recognised_and_a_deployments_names_are_not() {
        for prefix in ["test", "tweets_fanout_test", "a1"] {
            assert!(is_unique_name(&unique_name(prefix)));
        }
        for name in [
            "chirp",
            "chirp_bench",
            "tweets",
            "postgres",
            "bench_0123456789ABCDEF",
            "_0123456789abcdef",
            "test_0123456789abcde",
        ] {
            assert!(!is_unique_name(name), "{name}");
        }
    }
}
