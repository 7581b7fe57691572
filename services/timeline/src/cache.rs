//! The read path's expiring in-process cache, on `moka`, and the one thing
//! moka does not do for it: serving an expired value while it is refreshed.
//!
//! moka gives it what the hand-written caches before it did less well: a
//! bound (at capacity it evicts the entries least likely to be read again,
//! where those scanned every entry under a lock, or dropped them all) and
//! concurrent misses of one key sharing one load. (The tweets cache, read
//! twenty times a page, is on the lighter `quick_cache`: [`crate::hydrate`]
//! says why.) Expiry times of both are spread by key over the second half of
//! the TTL (`crate::expiry::spread`): entries cached in one burst
//! (every reader's first read after a restart) would otherwise expire in one
//! burst too, and their reloads land on the stores all at once.
//!
//! [`Revalidating`] is the stale-while-revalidate layer of the cache whose
//! loads a read would otherwise wait on at every expiry (the pulled
//! authors' newest ids): an expired value
//! is still served while one background load replaces it, so expiry never
//! shows as a latency spike. A background load that fails keeps the stale
//! value: a dependency that is down then costs freshness, not availability,
//! and the next read tries again. A TTL of zero turns the cache off.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::expiry::spread;
use metrics::counter;
use moka::future::Cache;

use crate::{TimelineError, stats};

/// Whether a value was cached or had to be loaded, for the callers'
/// hit/miss counters.
pub enum Lookup {
    Hit,
    Miss,
}

/// A cache of values by user or author id, served stale while revalidated.
/// Cloning is shallow: clones share the entries.
#[derive(Clone)]
pub struct Revalidating<V> {
    /// How long a value is fresh; moka itself expires nothing (a stale
    /// value is what a failed refresh serves), it only bounds the count.
    ttl: Duration,
    /// What the loads are, for the coalesced-waits metric.
    work: &'static str,
    entries: Cache<i64, Stamped<V>>,
}

#[derive(Clone)]
struct Stamped<V> {
    value: V,
    fresh_until: Instant,
    /// Stale, and a background load is replacing it: later reads serve the
    /// stale value without starting another. Shared by the clones moka
    /// hands out, so the load can clear it when it fails.
    refreshing: Arc<AtomicBool>,
}

impl<V: Clone + Send + Sync + 'static> Revalidating<V> {
    pub fn new(work: &'static str, ttl: Duration, capacity: u64) -> Self {
        Self {
            ttl,
            work,
            entries: Cache::builder().max_capacity(capacity).build(),
        }
    }

    /// The value of `key`: the cached one, even if stale (which starts a
    /// background refresh with `load`), or else the one `load` returns, one
    /// load however many miss at once.
    pub async fn get<L, F>(&self, key: i64, load: L) -> Result<(V, Lookup), TimelineError>
    where
        L: FnOnce() -> F,
        F: Future<Output = Result<V, TimelineError>> + Send + 'static,
    {
        if self.ttl.is_zero() {
            return Ok((load().await?, Lookup::Miss));
        }
        if let Some(cached) = self.entries.get(&key).await {
            if cached.fresh_until <= Instant::now()
                && !cached.refreshing.swap(true, Ordering::AcqRel)
            {
                self.refresh_in_background(key, cached.refreshing, load());
            }
            return Ok((cached.value, Lookup::Hit));
        }
        let loaded = AtomicBool::new(false);
        let entry = self
            .entries
            .entry(key)
            .or_try_insert_with(async {
                loaded.store(true, Ordering::Relaxed);
                Ok::<_, TimelineError>(self.stamp(key, load().await?))
            })
            .await
            .map_err(|error| (*error).clone())?;
        if !loaded.load(Ordering::Relaxed) {
            counter!(stats::COALESCED_WAITS, "work" => self.work).increment(1);
        }
        Ok((entry.into_value().value, Lookup::Miss))
    }

    fn refresh_in_background<F>(&self, key: i64, refreshing: Arc<AtomicBool>, load: F)
    where
        F: Future<Output = Result<V, TimelineError>> + Send + 'static,
    {
        let cache = self.clone();
        tokio::spawn(async move {
            match load.await {
                Ok(value) => cache.entries.insert(key, cache.stamp(key, value)).await,
                Err(error) => {
                    tracing::warn!(key, %error, "cache refresh failed, serving the stale value");
                    refreshing.store(false, Ordering::Release);
                }
            }
        });
    }

    fn stamp(&self, key: i64, value: V) -> Stamped<V> {
        Stamped {
            value,
            fresh_until: Instant::now() + spread(self.ttl, key),
            refreshing: Arc::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicU32;

    use super::*;

    /// Waits until no background refresh of key 1 runs (a refresh that
    /// succeeds replaces the entry; one that fails clears its flag), or
    /// fails the test after a few seconds.
    async fn settled(cache: &Revalidating<u32>) {
        let settling = async {
            while let Some(entry) = cache.entries.get(&1).await
                && entry.refreshing.load(Ordering::Acquire)
            {
                tokio::task::yield_now().await;
            }
        };
        tokio::time::timeout(Duration::from_secs(5), settling)
            .await
            .expect("the background refresh ended");
    }

    fn counting_load(
        loads: &Arc<AtomicU32>,
    ) -> impl FnOnce() -> futures::future::Ready<Result<u32, TimelineError>> {
        let loads = Arc::clone(loads);
        move || futures::future::ready(Ok(loads.fetch_add(1, Ordering::SeqCst) + 1))
    }

    #[tokio::test]
    async fn a_fresh_value_is_served_without_loading() {
        let cache = Revalidating::new("test", Duration::from_secs(60), 10);
        let loads = Arc::new(AtomicU32::new(0));
        let (first, _) = cache.get(1, counting_load(&loads)).await.unwrap();
        let (second, source) = cache.get(1, counting_load(&loads)).await.unwrap();
        assert_eq!((first, second), (1, 1));
        assert!(matches!(source, Lookup::Hit));
        assert_eq!(loads.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_stale_value_is_served_once_while_one_refresh_replaces_it() {
        let ttl = Duration::from_millis(20);
        let cache = Revalidating::new("test", ttl, 10);
        let loads = Arc::new(AtomicU32::new(0));
        cache.get(1, counting_load(&loads)).await.unwrap();
        tokio::time::sleep(ttl * 2).await;
        let (stale, _) = cache.get(1, counting_load(&loads)).await.unwrap();
        let (still_stale, _) = cache.get(1, counting_load(&loads)).await.unwrap();
        assert_eq!(
            (stale, still_stale),
            (1, 1),
            "no read waits for the refresh"
        );
        settled(&cache).await;
        let (fresh, _) = cache.get(1, counting_load(&loads)).await.unwrap();
        assert_eq!(fresh, 2);
        assert_eq!(loads.load(Ordering::SeqCst), 2, "one refresh, not two");
    }

    #[tokio::test]
    async fn a_failed_refresh_keeps_serving_the_stale_value_and_retries() {
        let ttl = Duration::from_millis(20);
        let cache = Revalidating::new("test", ttl, 10);
        let loads = Arc::new(AtomicU32::new(0));
        cache.get(1, counting_load(&loads)).await.unwrap();
        tokio::time::sleep(ttl * 2).await;
        let failing = || async { Err(TimelineError::Graph(tonic::Status::unavailable("down"))) };
        let (stale, _) = cache.get(1, failing).await.unwrap();
        assert_eq!(stale, 1);
        settled(&cache).await;
        let (still_stale, source) = cache.get(1, failing).await.expect("stale, not an error");
        assert_eq!(still_stale, 1);
        assert!(matches!(source, Lookup::Hit));
        settled(&cache).await;
        cache.get(1, counting_load(&loads)).await.unwrap();
        settled(&cache).await;
        let (fresh, _) = cache.get(1, counting_load(&loads)).await.unwrap();
        assert_eq!(fresh, 2, "a later refresh replaces the stale value");
    }

    #[tokio::test]
    async fn a_zero_ttl_loads_every_time() {
        let cache = Revalidating::new("test", Duration::ZERO, 10);
        let loads = Arc::new(AtomicU32::new(0));
        for expected in 1..=3 {
            let (value, source) = cache.get(1, counting_load(&loads)).await.unwrap();
            assert_eq!(value, expected);
            assert!(matches!(source, Lookup::Miss));
        }
    }

    #[tokio::test]
    async fn concurrent_misses_of_one_key_share_one_load() {
        let cache = Revalidating::new("test", Duration::from_secs(60), 10);
        let loads = Arc::new(AtomicU32::new(0));
        let slow_load = || {
            let loads = Arc::clone(&loads);
            move || async move {
                tokio::time::sleep(Duration::from_millis(50)).await;
                Ok(loads.fetch_add(1, Ordering::SeqCst) + 1)
            }
        };
        let reads = (0..10).map(|_| cache.get(1, slow_load()));
        let values: Vec<u32> = futures::future::try_join_all(reads)
            .await
            .unwrap()
            .into_iter()
            .map(|(value, _)| value)
            .collect();
        assert_eq!(values, [1; 10]);
        assert_eq!(loads.load(Ordering::SeqCst), 1);
    }

    /// moka, not this layer, decides what stays at capacity (TinyLFU
    /// admission, not "new keys are not cached" as before): every read is
    /// still answered, and the cache stays within its bound.
    #[tokio::test]
    async fn past_capacity_values_are_served_and_the_cache_stays_bounded() {
        let cache = Revalidating::new("test", Duration::from_secs(60), 2);
        for key in 1..=10 {
            let (value, _) = cache
                .get(key, move || async move { Ok(key as u32) })
                .await
                .unwrap();
            assert_eq!(value, key as u32);
        }
        cache.entries.run_pending_tasks().await;
        assert!(cache.entries.entry_count() <= 2);
    }
}
