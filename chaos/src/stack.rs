//! The system under test: chirp's five services and four backends, each its
//! own process on this machine, started by the project's own scripts
//! (`deploy/run-local.sh`, which runs `deploy/backends.sh`) on ports and in a
//! folder of their own.
//!
//! Why the scripts and not services in process: a fault must hit a real
//! process (a SIGKILL loses whatever it held in memory, a SIGSTOP freezes
//! every thread), and the way back must be the one an operator uses. Why an
//! isolated set of backends: the faults kill and pause them, and the standard
//! ones on 5432/6379/9092/9042 belong to everyone else on the machine. So
//! [`Stack::new`] refuses a standard port, and [`Stack::signal`] checks that
//! a pid still runs the program of *this* set before it sends anything.

use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail, ensure};
use futures::FutureExt;

use super::clusters::{self, Clusters};

/// Where the isolated set runs, and how its services are built.
#[derive(Debug, Clone, clap::Args)]
pub struct StackArgs {
    /// The chirp checkout whose deploy/ scripts start the stack.
    #[arg(long, default_value = ".")]
    pub repo: PathBuf,
    /// Folder of the isolated backends and services (data, logs, pid files).
    #[arg(long, default_value = ".backends-chaos")]
    pub backends_dir: PathBuf,
    /// Build profile of the services: release or debug.
    #[arg(long, default_value = "release")]
    pub profile: String,
    /// Run the service binaries in this folder instead of
    /// `$CARGO_TARGET_DIR/<profile>`.
    #[arg(long)]
    pub bin_dir: Option<PathBuf>,
    /// Do not build the services first (they must exist).
    #[arg(long)]
    pub skip_build: bool,
    /// Added to every service port (gateway 8080 + this).
    #[arg(long, default_value_t = 3000)]
    pub port_offset: u16,
    #[arg(long, default_value_t = 25432)]
    pub pg_port: u16,
    #[arg(long, default_value_t = 26379)]
    pub redis_port: u16,
    #[arg(long, default_value_t = 29092)]
    pub kafka_port: u16,
    #[arg(long, default_value_t = 29093)]
    pub kafka_controller_port: u16,
    #[arg(long, default_value_t = 29042)]
    pub cql_port: u16,
    /// Cassandra's inter-node port (its TLS port is the next one).
    #[arg(long, default_value_t = 27000)]
    pub cassandra_storage_port: u16,
    /// Authors with at least this many followers are celebrities; small, so
    /// that an unfollow can take one below it.
    #[arg(long, default_value_t = 10)]
    pub celebrity_threshold: u32,
    /// Instances of each service (more than one puts HAProxy in front of
    /// the gateways, and lets a tweet instance die while another takes its
    /// outbox leases over).
    #[arg(long, default_value_t = 1)]
    pub replicas: usize,
    /// Also run a three-broker Kafka, a Redis Cluster and a streaming
    /// replica of Postgres, and point the services at them instead of the
    /// single Kafka and Redis (what the soak's cluster faults hit).
    #[arg(long)]
    pub clusters: bool,
    /// With --clusters: the first of the Redis Cluster's six ports (each
    /// node's cluster bus is 10 000 above its port).
    #[arg(long, default_value_t = 26391)]
    pub redis_cluster_port: u16,
    /// With --clusters: the first of the three brokers' ports (their
    /// controllers listen 100 above).
    #[arg(long, default_value_t = 29192)]
    pub kafka_cluster_port: u16,
    /// With --clusters: the Postgres replica's port.
    #[arg(long, default_value_t = 25442)]
    pub pg_replica_port: u16,
}

/// A process of the stack that a fault can hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Process {
    /// The first instance of a service.
    Service(&'static str),
    /// Instance `n` (from 0) of a service run with `--replicas`.
    Replica(&'static str, usize),
    Postgres,
    Redis,
    Kafka,
    Cassandra,
    /// Broker `n` (1 to 3) of the three-broker Kafka.
    KafkaBroker(u8),
    /// The Redis Cluster node on this port.
    RedisNode(u16),
}

impl Process {
    /// Its pid file, as the scripts write it.
    fn pid_file(self, backends_dir: &Path) -> PathBuf {
        match self {
            Self::Service(name) | Self::Replica(name, 0) => {
                backends_dir.join("services").join(format!("{name}.pid"))
            }
            Self::Replica(name, n) => backends_dir
                .join("services")
                .join(format!("{name}-{}.pid", n + 1)),
            Self::Postgres => backends_dir.join("run/postgres.pid"),
            Self::Redis => backends_dir.join("run/redis.pid"),
            Self::Kafka => backends_dir.join("run/kafka.pid"),
            Self::Cassandra => backends_dir.join("run/cassandra.pid"),
            Self::KafkaBroker(n) => backends_dir.join(format!("run/kafka-cluster-{n}.pid")),
            Self::RedisNode(port) => backends_dir.join(format!("run/redis-cluster-{port}.pid")),
        }
    }
}

/// The running stack: how to reach it, hit it and bring it back.
#[derive(Debug, Clone)]
pub struct Stack {
    /// The checkout whose scripts run the stack (its commit goes in the
    /// run record).
    pub repo: PathBuf,
    backends_dir: PathBuf,
    /// What every script run gets: ports, folders, the services' settings.
    env: Vec<(String, String)>,
    /// Words of the command line that prove a pid belongs to this set.
    marks: Vec<String>,
    pub gateway_url: String,
    /// What `--port-offset` moved every service port by (metrics too).
    port_offset: u16,
    pub replicas: usize,
    pub pg_port: u16,
    pub redis_port: u16,
    pub cql_port: u16,
    /// The scale-out backends, with `--clusters`.
    pub clusters: Option<Clusters>,
}

/// The standard backends' ports (5432, 6379, 9092-9093, 9042, Cassandra's
/// 7000-7001 and 7199), and the scale-out ones deploy/backends.sh places by
/// default (the replica's 5442, the Redis Cluster's 6391-6396 and their
/// buses, the brokers' 19092-19094 and controllers, the tombstone node's
/// 9142 and 7100-7101): everyone else's.
fn standard(port: u16) -> bool {
    [
        5432, 6379, 9092, 9093, 9042, 7000, 7001, 7199, 5442, 9142, 7100, 7101,
    ]
    .contains(&port)
        || (6391..=6396).contains(&port)
        || (16391..=16396).contains(&port)
        || (19092..=19094).contains(&port)
        || (19192..=19194).contains(&port)
}

impl Stack {
    pub fn new(args: &StackArgs) -> anyhow::Result<Self> {
        let clusters = args.clusters.then(|| Clusters::new(args));
        let mut backends = vec![
            args.pg_port,
            args.redis_port,
            args.kafka_port,
            args.kafka_controller_port,
            args.cql_port,
            args.cassandra_storage_port,
            args.cassandra_storage_port + 1,
        ];
        backends.extend(clusters.iter().flat_map(Clusters::ports));
        for port in backends {
            ensure!(
                !standard(port),
                "port {port} is a standard backend port: the faults would hit the shared backends"
            );
        }
        ensure!(
            args.port_offset > 0,
            "--port-offset 0 would take the standard service ports"
        );
        ensure!(args.replicas >= 1, "--replicas is at least 1");
        ensure!(
            args.profile == "release" || args.profile == "debug",
            "--profile is release or debug"
        );
        let repo = args.repo.canonicalize().context("--repo")?;
        ensure!(
            repo.join("deploy/run-local.sh").exists(),
            "{} has no deploy/run-local.sh",
            repo.display()
        );
        std::fs::create_dir_all(&args.backends_dir)?;
        let backends_dir = args.backends_dir.canonicalize()?;
        let mut env: Vec<(String, String)> = [
            ("CHIRP_BACKENDS_DIR", backends_dir.display().to_string()),
            ("CHIRP_PG_PORT", args.pg_port.to_string()),
            ("CHIRP_REDIS_PORT", args.redis_port.to_string()),
            ("CHIRP_KAFKA_PORT", args.kafka_port.to_string()),
            (
                "CHIRP_KAFKA_CONTROLLER_PORT",
                args.kafka_controller_port.to_string(),
            ),
            ("CHIRP_CQL_PORT", args.cql_port.to_string()),
            (
                "CHIRP_CASSANDRA_STORAGE_PORT",
                args.cassandra_storage_port.to_string(),
            ),
            ("PORT_OFFSET", args.port_offset.to_string()),
            ("PROFILE", args.profile.clone()),
            ("CELEBRITY_THRESHOLD", args.celebrity_threshold.to_string()),
            // The unfollow fault takes a celebrity at the threshold one
            // follower down and means that to be a fall: no hysteresis.
            ("CELEBRITY_HYSTERESIS_PERCENT", "0".to_owned()),
            ("REPLICAS", args.replicas.to_string()),
            // The workload's writers are few and busy; limits are not tested here.
            ("RATE_LIMIT_WRITES_PER_MINUTE", "1000000".to_owned()),
            ("RATE_LIMIT_BURST", "100000".to_owned()),
            ("RUST_LOG", "info".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        if let Some(clusters) = &clusters {
            let settings = clusters
                .script_env()
                .into_iter()
                .chain(clusters.service_env());
            env.extend(settings.map(|(k, v)| (k.to_owned(), v)));
        }
        if args.skip_build {
            env.push(("SKIP_BUILD".to_owned(), "1".to_owned()));
        }
        if let Some(bin_dir) = &args.bin_dir {
            env.push(("BIN_DIR".to_owned(), bin_dir.display().to_string()));
        }
        // Redis names itself by address and port on its command line.
        let mut marks = vec![
            backends_dir.display().to_string(),
            format!(":{}", args.redis_port),
        ];
        if let Some(clusters) = &clusters {
            marks.extend(clusters.redis_ports.iter().map(|port| format!(":{port}")));
        }
        Ok(Self {
            repo,
            backends_dir,
            env,
            marks,
            gateway_url: format!("http://127.0.0.1:{}", 8080 + args.port_offset),
            port_offset: args.port_offset,
            replicas: args.replicas,
            pg_port: args.pg_port,
            redis_port: args.redis_port,
            cql_port: args.cql_port,
            clusters,
        })
    }

    /// A service's gRPC address (its first instance), as run-local.sh
    /// places it.
    pub fn grpc_addr(&self, base_port: u16) -> String {
        format!("127.0.0.1:{}", base_port + self.port_offset)
    }

    /// The `/metrics` page of instance `n` of the service in metrics slot
    /// `slot` (run-local.sh's METRICS_SLOT: gateway 0 … fanout 4).
    pub fn metrics_url(&self, slot: u16, n: usize) -> String {
        let port = 9200 + 10 * slot + n as u16 + self.port_offset;
        format!("http://127.0.0.1:{port}/metrics")
    }

    /// The Redis the services use: the single node's port, or the cluster's
    /// six.
    pub fn redis_ports(&self) -> Vec<u16> {
        match &self.clusters {
            Some(clusters) => clusters.redis_ports.clone(),
            None => vec![self.redis_port],
        }
    }

    /// The secret the gateways sign tokens with (run-local.sh writes it on
    /// the first start): to act as seeded users without signing them in.
    pub fn token_secret(&self) -> anyhow::Result<String> {
        let file = self.backends_dir.join("services/token_secret");
        let secret =
            std::fs::read_to_string(&file).with_context(|| format!("read {}", file.display()))?;
        Ok(secret.trim().to_owned())
    }

    /// Every process of the stack with a pid file, by the file's name
    /// (`graph`, `tweet-2`, `postgres`, `kafka`, …), if it still runs a
    /// program of this stack: what the soak reads the memory of.
    pub fn processes(&self) -> Vec<(String, u32)> {
        let mut found = Vec::new();
        for dir in ["services", "run"] {
            let Ok(entries) = std::fs::read_dir(self.backends_dir.join(dir)) else {
                continue;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                if path.extension().is_none_or(|ext| ext != "pid") {
                    continue;
                }
                let name = path
                    .file_stem()
                    .map(|stem| stem.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let pid = std::fs::read_to_string(&path)
                    .ok()
                    .and_then(|text| text.lines().next()?.trim().parse::<u32>().ok());
                if let Some(pid) = pid.filter(|&pid| self.ours(pid, None)) {
                    found.push((name, pid));
                }
            }
        }
        found.sort();
        found
    }

    /// Starts whatever is not running (backends, then services) and waits
    /// for the gateway: the first start, and the way back after a fault.
    /// Once more if the first attempt fails: a readiness check can time out
    /// on a loaded machine while the process it waits for is still coming
    /// up (seen with Kafka's 120 s budget at a load of 25 on 2 cores), and
    /// the next `up` waits for it again rather than starting another.
    pub async fn up(&self) -> anyhow::Result<()> {
        if let Err(first) = self.up_once().await {
            println!("  bringing the stack up failed, trying once more: {first:#}");
            return self.up_once().await;
        }
        Ok(())
    }

    /// With clusters, the backends and each cluster first (each `up` starts
    /// only the members that are down, on their own data), then the
    /// services.
    async fn up_once(&self) -> anyhow::Result<()> {
        if self.clusters.is_some() {
            self.backends(&["up"]).await?;
            for name in clusters::NAMES {
                self.backends(&["up", name]).await?;
            }
        }
        self.script("run-local.sh", &["up"]).await
    }

    /// Runs deploy/backends.sh on this stack's set: the operator's commands
    /// (`restart kafka-cluster 2`) that a fault's way back takes.
    pub async fn backends(&self, args: &[&str]) -> anyhow::Result<()> {
        self.script("backends.sh", args).await
    }

    /// Stops the services, then the backends of this set (never others).
    pub async fn down(&self) -> anyhow::Result<()> {
        self.script("run-local.sh", &["down"]).await?;
        self.backends(&["down"]).await
    }

    /// Sends `signal` (a name `kill -s` knows: KILL, INT, STOP, CONT) to a
    /// process of this stack; returns its pid.
    pub fn signal(&self, process: Process, signal: &str) -> anyhow::Result<u32> {
        let pid = self.pid(process)?;
        let status = Command::new("kill")
            .args(["-s", signal, &pid.to_string()])
            .status()?;
        ensure!(
            status.success(),
            "kill -s {signal} {pid} ({process:?}) failed"
        );
        Ok(pid)
    }

    /// Waits until `pid` has exited (after a KILL or a shutdown signal).
    pub async fn exited(&self, pid: u32) {
        while Path::new(&format!("/proc/{pid}")).exists() && !zombie(pid) {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    /// The pid in `process`'s pid file, if it runs a program of this stack.
    pub fn pid(&self, process: Process) -> anyhow::Result<u32> {
        let file = process.pid_file(&self.backends_dir);
        let text = std::fs::read_to_string(&file)
            .with_context(|| format!("{process:?} is not running ({})", file.display()))?;
        let pid: u32 = text.lines().next().unwrap_or("").trim().parse()?;
        let service = match process {
            Process::Service(name) | Process::Replica(name, _) => Some(name),
            _ => None,
        };
        if !self.ours(pid, service) {
            bail!("pid {pid} does not run this stack's {process:?}: not touching it");
        }
        Ok(pid)
    }

    /// Whether `pid` runs `service`'s binary, or (none given) a program of
    /// this stack: a service binary or a backend with this set's folder or
    /// port on its command line.
    fn ours(&self, pid: u32, service: Option<&str>) -> bool {
        let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            return false;
        };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        let program = cmdline.split(' ').next().unwrap_or("");
        match service {
            Some(name) => program.ends_with(&format!("/{name}")),
            None => {
                const SERVICES: [&str; 5] = ["gateway", "tweet", "graph", "timeline", "fanout"];
                SERVICES
                    .iter()
                    .any(|name| program.ends_with(&format!("/{name}")))
                    || program.ends_with("/haproxy")
                    || program == "haproxy"
                    || self.marks.iter().any(|mark| cmdline.contains(mark))
            }
        }
    }

    /// Runs a deploy/ script with the stack's environment; its output goes
    /// to `<backends-dir>/chaos-scripts.log`, whose end an error shows.
    async fn script(&self, name: &str, args: &[&str]) -> anyhow::Result<()> {
        let script = self.repo.join("deploy").join(name);
        let log_path = self.backends_dir.join("chaos-scripts.log");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)?;
        let mut command = Command::new("bash");
        command
            .arg(&script)
            .args(args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(std::process::Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        let status = tokio::task::spawn_blocking(move || command.status()).await??;
        if !status.success() {
            let text = std::fs::read_to_string(&log_path).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(30).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            bail!(
                "deploy/{name} {} failed ({status}); end of {}:\n{}",
                args.join(" "),
                log_path.display(),
                tail.join("\n")
            );
        }
        Ok(())
    }
}

/// Starts the isolated stack `args` describe, runs `work` on it, and stops
/// it again (unless `keep_running`) whatever `work` returned, a panic
/// included: the frame of `loadtest chaos` and `loadtest soak`. A test that runs them
/// in-process asserts inside `work`'s callees too (an `expect` in a
/// helper), and a panic that skipped `down` would leave a whole stack of
/// JVMs and Redis nodes running on the test's ports for the next run to
/// trip over.
pub async fn isolated<T, Fut>(
    args: &StackArgs,
    keep_running: bool,
    work: impl FnOnce(Stack) -> Fut,
) -> anyhow::Result<T>
where
    Fut: Future<Output = anyhow::Result<T>>,
{
    let stack = Stack::new(args)?;
    println!(
        "starting the isolated stack (deploy/run-local.sh up) on {}",
        stack.gateway_url
    );
    let result = match stack.up().await.context("starting the isolated stack") {
        Ok(()) => AssertUnwindSafe(work(stack.clone())).catch_unwind().await,
        Err(failed) => Ok(Err(failed)),
    };
    if !keep_running {
        let stopped = stack.down().await.context("stopping the isolated stack");
        if result.is_ok() {
            stopped?;
        }
    }
    result.unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

/// A killed child of ours stays a zombie until reaped; it has exited all
/// the same.
fn zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|stat| {
            stat.rsplit(')')
                .next()
                .is_some_and(|rest| rest.trim_start().starts_with('Z'))
        })
        .unwrap_or(true)
}
