//! The `loadtest` command line: one binary for the load tool's subcommands
//! (crate `chirp-load`: `estimate`, `seed`, `run`, `bench`, `visible`,
//! `idle`, `drop-keyspace`) and the fault harness's (crate `chirp-chaos`:
//! `chaos`, `soak`).
//!
//! Why two crates behind one command: the harness builds on the load tool (it
//! seeds and loads the stack it breaks with it) but is a concern of its own,
//! a chirp it starts, breaks and stops; the people who run them want one
//! tool. This crate only parses and dispatches; the tests parse the very
//! command lines the scripts and docs give ([`Cli`]).

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

/// Every subcommand, the load tool's first (flattened: `loadtest seed`,
/// `loadtest chaos`, one level).
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Boxed: its settings (the timeline store's among them) make it twice
    /// the size of the harness's.
    #[command(flatten)]
    Load(Box<chirp_load::Command>),
    #[command(flatten)]
    Harness(chirp_chaos::Command),
}

/// Runs one subcommand; an error when it failed or, for the harness, when a
/// promise was broken.
pub async fn execute(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Load(command) => chirp_load::execute(*command).await,
        Command::Harness(command) => chirp_chaos::execute(command).await,
    }
}
