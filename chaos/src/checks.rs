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
//!   same timeline read in one page, or whose ids do not strictly fall;
//! - **unfollowed visible**: a post of an author still on the home timeline
//!   of someone whose last word about that author was an unfollow that has
//!   settled.
//!
//! A post is owed to a reader who followed its author before it was sent
//! and has not unfollowed since (a later unfollow takes the author's posts
//! off the timeline, the earlier ones too). A [`Window`] narrows what is
//! judged, for a check taken while traffic still flows (the soak's): the
//! profile ids it holds a ledger to, and when unfollows count as settled.
//!
//! Delivery is asynchronous, so the checks are repeated until they all pass
//! or a stated bound runs out; the time they took is reported. Why not check
//! during the run: while a fault lasts, a follower may legitimately not have
//! a post *yet*; what must never happen is that it stays missing.

use std::collections::{HashMap, HashSet};
use std::ops::Range;
use std::time::{Duration, Instant};

use super::workload::{Caller, Edge, Ledger, User};

/// Page size of the paged read: small, so that every timeline spans pages.
const SMALL_PAGE: u32 = 10;
/// The largest page the API serves: what the paged read is compared with.
const ONE_PAGE: u32 = 100;

/// What the checks found at their last pass.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Findings {
    /// Accepted posts missing from at least one follower's timeline.
    pub lost: usize,
    pub phantom: usize,
    pub duplicates: usize,
    pub paging_gaps: usize,
    /// Posts still on the timeline of a reader who unfollowed their author.
    pub unfollowed_visible: usize,
    /// Reads the checks could not make (5xx, timeouts).
    pub unreadable: usize,
}

impl Findings {
    pub fn clean(&self) -> bool {
        *self == Self::default()
    }
}

/// What one check holds the ledger to.
#[derive(Debug, Clone)]
pub struct Window {
    /// Tweets on an author's profile outside these ids are not judged: older
    /// ones are history from before the run (a seed's), newer ones may
    /// belong to a post whose answer is still on its way.
    pub profile_ids: Range<i64>,
    /// Unfollows sent before this have settled; none: at the check's start.
    pub settled: Option<Instant>,
    /// Readers whose follows change while the check reads (a reader who
    /// toggles an author): their timelines may shift between two reads, so
    /// their paging is not compared.
    pub churning: Vec<i64>,
}

impl Window {
    /// Everything: the check after a run is over.
    pub fn all() -> Self {
        Self {
            profile_ids: i64::MIN..i64::MAX,
            settled: None,
            churning: Vec::new(),
        }
    }
}

/// Checks until clean or `bound` has passed; the findings and how long
/// it took to get clean (none if it never did).
pub async fn verify(
    caller: &Caller,
    bound: Duration,
    window: &Window,
) -> (Findings, Option<Duration>) {
    let start = Instant::now();
    loop {
        let ledger = caller.ledger.lock().await.clone();
        let findings = check_once(caller, &ledger, window).await;
        if findings.clean() {
            return (findings, Some(start.elapsed()));
        }
        if start.elapsed() >= bound {
            return (findings, None);
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// One pass: every reader's timeline and every author's profile read, and
/// judged against `ledger`.
pub async fn check_once(caller: &Caller, ledger: &Ledger, window: &Window) -> Findings {
    let settled = window.settled.unwrap_or_else(Instant::now);
    // Posts newer than the window may still arrive between the two reads of
    // a timeline, and a delete may land between them: neither is a gap.
    let deleted: HashSet<i64> = ledger
        .deletes
        .iter()
        .map(|(id, _)| *id)
        .chain(ledger.deletes_unanswered.iter().copied())
        .collect();
    let stable = |ids: &[i64]| -> Vec<i64> {
        ids.iter()
            .copied()
            .filter(|id| *id < window.profile_ids.end && !deleted.contains(id))
            .collect()
    };
    let mut findings = Findings::default();
    let mut timelines = HashMap::new();
    for reader in &ledger.readers {
        match read_timeline(caller, reader).await {
            Some((paged, whole)) => {
                findings.duplicates += repeats(&paged);
                if !window.churning.contains(&reader.id) {
                    findings.paging_gaps += gaps(&stable(&paged), &stable(&whole));
                }
                timelines.insert(reader.id, paged.into_iter().collect::<HashSet<_>>());
            }
            None => findings.unreadable += 1,
        }
    }
    let mut profiles = HashMap::new();
    for author in &ledger.authors {
        match read_profile(caller, author.id).await {
            Some(ids) => {
                let judged = ids.into_iter().filter(|id| window.profile_ids.contains(id));
                profiles.insert(author.id, judged.collect());
            }
            None => findings.unreadable += 1,
        }
    }
    let judged = judge(ledger, &timelines, &profiles, settled);
    findings.lost = judged.lost;
    findings.phantom = judged.phantom;
    findings.unfollowed_visible = judged.unfollowed_visible;
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
    unfollowed_visible: usize,
}

/// Whether `reader` has followed `author` without a break since `since`.
fn followed_since(ledger: &Ledger, reader: i64, author: i64, since: Instant) -> bool {
    let pair = |edge: &&Edge| edge.follower == reader && edge.followee == author;
    ledger
        .follows
        .iter()
        .filter(pair)
        .filter(|follow| follow.at <= since)
        .any(|follow| {
            !ledger
                .unfollows
                .iter()
                .filter(pair)
                .any(|u| u.at >= follow.at)
        })
}

/// Whether `reader`'s last word about `author` is an unfollow sent before
/// `settled`.
fn left_before(ledger: &Ledger, reader: i64, author: i64, settled: Instant) -> bool {
    let pair = |edge: &&Edge| edge.follower == reader && edge.followee == author;
    let last_follow = ledger.follows.iter().filter(pair).map(|e| e.at).max();
    let last_unfollow = ledger.unfollows.iter().filter(pair).map(|e| e.at).max();
    match (last_follow, last_unfollow) {
        (_, None) => false,
        (None, Some(left)) => left < settled,
        (Some(followed), Some(left)) => left >= followed && left < settled,
    }
}

fn judge(
    ledger: &Ledger,
    timelines: &HashMap<i64, HashSet<i64>>,
    profiles: &HashMap<i64, Vec<i64>>,
    settled: Instant,
) -> Judged {
    let deleted: HashSet<i64> = ledger.deletes.iter().map(|(id, _)| *id).collect();
    let unsure: HashSet<i64> = ledger.deletes_unanswered.iter().copied().collect();
    let mut judged = Judged::default();
    for post in &ledger.posts {
        if deleted.contains(&post.id) || unsure.contains(&post.id) {
            continue;
        }
        let missing = timelines.iter().any(|(&reader, ids)| {
            !ids.contains(&post.id) && followed_since(ledger, reader, post.author, post.sent)
        });
        judged.lost += usize::from(missing);
    }
    for (&reader, ids) in timelines {
        judged.unfollowed_visible += ledger
            .posts
            .iter()
            .filter(|post| ids.contains(&post.id))
            .filter(|post| left_before(ledger, reader, post.author, settled))
            .count();
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
    use crate::workload::Post;

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
        let now = Instant::now();
        assert_eq!(
            judge(&ledger, &timelines, &profiles, now),
            Judged::default()
        );

        let timelines = HashMap::from([(10, HashSet::from([101]))]);
        assert_eq!(judge(&ledger, &timelines, &profiles, now).lost, 1);
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
        let now = Instant::now();
        assert_eq!(judge(&ledger, &timelines, &HashMap::new(), now).lost, 0);
    }

    #[test]
    fn a_refollow_owes_what_comes_after_it_and_a_settled_unfollow_hides_all() {
        let (mut ledger, t0) = ledger();
        let at = |ms| t0 + Duration::from_millis(ms);
        ledger.unfollows.push(Edge {
            follower: 10,
            followee: 1,
            at: at(50),
        });
        ledger.follows.push(Edge {
            follower: 10,
            followee: 1,
            at: at(60),
        });
        // Followed again at 60: 101 (sent at 100) is owed, 100 (at 10) is not.
        let timelines = HashMap::from([(10, HashSet::new())]);
        let judged = judge(&ledger, &timelines, &HashMap::new(), at(1_000));
        assert_eq!(judged.lost, 1);

        // Unfollowed for good at 400: once settled, 101 on the timeline is
        // a broken promise; before, it may still be on its way out.
        ledger.unfollows.push(Edge {
            follower: 10,
            followee: 1,
            at: at(400),
        });
        let timelines = HashMap::from([(10, HashSet::from([101]))]);
        let judged = judge(&ledger, &timelines, &HashMap::new(), at(1_000));
        assert_eq!((judged.lost, judged.unfollowed_visible), (0, 1));
        let judged = judge(&ledger, &timelines, &HashMap::new(), at(300));
        assert_eq!(judged.unfollowed_visible, 0);
    }

    #[test]
    fn deleted_tweets_still_visible_are_phantoms_and_unknown_ones_duplicates() {
        let (ledger, _) = ledger();
        let timelines = HashMap::from([(10, HashSet::from([102, 101, 100]))]);
        let profiles = HashMap::from([(1, vec![103, 101, 100])]);
        let judged = judge(&ledger, &timelines, &profiles, Instant::now());
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
