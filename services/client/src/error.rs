//! How a call can fail, told apart by how far it got: no response at all,
//! a response with an error status, or a 2xx whose body did not arrive
//! whole. The three mean different things to a caller: only the first may
//! be retried blindly (with the same `Idempotency-Key` for a post), the
//! second says what the gateway decided, the third that it acted but the
//! answer was lost.
//!
//! `Display` names a failure the way the load tool's report groups them:
//! `http 429 rate_limited` (the status and the problem document's stable
//! `code`) or `transport: connect`.

use std::fmt;

use reqwest::StatusCode;
use serde::Deserialize;

/// Why a call to the gateway failed.
#[derive(Debug)]
pub enum Error {
    /// No status arrived: the connection was refused ([`Error::refused`]),
    /// or it closed or timed out after the request was written. A refused
    /// request did nothing; of any other, the caller cannot know.
    Unanswered(reqwest::Error),
    /// The gateway answered with a status other than 2xx.
    Status {
        status: StatusCode,
        /// The problem document's `code`, if the body was one.
        code: Option<String>,
    },
    /// A 2xx status arrived, then the body broke off or was not the JSON the
    /// API documents.
    Body {
        status: StatusCode,
        source: reqwest::Error,
    },
}

/// The stable part of an RFC 9457 problem document.
#[derive(Debug, Deserialize)]
struct Problem {
    code: String,
}

impl Error {
    /// Nothing listened: the request never left the client.
    pub fn refused(&self) -> bool {
        matches!(self, Self::Unanswered(error) if error.is_connect())
    }

    /// The status the gateway answered with, if one arrived.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            Self::Unanswered(_) => None,
            Self::Status { status, .. } | Self::Body { status, .. } => Some(*status),
        }
    }

    /// An error status, named by the problem document in `body` if it is one.
    pub(crate) fn status_with_body(status: StatusCode, body: &[u8]) -> Self {
        let code = serde_json::from_slice::<Problem>(body)
            .ok()
            .map(|problem| problem.code);
        Self::Status { status, code }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Status {
                status,
                code: Some(code),
            } => write!(f, "http {} {code}", status.as_u16()),
            Self::Status { status, code: None } => write!(f, "http {}", status.as_u16()),
            Self::Unanswered(error) | Self::Body { source: error, .. } => {
                write!(f, "transport: {}", transport_kind(error))
            }
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Unanswered(error) | Self::Body { source: error, .. } => Some(error),
            Self::Status { .. } => None,
        }
    }
}

/// A short, stable name for what went wrong below HTTP.
fn transport_kind(error: &reqwest::Error) -> &'static str {
    if error.is_connect() {
        "connect"
    } else if error.is_timeout() {
        "timeout"
    } else if error.is_decode() {
        "decode"
    } else if error.is_body() {
        "body"
    } else if error.is_request() {
        "request"
    } else {
        "other"
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::TcpListener;

    use super::*;
    use crate::Gateway;

    #[test]
    fn error_statuses_are_named_by_status_and_problem_code() {
        let problem = br#"{"type":"urn:chirp:error:rate_limited","title":"Too Many Requests",
            "status":429,"detail":"too many writes, slow down","code":"rate_limited"}"#;
        let limited = Error::status_with_body(StatusCode::TOO_MANY_REQUESTS, problem);
        assert_eq!(limited.to_string(), "http 429 rate_limited");
        let proxy = Error::status_with_body(StatusCode::BAD_GATEWAY, b"<html>bad gateway</html>");
        assert_eq!(proxy.to_string(), "http 502");
        assert_eq!(proxy.status(), Some(StatusCode::BAD_GATEWAY));
        assert!(!proxy.refused());
    }

    #[tokio::test]
    async fn a_closed_port_is_refused_before_any_status() {
        let addr = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .unwrap();
        let gateway = Gateway::new(&format!("http://{addr}")).unwrap();
        let error = gateway.user(1).await.unwrap_err();
        assert!(error.refused(), "{error:?}");
        assert_eq!(
            (error.status(), error.to_string()),
            (None, "transport: connect".to_owned())
        );
    }

    /// A server that answers one request with `response` and hangs up.
    fn answer_once(response: &'static [u8]) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut request = [0; 4096];
            let _ = stream.read(&mut request);
            stream.write_all(response).unwrap();
        });
        format!("http://{addr}")
    }

    #[tokio::test]
    async fn a_2xx_whose_body_breaks_off_is_a_body_error_with_its_status() {
        let url = answer_once(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n{\"id\":\"1\"");
        let error = Gateway::new(&url).unwrap().user(1).await.unwrap_err();
        assert!(matches!(error, Error::Body { .. }), "{error:?}");
        assert_eq!(error.status(), Some(StatusCode::OK));
        assert!(error.to_string().starts_with("transport: "), "{error}");
    }

    #[tokio::test]
    async fn a_connection_closed_before_the_status_is_unanswered_not_refused() {
        let url = answer_once(b"");
        let error = Gateway::new(&url).unwrap().user(1).await.unwrap_err();
        assert!(matches!(error, Error::Unanswered(_)), "{error:?}");
        assert!(!error.refused());
    }
}
