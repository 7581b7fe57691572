//! Everything the graph service can answer instead of a result, and which of
//! those may heal on their own.
//!
//! The line between `Unavailable` and `Internal` is what a caller acts on: a
//! fan-out worker or a client retries the first and reports the second. A
//! database error is `Unavailable` when Postgres says the statement failed
//! for reasons of the moment (a restart, a cancelled or timed-out query, a
//! serialization or deadlock conflict, too many connections) and `Internal`
//! only when the statement itself is at fault, which no retry mends.

use chirp_grpc::{ErrorKind, ServiceError};

#[derive(Debug, thiserror::Error)]
pub enum GraphError {
    #[error("{0}")]
    InvalidArgument(String),
    #[error("user {0} not found")]
    UserNotFound(i64),
    #[error("no user has the handle {0:?}")]
    HandleNotFound(String),
    #[error("the handle {0:?} is taken")]
    HandleTaken(String),
    #[error("this idempotency key was used for a sign-up with another handle or display name")]
    IdempotencyKeyReused,
    #[error("users cannot follow themselves")]
    SelfFollow,
    #[error("database error")]
    Database(#[from] sqlx::Error),
    /// The follow changed, but the follower's cached timeline could not be
    /// dropped; retrying the (idempotent) call drops it.
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
}

impl ServiceError for GraphError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::InvalidArgument(_) => ErrorKind::InvalidArgument,
            Self::UserNotFound(_) | Self::HandleNotFound(_) => ErrorKind::NotFound,
            Self::HandleTaken(_) => ErrorKind::AlreadyExists,
            Self::IdempotencyKeyReused => ErrorKind::Conflict,
            Self::SelfFollow => ErrorKind::Unprocessable,
            Self::Database(error) if transient(error) => ErrorKind::Unavailable,
            Self::Database(_) => ErrorKind::Internal,
            Self::Redis(_) => ErrorKind::Unavailable,
        }
    }
}

/// Whether a database failure may heal by itself: the connection or the
/// pool failed, or Postgres refused the statement for a passing reason.
fn transient(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(error) => error.code().is_some_and(|code| transient_sqlstate(&code)),
        _ => false,
    }
}

/// The SQLSTATEs of a statement that may succeed when sent again: class 08
/// (connection exception), `40001` serialization failure and `40P01`
/// deadlock (the transaction lost a race), class 53 (insufficient resources:
/// too many connections, out of memory or disk), `55P03` lock not available,
/// `57014` query cancelled (a statement timeout, or an operator's
/// `pg_cancel_backend`), `57P01`–`57P03` (the server shutting down, crashed,
/// or not accepting connections yet), and `25006` read-only transaction (a
/// primary demoted by a failover, until the pool reaches the new one).
fn transient_sqlstate(code: &str) -> bool {
    code.starts_with("08")
        || code.starts_with("53")
        || matches!(
            code,
            "40001" | "40P01" | "55P03" | "57014" | "57P01" | "57P02" | "57P03" | "25006"
        )
}

impl From<GraphError> for tonic::Status {
    fn from(error: GraphError) -> Self {
        chirp_grpc::error::into_status(error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passing_refusals_are_unavailable_and_faulty_statements_internal() {
        for code in [
            "08006", "40001", "40P01", "53300", "55P03", "57014", "57P01", "57P02", "57P03",
            "25006",
        ] {
            assert!(transient_sqlstate(code), "{code}");
        }
        // Undefined table, syntax error, unique and foreign-key violations.
        for code in ["42P01", "42601", "23505", "23503", "XX000"] {
            assert!(!transient_sqlstate(code), "{code}");
        }
        assert_eq!(
            GraphError::Database(sqlx::Error::PoolTimedOut).kind(),
            ErrorKind::Unavailable
        );
        assert_eq!(
            GraphError::Database(sqlx::Error::RowNotFound).kind(),
            ErrorKind::Internal
        );
    }
}
