//! Users: sign-up, profiles, and the follower / following lists.
//!
//! Sign-up returns a bearer token directly. There are no passwords: identity
//! proper belongs to an identity provider, which is outside this design.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json as JsonResponse, Router};
use chirp_common::proto::graph::{
    CreateUserRequest, GetUserByHandleRequest, GetUserRequest, ListFollowsRequest, User,
    UserIdPage,
};
use futures::future::try_join_all;
use serde::{Deserialize, Serialize};

use super::extract::{Json, Path, Query};
use super::pages::{Page, PageQuery, rfc3339};
use crate::AppState;
use crate::cursor::CursorKind;
use crate::error::ApiError;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/users", post(sign_up))
        .route("/users/{id}", get(show))
        .route("/users/by-handle/{handle}", get(show_by_handle))
        .route("/users/{id}/followers", get(followers))
        .route("/users/{id}/following", get(following))
}

#[derive(Debug, Serialize)]
pub struct UserView {
    id: String,
    handle: String,
    display_name: String,
    follower_count: i64,
    following_count: i64,
    created_at: String,
}

impl From<User> for UserView {
    fn from(user: User) -> Self {
        Self {
            id: user.user_id.to_string(),
            handle: user.handle,
            display_name: user.display_name,
            follower_count: user.follower_count,
            following_count: user.following_count,
            created_at: rfc3339(user.created_at_ms),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SignUp {
    handle: String,
    display_name: String,
}

#[derive(Debug, Serialize)]
struct SignedUp {
    user_id: String,
    token: String,
    user: UserView,
}

async fn sign_up(
    State(state): State<AppState>,
    Json(body): Json<SignUp>,
) -> Result<(StatusCode, JsonResponse<SignedUp>), ApiError> {
    let request = CreateUserRequest {
        handle: body.handle,
        display_name: body.display_name,
    };
    let user = state.graph.clone().create_user(request).await?.into_inner();
    let signed_up = SignedUp {
        user_id: user.user_id.to_string(),
        token: state.tokens.issue(user.user_id),
        user: user.into(),
    };
    Ok((StatusCode::CREATED, JsonResponse(signed_up)))
}

async fn show(
    State(state): State<AppState>,
    Path(user_id): Path<i64>,
) -> Result<JsonResponse<UserView>, ApiError> {
    Ok(JsonResponse(user(&state, user_id).await?.into()))
}

async fn show_by_handle(
    State(state): State<AppState>,
    Path(handle): Path<String>,
) -> Result<JsonResponse<UserView>, ApiError> {
    let user = state
        .graph
        .clone()
        .get_user_by_handle(GetUserByHandleRequest { handle })
        .await?
        .into_inner();
    Ok(JsonResponse(user.into()))
}

/// Fetches one user; also how list endpoints turn an unknown id into a 404.
pub async fn user(state: &AppState, user_id: i64) -> Result<User, ApiError> {
    Ok(state
        .graph
        .clone()
        .get_user(GetUserRequest { user_id })
        .await?
        .into_inner())
}

#[derive(Debug, Clone, Copy)]
enum Direction {
    Followers,
    Following,
}

async fn followers(
    state: State<AppState>,
    path: Path<i64>,
    query: Query<PageQuery>,
) -> Result<JsonResponse<Page<UserView>>, ApiError> {
    follow_list(state, path, query, Direction::Followers).await
}

async fn following(
    state: State<AppState>,
    path: Path<i64>,
    query: Query<PageQuery>,
) -> Result<JsonResponse<Page<UserView>>, ApiError> {
    follow_list(state, path, query, Direction::Following).await
}

async fn follow_list(
    State(state): State<AppState>,
    Path(user_id): Path<i64>,
    Query(query): Query<PageQuery>,
    direction: Direction,
) -> Result<JsonResponse<Page<UserView>>, ApiError> {
    let request = ListFollowsRequest {
        user_id,
        after_user_id: query.position(&state.cursors, CursorKind::Users)?,
        limit: query.limit()?,
    };
    user(&state, user_id).await?;
    let mut graph = state.graph.clone();
    let UserIdPage {
        user_ids,
        next_after_user_id,
    } = match direction {
        Direction::Followers => graph.list_followers(request).await?,
        Direction::Following => graph.list_following(request).await?,
    }
    .into_inner();
    let users = try_join_all(user_ids.into_iter().map(|id| user(&state, id))).await?;
    let views = users.into_iter().map(UserView::from).collect();
    Ok(JsonResponse(Page::new(views, next_after_user_id, &state.cursors, CursorKind::Users)))
}
