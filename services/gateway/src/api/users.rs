//! Users: sign-up, profiles, and the follower / following lists.
//!
//! Sign-up returns a bearer token directly. There are no passwords: identity
//! proper belongs to an identity provider, which is outside this design.
//! Like `POST /tweets`, it is safe to retry with an `Idempotency-Key`: the
//! same key and body answer the user the first call created, with a fresh
//! token and 200 instead of 201, so a client whose answer was lost does not
//! find its handle taken by itself; the same key with another body is a 409.

use axum::Json as JsonResponse;
use axum::extract::State;
use axum::http::StatusCode;
use chirp_domain::input;
use chirp_grpc::ErrorKind;
use chirp_proto::graph::{
    BatchGetUsersRequest, CreateUserRequest, GetUserByHandleRequest, GetUserRequest,
    ListFollowsRequest, User, UserIdPage,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{IdempotencyKey, Json, Path, Query};
use super::pages::{Page, PageQuery, rfc3339};
use crate::AppState;
use crate::cursor::CursorKind;
use crate::error::{ApiError, RateLimited};
use crate::rate_limit::SignUpAllowed;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(sign_up))
        .routes(routes!(show))
        .routes(routes!(show_by_handle))
        .routes(routes!(followers))
        .routes(routes!(following))
}

/// A user's public profile.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = User)]
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
            created_at: rfc3339(user.created_at_ms).to_string(),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct SignUp {
    /// 1–15 letters, digits or underscores; unique, case-insensitively.
    #[schema(example = "alice", pattern = "^[A-Za-z0-9_]{1,15}$")]
    handle: String,
    /// 1–50 characters once trimmed, no control characters.
    #[schema(example = "Alice", min_length = 1, max_length = 50)]
    display_name: String,
}

/// A new account and a bearer token that speaks for it.
#[derive(Debug, Serialize, ToSchema)]
struct SignedUp {
    user_id: String,
    token: String,
    user: UserView,
}

/// Creates an account and returns a bearer token for it.
///
/// A taken handle, or an `Idempotency-Key` already used with another body, is
/// a 409 (`already_exists`, `conflict`). While the sign-up limiter cannot
/// reach its store, sign-ups are refused with a 503 and `Retry-After`.
#[utoipa::path(post, path = "/users", operation_id = "sign_up", tag = "users", request_body = SignUp,
    params(("Idempotency-Key" = Option<String>, Header,
        description = "makes retries safe: the same key and body return the first sign-up's user")),
    responses(
        (status = CREATED, description = "signed up", body = SignedUp),
        (status = OK, description = "a retry: the user first signed up with this key, a new token",
            body = SignedUp),
        (status = TOO_MANY_REQUESTS, response = RateLimited),
    ))]
async fn sign_up(
    State(state): State<AppState>,
    _: SignUpAllowed,
    IdempotencyKey(idempotency_key): IdempotencyKey,
    Json(body): Json<SignUp>,
) -> Result<(StatusCode, JsonResponse<SignedUp>), ApiError> {
    let request = CreateUserRequest {
        handle: input::handle(&body.handle)
            .map_err(ApiError::invalid)?
            .to_owned(),
        display_name: input::display_name(&body.display_name)
            .map_err(ApiError::invalid)?
            .to_owned(),
        idempotency_key,
    };
    let response = state.graph.clone().create_user(request).await?.into_inner();
    let user = response.user.ok_or_else(|| {
        ApiError::new(ErrorKind::Internal, "graph service answered without a user")
    })?;
    let signed_up = SignedUp {
        user_id: user.user_id.to_string(),
        token: state.tokens.issue(user.user_id),
        user: user.into(),
    };
    let status = if response.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, JsonResponse(signed_up)))
}

#[utoipa::path(get, path = "/users/{id}", operation_id = "get_user", tag = "users", params(("id" = i64, Path, description = "user id")),
    responses((status = OK, description = "the profile", body = UserView)))]
async fn show(
    State(state): State<AppState>,
    Path(user_id): Path<i64>,
) -> Result<JsonResponse<UserView>, ApiError> {
    Ok(JsonResponse(user(&state, user_id).await?.into()))
}

#[utoipa::path(get, path = "/users/by-handle/{handle}", operation_id = "get_user_by_handle", tag = "users",
    params(("handle" = String, Path, description = "the handle, in any case")),
    responses((status = OK, description = "the profile", body = UserView)))]
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

/// Who follows the user, in id order.
#[utoipa::path(get, path = "/users/{id}/followers", operation_id = "list_followers", tag = "users", params(("id" = i64, Path, description = "user id"), PageQuery),
    responses((status = OK, description = "a page of users", body = Page<UserView>)))]
async fn followers(
    state: State<AppState>,
    path: Path<i64>,
    query: Query<PageQuery>,
) -> Result<JsonResponse<Page<UserView>>, ApiError> {
    follow_list(state, path, query, Direction::Followers).await
}

/// Whom the user follows, in id order.
#[utoipa::path(get, path = "/users/{id}/following", operation_id = "list_following", tag = "users", params(("id" = i64, Path, description = "user id"), PageQuery),
    responses((status = OK, description = "a page of users", body = Page<UserView>)))]
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
        // A profile page may lag a replica's moment behind.
        consistent: false,
        with_following_counts: false,
    };
    user(&state, user_id).await?;
    let mut graph = state.graph.clone();
    let UserIdPage {
        user_ids,
        next_after_user_id,
        ..
    } = match direction {
        Direction::Followers => graph.list_followers(request).await?,
        Direction::Following => graph.list_following(request).await?,
    }
    .into_inner();
    // One call for the whole page, not one per user.
    let users = graph
        .batch_get_users(BatchGetUsersRequest { user_ids })
        .await?
        .into_inner()
        .users;
    let views = users.into_iter().map(UserView::from).collect();
    Ok(JsonResponse(Page::new(
        views,
        next_after_user_id,
        &state.cursors,
        CursorKind::Users,
    )))
}
