//! chirp's load tool: how much traffic the design must carry, a realistic
//! social graph to carry it on, and honest measurements of how it copes.
//!
//! A library: the `loadtest` binary (package `loadtest`) parses its command
//! line into [`Command`] and runs it with [`execute`], beside the fault
//! harness's `chaos` and `soak` (crate `chirp-chaos`, which builds on this
//! one). The main subcommands, in the order one uses them (`loadtest --help`
//! lists them all):
//!
//! - `estimate` ([`estimate`]): the back-of-envelope numbers, from daily
//!   active users to requests per second and bytes per day.
//! - `seed` ([`seed`]): users, a power-law follow graph ([`graph_model`])
//!   and a tweet history, written through the services' own APIs; it leaves
//!   a [`manifest`] behind.
//! - `run` ([`run`]): a workload ([`workload`]) sent through the gateway's
//!   HTTP API ([`chirp_client`]) on an open- or closed-loop schedule
//!   ([`schedule`]), measured with HDR histograms ([`recorder`]) and
//!   written up as JSON and HTML ([`report`]). Two workloads are the
//!   request mixes of DeathStarBench's social network ([`dsb`]).
//! - `bench` ([`bench`]): the read path layer by layer against the Redis
//!   floor, fan-out against pipelined `ZADD`; `visible` ([`visible`]): a
//!   post's time to its last follower; `idle` ([`bench::idle`]): the stack's
//!   CPU at rest.
//!
//! Reading order for the measurement itself: [`schedule`] (why an open
//! loop), [`recorder`], [`report`]. The scheduler is generic over any async
//! operation, so other targets (a gRPC service, Redis) are measured the same
//! way. Comparing designs, which restarts the services, is the `experiment`
//! binary's job (crate `chirp-experiment`), which uses this one as a library;
//! so does the fault harness (crate `chirp-chaos`: `loadtest chaos`,
//! `loadtest soak`), which starts a chirp of its own to break.
//!
//! The load tool treats chirp as a black box: it links none of the services
//! (just their contracts, `chirp-proto`, the HTTP client, the token signing,
//! `chirp-auth`, and the Redis, Kafka and timeline-store plumbing), and it
//! talks to a running chirp as follows:
//!
//! - **HTTP to the gateway**: every workload of `run`, the warm-ups, and
//!   `visible`, which posts and then reads the followers' home timelines
//!   there, as they would.
//! - **gRPC** to the graph service for bulk imports (the seed's users and
//!   follows, `visible`'s follows, the fan-out stage's own audience), to the
//!   tweet service for the seed's history, and to the timeline service for
//!   `bench`'s gRPC stage.
//! - **Kafka**: `bench`'s fan-out stage publishes its author's tweet events
//!   to the worker's topic.
//! - **Redis**, in two stages of `bench` only. The floor reads the warm
//!   readers' timelines with the very call a page makes (which, as a page
//!   does, renews their TTL). The fan-out stage watches the timeline of the
//!   last follower of the audience it created for itself, deletes its
//!   audience's timelines when done, and writes its floor under a prefix of
//!   its own ([`bench::fanout`]). No seeded user's timeline is written by the
//!   tool; `visible`'s follows drop its followers' cached timelines, as any
//!   follow does (the graph service does it).
//! - `idle` reads `/proc` only. (The harness's `chaos` and `soak` start a
//!   stack of their own and watch it also from the inside: its processes in
//!   `/proc`, Redis's `INFO`, the outbox in the tweet store.)

pub mod bench;
pub mod dsb;
pub mod estimate;
pub mod graph_model;
pub mod grpc;
pub mod keyspace;
pub mod machine;
pub mod manifest;
pub mod prometheus;
pub mod recorder;
pub mod report;
pub mod run;
pub mod schedule;
pub mod seed;
pub mod tokens;
pub mod visible;
pub mod workload;

use clap::Subcommand;

/// The load tool's subcommands, as `loadtest` parses them.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Back-of-envelope capacity estimate.
    Estimate(estimate::Assumptions),
    /// Build a social graph in running services and write a manifest.
    Seed(seed::SeedArgs),
    /// Load the gateway with a workload and write a report.
    Run(run::RunArgs),
    /// The read path against the Redis floor, fan-out against pipelined
    /// ZADD, saturation and the p99 below it: docs/BENCHMARKS.md.
    Bench(bench::BenchArgs),
    /// Post through the gateway as an author with celebrity threshold − 1
    /// followers; time each post until the gateway shows it on its last
    /// follower's home timeline.
    Visible(visible::VisibleArgs),
    /// The stack at rest: every process's CPU (by its pid file) over a
    /// window with no traffic: docs/BENCHMARKS.md.
    Idle(bench::idle::IdleArgs),
    /// Drop a CQL keyspace a seed filled (for scripts; no cqlsh needed).
    DropKeyspace(keyspace::DropKeyspaceArgs),
}

/// Runs one subcommand.
pub async fn execute(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Estimate(assumptions) => print!("{}", estimate::estimate(&assumptions)),
        Command::Seed(args) => {
            seed::seed(&args).await?;
        }
        Command::Run(args) => {
            run::run(&args).await?;
        }
        Command::Bench(args) => {
            bench::bench(&args).await?;
        }
        Command::Visible(args) => {
            visible::visible(&args).await?;
        }
        Command::Idle(args) => {
            bench::idle::idle(&args).await?;
        }
        Command::DropKeyspace(args) => keyspace::drop_keyspace(&args).await?,
    }
    Ok(())
}
