//! The REST API, one module per resource, each exposing its `router()`.
//!
//! Ids travel as JSON strings: they are 64-bit, and JavaScript numbers lose
//! precision above 2^53 (the reason Twitter's API grew `id_str`).

mod extract;
mod follows;
mod pages;
mod timelines;
mod tweets;
mod users;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::routing::get;
use chirp_common::ErrorKind;
use tower_http::trace::TraceLayer;

use crate::AppState;
use crate::error::ApiError;

pub fn router(state: AppState, max_body_bytes: usize) -> Router {
    Router::new()
        .merge(users::router())
        .merge(follows::router())
        .merge(tweets::router())
        .merge(timelines::router())
        .route("/healthz", get(|| async { "ok" }))
        .fallback(|| async { ApiError::new(ErrorKind::NotFound, "no such route") })
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .layer(TraceLayer::new_for_http().make_span_with(|request: &Request| {
            let route = request
                .extensions()
                .get::<MatchedPath>()
                .map_or("unmatched", MatchedPath::as_str);
            tracing::info_span!("http", method = %request.method(), route)
        }))
        .with_state(state)
}
