//! The scale-out backends an isolated stack runs with `--clusters`: a
//! three-broker Kafka, a Redis Cluster (three masters, a replica each) and a
//! streaming replica of Postgres — what `deploy/backends.sh up kafka-cluster`,
//! `up redis-cluster` and `up pg-replica` start, moved to ports of this stack
//! — and the settings that point the services at them.
//!
//! Why the stack sets the services' settings rather than run-local.sh: the
//! script takes them from the environment already (a `REDIS_URL` given
//! outright wins over the isolated single node's), and which deployment a
//! run exercises is the run's choice. The single Kafka and Redis keep
//! running beside the clusters (backends.sh's `up` starts its four as one),
//! unused: every service is pointed away from them.

use super::stack::StackArgs;

/// The scale-out backends, in the order `up` starts them (the replica
/// copies a primary that `deploy/backends.sh up` has started already).
pub const NAMES: [&str; 3] = ["kafka-cluster", "redis-cluster", "pg-replica"];

/// Each Kafka node's controller listens this far above its broker port.
const CONTROLLER_ABOVE: u16 = 100;
/// Redis places a node's cluster bus this far above its port.
const REDIS_BUS_ABOVE: u16 = 10_000;

/// Where this stack's clusters listen.
#[derive(Debug, Clone)]
pub struct Clusters {
    /// The six Redis Cluster nodes (which are masters changes with every
    /// failover; the cluster knows).
    pub redis_ports: Vec<u16>,
    /// Broker `n` (from 1) listens on `kafka_ports[n - 1]`.
    pub kafka_ports: Vec<u16>,
    pub pg_replica_port: u16,
}

impl Clusters {
    pub fn new(args: &StackArgs) -> Self {
        Self {
            redis_ports: (0..6).map(|i| args.redis_cluster_port + i).collect(),
            kafka_ports: (0..3).map(|i| args.kafka_cluster_port + i).collect(),
            pg_replica_port: args.pg_replica_port,
        }
    }

    /// Every port the clusters take, controllers and cluster buses too: what
    /// must not be a standard one.
    pub fn ports(&self) -> Vec<u16> {
        let mut ports = vec![self.pg_replica_port];
        for &port in &self.kafka_ports {
            ports.extend([port, port + CONTROLLER_ABOVE]);
        }
        for &port in &self.redis_ports {
            ports.extend([port, port.saturating_add(REDIS_BUS_ABOVE)]);
        }
        ports
    }

    /// What deploy/backends.sh reads to place them (each names the first
    /// member's port).
    pub fn script_env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("CHIRP_REDIS_CLUSTER_PORT", self.redis_ports[0].to_string()),
            ("CHIRP_KAFKA_CLUSTER_PORT", self.kafka_ports[0].to_string()),
            (
                "CHIRP_KAFKA_CLUSTER_CONTROLLER_PORT",
                (self.kafka_ports[0] + CONTROLLER_ABOVE).to_string(),
            ),
            ("CHIRP_PG_REPLICA_PORT", self.pg_replica_port.to_string()),
        ]
    }

    /// The services' settings, as the README's scaling section gives them:
    /// the Redis Cluster (every node a seed, so a service that starts while
    /// one is down still finds the rest), the three brokers with a topic
    /// that survives one of them, and the graph's lag-tolerant reads on the
    /// replica.
    pub fn service_env(&self) -> Vec<(&'static str, String)> {
        let redis: Vec<String> = self
            .redis_ports
            .iter()
            .map(|port| format!("redis://127.0.0.1:{port}"))
            .collect();
        vec![
            ("REDIS_CLUSTER", "true".to_owned()),
            ("REDIS_URL", redis.join(",")),
            ("KAFKA_BROKERS", self.kafka_brokers()),
            ("KAFKA_REPLICATION_FACTOR", "3".to_owned()),
            ("KAFKA_MIN_INSYNC_REPLICAS", "2".to_owned()),
            (
                "DATABASE_READ_URL",
                // The database run-local.sh's DATABASE_URL names.
                format!(
                    "postgres://postgres@127.0.0.1:{}/chirp",
                    self.pg_replica_port
                ),
            ),
        ]
    }

    /// The brokers as a bootstrap list.
    pub fn kafka_brokers(&self) -> String {
        let brokers: Vec<String> = self
            .kafka_ports
            .iter()
            .map(|port| format!("127.0.0.1:{port}"))
            .collect();
        brokers.join(",")
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use crate::chaos::stack::Stack;
    use crate::{Cli, Command};

    fn soak(flags: &[&str]) -> crate::chaos::stack::StackArgs {
        let args = ["loadtest", "soak"].iter().chain(flags);
        let Command::Soak(soak) = Cli::parse_from(args).command else {
            unreachable!("parsed as soak");
        };
        soak.stack
    }

    #[test]
    fn the_clusters_are_placed_from_the_first_ports_and_never_on_the_shared_ones() {
        let clusters = super::Clusters::new(&soak(&["--clusters"]));
        assert_eq!(clusters.redis_ports, (22391..=22396).collect::<Vec<_>>());
        assert_eq!(
            clusters.kafka_brokers(),
            "127.0.0.1:22192,127.0.0.1:22193,127.0.0.1:22194"
        );
        let env = clusters.script_env();
        assert!(env.contains(&("CHIRP_KAFKA_CLUSTER_CONTROLLER_PORT", "22292".to_owned())));
        // The machine's own Redis Cluster (6391-6396 and its buses) and
        // brokers are everyone's: an isolated stack refuses them.
        for flag in ["--redis-cluster-port=6391", "--kafka-cluster-port=19092"] {
            let error = Stack::new(&soak(&["--clusters", flag])).expect_err(flag);
            assert!(
                error.to_string().contains("standard backend port"),
                "{error}"
            );
        }
        let bus = Stack::new(&soak(&["--clusters", "--redis-cluster-port=6390"]));
        assert!(bus.is_err(), "6390 puts a node on 6391");
    }
}
