//! Tweets: post one, read one, delete one, and list an author's own.
//!
//! `POST /tweets` is idempotent through the `Idempotency-Key` header (the
//! IETF draft's name): a retry with the same key from the same user returns
//! the original tweet with 200 instead of 201, so a client whose connection
//! dropped can retry without posting twice. Without the header, every POST
//! is a new tweet.

use axum::Json as JsonResponse;
use axum::extract::State;
use axum::http::StatusCode;
use chirp_domain::input;
use chirp_grpc::ErrorKind;
use chirp_proto::tweet::{
    CreateTweetRequest, DeleteTweetRequest, GetTweetRequest, ListTweetsByAuthorRequest, Tweet,
};
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{IdempotencyKey, Json, Path, Query};
use super::hydrate::{TweetView, views};
use super::pages::{Page, PageQuery};
use super::users::user;
use crate::AppState;
use crate::cursor::CursorKind;
use crate::error::{ApiError, RateLimited};
use crate::rate_limit::Writer;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create))
        .routes(routes!(show, remove))
        .routes(routes!(by_author))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct NewTweet {
    /// 1–280 characters (Unicode scalar values), not only whitespace.
    #[schema(example = "hello, world", min_length = 1, max_length = 280)]
    content: String,
}

/// Posts a tweet as the caller.
#[utoipa::path(post, path = "/tweets", operation_id = "create_tweet", tag = "tweets", request_body = NewTweet,
    params(("Idempotency-Key" = Option<String>, Header,
        description = "makes retries safe: the same key returns the first tweet")),
    security(("bearer" = [])),
    responses(
        (status = CREATED, description = "posted", body = TweetView),
        (status = OK, description = "a retry: the tweet first posted with this key", body = TweetView),
        (status = TOO_MANY_REQUESTS, response = RateLimited),
    ))]
async fn create(
    State(state): State<AppState>,
    Writer(caller): Writer,
    IdempotencyKey(idempotency_key): IdempotencyKey,
    Json(body): Json<NewTweet>,
) -> Result<(StatusCode, JsonResponse<TweetView>), ApiError> {
    let request = CreateTweetRequest {
        author_id: caller.0,
        content: input::tweet_content(&body.content).map_err(ApiError::invalid)?,
        idempotency_key,
    };
    let response = state
        .tweets
        .clone()
        .create_tweet(request)
        .await?
        .into_inner();
    let tweet = response.tweet.ok_or_else(|| {
        ApiError::new(
            ErrorKind::Internal,
            "tweet service answered without a tweet",
        )
    })?;
    let status = if response.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let view = views(&state, vec![tweet]).await?.remove(0);
    Ok((status, JsonResponse(view)))
}

#[utoipa::path(get, path = "/tweets/{id}", operation_id = "get_tweet", tag = "tweets",
    params(("id" = i64, Path, description = "tweet id")),
    responses((status = OK, description = "the tweet", body = TweetView)))]
async fn show(
    State(state): State<AppState>,
    Path(tweet_id): Path<i64>,
) -> Result<JsonResponse<TweetView>, ApiError> {
    let tweet = tweet(&state, tweet_id).await?;
    Ok(JsonResponse(views(&state, vec![tweet]).await?.remove(0)))
}

/// One tweet from the tweet service, as stored (no author handle).
pub async fn tweet(state: &AppState, tweet_id: i64) -> Result<Tweet, ApiError> {
    Ok(state
        .tweets
        .clone()
        .get_tweet(GetTweetRequest { tweet_id })
        .await?
        .into_inner())
}

/// Deletes one of the caller's tweets; it leaves every timeline.
#[utoipa::path(delete, path = "/tweets/{id}", operation_id = "delete_tweet", tag = "tweets",
    params(("id" = i64, Path, description = "tweet id")),
    security(("bearer" = [])),
    responses(
        (status = NO_CONTENT, description = "deleted"),
        (status = TOO_MANY_REQUESTS, response = RateLimited),
    ))]
async fn remove(
    State(state): State<AppState>,
    Writer(caller): Writer,
    Path(tweet_id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    let request = DeleteTweetRequest {
        tweet_id,
        requester_id: caller.0,
    };
    state.tweets.clone().delete_tweet(request).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The author's own tweets, newest first.
#[utoipa::path(get, path = "/users/{id}/tweets", operation_id = "list_tweets_by_author", tag = "tweets",
    params(("id" = i64, Path, description = "user id"), PageQuery),
    responses((status = OK, description = "a page of tweets", body = Page<TweetView>)))]
async fn by_author(
    State(state): State<AppState>,
    Path(author_id): Path<i64>,
    Query(query): Query<PageQuery>,
) -> Result<JsonResponse<Page<TweetView>>, ApiError> {
    let request = ListTweetsByAuthorRequest {
        author_id,
        before_tweet_id: query.position(&state.cursors, CursorKind::Tweets)?,
        limit: query.limit()?,
    };
    user(&state, author_id).await?;
    let page = state
        .tweets
        .clone()
        .list_tweets_by_author(request)
        .await?
        .into_inner();
    Ok(JsonResponse(Page::new(
        views(&state, page.tweets).await?,
        page.next_before_tweet_id,
        &state.cursors,
        CursorKind::Tweets,
    )))
}
