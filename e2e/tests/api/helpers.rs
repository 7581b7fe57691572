//! `spawn_stack()`: a whole chirp deployment per test, on ports chosen by the OS.

use chirp_client::Gateway;
use chirp_test_support::unique_name;
use chirp_timeline_store::HomeTimelines;
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde_json::{Value, json};

/// Flags for the services of one stack, on top of the ones that wire it up.
pub use chirp_stack::ServiceArgs as ExtraArgs;
#[allow(unused_imports)] // Read by tests/loadtest.rs, not by the api binary.
pub use chirp_stack::TOKEN_SECRET;

/// A running stack and a client of its gateway.
pub struct Stack {
    pub gateway: Gateway,
    /// Prefix of this stack's Redis keys, for tests that inspect or drop them.
    pub redis_prefix: String,
    /// Each gRPC service of the stack, by full name (`chirp.tweet.v1.TweetService`)
    /// with its address, for tests that call them as operators' tools do.
    /// Empty for a gateway alone.
    pub grpc_services: Vec<(&'static str, String)>,
    /// The topic of the tweet events, for tests that publish to it as the
    /// tweet service does (the load tool's fan-out bench). Empty for a
    /// gateway alone.
    #[allow(dead_code)] // Read by tests/loadtest.rs, not by the api binary.
    pub kafka_topic: String,
}

/// A signed-up user and the token that speaks for them.
#[derive(Debug, Clone)]
pub struct TestUser {
    pub id: String,
    pub handle: String,
    pub token: String,
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
    let stack = chirp_stack::Stack::spawn("e2e", extra).await;
    Stack {
        gateway: Gateway::new(&stack.gateway_url).expect("an HTTP client"),
        grpc_services: stack.internal.grpc_services(),
        redis_prefix: stack.internal.redis_prefix,
        kafka_topic: stack.internal.kafka_topic,
    }
}

/// A gateway alone, pointed wherever `args` say: for testing how it
/// behaves when the services behind it are down.
pub async fn spawn_gateway_only(args: &[&str]) -> Stack {
    Stack {
        gateway: Gateway::new(&chirp_stack::spawn_gateway(args).await).expect("an HTTP client"),
        redis_prefix: String::new(),
        grpc_services: Vec::new(),
        kafka_topic: String::new(),
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
        let args = chirp_test_support::timeline_store(&self.redis_prefix);
        HomeTimelines::connect(&args)
            .await
            .expect("connect to Redis")
    }

    /// A raw request, for tests that check statuses and bodies exactly.
    pub fn request(&self, method: Method, path: &str, token: Option<&str>) -> RequestBuilder {
        self.gateway.request(method, path, token)
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
        let signed_up = self
            .gateway
            .sign_up(handle, &format!("{handle} (test)"))
            .await
            .unwrap_or_else(|error| panic!("sign-up of {handle}: {error}"));
        TestUser {
            id: signed_up.user_id.to_string(),
            handle: handle.to_owned(),
            token: signed_up.token,
        }
    }

    pub async fn follow(&self, follower: &TestUser, target: &TestUser) {
        self.gateway
            .follow(&follower.token, target.numeric_id())
            .await
            .unwrap_or_else(|error| {
                panic!("{} follows {}: {error}", follower.handle, target.handle)
            });
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
