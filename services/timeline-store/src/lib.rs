//! Home timelines in Redis: the precomputed half of the design.
//!
//! A home timeline is a sorted set of at most `TIMELINE_CAPACITY` tweet ids
//! (Twitter kept 800), 8 bytes each, read newest first; [`layout`] says
//! byte for byte how keys, members and markers are written, and why an
//! entry costs 12 bytes of Redis.
//!
//! Redis is a cache here, not the source of truth, and it holds the
//! timelines of *active* users only: a timeline is created by the read that
//! finds it missing (never built, expired after
//! [`TimelineStoreArgs::timeline_ttl_secs`] unread, evicted, invalidated by
//! a follow), which rebuilds it from the graph and the tweet store. A push
//! lands only in a timeline that exists, complete or being rebuilt (the
//! `RPUSHX` lesson of Twitter's timeline service): a follower who does not
//! read costs no write and no byte. Skipped pushes are counted by the
//! caller.
//!
//! Beside each timeline the rebuild stores the authors its pages pull at
//! read time (under hybrid, the celebrities the reader follows), so a
//! cached page reads both halves in one round trip and asks the graph for
//! nothing. The list needs no TTL of its own: it changes only when the
//! reader follows or unfollows someone, or a followee crosses the celebrity
//! threshold either way, and each of those drops the timeline (the graph
//! service does it), list and all, so the next read rebuilds both from the
//! graph as it is then.
//!
//! A rebuild and the pushes racing it lose nothing: the rebuild first marks
//! the timeline as being rebuilt, so pushes land in it meanwhile, and then
//! merges its result in. A rebuild that began before the reader's last
//! follow change must not complete: it read the old followees. Each rebuild
//! therefore holds a random token, stored beside the timeline; invalidating
//! a timeline deletes both, a newer rebuild replaces the token, and
//! completing checks it, all in Lua scripts ([`scripts`]) that touch one
//! user's keys only, so a Redis Cluster can run them.
//!
//! Deleted tweets leave a short-lived tombstone ([`HomeTimelines::bury`])
//! that pushes check, so an event replayed after the deletion cannot push a
//! phantom back, and an entry in a feed of recent deletions that the
//! timeline service follows to drop them from its hydration cache.
//!
//! The store runs on a single Redis node or on a Redis Cluster, chosen by
//! `REDIS_CLUSTER` ([`chirp_redis::connection`]). Every script and
//! multi-key command names one user's keys only, which share a hash tag; a
//! batch over many users (a fan-out's pushes, a follow's invalidations) is
//! one pipeline on a node and one pipeline per slot on a cluster, sent
//! concurrently: the cluster connection would refuse a pipeline whose keys
//! span slots.
//!
//! # Policies
//!
//! Which timelines a push writes is a policy, and real networks chose
//! differently; two settings make chirp behave as they do (issue 22), both
//! off by default, where the rule is the one above.
//!
//! - **Activity by last read** (`ACTIVE_WINDOW_SECS`). By default a user
//!   is active while their timeline is cached, i.e. until it expires unread
//!   after `TIMELINE_TTL_SECS`, and "inactive" costs nothing to know. With a
//!   window, a reader is recorded as active for that long by the rebuild
//!   that completes their timeline, and every read of an active reader
//!   renews the record (one more command in the read's round trip, a key of
//!   the reader's own: see [`layout`]); a push checks the record inside its
//!   script, so a follower who has not read within the window gets no write
//!   even if a timeline of theirs is still cached, and their reads, finding
//!   no record, treat the timeline as stale and rebuild it (the pushes
//!   skipped them). A read does not create the record: every read until the
//!   rebuild completes finds the reader returning, so none is served the
//!   stale timeline, and the rebuild, once open, gets the pushes. Twitter (2012) kept timelines of users active in
//!   the last 30 days; Mastodon stops pushing to users inactive for 7 days
//!   and regenerates the feed of one who returns. The window decouples
//!   "whom to push to" from "how long Redis keeps a timeline", at one more
//!   small key per active reader and one more command per read; its price
//!   is the rebuild every returning reader's first read pays.
//! - **Push to every follower** (`FANOUT_PUSH_UNCACHED`, a setting of the
//!   fan-out worker: [`HomeTimelines::opening_uncached`]). A push to a
//!   follower with no cached timeline opens one, as being rebuilt and for
//!   `TIMELINE_TTL_SECS`, instead of skipping them: DeathStarBench's fan-out
//!   writes every follower's timeline. Nothing is lost and nothing wrong is
//!   served, since the first read of such a timeline still rebuilds it and
//!   the rebuild merges the pushed entries in; what it costs is a write and
//!   a key per follower who does not read, the very cost the `RPUSHX`
//!   lesson removed. Activity still wins: with a window, a follower without
//!   an activity record is skipped either way.
//!
//! The fan-out worker writes here and the timeline service reads here; this
//! crate is the one place that knows the layout. It is a crate of its own so
//! that only they and the graph service (which drops timelines when follows
//! change) link the store, its scripts and its settings: the gateway and the
//! tweet service never see a home timeline.

pub mod layout;
mod scripts;

use std::sync::Arc;

use clap::{Args, ValueEnum};
use futures::future::try_join_all;
use redis::Value;

use chirp_redis::connection::{RedisArgs, RedisConnection};

use scripts::Scripts;

/// Which authors' tweets are pushed into home timelines when written, and
/// which are pulled at read time. The fan-out worker and the timeline service
/// must agree, so both read this one setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Strategy {
    /// Push every tweet to every follower: the cheapest reads, and a
    /// celebrity's tweet costs millions of writes.
    Push,
    /// Push nothing; each read merges the recent tweets of every followee:
    /// the cheapest writes, and a read costs one query per followee.
    Pull,
    /// Push the tweets of ordinary authors, pull those of celebrities
    /// (`CELEBRITY_THRESHOLD` in the graph service): both stay bounded.
    Hybrid,
}

impl Strategy {
    /// Whether a new tweet of this author is written into followers' timelines.
    pub fn pushes(self, author_is_celebrity: bool) -> bool {
        match self {
            Self::Push => true,
            Self::Pull => false,
            Self::Hybrid => !author_is_celebrity,
        }
    }
}

/// The settings of the services that write and read the timelines (the
/// fan-out worker and the timeline service): where they are, and how they
/// are filled and kept.
#[derive(Debug, Clone, Args)]
pub struct TimelineStoreArgs {
    #[command(flatten)]
    pub redis: RedisArgs,
    /// Entries kept per home timeline; older ones are trimmed on write
    /// (Twitter kept 800). Reading further back falls through to the stores.
    /// Keep it at most Redis's `zset-max-listpack-entries` minus 3 (the
    /// markers), or timelines leave the compact encoding (see `layout`).
    #[arg(long, env = "TIMELINE_CAPACITY", default_value_t = 800)]
    pub timeline_capacity: usize,
    /// A timeline nobody read for this long expires and is rebuilt on the
    /// next read, so Redis holds the timelines of active users only.
    #[arg(long, env = "TIMELINE_TTL_SECS", default_value_t = 7 * 24 * 3600,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub timeline_ttl_secs: u64,
    /// push, pull or hybrid: see [`Strategy`].
    #[arg(long, env = "TIMELINE_STRATEGY", value_enum, default_value_t = Strategy::Hybrid)]
    pub timeline_strategy: Strategy,
    /// When above 0, a reader is active for this many seconds after each
    /// read of their home timeline, pushes skip followers who are not, and
    /// a reader's first read after the window rebuilds their timeline (see
    /// the module doc: Twitter 2012 used 30 days, Mastodon 7). 0: a user is
    /// active while their timeline is cached.
    #[arg(long, env = "ACTIVE_WINDOW_SECS", default_value_t = 0)]
    pub active_window_secs: u64,
}

/// Handle to the home timelines. Cloning is cheap: the connection (a
/// node's or a cluster's) is multiplexed and reconnects by itself.
#[derive(Clone)]
pub struct HomeTimelines {
    redis: RedisConnection,
    key_prefix: String,
    capacity: usize,
    ttl_secs: u64,
    /// `ACTIVE_WINDOW_SECS`; 0 when off.
    active_window_secs: u64,
    /// Whether a push opens the timeline of a follower who has none
    /// ([`Self::opening_uncached`]).
    push_uncached: bool,
    scripts: Arc<Scripts>,
}

/// What a push did to one user's timeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Push {
    /// The timeline got the tweet (it was cached, or the push opened it).
    Written,
    /// Skipped: no timeline of theirs is cached.
    NotCached,
    /// Skipped: the user has not read within the activity window.
    Inactive,
}

/// What a push did to each timeline it was asked to write. Per user, so
/// that a caller can tell the author's own timeline from the followers'
/// (the fan-out's delivery record counts followers only).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Pushed {
    /// In the order of the `user_ids` pushed to.
    pub outcomes: Vec<Push>,
}

impl Pushed {
    /// Timelines whose push ended as `outcome`.
    pub fn count(&self, outcome: Push) -> usize {
        self.outcomes.iter().filter(|&&of| of == outcome).count()
    }

    /// Timelines written.
    pub fn written(&self) -> usize {
        self.count(Push::Written)
    }

    /// Timelines skipped, for whatever reason.
    pub fn skipped(&self) -> usize {
        self.outcomes.len() - self.written()
    }
}

/// The state a read found a timeline in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Not cached: a read must rebuild it.
    Missing,
    /// A rebuild began and has not completed: pushes land, reads rebuild.
    Rebuilding,
    /// Served as is. `cut`: older ids exist beyond the oldest one held, so
    /// a page that runs out continues from the stores.
    Complete { cut: bool },
}

/// One page of a timeline and the state it was read in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cached {
    pub state: State,
    /// Newest first.
    pub ids: Vec<i64>,
    /// The authors the timeline's pages pull, stored by the rebuild that
    /// completed it; empty unless the state is complete.
    pub pulled: Vec<i64>,
    /// The reader had no activity record before this read (only with
    /// `ACTIVE_WINDOW_SECS`): they return after the window, pushes skipped
    /// them meanwhile, and a complete timeline is stale.
    pub returning: bool,
}

/// The right to complete one rebuild; see the module doc.
#[derive(Debug, Clone)]
pub struct RebuildToken(String);

/// How long a rebuild may take before its token lapses and it can no
/// longer complete; also the life of a timeline that was opened for a
/// rebuild that never completed.
const REBUILD_SECS: u64 = 300;
/// How long a deleted tweet's tombstone outlives the deletion: longer than
/// Kafka keeps the events (7 days by default), so no replay of a
/// `TweetCreated` can outlive it.
pub const TOMBSTONE_SECS: u64 = 8 * 24 * 3600;
/// Deletions kept in the feed the timeline services follow: many seconds'
/// worth at any plausible delete rate.
const DELETED_FEED_LEN: usize = 10_000;

impl HomeTimelines {
    pub async fn connect(args: &TimelineStoreArgs) -> anyhow::Result<Self> {
        let mut timelines = Self::open(
            &args.redis,
            args.timeline_capacity.max(1),
            args.timeline_ttl_secs,
        )
        .await?;
        timelines.active_window_secs = args.active_window_secs;
        Ok(timelines)
    }

    /// This handle, whose pushes open the timeline of a follower who has
    /// none when `on` (`FANOUT_PUSH_UNCACHED`: see the module doc).
    pub fn opening_uncached(mut self, on: bool) -> Self {
        self.push_uncached = on;
        self
    }

    async fn open(at: &RedisArgs, capacity: usize, ttl_secs: u64) -> anyhow::Result<Self> {
        let redis = RedisConnection::connect(&at.target(), at.response_timeout()).await?;
        anyhow::ensure!(
            !at.redis_key_prefix.contains('{'),
            "REDIS_KEY_PREFIX must not contain '{{': it would become the keys' cluster hash tag"
        );
        Ok(Self {
            redis,
            key_prefix: at.redis_key_prefix.clone(),
            capacity,
            ttl_secs,
            active_window_secs: 0,
            push_uncached: false,
            scripts: Arc::new(Scripts::new()),
        })
    }

    /// Entries kept per timeline: also how far back a rebuild reaches.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    fn key(&self, user_id: i64) -> String {
        layout::timeline_key(&self.key_prefix, user_id)
    }

    /// Inserts `tweet_id` into the timeline of every user in `user_ids` that
    /// is cached (complete or being rebuilt), trimming each to capacity, in
    /// one pipelined round trip (one per slot on a cluster); the others are
    /// skipped, or their timelines opened ([`Self::opening_uncached`]), and
    /// with an activity window the users who have not read within it are
    /// skipped whatever their timeline. Adding a member
    /// that is already there changes nothing, so replaying an event is safe.
    /// Pushes never touch a cached timeline's TTL: only reads keep it alive.
    #[tracing::instrument(name = "timelines.push", skip(self, user_ids), fields(timelines = user_ids.len()))]
    pub async fn push(&self, user_ids: &[i64], tweet_id: i64) -> redis::RedisResult<Pushed> {
        if user_ids.is_empty() {
            return Ok(Pushed::default());
        }
        let member = layout::encode(tweet_id);
        let active_only = u8::from(self.active_window_secs > 0);
        let open = u8::from(self.push_uncached);
        let added = self
            .per_user(user_ids, |pipe, key, user_id| {
                let mut invocation = self.scripts.push.prepare_invoke();
                invocation
                    .key(key)
                    .key(layout::seen_key(&self.key_prefix, user_id))
                    .arg(&member[..])
                    .arg(self.capacity)
                    .arg(active_only)
                    .arg(open)
                    .arg(self.ttl_secs);
                pipe.invoke_script(&invocation);
            })
            .await?;
        let outcomes = added
            .iter()
            .map(|added| match added {
                Value::Int(1) => Push::Written,
                Value::Int(2) => Push::Inactive,
                _ => Push::NotCached,
            })
            .collect();
        Ok(Pushed { outcomes })
    }

    /// Starts a rebuild of `user_id`'s timeline: from now on pushes land in
    /// it, and only the returned token can complete it.
    #[tracing::instrument(name = "timelines.begin_rebuild", skip(self))]
    pub async fn begin_rebuild(&self, user_id: i64) -> redis::RedisResult<RebuildToken> {
        let token = format!("{:032x}", rand::random::<u128>());
        let mut invocation = self.scripts.begin_rebuild.prepare_invoke();
        invocation
            .key(self.key(user_id))
            .key(layout::rebuild_key(&self.key_prefix, user_id))
            .arg(&token)
            .arg(REBUILD_SECS);
        let mut pipe = redis::pipe();
        pipe.invoke_script(&invocation);
        let _: (i64,) = self.query_scripted(&pipe).await?;
        Ok(RebuildToken(token))
    }

    /// Completes a rebuild with `tweet_ids` (newest first, at most capacity;
    /// `cut` when older ones exist), merged with the pushes that landed
    /// meanwhile, and stores the authors its pages pull, `pulled`, beside
    /// it. Returns false, writing nothing, when the rebuild is stale: the
    /// reader's follows changed since it began, a newer rebuild started, or
    /// Redis dropped the timeline.
    #[tracing::instrument(name = "timelines.complete_rebuild", skip(self, token, tweet_ids, pulled), fields(tweets = tweet_ids.len(), pulled = pulled.len()))]
    pub async fn complete_rebuild(
        &self,
        user_id: i64,
        token: &RebuildToken,
        tweet_ids: &[i64],
        cut: bool,
        pulled: &[i64],
    ) -> redis::RedisResult<bool> {
        let mut invocation = self.scripts.complete_rebuild.prepare_invoke();
        invocation
            .key(self.key(user_id))
            .key(layout::rebuild_key(&self.key_prefix, user_id))
            .key(layout::pulled_key(&self.key_prefix, user_id))
            .key(layout::seen_key(&self.key_prefix, user_id))
            .arg(&token.0)
            .arg(self.ttl_secs)
            .arg(self.capacity)
            .arg(u8::from(cut))
            .arg(layout::encode_ids(pulled))
            .arg(self.active_window_secs);
        for &id in tweet_ids {
            invocation.arg(&layout::encode(id)[..]);
        }
        let mut pipe = redis::pipe();
        pipe.invoke_script(&invocation);
        let (completed,): (i64,) = self.query_scripted(&pipe).await?;
        Ok(completed == 1)
    }

    /// Writes a complete timeline of `tweet_ids` that pulls no one, in one
    /// go (a rebuild with nothing in between): for tests and tools that
    /// stand in for a read.
    pub async fn store_rebuilt(&self, user_id: i64, tweet_ids: &[i64]) -> redis::RedisResult<()> {
        let token = self.begin_rebuild(user_id).await?;
        let cut = tweet_ids.len() > self.capacity;
        self.complete_rebuild(user_id, &token, tweet_ids, cut, &[])
            .await?;
        Ok(())
    }

    /// Drops the timelines of `user_ids`, their pulled authors and any
    /// rebuild of them in progress, so their next read rebuilds them from
    /// the graph as it is now. One `DEL` per user: never a command across
    /// users' slots.
    #[tracing::instrument(name = "timelines.invalidate", skip(self, user_ids), fields(timelines = user_ids.len()))]
    pub async fn invalidate(&self, user_ids: &[i64]) -> redis::RedisResult<()> {
        if user_ids.is_empty() {
            return Ok(());
        }
        self.per_user(user_ids, |pipe, key, user_id| {
            pipe.del(&[
                key,
                layout::rebuild_key(&self.key_prefix, user_id),
                layout::pulled_key(&self.key_prefix, user_id),
            ])
            .ignore();
        })
        .await?;
        Ok(())
    }

    /// Removes `tweet_id` from the timeline of every user in `user_ids`.
    #[tracing::instrument(name = "timelines.remove", skip(self, user_ids), fields(timelines = user_ids.len()))]
    pub async fn remove(&self, user_ids: &[i64], tweet_id: i64) -> redis::RedisResult<()> {
        if user_ids.is_empty() {
            return Ok(());
        }
        let member = layout::encode(tweet_id);
        self.per_user(user_ids, |pipe, key, _| {
            pipe.zrem(key, &member[..]).ignore();
        })
        .await?;
        Ok(())
    }

    /// Up to `limit` tweet ids of `user_id`'s timeline, newest first, all
    /// strictly older than `before` when given, whatever state the timeline
    /// is in (a missing one reads as empty).
    #[tracing::instrument(name = "timelines.page", skip(self))]
    pub async fn page(
        &self,
        user_id: i64,
        before: Option<i64>,
        limit: usize,
    ) -> redis::RedisResult<Vec<i64>> {
        let members: Vec<Vec<u8>> = self
            .page_command(user_id, before, limit)
            .query_async(&mut self.redis.clone())
            .await?;
        Ok(decode_all(&members))
    }

    /// A page (as [`Self::page`]), the state of the timeline and its pulled
    /// authors, in one round trip that also refreshes the TTL of both keys:
    /// a read is what keeps a timeline cached. A complete timeline whose
    /// list Redis evicted reads as missing, to be rebuilt. With an activity
    /// window the same round trip refreshes an active reader's record and says
    /// whether they were ([`Cached::returning`]).
    #[tracing::instrument(name = "timelines.read", skip(self))]
    pub async fn read(
        &self,
        user_id: i64,
        before: Option<i64>,
        limit: usize,
    ) -> redis::RedisResult<Cached> {
        let key = self.key(user_id);
        let pulled_key = layout::pulled_key(&self.key_prefix, user_id);
        let ttl = self.ttl_secs as i64;
        let mut pipe = redis::pipe();
        pipe.cmd("ZRANGE")
            .arg(&key)
            .arg("-")
            .arg(layout::UP_TO_MARKERS)
            .arg("BYLEX")
            .expire(&key, ttl)
            .ignore()
            .add_command(self.page_command(user_id, before, limit))
            .get(&pulled_key)
            .expire(&pulled_key, ttl)
            .ignore();
        type Members = Vec<Vec<u8>>;
        let (markers, members, pulled, returning) = if self.active_window_secs > 0 {
            // `XX`: a read refreshes an active reader's record and creates
            // none; only the rebuild that brings a returning reader's
            // timeline up to date does (`complete_rebuild`), so every read
            // until then finds them returning, not a stale timeline served.
            pipe.cmd("SET")
                .arg(layout::seen_key(&self.key_prefix, user_id))
                .arg(1)
                .arg("EX")
                .arg(self.active_window_secs)
                .arg("XX")
                .arg("GET");
            let (markers, members, pulled, seen): (Members, Members, Option<Vec<u8>>, Value) =
                pipe.query_async(&mut self.redis.clone()).await?;
            (markers, members, pulled, seen == Value::Nil)
        } else {
            let (markers, members, pulled): (Members, Members, Option<Vec<u8>>) =
                pipe.query_async(&mut self.redis.clone()).await?;
            (markers, members, pulled, false)
        };
        let has = |marker: &[u8]| markers.iter().any(|m| m == marker);
        let (state, pulled) = match pulled {
            Some(pulled) if has(layout::COMPLETE) => (
                State::Complete {
                    cut: has(layout::CUT),
                },
                layout::decode_ids(&pulled),
            ),
            _ if has(layout::REBUILDING) => (State::Rebuilding, Vec::new()),
            _ => (State::Missing, Vec::new()),
        };
        Ok(Cached {
            state,
            ids: decode_all(&members),
            pulled,
            returning,
        })
    }

    /// Like [`Self::page`], but `None` when the timeline is not complete.
    pub async fn page_if_complete(
        &self,
        user_id: i64,
        before: Option<i64>,
        limit: usize,
    ) -> redis::RedisResult<Option<Vec<i64>>> {
        let cached = self.read(user_id, before, limit).await?;
        Ok(matches!(cached.state, State::Complete { .. }).then_some(cached.ids))
    }

    /// `ZRANGE` from just below `before` (or the newest) down to just above
    /// the markers, which the exclusive lower bound leaves out.
    fn page_command(&self, user_id: i64, before: Option<i64>, limit: usize) -> redis::Cmd {
        let newest = before.map_or_else(|| b"+".to_vec(), layout::below);
        let mut cmd = redis::cmd("ZRANGE");
        cmd.arg(self.key(user_id))
            .arg(newest)
            .arg(layout::ABOVE_MARKERS)
            .arg("BYLEX")
            .arg("REV")
            .arg("LIMIT")
            .arg(0)
            .arg(limit);
        cmd
    }

    /// Records that `tweet_id` was deleted, before it is removed anywhere:
    /// a tombstone that [`Self::push_unless_buried`] checks for
    /// [`TOMBSTONE_SECS`], and an entry in the feed of deletions that
    /// [`Self::deleted_since`] reads.
    #[tracing::instrument(name = "timelines.bury", skip(self))]
    /// The two keys lie in different slots, so they are two commands, sent
    /// together.
    pub async fn bury(&self, tweet_id: i64) -> redis::RedisResult<()> {
        let mut tombstone = redis::cmd("SET");
        tombstone
            .arg(layout::tombstone_key(&self.key_prefix, tweet_id))
            .arg(1)
            .arg("EX")
            .arg(TOMBSTONE_SECS);
        let mut feed = redis::cmd("XADD");
        feed.arg(layout::deleted_feed_key(&self.key_prefix))
            .arg("MAXLEN")
            .arg("~")
            .arg(DELETED_FEED_LEN)
            .arg("*")
            .arg("tweet_id")
            .arg(tweet_id);
        let (mut first, mut second) = (self.redis.clone(), self.redis.clone());
        let ((), _): ((), Value) = tokio::try_join!(
            tombstone.query_async(&mut first),
            feed.query_async(&mut second)
        )?;
        Ok(())
    }

    /// Whether `tweet_id` has a tombstone.
    pub async fn is_buried(&self, tweet_id: i64) -> redis::RedisResult<bool> {
        redis::cmd("EXISTS")
            .arg(layout::tombstone_key(&self.key_prefix, tweet_id))
            .query_async(&mut self.redis.clone())
            .await
    }

    /// [`Self::push`], unless `tweet_id` was deleted: a `TweetCreated`
    /// handled after its `TweetDeleted` (a replay, a rebalance) must not
    /// bring it back. The tombstone is checked before the push and again
    /// after it, and the push undone if it appeared meanwhile: a deletion
    /// writes its tombstone before removing, so either this second check
    /// sees it, or the deletion's removal comes after this push.
    pub async fn push_unless_buried(
        &self,
        user_ids: &[i64],
        tweet_id: i64,
    ) -> redis::RedisResult<Option<Pushed>> {
        if self.is_buried(tweet_id).await? {
            return Ok(None);
        }
        let pushed = self.push(user_ids, tweet_id).await?;
        if self.is_buried(tweet_id).await? {
            self.remove(user_ids, tweet_id).await?;
            return Ok(None);
        }
        Ok(Some(pushed))
    }

    /// The tweets deleted after the feed position `after` (`None`: from
    /// now on), and the position to ask from next time.
    pub async fn deleted_since(
        &self,
        after: Option<&str>,
    ) -> redis::RedisResult<(Vec<i64>, String)> {
        let feed = layout::deleted_feed_key(&self.key_prefix);
        let Some(after) = after else {
            // The newest entry's id, or 0-0 when the feed is empty.
            let newest: Vec<(String, Vec<(String, i64)>)> = redis::cmd("XREVRANGE")
                .arg(&feed)
                .arg("+")
                .arg("-")
                .arg("COUNT")
                .arg(1)
                .query_async(&mut self.redis.clone())
                .await?;
            let position = newest.into_iter().next().map_or("0-0".into(), |(id, _)| id);
            return Ok((Vec::new(), position));
        };
        let entries: Vec<(String, Vec<(String, i64)>)> = redis::cmd("XRANGE")
            .arg(&feed)
            .arg(format!("({after}"))
            .arg("+")
            .arg("COUNT")
            .arg(DELETED_FEED_LEN)
            .query_async(&mut self.redis.clone())
            .await?;
        let position = entries
            .last()
            .map_or(after.to_owned(), |(id, _)| id.clone());
        let tweet_ids = entries
            .into_iter()
            .flat_map(|(_, fields)| fields.into_iter().map(|(_, tweet_id)| tweet_id))
            .collect();
        Ok((tweet_ids, position))
    }

    /// Adds, for each user of `user_ids`, the commands of `add` (given the
    /// user's timeline key and id) to a pipeline, and runs them in as few
    /// pipelines as the deployment allows (see the module doc), all at once.
    /// Returns the answers of the commands not ignored, in the order of
    /// `user_ids`, provided `add` leaves one answer per user or none.
    async fn per_user(
        &self,
        user_ids: &[i64],
        add: impl Fn(&mut redis::Pipeline, String, i64),
    ) -> redis::RedisResult<Vec<Value>> {
        let keys: Vec<String> = user_ids.iter().map(|&user_id| self.key(user_id)).collect();
        let groups = self.redis.pipeline_groups(&keys);
        let pipes: Vec<redis::Pipeline> = groups
            .iter()
            .map(|group| {
                let mut pipe = redis::pipe();
                for &position in group {
                    add(&mut pipe, keys[position].clone(), user_ids[position]);
                }
                pipe
            })
            .collect();
        let answers: Vec<Vec<Value>> =
            try_join_all(pipes.iter().map(|pipe| self.query_scripted(pipe))).await?;
        if groups.len() == 1 {
            return Ok(answers.into_iter().next().unwrap_or_default());
        }
        let mut in_order: Vec<Option<Value>> = vec![None; user_ids.len()];
        for (group, answers) in groups.iter().zip(answers) {
            for (&position, answer) in group.iter().zip(answers) {
                in_order[position] = Some(answer);
            }
        }
        Ok(in_order.into_iter().flatten().collect())
    }

    /// Runs a pipeline of script invocations, loading the scripts first if
    /// Redis answers `NOSCRIPT` (after a restart): every script here is
    /// safe to run twice.
    async fn query_scripted<T: redis::FromRedisValue>(
        &self,
        pipe: &redis::Pipeline,
    ) -> redis::RedisResult<T> {
        let mut redis = self.redis.clone();
        match pipe.query_async(&mut redis).await {
            Err(error)
                if error.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) =>
            {
                let scripts = &self.scripts;
                for script in [
                    &scripts.push,
                    &scripts.begin_rebuild,
                    &scripts.complete_rebuild,
                ] {
                    script.load_async(&mut redis).await?;
                }
                pipe.query_async(&mut redis).await
            }
            outcome => outcome,
        }
    }
}

/// The home timelines as the graph service holds them: it drops a
/// follower's timeline when their follows change, and does nothing else, so
/// it is configured with where the timelines are and nothing of how they are
/// filled. Cloning is cheap, as for [`HomeTimelines`].
#[derive(Clone)]
pub struct TimelineDrops(HomeTimelines);

impl TimelineDrops {
    pub async fn connect(at: &RedisArgs) -> anyhow::Result<Self> {
        // A drop deletes keys and writes no entry: the capacity and the TTL
        // of entries are never read here.
        HomeTimelines::open(at, 1, 1).await.map(Self)
    }

    /// Drops timelines, as [`HomeTimelines::invalidate`].
    pub async fn invalidate(&self, user_ids: &[i64]) -> redis::RedisResult<()> {
        self.0.invalidate(user_ids).await
    }
}

fn decode_all(members: &[Vec<u8>]) -> Vec<i64> {
    members.iter().filter_map(|m| layout::decode(m)).collect()
}
