//! Which offset may be stored when events of one partition finish out of
//! order.
//!
//! The worker applies many events at once ([`crate::consumer`]), so a later
//! event of a partition can finish before an earlier one. Kafka remembers
//! one offset per partition, "everything before this is done", so an offset
//! may be stored only once every message received before it on its
//! partition has been applied: the applied prefix. The price is replay, not
//! loss: a crash replays the events applied above a slow one, and replays
//! are harmless (see [`crate::fanout`]).
//!
//! Messages are tracked in the order they arrived, not by offset: after a
//! rebalance hands a partition back, its messages arrive again from the
//! last commit, lower than some still tracked. Storing a lower offset after
//! a higher one only means more replay.

use std::collections::{HashMap, VecDeque};

#[derive(Debug, Default)]
pub struct Watermark {
    /// Per partition, the messages received and not yet stored, oldest
    /// first.
    partitions: HashMap<i32, VecDeque<Received>>,
    unstored: usize,
}

#[derive(Debug)]
struct Received {
    offset: i64,
    applied: bool,
}

impl Watermark {
    /// Tracks a message just received.
    pub fn received(&mut self, partition: i32, offset: i64) {
        self.partitions
            .entry(partition)
            .or_default()
            .push_back(Received {
                offset,
                applied: false,
            });
        self.unstored += 1;
    }

    /// Marks a received message applied. Returns the offset of the newest
    /// message of the partition's applied prefix, if it grew: the one to
    /// store. A message that is never applied (interrupted by shutdown)
    /// holds back every later one of its partition.
    pub fn applied(&mut self, partition: i32, offset: i64) -> Option<i64> {
        let queue = self.partitions.get_mut(&partition)?;
        let message = queue
            .iter_mut()
            .find(|message| message.offset == offset && !message.applied)?;
        message.applied = true;
        let mut newest = None;
        while queue.front().is_some_and(|message| message.applied) {
            newest = queue.pop_front().map(|message| message.offset);
            self.unstored -= 1;
        }
        newest
    }

    /// Messages received and not yet stored, in flight or waiting behind
    /// one that is.
    pub fn unstored(&self) -> usize {
        self.unstored
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_offset_is_stored_only_once_everything_before_it_was_applied() {
        let mut watermark = Watermark::default();
        for offset in 10..14 {
            watermark.received(0, offset);
        }
        assert_eq!(watermark.applied(0, 12), None);
        assert_eq!(watermark.applied(0, 11), None);
        assert_eq!(watermark.applied(0, 10), Some(12));
        assert_eq!(watermark.unstored(), 1);
        assert_eq!(watermark.applied(0, 13), Some(13));
        assert_eq!(watermark.unstored(), 0);
    }

    #[test]
    fn partitions_do_not_wait_for_each_other() {
        let mut watermark = Watermark::default();
        watermark.received(0, 5);
        watermark.received(1, 7);
        assert_eq!(watermark.applied(1, 7), Some(7));
        assert_eq!(watermark.unstored(), 1);
    }

    #[test]
    fn a_message_received_again_after_a_rebalance_is_tracked_twice() {
        let mut watermark = Watermark::default();
        watermark.received(0, 20);
        watermark.received(0, 21);
        // The partition came back from its last commit, 20, while 20 was
        // still being applied by its first delivery.
        watermark.received(0, 20);
        assert_eq!(watermark.applied(0, 21), None);
        assert_eq!(watermark.applied(0, 20), Some(21));
        assert_eq!(watermark.applied(0, 20), Some(20));
        assert_eq!(watermark.unstored(), 0);
    }

    #[test]
    fn an_unknown_message_changes_nothing() {
        let mut watermark = Watermark::default();
        watermark.received(0, 1);
        assert_eq!(watermark.applied(0, 2), None);
        assert_eq!(watermark.applied(3, 1), None);
        assert_eq!(watermark.unstored(), 1);
    }
}
