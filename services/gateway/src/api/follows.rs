//! Following and unfollowing: edges of the graph, written by their follower.
//!
//! Both are idempotent: following twice or unfollowing a stranger succeeds
//! and changes nothing, so clients can retry freely.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{delete, post};
use chirp_common::proto::graph::FollowRequest;
use serde::{Deserialize, Deserializer};

use super::extract::{Json, Path};
use crate::AppState;
use crate::auth::Caller;
use crate::error::ApiError;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/follow", post(follow))
        .route("/follow/{target_user_id}", delete(unfollow))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FollowBody {
    #[serde(deserialize_with = "user_id")]
    target_user_id: i64,
}

/// Ids are strings in responses; requests may send a string or a number.
fn user_id<'de, D: Deserializer<'de>>(deserializer: D) -> Result<i64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Id {
        Number(i64),
        Text(String),
    }
    match Id::deserialize(deserializer)? {
        Id::Number(id) => Ok(id),
        Id::Text(text) => text.parse().map_err(serde::de::Error::custom),
    }
}

async fn follow(
    State(state): State<AppState>,
    caller: Caller,
    Json(body): Json<FollowBody>,
) -> Result<StatusCode, ApiError> {
    let request = FollowRequest {
        follower_id: caller.0,
        followee_id: body.target_user_id,
    };
    state.graph.clone().follow(request).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn unfollow(
    State(state): State<AppState>,
    caller: Caller,
    Path(target_user_id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    let request = FollowRequest {
        follower_id: caller.0,
        followee_id: target_user_id,
    };
    state.graph.clone().unfollow(request).await?;
    Ok(StatusCode::NO_CONTENT)
}
