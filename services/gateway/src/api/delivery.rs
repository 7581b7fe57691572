//! `GET /tweets/{id}/delivery`: how far a tweet's fan-out has got.
//!
//! The fan-out worker counts each pipeline of timeline writes in a small
//! Redis record per tweet (`chirp_delivery`): the followers it pushed
//! the tweet to, and those it skipped, as inactive (no cached timeline),
//! as a celebrity's followers, or by the lossy fan-out. This joins it with the tweet (when it was
//! posted) and its author (how many followers). The audience is the
//! author's follower count *now*, which can differ from the audience at
//! fan-out time by the follows made since: good enough to watch a fan-out,
//! not an audit.

use axum::Json as JsonResponse;
use axum::extract::State;
use chirp_grpc::ErrorKind;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::Path;
use super::tweets::tweet;
use super::users::user;
use crate::AppState;
use crate::error::ApiError;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(delivery))
}

/// Where a fan-out stands.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
enum DeliveryState {
    /// Nothing written yet (or the record expired after an hour, or the
    /// strategy is `pull`, which writes nothing).
    Pending,
    /// Some followers are handled, not all yet.
    Delivering,
    /// Every follower is handled: the tweet was pushed into their cached
    /// timeline, or they were skipped as inactive and get it when their
    /// timeline is next rebuilt.
    Delivered,
    /// The author is a celebrity: only their own timeline was written, and
    /// followers pull the tweet when they read.
    Pulled,
}

/// A tweet's fan-out. Each follower falls in one of four counts: pushed,
/// skipped as inactive, skipped as a celebrity's follower, or skipped by
/// the lossy fan-out (an event the worker retried may count some twice).
/// The author's own timeline is not counted.
#[derive(Debug, Serialize, ToSchema)]
struct Delivery {
    tweet_id: String,
    author_id: String,
    state: DeliveryState,
    /// The author's followers, now.
    followers: i64,
    /// Followers whose cached home timeline the tweet was pushed into so
    /// far: it is on their next page.
    followers_pushed: u64,
    /// Followers skipped so far because no home timeline of theirs is cached
    /// (they have not read lately), or, with `ACTIVE_WINDOW_SECS` in the
    /// fan-out worker, they have not read within it: nothing was written for
    /// them, and their next read rebuilds their timeline from the stores, the
    /// tweet included.
    followers_skipped_inactive: u64,
    /// Followers not pushed to because the author is a celebrity (counted
    /// at fan-out time): they pull the tweet when they read.
    followers_skipped_celebrity: u64,
    /// Followers the lossy fan-out left out (`LOSSY_FANOUT_LIMIT` in the
    /// fan-out worker; 0 when it is off): they follow more accounts than
    /// the limit, and the tweet is missing from their timeline until it is
    /// next rebuilt.
    followers_skipped_lossy: u64,
    /// From the tweet's creation to the first and the last timeline write,
    /// in milliseconds; absent until the first write.
    #[serde(skip_serializing_if = "Option::is_none")]
    post_to_first_write_ms: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    post_to_last_write_ms: Option<i64>,
}

/// How far the fan-out of a tweet has got, as the fan-out worker recorded it.
#[utoipa::path(get, path = "/tweets/{id}/delivery", operation_id = "get_tweet_delivery", tag = "tweets",
    params(("id" = i64, Path, description = "tweet id")),
    responses((status = OK, description = "the fan-out so far", body = Delivery)))]
async fn delivery(
    State(state): State<AppState>,
    Path(tweet_id): Path<i64>,
) -> Result<JsonResponse<Delivery>, ApiError> {
    let tweet = tweet(&state, tweet_id).await?;
    let author = user(&state, tweet.author_id).await?;
    let record = state
        .deliveries
        .read(tweet_id)
        .await
        .map_err(|error| ApiError::new(ErrorKind::Unavailable, error.to_string()))?
        .unwrap_or_default();
    let handled = record.pushed + record.skipped_inactive + record.skipped_lossy;
    let state = if record.skipped_celebrity.is_some() {
        DeliveryState::Pulled
    } else if record.first_write_ms.is_none() {
        DeliveryState::Pending
    } else if handled as i64 >= author.follower_count {
        DeliveryState::Delivered
    } else {
        DeliveryState::Delivering
    };
    let since_post = |ms: i64| (ms - tweet.created_at_ms).max(0);
    Ok(JsonResponse(Delivery {
        tweet_id: tweet.tweet_id.to_string(),
        author_id: tweet.author_id.to_string(),
        state,
        followers: author.follower_count,
        followers_pushed: record.pushed,
        followers_skipped_inactive: record.skipped_inactive,
        followers_skipped_celebrity: record.skipped_celebrity.unwrap_or(0),
        followers_skipped_lossy: record.skipped_lossy,
        post_to_first_write_ms: record.first_write_ms.map(since_post),
        post_to_last_write_ms: record.last_write_ms.map(since_post),
    }))
}
