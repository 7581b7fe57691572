//! The read limit: a token bucket per user on home-timeline pages, kept in
//! this gateway's memory.
//!
//! Each user may read `RATE_LIMIT_READ_BURST` pages at once and
//! `RATE_LIMIT_READS_PER_MINUTE` sustained; a page that finds the bucket
//! empty gets a 429 with `Retry-After`. It bounds what one account (a
//! scraper, a runaway client) can make the timeline service and Redis do;
//! the defaults are far above what a person reads, so real readers and the
//! benches never meet it.
//!
//! Unlike the write and sign-up limits (`crate::rate_limit`), the buckets are
//! not in Redis: a cached page costs about one Redis round trip, and a
//! second one per page only to count it would double the cost of the
//! cheapest, most frequent request. The price is precision: behind a load
//! balancer each gateway copy counts on its own, so a user spread over *n*
//! copies may read up to *n* times the limit — still bounded, which is what
//! the limit is for. Buckets live in a bounded cache; a user evicted from it
//! starts again with a full bucket, which only ever errs on the lenient side.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use quick_cache::sync::Cache;

use crate::AppState;
use crate::auth::Caller;
use crate::error::ApiError;

/// Users whose buckets are kept: the active readers of one gateway copy.
/// About 100 bytes each.
const USERS_TRACKED: usize = 100_000;

pub struct ReadLimiter {
    buckets: Cache<i64, Arc<Mutex<Bucket>>>,
    burst: f64,
    per_sec: f64,
}

/// A user's tokens as of `at`: refilled lazily when next taken.
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl ReadLimiter {
    pub fn new(per_minute: u32, burst: u32) -> Self {
        Self {
            buckets: Cache::new(USERS_TRACKED),
            burst: f64::from(burst),
            per_sec: f64::from(per_minute) / 60.0,
        }
    }

    /// Takes one read token of `user_id`; the error says when to retry.
    pub fn take(&self, user_id: i64) -> Result<(), ApiError> {
        self.take_at(user_id, Instant::now())
    }

    fn take_at(&self, user_id: i64, now: Instant) -> Result<(), ApiError> {
        let bucket = self
            .buckets
            .get_or_insert_with(&user_id, || {
                Ok::<_, std::convert::Infallible>(Arc::new(Mutex::new(Bucket {
                    tokens: self.burst,
                    at: now,
                })))
            })
            .unwrap_or_else(|never| match never {});
        let mut bucket = bucket
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.per_sec).min(self.burst);
        bucket.at = now.max(bucket.at);
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            return Ok(());
        }
        let wait = (1.0 - bucket.tokens) / self.per_sec;
        Err(ApiError::rate_limited(
            "reads",
            Duration::from_secs_f64(wait),
        ))
    }
}

/// An authenticated caller who may read a page now. Taking it as a handler
/// argument (instead of [`Caller`]) puts a route under the read limit; it
/// authenticates first, so a stranger gets a 401, never a 429.
#[derive(Debug, Clone, Copy)]
pub struct Reader(pub Caller);

impl FromRequestParts<AppState> for Reader {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let caller = Caller::from_request_parts(parts, state).await?;
        state.read_limiter.take(caller.0)?;
        Ok(Self(caller))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_is_let_through_then_reads_refill_at_the_rate() {
        let limiter = ReadLimiter::new(60, 3);
        let start = Instant::now();
        for _ in 0..3 {
            assert!(limiter.take_at(7, start).is_ok());
        }
        assert!(limiter.take_at(7, start).is_err(), "the burst is spent");
        assert!(
            limiter.take_at(8, start).is_ok(),
            "another user's own bucket"
        );
        let later = start + Duration::from_millis(1_000);
        assert!(limiter.take_at(7, later).is_ok(), "one token a second");
        assert!(limiter.take_at(7, later).is_err());
    }
}
