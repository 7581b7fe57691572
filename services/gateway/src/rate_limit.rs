//! Rate limits: a token bucket per user on writes, and per client network on
//! sign-ups, kept in Redis. (Reads have their own, in memory:
//! `crate::read_limit`.)
//!
//! Each user has a bucket of at most `RATE_LIMIT_BURST` tokens that refills at
//! `RATE_LIMIT_WRITES_PER_MINUTE`; every write takes one token, and a write
//! that finds the bucket empty gets a 429 with `Retry-After`. Sign-ups have
//! no user yet, so their buckets (`RATE_LIMIT_SIGNUP_BURST`,
//! `RATE_LIMIT_SIGNUPS_PER_MINUTE`) are per client network: one machine
//! cannot mint accounts by the thousand. An IPv4 client is its address; an
//! IPv6 client is its /64, the prefix one host or home is given (the
//! addresses within it cost nothing to rotate, so keying on the exact
//! address would let one machine walk around the limit). The address is the connection's
//! peer, unless `TRUSTED_PROXY_HOPS` says that many proxies (a load balancer)
//! stand in front and append to `X-Forwarded-For`: then it is the entry the
//! outermost trusted proxy wrote. Entries left of it were written by the
//! client and prove nothing, and trusting the header with no proxy in front
//! would let any client pick its own address. The bucket lives
//! in Redis, not in the gateway, so every gateway copy behind the load
//! balancer sees the same count; one Lua script reads, refills and takes a
//! token, so concurrent writes cannot both spend the last token. It reads the
//! clock of Redis, not of the gateways, so their skew does not matter, and a
//! bucket expires once it would be full again: idle users cost no memory.
//!
//! When Redis is down or slow, writes **fail open**: the write goes through
//! and a warning is logged. The write limit protects the system from abuse;
//! it is not a correctness gate, and refusing every post because a cache is
//! down would turn a partial outage into a total one for every signed-in
//! user. Sign-ups **fail closed**: a 503 problem that says sign-ups are
//! paused, with `Retry-After`. Mass account creation is exactly the abuse
//! their limit is for, an outage is when nobody watches, and accounts made
//! then stay made; refusing costs only the few people signing up at that
//! moment, who are told to come back. A short timeout bounds what a dead
//! Redis adds to either.

use std::fmt::Display;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use chirp_redis::connection::{RedisConnection, RedisTarget};

use crate::AppState;
use crate::auth::Caller;
use crate::error::ApiError;

/// Takes one token from the bucket `KEYS[1]`.
/// `ARGV`: capacity (burst), refill rate in tokens per millisecond.
/// Returns `{1, 0}` when allowed, `{0, ms until a token is back}` when not.
const TAKE_TOKEN: &str = r"
local capacity = tonumber(ARGV[1])
local per_ms = tonumber(ARGV[2])
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or capacity
local at = tonumber(state[2]) or now
tokens = math.min(capacity, tokens + math.max(0, now - at) * per_ms)
local allowed, wait_ms = 0, 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
else
  wait_ms = math.ceil((1 - tokens) / per_ms)
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', now)
redis.call('PEXPIRE', KEYS[1], math.max(1, math.ceil((capacity - tokens) / per_ms)))
return {allowed, wait_ms}
";

/// The limits, as configured.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub per_minute: u32,
    pub burst: u32,
    /// Bound on one Redis round trip; past it the limiter counts as down.
    pub timeout: Duration,
}

/// What a bucket does when Redis cannot count (module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WhenDown {
    LetThrough,
    Refuse,
}

/// How long a refused sign-up is told to wait while Redis is down.
const SIGNUPS_PAUSED_RETRY: Duration = Duration::from_secs(5);

pub struct RateLimiter {
    redis: RedisConnection,
    script: redis::Script,
    key_prefix: String,
    writes: Limits,
    signups: Limits,
}

impl RateLimiter {
    /// Connects lazily: the gateway starts, and fails open, even if Redis
    /// is not up yet. A bucket is one key, so a Redis Cluster serves it as
    /// well as a single node: the script runs on the master of its slot.
    pub fn new(
        redis: &RedisTarget<'_>,
        key_prefix: &str,
        writes: Limits,
        signups: Limits,
    ) -> anyhow::Result<Self> {
        let timeout = writes.timeout.max(signups.timeout);
        Ok(Self {
            redis: RedisConnection::lazy(redis, timeout)?,
            script: redis::Script::new(TAKE_TOKEN),
            key_prefix: key_prefix.to_owned(),
            writes,
            signups,
        })
    }

    /// Takes one write token of `user_id`; the error says when to retry.
    pub async fn take(&self, user_id: i64) -> Result<(), ApiError> {
        self.take_from("writes", user_id, self.writes, WhenDown::LetThrough)
            .await
    }

    /// Takes one sign-up token of the client network of `address`.
    pub async fn take_signup(&self, address: IpAddr) -> Result<(), ApiError> {
        let network = ClientNetwork::of(address);
        self.take_from("signups", network, self.signups, WhenDown::Refuse)
            .await
    }

    async fn take_from(
        &self,
        bucket: &'static str,
        owner: impl Display,
        limits: Limits,
        when_down: WhenDown,
    ) -> Result<(), ApiError> {
        let per_ms = f64::from(limits.per_minute) / 60_000.0;
        let mut invocation = self
            .script
            .key(format!("{}ratelimit:{bucket}:{owner}", self.key_prefix));
        invocation.arg(limits.burst).arg(per_ms);
        let mut redis = self.redis.clone();
        let answer = tokio::time::timeout(
            limits.timeout,
            invocation.invoke_async::<(i64, i64)>(&mut redis),
        )
        .await;
        match answer {
            Ok(Ok((1, _))) => Ok(()),
            Ok(Ok((_, wait_ms))) => Err(ApiError::rate_limited(
                bucket,
                Duration::from_millis(wait_ms.max(0).unsigned_abs()),
            )),
            Ok(Err(error)) => {
                tracing::warn!(bucket, %owner, %error, ?when_down, "rate limiter unavailable");
                when_down.answer(bucket)
            }
            Err(_) => {
                tracing::warn!(bucket, %owner, ?when_down, "rate limiter timed out");
                when_down.answer(bucket)
            }
        }
    }
}

impl WhenDown {
    fn answer(self, bucket: &str) -> Result<(), ApiError> {
        match self {
            Self::LetThrough => Ok(()),
            Self::Refuse => Err(ApiError::paused(
                format!("{bucket} are paused: their rate limiter cannot count them right now"),
                SIGNUPS_PAUSED_RETRY,
            )),
        }
    }
}

/// What one sign-up bucket covers: an IPv4 address, or an IPv6 /64.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ClientNetwork(IpAddr);

impl ClientNetwork {
    fn of(address: IpAddr) -> Self {
        match address {
            IpAddr::V4(v4) => Self(IpAddr::V4(v4)),
            // An IPv4 client seen through a dual-stack socket is that IPv4 address.
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Self(IpAddr::V4(v4)),
                None => {
                    let prefix = u128::from(v6) & !u128::from(u64::MAX);
                    Self(IpAddr::V6(Ipv6Addr::from(prefix)))
                }
            },
        }
    }
}

impl Display for ClientNetwork {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            IpAddr::V4(v4) => write!(f, "{v4}"),
            IpAddr::V6(v6) => write!(f, "{v6}/64"),
        }
    }
}

/// An authenticated caller who may write now. Taking it as a handler argument
/// (instead of [`Caller`]) is what puts a route under the write limit; it
/// authenticates first, so a stranger gets a 401, never a 429.
#[derive(Debug, Clone, Copy)]
pub struct Writer(pub Caller);

impl FromRequestParts<AppState> for Writer {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let caller = Caller::from_request_parts(parts, state).await?;
        state.rate_limiter.take(caller.0).await?;
        Ok(Self(caller))
    }
}

/// A sign-up that its client's address may make now. Taking it as a
/// handler argument puts the route under the per-address sign-up limit.
#[derive(Debug, Clone, Copy)]
pub struct SignUpAllowed;

impl FromRequestParts<AppState> for SignUpAllowed {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(peer)| peer.ip());
        // Only an app called in process, without a socket, has no peer.
        if let Some(address) = client_address(&parts.headers, peer, state.trusted_proxy_hops) {
            state.rate_limiter.take_signup(address).await?;
        }
        Ok(Self)
    }
}

/// The client's address: with `hops` trusted proxies in front, the
/// `X-Forwarded-For` entry the outermost of them appended (the `hops`-th from
/// the right); without them, or when the header is shorter than that (the
/// request skipped a proxy), the connection's `peer`.
fn client_address(headers: &HeaderMap, peer: Option<IpAddr>, hops: usize) -> Option<IpAddr> {
    if hops == 0 {
        return peer;
    }
    let forwarded: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .collect();
    forwarded
        .len()
        .checked_sub(hops)
        .and_then(|index| forwarded[index].parse().ok())
        .or(peer)
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;

    /// A limiter whose Redis never answers (nothing listens on port 1),
    /// with a short timeout so the tests see the fallback quickly.
    fn on_a_dead_redis() -> RateLimiter {
        let limits = Limits {
            per_minute: 1,
            burst: 1,
            timeout: Duration::from_millis(200),
        };
        let redis = RedisTarget {
            urls: "redis://127.0.0.1:1",
            cluster: false,
        };
        RateLimiter::new(&redis, "test:", limits, limits).unwrap()
    }

    #[tokio::test]
    async fn a_dead_redis_lets_writes_through_within_the_timeout() {
        let limiter = on_a_dead_redis();
        for _ in 0..3 {
            let start = Instant::now();
            assert!(limiter.take(7).await.is_ok());
            assert!(
                start.elapsed() < Duration::from_secs(1),
                "{:?}",
                start.elapsed()
            );
        }
    }

    #[tokio::test]
    async fn a_dead_redis_refuses_sign_ups_with_a_503() {
        let limiter = on_a_dead_redis();
        let refused = limiter
            .take_signup(IpAddr::from([10, 0, 0, 1]))
            .await
            .expect_err("sign-ups fail closed");
        let response = axum::response::IntoResponse::into_response(refused);
        assert_eq!(
            response.status(),
            axum::http::StatusCode::SERVICE_UNAVAILABLE
        );
        assert!(response.headers().contains_key("retry-after"));
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        let problem: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert!(
            problem["detail"]
                .as_str()
                .unwrap()
                .contains("signups are paused"),
            "{problem}"
        );
    }

    #[test]
    fn a_sign_up_bucket_is_an_ipv4_address_or_an_ipv6_64() {
        let network = |raw: &str| ClientNetwork::of(raw.parse().unwrap()).to_string();
        assert_eq!(network("203.0.113.7"), "203.0.113.7");
        assert_eq!(network("::ffff:203.0.113.7"), "203.0.113.7");
        assert_eq!(network("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::/64");
        assert_eq!(
            network("2001:db8:1:2:ffff:ffff:ffff:ffff"),
            network("2001:db8:1:2::9"),
            "one /64, one bucket"
        );
        assert_ne!(network("2001:db8:1:3::1"), network("2001:db8:1:2::1"));
    }

    #[test]
    fn the_client_address_is_the_peer_unless_proxies_are_trusted() {
        let peer = Some(IpAddr::from([10, 0, 0, 9]));
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", "6.6.6.6".parse().unwrap());
        headers.append("x-forwarded-for", "1.2.3.4, 10.0.0.7".parse().unwrap());
        assert_eq!(
            client_address(&headers, peer, 0),
            peer,
            "no proxy: a forged header is ignored"
        );
        let second = |ip: [u8; 4]| Some(IpAddr::from(ip));
        assert_eq!(client_address(&headers, peer, 1), second([10, 0, 0, 7]));
        assert_eq!(client_address(&headers, peer, 2), second([1, 2, 3, 4]));
        assert_eq!(
            client_address(&headers, peer, 4),
            peer,
            "fewer entries than proxies"
        );
        assert_eq!(client_address(&HeaderMap::new(), peer, 1), peer);
    }
}
