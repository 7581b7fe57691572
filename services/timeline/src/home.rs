//! One page of a home timeline, step by step: the pushed page
//! ([`crate::pushed`], rebuilt first by [`crate::rebuild`] when Redis lacks
//! it), the pulled authors and their newest ids ([`crate::pulled`]), and the
//! merge of both ([`crate::merge`]); [`crate::service`] then hydrates it.
//!
//! Every id of a page carries where it came from, and the page records how
//! long each step took: the `explain` of the API.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chirp_common::grpc::Channel;
use chirp_proto::graph::graph_service_client::GraphServiceClient;
use chirp_proto::timeline::{Hop, ItemSource, TimelineCache};
use chirp_proto::tweet::tweet_service_client::TweetServiceClient;
use chirp_timelines::{HomeTimelines, Strategy};

use crate::TimelineError;
use crate::merge;
use crate::pulled::Pulled;
use crate::pushed::{self, Pushed};
use crate::rebuild::Rebuilds;

pub struct Home {
    strategy: Strategy,
    timelines: HomeTimelines,
    graph: GraphServiceClient<Channel>,
    tweets: TweetServiceClient<Channel>,
    rebuilds: Rebuilds,
    pulled: Pulled,
}

/// One page of ids and how it was made.
pub struct Page {
    /// Newest first.
    pub ids: Vec<i64>,
    /// Where each id came from.
    pub sources: HashMap<i64, ItemSource>,
    pub next_before: Option<i64>,
    pub cache: TimelineCache,
    pub pulled_authors: Arc<[i64]>,
    pub hops: Hops,
}

impl Home {
    pub fn new(
        strategy: Strategy,
        timelines: HomeTimelines,
        graph: GraphServiceClient<Channel>,
        tweets: TweetServiceClient<Channel>,
        rebuilds: Rebuilds,
        pulled: Pulled,
    ) -> Self {
        Self {
            strategy,
            timelines,
            graph,
            tweets,
            rebuilds,
            pulled,
        }
    }

    /// Up to `limit` ids of `user_id`'s home timeline older than `before`,
    /// newest first, and the cursor of the next page when there is one.
    pub async fn page(
        &self,
        user_id: i64,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Page, TimelineError> {
        let mut hops = Hops::start();
        // Every source is asked for one more than the page: see `merge`.
        let want = limit + 1;
        let mut pushed = match self.strategy {
            Strategy::Push | Strategy::Hybrid => {
                self.pushed(user_id, before, want, &mut hops).await?
            }
            Strategy::Pull => Pushed {
                ids: Vec::new(),
                cut: false,
                cache: TimelineCache::None,
                pulled_authors: Arc::default(),
            },
        };
        let pulled_authors = self
            .pulled
            .authors(user_id, Arc::clone(&pushed.pulled_authors))
            .await?;
        if self.strategy == Strategy::Pull {
            hops.lap("graph");
        }
        if pushed.cut && pushed.ids.len() < want {
            let below = pushed.ids.last().map_or(before, |&(id, _)| Some(id));
            let count = want - pushed.ids.len();
            let older = pushed::from_stores(
                &self.graph,
                &self.tweets,
                user_id,
                &pulled_authors,
                below,
                count,
            )
            .await?;
            pushed.ids.extend(older);
            hops.lap("store");
        }
        let mut sources: Vec<Vec<i64>> = self.pulled.ids(&pulled_authors, before, want).await?;
        if !pulled_authors.is_empty() {
            hops.lap("pull");
        }
        let mut origin: HashMap<i64, ItemSource> = pushed.ids.iter().copied().collect();
        for &id in sources.iter().flatten() {
            origin.entry(id).or_insert(ItemSource::Pulled);
        }
        sources.push(pushed.ids.iter().map(|&(id, _)| id).collect());
        let (ids, next_before) = merge::newest_first(sources, limit);
        origin.retain(|id, _| ids.contains(id));
        hops.lap("merge");
        Ok(Page {
            ids,
            sources: origin,
            next_before,
            cache: pushed.cache,
            pulled_authors,
            hops,
        })
    }

    /// The pushed page: from Redis, or from the rebuild it waits for when
    /// Redis does not hold the timeline complete.
    async fn pushed(
        &self,
        user_id: i64,
        before: Option<i64>,
        want: usize,
        hops: &mut Hops,
    ) -> Result<Pushed, TimelineError> {
        let cached = pushed::cached(&self.timelines, user_id, before, want).await?;
        hops.lap("redis page");
        if let Some(page) = cached {
            return Ok(page);
        }
        let rebuilt = self.rebuilds.run(user_id).await?;
        hops.lap("rebuild");
        pushed::rebuilt(&self.timelines, &rebuilt, user_id, before, want).await
    }
}

/// The time each step of a read took, in order. Measured on every read
/// (an `Instant::now()` per step); turned into messages only when asked for.
pub struct Hops {
    last: Instant,
    hops: Vec<(&'static str, Duration)>,
}

impl Hops {
    pub fn start() -> Self {
        Self {
            last: Instant::now(),
            hops: Vec::with_capacity(6),
        }
    }

    /// Ends the step `name`, which began when the previous one ended.
    pub fn lap(&mut self, name: &'static str) {
        let now = Instant::now();
        self.hops.push((name, now.duration_since(self.last)));
        self.last = now;
    }

    pub fn into_vec(self) -> Vec<Hop> {
        self.hops
            .into_iter()
            .map(|(name, took)| Hop {
                name: name.to_owned(),
                micros: took.as_micros() as u64,
            })
            .collect()
    }
}
