//! The W3C trace context of [`chirp_runtime::trace_context`] in Kafka message
//! headers: written by the producer beside each event, read by the consumer,
//! so that a fan-out continues the trace of the request that posted the
//! tweet. Beside the payload, never inside it, for the reasons given there.

use chirp_runtime::trace_context;
use opentelemetry::Context;
use opentelemetry::propagation::Extractor;
use rdkafka::message::{Header, Headers, OwnedHeaders};

/// Kafka message headers that carry `cx` to the consumer.
pub fn kafka_headers(cx: &Context) -> OwnedHeaders {
    trace_context::fields(cx)
        .into_iter()
        .fold(OwnedHeaders::new(), |headers, (key, value)| {
            headers.insert(Header {
                key: &key,
                value: Some(&value),
            })
        })
}

/// The context a consumed Kafka message carries in its headers.
pub fn extract_kafka(headers: &impl Headers) -> Context {
    trace_context::extract(&KafkaCarrier(headers))
}

struct KafkaCarrier<'a, H>(&'a H);

impl<H: Headers> Extractor for KafkaCarrier<'_, H> {
    fn get(&self, key: &str) -> Option<&str> {
        let header = self.0.iter().find(|header| header.key == key)?;
        std::str::from_utf8(header.value?).ok()
    }

    fn keys(&self) -> Vec<&str> {
        self.0.iter().map(|header| header.key).collect()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use opentelemetry::trace::TraceContextExt;

    use super::*;

    #[test]
    fn kafka_headers_round_trip() {
        // Trace id, parent span id, sampled flag and trace state: what a
        // remote span is made of, as the fields of a saved context.
        let sent = HashMap::from([
            (
                "traceparent".to_owned(),
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".to_owned(),
            ),
            ("tracestate".to_owned(), "chirp=test".to_owned()),
        ]);
        let cx = trace_context::from_fields(&sent);
        let received = extract_kafka(&kafka_headers(&cx));
        assert!(received.span().span_context().is_remote());
        assert_eq!(trace_context::fields(&received), sent);
    }

    #[test]
    fn nothing_to_carry_and_nothing_carried() {
        assert_eq!(kafka_headers(&Context::new()).count(), 0);
        assert!(
            !extract_kafka(&OwnedHeaders::new())
                .span()
                .span_context()
                .is_valid()
        );
    }
}
