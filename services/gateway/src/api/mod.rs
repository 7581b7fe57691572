//! The REST API, one module per resource, each exposing its `router()`.
//!
//! Ids travel as JSON strings: they are 64-bit, and JavaScript numbers lose
//! precision above 2^53 (the reason Twitter's API grew `id_str`).

mod delivery;
mod extract;
mod follows;
pub(crate) mod hydrate;
mod openapi;
mod pages;
mod popular;
mod timelines;
mod tweets;
mod users;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use chirp_grpc::ErrorKind;
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;

use crate::AppState;
use crate::error::ApiError;

/// Every route with its documentation.
fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .merge(users::router())
        .merge(popular::router())
        .merge(follows::router())
        .merge(tweets::router())
        .merge(delivery::router())
        .merge(timelines::router())
        .merge(openapi::router())
        .merge(crate::console::live::router())
}

/// The OpenAPI document of [`router`], served at `/openapi.json`.
pub fn document() -> utoipa::openapi::OpenApi {
    let (_, mut document) = routes().split_for_parts();
    openapi::BearerAndProblems.modify(&mut document);
    document
}

pub fn router(state: AppState, max_body_bytes: usize) -> Router {
    let (router, _) = routes().split_for_parts();
    router
        .merge(crate::console::router())
        .fallback(|| async { ApiError::new(ErrorKind::NotFound, "no such route") })
        .layer(DefaultBodyLimit::max(max_body_bytes))
        // A span per request, continuing the client's `traceparent`, and the
        // request metrics, both named by the route that matched.
        .layer(chirp_runtime::observe::http())
        .with_state(state)
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use axum::body::Body;
    use axum::http::{Method, StatusCode};
    use clap::Parser;
    use tower::ServiceExt;

    use super::*;
    use crate::Config;

    /// The checked-in copy, which reviewers read when the API changes.
    fn checked_in_path() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/openapi.json")
    }

    #[test]
    fn the_checked_in_document_is_current() {
        let generated = document()
            .to_pretty_json()
            .expect("the document serializes")
            + "\n";
        let path = checked_in_path();
        if std::env::var_os("CHIRP_BLESS").is_some() {
            std::fs::write(&path, &generated).expect("write docs/openapi.json");
            return;
        }
        let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            checked_in == generated,
            "docs/openapi.json is stale: rerun with CHIRP_BLESS=1 and review the diff"
        );
    }

    /// Every operation of the document, as `METHOD /path`.
    fn documented() -> Vec<String> {
        let document = serde_json::to_value(document()).expect("the document serializes");
        let mut operations = Vec::new();
        for (path, item) in document["paths"].as_object().expect("paths") {
            for method in item.as_object().expect("a path item").keys() {
                operations.push(format!("{} {path}", method.to_uppercase()));
            }
        }
        operations.sort();
        operations
    }

    #[test]
    fn every_route_is_documented() {
        let expected = [
            "DELETE /follow/{target_user_id}",
            "DELETE /tweets/{id}",
            "GET /console/live",
            "GET /healthz",
            "GET /openapi.json",
            "GET /tweets/{id}",
            "GET /tweets/{id}/delivery",
            "GET /users/by-handle/{handle}",
            "GET /users/popular",
            "GET /users/{id}",
            "GET /users/{id}/followers",
            "GET /users/{id}/following",
            "GET /users/{id}/timeline",
            "GET /users/{id}/tweets",
            "POST /follow",
            "POST /tweets",
            "POST /users",
        ];
        assert_eq!(documented(), expected);
    }

    /// The other direction: each documented operation reaches a handler, not
    /// the fallback or a 405. No backend runs; failing handlers are fine.
    #[tokio::test]
    async fn every_documented_operation_is_routed() {
        let config = Config::parse_from([
            "gateway",
            "--token-secret",
            "a-test-secret-of-at-least-32-bytes",
            "--tweet-addr",
            "127.0.0.1:1",
            "--graph-addr",
            "127.0.0.1:1",
            "--timeline-addr",
            "127.0.0.1:1",
            "--redis-url",
            "redis://127.0.0.1:1",
        ]);
        let app = crate::app(&config).expect("the app builds");
        for operation in documented() {
            let (method, path) = operation.split_once(' ').expect("METHOD /path");
            let uri = path
                .replace("{id}", "1")
                .replace("{target_user_id}", "1")
                .replace("{handle}", "alice");
            let request = axum::http::Request::builder()
                .method(Method::from_bytes(method.as_bytes()).expect("a method"))
                .uri(uri)
                .body(Body::empty())
                .expect("a request");
            let response = app.clone().oneshot(request).await.expect("infallible");
            let status = response.status();
            let body = axum::body::to_bytes(response.into_body(), usize::MAX)
                .await
                .expect("a body");
            let unrouted = status == StatusCode::METHOD_NOT_ALLOWED
                || (status == StatusCode::NOT_FOUND
                    && String::from_utf8_lossy(&body).contains("no such route"));
            assert!(!unrouted, "{operation} is documented but not routed");
        }
    }
}
