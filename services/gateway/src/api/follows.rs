//! Following and unfollowing: edges of the graph, written by their follower.
//!
//! Both are idempotent: following twice or unfollowing a stranger succeeds
//! and changes nothing, so clients can retry freely.

use axum::extract::State;
use axum::http::StatusCode;
use chirp_proto::graph::FollowRequest;
use serde::{Deserialize, Deserializer};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{Json, Path};
use crate::AppState;
use crate::error::{ApiError, RateLimited};
use crate::rate_limit::Writer;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(follow))
        .routes(routes!(unfollow))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct FollowBody {
    /// The user to follow; a string like every id (a number is accepted too).
    #[serde(deserialize_with = "user_id")]
    #[schema(value_type = String, example = "7000000000000000001")]
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

/// The caller follows `target_user_id`.
#[utoipa::path(post, path = "/follow", operation_id = "follow", tag = "follows", request_body = FollowBody,
    security(("bearer" = [])),
    responses(
        (status = NO_CONTENT, description = "following (also if already)"),
        (status = TOO_MANY_REQUESTS, response = RateLimited),
    ))]
async fn follow(
    State(state): State<AppState>,
    Writer(caller): Writer,
    Json(body): Json<FollowBody>,
) -> Result<StatusCode, ApiError> {
    let request = FollowRequest {
        follower_id: caller.0,
        followee_id: body.target_user_id,
    };
    state.graph.clone().follow(request).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The caller stops following `target_user_id`.
#[utoipa::path(delete, path = "/follow/{target_user_id}", operation_id = "unfollow", tag = "follows",
    params(("target_user_id" = i64, Path, description = "user id")),
    security(("bearer" = [])),
    responses(
        (status = NO_CONTENT, description = "not following (also if never was)"),
        (status = TOO_MANY_REQUESTS, response = RateLimited),
    ))]
async fn unfollow(
    State(state): State<AppState>,
    Writer(caller): Writer,
    Path(target_user_id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    let request = FollowRequest {
        follower_id: caller.0,
        followee_id: target_user_id,
    };
    state.graph.clone().unfollow(request).await?;
    Ok(StatusCode::NO_CONTENT)
}
