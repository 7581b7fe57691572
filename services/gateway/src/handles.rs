//! Authors' handles, cached in the gateway.
//!
//! Every tweet the API returns names its author's handle, which the graph
//! service owns. Asking for it on every page costs one call (and one
//! Postgres query) per distinct author per page, up to twenty for a home
//! timeline: more than the page itself. Handles never change (the API has no
//! rename), so a cached handle is never stale and needs no expiry; the cache
//! only has to stay bounded. When it is full it is emptied and refills with
//! the authors read next: crude next to an LRU, but a hundred thousand
//! handles are a few megabytes, and a miss costs what every page cost before.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{PoisonError, RwLock};

use chirp_common::proto::graph::User;
use futures::future::try_join_all;

use crate::error::ApiError;

/// The most handles kept.
const CAPACITY: usize = 100_000;

#[derive(Default)]
pub struct Handles {
    /// Read by every page, written on misses only; never held across an
    /// await.
    known: RwLock<HashMap<i64, String>>,
}

impl Handles {
    /// The handle of each of `author_ids` (distinct), looking up with
    /// `user` (the graph service) the ones not cached yet.
    pub async fn of<F>(
        &self,
        author_ids: &[i64],
        user: impl Fn(i64) -> F,
    ) -> Result<HashMap<i64, String>, ApiError>
    where
        F: Future<Output = Result<User, ApiError>>,
    {
        let mut handles = HashMap::with_capacity(author_ids.len());
        let mut missing = Vec::new();
        {
            let known = self.known.read().unwrap_or_else(PoisonError::into_inner);
            for &id in author_ids {
                match known.get(&id) {
                    Some(handle) => {
                        handles.insert(id, handle.clone());
                    }
                    None => missing.push(id),
                }
            }
        }
        if missing.is_empty() {
            return Ok(handles);
        }
        let authors = try_join_all(missing.into_iter().map(user)).await?;
        let mut known = self.known.write().unwrap_or_else(PoisonError::into_inner);
        if known.len() + authors.len() > CAPACITY {
            known.clear();
        }
        for author in authors {
            known.insert(author.user_id, author.handle.clone());
            handles.insert(author.user_id, author.handle);
        }
        Ok(handles)
    }
}
