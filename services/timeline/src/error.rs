//! Everything the timeline service can answer instead of a timeline.

use chirp_grpc::{ErrorKind, ServiceError};

/// `Clone` because one rebuild's outcome is shared by every read waiting on it.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TimelineError {
    #[error("{0}")]
    InvalidArgument(String),
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// The tweet service failed; its code tells the caller what that means.
    #[error("tweet service: {}", .0.message())]
    Tweet(tonic::Status),
    /// The graph service failed; its code tells the caller what that means.
    #[error("graph service: {}", .0.message())]
    Graph(tonic::Status),
    /// Not now, try again: a rebuild past its deadline.
    #[error("{0}")]
    Unavailable(String),
    /// A task of ours died (a panic): a bug, not the caller's fault.
    #[error("{0}")]
    Internal(String),
}

impl ServiceError for TimelineError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::InvalidArgument(_) => ErrorKind::InvalidArgument,
            Self::Unavailable(_) => ErrorKind::Unavailable,
            Self::Redis(error)
                if error.is_io_error()
                    || error.is_timeout()
                    || error.is_connection_dropped()
                    || error.is_connection_refusal() =>
            {
                ErrorKind::Unavailable
            }
            Self::Redis(_) | Self::Internal(_) => ErrorKind::Internal,
            Self::Tweet(status) | Self::Graph(status) => ErrorKind::from_status(status),
        }
    }
}

impl From<TimelineError> for tonic::Status {
    fn from(error: TimelineError) -> Self {
        chirp_grpc::error::into_status(error)
    }
}
