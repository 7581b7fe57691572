//! `spawn_stack()`: a whole chirp deployment per test, on ports chosen by the OS.

use std::future::Future;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use chirp_common::proto::graph::GetUserRequest;
use chirp_common::proto::graph::graph_service_client::GraphServiceClient;
use chirp_common::proto::graph::graph_service_server;
use chirp_common::proto::timeline::GetHomeTimelineRequest;
use chirp_common::proto::timeline::timeline_service_client::TimelineServiceClient;
use chirp_common::proto::timeline::timeline_service_server;
use chirp_common::proto::tweet::GetTweetRequest;
use chirp_common::proto::tweet::tweet_service_client::TweetServiceClient;
use chirp_common::proto::tweet::tweet_service_server;
use chirp_common::testing::{self, CQL, KAFKA, REDIS_URL, unique_name};
use chirp_common::timelines::{HomeTimelines, Strategy, TimelineStoreArgs};
use clap::Parser;
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde_json::{Value, json};
use tokio::net::TcpListener;

pub const TOKEN_SECRET: &str = "e2e-test-secret-that-is-at-least-32-bytes";

/// A running stack and an HTTP client for its gateway.
pub struct Stack {
    pub base_url: String,
    pub http: reqwest::Client,
    /// Prefix of this stack's Redis keys, for tests that inspect or drop them.
    pub redis_prefix: String,
    /// Each gRPC service of the stack, by full name (`chirp.tweet.v1.TweetService`)
    /// with its address, for tests that call them as operators' tools do.
    /// Empty for a gateway alone.
    pub grpc_services: Vec<(&'static str, String)>,
}

/// Flags for the services of one stack, on top of the ones that wire it up.
#[derive(Debug, Default, Clone, Copy)]
pub struct ExtraArgs<'a> {
    pub gateway: &'a [&'a str],
    pub graph: &'a [&'a str],
    pub timeline: &'a [&'a str],
    pub fanout: &'a [&'a str],
}

/// A signed-up user and the token that speaks for them.
#[derive(Debug, Clone)]
pub struct TestUser {
    pub id: String,
    pub handle: String,
    pub token: String,
}

async fn bind() -> (TcpListener, String) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind a port");
    let addr: SocketAddr = listener.local_addr().expect("bound address");
    (listener, addr.to_string())
}

fn spawn(name: &'static str, service: impl Future<Output = anyhow::Result<()>> + Send + 'static) {
    tokio::spawn(async move {
        if let Err(error) = service.await {
            panic!("{name} stopped: {error:#}");
        }
    });
}

pub async fn spawn_stack() -> Stack {
    spawn_stack_with(&[]).await
}

/// A stack whose gateway also gets `gateway_args` (e.g. lower rate limits).
pub async fn spawn_stack_with(gateway_args: &[&str]) -> Stack {
    spawn_stack_with_args(ExtraArgs {
        gateway: gateway_args,
        ..ExtraArgs::default()
    })
    .await
}

/// A stack whose services also get `extra` flags (e.g. a lower celebrity threshold).
pub async fn spawn_stack_with_args(extra: ExtraArgs<'_>) -> Stack {
    testing::ensure_backends();
    let database_url = testing::fresh_database().await;
    let run_id = unique_name("e2e");
    let topic = format!("tweets_{run_id}");
    let redis_prefix = format!("{run_id}:");
    let (graph_listener, graph_addr) = bind().await;
    let (tweet_listener, tweet_addr) = bind().await;
    let (timeline_listener, timeline_addr) = bind().await;
    let (gateway_listener, gateway_addr) = bind().await;
    let never = std::future::pending::<()>;

    let mut args = vec![
        "graph",
        "--database-url",
        &database_url,
        "--redis-url",
        REDIS_URL,
        "--redis-key-prefix",
        &redis_prefix,
    ];
    args.extend_from_slice(extra.graph);
    let graph = graph::Config::parse_from(args);
    spawn("graph", graph::run(graph, graph_listener, never()));

    let tweet = tweet::Config::parse_from([
        "tweet",
        "--cql-nodes",
        CQL,
        "--cql-keyspace",
        &run_id,
        "--kafka-brokers",
        KAFKA,
        "--kafka-topic",
        &topic,
    ]);
    spawn("tweet", tweet::run(tweet, tweet_listener, never()));

    let mut args = vec![
        "timeline",
        "--tweet-addr",
        &tweet_addr,
        "--graph-addr",
        &graph_addr,
        "--redis-url",
        REDIS_URL,
        "--redis-key-prefix",
        &redis_prefix,
    ];
    args.extend_from_slice(extra.timeline);
    let timeline = timeline::Config::parse_from(args);
    spawn(
        "timeline",
        timeline::run(timeline, timeline_listener, never()),
    );

    let mut args = vec![
        "fanout",
        "--graph-addr",
        &graph_addr,
        "--kafka-brokers",
        KAFKA,
        "--kafka-topic",
        &topic,
        "--kafka-group-id",
        &run_id,
        "--redis-url",
        REDIS_URL,
        "--redis-key-prefix",
        &redis_prefix,
    ];
    args.extend_from_slice(extra.fanout);
    let fanout = fanout::Config::parse_from(args);
    spawn("fanout", fanout::run(fanout, never()));

    let mut args = vec![
        "gateway",
        "--tweet-addr",
        &tweet_addr,
        "--graph-addr",
        &graph_addr,
        "--timeline-addr",
        &timeline_addr,
        "--token-secret",
        TOKEN_SECRET,
        "--redis-url",
        REDIS_URL,
        "--redis-key-prefix",
        &redis_prefix,
    ];
    args.extend_from_slice(extra.gateway);
    let gateway = gateway::Config::parse_from(args);
    spawn("gateway", gateway::run(gateway, gateway_listener, never()));

    wait_until_serving(&graph_addr, &tweet_addr, &timeline_addr).await;
    Stack {
        base_url: format!("http://{gateway_addr}"),
        http: reqwest::Client::new(),
        redis_prefix,
        grpc_services: vec![
            (graph_service_server::SERVICE_NAME, graph_addr),
            (tweet_service_server::SERVICE_NAME, tweet_addr),
            (timeline_service_server::SERVICE_NAME, timeline_addr),
        ],
    }
}

/// A gateway alone, pointed wherever `args` say: for testing how it
/// behaves when the services behind it are down.
pub async fn spawn_gateway_only(args: &[&str]) -> Stack {
    let (listener, addr) = bind().await;
    let mut argv = vec!["gateway", "--token-secret", TOKEN_SECRET];
    argv.extend_from_slice(args);
    let config = gateway::Config::parse_from(argv);
    spawn(
        "gateway",
        gateway::run(config, listener, std::future::pending()),
    );
    Stack {
        base_url: format!("http://{addr}"),
        http: reqwest::Client::new(),
        redis_prefix: String::new(),
        grpc_services: Vec::new(),
    }
}

/// Services connect to their stores before they accept calls (creating a
/// keyspace takes seconds); wait until each answers a real request.
async fn wait_until_serving(graph: &str, tweet: &str, timeline: &str) {
    let channel = |addr: &str| {
        chirp_common::grpc::connect_lazy(addr, Duration::from_secs(2)).expect("valid address")
    };
    let graph = GraphServiceClient::new(channel(graph));
    let tweet = TweetServiceClient::new(channel(tweet));
    let timeline = TimelineServiceClient::new(channel(timeline));
    eventually(
        Duration::from_secs(60),
        "the services to start serving",
        || {
            let (mut graph, mut tweet, mut timeline) =
                (graph.clone(), tweet.clone(), timeline.clone());
            async move {
                let graph_up = answers(graph.get_user(GetUserRequest { user_id: 1 }).await);
                let tweet_up = answers(tweet.get_tweet(GetTweetRequest { tweet_id: 1 }).await);
                let request = GetHomeTimelineRequest {
                    user_id: 1,
                    before_tweet_id: None,
                    limit: 1,
                };
                let timeline_up = answers(timeline.get_home_timeline(request).await);
                (graph_up && tweet_up && timeline_up).then_some(())
            }
        },
    )
    .await;
}

/// A service that answers NotFound for an unknown id is serving.
fn answers<T>(result: Result<T, tonic::Status>) -> bool {
    match result {
        Ok(_) => true,
        Err(status) => status.code() == tonic::Code::NotFound,
    }
}

/// Polls `probe` until it returns `Some`, or fails the test after `deadline`.
pub async fn eventually<T, F, Fut>(deadline: Duration, what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(
            start.elapsed() < deadline,
            "timed out after {deadline:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

impl TestUser {
    pub fn numeric_id(&self) -> i64 {
        self.id.parse().expect("numeric user id")
    }
}

impl Stack {
    /// This stack's Redis timelines, to read or drop behind the services' back.
    pub async fn timelines(&self) -> HomeTimelines {
        let args = TimelineStoreArgs {
            redis_url: REDIS_URL.to_owned(),
            redis_key_prefix: self.redis_prefix.clone(),
            timeline_capacity: 800,
            timeline_ttl_secs: 3600,
            timeline_strategy: Strategy::Hybrid,
        };
        HomeTimelines::connect(&args)
            .await
            .expect("connect to Redis")
    }

    pub fn request(&self, method: Method, path: &str, token: Option<&str>) -> RequestBuilder {
        let request = self
            .http
            .request(method, format!("{}{path}", self.base_url));
        match token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    /// Sends a request and returns the status and the JSON body (or `Null`).
    pub async fn call(&self, request: RequestBuilder) -> (StatusCode, Value) {
        let response: Response = request.send().await.expect("gateway answers");
        let status = response.status();
        let body = response.text().await.expect("response body");
        let json = if body.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&body).unwrap_or_else(|_| panic!("not JSON ({status}): {body}"))
        };
        (status, json)
    }

    pub async fn sign_up(&self, handle: &str) -> TestUser {
        let body = json!({ "handle": handle, "display_name": format!("{handle} (test)") });
        let (status, json) = self
            .call(self.request(Method::POST, "/users", None).json(&body))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{json}");
        TestUser {
            id: json["user_id"].as_str().expect("user_id").to_owned(),
            handle: handle.to_owned(),
            token: json["token"].as_str().expect("token").to_owned(),
        }
    }

    pub async fn follow(&self, follower: &TestUser, target: &TestUser) {
        let body = json!({ "target_user_id": target.id });
        let request = self
            .request(Method::POST, "/follow", Some(&follower.token))
            .json(&body);
        let (status, json) = self.call(request).await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{json}");
    }

    pub async fn post(&self, author: &TestUser, content: &str) -> Value {
        let request = self
            .request(Method::POST, "/tweets", Some(&author.token))
            .json(&json!({ "content": content }));
        let (status, json) = self.call(request).await;
        assert_eq!(status, StatusCode::CREATED, "{json}");
        json
    }

    pub async fn home_timeline(&self, user: &TestUser, query: &str) -> Value {
        let path = format!("/users/{}/timeline{query}", user.id);
        let (status, json) = self
            .call(self.request(Method::GET, &path, Some(&user.token)))
            .await;
        assert_eq!(status, StatusCode::OK, "{json}");
        json
    }
}

/// The ids of a page's items, in order.
pub fn ids(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .expect("a page has items")
        .iter()
        .map(|item| item["id"].as_str().expect("item id").to_owned())
        .collect()
}

/// A handle unique to this test run (handles are 1–15 characters).
pub fn handle(prefix: &str) -> String {
    let suffix = &unique_name("")[1..];
    format!("{prefix}{}", &suffix[..15 - prefix.len()])
}
