//! What the tweet service measures, named and described in one place: the
//! steps of a post, from the request to the broker's acknowledgement (so a
//! post's cost can be split by step), and enough to see a relay that stalls
//! while posts still succeed (events waiting longer and longer, reads
//! failing, nothing relayed).

use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};

/// Histogram, seconds, label `step`: the steps of a post in this service.
/// `claim`: its idempotency key claimed with a lightweight transaction (a
/// Paxos round), only for a post that has a key; `write`: the tweet, its
/// key's row and its outbox event in one logged batch.
pub const POST_STEP: &str = "chirp_tweet_post_step_duration_seconds";
/// Histogram, seconds: from an event's write into the outbox (its id's
/// timestamp) to the broker's acknowledgement of it: the relay's and
/// Kafka's share of the delay between a post and its followers' timelines.
pub const RELAY_DELAY: &str = "chirp_outbox_relay_duration_seconds";

/// Counter: events the broker acknowledged and the relay removed.
pub const RELAYED: &str = "chirp_outbox_relayed_total";
/// Counter: shard rounds of the relay that failed in the store rather than
/// in Kafka: a read (one past Cassandra's tombstone limit among them), a
/// removal, the checkpoint. The shard is tried again after a pause.
pub const READ_FAILURES: &str = "chirp_outbox_read_failures_total";
/// Counter, label `shard`: shard rounds whose send to Kafka failed (a
/// partition without a leader, a broker out of reach, a refused event).
pub const PUBLISH_FAILURES: &str = "chirp_outbox_publish_failures_total";
/// Gauge, label `shard`: 1 while the shard's last send failed and it sends
/// one event at a time, every few seconds, until one gets through; 0 when it
/// relays, or when this instance does not hold it. An unwritable partition
/// shows as 1 on the shards whose events go to it, and on no other.
pub const STALLED: &str = "chirp_outbox_stalled";
/// Gauge, label `shard`: events seen waiting by the last read of the shard
/// (at most one batch, so a full batch means "at least").
pub const PENDING: &str = "chirp_outbox_pending_events";
/// Gauge, label `shard`: age of the oldest event seen waiting in the shard.
/// It keeps growing while the event waits, even when this instance gave the
/// shard up after a failure and nobody took it; an instance stops reporting
/// a shard another one holds. Take the `max` by shard across instances.
pub const OLDEST_AGE: &str = "chirp_outbox_oldest_pending_seconds";

/// Registers the help text of every metric above with the installed
/// recorder; without one it does nothing.
pub fn describe() {
    describe_histogram!(
        POST_STEP,
        Unit::Seconds,
        "Time of each step of a post in the tweet service, by step (claim, write)."
    );
    describe_histogram!(
        RELAY_DELAY,
        Unit::Seconds,
        "From an outbox event's write to the broker's acknowledgement."
    );
    describe_counter!(RELAYED, "Outbox events delivered to Kafka and removed.");
    describe_counter!(
        READ_FAILURES,
        "Outbox relay rounds that failed in the store (reads, tombstone limits, removals)."
    );
    describe_counter!(
        PUBLISH_FAILURES,
        "Outbox relay rounds of the shard whose send to Kafka failed."
    );
    describe_gauge!(
        STALLED,
        "1 while the outbox shard's last send to Kafka failed and it retries one event at a time."
    );
    describe_gauge!(
        PENDING,
        Unit::Count,
        "Outbox events seen waiting by the last read of the shard (at most one batch)."
    );
    describe_gauge!(
        OLDEST_AGE,
        Unit::Seconds,
        "Age of the oldest outbox event seen waiting in the shard."
    );
}
