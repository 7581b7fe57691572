//! Who may call a chirp gRPC service: other chirp services, proven by a
//! shared token.
//!
//! The internal services trust what they are told: `DeleteTweet` deletes for
//! whichever author the request names, because the gateway has already
//! checked the caller's bearer token. Without a credential of their own,
//! anything that can open a connection to them (any pod in the cluster) could
//! act as anyone. With `INTERNAL_TOKEN` set, every client
//! ([`crate::connect_lazy_with`]) sends it, and every server
//! ([`crate::serve`]) refuses a call without it as `Unauthenticated`;
//! health checks and reflection stay open for probes and `grpcurl`. A shared
//! token over mTLS: one secret to distribute and rotate (restart everything
//! with the new one) instead of a certificate authority, at the price of
//! telling services apart (any holder may call any service) and of sending
//! it in clear where the network is not encrypted — the NetworkPolicy in
//! deploy/k8s narrows who can even connect. Empty, nothing is checked: the
//! tests and a laptop need no setup, and each service says so once, loudly,
//! when it starts ([`ServiceAuthArgs::token`]). A token published with chirp
//! (the local Kubernetes overlay's) keeps nothing out either: like the
//! gateway's published `TOKEN_SECRET`, it is refused unless
//! `INSECURE_DEV_SECRET` says the deployment is a laptop.

use std::fmt;

use subtle::ConstantTimeEq;
use tonic::metadata::{AsciiMetadataValue, MetadataMap};
use tonic::service::Interceptor;
use tonic::{Request, Status};

use chirp_runtime::trace_context::InjectTraceContext;

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
    /// Accept a secret published with chirp (the example TOKEN_SECRET of .env.example,
    /// docker-compose.yml and the local Kubernetes overlay, that overlay's INTERNAL_TOKEN),
    /// which anyone can use: for a deployment only its own machine can reach.
    #[arg(long, env = "INSECURE_DEV_SECRET", default_value_t = false,
          action = clap::ArgAction::Set)]
    pub insecure_dev_secret: bool,
}

/// Internal tokens written in this repository: they keep nothing out.
const PUBLISHED_TOKENS: [&str; 1] = ["dev-only-internal-token-change-me-anywhere-else"];

impl ServiceAuthArgs {
    /// The token this service sends and requires, checked once at start:
    /// none is allowed with a loud warning (the tests and a laptop run so),
    /// a published one only with `INSECURE_DEV_SECRET`. `service` names the
    /// process in the warning.
    pub fn token(&self, service: &str) -> anyhow::Result<ServiceToken> {
        let token = &self.internal_token;
        let Some(value) = &token.0 else {
            tracing::warn!(
                service,
                "INTERNAL_TOKEN is empty: this service's gRPC calls are not authenticated, and \
                 anything that can reach its port can act as any user. Set the same random \
                 INTERNAL_TOKEN on every service (e.g. `openssl rand -hex 32`) anywhere but \
                 your own machine"
            );
            return Ok(token.clone());
        };
        if PUBLISHED_TOKENS.contains(&value.to_str().unwrap_or_default()) {
            anyhow::ensure!(
                self.insecure_dev_secret,
                "INTERNAL_TOKEN is the example value published with chirp: it keeps no one out. \
                 Set a token of your own (e.g. `openssl rand -hex 32`), or, on your own machine \
                 only, INSECURE_DEV_SECRET=true"
            );
            tracing::warn!(
                service,
                "INTERNAL_TOKEN is the published example value: anyone who reaches this \
                 service's port can act as any user (allowed by INSECURE_DEV_SECRET)"
            );
        }
        Ok(token.clone())
    }
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
    fn a_published_token_is_refused_unless_explicitly_allowed() {
        let args = |raw: &str, insecure_dev_secret: bool| ServiceAuthArgs {
            internal_token: token(raw),
            insecure_dev_secret,
        };
        let published = PUBLISHED_TOKENS[0];
        let error = args(published, false).token("test").unwrap_err();
        assert!(error.to_string().contains("INSECURE_DEV_SECRET"), "{error}");
        assert!(args(published, true).token("test").is_ok());
        assert!(args(&"s".repeat(32), false).token("test").is_ok());
        assert!(args("", false).token("test").is_ok(), "empty: open, warned");
    }

    #[test]
    fn tokens_are_long_and_never_printed() {
        assert!(ServiceToken::parse("short").is_err());
        assert!(ServiceToken::parse(&format!("{} x", "s".repeat(32))).is_err());
        assert_eq!(format!("{:?}", token(&"s".repeat(32))), "ServiceToken(***)");
        assert_eq!(format!("{:?}", token("")), "ServiceToken(none)");
    }
}
