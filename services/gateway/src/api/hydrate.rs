//! Hydration in the gateway: tweets as the API shows them, each naming its
//! author's handle; used by every route that returns tweets.
//!
//! The handle is the graph service's. Asking for it on every page costs a
//! call and a Postgres query per page, more than the page itself. Handles
//! never change (the API has no rename), so a cached handle is never stale
//! and needs no expiry: the cache (moka) only has to stay bounded, and it
//! evicts the handles least likely to be read again. A page's misses are
//! looked up together, by one `BatchGetUsers`.

use std::collections::HashMap;
use std::sync::Arc;

use chirp_common::proto::graph::BatchGetUsersRequest;
use chirp_common::proto::tweet::Tweet;
use moka::future::Cache;
use serde::Serialize;
use utoipa::ToSchema;

use super::pages::rfc3339;
use crate::AppState;
use crate::error::ApiError;

/// The most handles kept: a few megabytes.
const CAPACITY: u64 = 100_000;

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Tweet)]
pub struct TweetView {
    id: String,
    author_id: String,
    author_handle: String,
    content: String,
    created_at: String,
}

/// Authors' handles by user id. Cloning is shallow: clones share the cache.
#[derive(Clone)]
pub struct Handles {
    known: Cache<i64, Arc<str>>,
}

impl Default for Handles {
    fn default() -> Self {
        Self {
            known: Cache::new(CAPACITY),
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
            id: tweet.tweet_id.to_string(),
            author_id: tweet.author_id.to_string(),
            author_handle: handles
                .get(&tweet.author_id)
                .map_or_else(String::new, |h| h.to_string()),
            content: tweet.content,
            created_at: rfc3339(tweet.created_at_ms),
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
        match known.get(&id).await {
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
        known.insert(user.user_id, Arc::clone(&handle)).await;
        handles.insert(user.user_id, handle);
    }
    Ok(handles)
}
