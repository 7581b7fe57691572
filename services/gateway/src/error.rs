//! The one error shape of the public API: RFC 9457 problem details.
//!
//! Every failure, from a malformed cursor to a dead backend, reaches the
//! client as `application/problem+json` with a stable machine-readable
//! `code`. The status comes from `chirp_grpc::error`'s single table, so a gRPC
//! error from any service maps to HTTP in exactly one place. Server-side
//! faults are logged here with their cause and sent as a bare title.

use std::time::Duration;

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use chirp_grpc::ErrorKind;
use chirp_grpc::error::ALL_KINDS;
use serde::Serialize;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::schema::{Object, ObjectBuilder, Type};
use utoipa::openapi::{Content, Ref, RefOr, ResponseBuilder};
use utoipa::{ToResponse, ToSchema};

#[derive(Debug)]
pub struct ApiError {
    kind: ErrorKind,
    detail: String,
    /// Overrides the status of `kind` where HTTP is more precise (415, 413).
    status: Option<axum::http::StatusCode>,
    /// Sent as `Retry-After` (seconds), so a throttled client knows when to come back.
    retry_after: Option<Duration>,
    /// A server-side refusal whose detail was written for clients (a pause),
    /// not an internal cause: sent as is.
    public: bool,
}

impl ApiError {
    pub fn new(kind: ErrorKind, detail: impl Into<String>) -> Self {
        Self {
            kind,
            detail: detail.into(),
            status: None,
            retry_after: None,
            public: false,
        }
    }

    pub fn invalid(detail: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidArgument, detail)
    }

    pub fn unauthenticated(detail: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unauthenticated, detail)
    }

    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(ErrorKind::PermissionDenied, detail)
    }

    /// Too many requests of one kind (`writes`, `signups`); a retry after
    /// `retry_after` will be let through.
    pub fn rate_limited(what: &str, retry_after: Duration) -> Self {
        let detail = format!("too many {what}, slow down");
        let mut error = Self::new(ErrorKind::RateLimited, detail);
        error.retry_after = Some(retry_after);
        error
    }

    /// A 503 on purpose: this kind of request is refused for now (`detail`
    /// says why, for the client), and may be retried after `retry_after`.
    pub fn paused(detail: impl Into<String>, retry_after: Duration) -> Self {
        let mut error = Self::new(ErrorKind::Unavailable, detail);
        error.retry_after = Some(retry_after);
        error.public = true;
        error
    }
}

/// The body of every error response, as `application/problem+json`.
#[derive(Serialize, ToSchema)]
pub struct Problem<'a> {
    /// `urn:chirp:error:<code>`.
    r#type: String,
    /// The HTTP reason phrase.
    title: &'a str,
    status: u16,
    /// For people; for server errors it says no more than the title.
    detail: &'a str,
    /// Stable and machine-readable: branch on this.
    #[schema(schema_with = error_codes)]
    code: &'a str,
}

/// The documented codes come from the same table as the responses.
fn error_codes() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(ALL_KINDS.iter().map(|kind| kind.code())))
        .build()
}

const PROBLEM_JSON: &str = "application/problem+json";

fn problem_response(description: &str) -> ResponseBuilder {
    ResponseBuilder::new().description(description).content(
        PROBLEM_JSON,
        Content::new(Some(Ref::from_schema_name("Problem"))),
    )
}

/// Any error: the `default` response of every operation.
pub struct AnyProblem;

impl<'r> ToResponse<'r> for AnyProblem {
    fn response() -> (&'r str, RefOr<utoipa::openapi::Response>) {
        (
            "Problem",
            problem_response("an error, as RFC 9457 problem details")
                .build()
                .into(),
        )
    }
}

/// A write or a home-timeline read over the caller's rate limit, or a
/// sign-up over its network's.
pub struct RateLimited;

impl<'r> ToResponse<'r> for RateLimited {
    fn response() -> (&'r str, RefOr<utoipa::openapi::Response>) {
        let retry_after = HeaderBuilder::new()
            .schema(
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .minimum(Some(1)),
            )
            .description(Some("seconds until such a request will be let through"))
            .build();
        let response = problem_response("too many requests: code `rate_limited`")
            .header("Retry-After", retry_after)
            .build();
        ("RateLimited", response.into())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status.unwrap_or_else(|| self.kind.http_status());
        let server_fault = status.is_server_error();
        if server_fault {
            tracing::error!(code = self.kind.code(), detail = %self.detail, "request failed");
        }
        let title = status.canonical_reason().unwrap_or("Error");
        let problem = Problem {
            r#type: format!("urn:chirp:error:{}", self.kind.code()),
            title,
            status: status.as_u16(),
            detail: if server_fault && !self.public {
                title
            } else {
                &self.detail
            },
            code: self.kind.code(),
        };
        let mut response = (status, Json(problem)).into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if let Some(retry_after) = self.retry_after {
            // Whole seconds, rounded up: retrying early would be refused again.
            let secs = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
        }
        response
    }
}

/// A failed internal call, narrowed. A peer's answers about the data (not
/// found, taken, conflicting, not applicable, not yours: a tweet's author is
/// known only to the tweet service) are the client's answers too,
/// and their messages, written for callers, pass through. Anything else is a
/// fault on this side of the API, never the client's: the gateway validates
/// its input before calling (`chirp_domain::input`), so a peer's
/// `InvalidArgument` is a gateway bug, and an `Unauthenticated` a wrong
/// `INTERNAL_TOKEN`. Those become a 500, an overloaded or unreachable peer a
/// 503; the peer's message is logged and the client sees only the title.
/// A call the transport cut short is an outage too ([`ErrorKind::from_status`]).
impl From<tonic::Status> for ApiError {
    fn from(status: tonic::Status) -> Self {
        let kind = match ErrorKind::from_status(&status) {
            kind @ (ErrorKind::NotFound
            | ErrorKind::AlreadyExists
            | ErrorKind::Conflict
            | ErrorKind::Unprocessable
            | ErrorKind::PermissionDenied) => kind,
            ErrorKind::Unavailable | ErrorKind::RateLimited => ErrorKind::Unavailable,
            ErrorKind::InvalidArgument | ErrorKind::Unauthenticated | ErrorKind::Internal => {
                ErrorKind::Internal
            }
        };
        let detail = format!("{:?}: {}", status.code(), status.message());
        Self::new(
            kind,
            if kind.http_status().is_server_error() {
                detail
            } else {
                status.message().to_owned()
            },
        )
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        let status = rejection.status();
        let mut error = Self::invalid(rejection.body_text());
        error.status = Some(status);
        error
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        Self::invalid(rejection.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        Self::invalid(rejection.body_text())
    }
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;

    use super::*;

    async fn answer(status: tonic::Status) -> (StatusCode, serde_json::Value) {
        let response = ApiError::from(status).into_response();
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("a body");
        (status, serde_json::from_slice(&body).expect("problem+json"))
    }

    #[tokio::test]
    async fn peer_errors_narrow_to_answers_about_the_data_or_a_server_fault() {
        let (status, problem) = answer(tonic::Status::not_found("tweet 7 not found")).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(problem["detail"], "tweet 7 not found");
        let (status, _) = answer(tonic::Status::already_exists("the handle is taken")).await;
        assert_eq!(status, StatusCode::CONFLICT);
        let (status, _) = answer(tonic::Status::permission_denied("not the author")).await;
        assert_eq!(status, StatusCode::FORBIDDEN);

        let (status, problem) = answer(tonic::Status::invalid_argument("tweet service: x")).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{problem}");
        assert_eq!(
            problem["detail"], "Internal Server Error",
            "nothing of the peer's"
        );
        let (status, _) = answer(tonic::Status::unauthenticated("internal token")).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        for overloaded in [
            tonic::Status::unavailable("down"),
            tonic::Status::resource_exhausted("busy"),
            tonic::Status::deadline_exceeded("slow"),
        ] {
            assert_eq!(answer(overloaded).await.0, StatusCode::SERVICE_UNAVAILABLE);
        }
    }

    #[tokio::test]
    async fn a_call_the_transport_cut_short_is_an_outage_not_a_fault() {
        let reset = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "stream reset");
        let cut_short = tonic::Status::from_error(Box::new(reset));
        assert!(matches!(
            cut_short.code(),
            tonic::Code::Unknown | tonic::Code::Internal
        ));
        assert_eq!(answer(cut_short).await.0, StatusCode::SERVICE_UNAVAILABLE);
        let answered = tonic::Status::internal("the peer's own fault");
        assert_eq!(answer(answered).await.0, StatusCode::INTERNAL_SERVER_ERROR);
    }
}
