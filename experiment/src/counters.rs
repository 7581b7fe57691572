//! The fan-out worker's own counters, read around a phase of an experiment
//! once the worker has applied every event of it: what the phase cost.
//!
//! The worker runs in the experiment's process with a recorder of its own
//! (`Running::fanout_metrics`), so these counts are its alone. Waiting on
//! its applied-events counter, not on time, is what makes a phase's count
//! whole: a post's writes are all in once its event is applied.

use std::time::Duration;

use anyhow::{anyhow, ensure};
use chirp_client::Gateway;
use chirp_load::prometheus::Scrape;
use chirp_load::workload::Actor;
use tokio::time::Instant;

use crate::deployment::Running;

/// Counter, label `change`: timeline entries the fan-out worker wrote.
const TIMELINE_WRITES: &str = "chirp_fanout_timeline_writes_total";
/// Counter, label `reason`: pushes the worker skipped (the follower's
/// timeline not cached, the follower inactive, a lossy drop).
const SKIPPED_WRITES: &str = "chirp_fanout_skipped_writes_total";
/// Counter, label `outcome`: events the fan-out worker handled.
const EVENTS: &str = "chirp_fanout_events_total";
const APPLIED: [&str; 1] = ["outcome=\"applied\""];
/// The longest the fan-out worker may take to catch up with a phase.
const DRAIN_DEADLINE: Duration = Duration::from_secs(120);

/// What the worker did between two scrapes.
pub struct Delta {
    before: Scrape,
    after: Scrape,
}

impl Delta {
    /// Timeline entries pushed.
    pub fn pushed(&self) -> f64 {
        self.change(TIMELINE_WRITES, &["change=\"push\""])
    }

    /// Pushes skipped, for `reason` (`inactive`, `lossy`, …) or for any.
    pub fn skipped(&self, reason: Option<&str>) -> f64 {
        match reason {
            Some(reason) => self.change(SKIPPED_WRITES, &[&format!("reason=\"{reason}\"")]),
            None => self.change(SKIPPED_WRITES, &[]),
        }
    }

    fn change(&self, name: &str, labels: &[&str]) -> f64 {
        self.after.total(name, labels) - self.before.total(name, labels)
    }
}

/// The worker's counters since `before`, once it has applied `events` more
/// events.
pub async fn since(stack: &mut Running, before: &Scrape, events: u64) -> anyhow::Result<Delta> {
    let applied = before.total(EVENTS, &APPLIED) + events as f64;
    let after = drain(stack, applied).await?;
    Ok(Delta {
        before: before.clone(),
        after,
    })
}

/// Posts a first tweet as `author` and waits until the worker has applied
/// it: the worker has then joined its consumer group, and the next phase's
/// events are not held up by the join.
pub async fn join(
    stack: &mut Running,
    gateway: &Gateway,
    author: &Actor,
    key: &str,
) -> anyhow::Result<()> {
    gateway
        .post_tweet(&author.token, "warming up", Some(key))
        .await
        .map_err(|failure| anyhow!("post a first tweet: {}", failure))?;
    drain(stack, 1.0).await.map(drop)
}

/// Waits until the fan-out worker has applied `applied` events in all, and
/// returns its counters then.
async fn drain(stack: &mut Running, applied: f64) -> anyhow::Result<Scrape> {
    let deadline = Instant::now() + DRAIN_DEADLINE;
    loop {
        stack.check()?;
        let scrape = stack.fanout_metrics();
        let done = scrape.total(EVENTS, &APPLIED);
        if done >= applied {
            return Ok(scrape);
        }
        ensure!(
            Instant::now() < deadline,
            "the fan-out worker applied {done} of {applied} events in {DRAIN_DEADLINE:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
