//! What the fan-out worker measures, named and described in one place.
//!
//! Together they show the push half of the design at work: how many timeline
//! writes the events cost, how many of those writes the hybrid strategy saved
//! by skipping celebrities, and how events fared. They are recorded where
//! the event happens, through the `metrics` facade, and cost nothing when no
//! exporter is installed (see `chirp_common::metrics`).

use metrics::describe_counter;

/// Counter, label `change` = `push` | `remove`: timeline entries written.
pub const TIMELINE_WRITES: &str = "chirp_fanout_timeline_writes_total";
/// Counter: tweets of celebrities not pushed to their followers.
pub const CELEBRITY_SKIPS: &str = "chirp_fanout_celebrity_skips_total";
/// Counter, label `outcome` = `applied` | `skipped` | `retried`: events
/// applied, given up on for good, or failed and to be tried again.
pub const EVENTS: &str = "chirp_fanout_events_total";

/// Registers the help text of every metric above with the installed
/// recorder; without one it does nothing.
pub fn describe() {
    describe_counter!(
        TIMELINE_WRITES,
        "Home-timeline entries pushed or removed, by change."
    );
    describe_counter!(
        CELEBRITY_SKIPS,
        "Celebrity tweets not pushed to followers, who pull them at read time."
    );
    describe_counter!(
        EVENTS,
        "Tweet events by outcome: applied, skipped (undecodable or of a deleted user) or retried."
    );
}
