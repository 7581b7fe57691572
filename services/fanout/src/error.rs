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
/// failure means: the consumer skips `NotFound`, retries `Unavailable` for as
/// long as it lasts, and dead-letters the rest after a few attempts.
impl ServiceError for FanoutError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Graph(status) => ErrorKind::from_grpc_code(status.code()),
            Self::Redis(error) if rejects_the_command(error) => ErrorKind::Internal,
            Self::Redis(_) => ErrorKind::Unavailable,
        }
    }
}

/// Whether Redis refused a command on this data, which it will do again
/// however often it is sent: a key holding the wrong type (`WRONGTYPE`), a
/// generic `ERR` (a bad argument, a failing script), or a reply of an
/// unexpected shape. Everything else (connections, timeouts, a loading,
/// read-only or replica-less server) may heal. A pipeline fails with the
/// errors of each of its commands that failed: one refusal is enough.
fn rejects_the_command(error: &redis::RedisError) -> bool {
    if error.kind() == redis::ErrorKind::UnexpectedReturnType {
        return true;
    }
    error.clone().into_server_errors().is_some_and(|errors| {
        errors
            .iter()
            .any(|(_, error)| matches!(error.code(), "WRONGTYPE" | "ERR"))
    })
}

impl From<tonic::Status> for FanoutError {
    fn from(status: tonic::Status) -> Self {
        Self::Graph(status)
    }
}
