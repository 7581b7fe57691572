//! Step 1 of a page when Redis lacks the timeline (never built, expired,
//! evicted, invalidated by a follow): the timeline is written again from
//! the graph and the tweet store ([`crate::stores`]), and the page served
//! from what the rebuild read, with the pushes that landed meanwhile.
//!
//! A rebuild is not part of the read that needed it: it runs as a task of
//! its own, shared by every read of that timeline while it runs. A read
//! that is cancelled (its client hung up) then neither stops it halfway nor
//! leaves it parked, to be resumed much later with the followees of back
//! then; and a hundred readers of one missing timeline cost one rebuild.
//! The task's entry is removed when the task ends, however it ends (a
//! guard in the task, dropped on return and on panic alike), so a later
//! read never joins a finished rebuild and always starts a fresh one.
//! (Whether a rebuild may still *complete* the timeline when it ends is the
//! store's call: see `chirp_timeline_store`.)
//!
//! The work is bounded three times. At most `MAX_CONCURRENT_REBUILDS` run
//! at once across all timelines, each with up to
//! [`stores::AUTHOR_CONCURRENCY`] tweet-store queries in flight: after
//! Redis loses its timelines every reader needs a rebuild at once, and the
//! others wait for a slot instead of all querying the stores together. A
//! rebuild waits for a slot at most `REBUILD_QUEUE_MS`, then gives up with
//! `Unavailable` (retryable) and never starts. And once it has its slot it
//! has `REBUILD_DEADLINE_MS` to finish: one that hangs on a backend ends
//! there, also `Unavailable`, and the next read starts a new one.
//!
//! The wait and the work have bounds of their own because one bound for
//! both collapses under overload. When rebuilds are asked for faster than
//! the slots finish them, the queue (first come, first served) grows until
//! every rebuild reaching a slot has waited nearly the whole bound, so it
//! is cut off soon after it starts: every slot stays busy and none
//! finishes. Measured in a soak at a million users (docs/RELIABILITY.md):
//! with one 10 s bound, four reads in five failed, the most active readers'
//! among them, whose timelines were therefore never cached again. With a
//! short wait, a rebuild that gets a slot has its whole deadline, the slots
//! finish what they start, and the excess is turned away early, as a
//! retryable error, which is what a load shedder is for.
//!
//! # Answering while rebuilding
//!
//! By default a read that needs a rebuild waits for it: the reader sees a
//! complete page, late (a rebuild reads every followee's newest tweets).
//! With `ANSWER_WHILE_REBUILDING` a first page does not wait: it starts or
//! joins the rebuild ([`Rebuilds::start`]) and is answered at once with
//! what Redis holds, possibly nothing, marked partial; the reader sees a
//! fast page that may lack tweets, and the next read gets the rebuilt
//! timeline. Mastodon does this: while a returning user's home feed is
//! regenerated its API answers 206 Partial Content. Nothing is lost: the
//! rebuild is a task of its own, bounded as above, which runs to its end
//! whether or not a read still waits for it. Pages past the first (a
//! cursor) wait as before: a reader who scrolls is owed the older tweets.
//!
//! A reader who returns after the activity window (`ACTIVE_WINDOW_SECS`)
//! is recorded as active again only by the rebuild that completes their
//! timeline (`chirp_timeline_store`'s `complete_rebuild`): until then every
//! read of theirs finds them returning and joins the rebuild, and none is
//! served the timeline that missed the pushes skipped meanwhile; a rebuild
//! that fails leaves them returning.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chirp_grpc::Channel;
use chirp_proto::graph::graph_service_client::GraphServiceClient;
use chirp_proto::timeline::{ItemSource, TimelineCache};
use chirp_proto::tweet::tweet_service_client::TweetServiceClient;
use chirp_timeline_store::{HomeTimelines, Strategy};
use futures::FutureExt;
use futures::future::{BoxFuture, Shared};
use metrics::counter;
use tokio::sync::Semaphore;
use tracing::Instrument;

use crate::pushed::PushedIds;
use crate::{TimelineError, stats, stores};

type Outcome = Result<Arc<Rebuilt>, TimelineError>;
/// A running task's outcome, awaited by every caller that wants it.
type Task<T> = Shared<BoxFuture<'static, Result<Arc<T>, TimelineError>>>;

/// What a rebuild read: the ids it wrote (or would have written, had it not
/// been stale), and the authors its pages pull.
struct Rebuilt {
    /// Newest first, at most the capacity.
    pub ids: Vec<i64>,
    /// Older ids exist below the last one.
    pub cut: bool,
    /// The authors the timeline's pages pull (the celebrities the reader
    /// follows, under hybrid), as the graph said during the rebuild.
    pub pulled: Arc<[i64]>,
}

/// Cloning is cheap (handles on shared connections and caches), so each
/// rebuild task owns its copy.
#[derive(Clone)]
pub struct Rebuilds {
    graph: GraphServiceClient<Channel>,
    tweets: TweetServiceClient<Channel>,
    timelines: HomeTimelines,
    strategy: Strategy,
    running: Running<Rebuilt>,
    /// One permit per rebuild allowed to run at once.
    slots: Arc<Semaphore>,
    bounds: Bounds,
}

/// How many rebuilds may run at once, how long one may wait for a slot,
/// and how long it may take once it has one.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    pub concurrent: usize,
    pub queue: Duration,
    pub deadline: Duration,
}

impl Rebuilds {
    pub fn new(
        graph: GraphServiceClient<Channel>,
        tweets: TweetServiceClient<Channel>,
        timelines: HomeTimelines,
        strategy: Strategy,
        bounds: Bounds,
    ) -> Self {
        Self {
            graph,
            tweets,
            timelines,
            strategy,
            running: Running::default(),
            slots: Arc::new(Semaphore::new(bounds.concurrent.max(1))),
            bounds,
        }
    }

    /// The pushed page of `user_id`'s timeline, rebuilt: up to `want` of
    /// the rebuilt ids older than `before`, merged with the ids Redis holds
    /// there (the rebuilt ones, plus pushes that landed during the rebuild;
    /// or nothing, if the rebuild could not complete).
    pub async fn page(
        &self,
        user_id: i64,
        before: Option<i64>,
        want: usize,
    ) -> Result<PushedIds, TimelineError> {
        let rebuilt = self.run(user_id).await?;
        let landed = self.timelines.page(user_id, before, want).await?;
        Ok(PushedIds {
            ids: with_rebuilt(&rebuilt.ids, landed, before, want),
            cut: rebuilt.cut,
            cache: TimelineCache::Rebuilt,
            pulled_authors: Arc::clone(&rebuilt.pulled),
        })
    }

    /// Starts a rebuild of `user_id`'s timeline unless one is in progress,
    /// and returns at once: the rebuild runs to its end without a reader
    /// waiting for it (see the module doc).
    pub fn start(&self, user_id: i64) {
        drop(self.task(user_id));
    }

    /// The outcome of the rebuild of `user_id` in progress, or of the one
    /// this call starts when none is.
    async fn run(&self, user_id: i64) -> Outcome {
        let rebuild = self.task(user_id);
        let mut waiter = Waiter {
            user_id,
            waiting: true,
        };
        let outcome = rebuild.await;
        waiter.waiting = false;
        outcome
    }

    /// The task of the rebuild of `user_id` in progress, or a new one.
    fn task(&self, user_id: i64) -> Task<Rebuilt> {
        self.running.join_or_start(user_id, || {
            let work = self.clone().rebuild(user_id);
            bounded(Arc::clone(&self.slots), self.bounds, work)
        })
    }

    /// Rebuilds `user_id`'s pushed timeline: the newest ids of every author
    /// fan-out would have pushed to them (themselves and the followees who
    /// are not pulled), written to Redis with the list of the pulled ones
    /// if no follow change made them stale meanwhile.
    ///
    /// The order matters: the rebuild is registered (its token stored)
    /// *before* the graph is read, so a follow change committed after that
    /// read invalidates the token, and this rebuild cannot complete.
    #[tracing::instrument(skip(self))]
    async fn rebuild(self, user_id: i64) -> Result<Rebuilt, TimelineError> {
        counter!(stats::REBUILDS).increment(1);
        let token = self.timelines.begin_rebuild(user_id).await?;
        let pulled: Arc<[i64]> = match self.strategy {
            Strategy::Hybrid => stores::celebrities(&self.graph, user_id).await?.into(),
            Strategy::Push | Strategy::Pull => Arc::default(),
        };
        let authors = stores::pushed_to(&self.graph, user_id, &pulled).await?;
        let capacity = self.timelines.capacity();
        let per_author = stores::per_author(capacity, authors.len());
        let newest = stores::newest(&self.tweets, &authors, None, capacity, per_author).await?;
        let completed = self
            .timelines
            .complete_rebuild(user_id, &token, &newest.ids, newest.more, &pulled)
            .await?;
        if !completed {
            counter!(stats::STALE_REBUILDS).increment(1);
        }
        tracing::info!(
            authors = authors.len(),
            tweets = newest.ids.len(),
            cut = newest.more,
            completed,
            "timeline rebuilt"
        );
        Ok(Rebuilt {
            ids: newest.ids,
            cut: newest.more,
            pulled,
        })
    }
}

/// `work` once one of the `slots` is free, if one is within `bounds.queue`,
/// and within `bounds.deadline` from then.
async fn bounded<T>(
    slots: Arc<Semaphore>,
    bounds: Bounds,
    work: impl Future<Output = Result<T, TimelineError>>,
) -> Result<T, TimelineError> {
    let _slot = match slots.try_acquire() {
        Ok(slot) => slot,
        Err(_) => {
            counter!(stats::QUEUED_REBUILDS).increment(1);
            tracing::debug!("rebuild waits for a slot");
            match tokio::time::timeout(bounds.queue, slots.acquire()).await {
                Ok(Ok(slot)) => slot,
                Ok(Err(_)) => return Err(TimelineError::Internal("rebuild slots closed".into())),
                Err(_) => {
                    counter!(stats::SHED_REBUILDS).increment(1);
                    return Err(TimelineError::Unavailable(format!(
                        "no timeline rebuild slot free within {} ms; retry",
                        bounds.queue.as_millis()
                    )));
                }
            }
        }
    };
    match tokio::time::timeout(bounds.deadline, work).await {
        Ok(outcome) => outcome,
        Err(_) => {
            counter!(stats::TIMED_OUT_REBUILDS).increment(1);
            Err(TimelineError::Unavailable(format!(
                "timeline rebuild did not finish within {} ms; retry",
                bounds.deadline.as_millis()
            )))
        }
    }
}

/// The tasks running now, by key, each shared by every caller that wants
/// its outcome meanwhile. A plain mutex: held only to look up, insert or
/// remove, never across an await.
struct Running<T> {
    tasks: Arc<Mutex<HashMap<i64, Task<T>>>>,
}

impl<T> Clone for Running<T> {
    fn clone(&self) -> Self {
        Self {
            tasks: Arc::clone(&self.tasks),
        }
    }
}

impl<T> Default for Running<T> {
    fn default() -> Self {
        Self {
            tasks: Arc::default(),
        }
    }
}

impl<T: Send + Sync + 'static> Running<T> {
    /// The task of `key` running now, or a new one of `start()` as a task
    /// of its own, continuing the current span.
    fn join_or_start<F>(&self, key: i64, start: impl FnOnce() -> F) -> Task<T>
    where
        F: Future<Output = Result<T, TimelineError>> + Send + 'static,
    {
        let mut tasks = self.tasks.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(task) = tasks.get(&key) {
            counter!(stats::COALESCED_WAITS, "work" => "rebuild").increment(1);
            return task.clone();
        }
        let work = start();
        let entry = Entry {
            running: self.clone(),
            key,
        };
        // Spawned while the lock is held: the entry's removal cannot come
        // before the insertion below.
        let task = tokio::spawn(
            async move {
                let _entry = entry;
                work.await.map(Arc::new)
            }
            .in_current_span(),
        );
        let shared = async move {
            task.await.unwrap_or_else(|error| {
                Err(TimelineError::Internal(format!("rebuild stopped: {error}")))
            })
        }
        .boxed()
        .shared();
        tasks.insert(key, shared.clone());
        shared
    }

    #[cfg(test)]
    fn is_running(&self, key: i64) -> bool {
        let tasks = self.tasks.lock().unwrap_or_else(PoisonError::into_inner);
        tasks.contains_key(&key)
    }
}

/// A task's entry in [`Running`], removed when the task ends: dropped with
/// the task's future when it returns, and when it panics.
struct Entry<T> {
    running: Running<T>,
    key: i64,
}

impl<T> Drop for Entry<T> {
    fn drop(&mut self) {
        let mut tasks = self
            .running
            .tasks
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        tasks.remove(&self.key);
    }
}

/// A read waiting on a rebuild. Dropped while still waiting, the read was
/// cancelled (its client hung up): said at debug level, since the rebuild
/// goes on without it and that is the point of running it as a task.
struct Waiter {
    user_id: i64,
    waiting: bool,
}

impl Drop for Waiter {
    fn drop(&mut self) {
        if self.waiting {
            tracing::debug!(
                user_id = self.user_id,
                "read stopped waiting, the rebuild goes on"
            );
        }
    }
}

/// The rebuilt ids older than `before` and the `landed` ones, up to `want`,
/// newest first.
fn with_rebuilt(
    rebuilt: &[i64],
    landed: Vec<i64>,
    before: Option<i64>,
    want: usize,
) -> Vec<(i64, ItemSource)> {
    let rebuilt: HashSet<i64> = rebuilt
        .iter()
        .copied()
        .filter(|&id| before.is_none_or(|before| id < before))
        .collect();
    let mut ids: Vec<i64> = landed.into_iter().chain(rebuilt.iter().copied()).collect();
    ids.sort_unstable_by(|a, b| b.cmp(a));
    ids.dedup();
    ids.truncate(want);
    ids.into_iter()
        .map(|id| {
            let source = if rebuilt.contains(&id) {
                ItemSource::Rebuilt
            } else {
                ItemSource::Pushed
            };
            (id, source)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;

    /// Issue 19: a rebuild that panicked stayed registered, and every later
    /// read of that timeline joined its failed outcome until a restart.
    #[tokio::test]
    async fn a_panicked_task_leaves_no_entry_and_the_next_call_starts_afresh() {
        let running: Running<u32> = Running::default();
        let panicked = running.join_or_start(1, || async {
            if true {
                panic!("a bug in the rebuild");
            }
            Ok(0)
        });
        assert!(matches!(panicked.await, Err(TimelineError::Internal(_))));
        assert!(
            !running.is_running(1),
            "the panicked task is still registered"
        );
        let fresh = running.join_or_start(1, || async { Ok(7) });
        assert_eq!(*fresh.await.unwrap(), 7);
    }

    #[tokio::test]
    async fn callers_during_a_task_share_it() {
        let running: Running<u32> = Running::default();
        let (release, released) = tokio::sync::oneshot::channel::<()>();
        let first = running.join_or_start(1, || async move {
            released.await.ok();
            Ok(1)
        });
        let second = running.join_or_start(1, || async { Ok(2) });
        release.send(()).unwrap();
        assert_eq!((*first.await.unwrap(), *second.await.unwrap()), (1, 1));
        assert!(!running.is_running(1));
    }

    /// Issue 19: a rebuild hung on a backend held its timeline until a
    /// restart; now it ends at its deadline, as retryable.
    #[tokio::test]
    async fn work_past_its_deadline_is_unavailable() {
        let slots = Arc::new(Semaphore::new(1));
        let hung = std::future::pending::<Result<(), TimelineError>>();
        let outcome = bounded(Arc::clone(&slots), bounds(20, 20), hung).await;
        assert!(matches!(outcome, Err(TimelineError::Unavailable(_))));
        assert_eq!(slots.available_permits(), 1, "the slot is given back");
    }

    /// Issue 19: rebuilds had no global cap. Past it, work waits for a
    /// slot (and does not start) until one is free or its wait is over.
    #[tokio::test]
    async fn work_past_the_cap_waits_for_a_slot_within_its_queue_bound() {
        let slots = Arc::new(Semaphore::new(1));
        let held = Arc::clone(&slots).try_acquire_owned().unwrap();
        let started = Arc::new(AtomicBool::new(false));
        let work = |started: Arc<AtomicBool>| async move {
            started.store(true, Ordering::SeqCst);
            Ok::<_, TimelineError>(3)
        };
        let starved = bounded(
            Arc::clone(&slots),
            bounds(20, 10_000),
            work(Arc::clone(&started)),
        );
        let outcome = starved.await;
        assert!(
            matches!(&outcome, Err(TimelineError::Unavailable(message)) if message.contains("slot")),
            "{:?}",
            outcome.map(|_| ())
        );
        assert!(!started.load(Ordering::SeqCst), "the work ran past the cap");

        let queued = tokio::spawn(bounded(
            Arc::clone(&slots),
            bounds(10_000, 10_000),
            work(Arc::clone(&started)),
        ));
        drop(held);
        assert_eq!(queued.await.unwrap().unwrap(), 3);
    }

    /// Issue 19, found by the soak: the wait for a slot counted against the
    /// work's deadline, so under overload a rebuild reached its slot with
    /// almost no time left and was cut off, and no rebuild finished. Now
    /// one that waited has its whole deadline once it has its slot. (On
    /// tokio's paused clock: the waits are virtual, nothing sleeps.)
    #[tokio::test(start_paused = true)]
    async fn a_rebuild_that_waited_for_its_slot_still_has_its_whole_deadline() {
        let slots = Arc::new(Semaphore::new(1));
        let held = Arc::clone(&slots).try_acquire_owned().unwrap();
        let release = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(800)).await;
            drop(held);
        });
        // Waits 800 ms of its 1 000, then works 800 ms of its 1 000.
        let work = async {
            tokio::time::sleep(Duration::from_millis(800)).await;
            Ok::<_, TimelineError>(7)
        };
        let outcome = bounded(Arc::clone(&slots), bounds(1_000, 1_000), work).await;
        assert_eq!(outcome.unwrap(), 7);
        release.await.unwrap();
    }

    fn bounds(queue_ms: u64, deadline_ms: u64) -> Bounds {
        Bounds {
            concurrent: 1,
            queue: Duration::from_millis(queue_ms),
            deadline: Duration::from_millis(deadline_ms),
        }
    }

    #[test]
    fn a_rebuilt_page_merges_the_pushes_that_landed_meanwhile() {
        let page = with_rebuilt(&[9, 7, 5, 3], vec![8, 7, 5], Some(9), 3);
        assert_eq!(
            page,
            [
                (8, ItemSource::Pushed),
                (7, ItemSource::Rebuilt),
                (5, ItemSource::Rebuilt)
            ]
        );
        let page = with_rebuilt(&[9, 7], vec![10, 9, 7], None, 5);
        assert_eq!(page[0], (10, ItemSource::Pushed));
        assert_eq!(page.len(), 3);
    }
}
