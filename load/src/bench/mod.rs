//! `bench`: the read path against its physical limit, in one run on one
//! machine, printed as ratios.
//!
//! A home-timeline page that is cached costs Redis exactly one pipelined
//! round trip (see [`targets::RedisPage`]); hydration is served from the
//! timeline service's in-process cache and touches no Redis. Driving that
//! round trip straight at Redis, as fast as one multiplexed connection and
//! many concurrent tasks allow, gives the **floor**: no deployment of this
//! design can serve pages faster from one Redis. Then the same pages
//! through each layer above it, with the same driver and the same number of
//! concurrent requests:
//!
//! 1. the Redis floor (and `redis-benchmark`'s opinion, when installed);
//! 2. the timeline service over gRPC;
//! 3. the gateway over HTTP, end to end: its closed-loop throughput is the
//!    **saturation** throughput;
//! 4. an open loop at 70 % of saturation, over the same connections: the
//!    p99 a user sees at a busy but sustainable load;
//! 5. fan-out: timeline inserts per second through the worker against the
//!    same pipelined `ZADD`s straight to Redis ([`fanout`]), on an audience
//!    the stage creates for itself and removes from Redis afterwards.
//!
//! Every page is read warm: before measuring, every reader's first page is
//! read once, so that its timeline is cached in Redis and its tweets in the
//! timeline service. Each stage also writes its own `run`-style report.

pub mod cpu;
pub mod fanout;
pub mod idle;
pub mod redis_benchmark;
pub mod results;
pub mod targets;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, anyhow, ensure};
use chirp_kafka::KafkaArgs;
use chirp_proto::timeline::timeline_service_client::TimelineServiceClient;
use chirp_timeline_store::{HomeTimelines, TimelineStoreArgs};
use redis::ConnectionAddr;

use crate::machine::Machine;
use crate::report::Report;
use crate::run::{self, RunArgs};
use crate::schedule::{Mode, Plan};
use crate::tokens::SeededArgs;
use crate::workload::{Workload, warm_up};
use results::{BenchResults, Stage};
use targets::{RedisPage, TimelineGrpc};

#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// The seeded users: the manifest, the gateway, their tokens' secret.
    #[command(flatten)]
    pub seeded: SeededArgs,
    /// The timeline service (gRPC).
    #[arg(long, env = "TIMELINE_ADDR", default_value = "127.0.0.1:50053")]
    pub timeline_addr: String,
    /// The graph service (gRPC): the fan-out stage's own author and
    /// followers are imported there.
    #[arg(long, env = "GRAPH_ADDR", default_value = "127.0.0.1:50052")]
    pub graph_addr: String,
    /// The services' timeline store: the floor reads their very keys.
    #[command(flatten)]
    pub store: TimelineStoreArgs,
    /// The topic the fan-out worker consumes.
    #[command(flatten)]
    pub kafka: KafkaArgs,
    /// The fan-out worker's FOLLOWER_PAGE_SIZE: the floor writes pipelines
    /// of the same size.
    #[arg(long, env = "FOLLOWER_PAGE_SIZE", default_value_t = 1_000,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub follower_page_size: u32,
    /// The fan-out worker's Prometheus endpoint (e.g.
    /// http://127.0.0.1:9100/metrics), to check its count of writes.
    #[arg(long)]
    pub fanout_metrics: Option<String>,
    /// How long each stage runs.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    /// Concurrent requests of the closed-loop stages.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..))]
    pub connections: u32,
    /// Users whose (warm) home timelines are read.
    #[arg(long, default_value_t = 1_000, value_parser = clap::value_parser!(u32).range(1..))]
    pub readers: u32,
    /// Tweets per page (1-100). Default: the services' (20).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub page_size: Option<u32>,
    /// The open loop's rate, as a fraction of the saturation throughput.
    #[arg(long, default_value_t = 0.7)]
    pub load_fraction: f64,
    /// Followers of the fan-out author (below the celebrity threshold):
    /// users the stage creates, not the manifest's.
    #[arg(long, default_value_t = 1_000, value_parser = clap::value_parser!(u32).range(1..))]
    pub fanout_followers: u32,
    /// Tweet events published for the fan-out stage.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..))]
    pub fanout_events: u32,
    /// The worker's `FANOUT_CONCURRENCY`, which the floor matches: events
    /// written at once.
    #[arg(long, env = "FANOUT_CONCURRENCY", default_value_t = 16,
          value_parser = clap::value_parser!(u16).range(1..))]
    pub fanout_concurrency: u16,
    /// A request unanswered after this long counts as a timeout.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
    /// Directory for the tables (bench.md, bench.json) and each stage's report.
    #[arg(long, default_value = "bench-results")]
    pub out: PathBuf,
}

/// The services' page size when the request names none.
const DEFAULT_PAGE: u32 = 20;
/// Readers warmed up at once.
const WARM_CONCURRENCY: usize = 32;

/// Runs every stage, writes the results into `args.out`, prints the tables,
/// and returns the results.
pub async fn bench(args: &BenchArgs) -> anyhow::Result<BenchResults> {
    ensure!(
        args.load_fraction > 0.0 && args.load_fraction <= 1.0,
        "--load-fraction must be in (0, 1]"
    );
    let manifest = args.seeded.users()?;
    let page = args.page_size.unwrap_or(DEFAULT_PAGE);
    let want = page as usize + 1;
    let closed = Plan {
        mode: Mode::ClosedLoop {
            connections: args.connections as usize,
        },
        duration: args.duration,
        timeout: args.timeout,
    };
    let run_args = RunArgs {
        workload: Workload::HomeTimeline,
        seeded: args.seeded.clone(),
        rate: None,
        connections: Some(args.connections),
        duration: args.duration,
        timeout: args.timeout,
        max_in_flight: 10_000,
        pages: 1,
        page_size: args.page_size,
        readers: Some(args.readers),
        read_write_ratio: 0.0,
        seed: 1,
        out: args.out.join("gateway-http"),
    };
    let http = run::target(&run_args, &manifest).await?;
    let gateway = http.gateway().clone();
    let gateway_url = gateway.base_url().to_owned();
    let readers: Vec<i64> = http.readers().iter().map(|reader| reader.id).collect();

    println!("warming {} readers' timelines up", readers.len());
    warm_up(&gateway, http.readers(), args.page_size, WARM_CONCURRENCY).await?;
    let timelines = HomeTimelines::connect(&args.store).await?;
    let first = readers[0];
    ensure!(
        timelines
            .page_if_complete(first, None, want)
            .await?
            .is_some(),
        "user {first}'s timeline is not in Redis under the prefix {:?} after a read: the \
         services must run with TIMELINE_STRATEGY push or hybrid and this REDIS_KEY_PREFIX",
        args.store.redis.redis_key_prefix
    );

    println!("stage 1/6: the Redis floor");
    let floor = RedisPage {
        timelines: timelines.clone(),
        readers: readers.clone(),
        want,
    };
    let redis = redis_target(&args.store)?;
    let floor = stage(&args.out, "redis-floor", &redis, floor, closed).await?;

    println!("stage 2/6: redis-benchmark");
    let (host, port) = redis_host_port(&args.store.redis.redis_url)?;
    let key = format!("{}timeline:{first}", args.store.redis.redis_key_prefix);
    let redis_benchmark = redis_benchmark::run(&host, port, &key, want, args.connections)?;

    println!("stage 3/6: the timeline service over gRPC");
    let channel = crate::grpc::connect(&args.timeline_addr, args.timeout)?;
    let grpc = TimelineGrpc {
        client: TimelineServiceClient::new(channel),
        readers: readers.clone(),
        limit: page,
    };
    let grpc = stage(
        &args.out,
        "timeline-grpc",
        &args.timeline_addr,
        grpc,
        closed,
    )
    .await?;

    println!("stage 4/6: the gateway over HTTP, saturated");
    let saturated = stage(&args.out, "gateway-http", &gateway_url, http, closed).await?;

    println!(
        "stage 5/6: the gateway at {:.0} % of saturation",
        args.load_fraction * 100.0
    );
    let rate = (saturated.ok_per_sec * args.load_fraction).max(1.0);
    // Over the same connections as the closed loop that found the
    // saturation: the rate is a fraction of what they carried.
    let open = Plan {
        mode: Mode::OpenLoop {
            rate,
            max_in_flight: 10_000,
            connections: Some(args.connections as usize),
        },
        ..closed
    };
    let http = run::target(&run_args, &manifest).await?;
    let loaded = stage(&args.out, "gateway-http-open", &gateway_url, http, open).await?;

    println!("stage 6/6: fan-out");
    let fanout = fanout::measure(&fanout::Setup {
        gateway: &gateway,
        tokens: &args.seeded.tokens,
        graph_addr: &args.graph_addr,
        store: &args.store,
        kafka: &args.kafka,
        follower_page_size: args.follower_page_size,
        metrics_url: args.fanout_metrics.as_deref(),
        celebrity_threshold: manifest.celebrity_threshold,
        followers: args.fanout_followers,
        events: args.fanout_events,
        concurrency: args.fanout_concurrency.into(),
    })
    .await?;

    let results = BenchResults {
        machine: Machine::this(),
        users: manifest.users.len() as u64,
        follows: manifest.follows,
        tweets: manifest.tweets,
        readers: readers.len() as u64,
        page_size: page,
        connections: args.connections,
        duration_secs: args.duration.as_secs_f64(),
        redis_floor: floor,
        redis_benchmark,
        timeline_grpc: grpc,
        gateway_http: saturated,
        load_fraction: args.load_fraction,
        gateway_http_open: loaded,
        fanout,
    };
    results.write(&args.out)?;
    print!("{}", results.markdown());
    Ok(results)
}

/// Runs one stage, writes its report into `out/name`, and sums it up.
async fn stage<T: crate::schedule::Target>(
    out: &Path,
    name: &str,
    target_name: &str,
    target: T,
    plan: Plan,
) -> anyhow::Result<Stage> {
    let before = cpu::CpuTimes::now();
    let report = Report::measure(name, target_name, target, plan).await;
    let cpu = before.per_request(&cpu::CpuTimes::now(), report.summary.counts.ok);
    report.write(&out.join(name))?;
    let stage = Stage::from_report(&report, name, cpu);
    println!("{}", stage.summary_line(name));
    Ok(stage)
}

/// Redis's address for the reports, without credentials.
fn redis_target(store: &TimelineStoreArgs) -> anyhow::Result<String> {
    let (host, port) = redis_host_port(&store.redis.redis_url)?;
    Ok(format!("redis {host}:{port}"))
}

fn redis_host_port(url: &str) -> anyhow::Result<(String, u16)> {
    let client = redis::Client::open(url).with_context(|| format!("parse REDIS_URL {url}"))?;
    match client.get_connection_info().addr() {
        ConnectionAddr::Tcp(host, port) | ConnectionAddr::TcpTls { host, port, .. } => {
            Ok((host.clone(), *port))
        }
        other => Err(anyhow!("a TCP REDIS_URL is needed, not {other:?}")),
    }
}
