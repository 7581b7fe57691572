//! What the timeline service measures, named and described in one place.
//!
//! Each of these shows one of the read path's trade-offs at work: how many
//! authors the hybrid strategy pulls per read, how often the caches spare a
//! backend call, and how often a timeline has to be rebuilt. They are
//! recorded where the event happens, through the `metrics` facade, and cost
//! nothing when no exporter is installed (see `chirp_runtime::metrics`).

use metrics::{Unit, describe_counter, describe_histogram};

/// Histogram: authors pulled at read time for one page (celebrities under
/// `hybrid`, every followee under `pull`).
pub const PULLED_AUTHORS: &str = "chirp_timeline_pulled_authors";
/// Counter, label `result` = `hit` | `miss`: tweets looked up in the
/// hydration cache.
pub const TWEET_CACHE: &str = "chirp_timeline_tweet_cache_total";
/// Counter, label `result` = `hit` | `miss`: pulled authors looked up in the
/// cache of their newest ids (`crate::pulled::PulledIds`).
pub const PULLED_IDS_CACHE: &str = "chirp_timeline_pulled_ids_cache_total";
/// Counter: home timelines rebuilt because Redis did not hold them (never
/// built, expired, invalidated, or evicted: Redis's own `evicted_keys`
/// counts the evictions, which this service cannot tell apart).
pub const REBUILDS: &str = "chirp_timeline_rebuilds_total";
/// Counter: rebuilds that could not complete the timeline because the
/// reader's follows changed (or a newer rebuild began, or Redis dropped the
/// timeline) while they ran; the next read rebuilds again.
pub const STALE_REBUILDS: &str = "chirp_timeline_stale_rebuilds_total";
/// Counter: rebuilds that had to wait for a slot (`MAX_CONCURRENT_REBUILDS`
/// were running).
pub const QUEUED_REBUILDS: &str = "chirp_timeline_queued_rebuilds_total";
/// Counter: rebuilds that found no slot within `REBUILD_QUEUE_MS` and did
/// not start, the read answered `Unavailable`: load shed.
pub const SHED_REBUILDS: &str = "chirp_timeline_shed_rebuilds_total";
/// Counter: rebuilds ended by their deadline (`REBUILD_DEADLINE_MS`), the
/// read answered `Unavailable`.
pub const TIMED_OUT_REBUILDS: &str = "chirp_timeline_timed_out_rebuilds_total";
/// Counter: first pages answered while their timeline is rebuilt, with what
/// Redis held (`ANSWER_WHILE_REBUILDING`), marked partial.
pub const PARTIAL_PAGES: &str = "chirp_timeline_partial_pages_total";
/// Counter: deleted tweets dropped from the hydration cache, as the feed of
/// deletions reported them.
pub const FORGOTTEN_TWEETS: &str = "chirp_timeline_forgotten_tweets_total";
/// Counter, label `work` (`rebuild`, `pulled_ids`, `tweet`): callers that
/// waited on a run another caller had started instead of starting their own
/// (for `tweet`, a read that found the tweet being fetched by another read).
pub const COALESCED_WAITS: &str = "chirp_timeline_coalesced_waits_total";

/// Registers the help text of every metric above with the installed
/// recorder; without one it does nothing.
pub fn describe() {
    describe_histogram!(
        PULLED_AUTHORS,
        Unit::Count,
        "Authors pulled at read time for one page of a home timeline."
    );
    describe_counter!(
        TWEET_CACHE,
        "Tweets looked up in the hydration cache, by result (hit or miss)."
    );
    describe_counter!(
        PULLED_IDS_CACHE,
        "Pulled authors looked up in the cache of their newest ids, by result (hit or miss)."
    );
    describe_counter!(
        REBUILDS,
        "Home timelines rebuilt from the graph and the tweet store."
    );
    describe_counter!(
        STALE_REBUILDS,
        "Rebuilds not written because the reader's follows changed while they ran."
    );
    describe_counter!(
        QUEUED_REBUILDS,
        "Rebuilds that waited for a slot because the most allowed at once were running."
    );
    describe_counter!(
        SHED_REBUILDS,
        "Rebuilds that found no slot free in time and did not start; the read was answered Unavailable."
    );
    describe_counter!(
        TIMED_OUT_REBUILDS,
        "Rebuilds ended by their deadline; the read was answered Unavailable."
    );
    describe_counter!(
        PARTIAL_PAGES,
        "First pages answered without waiting for their timeline's rebuild, marked partial."
    );
    describe_counter!(
        FORGOTTEN_TWEETS,
        "Deleted tweets dropped from the hydration cache."
    );
    describe_counter!(
        COALESCED_WAITS,
        "Callers that shared another caller's run of the same work, by work."
    );
}
