//! Configuration, from flags or the environment; `gateway --help` lists it all.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use chirp_common::telemetry::LogArgs;
use clap::Parser;

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
    /// Deadline of every call to an internal service, in milliseconds.
    #[arg(long, env = "DOWNSTREAM_TIMEOUT_MS", default_value_t = 3000)]
    pub downstream_timeout_ms: u64,
    /// Largest request body accepted, in bytes.
    #[arg(long, env = "MAX_BODY_BYTES", default_value_t = 16 * 1024)]
    pub max_body_bytes: usize,
    #[command(flatten)]
    pub log: LogArgs,
}

impl Config {
    pub fn downstream_timeout(&self) -> Duration {
        Duration::from_millis(self.downstream_timeout_ms)
    }
}

/// A secret that never shows up in `Debug` output or logs.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub const MIN_LEN: usize = 32;

    pub fn parse(raw: &str) -> Result<Self, String> {
        if raw.len() < Self::MIN_LEN {
            return Err(format!("must be at least {} bytes", Self::MIN_LEN));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn expose(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_long_and_never_printed() {
        assert!(Secret::parse("short").is_err());
        let secret = Secret::parse(&"s".repeat(32)).unwrap();
        assert_eq!(format!("{secret:?}"), "Secret(***)");
    }
}
