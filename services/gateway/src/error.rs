//! The one error shape of the public API: RFC 9457 problem details.
//!
//! Every failure, from a malformed cursor to a dead backend, reaches the
//! client as `application/problem+json` with a stable machine-readable
//! `code`. The status comes from `chirp_common`'s single table, so a gRPC
//! error from any service maps to HTTP in exactly one place. Server-side
//! faults are logged here with their cause and sent as a bare title.

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use chirp_common::ErrorKind;
use serde::Serialize;

#[derive(Debug)]
pub struct ApiError {
    kind: ErrorKind,
    detail: String,
    /// Overrides the status of `kind` where HTTP is more precise (415, 413).
    status: Option<axum::http::StatusCode>,
}

impl ApiError {
    pub fn new(kind: ErrorKind, detail: impl Into<String>) -> Self {
        Self {
            kind,
            detail: detail.into(),
            status: None,
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
}

#[derive(Serialize)]
struct Problem<'a> {
    r#type: String,
    title: &'a str,
    status: u16,
    detail: &'a str,
    code: &'a str,
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
            detail: if server_fault { title } else { &self.detail },
            code: self.kind.code(),
        };
        let mut response = (status, Json(problem)).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        response
    }
}

/// A failed internal call. The services' messages for client errors were
/// written for callers and pass through; anything else stays in the logs.
impl From<tonic::Status> for ApiError {
    fn from(status: tonic::Status) -> Self {
        Self::new(ErrorKind::from_grpc_code(status.code()), status.message())
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
