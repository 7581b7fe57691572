//! What `chaos` holds the system to, checked from the outside through the
//! public API once the run is over:
//!
//! - **lost**: an accepted post (never deleted) missing from the home
//!   timeline of someone who followed its author before it was sent (and
//!   has not unfollowed since);
//! - **phantom**: a tweet whose delete was accepted, still on a home
//!   timeline or its author's profile;
//! - **duplicates**: an id twice in one timeline, or a tweet on an author's
//!   profile that no accepted post returned (a retry that posted twice);
//! - **paging gaps**: a timeline read by small pages that differs from the
//!   same timeline read in one page, or whose ids do not strictly fall.
//!
//! Delivery is asynchronous, so the checks are repeated until they all pass
//! or a stated bound runs out; the time they took is reported. Why not check
//! during the run: while a fault lasts, a follower may legitimately not have
//! a post *yet*; what must never happen is that it stays missing.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use super::workload::{Caller, Ledger, User};

/// Page size of the paged read: small, so that every timeline spans pages.
const SMALL_PAGE: u32 = 10;
/// The largest page the API serves: what the paged read is compared with.
const ONE_PAGE: u32 = 100;

/// What the checks found at their last pass.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Findings {
    /// Accepted posts missing from at least one follower's timeline.
    pub lost: usize,
    pub phantom: usize,
    pub duplicates: usize,
    pub paging_gaps: usize,
    /// Reads the checks could not make (5xx, timeouts).
    pub unreadable: usize,
}

impl Findings {
    pub fn clean(&self) -> bool {
        *self == Self::default()
    }
}

/// Checks until clean or `bound` has passed; the findings and how long
/// it took to get clean (none if it never did).
pub async fn verify(caller: &Caller, bound: Duration) -> (Findings, Option<Duration>) {
    let start = Instant::now();
    loop {
        let ledger = caller.ledger.lock().await.clone();
        let findings = check_once(caller, &ledger).await;
        if findings.clean() {
            return (findings, Some(start.elapsed()));
        }
        if start.elapsed() >= bound {
            return (findings, None);
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

async fn check_once(caller: &Caller, ledger: &Ledger) -> Findings {
    let mut findings = Findings::default();
    let mut timelines = HashMap::new();
    for reader in &ledger.readers {
        match read_timeline(caller, reader).await {
            Some((paged, whole)) => {
                findings.duplicates += repeats(&paged);
                findings.paging_gaps += gaps(&paged, &whole);
                timelines.insert(reader.id, paged.into_iter().collect::<HashSet<_>>());
            }
            None => findings.unreadable += 1,
        }
    }
    let mut profiles = HashMap::new();
    for author in &ledger.authors {
        match read_profile(caller, author.id).await {
            Some(ids) => {
                profiles.insert(author.id, ids);
            }
            None => findings.unreadable += 1,
        }
    }
    let judged = judge(ledger, &timelines, &profiles);
    findings.lost = judged.lost;
    findings.phantom = judged.phantom;
    findings.duplicates += judged.duplicates;
    findings
}

/// The verdicts that compare what was read with the ledger: pure, so they
/// are tested without a stack.
#[derive(Debug, Default, PartialEq, Eq)]
struct Judged {
    lost: usize,
    phantom: usize,
    duplicates: usize,
}

fn judge(
    ledger: &Ledger,
    timelines: &HashMap<i64, HashSet<i64>>,
    profiles: &HashMap<i64, Vec<i64>>,
) -> Judged {
    let deleted: HashSet<i64> = ledger.deletes.iter().map(|(id, _)| *id).collect();
    let unsure: HashSet<i64> = ledger.deletes_unanswered.iter().copied().collect();
    let mut judged = Judged::default();
    for post in &ledger.posts {
        if deleted.contains(&post.id) || unsure.contains(&post.id) {
            continue;
        }
        let missing = timelines.iter().any(|(&reader, ids)| {
            let followed = ledger.follows.iter().any(|edge| {
                edge.follower == reader && edge.followee == post.author && edge.at <= post.sent
            });
            // Unfollowing takes an author's tweets off the timeline, the
            // earlier ones too: nothing is owed after an unfollow.
            let left = ledger
                .unfollows
                .iter()
                .any(|edge| edge.follower == reader && edge.followee == post.author);
            followed && !left && !ids.contains(&post.id)
        });
        judged.lost += usize::from(missing);
    }
    for id in &deleted {
        let on_timeline = timelines.values().any(|ids| ids.contains(id));
        let on_profile = profiles.values().any(|ids| ids.contains(id));
        judged.phantom += usize::from(on_timeline || on_profile);
    }
    let posted: HashSet<i64> = ledger.posts.iter().map(|post| post.id).collect();
    for (author, ids) in profiles {
        if ledger.posts_unanswered.contains(author) {
            continue; // an unanswered post may exist: not a duplicate
        }
        judged.duplicates += ids.iter().filter(|id| !posted.contains(id)).count();
    }
    judged
}

/// Ids that appear more than once.
fn repeats(ids: &[i64]) -> usize {
    let mut seen = HashSet::new();
    ids.iter().filter(|id| !seen.insert(**id)).count()
}

/// Places where the paged read disagrees with the one-page read (over the
/// one page's length), plus places where the ids fail to strictly fall.
fn gaps(paged: &[i64], whole: &[i64]) -> usize {
    let differ = paged
        .iter()
        .take(whole.len())
        .zip(whole)
        .filter(|(a, b)| a != b)
        .count()
        + whole.len().saturating_sub(paged.len());
    let unordered = paged.windows(2).filter(|pair| pair[0] <= pair[1]).count();
    differ + unordered
}

/// A home timeline read by small pages to its end, and its first
/// [`ONE_PAGE`] in one read; none if a read fails.
async fn read_timeline(caller: &Caller, reader: &User) -> Option<(Vec<i64>, Vec<i64>)> {
    let gateway = &caller.gateway;
    let whole = caller
        .attempt(gateway.home_timeline(reader.id, &reader.token, None, Some(ONE_PAGE)))
        .await
        .ok()?;
    let mut paged = Vec::new();
    let mut cursor = None;
    loop {
        let page = caller
            .attempt(gateway.home_timeline(
                reader.id,
                &reader.token,
                cursor.as_deref(),
                Some(SMALL_PAGE),
            ))
            .await
            .ok()?;
        paged.extend(page.items.iter().map(|item| item.id));
        match page.next_cursor {
            Some(next) if !page.items.is_empty() => cursor = Some(next),
            _ => break,
        }
    }
    Some((paged, whole.items.iter().map(|item| item.id).collect()))
}

/// Every tweet on an author's profile.
async fn read_profile(caller: &Caller, author: i64) -> Option<Vec<i64>> {
    let mut ids = Vec::new();
    let mut cursor = None;
    loop {
        let page = caller
            .attempt(
                caller
                    .gateway
                    .user_tweets_page(author, cursor.as_deref(), ONE_PAGE),
            )
            .await
            .ok()?;
        ids.extend(page.items.iter().map(|item| item.id));
        match page.next_cursor {
            Some(next) if !page.items.is_empty() => cursor = Some(next),
            _ => break,
        }
    }
    Some(ids)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chaos::workload::{Edge, Post};

    fn ledger() -> (Ledger, Instant) {
        let t0 = Instant::now();
        let later = |ms| t0 + Duration::from_millis(ms);
        let mut ledger = Ledger::default();
        // Reader 10 follows author 1 at t0; reader 11 only after post 101.
        ledger.follows.push(Edge {
            follower: 10,
            followee: 1,
            at: t0,
        });
        ledger.follows.push(Edge {
            follower: 11,
            followee: 1,
            at: later(150),
        });
        for (id, at) in [(100, 10), (101, 100), (102, 200)] {
            ledger.posts.push(Post {
                author: 1,
                id,
                sent: later(at),
                accepted: later(at + 5),
            });
        }
        ledger.deletes.push((102, later(300)));
        (ledger, t0)
    }

    #[test]
    fn a_post_counts_as_lost_only_for_who_followed_before_it() {
        let (ledger, _) = ledger();
        let timelines = HashMap::from([
            (10, HashSet::from([101, 100])),
            (11, HashSet::new()), // followed after 100 and 101: nothing owed
        ]);
        let profiles = HashMap::from([(1, vec![101, 100])]);
        assert_eq!(judge(&ledger, &timelines, &profiles), Judged::default());

        let timelines = HashMap::from([(10, HashSet::from([101]))]);
        assert_eq!(judge(&ledger, &timelines, &profiles).lost, 1);
    }

    #[test]
    fn after_an_unfollow_nothing_is_owed() {
        let (mut ledger, t0) = ledger();
        ledger.unfollows.push(Edge {
            follower: 10,
            followee: 1,
            at: t0 + Duration::from_millis(50),
        });
        let timelines = HashMap::from([(10, HashSet::new())]);
        assert_eq!(judge(&ledger, &timelines, &HashMap::new()).lost, 0);
    }

    #[test]
    fn deleted_tweets_still_visible_are_phantoms_and_unknown_ones_duplicates() {
        let (ledger, _) = ledger();
        let timelines = HashMap::from([(10, HashSet::from([102, 101, 100]))]);
        let profiles = HashMap::from([(1, vec![103, 101, 100])]);
        let judged = judge(&ledger, &timelines, &profiles);
        assert_eq!((judged.phantom, judged.duplicates), (1, 1));
    }

    #[test]
    fn paging_gaps_and_repeats_are_counted() {
        assert_eq!(gaps(&[5, 4, 3, 2], &[5, 4, 3, 2]), 0);
        assert_eq!(gaps(&[5, 3, 2], &[5, 4, 3, 2]), 3); // two shifted, one short
        assert_eq!(gaps(&[5, 6], &[]), 1);
        assert_eq!(repeats(&[5, 4, 4, 3]), 1);
    }
}
