//! What the fan-out worker measures, named and described in one place.
//!
//! Together they show the push half of the design at work: how many timeline
//! writes the events cost and in what batches, how many of those writes the
//! hybrid strategy saved by skipping celebrities, how events fared, and how
//! far the workers are behind. They are recorded where the event happens,
//! through the `metrics` facade, and cost nothing when no exporter is
//! installed (see `chirp_runtime::metrics`).

use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};

/// Counter, label `change` = `push` | `remove`: timeline entries written
/// (a push to a timeline that is not cached is not a write: see
/// [`SKIPPED_WRITES`]).
pub const TIMELINE_WRITES: &str = "chirp_fanout_timeline_writes_total";
/// Counter, label `reason` = `not_cached` | `inactive` | `lossy` |
/// `deleted`: pushes not written because the follower's timeline is not
/// cached (they have not read lately: it is rebuilt on their next read),
/// they have not read within `ACTIVE_WINDOW_SECS`, the lossy fan-out drew
/// them out (`LOSSY_FANOUT_LIMIT`), or the tweet was deleted.
pub const SKIPPED_WRITES: &str = "chirp_fanout_skipped_writes_total";
/// Counter: tweets of celebrities not pushed to their followers.
pub const CELEBRITY_SKIPS: &str = "chirp_fanout_celebrity_skips_total";
/// Counter, label `outcome` = `applied` | `skipped` | `retried` |
/// `dead_lettered`: events applied, skipped (of a deleted user), failed and
/// to be tried again (one per attempt: a rate that does not fall is an
/// event stuck on a failure), or sent to the dead-letter topic (undecodable).
pub const EVENTS: &str = "chirp_fanout_events_total";
/// Gauge, label `partition`: events of the topic the consumer group has not
/// committed yet (see `lag`). Every worker reports every partition, so take
/// the `max` by partition across workers, not the sum.
pub const CONSUMER_LAG: &str = "chirp_fanout_consumer_lag";
/// Histogram: timelines addressed per Redis pipeline, at most the follower
/// page size plus one (the author rides the first page). Its count is the
/// number of round trips to Redis; its sum equals the timeline writes plus
/// the skipped ones, but for the lossy skips (never sent to Redis).
pub const BATCH_SIZE: &str = "chirp_fanout_batch_size";
/// Seconds from a tweet's creation (the time in its Snowflake id) to the
/// write of each page of its push: the fan-out delay its followers see, one
/// sample per page, so a big audience's last pages show in the tail.
pub const DELAY: &str = "chirp_fanout_post_to_push_duration_seconds";

/// Registers the help text of every metric above with the installed
/// recorder; without one it does nothing.
pub fn describe() {
    describe_counter!(
        TIMELINE_WRITES,
        "Home-timeline entries pushed or removed, by change."
    );
    describe_counter!(
        SKIPPED_WRITES,
        "Home-timeline pushes not written, by reason: timeline not cached, reader inactive, dropped by the lossy fan-out, or tweet deleted."
    );
    describe_counter!(
        CELEBRITY_SKIPS,
        "Celebrity tweets not pushed to followers, who pull them at read time."
    );
    describe_counter!(
        EVENTS,
        "Tweet events by outcome: applied, skipped (of a deleted user), retried or dead_lettered."
    );
    describe_gauge!(
        CONSUMER_LAG,
        Unit::Count,
        "Events between the consumer group's committed offset and the partition's high watermark."
    );
    describe_histogram!(
        DELAY,
        Unit::Seconds,
        "From a tweet's creation to the write of each page of its push into followers' timelines."
    );
    describe_histogram!(
        BATCH_SIZE,
        Unit::Count,
        "Home-timeline entries written per Redis pipeline."
    );
}
