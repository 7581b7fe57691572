//! Hydration in the gateway: tweets as the API shows them, each naming its
//! author's handle; used by every route that returns tweets.
//!
//! The handle is the graph service's. Asking for it on every page costs a
//! call and a Postgres query per page, more than the page itself. Handles
//! never change (the API has no rename), so a cached handle is never stale
//! and needs no expiry: the cache only has to stay bounded, and evict the
//! handles least likely to be read again. A page's misses are looked up
//! together, by one `BatchGetUsers`.
//!
//! The cache is `quick_cache`'s, not moka's (which the timeline service's
//! expiring caches use): a page reads up to 20 handles, and moka records
//! every read for its eviction policy and runs that bookkeeping on the
//! readers, which made the handle lookups about a tenth of the gateway's CPU
//! per page in a profile (docs/BENCHMARKS.md). quick_cache's CLOCK-Pro
//! keeps a read to a hash lookup under a shard's read lock; without expiry
//! or loaders to share, it has all this cache needs.
//!
//! A view holds what it shows as the tweet service and the cache gave it
//! (numbers, a shared handle) and is written as JSON straight from them:
//! ids as strings and the RFC 3339 date are formatted into the response
//! body, not into strings of their own first.

use std::collections::HashMap;
use std::sync::Arc;

use chirp_proto::graph::BatchGetUsersRequest;
use chirp_proto::tweet::Tweet;
use quick_cache::sync::Cache;
use serde::{Serialize, Serializer};
use utoipa::ToSchema;

use crate::AppState;
use crate::error::ApiError;

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Tweet)]
pub struct TweetView {
    #[serde(serialize_with = "as_string")]
    #[schema(value_type = String)]
    id: i64,
    #[serde(serialize_with = "as_string")]
    #[schema(value_type = String)]
    author_id: i64,
    #[serde(serialize_with = "as_str")]
    #[schema(value_type = String)]
    author_handle: Arc<str>,
    content: String,
    // Milliseconds since the Unix epoch, written as RFC 3339.
    #[serde(rename = "created_at", serialize_with = "as_rfc3339")]
    #[schema(value_type = String, rename = "created_at")]
    created_at_ms: i64,
}

fn as_string<S: Serializer>(id: &i64, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_str(id)
}

fn as_str<S: Serializer>(text: &Arc<str>, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(text)
}

fn as_rfc3339<S: Serializer>(ms: &i64, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_str(&super::pages::rfc3339(*ms))
}

/// Authors' handles by user id. Cloning is shallow: clones share the cache.
#[derive(Clone)]
pub struct Handles {
    known: Arc<Cache<i64, Arc<str>>>,
}

impl Handles {
    /// Keeps at most about `capacity` handles (`HANDLE_CACHE_CAPACITY`).
    pub fn new(capacity: u64) -> Self {
        let capacity = usize::try_from(capacity).unwrap_or(usize::MAX).max(1);
        Self {
            known: Arc::new(Cache::new(capacity)),
        }
    }
}

/// `tweets`, in their order, with their authors' handles.
pub async fn views(state: &AppState, tweets: Vec<Tweet>) -> Result<Vec<TweetView>, ApiError> {
    let mut author_ids: Vec<i64> = tweets.iter().map(|tweet| tweet.author_id).collect();
    author_ids.sort_unstable();
    author_ids.dedup();
    let handles = handles(state, &author_ids).await?;
    Ok(tweets
        .into_iter()
        .map(|tweet| TweetView {
            id: tweet.tweet_id,
            author_id: tweet.author_id,
            author_handle: handles
                .get(&tweet.author_id)
                .cloned()
                .unwrap_or_else(|| "".into()),
            content: tweet.content,
            created_at_ms: tweet.created_at_ms,
        })
        .collect())
}

/// The handle of each of `author_ids` (distinct) that exists.
pub async fn handles(
    state: &AppState,
    author_ids: &[i64],
) -> Result<HashMap<i64, Arc<str>>, ApiError> {
    let known = &state.handles.known;
    let mut handles = HashMap::with_capacity(author_ids.len());
    let mut missing = Vec::new();
    for &id in author_ids {
        match known.get(&id) {
            Some(handle) => {
                handles.insert(id, handle);
            }
            None => missing.push(id),
        }
    }
    if missing.is_empty() {
        return Ok(handles);
    }
    let request = BatchGetUsersRequest { user_ids: missing };
    let users = state.graph.clone().batch_get_users(request).await?;
    for user in users.into_inner().users {
        let handle: Arc<str> = user.handle.into();
        known.insert(user.user_id, Arc::clone(&handle));
        handles.insert(user.user_id, handle);
    }
    Ok(handles)
}
