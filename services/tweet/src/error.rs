//! Everything the tweet service can answer instead of a result.
//!
//! Store and broker failures are split by what a caller can do about them:
//! a timeout, an unreachable node or an overloaded replica is `Unavailable`
//! (retry, with the same idempotency key), anything else is `Internal`.

use chirp_grpc::{ErrorKind, ServiceError};
use rdkafka::error::KafkaError;
use scylla::errors::{
    DbError, DeserializationError, ExecutionError, IntoRowsResultError, MaybeFirstRowError,
    RequestAttemptError, RowsError, SingleRowError,
};

#[derive(Debug, thiserror::Error)]
pub enum TweetError {
    #[error("{0}")]
    InvalidArgument(String),
    #[error("tweet {0} not found")]
    TweetNotFound(i64),
    /// A create replayed the idempotency key of a tweet deleted since.
    #[error("that tweet was deleted")]
    TweetDeleted,
    #[error("idempotency key reused with a different tweet")]
    IdempotencyKeyReused,
    #[error("only the author of a tweet may delete it")]
    NotTheAuthor,
    /// Boxed: the driver's error is large, and every `Result` would carry it.
    #[error("CQL request failed")]
    Cql(#[source] Box<ExecutionError>),
    /// The store answered in a shape this code does not expect: a schema that
    /// drifted from the statements, or a bug.
    #[error("unexpected CQL result")]
    CqlResult(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("could not publish the tweet event to Kafka")]
    Publish(#[source] KafkaError),
}

impl From<ExecutionError> for TweetError {
    fn from(error: ExecutionError) -> Self {
        Self::Cql(Box::new(error))
    }
}

/// Every way of reading rows out of a CQL result fails with its own type;
/// all of them mean the same thing here.
macro_rules! unexpected_cql_result {
    ($($error:ty),+) => {$(
        impl From<$error> for TweetError {
            fn from(error: $error) -> Self {
                Self::CqlResult(Box::new(error))
            }
        }
    )+};
}

unexpected_cql_result!(
    IntoRowsResultError,
    RowsError,
    MaybeFirstRowError,
    SingleRowError,
    DeserializationError
);

impl ServiceError for TweetError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::InvalidArgument(_) => ErrorKind::InvalidArgument,
            Self::TweetNotFound(_) | Self::TweetDeleted => ErrorKind::NotFound,
            Self::IdempotencyKeyReused => ErrorKind::Conflict,
            Self::NotTheAuthor => ErrorKind::PermissionDenied,
            Self::Cql(error) if is_transient(error) => ErrorKind::Unavailable,
            Self::Cql(_) | Self::CqlResult(_) => ErrorKind::Internal,
            Self::Publish(_) => ErrorKind::Unavailable,
        }
    }
}

/// Whether the cluster could not serve the request right now, as opposed to
/// rejecting it: the same request may well succeed in a moment.
fn is_transient(error: &ExecutionError) -> bool {
    match error {
        ExecutionError::ConnectionPoolError(_)
        | ExecutionError::RequestTimeout(_)
        | ExecutionError::EmptyPlan => true,
        ExecutionError::LastAttemptError(attempt) => match attempt {
            RequestAttemptError::BrokenConnectionError(_)
            | RequestAttemptError::UnableToAllocStreamId => true,
            RequestAttemptError::DbError(db_error, _) => matches!(
                db_error,
                DbError::Unavailable { .. }
                    | DbError::Overloaded
                    | DbError::IsBootstrapping
                    | DbError::ReadTimeout { .. }
                    | DbError::WriteTimeout { .. }
                    | DbError::ReadFailure { .. }
                    | DbError::WriteFailure { .. }
                    | DbError::RateLimitReached { .. }
            ),
            _ => false,
        },
        _ => false,
    }
}

impl From<TweetError> for tonic::Status {
    fn from(error: TweetError) -> Self {
        chirp_grpc::error::into_status(error)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use scylla::errors::WriteType;
    use scylla::frame::types::Consistency;

    use super::*;

    #[test]
    fn timeouts_and_overload_are_worth_retrying() {
        let timeout = TweetError::from(ExecutionError::RequestTimeout(Duration::from_secs(2)));
        assert_eq!(timeout.kind(), ErrorKind::Unavailable);
        let write_timeout = DbError::WriteTimeout {
            consistency: Consistency::Serial,
            received: 0,
            required: 1,
            write_type: WriteType::Cas,
        };
        let paxos_timeout = TweetError::from(ExecutionError::LastAttemptError(
            RequestAttemptError::DbError(write_timeout, "timed out".to_owned()),
        ));
        assert_eq!(paxos_timeout.kind(), ErrorKind::Unavailable);
    }

    #[test]
    fn rejected_statements_are_internal() {
        let invalid = TweetError::from(ExecutionError::LastAttemptError(
            RequestAttemptError::DbError(DbError::Invalid, "unknown column".to_owned()),
        ));
        assert_eq!(invalid.kind(), ErrorKind::Internal);
    }
}
