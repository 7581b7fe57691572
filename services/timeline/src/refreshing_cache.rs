//! An in-process cache of values keyed by a user or author id, that serves
//! an expired value while one background load refreshes it (stale while
//! revalidate).
//!
//! The read path keeps two such caches: a celebrity's recent tweet ids
//! ([`crate::recent`]) and the celebrities a reader follows
//! ([`crate::followed`]). Both trade a bounded staleness for a backend call
//! per TTL instead of one per read, and both want the same three things: no
//! read ever waits for a refresh (so expiry never shows as a latency spike),
//! concurrent misses of one key share one load ([`SingleFlight`]), and
//! expiry times spread by key ([`crate::expiry`]) so entries cached together
//! are not refreshed together. A TTL of zero turns the cache off: every read
//! loads.
//!
//! A background refresh that fails keeps the stale value: a dependency that
//! is down (the graph, the tweet store) then costs freshness, not
//! availability, and warm readers keep being served. The next read after the
//! failure tries again, one refresh at a time as before.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::TimelineError;
use crate::expiry;
use crate::single_flight::SingleFlight;

type Entries<V> = Arc<Mutex<HashMap<i64, Entry<V>>>>;

struct Entry<V> {
    value: V,
    expires_at: Instant,
    /// Expired, and a background load is refreshing it: later reads serve
    /// the stale value without starting another.
    refreshing: bool,
}

/// Cloning is shallow: clones share the entries and the loads in flight.
pub struct RefreshingCache<V> {
    ttl: Duration,
    /// The most keys cached; past it, expired entries are dropped, and if
    /// none are, new keys are served but not cached.
    capacity: usize,
    /// A plain mutex: held only to look up or insert, never across an await.
    entries: Entries<V>,
    loads: SingleFlight<i64, Result<V, TimelineError>>,
}

impl<V> Clone for RefreshingCache<V> {
    fn clone(&self) -> Self {
        Self {
            ttl: self.ttl,
            capacity: self.capacity,
            entries: Arc::clone(&self.entries),
            loads: self.loads.clone(),
        }
    }
}

/// Where a value came from, for the callers' hit/miss counters.
pub enum Source {
    Cache,
    Load,
}

impl<V: Clone + Send + Sync + 'static> RefreshingCache<V> {
    /// `work` names the loads in the coalesced-waits metric.
    pub fn new(work: &'static str, ttl: Duration, capacity: usize) -> Self {
        Self {
            ttl,
            capacity,
            entries: Arc::default(),
            loads: SingleFlight::new(work),
        }
    }

    /// The value of `key`: the cached one, even if expired (which starts a
    /// background refresh with `load`), or else the one `load` returns.
    pub async fn get<L, F>(&self, key: i64, load: L) -> Result<(V, Source), TimelineError>
    where
        L: FnOnce() -> F,
        F: Future<Output = Result<V, TimelineError>> + Send + 'static,
    {
        let Some((value, stale)) = self.cached(key) else {
            return Ok((self.refresh(key, load).await?, Source::Load));
        };
        if stale {
            let (cache, load) = (self.clone(), load());
            tokio::spawn(async move {
                if let Err(error) = cache.refresh(key, || load).await {
                    tracing::warn!(key, %error, "cache refresh failed, serving the stale value");
                    cache.retry_later(key);
                }
            });
        }
        Ok((value, Source::Cache))
    }

    /// The value of `key` fresh from `load` (one load however many ask at
    /// once), and cached.
    pub async fn refresh<L, F>(&self, key: i64, load: L) -> Result<V, TimelineError>
    where
        L: FnOnce() -> F,
        F: Future<Output = Result<V, TimelineError>> + Send + 'static,
    {
        let cache = self.clone();
        let load = load();
        self.loads
            .run(key, move || async move {
                let value = load.await?;
                cache.insert(key, value.clone());
                Ok(value)
            })
            .await
    }

    /// The cached value and whether it is stale and now being refreshed by
    /// the caller; `None` when nothing is cached.
    fn cached(&self, key: i64) -> Option<(V, bool)> {
        if self.ttl.is_zero() {
            return None;
        }
        let mut entries = self.lock();
        let entry = entries.get_mut(&key)?;
        let stale = entry.expires_at <= Instant::now() && !entry.refreshing;
        entry.refreshing |= stale;
        Some((entry.value.clone(), stale))
    }

    /// After a failed refresh: the stale value stays, and the next read
    /// starts another refresh.
    fn retry_later(&self, key: i64) {
        if let Some(entry) = self.lock().get_mut(&key) {
            entry.refreshing = false;
        }
    }

    fn insert(&self, key: i64, value: V) {
        if self.ttl.is_zero() {
            return;
        }
        let now = Instant::now();
        let mut entries = self.lock();
        if entries.len() >= self.capacity {
            entries.retain(|_, entry| entry.expires_at > now);
        }
        if entries.len() < self.capacity || entries.contains_key(&key) {
            let entry = Entry {
                value,
                expires_at: now + expiry::spread(self.ttl, key),
                refreshing: false,
            };
            entries.insert(key, entry);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<i64, Entry<V>>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    fn counting_load(
        loads: &Arc<AtomicU32>,
    ) -> impl FnOnce() -> futures::future::Ready<Result<u32, TimelineError>> {
        let loads = Arc::clone(loads);
        move || futures::future::ready(Ok(loads.fetch_add(1, Ordering::SeqCst) + 1))
    }

    #[tokio::test]
    async fn a_fresh_value_is_served_without_loading() {
        let cache = RefreshingCache::new("test", Duration::from_secs(60), 10);
        let loads = Arc::new(AtomicU32::new(0));
        let (first, _) = cache.get(1, counting_load(&loads)).await.unwrap();
        let (second, source) = cache.get(1, counting_load(&loads)).await.unwrap();
        assert_eq!((first, second), (1, 1));
        assert!(matches!(source, Source::Cache));
        assert_eq!(loads.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_stale_value_is_served_once_while_one_refresh_replaces_it() {
        let ttl = Duration::from_millis(20);
        let cache = RefreshingCache::new("test", ttl, 10);
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
        tokio::time::sleep(Duration::from_millis(5)).await;
        let (fresh, _) = cache.get(1, counting_load(&loads)).await.unwrap();
        assert_eq!(fresh, 2);
        assert_eq!(loads.load(Ordering::SeqCst), 2, "one refresh, not two");
    }

    /// Waits until no background refresh of key 1 runs.
    async fn settled(cache: &RefreshingCache<u32>) {
        while cache.lock().get(&1).is_some_and(|entry| entry.refreshing) {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test]
    async fn a_failed_refresh_keeps_serving_the_stale_value_and_retries() {
        let ttl = Duration::from_millis(20);
        let cache = RefreshingCache::new("test", ttl, 10);
        let loads = Arc::new(AtomicU32::new(0));
        cache.get(1, counting_load(&loads)).await.unwrap();
        tokio::time::sleep(ttl * 2).await;
        let failing = || async { Err(TimelineError::Graph(tonic::Status::unavailable("down"))) };
        let (stale, _) = cache.get(1, failing).await.unwrap();
        assert_eq!(stale, 1);
        settled(&cache).await;
        let (still_stale, source) = cache.get(1, failing).await.expect("stale, not an error");
        assert_eq!(still_stale, 1);
        assert!(matches!(source, Source::Cache));
        settled(&cache).await;
        cache.get(1, counting_load(&loads)).await.unwrap();
        settled(&cache).await;
        let (fresh, _) = cache.get(1, counting_load(&loads)).await.unwrap();
        assert_eq!(fresh, 2, "a later refresh replaces the stale value");
    }

    #[tokio::test]
    async fn a_zero_ttl_loads_every_time() {
        let cache = RefreshingCache::new("test", Duration::ZERO, 10);
        let loads = Arc::new(AtomicU32::new(0));
        for expected in 1..=3 {
            let (value, source) = cache.get(1, counting_load(&loads)).await.unwrap();
            assert_eq!(value, expected);
            assert!(matches!(source, Source::Load));
        }
    }

    #[tokio::test]
    async fn past_capacity_new_keys_are_served_but_not_cached() {
        let cache = RefreshingCache::new("test", Duration::from_secs(60), 1);
        let loads = Arc::new(AtomicU32::new(0));
        cache.get(1, counting_load(&loads)).await.unwrap();
        cache.get(2, counting_load(&loads)).await.unwrap();
        let (_, source) = cache.get(2, counting_load(&loads)).await.unwrap();
        assert!(matches!(source, Source::Load));
        let (_, source) = cache.get(1, counting_load(&loads)).await.unwrap();
        assert!(matches!(source, Source::Cache));
    }
}
