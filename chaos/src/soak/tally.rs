//! What the soak's clients saw, interval by interval: throughput, latency,
//! errors, and the fan-out delay of watched posts by their author's
//! follower count.
//!
//! Why intervals and not one summary: a soak asks whether anything drifts
//! over an hour, which one histogram of the whole run hides. Each interval
//! keeps its own HDR histograms; an event is filed under the interval of
//! its *intended* start (open loop: a stall counts against the moment it
//! delayed, not the moment it ended).

use std::sync::Mutex;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::Serialize;

/// Follower-count buckets of fan-out delay, as Bluesky reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Bucket {
    /// 1 to 9 followers.
    Few,
    /// 10 to 999.
    Hundreds,
    /// 1 000 to 9 999 (below the celebrity threshold).
    Thousands,
    /// At or above the celebrity threshold: pulled on read, not pushed.
    Celebrity,
}

impl Bucket {
    pub const ALL: [Bucket; 4] = [
        Bucket::Few,
        Bucket::Hundreds,
        Bucket::Thousands,
        Bucket::Celebrity,
    ];

    pub fn of(followers: i64, threshold: i64) -> Self {
        match followers {
            n if n >= threshold => Self::Celebrity,
            n if n >= 1_000 => Self::Thousands,
            n if n >= 10 => Self::Hundreds,
            _ => Self::Few,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Few => "1-10",
            Self::Hundreds => "10-1000",
            Self::Thousands => "1000-10000",
            Self::Celebrity => "celebrity",
        }
    }
}

/// Longest latency a histogram records (an hour, in ms).
const HIGHEST_MS: u64 = 3_600_000;

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, HIGHEST_MS, 3).expect("valid histogram bounds")
}

fn record(histogram: &mut Histogram<u64>, latency: Duration) {
    let ms = (latency.as_millis() as u64).clamp(1, HIGHEST_MS);
    histogram.record(ms).expect("clamped into the bounds");
}

struct Interval {
    posts: Histogram<u64>,
    reads: Histogram<u64>,
    post_errors: u64,
    read_errors: u64,
    dropped: u64,
    follows: u64,
    unfollows: u64,
    deletes: u64,
    delays: [Histogram<u64>; 4],
    late: [u64; 4],
}

impl Interval {
    fn new() -> Self {
        Self {
            posts: histogram(),
            reads: histogram(),
            post_errors: 0,
            read_errors: 0,
            dropped: 0,
            follows: 0,
            unfollows: 0,
            deletes: 0,
            delays: std::array::from_fn(|_| histogram()),
            late: [0; 4],
        }
    }
}

/// Operations counted but not timed.
#[derive(Debug, Clone, Copy)]
pub enum Op {
    Follow,
    Unfollow,
    Delete,
}

/// The per-interval record the load's tasks write into.
pub struct Tally {
    start: Instant,
    interval: Duration,
    slots: Mutex<Vec<Interval>>,
}

/// One interval as the report shows it.
#[derive(Debug, Clone, Serialize)]
pub struct ClientRow {
    pub posts_per_sec: f64,
    pub reads_per_sec: f64,
    pub post_p50_ms: f64,
    pub post_p99_ms: f64,
    pub read_p50_ms: f64,
    pub read_p99_ms: f64,
    /// Posts the client gave up on (after retrying) and reads that failed.
    pub post_errors: u64,
    pub read_errors: u64,
    /// Operations the open loop could not start (too many in flight).
    pub dropped: u64,
    pub follows: u64,
    pub unfollows: u64,
    pub deletes: u64,
    pub fanout: Vec<DelayRow>,
}

/// Fan-out delay of one bucket in one interval: from a watched post's 2xx
/// to its first sight on a follower's home timeline.
#[derive(Debug, Clone, Serialize)]
pub struct DelayRow {
    pub bucket: &'static str,
    pub seen: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// Posts not seen within the probe's patience.
    pub late: u64,
}

impl Tally {
    pub fn new(start: Instant, interval: Duration) -> Self {
        Self {
            start,
            interval,
            slots: Mutex::new(Vec::new()),
        }
    }

    fn with(&self, at: Instant, change: impl FnOnce(&mut Interval)) {
        let index = (at.saturating_duration_since(self.start).as_secs_f64()
            / self.interval.as_secs_f64()) as usize;
        let mut slots = self.slots.lock().expect("tally lock");
        while slots.len() <= index {
            slots.push(Interval::new());
        }
        change(&mut slots[index]);
    }

    /// A post started at `at`: its latency, or none if it failed.
    pub fn post(&self, at: Instant, latency: Option<Duration>) {
        self.with(at, |slot| match latency {
            Some(latency) => record(&mut slot.posts, latency),
            None => slot.post_errors += 1,
        });
    }

    pub fn read(&self, at: Instant, latency: Option<Duration>) {
        self.with(at, |slot| match latency {
            Some(latency) => record(&mut slot.reads, latency),
            None => slot.read_errors += 1,
        });
    }

    pub fn dropped(&self, at: Instant) {
        self.with(at, |slot| slot.dropped += 1);
    }

    pub fn op(&self, at: Instant, op: Op) {
        self.with(at, |slot| match op {
            Op::Follow => slot.follows += 1,
            Op::Unfollow => slot.unfollows += 1,
            Op::Delete => slot.deletes += 1,
        });
    }

    /// A watched post accepted at `at` was seen after `delay`, or never.
    pub fn delay(&self, at: Instant, bucket: Bucket, delay: Option<Duration>) {
        let i = Bucket::ALL.iter().position(|b| *b == bucket).unwrap_or(0);
        self.with(at, |slot| match delay {
            Some(delay) => record(&mut slot.delays[i], delay),
            None => slot.late[i] += 1,
        });
    }

    /// Interval `index` (empty if nothing happened in it).
    pub fn row(&self, index: usize) -> ClientRow {
        let mut slots = self.slots.lock().expect("tally lock");
        while slots.len() <= index {
            slots.push(Interval::new());
        }
        let slot = &slots[index];
        let secs = self.interval.as_secs_f64();
        let at = |h: &Histogram<u64>, q: f64| {
            if h.is_empty() {
                0.0
            } else {
                h.value_at_quantile(q) as f64
            }
        };
        ClientRow {
            posts_per_sec: slot.posts.len() as f64 / secs,
            reads_per_sec: slot.reads.len() as f64 / secs,
            post_p50_ms: at(&slot.posts, 0.5),
            post_p99_ms: at(&slot.posts, 0.99),
            read_p50_ms: at(&slot.reads, 0.5),
            read_p99_ms: at(&slot.reads, 0.99),
            post_errors: slot.post_errors,
            read_errors: slot.read_errors,
            dropped: slot.dropped,
            follows: slot.follows,
            unfollows: slot.unfollows,
            deletes: slot.deletes,
            fanout: Bucket::ALL
                .iter()
                .zip(slot.delays.iter().zip(slot.late))
                .map(|(bucket, (h, late))| DelayRow {
                    bucket: bucket.label(),
                    seen: h.len(),
                    p50_ms: at(h, 0.5),
                    p99_ms: at(h, 0.99),
                    late,
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_land_in_the_interval_of_their_start() {
        let t0 = Instant::now();
        let tally = Tally::new(t0, Duration::from_secs(10));
        tally.post(t0, Some(Duration::from_millis(20)));
        tally.post(
            t0 + Duration::from_secs(12),
            Some(Duration::from_millis(40)),
        );
        tally.post(t0 + Duration::from_secs(13), None);
        tally.delay(t0, Bucket::Celebrity, Some(Duration::from_millis(900)));
        tally.delay(t0, Bucket::Few, None);
        let first = tally.row(0);
        assert_eq!(first.posts_per_sec, 0.1);
        assert_eq!(first.post_p50_ms, 20.0);
        assert_eq!(first.fanout[3].seen, 1);
        assert_eq!(first.fanout[0].late, 1);
        let second = tally.row(1);
        assert_eq!((second.post_p99_ms, second.post_errors), (40.0, 1));
        assert_eq!(tally.row(5).posts_per_sec, 0.0);
    }

    #[test]
    fn buckets_follow_the_follower_count_and_the_threshold() {
        assert_eq!(Bucket::of(3, 10_000), Bucket::Few);
        assert_eq!(Bucket::of(10, 10_000), Bucket::Hundreds);
        assert_eq!(Bucket::of(9_999, 10_000), Bucket::Thousands);
        assert_eq!(Bucket::of(10_000, 10_000), Bucket::Celebrity);
        assert_eq!(Bucket::of(30, 30), Bucket::Celebrity);
    }
}
