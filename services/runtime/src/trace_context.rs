//! W3C trace context across process boundaries: written into every outgoing
//! gRPC call and Kafka message, read from every incoming HTTP request, gRPC
//! call and consumed message.
//!
//! A trace spans services only if each hop hands the caller's span to the
//! next: a `traceparent` header (trace id, parent span id, sampled flag) and
//! its optional `tracestate`. The W3C format is the one every tracing backend
//! and OpenTelemetry SDK reads, so a client or proxy outside chirp can join a
//! trace too. The context travels beside the payload, in headers, never
//! inside it: the contracts in `proto/` stay free of plumbing, and a hop that
//! knows nothing of tracing merely breaks the trace, never the request.
//!
//! The Kafka headers are written and read in `chirp_kafka::trace_headers`,
//! beside the Kafka client, so that this crate does not link `rdkafka`.

use std::collections::HashMap;

use opentelemetry::Context;
use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry::trace::TraceContextExt;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tonic::codegen::http::HeaderMap;
use tonic::metadata::{MetadataKey, MetadataMap, MetadataValue};
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The context of the current span: what the next hop continues.
pub fn current() -> Context {
    Span::current().context()
}

/// Makes `span` a child of the remote span that `remote` carries, if it
/// carries one; without one, `span` keeps its local parent or starts a trace.
/// Call it before `span` is first entered: from then on its parent is fixed.
pub fn set_remote_parent(span: &Span, remote: Context) {
    if remote.span().span_context().is_valid() {
        // This fails only without the OpenTelemetry layer (nothing is traced
        // then) or after the span started, which the callers rule out.
        let _ = span.set_parent(remote);
    }
}

/// Writes `cx` into the metadata of an outgoing gRPC call.
pub fn inject_metadata(cx: &Context, metadata: &mut MetadataMap) {
    for (key, value) in fields(cx) {
        if let (Ok(key), Ok(value)) = (
            MetadataKey::from_bytes(key.as_bytes()),
            MetadataValue::try_from(value),
        ) {
            metadata.insert(key, value);
        }
    }
}

/// The context an incoming HTTP request or gRPC call carries (gRPC metadata
/// travels as HTTP/2 headers); an empty one if it carries none or a
/// malformed one.
pub fn extract_headers(headers: &HeaderMap) -> Context {
    propagator().extract(&HeaderCarrier(headers))
}

/// The context that `carrier`'s header fields hold, whatever the transport
/// (Kafka message headers); an empty one if they hold none or a malformed one.
pub fn extract(carrier: &dyn Extractor) -> Context {
    propagator().extract(carrier)
}

/// The context that [`fields`] saved; an empty one if they hold none.
pub fn from_fields(fields: &HashMap<String, String>) -> Context {
    propagator().extract(fields)
}

/// A gRPC client interceptor that sends the current span along with every
/// call: `chirp_grpc::connect_lazy` installs it on every channel, so no
/// call site has to remember it.
#[derive(Debug, Clone, Copy, Default)]
pub struct InjectTraceContext;

impl tonic::service::Interceptor for InjectTraceContext {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        inject_metadata(&current(), request.metadata_mut());
        Ok(request)
    }
}

fn propagator() -> TraceContextPropagator {
    TraceContextPropagator::new()
}

/// The header fields (`traceparent`, `tracestate`) that encode `cx`; none
/// when `cx` holds no span. What to save beside work done later, in another
/// process, on the request's behalf (the tweet service's outbox).
pub fn fields(cx: &Context) -> HashMap<String, String> {
    let mut fields = HashMap::new();
    propagator().inject_context(cx, &mut fields);
    fields
}

struct HeaderCarrier<'a>(&'a HeaderMap);

impl Extractor for HeaderCarrier<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|name| name.as_str()).collect()
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry::trace::{SpanContext, SpanId, TraceFlags, TraceId, TraceState};

    use super::*;

    fn remote_context() -> (Context, SpanContext) {
        let span = SpanContext::new(
            TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").expect("a trace id"),
            SpanId::from_hex("00f067aa0ba902b7").expect("a span id"),
            TraceFlags::SAMPLED,
            true,
            TraceState::from_key_value([("chirp", "test")]).expect("a trace state"),
        );
        (Context::new().with_remote_span_context(span.clone()), span)
    }

    fn assert_same_span(extracted: &Context, sent: &SpanContext) {
        let received = extracted.span().span_context().clone();
        assert_eq!(received.trace_id(), sent.trace_id());
        assert_eq!(received.span_id(), sent.span_id());
        assert_eq!(received.trace_flags(), sent.trace_flags());
        assert_eq!(received.trace_state().header(), sent.trace_state().header());
        assert!(received.is_remote());
    }

    #[test]
    fn grpc_metadata_round_trips() {
        let (cx, sent) = remote_context();
        let mut metadata = MetadataMap::new();
        inject_metadata(&cx, &mut metadata);
        assert_eq!(
            metadata.get("traceparent").and_then(|v| v.to_str().ok()),
            Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
        );
        // What the server sees: the metadata as HTTP/2 headers.
        assert_same_span(&extract_headers(&metadata.into_headers()), &sent);
    }

    #[test]
    fn saved_fields_round_trip() {
        let (cx, sent) = remote_context();
        assert_same_span(&from_fields(&fields(&cx)), &sent);
    }

    #[test]
    fn nothing_to_carry_and_nothing_carried() {
        let mut metadata = MetadataMap::new();
        inject_metadata(&Context::new(), &mut metadata);
        assert!(metadata.is_empty());

        let mut headers = HeaderMap::new();
        headers.insert(
            "traceparent",
            "00-not-a-trace-01".parse().expect("a header value"),
        );
        assert!(!extract_headers(&headers).span().span_context().is_valid());
    }
}
