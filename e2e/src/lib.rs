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

/// A `deploy/run-local.sh` stack of one test's own, stopped when the test
/// ends, passed or not. It runs this build's binaries on ports moved by
/// `PORT_OFFSET`, with its own database, keyspace, topic, consumer group and
/// Redis prefix (all named after `run_id`), so it shares only the backends
/// with the rest of the test run.
pub struct LocalStack {
    env: Vec<(String, String)>,
}

impl LocalStack {
    /// The stack's settings: the isolating ones, quiet logs (`RUST_LOG=warn`,
    /// as the README recommends for load tests), and `extra` (`JAEGER`,
    /// `REPLICAS`, …). Starts nothing: see [`LocalStack::run`].
    pub fn new(
        run_id: &str,
        database_url: String,
        port_offset: u16,
        extra: &[(&str, &str)],
    ) -> Self {
        let run_dir = std::env::temp_dir().join(run_id);
        std::fs::create_dir_all(&run_dir).expect("the stack's run directory");
        let mut env = vec![
            ("PORT_OFFSET", port_offset.to_string()),
            ("SKIP_BUILD", "1".to_owned()),
            ("BIN_DIR", service_binaries().display().to_string()),
            ("CHIRP_RUN_DIR", run_dir.display().to_string()),
            ("RUST_LOG", "warn".to_owned()),
            ("DATABASE_URL", database_url),
            ("CQL_KEYSPACE", run_id.to_owned()),
            ("KAFKA_TOPIC", format!("tweets_{run_id}")),
            ("KAFKA_GROUP_ID", run_id.to_owned()),
            ("REDIS_KEY_PREFIX", format!("{run_id}:")),
        ];
        env.extend(extra.iter().map(|&(k, v)| (k, v.to_owned())));
        let env = env.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
        LocalStack { env }
    }

    /// Runs `deploy/run-local.sh args` on this stack, and fails the test if
    /// it fails.
    pub fn run(&self, args: &[&str]) {
        let status = self.script("deploy/run-local.sh", args);
        assert!(status.success(), "run-local.sh {args:?} failed: {status}");
    }

    /// Runs `script` (a path from the repository root) with this stack's
    /// settings.
    pub fn script(&self, script: &str, args: &[&str]) -> std::process::ExitStatus {
        let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
        std::process::Command::new("bash")
            .arg(repo.join(script))
            .args(args)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .status()
            .unwrap_or_else(|error| panic!("run {script}: {error}"))
    }

    fn traced(&self) -> bool {
        self.env.iter().any(|(k, v)| k == "JAEGER" && v == "1")
    }
}

impl Drop for LocalStack {
    fn drop(&mut self) {
        self.script("deploy/run-local.sh", &["down"]);
        // run-local.sh leaves Jaeger up, as it leaves the backends: with
        // `JAEGER=1` the test started this one (on its own ports), so it
        // stops it.
        if self.traced() {
            self.script("deploy/jaeger.sh", &["down"]);
        }
    }
}
