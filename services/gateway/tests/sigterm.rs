//! The real `gateway` binary under load, stopped the way Docker and
//! Kubernetes stop it: SIGTERM. On the way, its Prometheus endpoint is read
//! as Prometheus reads it, over HTTP, to see that it counted the load.
//!
//! The services behind it run in this process on ports chosen by the OS,
//! with their own database, keyspace, topic and key prefix; the gateway runs
//! as a child process configured by environment, since only a real process
//! shows how it takes a signal and what it exits with.
//!
//! What a client may see while a gateway stops: a complete 2xx response, or
//! a refused connection once the gateway stopped listening. One more outcome
//! is inherent to HTTP/1.1 and no server can rule it out: a request written
//! on a kept-alive connection at the instant the server closes it (or into
//! the accept backlog as the listener goes) gets no response at all. The
//! server never read it, so it did nothing, which the test checks: every
//! tweet stored is one the gateway acknowledged. Such a client retries, with
//! the same `Idempotency-Key` if it sent one.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use chirp_client::reqwest::{Method, StatusCode};
use chirp_client::{Error, Gateway, reqwest};
use chirp_grpc::Channel;
use chirp_proto::tweet::tweet_service_client::TweetServiceClient;
use chirp_proto::tweet::{GetTweetRequest, ListTweetsByAuthorRequest};
use chirp_stack::{InternalServices, ServiceArgs};
use chirp_test_support::{REDIS_URL, ServiceProcess, eventually, unique_name};

const TOKEN_SECRET: &str = "sigterm-test-secret-that-is-at-least-32-bytes";
/// Clients sending requests at once, each one after the other.
const CLIENTS: usize = 8;
/// Tweets acknowledged before the signal: the load is well under way.
const POSTS_BEFORE_SIGNAL: usize = 40;
/// How long the gateway may take from SIGTERM to its exit.
const EXIT_BOUND: Duration = Duration::from_secs(10);

/// Starts the gateway binary in front of `internal`, and returns it with a
/// client of it and its Prometheus endpoint once it answers.
async fn start_gateway(internal: &InternalServices) -> (ServiceProcess, Gateway, String) {
    let addr = free_port();
    let metrics_addr = free_port();
    let process = ServiceProcess::start(
        env!("CARGO_BIN_EXE_gateway"),
        &[
            ("LISTEN_ADDR", &addr),
            ("METRICS_ADDR", &metrics_addr),
            ("TWEET_ADDR", &internal.tweet_addr),
            ("GRAPH_ADDR", &internal.graph_addr),
            ("TIMELINE_ADDR", &internal.timeline_addr),
            ("TOKEN_SECRET", TOKEN_SECRET),
            ("REDIS_URL", REDIS_URL),
            ("REDIS_KEY_PREFIX", &internal.redis_prefix),
            // The load is many writes by few users.
            ("RATE_LIMIT_WRITES_PER_MINUTE", "1000000"),
            ("RATE_LIMIT_BURST", "1000000"),
        ],
    );
    // A request that hangs is a failure, not a test that never ends.
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("an HTTP client");
    let gateway = Gateway::with_http(http, &format!("http://{addr}"));
    eventually(Duration::from_secs(30), "the gateway to answer", || {
        let healthz = gateway.request(Method::GET, "/healthz", None).send();
        async move {
            let response = healthz.await.ok()?;
            (response.status() == StatusCode::OK).then_some(())
        }
    })
    .await;
    (process, gateway, format!("http://{metrics_addr}/metrics"))
}

/// The binary binds its own listeners: find it free ports. The OS is
/// unlikely to hand one out again in the moment before it binds.
fn free_port() -> String {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .to_string()
}

/// One client: a signed-up user posting and reading in a loop.
struct Client {
    gateway: Gateway,
    user_id: i64,
    token: String,
}

/// What one client saw, once the gateway refused it.
#[derive(Debug, Default)]
struct Log {
    /// Tweets acknowledged with 201, by id, with their content.
    acknowledged: BTreeMap<i64, String>,
    /// Requests that got a complete response.
    answered: usize,
    /// Requests written that got no response: allowed, if they had no effect.
    unanswered: usize,
    /// What a graceful shutdown must never show.
    failures: Vec<String>,
}

impl Client {
    async fn sign_up(gateway: &Gateway) -> Self {
        let handle = format!("u{}", &unique_name("")[1..15]);
        let signed_up = gateway
            .sign_up(&handle, &handle)
            .await
            .unwrap_or_else(|error| panic!("sign-up failed: {error:?}"));
        Self {
            gateway: gateway.clone(),
            user_id: signed_up.user_id,
            token: signed_up.token,
        }
    }

    /// Posts a tweet, reads it back and now and then the home timeline, over
    /// and over, until the gateway refuses the connection.
    async fn run(self, acknowledged: Arc<AtomicUsize>) -> Log {
        let mut log = Log::default();
        for n in 0.. {
            let content = format!("tweet {n} of user {}", self.user_id);
            let post = self.gateway.post_tweet(&self.token, &content, None).await;
            let tweet = match log.record("POST /tweets", post) {
                Ok(Some(tweet)) => tweet,
                Ok(None) => continue,
                Err(Refused) => break,
            };
            if tweet.content != content {
                log.failures
                    .push(format!("POST /tweets answered {tweet:?} to {content:?}"));
                continue;
            }
            log.acknowledged.insert(tweet.id, content);
            acknowledged.fetch_add(1, Ordering::Relaxed);

            let read = self.gateway.tweet(tweet.id).await;
            if log.record("GET /tweets/{id}", read).is_err() {
                break;
            }
            if n % 4 == 0 {
                let read = self
                    .gateway
                    .home_timeline(self.user_id, &self.token, None, None)
                    .await;
                if log.record("GET /users/{id}/timeline", read).is_err() {
                    break;
                }
            }
        }
        log
    }
}

/// The gateway refused a connection: it has stopped listening.
struct Refused;

impl Log {
    /// Notes how a call ended, and returns what a 2xx response carried.
    fn record<T>(&mut self, what: &str, outcome: Result<T, Error>) -> Result<Option<T>, Refused> {
        match outcome {
            Ok(answer) => {
                self.answered += 1;
                return Ok(Some(answer));
            }
            Err(error) if error.refused() => return Err(Refused),
            Err(Error::Status { status, code }) => {
                self.answered += 1;
                self.failures
                    .push(format!("{what} answered {status}: {code:?}"));
            }
            Err(Error::Unanswered(error)) if error.is_timeout() => {
                self.failures.push(format!("{what} hung: {error}"));
            }
            Err(Error::Unanswered(_)) => self.unanswered += 1,
            Err(Error::Body { status, source }) => {
                self.failures.push(format!(
                    "{what} answered {status}, then its body broke off or was not JSON: {source}"
                ));
            }
        }
        Ok(None)
    }
}

/// Every tweet the tweet service holds for `author_id`, by id, with content.
async fn stored_tweets(
    tweets: &TweetServiceClient<Channel>,
    author_id: i64,
) -> BTreeMap<i64, String> {
    let mut stored = BTreeMap::new();
    let mut before_tweet_id = None;
    loop {
        let request = ListTweetsByAuthorRequest {
            author_id,
            before_tweet_id,
            limit: 100,
        };
        let page = tweets
            .clone()
            .list_tweets_by_author(request)
            .await
            .expect("the tweet service lists tweets")
            .into_inner();
        stored.extend(page.tweets.into_iter().map(|t| (t.tweet_id, t.content)));
        match page.next_before_tweet_id {
            Some(next) => before_tweet_id = Some(next),
            None => return stored,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_answers_every_accepted_request_then_exits_0() {
    let internal = InternalServices::spawn("sigterm", ServiceArgs::default()).await;
    let tweets = TweetServiceClient::new(
        chirp_grpc::connect_lazy(&internal.tweet_addr, Duration::from_secs(5))
            .expect("a valid address"),
    );
    let (process, gateway, metrics_url) = start_gateway(&internal).await;
    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        clients.push(Client::sign_up(&gateway).await);
    }
    let user_ids: Vec<i64> = clients.iter().map(|client| client.user_id).collect();
    let acknowledged = Arc::new(AtomicUsize::new(0));
    let running: Vec<_> = clients
        .into_iter()
        .map(|client| tokio::spawn(client.run(Arc::clone(&acknowledged))))
        .collect();
    eventually(Duration::from_secs(30), "the load to get going", || {
        let count = acknowledged.load(Ordering::Relaxed);
        async move { (count >= POSTS_BEFORE_SIGNAL).then_some(()) }
    })
    .await;

    let exposition = reqwest::get(&metrics_url)
        .await
        .and_then(reqwest::Response::error_for_status)
        .unwrap_or_else(|error| panic!("GET {metrics_url}: {error}"))
        .text()
        .await
        .unwrap_or_else(|error| panic!("GET {metrics_url}: {error}"));
    let posted = chirp_runtime::metrics::total(
        &exposition,
        "chirp_http_requests_total",
        &[r#"method="POST""#, r#"route="/tweets""#, r#"status="201""#],
    );
    assert!(
        posted >= POSTS_BEFORE_SIGNAL as f64,
        "/metrics counts the posts answered: {posted}"
    );
    process.terminate();
    let exit = process.exit_within(EXIT_BOUND).await;
    assert!(exit.status.success(), "the gateway exited with {exit:?}");
    let mut logs = Vec::new();
    for client in running {
        logs.push(client.await.expect("a client panicked"));
    }
    let after = gateway.request(Method::GET, "/healthz", None).send().await;
    assert!(
        after.as_ref().is_err_and(reqwest::Error::is_connect),
        "a request after the exit was not refused at connect: {after:?}"
    );

    let failures: Vec<&String> = logs.iter().flat_map(|log| &log.failures).collect();
    assert!(
        failures.is_empty(),
        "during the shutdown: {failures:#?}\ngateway output:\n{}",
        exit.output
    );
    for (user_id, log) in user_ids.into_iter().zip(&logs) {
        // Equal, not just included: an unanswered post created nothing.
        assert_eq!(
            stored_tweets(&tweets, user_id).await,
            log.acknowledged,
            "user {user_id}: tweets stored vs. tweets acknowledged ({} requests answered, {} unanswered)",
            log.answered,
            log.unanswered
        );
        for (&tweet_id, content) in &log.acknowledged {
            let tweet = tweets
                .clone()
                .get_tweet(GetTweetRequest { tweet_id })
                .await
                .expect("an acknowledged tweet is readable")
                .into_inner();
            assert_eq!(&tweet.content, content);
        }
    }
}
