//! What every binary reports about its work: log lines and OpenTelemetry
//! traces, both from the same `tracing` spans and events.
//!
//! A span is written once, with `tracing`, and feeds two layers: the fmt
//! layer prints events (human-readable text on a terminal, one JSON object
//! per line where a log pipeline reads them), the OpenTelemetry layer turns
//! spans into trace spans. Every line logged inside a span carries its trace
//! id, so a log search leads to the trace and a trace to its logs.
//!
//! Each layer has a filter of its own: `RUST_LOG` decides what is printed,
//! `OTEL_TRACES_FILTER` what is traced. Sharing one would make traces depend
//! on the log level, and `RUST_LOG=warn` (what a load test wants, so that
//! printing does not cost CPU) would export no span at all.
//!
//! Spans get OpenTelemetry ids whether or not a collector is configured. A
//! tracer provider without an exporter costs a small allocation per span and
//! nothing else (no thread, no connection), and buys a lot: log lines still
//! carry trace ids, and outgoing calls still carry `traceparent`, so a trace
//! stays whole across a service that does not export. With
//! `OTEL_EXPORTER_OTLP_ENDPOINT` set, finished spans are queued, batched on a
//! background thread and sent over OTLP/gRPC; a slow or absent collector
//! makes the queue drop spans, never a request wait.

use std::fmt;
use std::sync::OnceLock;

use anyhow::Context as _;
use clap::{Args, ValueEnum};
use opentelemetry::trace::{TraceContextExt, TraceId, TracerProvider};
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::dispatcher::WeakDispatch;
use tracing::{Dispatch, Event, Subscriber, span};
use tracing_subscriber::fmt::format::{self, FormatEvent, FormatFields, JsonFields, Writer};
use tracing_subscriber::fmt::{FmtContext, MakeWriter};
use tracing_subscriber::layer::{self, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Flattened into every service's `Config`.
#[derive(Debug, Clone, Args)]
pub struct LogArgs {
    /// Log line format.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,
    /// OTLP/gRPC collector to send traces to, e.g. http://jaeger:4317. Unset,
    /// no span leaves the process, but log lines still carry trace ids and
    /// calls to other services still carry `traceparent`.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_ENDPOINT")]
    pub otlp_endpoint: Option<String>,
    /// This service's name in traces; the binary's name when unset.
    #[arg(long, env = "OTEL_SERVICE_NAME")]
    pub otel_service_name: Option<String>,
    /// Which spans are traced, in RUST_LOG's syntax (e.g. info,tweet=debug), whatever
    /// RUST_LOG says is printed: quiet logs keep whole traces.
    #[arg(long, env = "OTEL_TRACES_FILTER", default_value = "info",
          value_parser = parse_filter)]
    pub otel_traces_filter: String,
}

/// A filter directive as `EnvFilter` reads it, checked when flags are parsed.
fn parse_filter(raw: &str) -> Result<String, String> {
    EnvFilter::try_new(raw)
        .map(|_| raw.to_owned())
        .map_err(|error| error.to_string())
}

/// Tracing for the life of the process. Dropping it exports the spans still
/// queued and stops the exporter, so `main` keeps it until it returns.
#[must_use = "dropping it stops tracing"]
pub struct Telemetry {
    provider: SdkTracerProvider,
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Err(error) = self.provider.shutdown() {
            tracing::warn!(%error, "spans lost at shutdown");
        }
    }
}

/// Installs logging and tracing for the process, as `args` say; `binary`
/// names the service in traces unless `OTEL_SERVICE_NAME` does. Verbosity
/// comes from `RUST_LOG` (default `info`), e.g. `RUST_LOG=info,tweet=debug`;
/// what is traced from `OTEL_TRACES_FILTER`.
/// Must run inside a multi-threaded Tokio runtime (the exporter is a tonic
/// client, and shutting it down blocks one thread while another sends), and
/// at most once per process.
pub fn init(args: &LogArgs, binary: &str) -> anyhow::Result<Telemetry> {
    let service_name = args
        .otel_service_name
        .clone()
        .unwrap_or_else(|| binary.to_owned());
    let mut provider = SdkTracerProvider::builder()
        .with_resource(Resource::builder().with_service_name(service_name).build());
    if let Some(endpoint) = &args.otlp_endpoint {
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(endpoint)
            .build()
            .with_context(|| format!("export traces to OTEL_EXPORTER_OTLP_ENDPOINT {endpoint}"))?;
        provider = provider.with_batch_exporter(exporter);
    }
    let filters = Filters {
        logs: EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        traces: EnvFilter::try_new(&args.otel_traces_filter)
            .context("OTEL_TRACES_FILTER is not a filter")?,
    };
    install(filters, args.log_format, provider.build(), std::io::stdout)
}

/// What each layer records: the log lines, and the spans traced.
pub struct Filters {
    pub logs: EnvFilter,
    pub traces: EnvFilter,
}

impl Filters {
    /// One filter for both, as tests that want everything at one level use.
    pub fn both(directives: &str) -> Self {
        Self {
            logs: EnvFilter::new(directives),
            traces: EnvFilter::new(directives),
        }
    }
}

/// Installs the process-wide subscriber that [`init`] installs, with the
/// parts chosen by the caller: `filters` decide which events are printed and
/// which spans traced, `provider` where finished spans go, `writer` where log
/// lines go. Tests pass an in-memory exporter and the test harness's writer.
pub fn install<W>(
    filters: Filters,
    format: LogFormat,
    provider: SdkTracerProvider,
    writer: W,
) -> anyhow::Result<Telemetry>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    subscriber(filters, format, &provider, writer)
        .try_init()
        .context("install the tracing subscriber")?;
    Ok(Telemetry { provider })
}

/// The subscriber of [`install`], not installed.
fn subscriber<W>(
    filters: Filters,
    format: LogFormat,
    provider: &SdkTracerProvider,
    writer: W,
) -> impl Subscriber + Send + Sync + for<'a> LookupSpan<'a>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    // No colour codes: they garble `docker logs` and log files, and a line
    // inside a span is assembled in a buffer to append its trace id.
    let lines = tracing_subscriber::fmt::layer()
        .with_writer(writer)
        .with_ansi(false);
    let lines = match format {
        LogFormat::Text => lines
            .event_format(WithTraceId::new(format, format::format()))
            .boxed(),
        LogFormat::Json => lines
            .fmt_fields(JsonFields::new())
            .event_format(WithTraceId::new(
                format,
                format::format().json().flatten_event(true),
            ))
            .boxed(),
    };
    // Each layer sees only what its filter lets through; the registry records
    // a span if either wants it. TraceIds works for the traced spans only,
    // since it reads their OpenTelemetry context.
    let Filters { logs, traces } = filters;
    let traced = tracing_opentelemetry::layer()
        .with_tracer(provider.tracer("chirp"))
        .and_then(TraceIds::default())
        .with_filter(traces);
    tracing_subscriber::registry()
        .with(traced)
        .with(lines.with_filter(logs))
}

/// The trace id of a span, kept in the span's extensions for the formatter.
struct SpanTraceId(TraceId);

/// Notes each span's trace id the first time the span is entered, which is
/// after a remote parent has been set ([`crate::trace_context`]) and before
/// anything is logged in it.
#[derive(Default)]
struct TraceIds {
    /// The subscriber this layer is part of: the OpenTelemetry layer in it
    /// knows the spans' contexts. Weak, because the subscriber owns us.
    dispatch: OnceLock<WeakDispatch>,
}

impl<S> Layer<S> for TraceIds
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_register_dispatch(&self, dispatch: &Dispatch) {
        let _ = self.dispatch.set(dispatch.downgrade());
    }

    fn on_enter(&self, id: &span::Id, ctx: layer::Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        if span.extensions().get::<SpanTraceId>().is_some() {
            return;
        }
        let Some(dispatch) = self.dispatch.get().and_then(WeakDispatch::upgrade) else {
            return;
        };
        let Some(cx) = tracing_opentelemetry::get_otel_context(id, &dispatch) else {
            return;
        };
        let trace_id = cx.span().span_context().trace_id();
        if trace_id != TraceId::INVALID {
            span.extensions_mut().insert(SpanTraceId(trace_id));
        }
    }
}

/// Formats a line with `inner`, then adds the trace id of the span it was
/// logged in: first in a JSON object, last on a text line.
struct WithTraceId<F> {
    format: LogFormat,
    inner: F,
}

impl<F> WithTraceId<F> {
    fn new(format: LogFormat, inner: F) -> Self {
        Self { format, inner }
    }
}

impl<S, N, F> FormatEvent<S, N> for WithTraceId<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let trace_id = ctx.event_scope().and_then(|mut scope| {
            scope.find_map(|span| span.extensions().get::<SpanTraceId>().map(|id| id.0))
        });
        let Some(trace_id) = trace_id else {
            return self.inner.format_event(ctx, writer, event);
        };
        let mut line = String::new();
        self.inner
            .format_event(ctx, Writer::new(&mut line), event)?;
        match self.format {
            LogFormat::Json => {
                let fields = line.strip_prefix('{').ok_or(fmt::Error)?;
                write!(writer, "{{\"trace_id\":\"{trace_id}\",{fields}")
            }
            LogFormat::Text => writeln!(writer, "{} trace_id={trace_id}", line.trim_end()),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::sync::{Arc, Mutex, PoisonError};

    use opentelemetry::Context;
    use opentelemetry::trace::{SpanContext, SpanId, TraceFlags, TraceState};
    use tracing_opentelemetry::OpenTelemetrySpanExt;

    use super::*;

    /// Log lines written to memory, to read back what a service would print.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            let mut lines = self.0.lock().unwrap_or_else(PoisonError::into_inner);
            lines.extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl<'w> MakeWriter<'w> for Captured {
        type Writer = Self;

        fn make_writer(&'w self) -> Self {
            self.clone()
        }
    }

    /// Traces do not depend on the log level: with logs at `warn`, spans at
    /// `info` are still exported, and nothing is printed.
    #[test]
    fn spans_are_exported_whatever_the_log_level() {
        let exporter = opentelemetry_sdk::trace::InMemorySpanExporter::default();
        let provider = SdkTracerProvider::builder()
            .with_simple_exporter(exporter.clone())
            .build();
        let printed = Captured::default();
        let filters = Filters {
            logs: EnvFilter::new("warn"),
            traces: EnvFilter::new("info"),
        };
        let subscriber = subscriber(filters, LogFormat::Text, &provider, printed.clone());
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("create_tweet", tweet_id = 7);
            span.in_scope(|| {
                tracing::info!("tweet created");
                tracing::debug_span!("not traced").in_scope(|| {});
            });
        });

        let spans = exporter.get_finished_spans().expect("the exported spans");
        let names: Vec<&str> = spans.iter().map(|span| span.name.as_ref()).collect();
        assert_eq!(names, ["create_tweet"], "info is traced, debug is not");
        let printed = printed.0.lock().expect("lines").clone();
        assert!(printed.is_empty(), "{}", String::from_utf8_lossy(&printed));
    }

    /// The whole subscriber is global, so one test logs in both formats
    /// through two layers of its own rather than installing it twice.
    #[test]
    fn lines_inside_a_span_carry_its_trace_id_in_both_formats() {
        let text = Captured::default();
        let json = Captured::default();
        let provider = SdkTracerProvider::builder().build();
        let subscriber = tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")))
            .with(TraceIds::default())
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(text.clone())
                    .with_ansi(false)
                    .event_format(WithTraceId::new(LogFormat::Text, format::format())),
            )
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(json.clone())
                    .fmt_fields(JsonFields::new())
                    .event_format(WithTraceId::new(
                        LogFormat::Json,
                        format::format().json().flatten_event(true),
                    )),
            );
        let remote = SpanContext::new(
            TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").expect("a trace id"),
            SpanId::from_hex("00f067aa0ba902b7").expect("a span id"),
            TraceFlags::SAMPLED,
            true,
            TraceState::default(),
        );
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!("outside any span");
            let span = tracing::info_span!("request");
            let _ = span.set_parent(Context::new().with_remote_span_context(remote));
            span.in_scope(|| tracing::info!(tweet_id = 7, "inside a span"));
        });

        let text = String::from_utf8(text.0.lock().expect("lines").clone()).expect("utf-8");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(!lines[0].contains("trace_id"), "{text}");
        assert!(
            lines[1]
                .ends_with("inside a span tweet_id=7 trace_id=4bf92f3577b34da6a3ce929d0e0e4736"),
            "{text}"
        );

        let json = String::from_utf8(json.0.lock().expect("lines").clone()).expect("utf-8");
        let lines: Vec<&str> = json.lines().collect();
        assert_eq!(lines.len(), 2, "{json}");
        assert!(!lines[0].contains("trace_id"), "{json}");
        assert!(
            lines[1].starts_with(r#"{"trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","timestamp":"#),
            "{json}"
        );
        assert!(lines[1].contains(r#""tweet_id":7"#), "{json}");
    }
}
