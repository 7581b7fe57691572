//! The bench's results: `bench.json`, and `bench.md`, the tables of
//! `docs/BENCHMARKS.md`, with every ratio against its target.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

use super::fanout::Fanout;
use super::redis_benchmark::RedisBenchmark;
use crate::machine::Machine;
use crate::recorder::Latency;
use crate::report::{Report, write_files};

/// What the design aims at; see the issue and docs/BENCHMARKS.md.
pub const TARGET_READ_RATIO: f64 = 0.5;
pub const TARGET_P99_MS: f64 = 10.0;
pub const TARGET_FANOUT_RATIO: f64 = 0.5;

/// One stage, summed up from its report.
#[derive(Debug, Clone, Serialize)]
pub struct Stage {
    pub ok_per_sec: f64,
    /// The open loop's rate; none for a closed loop.
    pub target_per_sec: Option<f64>,
    pub latency: Latency,
    /// Errors, timeouts and dropped requests: any at all spoil the stage.
    pub failed: u64,
    /// The stage's own report, relative to the output directory.
    pub report: String,
    /// Microseconds of CPU per answered request, by process ([`super::cpu`]).
    pub cpu_us_per_request: BTreeMap<String, f64>,
}

impl Stage {
    pub fn from_report(
        report: &Report,
        dir: &str,
        cpu_us_per_request: BTreeMap<String, f64>,
    ) -> Self {
        let counts = report.summary.counts;
        Self {
            ok_per_sec: report.throughput.ok_per_sec,
            target_per_sec: report.throughput.target_per_sec,
            latency: report.summary.latency,
            failed: counts.errors + counts.timeouts + counts.dropped,
            report: format!("{dir}/report.html"),
            cpu_us_per_request,
        }
    }

    pub fn summary_line(&self, name: &str) -> String {
        format!(
            "{name}: {:.0} ok/s, p50 {:.2} ms, p99 {:.2} ms, {} failed",
            self.ok_per_sec, self.latency.p50_ms, self.latency.p99_ms, self.failed
        )
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct BenchResults {
    pub machine: Machine,
    pub users: u64,
    pub follows: u64,
    pub tweets: u64,
    pub readers: u64,
    pub page_size: u32,
    /// Concurrent requests of the closed-loop stages.
    pub connections: u32,
    pub duration_secs: f64,
    pub redis_floor: Stage,
    pub redis_benchmark: Option<RedisBenchmark>,
    pub timeline_grpc: Stage,
    /// Closed loop: the saturation throughput.
    pub gateway_http: Stage,
    pub load_fraction: f64,
    /// Open loop at `load_fraction` of saturation.
    pub gateway_http_open: Stage,
    pub fanout: Fanout,
}

/// Each ratio the targets are about.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Ratios {
    pub gateway_vs_floor: f64,
    pub grpc_vs_floor: f64,
    pub p99_at_load_ms: f64,
    pub fanout_vs_zadd: f64,
}

impl BenchResults {
    pub fn ratios(&self) -> Ratios {
        let floor = self.redis_floor.ok_per_sec.max(1e-9);
        Ratios {
            gateway_vs_floor: self.gateway_http.ok_per_sec / floor,
            grpc_vs_floor: self.timeline_grpc.ok_per_sec / floor,
            p99_at_load_ms: self.gateway_http_open.latency.p99_ms,
            fanout_vs_zadd: self.fanout.worker_inserts_per_sec
                / self.fanout.direct_inserts_per_sec.max(1e-9),
        }
    }

    /// Writes `bench.json` (the results and their ratios) and `bench.md`.
    pub fn write(&self, dir: &Path) -> anyhow::Result<()> {
        #[derive(Serialize)]
        struct WithRatios<'a> {
            #[serde(flatten)]
            results: &'a BenchResults,
            ratios: Ratios,
        }
        let json = serde_json::to_string_pretty(&WithRatios {
            results: self,
            ratios: self.ratios(),
        })?;
        write_files(
            dir,
            [("bench.json", json + "\n"), ("bench.md", self.markdown())],
        )
    }

    /// The tables, in markdown.
    pub fn markdown(&self) -> String {
        let ratios = self.ratios();
        let floor = self.redis_floor.ok_per_sec.max(1e-9);
        let mut md = format!(
            "Machine: {}.\n\nData: {} users, {} follows, {} tweets; {} readers, warm, pages of \
             {}; closed loops of {} concurrent requests, {} s per stage.\n\n\
             | read path, one cached home-timeline page | pages/s | p50 ms | p99 ms | vs floor |\n\
             |---|--:|--:|--:|--:|\n",
            self.machine,
            self.users,
            self.follows,
            self.tweets,
            self.readers,
            self.page_size,
            self.connections,
            self.duration_secs,
        );
        let mut row = |name: &str, stage: &Stage| {
            let _ = writeln!(
                md,
                "| {name} | {:.0} | {:.2} | {:.2} | {:.2}× |",
                stage.ok_per_sec,
                stage.latency.p50_ms,
                stage.latency.p99_ms,
                stage.ok_per_sec / floor,
            );
        };
        row(
            "Redis floor: the page's pipeline, one multiplexed connection",
            &self.redis_floor,
        );
        row(
            "timeline service, gRPC GetHomeTimeline",
            &self.timeline_grpc,
        );
        row(
            "gateway, HTTP GET /users/{id}/timeline (saturation)",
            &self.gateway_http,
        );
        if let Some(benchmark) = &self.redis_benchmark {
            let _ = writeln!(
                md,
                "| redis-benchmark: the page's ZRANGE, 3 per round trip, as pages | {:.0} | | | \
                 {:.2}× |",
                benchmark.pages_per_sec,
                benchmark.pages_per_sec / floor,
            );
        }
        let open = &self.gateway_http_open;
        let _ = write!(
            md,
            "\n| gateway, open loop at {:.0} % of saturation, same connections | target/s | ok/s | p50 ms | p99 ms \
             | p99.9 ms | max ms |\n|---|--:|--:|--:|--:|--:|--:|\n\
             | GET /users/{{id}}/timeline | {:.0} | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} |\n",
            self.load_fraction * 100.0,
            open.target_per_sec.unwrap_or_default(),
            open.ok_per_sec,
            open.latency.p50_ms,
            open.latency.p99_ms,
            open.latency.p999_ms,
            open.latency.max_ms,
        );
        let fanout = &self.fanout;
        let counted = fanout
            .worker_counted
            .map_or_else(String::new, |n| format!(" (its counter: {n})"));
        let _ = write!(
            md,
            "\n| fan-out: {} events of an author with {} followers | inserts | seconds | \
             inserts/s | vs ZADD |\n|---|--:|--:|--:|--:|\n\
             | through the worker, from publish to the last write in Redis{counted} | {} | {:.3} \
             | {:.0} | {:.2}× |\n\
             | pipelined ZADD straight to Redis, same pipelines | {} | {:.3} | {:.0} | 1.00× |\n",
            fanout.events,
            fanout.followers,
            fanout.inserts,
            fanout.worker_secs,
            fanout.worker_inserts_per_sec,
            ratios.fanout_vs_zadd,
            fanout.inserts,
            fanout.direct_secs,
            fanout.direct_inserts_per_sec,
        );
        self.cpu_table(&mut md);
        let verdict = |met: bool| if met { "met" } else { "not met" };
        let _ = write!(
            md,
            "\n| target | measured | |\n|---|--:|---|\n\
             | end-to-end read ≥ {TARGET_READ_RATIO}× the Redis floor | {:.2}× | {} |\n\
             | p99 ≤ {TARGET_P99_MS} ms at {:.0} % of saturation | {:.2} ms | {} |\n\
             | fan-out ≥ {TARGET_FANOUT_RATIO}× pipelined ZADD | {:.2}× | {} |\n",
            ratios.gateway_vs_floor,
            verdict(ratios.gateway_vs_floor >= TARGET_READ_RATIO),
            self.load_fraction * 100.0,
            ratios.p99_at_load_ms,
            verdict(ratios.p99_at_load_ms <= TARGET_P99_MS),
            ratios.fanout_vs_zadd,
            verdict(ratios.fanout_vs_zadd >= TARGET_FANOUT_RATIO),
        );
        md
    }

    /// Microseconds of CPU per page in each process, per read-path stage:
    /// what each layer adds to the floor. Nothing when none was measured.
    fn cpu_table(&self, md: &mut String) {
        let stages = [
            ("Redis floor", &self.redis_floor),
            ("timeline gRPC", &self.timeline_grpc),
            ("gateway HTTP (saturation)", &self.gateway_http),
            ("gateway HTTP (open loop)", &self.gateway_http_open),
        ];
        let mut processes: Vec<&String> = stages
            .iter()
            .flat_map(|(_, stage)| stage.cpu_us_per_request.keys())
            .collect();
        processes.sort_unstable();
        processes.dedup();
        if processes.is_empty() {
            return;
        }
        let header: String = processes.iter().map(|name| format!(" {name} |")).collect();
        let align: String = processes.iter().map(|_| "--:|").collect();
        let _ = write!(
            md,
            "\n| CPU µs per page, by process |{header} total |\n|---|{align}--:|\n"
        );
        for (name, stage) in stages {
            let cells: String = processes
                .iter()
                .map(|process| match stage.cpu_us_per_request.get(*process) {
                    Some(us) => format!(" {us:.1} |"),
                    None => " |".to_owned(),
                })
                .collect();
            let total: f64 = stage.cpu_us_per_request.values().sum();
            let _ = writeln!(md, "| {name} |{cells} {total:.1} |");
        }
    }
}
