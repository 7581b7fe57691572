//! What the outbox relay measures, named and described in one place: enough
//! to see a relay that stalls while posts still succeed (events waiting
//! longer and longer, reads failing, nothing relayed).

use metrics::{Unit, describe_counter, describe_gauge};

/// Counter: events the broker acknowledged and the relay removed.
pub const RELAYED: &str = "chirp_outbox_relayed_total";
/// Counter: shard rounds of the relay that failed in the store rather than
/// in Kafka: a read (one past Cassandra's tombstone limit among them), a
/// removal, the checkpoint. The shard is tried again after a pause.
pub const READ_FAILURES: &str = "chirp_outbox_read_failures_total";
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
    describe_counter!(RELAYED, "Outbox events delivered to Kafka and removed.");
    describe_counter!(
        READ_FAILURES,
        "Outbox relay rounds that failed in the store (reads, tombstone limits, removals)."
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
