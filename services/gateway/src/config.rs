//! Configuration, from flags or the environment; `gateway --help` lists it all.

use std::net::SocketAddr;
use std::time::Duration;

use chirp_auth::Secret;
use chirp_grpc::service_auth::ServiceAuthArgs;
use chirp_redis::connection::RedisArgs;
use chirp_runtime::metrics::MetricsArgs;
use chirp_runtime::telemetry::LogArgs;
use clap::Parser;

use crate::rate_limit::Limits;

#[derive(Debug, Clone, Parser)]
#[command(name = "gateway", about = "chirp gateway: the public REST API")]
pub struct Config {
    /// Address the HTTP server listens on.
    #[arg(long, env = "LISTEN_ADDR", default_value = "0.0.0.0:8080")]
    pub listen_addr: SocketAddr,
    /// The tweet service (gRPC).
    #[arg(long, env = "TWEET_ADDR", default_value = "127.0.0.1:50051")]
    pub tweet_addr: String,
    /// The graph service (gRPC).
    #[arg(long, env = "GRAPH_ADDR", default_value = "127.0.0.1:50052")]
    pub graph_addr: String,
    /// The timeline service (gRPC).
    #[arg(long, env = "TIMELINE_ADDR", default_value = "127.0.0.1:50053")]
    pub timeline_addr: String,
    /// Key that signs bearer tokens and pagination cursors; at least 32 bytes.
    /// Required: there is no safe default for a secret.
    #[arg(long, env = "TOKEN_SECRET", value_parser = Secret::parse)]
    pub token_secret: Secret,
    /// How long a bearer token stays valid, in seconds.
    #[arg(long, env = "TOKEN_TTL_SECS", default_value_t = 24 * 3600)]
    pub token_ttl_secs: u64,
    /// Deadline of every call to an internal service, in milliseconds. The
    /// service is told it (`grpc-timeout`) and stops at the same moment, so a
    /// 503 for a timed-out post means "not done, or done: retry with the same
    /// Idempotency-Key to find out", never "done later".
    #[arg(long, env = "DOWNSTREAM_TIMEOUT_MS", default_value_t = 3000)]
    pub downstream_timeout_ms: u64,
    /// Largest request body accepted, in bytes.
    #[arg(long, env = "MAX_BODY_BYTES", default_value_t = 16 * 1024)]
    pub max_body_bytes: usize,
    /// The most authors' handles kept in memory (a few dozen bytes each):
    /// the distinct authors the active readers' pages show. A page with a
    /// handle not kept costs a `BatchGetUsers` call and a Postgres query.
    #[arg(long, env = "HANDLE_CACHE_CAPACITY", default_value_t = 100_000)]
    pub handle_cache_capacity: u64,
    /// Redis holding the rate-limit buckets and the delivery records,
    /// shared by every gateway copy.
    #[command(flatten)]
    pub redis: RedisArgs,
    /// Sustained writes (tweets, deletes, follows) allowed per user per minute.
    #[arg(long, env = "RATE_LIMIT_WRITES_PER_MINUTE", default_value_t = 60,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub rate_limit_writes_per_minute: u32,
    /// Writes a user may make at once before the per-minute rate applies.
    #[arg(long, env = "RATE_LIMIT_BURST", default_value_t = 20,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub rate_limit_burst: u32,
    /// Sustained sign-ups allowed per client address per minute.
    #[arg(long, env = "RATE_LIMIT_SIGNUPS_PER_MINUTE", default_value_t = 10,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub rate_limit_signups_per_minute: u32,
    /// Sign-ups one client address may make at once before the per-minute rate applies.
    #[arg(long, env = "RATE_LIMIT_SIGNUP_BURST", default_value_t = 100,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub rate_limit_signup_burst: u32,
    /// Sustained home-timeline pages allowed per user per minute, counted by each
    /// gateway copy on its own (in memory: a read costs no extra Redis round trip).
    #[arg(long, env = "RATE_LIMIT_READS_PER_MINUTE", default_value_t = 6000,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub rate_limit_reads_per_minute: u32,
    /// Home-timeline pages a user may read at once before the per-minute rate applies.
    #[arg(long, env = "RATE_LIMIT_READ_BURST", default_value_t = 1000,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub rate_limit_read_burst: u32,
    /// Proxies in front of the gateway that append the address they saw to
    /// X-Forwarded-For; 0 (the default) trusts no such header and takes the
    /// client address from the connection.
    #[arg(long, env = "TRUSTED_PROXY_HOPS", default_value_t = 0)]
    pub trusted_proxy_hops: usize,
    /// Deadline of the rate limiter's Redis call, in milliseconds; past it a
    /// write goes through (fails open). A sign-up, which is refused instead
    /// (fails closed), waits at least 2 s: sign-ups are rare and not
    /// latency-bound, and a slow Redis should not turn them away.
    #[arg(long, env = "RATE_LIMIT_TIMEOUT_MS", default_value_t = 100)]
    pub rate_limit_timeout_ms: u64,
    #[command(flatten)]
    pub console: chirp_scraper::ConsoleArgs,
    #[command(flatten)]
    pub metrics: MetricsArgs,
    #[command(flatten)]
    pub log: LogArgs,
    /// The credential of calls between services.
    #[command(flatten)]
    pub internal: ServiceAuthArgs,
}

impl Config {
    pub fn downstream_timeout(&self) -> Duration {
        Duration::from_millis(self.downstream_timeout_ms)
    }

    pub fn write_limits(&self) -> Limits {
        Limits {
            per_minute: self.rate_limit_writes_per_minute,
            burst: self.rate_limit_burst,
            timeout: Duration::from_millis(self.rate_limit_timeout_ms),
        }
    }

    pub fn signup_limits(&self) -> Limits {
        Limits {
            per_minute: self.rate_limit_signups_per_minute,
            burst: self.rate_limit_signup_burst,
            timeout: Duration::from_millis(self.rate_limit_timeout_ms).max(SIGNUP_LIMIT_TIMEOUT),
        }
    }

    /// The key that signs tokens and cursors, unless it is a published one
    /// and `INSECURE_DEV_SECRET` (a setting of [`ServiceAuthArgs`], since it
    /// also allows a published `INTERNAL_TOKEN`) does not allow that.
    pub fn signing_key(&self) -> anyhow::Result<&Secret> {
        let secret = &self.token_secret;
        let published = PUBLISHED_SECRETS.map(str::as_bytes);
        if !published.contains(&secret.expose()) {
            return Ok(secret);
        }
        anyhow::ensure!(
            self.internal.insecure_dev_secret,
            "TOKEN_SECRET is the example value published with chirp: anyone could sign \
             tokens for any user. Set a secret of your own (e.g. `openssl rand -hex 32`), \
             or, on your own machine only, INSECURE_DEV_SECRET=true"
        );
        tracing::warn!(
            "TOKEN_SECRET is the published example value: anyone who reaches this gateway \
             can sign in as anyone (allowed by INSECURE_DEV_SECRET)"
        );
        Ok(secret)
    }
}

/// The least a sign-up waits for its limiter (`RATE_LIMIT_TIMEOUT_MS`).
const SIGNUP_LIMIT_TIMEOUT: Duration = Duration::from_secs(2);

/// Secrets written in this repository: tokens they sign prove nothing.
const PUBLISHED_SECRETS: [&str; 1] = ["dev-only-insecure-token-secret-change-me"];

#[cfg(test)]
mod tests {
    use super::*;

    fn config(args: &[&str]) -> Config {
        Config::try_parse_from([&["gateway"], args].concat()).expect("valid flags")
    }

    #[test]
    fn a_published_secret_is_refused_unless_explicitly_allowed() {
        let published = ["--token-secret", PUBLISHED_SECRETS[0]];
        let error = config(&published).signing_key().unwrap_err();
        assert!(error.to_string().contains("INSECURE_DEV_SECRET"), "{error}");
        let allowed = config(&[&published[..], &["--insecure-dev-secret=true"]].concat());
        assert!(allowed.signing_key().is_ok());
        let own = config(&["--token-secret", &"k".repeat(40)]);
        assert!(own.signing_key().is_ok());
    }
}
