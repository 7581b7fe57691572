//! The soak's last act when its posts were concentrated on one outbox
//! shard (`--outbox-shard`): that shard's lease handed over to the other
//! tweet instance, and a post through the shard proven to arrive after it.
//!
//! Why this is the test of defect 1 at its real size: every event the soak
//! sent through the shard left a deletion tombstone in its partition
//! (kept three hours). A relay that started a new owner at the partition's
//! head would read all of them; past Cassandra's default
//! `tombstone_failure_threshold` (100 000) that read fails and nothing of the
//! shard reaches Kafka again. A new owner that starts at the shard's saved
//! checkpoint reads only the last moments' tombstones. So: kill the owner,
//! let the survivor take the shard over, and watch one fresh post of an
//! author of that shard reach a follower's home timeline through the
//! public API. Holding the instance down past the lease's TTL is the fault
//! itself, as in [`super::faults`], not a wait for a result.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use serde::Serialize;

use crate::stack::{Process, Stack};
use crate::workload::{Caller, User};

/// The outbox's shards (the tweet service's `SHARDS`): an author's events
/// go to shard `author_id mod SHARDS`.
pub const SHARDS: i32 = 8;
/// How long the killed owner stays down: past the lease's TTL (10 s).
const DOWN: Duration = Duration::from_secs(15);
/// How long the fresh post may take to reach its follower.
const VISIBLE_WITHIN: Duration = Duration::from_secs(120);
/// Sign-ups tried to find an author of the shard (one in eight lands there).
const MAX_SIGN_UPS: usize = 200;

/// What the handover did and saw.
#[derive(Debug, Clone, Serialize)]
pub struct Handover {
    pub shard: i32,
    /// Events the soak sent through the shard: its accepted bulk posts and
    /// deletes (every bulk author is of this shard).
    pub events_through_shard: u64,
    pub owner_before: String,
    pub owner_after: Option<String>,
    /// From the restart of the stack to the fresh post on the follower's
    /// first page; `None`: not seen within the bound.
    pub visible_after_secs: Option<f64>,
}

/// Whether `user_id`'s events go to `shard`.
pub fn of_shard(user_id: i64, shard: i32) -> bool {
    user_id.rem_euclid(i64::from(SHARDS)) == i64::from(shard)
}

/// Hands `shard`'s lease over and proves a post of the shard arrives.
pub async fn hand_over(
    stack: &Stack,
    caller: &Caller,
    keyspace: &str,
    shard: i32,
    events_through_shard: u64,
    prefix: &str,
) -> anyhow::Result<Handover> {
    let (author, follower) = author_of_shard(caller, shard, prefix).await?;
    caller.follow(&follower, author.id).await?;
    let cql = SessionBuilder::new()
        .known_node(format!("127.0.0.1:{}", stack.cql_port))
        .build()
        .await
        .context("connect to the tweet store")?;
    let owner_before = owner(&cql, keyspace, shard)
        .await?
        .context("nobody holds the shard's lease")?;
    let victim = instance_of(stack, &owner_before)?;
    println!("handing shard {shard} over: killing {owner_before}");
    let pid = stack.signal(victim, "KILL")?;
    stack.exited(pid).await;
    tokio::time::sleep(DOWN).await;
    stack.up().await?;
    let restarted = Instant::now();
    let tweet = caller
        .post(&author, "after the handover", &format!("{prefix}handover"))
        .await
        .context("the post after the handover was not accepted")?;
    let visible_after_secs = visible(caller, &follower, tweet)
        .await
        .then(|| restarted.elapsed().as_secs_f64());
    Ok(Handover {
        shard,
        events_through_shard,
        owner_after: owner(&cql, keyspace, shard).await?,
        owner_before,
        visible_after_secs,
    })
}

/// A fresh author whose events go to `shard`, and a fresh follower.
async fn author_of_shard(
    caller: &Caller,
    shard: i32,
    prefix: &str,
) -> anyhow::Result<(User, User)> {
    let follower = caller.sign_up(&format!("{prefix}hf")).await?;
    for n in 0..MAX_SIGN_UPS {
        let user = caller.sign_up(&format!("{prefix}ha{n}")).await?;
        if of_shard(user.id, shard) {
            return Ok((user, follower));
        }
    }
    bail!("no author of shard {shard} in {MAX_SIGN_UPS} sign-ups")
}

/// The owner of `shard`'s lease, as the relays wrote it.
async fn owner(cql: &Session, keyspace: &str, shard: i32) -> anyhow::Result<Option<String>> {
    let result = cql
        .query_unpaged(
            format!("SELECT owner FROM {keyspace}.tweet_outbox_leases WHERE shard = ?"),
            (shard,),
        )
        .await?
        .into_rows_result()?;
    Ok(result
        .maybe_first_row::<(Option<String>,)>()?
        .and_then(|(owner,)| owner))
}

/// The tweet instance whose process wrote `owner` (`node{n}-pid{pid}-{ms}`).
fn instance_of(stack: &Stack, owner: &str) -> anyhow::Result<Process> {
    let pid: u32 = owner
        .split('-')
        .find_map(|part| part.strip_prefix("pid"))
        .and_then(|pid| pid.parse().ok())
        .with_context(|| format!("no pid in the lease owner {owner:?}"))?;
    (0..stack.replicas)
        .map(|n| Process::Replica("tweet", n))
        .find(|process| stack.pid(*process).ok() == Some(pid))
        .with_context(|| format!("no tweet instance of this stack has pid {pid}"))
}

/// Whether `tweet` shows on `reader`'s first page within the bound.
async fn visible(caller: &Caller, reader: &User, tweet: i64) -> bool {
    let deadline = Instant::now() + VISIBLE_WITHIN;
    while Instant::now() < deadline {
        let page = caller
            .gateway
            .home_timeline(reader.id, &reader.token, None, Some(20))
            .await;
        if page.is_ok_and(|page| page.items.iter().any(|item| item.id == tweet)) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_author_s_shard_is_its_id_modulo_the_shards() {
        assert!(of_shard(16, 0));
        assert!(of_shard(19, 3));
        assert!(!of_shard(19, 2));
    }
}
