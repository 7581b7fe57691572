//! The OpenAPI 3 document of the API, generated from the code.
//!
//! Every handler carries a `#[utoipa::path]` and is registered through
//! `utoipa_axum::routes!`, which adds the route and its documentation in one
//! step, so the router and the document cannot drift apart. What the
//! handlers do not say is added here once: the bearer scheme, and a
//! problem+json `default` response on every operation (every route can fail
//! with at least 400 or 503, and listing each status per route would only
//! repeat the error table). A copy is checked in at `docs/openapi.json`; a
//! test fails when it is stale, so changes to the API show up in review.

use std::sync::LazyLock;

use axum::http::header;
use axum::response::IntoResponse;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{OpenApi as Document, Ref};
use utoipa::{Modify, OpenApi, ToResponse};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::{AnyProblem, Problem, RateLimited};

#[derive(OpenApi)]
#[openapi(
    info(title = "chirp", description = "The public REST API of chirp, a reference design of Twitter."),
    tags(
        (name = "users", description = "sign-up, profiles, follower lists"),
        (name = "follows", description = "following and unfollowing"),
        (name = "tweets", description = "posting, reading and deleting tweets"),
        (name = "timelines", description = "home timelines"),
        (name = "meta", description = "health and this document"),
        (name = "console", description = "what the web console at / reads besides the API"),
    ),
    components(schemas(Problem), responses(AnyProblem, RateLimited)),
)]
pub struct ApiDoc;

/// Adds what is common to all operations; runs once the routes are in.
pub struct BearerAndProblems;

impl Modify for BearerAndProblems {
    fn modify(&self, openapi: &mut Document) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let bearer = Http::builder()
            .scheme(HttpAuthScheme::Bearer)
            .bearer_format("JWT")
            .build();
        components.add_security_scheme("bearer", SecurityScheme::Http(bearer));
        let (problem, _) = AnyProblem::response();
        for item in openapi.paths.paths.values_mut() {
            let operations = [
                &mut item.get,
                &mut item.post,
                &mut item.put,
                &mut item.patch,
                &mut item.delete,
            ];
            for operation in operations.into_iter().flatten() {
                operation
                    .responses
                    .responses
                    .entry("default".to_owned())
                    .or_insert_with(|| Ref::from_response_name(problem).into());
            }
        }
    }
}

/// The routes that document themselves: health and the document.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(openapi_json))
}

/// Answers while the process serves; it does not probe the backends.
#[utoipa::path(get, path = "/healthz", operation_id = "healthz", tag = "meta",
    responses((status = OK, description = "serving", body = String, content_type = "text/plain")))]
async fn healthz() -> &'static str {
    "ok"
}

/// This document.
#[utoipa::path(get, path = "/openapi.json", operation_id = "get_openapi", tag = "meta",
    responses((status = OK, description = "the OpenAPI 3.1 document", body = Object)))]
async fn openapi_json() -> impl IntoResponse {
    static JSON: LazyLock<String> =
        LazyLock::new(|| super::document().to_pretty_json().unwrap_or_default());
    ([(header::CONTENT_TYPE, "application/json")], JSON.as_str())
}
