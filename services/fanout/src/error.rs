//! Why applying an event can fail, and whether trying again can help.

use chirp_common::{ErrorKind, ServiceError};

#[derive(Debug, thiserror::Error)]
pub enum FanoutError {
    #[error("graph service answered {:?}: {}", .0.code(), .0.message())]
    Graph(tonic::Status),
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
}

/// The worker has no callers to answer, but the shared table still says what a
/// failure means: the consumer retries everything except `NotFound`.
impl ServiceError for FanoutError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Graph(status) => ErrorKind::from_grpc_code(status.code()),
            Self::Redis(_) => ErrorKind::Unavailable,
        }
    }
}

impl From<tonic::Status> for FanoutError {
    fn from(status: tonic::Status) -> Self {
        Self::Graph(status)
    }
}
