//! A page of a home timeline, step by step: [`Home::page`] names the steps
//! in order, and each lives in a module of its own that it calls once and
//! that calls nothing back.
//!
//! 1. The pushed ids, from Redis ([`crate::pushed`]), or from the rebuild of
//!    a timeline Redis lacks ([`crate::rebuild`]); with
//!    `ANSWER_WHILE_REBUILDING`, a first page does not wait for that
//!    rebuild and is answered with what Redis holds, marked partial
//!    (`rebuild` argues the trade-off).
//! 2. The authors the page pulls ([`crate::followed`]).
//! 3. Their newest ids, through a cache ([`crate::pulled`]).
//! 4. Past the oldest id Redis keeps, the pushed authors' older ids from the
//!    stores ([`crate::stores`]).
//! 5. The merge ([`crate::merge`]): why paging across lists has no gaps.
//! 6. Hydration, ids into tweets ([`crate::hydrate`]).
//! 7. On request, how the page was made (the `explain` of the API): the
//!    strategy, whether Redis held the timeline, the pulled authors, how
//!    long each step took ([`Hops`]) and what the page left out on purpose
//!    (the bounds of steps 2, 3 and 4).
//!
//! Authentication and the cursor's signature stay in the gateway: what
//! arrives here is a user id and a tweet id to page below.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chirp_domain::paging::PageSize;
use chirp_grpc::Channel;
use chirp_proto::graph::graph_service_client::GraphServiceClient;
use chirp_proto::timeline::timeline_service_server::TimelineService;
use chirp_proto::timeline::{GetHomeTimelineRequest, HomeTimelinePage, Hop, PageExplain};
use chirp_proto::tweet::tweet_service_client::TweetServiceClient;
use chirp_timeline_store::{HomeTimelines, Strategy};
use clap::ValueEnum;
use metrics::counter;
use tonic::{Request, Response, Status};

use crate::hydrate::CachedTweets;
use crate::pulled::PulledIds;
use crate::pushed::{Found, PushedIds};
use crate::rebuild::Rebuilds;
use crate::{TimelineError, followed, merge, pushed, stats, stores};

/// Page size when the caller asks for none, and the most one page may hold.
const PAGE: PageSize = PageSize {
    default: 20,
    max: 100,
};

/// The timeline service: everything a page reads from.
pub struct Home {
    pub strategy: Strategy,
    pub timelines: HomeTimelines,
    pub graph: GraphServiceClient<Channel>,
    /// For the stores past the cap (step 4).
    pub tweets: TweetServiceClient<Channel>,
    pub rebuilds: Rebuilds,
    pub pulled: PulledIds,
    pub hydration: CachedTweets,
    /// `PAST_CAP_MAX_AUTHORS`: the most authors step 4 reads.
    pub past_cap_max_authors: usize,
    /// `PULLED_STORE_MAX_AUTHORS`: the most pulled authors step 3 reads
    /// from the tweet store.
    pub pulled_store_max_authors: usize,
    /// `ANSWER_WHILE_REBUILDING`: a first page that needs a rebuild is
    /// answered without waiting for it.
    pub answer_while_rebuilding: bool,
}

impl Home {
    /// Up to `limit` tweets of `user_id`'s home timeline older than
    /// `before`, newest first, each with where it came from, the cursor of
    /// the next page when there is one, and how the page was made if
    /// `explain`.
    async fn page(
        &self,
        user_id: i64,
        before: Option<i64>,
        limit: usize,
        explain: bool,
    ) -> Result<HomeTimelinePage, TimelineError> {
        let mut hops = Hops::start();
        // What the page leaves out on purpose, for its explanation.
        let mut notes = Vec::new();
        // Every list is asked for one more than the page: see `merge`.
        let want = limit + 1;

        // 1. The pushed ids: from Redis, or rebuilt when Redis lacks them
        // (or, on a first page, what Redis holds while the rebuild runs).
        let mut partial = false;
        let mut pushed = match self.strategy {
            Strategy::Pull => PushedIds::none(),
            Strategy::Push | Strategy::Hybrid => {
                let found = pushed::cached(&self.timelines, user_id, before, want).await?;
                hops.lap("redis page");
                match found {
                    Found::Served(cached) => cached,
                    Found::Rebuild { held } if self.answer_while_rebuilding && before.is_none() => {
                        self.rebuilds.start(user_id);
                        counter!(stats::PARTIAL_PAGES).increment(1);
                        partial = true;
                        held
                    }
                    Found::Rebuild { .. } => {
                        let rebuilt = self.rebuilds.page(user_id, before, want).await?;
                        hops.lap("rebuild");
                        rebuilt
                    }
                }
            }
        };

        // 2. The authors pulled at read time.
        let stored = Arc::clone(&pushed.pulled_authors);
        let pulled_authors =
            followed::pulled_authors(self.strategy, &self.graph, user_id, stored).await?;
        if self.strategy == Strategy::Pull {
            hops.lap("graph");
        }

        // 3. Their newest ids.
        let pulled = self
            .pulled
            .below_each(&pulled_authors, before, want, self.pulled_store_max_authors)
            .await?;
        if !pulled_authors.is_empty() {
            hops.lap("pull");
        }
        if pulled.left_out > 0 {
            notes.push(format!(
                "past their cached newest tweets, read the older tweets of {} of the {} pulled \
                 authors whose cache does not reach this far (the first by user id): the older \
                 tweets of the others are not in this page",
                pulled.read,
                pulled.read + pulled.left_out
            ));
        }

        // 4. Past the oldest id Redis keeps: the rest from the stores.
        if pushed.cut && pushed.ids.len() < want {
            let below = pushed.ids.last().map_or(before, |&(id, _)| Some(id));
            let count = want - pushed.ids.len();
            let older = stores::past_cap(
                &self.graph,
                &self.tweets,
                user_id,
                &pulled_authors,
                below,
                count,
                self.past_cap_max_authors,
            )
            .await?;
            pushed.ids.extend(older.ids);
            if older.left_out > 0 {
                notes.push(format!(
                    "past the cached timeline, read the older tweets of {} of the {} authors \
                     pushed to this reader (the reader and the first followees by user id)",
                    older.read,
                    older.read + older.left_out
                ));
            }
            hops.lap("store");
        }

        // 5. Merge.
        let page = merge::page(pushed.ids, pulled.lists, limit);
        hops.lap("merge");

        // 6. Hydrate; a deleted tweet's id hydrates to nothing.
        let tweets = self.hydration.hydrate(&page.ids).await?;
        hops.lap("hydrate");
        let sources = tweets
            .iter()
            .map(|tweet| page.source_of(tweet.tweet_id) as i32)
            .collect();

        // 7. How the page was made, when asked.
        let explain = explain.then(|| PageExplain {
            strategy: self
                .strategy
                .to_possible_value()
                .map_or_else(String::new, |value| value.get_name().to_owned()),
            cache: pushed.cache as i32,
            pulled_author_ids: pulled_authors.to_vec(),
            hops: hops.into_vec(),
            notes: pulled_past_the_bound(pulled_authors.len())
                .into_iter()
                .chain(notes)
                .collect(),
        });
        Ok(HomeTimelinePage {
            tweets,
            next_before_tweet_id: page.next_before,
            sources,
            explain,
            partial,
        })
    }
}

#[tonic::async_trait]
impl TimelineService for Home {
    #[tracing::instrument(skip_all, fields(user_id = request.get_ref().user_id))]
    async fn get_home_timeline(
        &self,
        request: Request<GetHomeTimelineRequest>,
    ) -> Result<Response<HomeTimelinePage>, Status> {
        let request = request.into_inner();
        if request.user_id <= 0 {
            return Err(TimelineError::InvalidArgument("user_id must be positive".into()).into());
        }
        if request.before_tweet_id.is_some_and(|id| id <= 0) {
            return Err(
                TimelineError::InvalidArgument("before_tweet_id must be positive".into()).into(),
            );
        }
        let limit = PAGE.resolve(request.limit);
        let page = self
            .page(
                request.user_id,
                request.before_tweet_id,
                limit,
                request.explain,
            )
            .await?;
        Ok(Response::new(page))
    }
}

/// What a page with `pulled` pulled authors leaves out: past
/// [`stores::MAX_AUTHORS_SCANNED`] the list stops (by user id), and the
/// authors after it are neither pushed nor pulled.
fn pulled_past_the_bound(pulled: usize) -> Option<String> {
    (pulled >= stores::MAX_AUTHORS_SCANNED).then(|| {
        format!(
            "pulled from the first {pulled} followed authors by user id, the most a page pulls \
             from: the tweets of any followed after them are not in this timeline"
        )
    })
}

/// The time each step of a page took, in order. Measured on every read
/// (an `Instant::now()` per step); turned into messages only when asked for.
struct Hops {
    last: Instant,
    hops: Vec<(&'static str, Duration)>,
}

impl Hops {
    fn start() -> Self {
        Self {
            last: Instant::now(),
            hops: Vec::with_capacity(7),
        }
    }

    /// Ends the step `name`, which began when the previous one ended.
    fn lap(&mut self, name: &'static str) {
        let now = Instant::now();
        self.hops.push((name, now.duration_since(self.last)));
        self.last = now;
    }

    fn into_vec(self) -> Vec<Hop> {
        self.hops
            .into_iter()
            .map(|(name, took)| Hop {
                name: name.to_owned(),
                micros: took.as_micros() as u64,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_sizes_are_bounded() {
        assert_eq!(PAGE.resolve(0), 20);
        assert_eq!(PAGE.resolve(7), 7);
        assert_eq!(PAGE.resolve(u32::MAX), 100);
    }
}
