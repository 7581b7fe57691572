//! One trace from a client's request to the last Redis write it causes.
//!
//! The five services run in this process, so the test installs the very
//! subscriber their `main` installs (`chirp_runtime::telemetry::install`),
//! exporting to memory instead of OTLP, and reads the finished spans back.
//! The spans still cross real sockets and a real Kafka topic: the trace holds
//! together only if every hop carries the `traceparent` it was given. This
//! is a test binary of its own because the subscriber is global to the
//! process, and `tests/api` runs without one.
//!
//! Run with `--nocapture` to see each trace as a tree with its times. The
//! trees in `docs/follow-a-tweet.md` are generated here: each test compares
//! its trace's outline (the tree and each span's process, without times,
//! which vary from run to run) with the block the page marks
//! `<!-- trace: NAME -->`, and fails when they differ; rerun with
//! `CHIRP_BLESS=1` to rewrite the blocks, as with `docs/openapi.json`.

#[path = "api/helpers.rs"]
#[allow(dead_code)] // shared with tests/api, which uses more of it
mod helpers;

use std::collections::HashSet;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use chirp_runtime::telemetry::{self, Filters, LogFormat, Telemetry};
use chirp_test_support::eventually;
use helpers::{Stack, handle, ids, spawn_stack};
use opentelemetry::trace::{SpanId, SpanKind, TraceId};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use reqwest::{Method, StatusCode};
use serde_json::json;
use tracing_subscriber::fmt::TestWriter;

/// Where every span of this process ends up, once it ends.
fn exporter() -> &'static InMemorySpanExporter {
    static TRACING: OnceLock<(InMemorySpanExporter, Telemetry)> = OnceLock::new();
    &TRACING
        .get_or_init(|| {
            let exporter = InMemorySpanExporter::default();
            let provider = SdkTracerProvider::builder()
                .with_simple_exporter(exporter.clone())
                .build();
            let telemetry = telemetry::install(
                Filters::both("info"),
                LogFormat::Text,
                provider,
                TestWriter::new(),
            )
            .expect("install the subscriber");
            (exporter, telemetry)
        })
        .0
}

/// A client's own span, as a `traceparent` header would name it.
struct ClientSpan {
    trace_id: TraceId,
    span_id: SpanId,
}

impl ClientSpan {
    fn new() -> Self {
        Self {
            trace_id: TraceId::from(rand::random::<u128>()),
            span_id: SpanId::from(rand::random::<u64>()),
        }
    }

    fn traceparent(&self) -> String {
        format!("00-{}-{}-01", self.trace_id, self.span_id)
    }

    /// The finished spans of this trace so far.
    fn spans(&self) -> Trace {
        let spans = exporter()
            .get_finished_spans()
            .expect("read the exported spans")
            .into_iter()
            .filter(|span| span.span_context.trace_id() == self.trace_id)
            .collect();
        Trace(spans)
    }
}

/// The spans of one trace.
struct Trace(Vec<SpanData>);

impl Trace {
    fn named(&self, name: &str) -> Option<&SpanData> {
        self.0.iter().find(|span| span.name == name)
    }

    fn expect(&self, name: &str) -> &SpanData {
        self.named(name)
            .unwrap_or_else(|| panic!("no span {name} in the trace:\n{self}"))
    }

    fn parent(&self, span: &SpanData) -> Option<&SpanData> {
        self.0
            .iter()
            .find(|parent| parent.span_context.span_id() == span.parent_span_id)
    }

    /// Whether `span` is `ancestor` or below it.
    fn descends_from(&self, span: &SpanData, ancestor: &SpanData) -> bool {
        let ancestor = ancestor.span_context.span_id();
        let mut current = Some(span);
        while let Some(span) = current {
            if span.span_context.span_id() == ancestor {
                return true;
            }
            current = self.parent(span);
        }
        false
    }

    /// The process that ran `span`: named by the nearest span, itself or
    /// above, that only one process opens (a request, a gRPC call served,
    /// a Kafka message consumed).
    fn process(&self, span: &SpanData) -> &'static str {
        let mut current = Some(span);
        while let Some(span) = current {
            let name = span.name.as_ref();
            match span.span_kind {
                SpanKind::Server if name.starts_with("chirp.") => {
                    for process in ["tweet", "graph", "timeline"] {
                        if name.starts_with(&format!("chirp.{process}.")) {
                            return process;
                        }
                    }
                }
                SpanKind::Server => return "gateway",
                SpanKind::Consumer => return "fanout",
                _ => {}
            }
            current = self.parent(span);
        }
        "?"
    }

    /// The tree as the docs show it: each span with its kind and process,
    /// no times. Children are in the order they started, except that
    /// siblings that overlapped in time ran concurrently and their order is
    /// a race: such a group is listed by name, each marked `‖`.
    fn outline(&self) -> String {
        fn write_outline(
            out: &mut String,
            trace: &Trace,
            span: &SpanData,
            depth: usize,
            mark: &str,
        ) {
            let kind = match span.span_kind {
                SpanKind::Server => " [server]",
                SpanKind::Consumer => " [consumer]",
                SpanKind::Producer => " [producer]",
                _ => "",
            };
            let label = format!(
                "{:indent$}{mark}{}{kind}",
                "",
                span.name,
                indent = depth * 2
            );
            let _ = writeln!(out, "{label:<68} {}", trace.process(span));
            let mut children: Vec<&SpanData> = trace
                .0
                .iter()
                .filter(|child| child.parent_span_id == span.span_context.span_id())
                .collect();
            children.sort_by_key(|child| child.start_time);
            let mut groups: Vec<Vec<&SpanData>> = Vec::new();
            for child in children {
                match groups.last_mut() {
                    Some(group) if group.iter().any(|s| s.end_time > child.start_time) => {
                        group.push(child);
                    }
                    _ => groups.push(vec![child]),
                }
            }
            for mut group in groups {
                let mark = if group.len() > 1 { "‖ " } else { "" };
                group.sort_by(|a, b| a.name.cmp(&b.name));
                for child in group {
                    write_outline(out, trace, child, depth + 1, mark);
                }
            }
        }

        let ids: HashSet<SpanId> = self.0.iter().map(|s| s.span_context.span_id()).collect();
        let mut out = String::new();
        let mut roots: Vec<&SpanData> = self
            .0
            .iter()
            .filter(|span| !ids.contains(&span.parent_span_id))
            .collect();
        roots.sort_by_key(|span| span.start_time);
        for root in roots {
            write_outline(&mut out, self, root, 0, "");
        }
        out
    }

    fn assert_below(&self, name: &str, ancestor: &SpanData) -> &SpanData {
        let span = self.expect(name);
        assert!(
            self.descends_from(span, ancestor),
            "{name} is not below {}:\n{self}",
            ancestor.name
        );
        span
    }
}

/// The trace as an indented tree, children in the order they started.
impl std::fmt::Display for Trace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        fn write_tree(
            out: &mut String,
            trace: &Trace,
            span: &SpanData,
            depth: usize,
        ) -> std::fmt::Result {
            let took = span
                .end_time
                .duration_since(span.start_time)
                .unwrap_or_default();
            let kind = match span.span_kind {
                SpanKind::Server => " [server]",
                SpanKind::Consumer => " [consumer]",
                SpanKind::Producer => " [producer]",
                _ => "",
            };
            let attributes: Vec<String> = span
                .attributes
                .iter()
                .filter(|kv| SHOWN.contains(&kv.key.as_str()))
                .map(|kv| format!("{}={}", kv.key, kv.value))
                .collect();
            writeln!(
                out,
                "{:indent$}{}{kind} {:.1} ms {}",
                "",
                span.name,
                took.as_secs_f64() * 1000.0,
                attributes.join(" "),
                indent = depth * 2
            )?;
            let mut children: Vec<&SpanData> = trace
                .0
                .iter()
                .filter(|child| child.parent_span_id == span.span_context.span_id())
                .collect();
            children.sort_by_key(|child| child.start_time);
            for child in children {
                write_tree(out, trace, child, depth + 1)?;
            }
            Ok(())
        }

        const SHOWN: [&str; 7] = [
            "http.response.status_code",
            "rpc.grpc.status_code",
            "timelines",
            "tweets",
            "user_id",
            "limit",
            "partition",
        ];
        let ids: HashSet<SpanId> = self.0.iter().map(|s| s.span_context.span_id()).collect();
        let mut roots: Vec<&SpanData> = self
            .0
            .iter()
            .filter(|span| !ids.contains(&span.parent_span_id))
            .collect();
        roots.sort_by_key(|span| span.start_time);
        let mut out = String::new();
        for root in roots {
            write_tree(&mut out, self, root, 0)?;
        }
        f.write_str(out.trim_end())
    }
}

/// `docs/follow-a-tweet.md`, which shows these traces.
fn follow_a_tweet() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/follow-a-tweet.md")
}

/// Checks the page's block `<!-- trace: NAME -->` against `trace`, or with
/// `CHIRP_BLESS` set, rewrites it.
fn check_docs(name: &str, trace: &Trace) {
    // The tests run in parallel and may bless the same file.
    static PAGE: Mutex<()> = Mutex::new(());
    let _page = PAGE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let path = follow_a_tweet();
    let page = std::fs::read_to_string(&path).expect("read docs/follow-a-tweet.md");
    let marker = format!("<!-- trace: {name} -->\n```text\n");
    let start = page
        .find(&marker)
        .unwrap_or_else(|| panic!("docs/follow-a-tweet.md has no block {marker:?}"))
        + marker.len();
    let end = start + page[start..].find("```").expect("the block ends");
    let outline = trace.outline();
    if std::env::var_os("CHIRP_BLESS").is_some() {
        let blessed = format!("{}{outline}{}", &page[..start], &page[end..]);
        std::fs::write(&path, blessed).expect("write docs/follow-a-tweet.md");
        return;
    }
    assert!(
        page[start..end] == outline,
        "the {name} trace in docs/follow-a-tweet.md is stale: rerun with CHIRP_BLESS=1 and \
         review the diff. This run:\n{outline}"
    );
}

async fn follower_and_author(stack: &Stack) -> (helpers::TestUser, helpers::TestUser) {
    let reader = stack.sign_up(&handle("reader")).await;
    let author = stack.sign_up(&handle("author")).await;
    stack.follow(&reader, &author).await;
    (reader, author)
}

#[tokio::test]
async fn a_post_is_one_trace_from_the_client_to_the_followers_timelines() {
    exporter();
    let stack = spawn_stack().await;
    let (_reader, author) = follower_and_author(&stack).await;

    let client = ClientSpan::new();
    let request = stack
        .request(Method::POST, "/tweets", Some(&author.token))
        .header("traceparent", client.traceparent())
        .json(&json!({ "content": "followed from end to end" }));
    let (status, body) = stack.call(request).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    // The worker's span ends once every Redis write for the event is done.
    let trace = eventually(
        Duration::from_secs(15),
        "the fan-out worker's span in the client's trace",
        || async {
            let trace = client.spans();
            trace.named("event").is_some().then_some(trace)
        },
    )
    .await;
    println!("POST /tweets\n{trace}");

    let http = trace.expect("POST /tweets");
    assert_eq!(http.span_kind, SpanKind::Server);
    assert_eq!(
        http.parent_span_id, client.span_id,
        "the client's span is the parent"
    );
    assert!(http.parent_span_is_remote);
    let create = trace.assert_below("chirp.tweet.v1.TweetService/CreateTweet", http);
    let publish = trace.assert_below("events.publish", create);
    let event = trace.assert_below("event", publish);
    assert_eq!(event.span_kind, SpanKind::Consumer);
    let push = trace.assert_below("timelines.push", event);
    assert!(
        push.attributes
            .iter()
            .any(|kv| kv.key.as_str() == "timelines" && kv.value.as_str() == "2"),
        "one write reaches the follower's and the author's timelines:\n{trace}"
    );
    check_docs("post", &trace);
}

#[tokio::test]
async fn a_home_timeline_read_is_one_trace_across_the_services() {
    exporter();
    let stack = spawn_stack().await;
    let (reader, author) = follower_and_author(&stack).await;
    // The first read finds no complete timeline (the follow dropped it) and
    // rebuilds it; the read below is then the common case, a complete
    // timeline and a tweet not hydrated yet.
    let (_, cold) = traced_read(&stack, &reader, &ClientSpan::new()).await;
    check_docs("cold-read", &cold);
    let posted = stack.post(&author, "read back").await["id"]
        .as_str()
        .expect("tweet id")
        .to_owned();
    let timelines = stack.timelines().await;
    eventually(
        Duration::from_secs(15),
        "the tweet pushed to the reader",
        || async {
            let page = timelines.page(reader.numeric_id(), None, 10).await.ok()?;
            page.iter().any(|id| id.to_string() == posted).then_some(())
        },
    )
    .await;

    let client = ClientSpan::new();
    let (page, trace) = traced_read(&stack, &reader, &client).await;
    assert_eq!(ids(&page), [posted]);
    assert_eq!(
        trace
            .0
            .iter()
            .filter(|span| span.name == "GET /users/{id}/timeline")
            .count(),
        1
    );
    check_docs("read", &trace);

    let http = trace.expect("GET /users/{id}/timeline");
    assert_eq!(
        http.parent_span_id, client.span_id,
        "the client's span is the parent"
    );
    let read = trace.assert_below("chirp.timeline.v1.TimelineService/GetHomeTimeline", http);
    trace.assert_below("timelines.read", read);
    trace.assert_below("chirp.tweet.v1.TweetService/BatchGetTweets", read);
}

/// Reads `reader`'s home timeline under `client`'s span; returns the page,
/// and its trace once the gateway's span has ended.
async fn traced_read(
    stack: &Stack,
    reader: &helpers::TestUser,
    client: &ClientSpan,
) -> (serde_json::Value, Trace) {
    let path = format!("/users/{}/timeline", reader.id);
    let request = stack
        .request(Method::GET, &path, Some(&reader.token))
        .header("traceparent", client.traceparent());
    let (status, page) = stack.call(request).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let trace = eventually(
        Duration::from_secs(5),
        "the gateway's span of the read",
        || async {
            let trace = client.spans();
            trace
                .named("GET /users/{id}/timeline")
                .is_some()
                .then_some(trace)
        },
    )
    .await;
    println!("GET /users/{{id}}/timeline\n{trace}");
    (page, trace)
}
