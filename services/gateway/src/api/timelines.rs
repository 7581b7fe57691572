//! The home timeline: what the people a user follows have posted.
//!
//! It is private: only its owner may read it, which is why the route needs
//! a token even though it is a GET.

use axum::extract::State;
use axum::routing::get;
use axum::{Json as JsonResponse, Router};
use chirp_common::proto::timeline::GetHomeTimelineRequest;

use super::extract::{Path, Query};
use super::pages::{Page, PageQuery};
use super::tweets::{TweetView, tweet_page};
use crate::AppState;
use crate::auth::Caller;
use crate::cursor::CursorKind;
use crate::error::ApiError;

pub fn router() -> Router<AppState> {
    Router::new().route("/users/{id}/timeline", get(home_timeline))
}

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
    };
    let page = state.timeline.clone().get_home_timeline(request).await?.into_inner();
    Ok(JsonResponse(tweet_page(&state, page).await?))
}
