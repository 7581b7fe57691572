//! The home timeline: what the people a user follows have posted.
//!
//! It is private: only its owner may read it, which is why the route needs
//! a token even though it is a GET.

use axum::Json as JsonResponse;
use axum::extract::State;
use chirp_common::proto::timeline::GetHomeTimelineRequest;
use chirp_common::proto::tweet::TweetPage;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{Path, Query};
use super::pages::{Page, PageQuery};
use super::tweets::{TweetView, tweet_page};
use crate::AppState;
use crate::auth::Caller;
use crate::cursor::CursorKind;
use crate::error::ApiError;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(home_timeline))
}

/// The user's home timeline, newest first; only its owner may read it.
#[utoipa::path(get, path = "/users/{id}/timeline", operation_id = "get_home_timeline", tag = "timelines",
    params(("id" = i64, Path, description = "user id, the caller's own"), PageQuery),
    security(("bearer" = [])),
    responses((status = OK, description = "a page of tweets", body = Page<TweetView>)))]
async fn home_timeline(
    State(state): State<AppState>,
    caller: Caller,
    Path(user_id): Path<i64>,
    Query(query): Query<PageQuery>,
) -> Result<JsonResponse<Page<TweetView>>, ApiError> {
    caller.must_be(user_id)?;
    let request = GetHomeTimelineRequest {
        user_id,
        before_tweet_id: query.position(&state.cursors, CursorKind::Tweets)?,
        limit: query.limit()?,
        explain: false,
    };
    let page = state
        .timeline
        .clone()
        .get_home_timeline(request)
        .await?
        .into_inner();
    let page = TweetPage {
        tweets: page.tweets,
        next_before_tweet_id: page.next_before_tweet_id,
    };
    Ok(JsonResponse(tweet_page(&state, page).await?))
}
