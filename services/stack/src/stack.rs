//! A whole chirp deployment: the gateway in front of [`InternalServices`].

use anyhow::Context;
use chirp_test_support::local_listener;
use clap::Parser;

use crate::{InternalServices, ServiceArgs, Services, Stores, TOKEN_SECRET};

/// Where a running deployment answers.
#[derive(Debug, Clone)]
pub struct Stack {
    /// The gateway's base URL (`http://127.0.0.1:<port>`).
    pub gateway_url: String,
    pub internal: InternalServices,
}

impl Stack {
    /// Starts the five services on fresh [`Stores`] named after `prefix`,
    /// for the rest of the test. Panics if one stops, as a failed test
    /// should.
    pub async fn spawn(prefix: &str, extra: ServiceArgs<'_>) -> Self {
        let stores = Stores::fresh(prefix).await;
        Services::detach_started(Self::start(&stores, extra).await)
    }

    /// Starts the five services on `stores`, with what stops them. The
    /// gateway signs tokens with [`TOKEN_SECRET`], and keeps its rate-limit
    /// buckets in the stores' Redis unless `extra.gateway` names another.
    pub async fn start(
        stores: &Stores,
        extra: ServiceArgs<'_>,
    ) -> anyhow::Result<(Self, Services)> {
        let (internal, mut services) = InternalServices::start(stores, extra).await?;
        let (listener, gateway_addr) = local_listener().await;
        let mut args = vec![
            "gateway",
            "--tweet-addr",
            &internal.tweet_addr,
            "--graph-addr",
            &internal.graph_addr,
            "--timeline-addr",
            &internal.timeline_addr,
            "--token-secret",
            TOKEN_SECRET,
        ];
        args.extend(stores.redis_prefix());
        let redis = stores.redis_server();
        if !extra.gateway.contains(&"--redis-url") {
            args.extend_from_slice(&redis);
        }
        args.extend_from_slice(extra.gateway);
        let gateway = gateway::Config::try_parse_from(args).context("gateway flags")?;
        let until = services.until();
        services.spawn("gateway", gateway::run(gateway, listener, until));
        let stack = Self {
            gateway_url: format!("http://{gateway_addr}"),
            internal,
        };
        Ok((stack, services))
    }
}

/// A gateway alone, pointed wherever `args` say, for the rest of the test:
/// for testing how it behaves when the services behind it are down.
/// Returns its base URL.
pub async fn spawn_gateway(args: &[&str]) -> String {
    let (listener, addr) = local_listener().await;
    let argv = [&["gateway", "--token-secret", TOKEN_SECRET][..], args].concat();
    let config = gateway::Config::try_parse_from(argv)
        .unwrap_or_else(|error| panic!("gateway flags: {error}"));
    let mut services = Services::new();
    let until = services.until();
    services.spawn("gateway", gateway::run(config, listener, until));
    services.detach();
    format!("http://{addr}")
}
