//! The soak's faults and when they strike: every fault of `chaos`, plus an
//! outbox lease handed over, drawn from a seeded random schedule.
//!
//! Why random and seeded: a fixed order tests one interleaving of faults
//! and traffic; a Poisson schedule (exponential gaps around a mean) lands
//! faults on moments nobody chose, and the seed makes a failing soak
//! repeatable with the same faults at the same offsets. Why a quiet head
//! and tail: the first minutes are warm-up (caches, JIT, connection pools)
//! and the last leave the stack time to recover before the final check, so
//! a fault at the very end does not read as a loss.
//!
//! Faults the issue asks for that this stack cannot express yet (a broker
//! of a three-broker Kafka, a Redis Cluster master, a lagging Postgres
//! replica: deploy/backends.sh starts those clusters on fixed ports only,
//! which an isolated stack cannot share) are listed in [`NOT_YET`].

use std::time::Duration;

use clap::ValueEnum;
use clap::builder::PossibleValue;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Exp};
use serde::Serialize;

use crate::faults::{Fault, Unfollow};
use crate::stack::{Process, Stack};
use crate::workload::Caller;

/// How long a killed tweet instance stays down: past the lease's TTL (the
/// tweet service's 10 s), so that the survivor takes its shards over.
const LEASE_HANDOVER_DOWN: Duration = Duration::from_secs(15);

/// What the soak does not inject yet, and why.
pub const NOT_YET: [&str; 3] = [
    "a broker of a three-broker Kafka killed (deploy/backends.sh runs kafka-cluster on fixed ports)",
    "a Redis Cluster master killed (deploy/backends.sh runs redis-cluster on fixed ports)",
    "a lagging Postgres replica (deploy/backends.sh runs the replica on a fixed port)",
];

/// A fault of the soak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SoakFault {
    /// One of `chaos run`'s faults, injected as it does.
    Chaos(Fault),
    /// SIGKILL of one of two tweet instances, held down past the outbox
    /// lease's TTL so the other relays its shards, then restarted.
    LeaseHandover,
}

const ALL: [SoakFault; 8] = [
    SoakFault::Chaos(Fault::FanoutKill),
    SoakFault::Chaos(Fault::TweetKill),
    SoakFault::Chaos(Fault::KafkaRestart),
    SoakFault::Chaos(Fault::RedisRestart),
    SoakFault::Chaos(Fault::CassandraPause),
    SoakFault::Chaos(Fault::PostgresRestart),
    SoakFault::Chaos(Fault::GraphKillUnfollow),
    SoakFault::LeaseHandover,
];

impl ValueEnum for SoakFault {
    fn value_variants<'a>() -> &'a [Self] {
        &ALL
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        match self {
            Self::Chaos(fault) => fault.to_possible_value(),
            Self::LeaseHandover => Some(PossibleValue::new("lease-handover")),
        }
    }
}

impl Serialize for SoakFault {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.slug())
    }
}

impl SoakFault {
    /// Every fault; the lease handover only with two tweet instances.
    pub fn all(replicas: usize) -> Vec<Self> {
        ALL.into_iter()
            .filter(|fault| *fault != Self::LeaseHandover || replicas >= 2)
            .collect()
    }

    /// The name `--faults` takes.
    pub fn slug(self) -> String {
        self.to_possible_value()
            .map(|value| value.get_name().to_owned())
            .unwrap_or_default()
    }

    /// Injects the fault and brings the stack back; `which` picks the
    /// instance a lease handover kills, `unfollow` is the graph fault's.
    pub async fn inject(
        self,
        stack: &Stack,
        caller: &Caller,
        unfollow: &Unfollow,
        which: usize,
    ) -> anyhow::Result<()> {
        match self {
            Self::Chaos(fault) => fault.inject(stack, caller, Some(unfollow)).await,
            Self::LeaseHandover => {
                anyhow::ensure!(
                    stack.replicas >= 2,
                    "a lease handover needs two tweet instances (--replicas 2)"
                );
                let victim = Process::Replica("tweet", which % stack.replicas);
                let pid = stack.signal(victim, "KILL")?;
                stack.exited(pid).await;
                tokio::time::sleep(LEASE_HANDOVER_DOWN).await;
                stack.up().await
            }
        }
    }
}

/// One planned fault: when (from the start of the steady load) and which.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Planned {
    pub at_secs: f64,
    pub fault: SoakFault,
    /// Which instance it hits where there is a choice (a lease handover).
    pub which: usize,
}

/// The schedule: exponential gaps of mean `mean` from `quiet_head` on, none
/// after `duration - quiet_tail`, each fault drawn uniformly from `faults`.
pub fn schedule(
    faults: &[SoakFault],
    seed: u64,
    mean: Duration,
    duration: Duration,
    quiet: (Duration, Duration),
) -> Vec<Planned> {
    let (head, tail) = quiet;
    let mut planned = Vec::new();
    let Ok(gaps) = Exp::new(1.0 / mean.as_secs_f64().max(1e-3)) else {
        return planned;
    };
    if faults.is_empty() {
        return planned;
    }
    let mut rng = StdRng::seed_from_u64(seed);
    let end = duration.saturating_sub(tail).as_secs_f64();
    let mut at = head.as_secs_f64();
    loop {
        at += gaps.sample(&mut rng);
        if at >= end {
            return planned;
        }
        planned.push(Planned {
            at_secs: at,
            fault: faults[rng.random_range(0..faults.len())],
            which: rng.random_range(0..64),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: Duration = Duration::from_secs(60);

    #[test]
    fn the_same_seed_gives_the_same_schedule_inside_the_quiet_bounds() {
        let faults = SoakFault::all(2);
        let quiet = (5 * MINUTE, 5 * MINUTE);
        let plan = |seed| schedule(&faults, seed, 3 * MINUTE, 60 * MINUTE, quiet);
        assert_eq!(plan(7), plan(7));
        assert_ne!(plan(7), plan(8));
        let planned = plan(7);
        // 50 minutes at one fault per 3 on average: a dozen or so.
        assert!((5..40).contains(&planned.len()), "{}", planned.len());
        assert!(planned.iter().all(|p| (300.0..3300.0).contains(&p.at_secs)));
        assert!(planned.windows(2).all(|w| w[0].at_secs < w[1].at_secs));
    }

    #[test]
    fn no_faults_no_schedule_and_names_round_trip() {
        let quiet = (MINUTE, MINUTE);
        assert!(schedule(&[], 1, MINUTE, 60 * MINUTE, quiet).is_empty());
        assert!(!SoakFault::all(1).contains(&SoakFault::LeaseHandover));
        for fault in SoakFault::all(2) {
            assert_eq!(SoakFault::from_str(&fault.slug(), false), Ok(fault));
        }
        assert_eq!(SoakFault::LeaseHandover.slug(), "lease-handover");
    }
}
