//! `experiment`: runs that compare designs on the same data and the same
//! load, restarting the services between them.
//!
//! One experiment for now, `strategies` ([`strategies`]): push, pull and
//! hybrid home timelines, what each costs in writes and what each gives in
//! read and post-to-visible latency, written up by [`comparison`]. The
//! services run in this process ([`deployment`], on `chirp-stack`'s
//! assembly) so that one command needs nothing but the backends; the load,
//! its recording and its reports are the load tool's (the library
//! `chirp-load`). A binary apart from `loadtest`, which talks to chirp only
//! from the outside and links none of the services.

pub mod comparison;
pub mod deployment;
pub mod strategies;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "experiment",
    about = "Compare chirp's designs: the same data and load, the services restarted with each"
)]
pub struct Cli {
    #[command(subcommand)]
    pub experiment: Experiment,
}

#[derive(Debug, Subcommand)]
pub enum Experiment {
    /// Push, pull and hybrid timelines on one seeded graph under one load:
    /// writes per tweet, home-timeline and post-to-visible latency.
    Strategies(strategies::StrategiesArgs),
}

/// Runs one experiment.
pub async fn execute(cli: Cli) -> anyhow::Result<()> {
    match cli.experiment {
        Experiment::Strategies(args) => {
            strategies::strategies(&args).await?;
        }
    }
    Ok(())
}
