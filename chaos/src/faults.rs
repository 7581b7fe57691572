//! The faults `chaos` injects, each as a real process would suffer it, and
//! the operator's way back (the project's scripts start whatever is not
//! running).
//!
//! Each fault is a signal to one process of the isolated [`Stack`]: SIGKILL
//! for a crash (nothing flushed, no goodbye to Kafka's group coordinator or
//! to a client), SIGINT for Postgres's own fast shutdown (a restart, every
//! connection cut), SIGSTOP/SIGCONT for a node that freezes (a long GC
//! pause, a stalled disk) without closing its sockets — the harder case,
//! since clients wait instead of failing fast.

use std::time::Duration;

use anyhow::ensure;

use super::stack::{Process, Stack};
use super::workload::{Caller, Cast, User};

/// How long Cassandra stays frozen.
const CASSANDRA_PAUSE: Duration = Duration::from_secs(10);
/// How long after sending the unfollow the graph service is killed: inside
/// the call (a debug build takes longer than this to commit it).
const UNFOLLOW_HEAD_START: Duration = Duration::from_millis(15);

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Fault {
    /// SIGKILL of the fan-out worker, restarted at once.
    FanoutKill,
    /// SIGKILL of the tweet service while posts stream in, restarted.
    TweetKill,
    /// SIGKILL of the Kafka broker, restarted.
    KafkaRestart,
    /// SIGKILL of Redis (no persistence), restarted empty.
    RedisRestart,
    /// SIGSTOP of Cassandra for 10 s, then SIGCONT.
    CassandraPause,
    /// Postgres shut down (fast) and started again.
    PostgresRestart,
    /// SIGKILL of the graph service during an unfollow that takes an author
    /// below the celebrity threshold, restarted; the client retries.
    GraphKillUnfollow,
}

impl Fault {
    pub const ALL: [Fault; 7] = [
        Fault::FanoutKill,
        Fault::TweetKill,
        Fault::KafkaRestart,
        Fault::RedisRestart,
        Fault::CassandraPause,
        Fault::PostgresRestart,
        Fault::GraphKillUnfollow,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::FanoutKill => "SIGKILL fan-out worker",
            Self::TweetKill => "SIGKILL tweet service",
            Self::KafkaRestart => "Kafka killed, restarted",
            Self::RedisRestart => "Redis restarted empty",
            Self::CassandraPause => "Cassandra SIGSTOP 10 s",
            Self::PostgresRestart => "Postgres restarted",
            Self::GraphKillUnfollow => "graph killed in unfollow below threshold",
        }
    }

    /// The short label of the scenario's handles.
    pub fn tag(self) -> char {
        match self {
            Self::FanoutKill => 'f',
            Self::TweetKill => 't',
            Self::KafkaRestart => 'k',
            Self::RedisRestart => 'r',
            Self::CassandraPause => 'c',
            Self::PostgresRestart => 'p',
            Self::GraphKillUnfollow => 'g',
        }
    }

    /// What the fault needs in place before the run: for the graph fault, a
    /// celebrity followed by exactly `threshold` users (every reader and
    /// some fans), who posts like the other authors.
    pub async fn prepare(
        self,
        caller: &Caller,
        cast: &mut Cast,
        threshold: usize,
    ) -> anyhow::Result<Option<Unfollow>> {
        if self != Self::GraphKillUnfollow {
            return Ok(None);
        }
        let celebrity = caller.sign_up(&format!("{}cel", cast.prefix)).await?;
        ensure!(
            cast.readers.len() < threshold,
            "{} readers would leave no room for fans below a threshold of {threshold}",
            cast.readers.len()
        );
        let mut fans = Vec::new();
        for i in 0..threshold - cast.readers.len() {
            let fan = caller.sign_up(&format!("{}fan{i}", cast.prefix)).await?;
            caller.follow(&fan, celebrity.id).await?;
            fans.push(fan);
        }
        for reader in &cast.readers {
            caller.follow(reader, celebrity.id).await?;
        }
        let followers = caller
            .gateway
            .user(celebrity.id)
            .await
            .map_err(|f| anyhow::anyhow!("profile of the celebrity: {}", f))?
            .follower_count;
        ensure!(
            followers == threshold as i64,
            "the celebrity has {followers} followers, not the threshold {threshold}"
        );
        let mut ledger = caller.ledger.lock().await;
        ledger.readers.extend(fans.iter().cloned());
        ledger.authors.push(celebrity.clone());
        drop(ledger);
        cast.authors.push(celebrity.clone());
        Ok(Some(Unfollow {
            fan: fans.swap_remove(0),
            celebrity: celebrity.id,
        }))
    }

    /// Injects the fault and takes the operator's way back; returns when the
    /// processes are back (not when the system works again: the probe
    /// measures that).
    pub async fn inject(
        self,
        stack: &Stack,
        caller: &Caller,
        unfollow: Option<&Unfollow>,
    ) -> anyhow::Result<()> {
        match self {
            Self::FanoutKill => kill_and_restart(stack, Process::Service("fanout")).await,
            Self::TweetKill => kill_and_restart(stack, Process::Service("tweet")).await,
            Self::KafkaRestart => kill_and_restart(stack, Process::Kafka).await,
            Self::RedisRestart => kill_and_restart(stack, Process::Redis).await,
            Self::CassandraPause => {
                stack.signal(Process::Cassandra, "STOP")?;
                tokio::time::sleep(CASSANDRA_PAUSE).await;
                stack.signal(Process::Cassandra, "CONT")?;
                Ok(())
            }
            Self::PostgresRestart => {
                let pid = stack.signal(Process::Postgres, "INT")?;
                stack.exited(pid).await;
                stack.up().await
            }
            Self::GraphKillUnfollow => {
                let unfollow = unfollow.expect("prepared");
                let (caller, fan, celebrity) =
                    (caller.clone(), unfollow.fan.clone(), unfollow.celebrity);
                let call = tokio::spawn(async move { caller.unfollow(&fan, celebrity).await });
                tokio::time::sleep(UNFOLLOW_HEAD_START).await;
                kill_and_restart(stack, Process::Service("graph")).await?;
                call.await?
            }
        }
    }
}

/// The graph fault's unfollow: `fan` leaves `celebrity`.
#[derive(Debug, Clone)]
pub struct Unfollow {
    pub fan: User,
    pub celebrity: i64,
}

async fn kill_and_restart(stack: &Stack, process: Process) -> anyhow::Result<()> {
    let pid = stack.signal(process, "KILL")?;
    stack.exited(pid).await;
    stack.up().await
}
