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
//!
//! Each page of a push is also counted in the tweet's delivery record
//! (`chirp_delivery`), followers pushed apart from followers skipped,
//! so that a client can watch the fan-out: one more command per page, and a
//! failed record never fails the event.
//!
//! # Lossy fan-out
//!
//! With `LOSSY_FANOUT_LIMIT` on, a follower who follows more accounts than
//! the limit receives each push with probability limit / their following
//! count: Bluesky's rule (reasonable_limit 2 000 follows, loss_factor =
//! min(reasonable_limit / follows, 1); Jaz, "When Imperfect Systems are
//! Good, Actually: Bluesky's Lossy Timelines", 2025). Someone who follows
//! 20 000 accounts cannot read a tenth of what they post anyway, and their
//! timeline is the costliest to write, since every one of those accounts
//! writes it; dropping writes to them caps what one reader costs the
//! fan-out at about `limit` accounts' worth, while everyone following fewer
//! loses nothing. The price: such a reader's timeline misses tweets at
//! random, until its next rebuild (which reads the stores, and drops
//! nothing). Whether a follower gets a tweet is decided by a hash of
//! (tweet id, follower id), never a random draw, so an event applied twice
//! drops exactly the same writes and the fan-out stays idempotent. The
//! graph returns each follower's following count with the follower page
//! when asked, which it is only while the limit is on.

use chirp_delivery::{DeliveryLog, Reach};
use chirp_domain::ids::{now_ms, timestamp_ms};
use chirp_grpc::Channel;
use chirp_proto::events::tweet_event::Kind;
use chirp_proto::events::{TweetCreated, TweetDeleted};
use chirp_proto::graph::graph_service_client::GraphServiceClient;
use chirp_proto::graph::{GetUserRequest, ListFollowsRequest};
use chirp_timeline_store::{HomeTimelines, Push, Strategy};
use metrics::{counter, histogram};

use crate::FanoutError;
use crate::stats;

/// What an event does to each timeline it reaches.
#[derive(Debug, Clone, Copy)]
enum Change {
    Push,
    Remove,
}

/// Whether the strategy pushes an author's tweets, and if not, to how many
/// followers it does not.
enum Audience {
    Pushed,
    /// A celebrity under the hybrid strategy, with this many followers.
    Celebrity {
        followers: u64,
    },
    /// The pull strategy: nobody is pushed to.
    Nobody,
}

pub struct Fanout {
    /// Cloned for each call: a tonic client is a cheap handle on one shared,
    /// lazily connected channel.
    graph: GraphServiceClient<Channel>,
    timelines: HomeTimelines,
    /// Where each tweet's progress is recorded, for `GET /tweets/{id}/delivery`.
    delivery: DeliveryLog,
    follower_page_size: u32,
    strategy: Strategy,
    /// `LOSSY_FANOUT_LIMIT`; 0 when off (see the module doc).
    lossy_limit: u32,
}

impl Fanout {
    pub fn new(
        graph: GraphServiceClient<Channel>,
        timelines: HomeTimelines,
        delivery: DeliveryLog,
        follower_page_size: u32,
        strategy: Strategy,
        lossy_limit: u32,
    ) -> Self {
        Self {
            graph,
            timelines,
            delivery,
            follower_page_size,
            strategy,
            lossy_limit,
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

    /// Whom the strategy pushes this author's tweets to. Only hybrid needs
    /// to ask the graph; the others decide without asking.
    async fn audience(&self, author_id: i64) -> Result<Audience, FanoutError> {
        let author = match self.strategy {
            Strategy::Hybrid => Some(
                self.graph
                    .clone()
                    .get_user(GetUserRequest { user_id: author_id })
                    .await?
                    .into_inner(),
            ),
            Strategy::Push | Strategy::Pull => None,
        };
        let is_celebrity = author.as_ref().is_some_and(|author| author.is_celebrity);
        Ok(match (self.strategy.pushes(is_celebrity), author) {
            (true, _) => Audience::Pushed,
            (false, Some(author)) => Audience::Celebrity {
                followers: author.follower_count.max(0) as u64,
            },
            (false, None) => Audience::Nobody,
        })
    }

    #[tracing::instrument(skip(self))]
    async fn tweet_created(&self, tweet_id: i64, author_id: i64) -> Result<(), FanoutError> {
        match self.audience(author_id).await? {
            Audience::Pushed => {
                let timelines = self
                    .change_audience(author_id, tweet_id, Change::Push)
                    .await?;
                tracing::debug!(timelines, "tweet pushed");
            }
            Audience::Celebrity { followers } => {
                // One write, so the author's own timeline holds what they wrote.
                self.push(&[author_id], 1, tweet_id, 0).await?;
                counter!(stats::CELEBRITY_SKIPS).increment(1);
                self.delivery.celebrity_skipped(tweet_id, followers).await;
                tracing::debug!("celebrity tweet pushed to its author only: followers pull it");
            }
            Audience::Nobody => {}
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
        if !matches!(self.audience(author_id).await?, Audience::Pushed) {
            self.remove(&[author_id], tweet_id).await?;
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
    /// first page. Returns how many timelines were addressed.
    ///
    /// The followers are listed as the primary has them (`consistent`): a
    /// follow committed before the tweet must be in the listing, or the
    /// tweet never reaches that follower (see the graph's `store`).
    async fn change_audience(
        &self,
        author_id: i64,
        tweet_id: i64,
        change: Change,
    ) -> Result<usize, FanoutError> {
        let mut user_ids = vec![author_id];
        // Where the followers start in `user_ids`: after the author, on the
        // first page.
        let mut followers_from = 1;
        let mut after_user_id = None;
        let mut addressed = 0;
        // Only a push drops writes; a removal reaches every follower.
        let lossy_limit = match change {
            Change::Push => self.lossy_limit,
            Change::Remove => 0,
        };
        loop {
            let page = self
                .graph
                .clone()
                .list_followers(ListFollowsRequest {
                    user_id: author_id,
                    after_user_id,
                    limit: self.follower_page_size,
                    consistent: true,
                    with_following_counts: lossy_limit > 0,
                })
                .await?
                .into_inner();
            let mut dropped = 0;
            if lossy_limit > 0 {
                for (index, &follower_id) in page.user_ids.iter().enumerate() {
                    // A graph that sent no count (older than the field)
                    // drops nothing.
                    let following = page.following_counts.get(index).copied().unwrap_or(0);
                    if delivers(lossy_limit, following, tweet_id, follower_id) {
                        user_ids.push(follower_id);
                    } else {
                        dropped += 1;
                    }
                }
                counter!(stats::SKIPPED_WRITES, "reason" => "lossy").increment(dropped);
            } else {
                user_ids.extend(page.user_ids);
            }
            match change {
                Change::Push => {
                    self.push(&user_ids, followers_from, tweet_id, dropped)
                        .await?;
                }
                Change::Remove => self.remove(&user_ids, tweet_id).await?,
            }
            addressed += user_ids.len();
            match page.next_after_user_id {
                Some(next) => after_user_id = Some(next),
                None => return Ok(addressed),
            }
            user_ids.clear();
            followers_from = 0;
        }
    }

    /// Pushes `tweet_id` into the cached timelines of `user_ids` in one Redis
    /// pipeline, unless the tweet is buried, and counts it: the timelines
    /// written and those skipped, in the metrics, and the followers among
    /// them (from `followers_from` on) in the tweet's delivery record, with
    /// the `lossy` followers of the page the lossy fan-out left out. An
    /// empty last page costs no round trip and is not a batch.
    async fn push(
        &self,
        user_ids: &[i64],
        followers_from: usize,
        tweet_id: i64,
        lossy: u64,
    ) -> Result<(), FanoutError> {
        if user_ids.is_empty() {
            if lossy > 0 {
                self.delivery.lossy_skipped(tweet_id, lossy).await;
            }
            return Ok(());
        }
        histogram!(stats::BATCH_SIZE).record(user_ids.len() as f64);
        let Some(pushed) = self
            .timelines
            .push_unless_buried(user_ids, tweet_id)
            .await?
        else {
            counter!(stats::SKIPPED_WRITES, "reason" => "deleted").increment(user_ids.len() as u64);
            return Ok(());
        };
        counter!(stats::TIMELINE_WRITES, "change" => "push").increment(pushed.written() as u64);
        counter!(stats::SKIPPED_WRITES, "reason" => "not_cached")
            .increment(pushed.count(Push::NotCached) as u64);
        let inactive = pushed.count(Push::Inactive) as u64;
        if inactive > 0 {
            counter!(stats::SKIPPED_WRITES, "reason" => "inactive").increment(inactive);
        }
        let followers = pushed.outcomes.get(followers_from..).unwrap_or_default();
        let written = followers.iter().filter(|&&of| of == Push::Written).count() as u64;
        let reach = Reach {
            pushed: written,
            skipped_inactive: followers.len() as u64 - written,
            skipped_lossy: lossy,
        };
        let now = now_ms();
        histogram!(stats::DELAY).record((now - timestamp_ms(tweet_id)).max(0) as f64 / 1000.0);
        self.delivery.pushed(tweet_id, reach, now).await;
        Ok(())
    }

    /// Removes `tweet_id` from the timelines of `user_ids` in one Redis
    /// pipeline, and counts it.
    async fn remove(&self, user_ids: &[i64], tweet_id: i64) -> Result<(), FanoutError> {
        if user_ids.is_empty() {
            return Ok(());
        }
        histogram!(stats::BATCH_SIZE).record(user_ids.len() as f64);
        self.timelines.remove(user_ids, tweet_id).await?;
        counter!(stats::TIMELINE_WRITES, "change" => "remove").increment(user_ids.len() as u64);
        Ok(())
    }
}

/// Whether a follower who follows `following` accounts gets `tweet_id`
/// under a lossy limit of `limit` (0: off): always at or below the limit,
/// above it with probability `limit / following`, by a hash of the tweet
/// and the follower, so the same pair always gets the same answer.
fn delivers(limit: u32, following: i64, tweet_id: i64, follower_id: i64) -> bool {
    if limit == 0 || following <= i64::from(limit) {
        return true;
    }
    let draw = mix(mix(tweet_id as u64) ^ follower_id as u64);
    draw % (following as u64) < u64::from(limit)
}

/// SplitMix64's finaliser: every input bit moves every output bit, and it
/// is fixed here, so every worker and every release draws alike (std's
/// hashers promise neither).
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn followers_at_or_below_the_limit_get_every_tweet() {
        for tweet_id in 1..1_000 {
            assert!(delivers(2_000, 2_000, tweet_id, 7));
            assert!(delivers(2_000, 10, tweet_id, 7));
            assert!(delivers(0, 1_000_000, tweet_id, 7), "0 is off");
        }
    }

    #[test]
    fn above_the_limit_a_follower_gets_limit_over_following_of_the_tweets() {
        // Snowflake-like ids, consecutive in time.
        let tweets = (0..20_000_i64).map(|n| 1_990_000_000_000_000_000 + n * 4_096);
        let kept = tweets.filter(|&id| delivers(2_000, 8_000, id, 42)).count();
        let share = kept as f64 / 20_000.0;
        assert!((share - 0.25).abs() < 0.02, "{share}");
    }

    #[test]
    fn the_same_tweet_and_follower_always_get_the_same_answer() {
        let draws = |follower| (1..500).map(move |id| delivers(100, 1_000, id, follower));
        assert!(draws(9).eq(draws(9)));
        assert!(!draws(9).eq(draws(10)), "followers are drawn apart");
    }
}
