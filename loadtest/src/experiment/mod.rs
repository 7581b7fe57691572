//! `experiment`: runs that compare designs on the same data and the same
//! load, restarting the services between them.
//!
//! One experiment for now, `strategies` ([`strategies`]): push, pull and
//! hybrid home timelines, what each costs in writes and what each gives in
//! read and post-to-visible latency. The services run in process
//! ([`stack`]) so that one command needs nothing but the backends.

pub mod comparison;
pub mod stack;
pub mod strategies;

#[derive(Debug, clap::Subcommand)]
pub enum Experiment {
    /// Push, pull and hybrid timelines on one seeded graph under one load:
    /// writes per tweet, home-timeline and post-to-visible latency.
    Strategies(strategies::StrategiesArgs),
}

/// Runs one experiment.
pub async fn execute(experiment: &Experiment) -> anyhow::Result<()> {
    match experiment {
        Experiment::Strategies(args) => {
            strategies::strategies(args).await?;
        }
    }
    Ok(())
}
