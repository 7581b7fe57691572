//! Channels for the load tool's direct gRPC calls (the seed's imports, the
//! benches' floors): they carry the service token when `INTERNAL_TOKEN` is
//! set, as the services' own calls do, so the tool works against a
//! deployment whose services require it (and adds nothing where they do
//! not).

use std::time::Duration;

use chirp_grpc::service_auth::ServiceToken;
use chirp_grpc::{Channel, connect_lazy_with};

/// A lazily connected channel to `addr`, every call bounded by `deadline`.
pub fn connect(addr: &str, deadline: Duration) -> anyhow::Result<Channel> {
    let token = token(std::env::var("INTERNAL_TOKEN").ok().as_deref())?;
    connect_lazy_with(addr, deadline, &token)
}

/// The token `INTERNAL_TOKEN` holds; none when unset or empty.
fn token(raw: Option<&str>) -> anyhow::Result<ServiceToken> {
    ServiceToken::parse(raw.unwrap_or_default()).map_err(|e| anyhow::anyhow!("INTERNAL_TOKEN {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_is_taken_from_the_variable_and_checked() {
        let set = token(Some(&"k".repeat(ServiceToken::MIN_LEN))).unwrap();
        assert_eq!(format!("{set:?}"), "ServiceToken(***)");
        assert_eq!(format!("{:?}", token(None).unwrap()), "ServiceToken(none)");
        assert_eq!(
            format!("{:?}", token(Some("")).unwrap()),
            "ServiceToken(none)"
        );
        assert!(token(Some("short")).is_err());
    }
}
