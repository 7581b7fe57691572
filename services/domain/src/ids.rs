//! Snowflake ids: 64-bit, time-ordered, generated without coordination.
//!
//! A tweet id doubles as its creation time and as a pagination cursor: sorting
//! by id sorts by time, and "older than X" is a range scan in every store. The
//! price is a worker id that must be unique among running generators.
//!
//! Layout, high to low: 1 sign bit (always 0), 41 bits of milliseconds since
//! [`EPOCH_MS`] (69 years), 10 bits of worker id, 12 bits of sequence.

use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

/// 2025-01-01T00:00:00Z: ids count milliseconds from here, not from 1970, to
/// leave the 41 timestamp bits most of their range.
pub const EPOCH_MS: i64 = 1_735_689_600_000;

const WORKER_BITS: u32 = 10;
const SEQUENCE_BITS: u32 = 12;
/// The largest worker id a generator accepts.
pub const MAX_WORKER_ID: u16 = (1 << WORKER_BITS) - 1;
const MAX_SEQUENCE: u16 = (1 << SEQUENCE_BITS) - 1;

/// Hands out unique, increasing ids for one worker.
#[derive(Debug)]
pub struct Snowflake {
    worker_id: u16,
    /// The last (millisecond, sequence) handed out. A mutex rather than an
    /// atomic: the critical section is a few instructions and stays readable.
    last: Mutex<(i64, u16)>,
}

impl Snowflake {
    /// Panics if `worker_id` exceeds [`MAX_WORKER_ID`]; configs validate it first.
    pub fn new(worker_id: u16) -> Self {
        assert!(
            worker_id <= MAX_WORKER_ID,
            "worker id {worker_id} > {MAX_WORKER_ID}"
        );
        Self {
            worker_id,
            last: Mutex::new((0, 0)),
        }
    }

    /// The next id. Never blocks: when the clock steps backwards, or when 4096
    /// ids were already taken this millisecond, it borrows the next
    /// millisecond instead of waiting, so ids stay unique and increasing.
    pub fn next_id(&self) -> i64 {
        let now = now_ms() - EPOCH_MS;
        let mut last = self.last.lock().expect("snowflake lock poisoned");
        let (last_ms, last_seq) = *last;
        let next = if now > last_ms {
            (now, 0)
        } else if last_seq < MAX_SEQUENCE {
            (last_ms, last_seq + 1)
        } else {
            (last_ms + 1, 0)
        };
        *last = next;
        compose(next.0, self.worker_id, next.1)
    }
}

/// The id a generator with `worker_id` would hand out as its `sequence`-th
/// id of the Unix millisecond `unix_ms`: for imports of history, whose ids
/// must be of the past. Unique only if no live generator uses `worker_id`.
pub fn id_at(unix_ms: i64, worker_id: u16, sequence: u16) -> i64 {
    compose(unix_ms - EPOCH_MS, worker_id, sequence & MAX_SEQUENCE)
}

fn compose(ms_since_epoch: i64, worker_id: u16, sequence: u16) -> i64 {
    (ms_since_epoch << (WORKER_BITS + SEQUENCE_BITS))
        | (i64::from(worker_id) << SEQUENCE_BITS)
        | i64::from(sequence)
}

/// Unix time in milliseconds at which `id` was generated.
pub fn timestamp_ms(id: i64) -> i64 {
    (id >> (WORKER_BITS + SEQUENCE_BITS)) + EPOCH_MS
}

/// The current Unix time in milliseconds.
pub fn now_ms() -> i64 {
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("system clock before 1970");
    i64::try_from(since_epoch.as_millis()).expect("time fits in i64")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_increase_and_carry_their_timestamp() {
        let ids = Snowflake::new(7);
        let before = now_ms();
        let generated: Vec<i64> = (0..10_000).map(|_| ids.next_id()).collect();
        assert!(generated.windows(2).all(|w| w[0] < w[1]));
        assert!(generated.iter().all(|&id| id > 0));
        let first = timestamp_ms(generated[0]);
        assert!(first >= before && first <= now_ms() + 10);
    }

    #[test]
    fn sequence_overflow_borrows_the_next_millisecond() {
        let ids = Snowflake::new(1);
        let an_hour_ahead = now_ms() - EPOCH_MS + 3_600_000;
        *ids.last.lock().unwrap() = (an_hour_ahead, MAX_SEQUENCE);
        let id = ids.next_id();
        assert_eq!(id & i64::from(MAX_SEQUENCE), 0);
        assert_eq!(timestamp_ms(id) - EPOCH_MS, an_hour_ahead + 1);
    }

    #[test]
    fn worker_ids_keep_generators_apart() {
        let (a, b) = (Snowflake::new(1), Snowflake::new(2));
        assert_ne!(a.next_id(), b.next_id());
    }
}
