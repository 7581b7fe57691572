//! One table from "what went wrong" to what a caller sees, over gRPC and HTTP.
//!
//! Services return their own error enums; each variant names an
//! [`ErrorKind`], and this table alone decides the gRPC code, the HTTP status
//! and the stable machine-readable code clients can branch on. Internal causes
//! are logged where they happen and never cross the wire.

use tonic::codegen::http::StatusCode;

/// What a failure means to the caller, independent of transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The request is malformed: fix it before retrying.
    InvalidArgument,
    /// The request is well-formed but cannot apply (e.g. following yourself).
    Unprocessable,
    NotFound,
    /// A unique thing (a handle) is taken.
    AlreadyExists,
    /// The request contradicts an earlier one (an idempotency key reused for a
    /// different body).
    Conflict,
    Unauthenticated,
    PermissionDenied,
    RateLimited,
    /// A dependency is down or too slow; retrying later may work.
    Unavailable,
    Internal,
}

/// Every kind, for tables and tests.
pub const ALL_KINDS: [ErrorKind; 10] = [
    ErrorKind::InvalidArgument,
    ErrorKind::Unprocessable,
    ErrorKind::NotFound,
    ErrorKind::AlreadyExists,
    ErrorKind::Conflict,
    ErrorKind::Unauthenticated,
    ErrorKind::PermissionDenied,
    ErrorKind::RateLimited,
    ErrorKind::Unavailable,
    ErrorKind::Internal,
];

impl ErrorKind {
    pub fn grpc_code(self) -> tonic::Code {
        match self {
            Self::InvalidArgument => tonic::Code::InvalidArgument,
            Self::Unprocessable => tonic::Code::FailedPrecondition,
            Self::NotFound => tonic::Code::NotFound,
            Self::AlreadyExists => tonic::Code::AlreadyExists,
            Self::Conflict => tonic::Code::Aborted,
            Self::Unauthenticated => tonic::Code::Unauthenticated,
            Self::PermissionDenied => tonic::Code::PermissionDenied,
            Self::RateLimited => tonic::Code::ResourceExhausted,
            Self::Unavailable => tonic::Code::Unavailable,
            Self::Internal => tonic::Code::Internal,
        }
    }

    /// What a peer's `status` means, told apart from how it was made. A
    /// call the transport cut short (a reset stream, a broken connection)
    /// ends as `Unknown` or `Internal` too, but made on this side, with the
    /// transport's error as its source, not answered by the peer: that is
    /// an outage, to be retried, not the peer's fault. (A soak found such
    /// calls answered as 500s when HTTP/2 connections were reset under
    /// overload.)
    pub fn from_status(status: &tonic::Status) -> Self {
        let cut_short = std::error::Error::source(status).is_some()
            && matches!(status.code(), tonic::Code::Unknown | tonic::Code::Internal);
        if cut_short {
            Self::Unavailable
        } else {
            Self::from_grpc_code(status.code())
        }
    }

    /// The inverse of [`grpc_code`](Self::grpc_code), for the gateway. Codes
    /// chirp never sends on purpose fall back to the closest meaning.
    pub fn from_grpc_code(code: tonic::Code) -> Self {
        match code {
            tonic::Code::InvalidArgument | tonic::Code::OutOfRange => Self::InvalidArgument,
            tonic::Code::FailedPrecondition => Self::Unprocessable,
            tonic::Code::NotFound => Self::NotFound,
            tonic::Code::AlreadyExists => Self::AlreadyExists,
            tonic::Code::Aborted => Self::Conflict,
            tonic::Code::Unauthenticated => Self::Unauthenticated,
            tonic::Code::PermissionDenied => Self::PermissionDenied,
            tonic::Code::ResourceExhausted => Self::RateLimited,
            tonic::Code::Unavailable | tonic::Code::DeadlineExceeded | tonic::Code::Cancelled => {
                Self::Unavailable
            }
            tonic::Code::Ok
            | tonic::Code::Unknown
            | tonic::Code::Unimplemented
            | tonic::Code::Internal
            | tonic::Code::DataLoss => Self::Internal,
        }
    }

    pub fn http_status(self) -> StatusCode {
        match self {
            Self::InvalidArgument => StatusCode::BAD_REQUEST,
            Self::Unprocessable => StatusCode::UNPROCESSABLE_ENTITY,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::AlreadyExists | Self::Conflict => StatusCode::CONFLICT,
            Self::Unauthenticated => StatusCode::UNAUTHORIZED,
            Self::PermissionDenied => StatusCode::FORBIDDEN,
            Self::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Stable, machine-readable name; part of the public API.
    pub fn code(self) -> &'static str {
        match self {
            Self::InvalidArgument => "invalid_argument",
            Self::Unprocessable => "unprocessable",
            Self::NotFound => "not_found",
            Self::AlreadyExists => "already_exists",
            Self::Conflict => "conflict",
            Self::Unauthenticated => "unauthenticated",
            Self::PermissionDenied => "permission_denied",
            Self::RateLimited => "rate_limited",
            Self::Unavailable => "unavailable",
            Self::Internal => "internal",
        }
    }
}

/// A service's error enum: each variant knows its [`ErrorKind`].
pub trait ServiceError: std::error::Error {
    fn kind(&self) -> ErrorKind;
}

/// Turns a service error into a `tonic::Status`. Client errors keep their
/// message, which was written for the caller; internal and unavailable errors
/// are logged here with their cause and reach the caller as a bare kind.
pub fn into_status<E: ServiceError>(error: E) -> tonic::Status {
    let kind = error.kind();
    match kind {
        ErrorKind::Internal | ErrorKind::Unavailable => {
            tracing::error!(error = %error, source = ?std::error::Error::source(&error), "request failed");
            tonic::Status::new(kind.grpc_code(), kind.code())
        }
        _ => tonic::Status::new(kind.grpc_code(), error.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_survives_a_round_trip_through_grpc() {
        for kind in ALL_KINDS {
            assert_eq!(ErrorKind::from_grpc_code(kind.grpc_code()), kind);
        }
    }

    #[test]
    fn only_server_faults_are_5xx() {
        for kind in ALL_KINDS {
            let server_fault = matches!(kind, ErrorKind::Unavailable | ErrorKind::Internal);
            assert_eq!(
                kind.http_status().is_server_error(),
                server_fault,
                "{kind:?}"
            );
        }
    }
}
