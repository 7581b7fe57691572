//! `GET /console/live`: the system over the last second, for the console's
//! architecture drawing.
//!
//! The gateway only serves the view; reading every service's `/metrics` and
//! turning two readings into rates is `chirp-scraper`'s, one scrape shared
//! by every open console.

use axum::Json;
use axum::extract::State;
use chirp_scraper::LiveView;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(live))
}

/// Each hop's request rate, error ratio and p99 over the last second, with
/// the fan-out's lag, delay, retries and dead letters, the tweet outbox's
/// depth and age, the timeline caches' hit ratios and coalesced waits, and
/// the graph's replica lag, read from the services' `/metrics`
/// (`CONSOLE_METRICS_TARGETS`). Polled by the console.
#[utoipa::path(get, path = "/console/live", operation_id = "get_live_system", tag = "console",
    responses((status = OK, description = "the system over the last interval", body = LiveView)))]
async fn live(State(state): State<AppState>) -> Json<LiveView> {
    Json(LiveView::clone(&*state.live.view().await))
}
