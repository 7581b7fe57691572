//! What one tweet event does to the home timelines: the push half of the
//! design.
//!
//! A new tweet is written into the timeline of its author and of every
//! follower whose timeline is cached, so that reading a timeline is one
//! Redis range query. Timelines that are not cached (their users have not
//! read lately) are skipped and counted: they cost no write and no memory,
//! and are rebuilt from the stores on their next read. The followers are
//! streamed from the graph service a page at a time and each page is
//! written in one pipelined round trip: memory stays bounded by the page
//! size whether the author has ten followers or ten million. Which authors
//! are pushed at all is the [`Strategy`]'s call: under `hybrid`, celebrities
//! are skipped, since pushing to millions of timelines for every tweet costs
//! more than merging their tweets in at read time.
//!
//! A deletion first buries the tweet (a tombstone that outlives Kafka's
//! retention), then removes it. A push checks the tombstone, so a
//! `TweetCreated` handled after its `TweetDeleted` (a replay after a
//! rebalance, say) cannot bring a deleted tweet back.
//!
//! Every write is idempotent (adding a present member or removing an absent
//! one changes nothing), so an event that is applied twice, or retried after
//! failing halfway through its pages, leaves the timelines as if it had been
//! applied once.

use chirp_common::grpc::Channel;
use chirp_proto::events::tweet_event::Kind;
use chirp_proto::events::{TweetCreated, TweetDeleted};
use chirp_proto::graph::graph_service_client::GraphServiceClient;
use chirp_proto::graph::{GetUserRequest, ListFollowsRequest};
use chirp_timelines::{HomeTimelines, Strategy};
use metrics::{counter, histogram};

use crate::FanoutError;
use crate::delivery::{self, DeliveryLog};
use crate::stats;

/// What an event does to each timeline it reaches.
#[derive(Debug, Clone, Copy)]
enum Change {
    Push,
    Remove,
}

impl Change {
    /// The `change` label of the timeline-writes metric.
    fn label(self) -> &'static str {
        match self {
            Change::Push => "push",
            Change::Remove => "remove",
        }
    }
}

pub struct Fanout {
    /// Cloned for each call: a tonic client is a cheap handle on one shared,
    /// lazily connected channel.
    graph: GraphServiceClient<Channel>,
    timelines: HomeTimelines,
    follower_page_size: u32,
    strategy: Strategy,
    /// Where each tweet's progress is recorded, for `GET /tweets/{id}/delivery`.
    pub delivery: Option<DeliveryLog>,
}

impl Fanout {
    pub fn new(
        graph: GraphServiceClient<Channel>,
        timelines: HomeTimelines,
        follower_page_size: u32,
        strategy: Strategy,
    ) -> Self {
        Self {
            graph,
            timelines,
            follower_page_size,
            strategy,
            delivery: None,
        }
    }

    /// Applies one event to every timeline it concerns. On error, some pages
    /// may have been written already; applying the event again is safe.
    pub async fn apply(&self, event: Kind) -> Result<(), FanoutError> {
        match event {
            Kind::Created(TweetCreated {
                tweet_id,
                author_id,
                ..
            }) => self.tweet_created(tweet_id, author_id).await,
            Kind::Deleted(TweetDeleted {
                tweet_id,
                author_id,
            }) => self.tweet_deleted(tweet_id, author_id).await,
        }
    }

    /// Whether the strategy pushes this author's tweets. Only hybrid needs
    /// to ask the graph; the others decide without asking.
    async fn pushes(&self, author_id: i64) -> Result<bool, FanoutError> {
        let is_celebrity = match self.strategy {
            Strategy::Hybrid => {
                self.graph
                    .clone()
                    .get_user(GetUserRequest { user_id: author_id })
                    .await?
                    .into_inner()
                    .is_celebrity
            }
            Strategy::Push | Strategy::Pull => false,
        };
        Ok(self.strategy.pushes(is_celebrity))
    }

    #[tracing::instrument(skip(self))]
    async fn tweet_created(&self, tweet_id: i64, author_id: i64) -> Result<(), FanoutError> {
        if self.pushes(author_id).await? {
            let timelines = self
                .change_audience(author_id, tweet_id, Change::Push)
                .await?;
            tracing::debug!(timelines, "tweet pushed");
        } else if self.strategy == Strategy::Hybrid {
            // One write, so the author's own timeline holds what they wrote.
            self.write(Change::Push, &[author_id], tweet_id).await?;
            counter!(stats::CELEBRITY_SKIPS).increment(1);
            delivery::celebrity_skipped(self.delivery.as_ref(), tweet_id).await;
            tracing::debug!("celebrity tweet pushed to its author only: followers pull it");
        }
        Ok(())
    }

    /// Buries the tweet, then removes it wherever a push could have put it.
    /// A celebrity's tweet was pushed to its author only, so the followers
    /// are not walked: the cost of deleting it is one write, not millions.
    /// Should the author have crossed the threshold since posting, a copy
    /// left in a follower's timeline (as when that follower unfollowed in
    /// between) is dropped by the timeline service, which finds no tweet
    /// behind it.
    #[tracing::instrument(skip(self))]
    async fn tweet_deleted(&self, tweet_id: i64, author_id: i64) -> Result<(), FanoutError> {
        self.timelines.bury(tweet_id).await?;
        if !self.pushes(author_id).await? {
            self.write(Change::Remove, &[author_id], tweet_id).await?;
            tracing::debug!("celebrity tweet removed from its author's timeline");
            return Ok(());
        }
        let timelines = self
            .change_audience(author_id, tweet_id, Change::Remove)
            .await?;
        tracing::debug!(timelines, "tweet removed");
        Ok(())
    }

    /// Applies `change` to the timelines of the author and their followers,
    /// one page of followers per round trip; the author rides along with the
    /// first page. Returns how many timelines were written.
    async fn change_audience(
        &self,
        author_id: i64,
        tweet_id: i64,
        change: Change,
    ) -> Result<usize, FanoutError> {
        let mut user_ids = vec![author_id];
        let mut after_user_id = None;
        let mut written = 0;
        loop {
            let page = self
                .graph
                .clone()
                .list_followers(ListFollowsRequest {
                    user_id: author_id,
                    after_user_id,
                    limit: self.follower_page_size,
                })
                .await?
                .into_inner();
            user_ids.extend(page.user_ids);
            self.write(change, &user_ids, tweet_id).await?;
            written += user_ids.len();
            match page.next_after_user_id {
                Some(next) => after_user_id = Some(next),
                None => return Ok(written),
            }
            user_ids.clear();
        }
    }

    /// Applies `change` to the timelines of `user_ids` in one Redis
    /// pipeline, and counts it: the timelines written, and those a push
    /// skipped because they are not cached or the tweet is buried. An empty
    /// last page costs no round trip and is not a batch.
    async fn write(
        &self,
        change: Change,
        user_ids: &[i64],
        tweet_id: i64,
    ) -> Result<(), FanoutError> {
        if user_ids.is_empty() {
            return Ok(());
        }
        let entries = user_ids.len();
        let written = match change {
            Change::Push => match self
                .timelines
                .push_unless_buried(user_ids, tweet_id)
                .await?
            {
                Some(pushed) => {
                    counter!(stats::SKIPPED_WRITES, "reason" => "not_cached")
                        .increment(pushed.skipped as u64);
                    pushed.written
                }
                None => {
                    counter!(stats::SKIPPED_WRITES, "reason" => "deleted")
                        .increment(entries as u64);
                    0
                }
            },
            Change::Remove => {
                self.timelines.remove(user_ids, tweet_id).await?;
                entries
            }
        };
        delivery::written(self.delivery.as_ref(), change.label(), tweet_id, entries).await;
        counter!(stats::TIMELINE_WRITES, "change" => change.label()).increment(written as u64);
        histogram!(stats::BATCH_SIZE).record(entries as f64);
        Ok(())
    }
}
