//! `experiment`: runs that compare designs on the same data and the same
//! load, restarting the services between them.
//!
//! Two experiments:
//!
//! - `strategies` ([`strategies`]): push, pull and hybrid home timelines,
//!   what each costs in writes and what each gives in read and
//!   post-to-visible latency, written up by [`comparison`];
//! - `policies` ([`policies`]): the home-timeline policies of real networks
//!   ([`policy`]), each as settings of chirp's services, compared on memory,
//!   writes, fan-out delay by follower count, warm and returning reads, and
//!   what readers miss ([`readers`]), written up by [`policy_comparison`].
//!
//! Both seed one graph ([`seeding`]), start a deployment per variant
//! ([`deployment`], on `chirp-stack`'s assembly, in this process, so one
//! command needs nothing but the backends), run the same mixed load
//! ([`load`]) and read the fan-out worker's own counters ([`counters`]);
//! the load, its recording and its reports are the load tool's (the library
//! `chirp-load`). A binary apart from `loadtest`, which talks to chirp only
//! from the outside and links none of the services.

pub mod comparison;
pub mod counters;
pub mod deployment;
pub mod load;
pub mod policies;
pub mod policy;
pub mod policy_comparison;
pub mod readers;
pub mod seeding;
pub mod strategies;
pub mod user_keys;

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
    /// The home-timeline policies of real networks (Twitter 2012, Mastodon,
    /// Bluesky's lossy fan-out, DeathStarBench, chirp's hybrid), each as
    /// settings of chirp's services, on one seeded graph under one load.
    Policies(policies::PoliciesArgs),
}

/// Runs one experiment.
pub async fn execute(cli: Cli) -> anyhow::Result<()> {
    match cli.experiment {
        Experiment::Strategies(args) => {
            strategies::strategies(&args).await?;
        }
        Experiment::Policies(args) => {
            policies::policies(&args).await?;
        }
    }
    Ok(())
}
