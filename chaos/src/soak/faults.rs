//! The soak's faults and when they strike: every fault of `chaos`, plus an
//! outbox lease handed over and, on a stack with `--clusters`, a Kafka
//! broker of three killed, a Redis Cluster master killed and the Postgres
//! replica lagging ([`super::cluster_faults`]), drawn from a seeded random
//! schedule.
//!
//! Why random and seeded: a fixed order tests one interleaving of faults
//! and traffic; a Poisson schedule (exponential gaps around a mean) lands
//! faults on moments nobody chose, and the seed makes a failing soak
//! repeatable with the same faults at the same offsets. Why a quiet head
//! and tail: the first minutes are warm-up (caches, JIT, connection pools)
//! and the last leave the stack time to recover before the final check, so
//! a fault at the very end does not read as a loss.

use std::time::Duration;

use clap::ValueEnum;
use clap::builder::PossibleValue;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Exp};
use serde::Serialize;

use super::cluster_faults;
use crate::faults::{Fault, Unfollow};
use crate::stack::{Process, Stack};
use crate::workload::Caller;

/// How long a killed tweet instance stays down: past the lease's TTL (the
/// tweet service's 10 s), so that the survivor takes its shards over.
const LEASE_HANDOVER_DOWN: Duration = Duration::from_secs(15);

/// A fault of the soak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SoakFault {
    /// One of `loadtest chaos`'s faults, injected as it does.
    Chaos(Fault),
    /// SIGKILL of one of two tweet instances, held down past the outbox
    /// lease's TTL so the other relays its shards, then restarted.
    LeaseHandover,
    /// SIGKILL of one broker of the three-broker Kafka, held down, then
    /// restarted alone on its own log.
    KafkaBrokerKill,
    /// SIGKILL of a Redis Cluster master: its replica takes over; the node,
    /// restarted alone, rejoins as a replica.
    RedisMasterKill,
    /// The Postgres replica's replay paused while it serves reads, then
    /// resumed.
    ReplicaLag,
}

const ALL: [SoakFault; 11] = [
    SoakFault::Chaos(Fault::FanoutKill),
    SoakFault::Chaos(Fault::TweetKill),
    SoakFault::Chaos(Fault::KafkaRestart),
    SoakFault::Chaos(Fault::RedisRestart),
    SoakFault::Chaos(Fault::CassandraPause),
    SoakFault::Chaos(Fault::PostgresRestart),
    SoakFault::Chaos(Fault::GraphKillUnfollow),
    SoakFault::LeaseHandover,
    SoakFault::KafkaBrokerKill,
    SoakFault::RedisMasterKill,
    SoakFault::ReplicaLag,
];

impl ValueEnum for SoakFault {
    fn value_variants<'a>() -> &'a [Self] {
        &ALL
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        match self {
            Self::Chaos(fault) => fault.to_possible_value(),
            Self::LeaseHandover => Some(PossibleValue::new("lease-handover")),
            Self::KafkaBrokerKill => Some(PossibleValue::new("kafka-broker-kill")),
            Self::RedisMasterKill => Some(PossibleValue::new("redis-master-kill")),
            Self::ReplicaLag => Some(PossibleValue::new("replica-lag")),
        }
    }
}

impl Serialize for SoakFault {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.slug())
    }
}

impl SoakFault {
    /// Every fault a stack of `replicas` instances, with or without the
    /// clusters, can take.
    pub fn all(replicas: usize, clusters: bool) -> Vec<Self> {
        ALL.into_iter()
            .filter(|fault| fault.fits(replicas, clusters).is_ok())
            .collect()
    }

    /// Whether this stack can take the fault; why not if not.
    pub fn fits(self, replicas: usize, clusters: bool) -> Result<(), &'static str> {
        match self {
            Self::LeaseHandover if replicas < 2 => {
                Err("a lease handover needs two tweet instances (--replicas 2)")
            }
            Self::KafkaBrokerKill | Self::RedisMasterKill | Self::ReplicaLag if !clusters => {
                Err("the cluster faults need the clusters (--clusters)")
            }
            // With the clusters, the services no longer use the single
            // Kafka and Redis these two would hit.
            Self::Chaos(Fault::KafkaRestart | Fault::RedisRestart) if clusters => Err(
                "with --clusters, kafka-restart and redis-restart would hit unused nodes: \
                     kafka-broker-kill and redis-master-kill are their counterparts",
            ),
            _ => Ok(()),
        }
    }

    /// The name `--faults` takes.
    pub fn slug(self) -> String {
        self.to_possible_value()
            .map(|value| value.get_name().to_owned())
            .unwrap_or_default()
    }

    /// Injects the fault and brings the stack back; `which` picks the
    /// instance, broker or master it hits, `unfollow` is the graph fault's.
    /// The cluster faults say what they did and when they saw the cluster
    /// whole again.
    pub async fn inject(
        self,
        stack: &Stack,
        caller: &Caller,
        unfollow: &Unfollow,
        which: usize,
    ) -> anyhow::Result<Option<String>> {
        self.fits(stack.replicas, stack.clusters.is_some())
            .map_err(anyhow::Error::msg)?;
        let clusters = stack.clusters.as_ref();
        match (self, clusters) {
            (Self::Chaos(fault), _) => fault.inject(stack, caller, Some(unfollow)).await?,
            (Self::LeaseHandover, _) => {
                let victim = Process::Replica("tweet", which % stack.replicas);
                let pid = stack.signal(victim, "KILL")?;
                stack.exited(pid).await;
                tokio::time::sleep(LEASE_HANDOVER_DOWN).await;
                stack.up().await?;
            }
            (Self::KafkaBrokerKill, Some(clusters)) => {
                return cluster_faults::kill_kafka_broker(stack, clusters, which)
                    .await
                    .map(Some);
            }
            (Self::RedisMasterKill, Some(clusters)) => {
                return cluster_faults::kill_redis_master(stack, clusters, which)
                    .await
                    .map(Some);
            }
            (Self::ReplicaLag, Some(clusters)) => {
                return cluster_faults::lag_replica(stack, clusters, caller)
                    .await
                    .map(Some);
            }
            (_, None) => anyhow::bail!("the cluster faults need the clusters (--clusters)"),
        }
        Ok(None)
    }
}

/// One planned fault: when (from the start of the steady load) and which.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Planned {
    pub at_secs: f64,
    pub fault: SoakFault,
    /// Which instance, broker or master it hits where there is a choice.
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
        let faults = SoakFault::all(2, true);
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
        assert!(!SoakFault::all(1, false).contains(&SoakFault::LeaseHandover));
        for fault in ALL {
            assert_eq!(SoakFault::from_str(&fault.slug(), false), Ok(fault));
        }
        assert_eq!(SoakFault::LeaseHandover.slug(), "lease-handover");
    }

    #[test]
    fn the_cluster_faults_replace_the_single_nodes_faults_with_clusters() {
        let single = SoakFault::all(1, false);
        let clusters = SoakFault::all(1, true);
        let kafka = SoakFault::Chaos(Fault::KafkaRestart);
        assert!(single.contains(&kafka) && !clusters.contains(&kafka));
        for fault in [
            SoakFault::KafkaBrokerKill,
            SoakFault::RedisMasterKill,
            SoakFault::ReplicaLag,
        ] {
            assert!(!single.contains(&fault) && clusters.contains(&fault));
        }
        assert!(SoakFault::ReplicaLag.fits(1, false).is_err());
    }
}
