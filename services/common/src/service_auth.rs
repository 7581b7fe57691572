//! Who may call a chirp gRPC service: other chirp services, proven by a
//! shared token.
//!
//! The internal services trust what they are told: `DeleteTweet` deletes for
//! whichever author the request names, because the gateway has already
//! checked the caller's bearer token. Without a credential of their own,
//! anything that can open a connection to them (any pod in the cluster) could
//! act as anyone. With `INTERNAL_TOKEN` set, every client
//! ([`crate::grpc::connect_lazy_with`]) sends it, and every server
//! ([`crate::grpc::serve`]) refuses a call without it as `Unauthenticated`;
//! health checks and reflection stay open for probes and `grpcurl`. A shared
//! token over mTLS: one secret to distribute and rotate (restart everything
//! with the new one) instead of a certificate authority, at the price of
//! telling services apart (any holder may call any service) and of sending
//! it in clear where the network is not encrypted — the NetworkPolicy in
//! deploy/k8s narrows who can even connect. Empty, nothing is checked: the
//! tests and a laptop need no setup.

use std::fmt;

use subtle::ConstantTimeEq;
use tonic::metadata::{AsciiMetadataValue, MetadataMap};
use tonic::service::Interceptor;
use tonic::{Request, Status};

use crate::trace_context::InjectTraceContext;

/// The metadata key that carries the token.
const HEADER: &str = "x-chirp-service-token";

/// The configuration every chirp binary flattens into its `Config`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ServiceAuthArgs {
    /// Shared secret that every internal gRPC call carries and every chirp gRPC server
    /// requires (health and reflection excepted), at least 32 characters; empty (the
    /// default): calls between services are not authenticated.
    #[arg(long, env = "INTERNAL_TOKEN", default_value = "", value_parser = ServiceToken::parse)]
    pub internal_token: ServiceToken,
}

/// The shared token, or none (the default); never printed.
#[derive(Clone, Default)]
pub struct ServiceToken(Option<AsciiMetadataValue>);

impl ServiceToken {
    pub const MIN_LEN: usize = 32;

    /// No token for an empty string.
    pub fn parse(raw: &str) -> Result<Self, String> {
        if raw.is_empty() {
            return Ok(Self(None));
        }
        let printable = raw.chars().all(|c| c.is_ascii_graphic());
        if raw.len() < Self::MIN_LEN || !printable {
            return Err(format!(
                "must be empty or at least {} printable ASCII characters",
                Self::MIN_LEN
            ));
        }
        let mut value = AsciiMetadataValue::try_from(raw).map_err(|e| e.to_string())?;
        value.set_sensitive(true);
        Ok(Self(Some(value)))
    }

    /// Whether `metadata` carries this token; anything does when there is none.
    fn admits(&self, metadata: &MetadataMap) -> bool {
        let Some(token) = &self.0 else {
            return true;
        };
        metadata
            .get(HEADER)
            .is_some_and(|sent| sent.as_bytes().ct_eq(token.as_bytes()).into())
    }
}

impl fmt::Debug for ServiceToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = if self.0.is_some() { "***" } else { "none" };
        write!(f, "ServiceToken({shown})")
    }
}

/// What every outgoing call carries: the trace context, and the token if
/// this process has one.
#[derive(Debug, Clone, Default)]
pub struct Outgoing(ServiceToken);

impl Outgoing {
    pub fn new(token: ServiceToken) -> Self {
        Self(token)
    }
}

impl Interceptor for Outgoing {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(token) = &self.0.0 {
            request.metadata_mut().insert(HEADER, token.clone());
        }
        InjectTraceContext.call(request)
    }
}

/// The server side: lets a call through only with the token, if one is set.
#[derive(Debug, Clone, Default)]
pub struct RequireToken(ServiceToken);

impl RequireToken {
    pub fn new(token: ServiceToken) -> Self {
        Self(token)
    }
}

impl Interceptor for RequireToken {
    fn call(&mut self, request: Request<()>) -> Result<Request<()>, Status> {
        if self.0.admits(request.metadata()) {
            Ok(request)
        } else {
            Err(Status::unauthenticated(
                "internal calls need the service token (INTERNAL_TOKEN)",
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(raw: &str) -> ServiceToken {
        ServiceToken::parse(raw).unwrap()
    }

    #[test]
    fn a_server_with_a_token_lets_through_only_calls_that_carry_it() {
        let secret = "s".repeat(32);
        let mut server = RequireToken::new(token(&secret));
        let sent = |token: ServiceToken| {
            Outgoing::new(token)
                .call(Request::new(()))
                .expect("the client side never fails")
        };
        assert!(server.call(sent(token(&secret))).is_ok());
        let wrong = server.call(sent(token(&"t".repeat(32)))).unwrap_err();
        assert_eq!(wrong.code(), tonic::Code::Unauthenticated);
        assert!(server.call(sent(ServiceToken::default())).is_err());
        let open = RequireToken::default().call(sent(ServiceToken::default()));
        assert!(open.is_ok(), "no token: nothing is checked");
    }

    #[test]
    fn tokens_are_long_and_never_printed() {
        assert!(ServiceToken::parse("short").is_err());
        assert!(ServiceToken::parse(&format!("{} x", "s".repeat(32))).is_err());
        assert_eq!(format!("{:?}", token(&"s".repeat(32))), "ServiceToken(***)");
        assert_eq!(format!("{:?}", token("")), "ServiceToken(none)");
    }
}
