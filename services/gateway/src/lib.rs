//! The gateway: chirp's public REST API, and the only service clients see.
//!
//! It authenticates callers, validates what HTTP alone can validate (shapes,
//! cursors, limits), and translates each request into calls to the internal
//! gRPC services, which own the rules and the data. Keeping the gateway
//! stateless means it scales by adding copies behind a load balancer; the
//! price is one extra network hop on every request.
//!
//! Reading order: [`config`], `api` (one module per resource: users,
//! follows, tweets, timelines), then `auth`, `rate_limit`, `cursor` and
//! `error`; `console` serves the web console at `/`.

mod api;
pub mod auth;
pub mod config;
mod console;
mod cursor;
mod error;
mod rate_limit;
mod read_limit;

use std::future::Future;
use std::sync::Arc;

use axum::serve::ListenerExt;
use chirp_grpc::{Channel, connect_lazy_with};
use chirp_proto::graph::graph_service_client::GraphServiceClient;
use chirp_proto::timeline::timeline_service_client::TimelineServiceClient;
use chirp_proto::tweet::tweet_service_client::TweetServiceClient;
use tokio::net::TcpListener;

pub use config::Config;

/// What every handler can reach. Cloning is cheap: gRPC clients share one
/// multiplexed HTTP/2 connection per service, the rest is behind an `Arc`.
#[derive(Clone)]
pub struct AppState {
    tweets: TweetServiceClient<Channel>,
    graph: GraphServiceClient<Channel>,
    timeline: TimelineServiceClient<Channel>,
    tokens: Arc<chirp_auth::Tokens>,
    cursors: Arc<cursor::Cursors>,
    rate_limiter: Arc<rate_limit::RateLimiter>,
    /// Home-timeline pages per user, counted in this process.
    read_limiter: Arc<read_limit::ReadLimiter>,
    /// How many X-Forwarded-For entries to trust for the client's address.
    trusted_proxy_hops: usize,
    /// Authors' handles, cached: every tweet shown names one.
    handles: api::hydrate::Handles,
    /// Fan-out progress per tweet, as the fan-out worker records it.
    deliveries: chirp_delivery::DeliveryLog,
    /// The console's view of the services' metrics.
    live: Arc<chirp_scraper::Live>,
}

impl AppState {
    pub fn new(config: &Config) -> anyhow::Result<Self> {
        let deadline = config.downstream_timeout();
        let signing_key = config.signing_key()?.expose();
        let token = &config.internal.token("gateway")?;
        Ok(Self {
            tweets: TweetServiceClient::new(connect_lazy_with(
                &config.tweet_addr,
                deadline,
                token,
            )?),
            graph: GraphServiceClient::new(connect_lazy_with(&config.graph_addr, deadline, token)?),
            timeline: TimelineServiceClient::new(connect_lazy_with(
                &config.timeline_addr,
                deadline,
                token,
            )?),
            tokens: Arc::new(chirp_auth::Tokens::new(
                signing_key,
                std::time::Duration::from_secs(config.token_ttl_secs),
            )),
            cursors: Arc::new(cursor::Cursors::new(signing_key)),
            rate_limiter: Arc::new(rate_limit::RateLimiter::new(
                &config.redis.target(),
                &config.redis.redis_key_prefix,
                config.write_limits(),
                config.signup_limits(),
            )?),
            read_limiter: Arc::new(read_limit::ReadLimiter::new(
                config.rate_limit_reads_per_minute,
                config.rate_limit_read_burst,
            )),
            trusted_proxy_hops: config.trusted_proxy_hops,
            handles: api::hydrate::Handles::new(config.handle_cache_capacity),
            deliveries: chirp_delivery::DeliveryLog::new(
                chirp_redis::connection::RedisConnection::lazy(
                    &config.redis.target(),
                    config.downstream_timeout(),
                )?,
                &config.redis.redis_key_prefix,
            ),
            live: Arc::new(chirp_scraper::Live::new(&config.console)),
        })
    }
}

/// The whole HTTP application, for serving or for in-process tests.
pub fn app(config: &Config) -> anyhow::Result<axum::Router> {
    Ok(api::router(AppState::new(config)?, config.max_body_bytes))
}

/// Serves the API on `listener` until `shutdown` resolves, then finishes the
/// requests in flight.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let app = app(&config)?;
    tracing::info!(addr = %listener.local_addr()?, "gateway listening");
    // As on the gRPC side: without TCP_NODELAY a response written in more
    // than one segment can wait for the client's delayed ACK.
    let listener = listener.tap_io(|tcp| {
        if let Err(error) = tcp.set_nodelay(true) {
            tracing::warn!(%error, "could not set TCP_NODELAY");
        }
    });
    // The peer's address reaches handlers: sign-ups are limited per client.
    let app = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await?;
    Ok(())
}
