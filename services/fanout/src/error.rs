//! Why applying an event can fail, and what that failure means.
//!
//! The consumer retries every failure of an event it could decode (see
//! [`crate::consumer`]): the kind decides only whether the event is skipped
//! (its user is gone) and how loudly a retry is logged. `Unavailable` is an
//! outage that heals by itself; `Internal` is a refusal that will repeat
//! until someone mends its cause (a timeline key of the wrong type, a graph
//! that rejects the worker's token), and the log says so.

use chirp_grpc::{ErrorKind, ServiceError};

#[derive(Debug, thiserror::Error)]
pub enum FanoutError {
    #[error("graph service answered {:?}: {}", .0.code(), .0.message())]
    Graph(tonic::Status),
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
}

impl ServiceError for FanoutError {
    fn kind(&self) -> ErrorKind {
        match self {
            // A call cut short by a reset or broken connection ends as
            // `Unknown` or `Internal` from the transport, with nothing known
            // about the event; the graph's own `Internal` answers are
            // database faults it could not class, retried alike.
            Self::Graph(status)
                if matches!(status.code(), tonic::Code::Unknown | tonic::Code::Internal) =>
            {
                ErrorKind::Unavailable
            }
            Self::Graph(status) => ErrorKind::from_grpc_code(status.code()),
            Self::Redis(error) if rejects_the_data(error) => ErrorKind::Internal,
            Self::Redis(_) => ErrorKind::Unavailable,
        }
    }
}

/// Whether Redis refused a command because of the data it holds, which it
/// will do again until someone changes that data: a key of the wrong type
/// (`WRONGTYPE`), or a reply of an unexpected shape. Everything else,
/// connections, timeouts, a loading, read-only or out-of-memory server and
/// a generic `ERR` (as a busy or restarting server sends), may heal. A
/// pipeline fails with the errors of each of its commands that failed: one
/// refusal is enough.
fn rejects_the_data(error: &redis::RedisError) -> bool {
    if error.kind() == redis::ErrorKind::UnexpectedReturnType {
        return true;
    }
    error
        .clone()
        .into_server_errors()
        .is_some_and(|errors| errors.iter().any(|(_, error)| error.code() == "WRONGTYPE"))
}

impl From<tonic::Status> for FanoutError {
    fn from(status: tonic::Status) -> Self {
        Self::Graph(status)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(code: tonic::Code) -> ErrorKind {
        FanoutError::Graph(tonic::Status::new(code, "")).kind()
    }

    /// The error of a command Redis answered with `reply` (RESP).
    fn redis_reply(reply: &str) -> ErrorKind {
        let value = redis::parse_redis_value(reply.as_bytes()).unwrap();
        let redis::Value::ServerError(error) = value else {
            panic!("{reply:?} is not an error reply");
        };
        FanoutError::Redis(error.into()).kind()
    }

    #[test]
    fn a_broken_call_to_the_graph_is_an_outage() {
        assert_eq!(graph(tonic::Code::Unknown), ErrorKind::Unavailable);
        assert_eq!(graph(tonic::Code::Internal), ErrorKind::Unavailable);
        assert_eq!(graph(tonic::Code::Unavailable), ErrorKind::Unavailable);
        assert_eq!(graph(tonic::Code::NotFound), ErrorKind::NotFound);
        assert_eq!(
            graph(tonic::Code::PermissionDenied),
            ErrorKind::PermissionDenied
        );
    }

    #[test]
    fn only_data_of_the_wrong_type_is_a_refusal_from_redis() {
        assert_eq!(
            redis_reply("-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"),
            ErrorKind::Internal
        );
        assert_eq!(
            redis_reply("-ERR max number of clients reached\r\n"),
            ErrorKind::Unavailable
        );
        assert_eq!(
            redis_reply("-LOADING Redis is loading the dataset in memory\r\n"),
            ErrorKind::Unavailable
        );
    }
}
