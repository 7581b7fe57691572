//! How chirp's services call each other over gRPC: serving a service the way
//! every chirp server serves, dialling a peer ([`balance`]: across every
//! instance of it), who may call ([`service_auth`]), and what a failure
//! becomes on the wire ([`error`], the one table from a service's error to a
//! gRPC code and an HTTP status).
//!
//! A server is assembled once, here, so that the three gRPC services cannot
//! differ in what operators rely on: each call gets a span that continues
//! the caller's trace and is counted and timed (`chirp_runtime::observe`); the
//! standard health service answers load balancers and Kubernetes probes;
//! server reflection lets `grpcurl` list and call the service without a copy
//! of the protos.
//!
//! Peers are dialled lazily, so services start in any order and a restarted
//! peer is reconnected transparently; every call carries a deadline, so a slow
//! or dead peer turns into an `Unavailable` error instead of a hung request,
//! and the current trace context, so the peer's spans join the caller's trace.
//! The deadline travels to the peer too (`grpc-timeout`), and tonic servers
//! drop a call whose deadline passed: a peer never finishes, unseen, work its
//! caller already reported as failed.

pub mod balance;
pub mod error;
pub mod service_auth;

pub use error::{ErrorKind, ServiceError};

use std::convert::Infallible;
use std::future::Future;
use std::time::Duration;

use chirp_runtime::observe;
use futures::FutureExt;
use futures::future::Shared;
use tokio::net::TcpListener;
use tonic::body::Body;
use tonic::codegen::Service;
use tonic::codegen::http::{Request, Response};
use tonic::server::NamedService;
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Endpoint, Server};
use tonic_health::ServingStatus;
use tonic_reflection::server::Builder as ReflectionBuilder;

use crate::service_auth::{Outgoing, RequireToken, ServiceToken};

/// How long any one call to a peer may take before it fails.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(3);

/// A connection to a peer, as every generated client takes it: one shared,
/// lazily connected HTTP/2 channel that sends the current trace context, the
/// call's deadline and the service token (if any) with each call. Cloning is
/// cheap.
pub type Channel = InterceptedService<tonic::transport::Channel, OutgoingCall>;

/// What every outgoing call carries besides its message: the current trace
/// context and the service token ([`Outgoing`]), and the deadline as
/// `grpc-timeout`.
#[derive(Debug, Clone)]
pub struct OutgoingCall {
    deadline: Duration,
    auth: Outgoing,
}

impl Interceptor for OutgoingCall {
    fn call(&mut self, request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        let mut request = self.auth.call(request)?;
        request.set_timeout(self.deadline);
        Ok(request)
    }
}

/// A channel to `addr` that connects on first use and fails every call that
/// outlives `deadline`; it sends no service token (tests, tools): services
/// dial with [`connect_lazy_with`].
pub fn connect_lazy(addr: &str, deadline: Duration) -> anyhow::Result<Channel> {
    connect_lazy_with(addr, deadline, &ServiceToken::default())
}

/// As [`connect_lazy`], and every call carries `token`
/// ([`crate::service_auth`]). `addr` is one instance (`host:port` or a full
/// `http://` URI), or several to balance calls over, health-checked
/// ([`balance`]): a comma-separated list, or `dns:///host:port` for every
/// address a name resolves to (a headless Service). Balancing needs a
/// running Tokio runtime.
pub fn connect_lazy_with(
    addr: &str,
    deadline: Duration,
    token: &ServiceToken,
) -> anyhow::Result<Channel> {
    let endpoint = move |addr: &str| -> anyhow::Result<Endpoint> {
        let uri = if addr.contains("://") {
            addr.to_owned()
        } else {
            format!("http://{addr}")
        };
        Ok(Endpoint::from_shared(uri)?
            .connect_timeout(Duration::from_secs(1))
            .timeout(deadline)
            .tcp_nodelay(true))
    };
    let channel = match balance::Targets::parse(addr)? {
        balance::Targets::Single(addr) => endpoint(&addr)?.connect_lazy(),
        balance::Targets::Balanced(names) => balance::channel(names, endpoint),
    };
    Ok(InterceptedService::new(
        channel,
        OutgoingCall {
            deadline,
            auth: Outgoing::new(token.clone()),
        },
    ))
}

/// Serves `service`, with health checking and reflection beside it, on
/// `listener` until `shutdown` resolves; then reports NOT_SERVING, stops
/// accepting, and lets in-flight calls finish. With a `token`, `service`
/// answers only calls that carry it ([`crate::service_auth`]).
pub async fn serve<S>(
    service: S,
    listener: TcpListener,
    token: ServiceToken,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()>
where
    S: Service<Request<Body>, Response = Response<Body>, Error = Infallible>
        + NamedService
        + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
{
    // In the health protocol "" names the server as a whole (the reporter
    // starts it SERVING): what a Kubernetes gRPC probe asks about by default.
    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_serving::<S>().await;
    let shutdown = async move {
        shutdown.await;
        for name in [S::NAME, ""] {
            health
                .set_service_status(name, ServingStatus::NotServing)
                .await;
        }
    };
    // Without TCP_NODELAY a response's last frame can wait for the client's
    // delayed ACK (Nagle's algorithm): a 40 ms stall on a 1 ms call.
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    Server::builder()
        .layer(observe::grpc())
        .add_service(health_service)
        .add_service(reflection::<S>().build_v1()?)
        .add_service(reflection::<S>().build_v1alpha()?)
        .add_service(InterceptedService::new(service, RequireToken::new(token)))
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await?;
    Ok(())
}

/// As [`serve`], with `background` running beside the server on the same
/// shutdown (the tweet service's outbox relay, the graph service's queued
/// timeline drops): both stop when `shutdown` resolves, and this returns
/// once both have, with the server's result. The background loop gets the
/// shutdown as a future of its own, to finish its round and hand back what it
/// holds.
pub async fn serve_beside<S, Sd, B, Bf>(
    service: S,
    listener: TcpListener,
    token: ServiceToken,
    shutdown: Sd,
    background: B,
) -> anyhow::Result<()>
where
    S: Service<Request<Body>, Response = Response<Body>, Error = Infallible>
        + NamedService
        + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
    Sd: Future<Output = ()>,
    B: FnOnce(Shared<Sd>) -> Bf,
    Bf: Future<Output = ()>,
{
    let shutdown = shutdown.shared();
    let serving = serve(service, listener, token, shutdown.clone());
    let (served, ()) = tokio::join!(serving, background(shutdown));
    served
}

/// Reflection over what this server serves: `S` and the health service.
/// Both protocol versions: many clients still speak only the older v1alpha.
fn reflection<S: NamedService>() -> ReflectionBuilder<'static> {
    ReflectionBuilder::configure()
        .register_encoded_file_descriptor_set(chirp_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .with_service_name(S::NAME)
        .with_service_name(tonic_health::pb::health_server::SERVICE_NAME)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_tell_the_peer_their_deadline() {
        let mut outgoing = OutgoingCall {
            deadline: Duration::from_millis(2500),
            auth: Outgoing::default(),
        };
        let request = outgoing.call(tonic::Request::new(())).unwrap();
        assert_eq!(
            request.metadata().get("grpc-timeout").unwrap(),
            "2500000u",
            "the deadline in microseconds"
        );
    }
}
