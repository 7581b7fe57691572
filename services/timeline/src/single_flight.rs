//! Coalescing concurrent identical work: the first caller for a key starts
//! it, everyone who asks while it runs waits for the same outcome.
//!
//! The work is a `Shared` future held in the map, not a task owned by the
//! first caller: if that caller goes away (its client hung up), the others
//! keep polling the same future and still get an answer. The work removes
//! its own entry when it finishes, so a later caller starts afresh rather
//! than reading a stale outcome. Every caller that joins a run it did not
//! start is counted, labelled with the work's name: that is the load the
//! coalescing saved.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::{Arc, Mutex, PoisonError};

use futures::FutureExt;
use futures::future::{BoxFuture, Shared};
use metrics::counter;

use crate::stats;

type Flights<K, T> = Arc<Mutex<HashMap<K, Shared<BoxFuture<'static, T>>>>>;

pub struct SingleFlight<K, T> {
    /// What the work is, for the coalesced-waits metric.
    work: &'static str,
    /// A plain mutex: it is held only to look up or insert, never across an
    /// await.
    flights: Flights<K, T>,
}

/// Cloning is shallow: clones share the runs in flight.
impl<K, T> Clone for SingleFlight<K, T> {
    fn clone(&self) -> Self {
        Self {
            work: self.work,
            flights: Arc::clone(&self.flights),
        }
    }
}

impl<K, T> SingleFlight<K, T>
where
    K: Hash + Eq + Clone + Send + 'static,
    T: Clone + Send + Sync + 'static,
{
    pub fn new(work: &'static str) -> Self {
        Self {
            work,
            flights: Arc::default(),
        }
    }

    /// The outcome of the work for `key`: the one in flight, or the one
    /// `work` starts when none is.
    pub async fn run<F>(&self, key: K, work: impl FnOnce() -> F) -> T
    where
        F: Future<Output = T> + Send + 'static,
    {
        let flight = {
            let mut flights = self.flights.lock().unwrap_or_else(PoisonError::into_inner);
            match flights.get(&key) {
                Some(flight) => {
                    counter!(stats::COALESCED_WAITS, "work" => self.work).increment(1);
                    flight.clone()
                }
                None => {
                    let work = work();
                    let registry = Arc::clone(&self.flights);
                    let own_key = key.clone();
                    let flight = async move {
                        let outcome = work.await;
                        registry
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .remove(&own_key);
                        outcome
                    }
                    .boxed()
                    .shared();
                    flights.insert(key, flight.clone());
                    flight
                }
            }
        };
        flight.await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn concurrent_calls_share_one_run_and_later_calls_start_another() {
        let flights = Arc::new(SingleFlight::<u8, usize>::new("test"));
        let runs = Arc::new(AtomicUsize::new(0));
        let call = || {
            let (flights, runs) = (Arc::clone(&flights), Arc::clone(&runs));
            async move {
                flights
                    .run(1, || async move {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        runs.fetch_add(1, Ordering::SeqCst) + 1
                    })
                    .await
            }
        };
        let outcomes = futures::future::join_all((0..10).map(|_| call())).await;
        assert_eq!(outcomes, [1; 10]);
        assert_eq!(call().await, 2);
    }
}
