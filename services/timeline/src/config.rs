//! Configuration, from flags or the environment; `timeline --help` lists it all.

use std::net::SocketAddr;

use chirp_grpc::service_auth::ServiceAuthArgs;
use chirp_runtime::metrics::MetricsArgs;
use chirp_runtime::telemetry::LogArgs;
use chirp_timeline_store::TimelineStoreArgs;
use clap::Parser;

#[derive(Debug, Clone, Parser)]
#[command(
    name = "timeline",
    about = "chirp timeline service: home timelines from Redis, hydrated into tweets"
)]
pub struct Config {
    /// Address the gRPC server listens on.
    #[arg(long, env = "LISTEN_ADDR", default_value = "0.0.0.0:50053")]
    pub listen_addr: SocketAddr,
    /// Address of the tweet service, which turns timeline ids into tweets.
    #[arg(long, env = "TWEET_ADDR", default_value = "127.0.0.1:50051")]
    pub tweet_addr: String,
    /// Address of the graph service: whom a user follows, and which of them
    /// are celebrities.
    #[arg(long, env = "GRAPH_ADDR", default_value = "127.0.0.1:50052")]
    pub graph_addr: String,
    /// How long a pulled author's newest tweet ids (a celebrity's under
    /// the hybrid strategy, any followee's under pull) are reused before
    /// being fetched again. A new tweet of theirs reaches readers up to this
    /// late; in exchange an author with a million readers costs the tweet
    /// store one query per interval, not one per read.
    #[arg(long, env = "PULLED_IDS_TTL_MS", default_value_t = 2_000)]
    pub pulled_ids_ttl_ms: u64,
    /// How long a hydrated tweet is reused before it is read again from the
    /// tweet store. Tweets never change, and a deleted one leaves every
    /// timeline (the fan-out worker) and every pulled list (within
    /// PULLED_IDS_TTL_MS), after which nothing asks for it: so this only
    /// bounds how long a deleted tweet can show where a race kept its id
    /// (a rebuild running during the delete). Every hot tweet is re-read
    /// once per interval: at 5 s those re-reads were the largest cost of a
    /// cached page, at 60 s still 15 % of it (docs/BENCHMARKS.md).
    #[arg(long, env = "TWEET_CACHE_TTL_MS", default_value_t = 300_000)]
    pub tweet_cache_ttl_ms: u64,
    /// The most tweets the hydration cache holds (a few hundred bytes each).
    #[arg(long, env = "TWEET_CACHE_CAPACITY", default_value_t = 100_000)]
    pub tweet_cache_capacity: u64,
    /// The most timelines rebuilt at once by this instance; more wait for a
    /// slot. Each rebuild keeps up to 16 tweet-store queries in flight, so
    /// the default keeps 128 in flight, enough to keep two cores busy
    /// without every reader of a Redis that lost its timelines querying
    /// the stores at once.
    #[arg(long, env = "MAX_CONCURRENT_REBUILDS", default_value_t = 8)]
    pub max_concurrent_rebuilds: usize,
    /// How long a rebuild may wait for a slot, in milliseconds. Past it,
    /// it does not start and the reads waiting on it answer `Unavailable`
    /// (retryable): rebuilds asked for faster than they finish are turned
    /// away early rather than queued until they are too late to finish
    /// (see `rebuild`).
    #[arg(long, env = "REBUILD_QUEUE_MS", default_value_t = 1_000)]
    pub rebuild_queue_ms: u64,
    /// How long a rebuild may take once it has its slot, in milliseconds.
    /// Past it the reads waiting on it answer `Unavailable` (retryable) and
    /// the next read starts a new rebuild, so a rebuild hung on a backend
    /// never holds its timeline for longer.
    #[arg(long, env = "REBUILD_DEADLINE_MS", default_value_t = 10_000)]
    pub rebuild_deadline_ms: u64,
    /// The most authors whose older tweets one page past the cached
    /// timeline reads from the tweet store, one query each: the reader and
    /// the first of their followees by user id. Past the cap a page of
    /// someone following thousands would otherwise cost thousands of
    /// queries; its explanation names the authors left out.
    #[arg(long, env = "PAST_CAP_MAX_AUTHORS", default_value_t = 1_000)]
    pub past_cap_max_authors: usize,
    /// The most pulled authors (followed celebrities under hybrid, every
    /// followee under pull) whose older tweets one page reads from the
    /// tweet store, one query each, when their cached newest ids do not
    /// reach back to the page: the first by user id. A deep page of someone
    /// pulling from thousands would otherwise cost thousands of queries;
    /// the others give only what their cache holds, and the page's
    /// explanation says how many were left out.
    #[arg(long, env = "PULLED_STORE_MAX_AUTHORS", default_value_t = 1_000)]
    pub pulled_store_max_authors: usize,
    /// A first page whose timeline must be rebuilt (missing, being rebuilt,
    /// or stale after the activity window) starts or joins the rebuild in
    /// the background and is answered at once with what Redis holds,
    /// marked partial (the gateway answers 206), as Mastodon does while it
    /// regenerates a returning user's feed; off, it waits for the rebuild.
    /// See `rebuild`.
    #[arg(long, env = "ANSWER_WHILE_REBUILDING", default_value_t = false,
          action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub answer_while_rebuilding: bool,
    #[command(flatten)]
    pub store: TimelineStoreArgs,
    #[command(flatten)]
    pub metrics: MetricsArgs,
    #[command(flatten)]
    pub log: LogArgs,
    /// The credential of calls between services.
    #[command(flatten)]
    pub internal: ServiceAuthArgs,
}
