//! Rebuilds of missing timelines, each run as its own task and shared by
//! every read of that timeline while it runs.
//!
//! A rebuild is not part of the read that needed it: it is spawned, so a
//! read that is cancelled (its client hung up) neither stops it halfway nor
//! leaves it parked, to be resumed much later with the followees of back
//! then. The task removes its own entry when it ends, so a later read never
//! joins a finished rebuild and always starts a fresh one. (Whether a
//! rebuild may still *complete* the timeline when it ends is the store's
//! call: see `chirp_common::timelines`.)

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};

use futures::FutureExt;
use futures::future::{BoxFuture, Shared};
use metrics::counter;
use tracing::Instrument;

use crate::{TimelineError, stats};

type Outcome<T> = Result<Arc<T>, TimelineError>;
type Running<T> = Arc<Mutex<HashMap<i64, Shared<BoxFuture<'static, Outcome<T>>>>>>;

pub struct Rebuilds<T> {
    /// A plain mutex: held only to look up, insert or remove, never across
    /// an await.
    running: Running<T>,
}

impl<T: Send + Sync + 'static> Rebuilds<T> {
    pub fn new() -> Self {
        Self {
            running: Arc::default(),
        }
    }

    /// The outcome of the rebuild of `user_id` in progress, or of the one
    /// `rebuild` starts when none is.
    pub async fn run<F>(&self, user_id: i64, rebuild: impl FnOnce() -> F) -> Outcome<T>
    where
        F: Future<Output = Result<T, TimelineError>> + Send + 'static,
    {
        let rebuild = {
            let mut running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
            match running.get(&user_id) {
                Some(rebuild) => {
                    counter!(stats::COALESCED_WAITS, "work" => "rebuild").increment(1);
                    rebuild.clone()
                }
                None => {
                    let registry = Arc::clone(&self.running);
                    let work = rebuild();
                    // Spawned while the lock is held: the task's removal of
                    // its entry cannot come before the insertion below.
                    let task = tokio::spawn(
                        async move {
                            let outcome = work.await.map(Arc::new);
                            registry
                                .lock()
                                .unwrap_or_else(PoisonError::into_inner)
                                .remove(&user_id);
                            outcome
                        }
                        .in_current_span(),
                    );
                    let shared = async move {
                        task.await.unwrap_or_else(|error| {
                            Err(TimelineError::Internal(format!("rebuild stopped: {error}")))
                        })
                    }
                    .boxed()
                    .shared();
                    running.insert(user_id, shared.clone());
                    shared
                }
            }
        };
        rebuild.await
    }
}
