//! `GET /users/popular`: the most-followed accounts, where a newcomer to a
//! seeded chirp finds someone to follow (and the celebrities the hybrid
//! timeline pulls instead of pushing).

use axum::Json as JsonResponse;
use axum::extract::State;
use chirp_proto::graph::ListPopularUsersRequest;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::Query;
use super::users::UserView;
use crate::AppState;
use crate::error::ApiError;

const MAX_LIMIT: u32 = 100;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(popular))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct PopularQuery {
    /// How many, 1–100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<u32>,
}

/// Not paginated: a top list is short by nature.
#[derive(Debug, Serialize, ToSchema)]
struct Popular {
    items: Vec<UserView>,
}

/// The users with the most followers, most first.
#[utoipa::path(get, path = "/users/popular", operation_id = "list_popular_users", tag = "users",
    params(PopularQuery),
    responses((status = OK, description = "the most-followed users", body = Popular)))]
async fn popular(
    State(state): State<AppState>,
    Query(query): Query<PopularQuery>,
) -> Result<JsonResponse<Popular>, ApiError> {
    let limit = match query.limit {
        None => 0,
        Some(limit @ 1..=MAX_LIMIT) => limit,
        Some(_) => {
            return Err(ApiError::invalid(format!(
                "limit must be between 1 and {MAX_LIMIT}"
            )));
        }
    };
    let users = state
        .graph
        .clone()
        .list_popular_users(ListPopularUsersRequest { limit })
        .await?
        .into_inner()
        .users;
    Ok(JsonResponse(Popular {
        items: users.into_iter().map(UserView::from).collect(),
    }))
}
