//! Everything the graph service can answer instead of a result.

use chirp_common::{ErrorKind, ServiceError};

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
            Self::Database(
                sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_),
            ) => ErrorKind::Unavailable,
            Self::Database(_) => ErrorKind::Internal,
            Self::Redis(_) => ErrorKind::Unavailable,
        }
    }
}

impl From<GraphError> for tonic::Status {
    fn from(error: GraphError) -> Self {
        chirp_common::error::into_status(error)
    }
}
