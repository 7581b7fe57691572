//! chirp's load tool: how much traffic the design must carry, a realistic
//! social graph to carry it on, and honest measurements of how it copes.
//!
//! The main subcommands, in the order one uses them (`loadtest --help` lists them all):
//!
//! - `estimate` ([`estimate`]): the back-of-envelope numbers, from daily
//!   active users to requests per second and bytes per day.
//! - `seed` ([`seed`]): users, a power-law follow graph ([`graph_model`])
//!   and a tweet history, written through the services' own APIs; it leaves
//!   a [`manifest`] behind.
//! - `run` ([`run`]): a workload ([`workload`]) sent through the gateway's
//!   HTTP API ([`chirp_client`]) on an open- or closed-loop schedule
//!   ([`schedule`]), measured with HDR histograms ([`recorder`]) and
//!   written up as JSON and HTML ([`report`]).
//!
//! Reading order for the measurement itself: [`schedule`] (why an open
//! loop), [`recorder`], [`report`]. The scheduler is generic over any async
//! operation, so other targets (a gRPC service, Redis) are measured the same
//! way. Comparing designs, which restarts the services, is the `experiment`
//! binary's job (crate `chirp-experiment`), which uses this one as a library;
//! so does the fault harness (crate `chirp-chaos`: `chaos run`, `chaos soak`),
//! which starts a chirp of its own to break.
//!
//! The load tool treats chirp as a black box: it talks to it over HTTP, gRPC
//! and Kafka only, links none of the services (just their contracts,
//! `chirp-proto`, and the token signing, `chirp-auth`), and reads Redis only
//! for the floor it compares the read path against.

pub mod bench;
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

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "loadtest",
    about = "Capacity estimates, seeding and load tests for chirp"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

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
    /// followers; time each post to its last follower's cached timeline.
    Visible(visible::VisibleArgs),
    /// Drop a CQL keyspace a seed filled (for scripts; no cqlsh needed).
    DropKeyspace(keyspace::DropKeyspaceArgs),
}

/// Runs one subcommand.
pub async fn execute(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
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
        Command::DropKeyspace(args) => keyspace::drop_keyspace(&args).await?,
    }
    Ok(())
}
