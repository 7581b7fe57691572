//! How long the outbox relay waits between polls: [`POLL_EVERY`] while polls
//! find events, doubling after each that finds nothing, up to an idle bound.
//! Why the relay backs off at all is argued in [`crate::relay`] ("At rest").
//!
//! [`POLL_EVERY`]: IdlePoll::BUSY

use std::time::Duration;

pub struct IdlePoll {
    idle: Duration,
    next: Duration,
}

impl IdlePoll {
    /// The wait while events flow.
    pub const BUSY: Duration = Duration::from_millis(200);

    /// Waits at most `idle` between polls that find nothing (at least
    /// [`Self::BUSY`]).
    pub fn new(idle: Duration) -> Self {
        Self {
            idle: idle.max(Self::BUSY),
            next: Self::BUSY,
        }
    }

    /// An event was found, or written here: poll at the busy pace again.
    pub fn found(&mut self) {
        self.next = Self::BUSY;
    }

    /// The wait before the next poll; the one after grows unless
    /// [`Self::found`] is called meanwhile.
    pub fn next(&mut self) -> Duration {
        let wait = self.next;
        self.next = (self.next * 2).min(self.idle);
        wait
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn waits(poll: &mut IdlePoll, count: usize) -> Vec<u64> {
        (0..count).map(|_| poll.next().as_millis() as u64).collect()
    }

    #[test]
    fn polls_that_find_nothing_wait_twice_as_long_up_to_the_idle_bound() {
        let mut poll = IdlePoll::new(Duration::from_secs(2));
        assert_eq!(waits(&mut poll, 6), [200, 400, 800, 1600, 2000, 2000]);
    }

    #[test]
    fn an_event_brings_the_busy_pace_back() {
        let mut poll = IdlePoll::new(Duration::from_secs(2));
        waits(&mut poll, 5);
        poll.found();
        assert_eq!(waits(&mut poll, 2), [200, 400]);
    }

    #[test]
    fn an_idle_bound_below_the_busy_pace_means_no_backoff() {
        let mut poll = IdlePoll::new(Duration::ZERO);
        assert_eq!(waits(&mut poll, 3), [200, 200, 200]);
    }
}
