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
//! The task removes its own entry when it ends, so a later read never joins
//! a finished rebuild and always starts a fresh one. (Whether a rebuild may
//! still *complete* the timeline when it ends is the store's call: see
//! `chirp_timelines`.)

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};

use chirp_common::grpc::Channel;
use chirp_proto::graph::graph_service_client::GraphServiceClient;
use chirp_proto::timeline::{ItemSource, TimelineCache};
use chirp_proto::tweet::tweet_service_client::TweetServiceClient;
use chirp_timelines::{HomeTimelines, Strategy};
use futures::FutureExt;
use futures::future::{BoxFuture, Shared};
use metrics::counter;
use tracing::Instrument;

use crate::pushed::PushedIds;
use crate::{TimelineError, stats, stores};

type Outcome = Result<Arc<Rebuilt>, TimelineError>;
type Running = Arc<Mutex<HashMap<i64, Shared<BoxFuture<'static, Outcome>>>>>;

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
    /// A plain mutex: held only to look up, insert or remove, never across
    /// an await.
    running: Running,
}

impl Rebuilds {
    pub fn new(
        graph: GraphServiceClient<Channel>,
        tweets: TweetServiceClient<Channel>,
        timelines: HomeTimelines,
        strategy: Strategy,
    ) -> Self {
        Self {
            graph,
            tweets,
            timelines,
            strategy,
            running: Arc::default(),
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

    /// The outcome of the rebuild of `user_id` in progress, or of the one
    /// this call starts when none is.
    async fn run(&self, user_id: i64) -> Outcome {
        let rebuild = {
            let mut running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
            match running.get(&user_id) {
                Some(rebuild) => {
                    counter!(stats::COALESCED_WAITS, "work" => "rebuild").increment(1);
                    rebuild.clone()
                }
                None => {
                    let registry = Arc::clone(&self.running);
                    let work = self.clone().rebuild(user_id);
                    // Spawned while the lock is held: the task's removal of
                    // its entry cannot come before the insertion below.
                    let task = tokio::spawn(
                        async move {
                            let outcome = work.await.map(Arc::new);
                            registry
                                .lock()
                                .unwrap_or_else(PoisonError::into_inner)
                                .remove(&user_id);
                            outcome
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
                    running.insert(user_id, shared.clone());
                    shared
                }
            }
        };
        let mut waiter = Waiter {
            user_id,
            waiting: true,
        };
        let outcome = rebuild.await;
        waiter.waiting = false;
        outcome
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
    use super::*;

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
