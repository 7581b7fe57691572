//! A deployment's per-user keys in Redis: what they weigh, and what a user
//! who stays away long enough loses.
//!
//! Every key about one user carries the hash tag `{<user_id>}` (the timeline
//! store's layout), so a user's keys are found by their tag without naming
//! each kind: the timeline and its markers, and whatever else a setting
//! keeps per reader (the activity record of `--active-window-secs`).
//! Tombstones are tagged by tweet, not user, and are left out.

use std::collections::HashSet;

use chirp_timeline_store::layout;
use redis::aio::MultiplexedConnection;

use crate::deployment::{Deployment, StoreArgs};
use crate::policy::Policy;

/// Keys weighed per round trip.
const BATCH: usize = 500;

/// The user whose tag `key` carries, if it is a per-user key.
fn user_of(prefix: &str, key: &str) -> Option<i64> {
    let rest = key.strip_prefix(prefix)?;
    if rest.starts_with("tomb:") {
        return None;
    }
    let (_, tagged) = rest.split_once('{')?;
    let (tag, _) = tagged.split_once('}')?;
    tag.parse().ok()
}

/// Whether `key` is `user_id`'s timeline or one of its own markers.
fn is_timeline(prefix: &str, user_id: i64, key: &str) -> bool {
    [
        layout::timeline_key(prefix, user_id),
        layout::rebuild_key(prefix, user_id),
        layout::pulled_key(prefix, user_id),
    ]
    .iter()
    .any(|timeline| timeline == key)
}

/// What the deployment keeps per user in Redis.
pub struct Weight {
    /// `MEMORY USAGE … SAMPLES 0` (every element counted) summed.
    pub bytes: u64,
    /// Home timelines among them.
    pub timelines: u64,
}

/// Weighs every per-user key of `deployment`.
pub async fn weigh(deployment: &Deployment, backends: &StoreArgs) -> anyhow::Result<Weight> {
    let prefix = &deployment.redis_prefix;
    let (mut redis, keys) = deployment.keys(backends).await?;
    let keys: Vec<(i64, String)> = keys
        .into_iter()
        .filter_map(|key| Some((user_of(prefix, &key)?, key)))
        .collect();
    let mut weight = Weight {
        bytes: 0,
        timelines: 0,
    };
    for batch in keys.chunks(BATCH) {
        let mut pipe = redis::pipe();
        for (_, key) in batch {
            pipe.cmd("MEMORY")
                .arg("USAGE")
                .arg(key)
                .arg("SAMPLES")
                .arg(0);
        }
        let sizes: Vec<Option<u64>> = pipe.query_async(&mut redis).await?;
        weight.bytes += sizes.into_iter().flatten().sum::<u64>();
        weight.timelines += batch
            .iter()
            .filter(|(user, key)| *key == layout::timeline_key(prefix, *user))
            .count() as u64;
    }
    Ok(weight)
}

/// Makes `users` returning as `policy` would find them after
/// `policy::ABSENCE_SECS` away: their last read is older than any activity
/// window (the activity record is gone), and where timelines expire unread
/// sooner than that, their timeline is gone too.
pub async fn forget(
    deployment: &Deployment,
    backends: &StoreArgs,
    policy: &Policy,
    users: &HashSet<i64>,
) -> anyhow::Result<()> {
    let prefix = &deployment.redis_prefix;
    let (mut redis, keys): (MultiplexedConnection, Vec<String>) = deployment.keys(backends).await?;
    let gone: Vec<String> = keys
        .into_iter()
        .filter(|key| match user_of(prefix, key) {
            Some(user) if users.contains(&user) => {
                policy.forgets_timelines() || !is_timeline(prefix, user, key)
            }
            _ => false,
        })
        .collect();
    for batch in gone.chunks(BATCH) {
        redis::cmd("DEL").arg(batch).exec_async(&mut redis).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_users_keys_are_found_by_their_tag() {
        let prefix = "loadtest:x1:mastodon:";
        assert_eq!(user_of(prefix, "loadtest:x1:mastodon:tl:{42}"), Some(42));
        assert_eq!(
            user_of(prefix, "loadtest:x1:mastodon:tl:{42}:rebuild"),
            Some(42)
        );
        assert_eq!(user_of(prefix, "loadtest:x1:mastodon:seen:{7}"), Some(7));
        assert_eq!(user_of(prefix, "loadtest:x1:mastodon:tomb:{99}"), None);
        assert_eq!(user_of(prefix, "loadtest:x1:mastodon:deleted"), None);
        assert_eq!(user_of(prefix, "loadtest:x1:other:tl:{42}"), None);
        assert!(is_timeline(
            prefix,
            42,
            "loadtest:x1:mastodon:tl:{42}:pulled"
        ));
        assert!(!is_timeline(prefix, 42, "loadtest:x1:mastodon:seen:{42}"));
    }
}
