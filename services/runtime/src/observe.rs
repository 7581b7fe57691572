//! The one middleware every chirp server runs: a span per request that
//! continues the caller's trace, and the request metrics (rate, errors and
//! latency) that dashboards are built from.
//!
//! The HTTP gateway and the gRPC servers do the same thing per request, and
//! differ only in how a request is named and how its outcome is read: an
//! HTTP request by its method and *matched route* (`/users/{id}/timeline`,
//! never the raw path, which would make a metric series per user), a gRPC
//! call by its service and method, its outcome by the HTTP status or the
//! `grpc-status`. That difference is the [`Protocol`] trait; the rest is
//! written once, in [`Observe`].
//!
//! Span fields are what log lines show, attributes only what traces show:
//! the name goes in a field, the OpenTelemetry conventions
//! (`http.route`, `rpc.service`, …) in attributes, so that a line logged
//! inside a request stays readable.
//!
//! Latency is measured until the response's headers are ready. For chirp's
//! unary calls and small JSON bodies that is the whole request; a streaming
//! body would need its end measured instead.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::extract::MatchedPath;
use metrics::{Unit, counter, describe_counter, describe_histogram, histogram};
use tonic::Code;
use tonic::codegen::http::{Request, Response};
use tower::{Layer, Service};
use tracing::field::Empty;
use tracing::{Instrument, Span};
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::trace_context;

/// Counter, labels `method`, `route`, `status`: HTTP requests answered.
pub const HTTP_REQUESTS: &str = "chirp_http_requests_total";
/// Histogram, labels `method`, `route`: seconds until the response headers.
pub const HTTP_REQUEST_DURATION: &str = "chirp_http_request_duration_seconds";
/// Counter, labels `service`, `method`, `code`: gRPC calls answered.
pub const GRPC_REQUESTS: &str = "chirp_grpc_requests_total";
/// Histogram, labels `service`, `method`: seconds until the response headers.
pub const GRPC_REQUEST_DURATION: &str = "chirp_grpc_request_duration_seconds";

/// The layer for the gateway's axum router. Add it with `Router::layer`, so
/// that it runs after routing and sees the matched route.
pub fn http() -> ObserveLayer<Http> {
    describe_counter!(
        HTTP_REQUESTS,
        "HTTP requests answered, by method, matched route and status."
    );
    describe_histogram!(
        HTTP_REQUEST_DURATION,
        Unit::Seconds,
        "Time to answer an HTTP request, by method and matched route."
    );
    ObserveLayer(Http)
}

/// The layer for a tonic server; `chirp_grpc::serve` adds it.
pub fn grpc() -> ObserveLayer<Grpc> {
    describe_counter!(
        GRPC_REQUESTS,
        "gRPC calls answered, by service, method and status code."
    );
    describe_histogram!(
        GRPC_REQUEST_DURATION,
        Unit::Seconds,
        "Time to answer a gRPC call, by service and method."
    );
    ObserveLayer(Grpc)
}

/// What differs between protocols: how a request is named, and how the
/// outcome of its response is read.
pub trait Protocol: Clone + Send + Sync + 'static {
    /// What the request's metrics are labelled with, known from the request.
    type Labels: Send + 'static;

    /// The request's span (not entered yet) and its labels.
    fn start<B>(&self, request: &Request<B>) -> (Span, Self::Labels);

    /// Records the outcome in `span` and in the metrics.
    fn finish<B>(
        &self,
        labels: Self::Labels,
        response: &Response<B>,
        elapsed: Duration,
        span: &Span,
    );
}

/// Wraps a service in [`Observe`].
#[derive(Debug, Clone, Copy)]
pub struct ObserveLayer<P>(P);

impl<S, P: Clone> Layer<S> for ObserveLayer<P> {
    type Service = Observe<S, P>;

    fn layer(&self, inner: S) -> Self::Service {
        Observe {
            inner,
            protocol: self.0.clone(),
        }
    }
}

/// A service that runs each request inside its own span, continuing the
/// caller's trace, and records the request's metrics when it is answered.
#[derive(Debug, Clone)]
pub struct Observe<S, P> {
    inner: S,
    protocol: P,
}

impl<S, P, ReqBody, ResBody> Service<Request<ReqBody>> for Observe<S, P>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>, Error = Infallible>,
    S::Future: Send + 'static,
    P: Protocol,
{
    type Response = Response<ResBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<ResBody>, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let started = Instant::now();
        let (span, labels) = self.protocol.start(&request);
        trace_context::set_remote_parent(&span, trace_context::extract_headers(request.headers()));
        let response = span.in_scope(|| self.inner.call(request));
        let protocol = self.protocol.clone();
        Box::pin(async move {
            let Ok(response) = response.instrument(span.clone()).await;
            protocol.finish(labels, &response, started.elapsed(), &span);
            Ok(response)
        })
    }
}

/// HTTP requests of the gateway, named after the route they matched.
#[derive(Debug, Clone, Copy)]
pub struct Http;

#[derive(Debug)]
pub struct HttpLabels {
    method: String,
    route: String,
}

impl Protocol for Http {
    type Labels = HttpLabels;

    fn start<B>(&self, request: &Request<B>) -> (Span, HttpLabels) {
        let method = request.method().as_str().to_owned();
        let route = request
            .extensions()
            .get::<MatchedPath>()
            .map_or("unmatched", MatchedPath::as_str)
            .to_owned();
        let span = tracing::info_span!(
            "http",
            otel.name = %format!("{method} {route}"),
            otel.kind = "server",
            otel.status_code = Empty,
            http.response.status_code = Empty,
        );
        span.set_attribute("http.request.method", method.clone());
        span.set_attribute("http.route", route.clone());
        (span, HttpLabels { method, route })
    }

    fn finish<B>(
        &self,
        labels: HttpLabels,
        response: &Response<B>,
        elapsed: Duration,
        span: &Span,
    ) {
        let status = response.status();
        span.record("http.response.status_code", status.as_u16());
        if status.is_server_error() {
            span.record("otel.status_code", "ERROR");
        }
        counter!(
            HTTP_REQUESTS,
            "method" => labels.method.clone(),
            "route" => labels.route.clone(),
            "status" => status.as_u16().to_string(),
        )
        .increment(1);
        histogram!(HTTP_REQUEST_DURATION, "method" => labels.method, "route" => labels.route)
            .record(elapsed.as_secs_f64());
    }
}

/// gRPC calls, named by the `/package.Service/Method` path they are sent to.
#[derive(Debug, Clone, Copy)]
pub struct Grpc;

#[derive(Debug)]
pub struct GrpcLabels {
    service: String,
    method: String,
}

impl Protocol for Grpc {
    type Labels = GrpcLabels;

    fn start<B>(&self, request: &Request<B>) -> (Span, GrpcLabels) {
        let path = request.uri().path().trim_start_matches('/');
        let (service, method) = path.split_once('/').unwrap_or((path, ""));
        let span = tracing::info_span!(
            "grpc",
            otel.name = %path,
            otel.kind = "server",
            otel.status_code = Empty,
            rpc.grpc.status_code = Empty,
        );
        span.set_attribute("rpc.system", "grpc");
        span.set_attribute("rpc.service", service.to_owned());
        span.set_attribute("rpc.method", method.to_owned());
        let labels = GrpcLabels {
            service: service.to_owned(),
            method: method.to_owned(),
        };
        (span, labels)
    }

    fn finish<B>(
        &self,
        labels: GrpcLabels,
        response: &Response<B>,
        elapsed: Duration,
        span: &Span,
    ) {
        let code = status_code(response);
        span.record("rpc.grpc.status_code", code as i32);
        if is_server_fault(code) {
            span.record("otel.status_code", "ERROR");
        }
        // A path no service serves answers Unimplemented; its made-up names
        // must not become metric series, or any client could mint them.
        let GrpcLabels { service, method } = if code == Code::Unimplemented {
            GrpcLabels {
                service: "unknown".to_owned(),
                method: "unknown".to_owned(),
            }
        } else {
            labels
        };
        counter!(
            GRPC_REQUESTS,
            "service" => service.clone(),
            "method" => method.clone(),
            "code" => format!("{code:?}"),
        )
        .increment(1);
        histogram!(GRPC_REQUEST_DURATION, "service" => service, "method" => method)
            .record(elapsed.as_secs_f64());
    }
}

/// A failed unary call is answered with its status in the headers
/// ("trailers-only"); a successful one sends `grpc-status: 0` in the
/// trailers, after the message, so headers without a status mean `Ok`.
fn status_code<B>(response: &Response<B>) -> Code {
    response
        .headers()
        .get("grpc-status")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<i32>().ok())
        .map_or(Code::Ok, Code::from)
}

/// The codes that mean the server failed, rather than the caller asking
/// for something wrong; OpenTelemetry marks only these spans as errors.
pub fn is_server_fault(code: Code) -> bool {
    matches!(
        code,
        Code::Unknown
            | Code::DeadlineExceeded
            | Code::Unimplemented
            | Code::Internal
            | Code::Unavailable
            | Code::DataLoss
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_status_comes_from_the_headers_or_is_ok() {
        let ok = Response::new(());
        assert_eq!(status_code(&ok), Code::Ok);
        let not_found = tonic::Status::not_found("no such tweet").into_http::<()>();
        assert_eq!(status_code(&not_found), Code::NotFound);
        assert!(!is_server_fault(Code::NotFound));
        assert!(is_server_fault(Code::Unavailable));
    }
}
