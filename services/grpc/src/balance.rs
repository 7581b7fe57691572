//! Client-side load balancing over several instances of a peer, keeping
//! only the instances that say they are serving.
//!
//! A gRPC client keeps one long-lived HTTP/2 connection, so a load balancer
//! that spreads *connections* (a Kubernetes ClusterIP Service, a TCP proxy)
//! sends all of one client's calls to one instance. Balancing *calls* has to
//! happen in the client: tonic's balanced channel picks, for every call, the
//! less loaded of two random instances (power of two choices). What it does
//! not do is notice a dead instance: a lazily connected endpoint fails each
//! call sent its way until it is removed. So a watcher task here asks every
//! instance the standard health service (`grpc.health.v1.Health/Check`) once
//! a second and keeps the balance to those that answer SERVING; names are
//! resolved again on each round, so the replicas behind a DNS name (a
//! headless Service, a compose service with replicas) come and go with it.
//!
//! The trade-off: an instance that dies is still called until the next round
//! notices (up to a second plus the check's timeout); those calls fail fast
//! with `Unavailable`, which a client may retry and will then reach another
//! instance. When no instance is healthy, all of them stay in the balance:
//! calls then fail fast as with a single address, instead of waiting for an
//! instance to appear.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::Duration;

use tokio::sync::mpsc::Sender;
use tonic::transport::channel::Change;
use tonic::transport::{Channel, Endpoint};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

/// How often every instance is asked whether it serves.
const CHECK_INTERVAL: Duration = Duration::from_secs(1);
/// How long one health check may take before the instance counts as down.
const CHECK_TIMEOUT: Duration = Duration::from_millis(500);

/// The gRPC name prefix (`dns:///host:port`) that asks for balancing over
/// every address a name resolves to, as gRPC's own resolvers spell it.
const DNS_SCHEME: &str = "dns:///";

/// What a peer address names: one instance to dial directly, or several to
/// balance over.
#[derive(Debug, PartialEq, Eq)]
pub enum Targets {
    /// One `host:port` (or `http://…` URI): dialled directly, as always.
    Single(String),
    /// A comma-separated list of `host:port`, or any `dns:///host:port`:
    /// every address each name resolves to is one instance.
    Balanced(Vec<String>),
}

impl Targets {
    pub fn parse(addr: &str) -> anyhow::Result<Self> {
        let names: Vec<&str> = addr
            .split(',')
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .collect();
        match names.as_slice() {
            [] => anyhow::bail!("empty peer address {addr:?}"),
            [one] if !one.starts_with(DNS_SCHEME) => Ok(Self::Single((*one).to_owned())),
            _ => names
                .iter()
                .map(|name| {
                    let host_port = name
                        .strip_prefix(DNS_SCHEME)
                        .or_else(|| name.strip_prefix("http://"))
                        .unwrap_or(name);
                    anyhow::ensure!(
                        host_port.rsplit_once(':').is_some_and(|(host, port)| {
                            !host.is_empty() && port.parse::<u16>().is_ok()
                        }),
                        "peer address {name:?} in {addr:?} is not host:port"
                    );
                    Ok(host_port.to_owned())
                })
                .collect::<anyhow::Result<_>>()
                .map(Self::Balanced),
        }
    }
}

/// A channel that balances calls over the instances behind `names`, each
/// dialled with the settings of `endpoint`. Must run inside a Tokio
/// runtime: the balancer and its watcher are tasks.
pub fn channel(
    names: Vec<String>,
    endpoint: impl Fn(&str) -> anyhow::Result<Endpoint> + Send + 'static,
) -> Channel {
    let (channel, changes) = Channel::balance_channel(names.len().max(16));
    // Literal socket addresses join at once, so that the first calls do not
    // wait for the watcher's first round.
    let mut members = BTreeMap::new();
    for addr in names.iter().filter_map(|n| n.parse::<SocketAddr>().ok()) {
        if let Ok(endpoint) = endpoint(&addr.to_string()) {
            let _ = changes.try_send(Change::Insert(addr.to_string(), endpoint.clone()));
            members.insert(addr.to_string(), endpoint);
        }
    }
    tokio::spawn(watch(names, endpoint, changes, members));
    channel
}

/// The watcher: resolve, check, and move the balance to the healthy set,
/// until the channel is dropped.
async fn watch(
    names: Vec<String>,
    endpoint: impl Fn(&str) -> anyhow::Result<Endpoint>,
    changes: Sender<Change<String, Endpoint>>,
    mut members: BTreeMap<String, Endpoint>,
) {
    // One health client per instance, kept across rounds (lazily connected).
    let mut checkers: BTreeMap<String, HealthClient<Channel>> = BTreeMap::new();
    let mut interval = tokio::time::interval(CHECK_INTERVAL);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while !changes.is_closed() {
        interval.tick().await;
        let resolved = resolve(&names).await;
        if resolved.is_empty() {
            // Nothing resolves (DNS down, no replica yet): keep what we have.
            continue;
        }
        checkers.retain(|addr, _| resolved.contains(addr));
        let mut healthy = BTreeSet::new();
        for addr in &resolved {
            let Ok(endpoint) = endpoint(addr) else {
                continue;
            };
            let checker = checkers
                .entry(addr.clone())
                .or_insert_with(|| HealthClient::new(endpoint.connect_lazy()));
            if serving(checker).await {
                healthy.insert(addr.clone());
            }
        }
        let wanted = if healthy.is_empty() {
            &resolved
        } else {
            &healthy
        };
        for gone in members
            .keys()
            .filter(|addr| !wanted.contains(*addr))
            .cloned()
            .collect::<Vec<_>>()
        {
            tracing::warn!(peer = %gone, "peer left the balance (not serving)");
            members.remove(&gone);
            if changes.send(Change::Remove(gone)).await.is_err() {
                return;
            }
        }
        let joining: Vec<String> = wanted
            .iter()
            .filter(|addr| !members.contains_key(*addr))
            .cloned()
            .collect();
        for addr in joining {
            let Ok(endpoint) = endpoint(&addr) else {
                continue;
            };
            tracing::info!(peer = %addr, "peer joined the balance");
            members.insert(addr.clone(), endpoint.clone());
            if changes.send(Change::Insert(addr, endpoint)).await.is_err() {
                return;
            }
        }
    }
}

/// Every socket address the names resolve to right now, as `ip:port`.
async fn resolve(names: &[String]) -> BTreeSet<String> {
    let mut addrs = BTreeSet::new();
    for name in names {
        match tokio::net::lookup_host(name.as_str()).await {
            Ok(found) => addrs.extend(found.map(|a| a.to_string())),
            Err(error) => tracing::debug!(peer = %name, %error, "peer name does not resolve"),
        }
    }
    addrs
}

/// Whether the instance answers the health check with SERVING in time.
async fn serving(checker: &mut HealthClient<Channel>) -> bool {
    let check = checker.check(HealthCheckRequest {
        service: String::new(),
    });
    matches!(
        tokio::time::timeout(CHECK_TIMEOUT, check).await,
        Ok(Ok(response)) if response.get_ref().status() == ServingStatus::Serving
    )
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use tokio::net::TcpListener;
    use tokio::sync::oneshot;
    use tonic::transport::Server;
    use tonic::transport::server::TcpIncoming;
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_client::HealthClient;

    use super::Targets;
    use crate::connect_lazy;

    /// A server of the standard health service that counts the calls it
    /// gets, until the sender is used or dropped.
    async fn instance() -> (String, Arc<AtomicUsize>, oneshot::Sender<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let calls = Arc::new(AtomicUsize::new(0));
        let counter = calls.clone();
        let (_reporter, health) = tonic_health::server::health_reporter();
        let counted =
            tonic::service::interceptor::InterceptedService::new(health, move |request| {
                counter.fetch_add(1, Ordering::Relaxed);
                Ok(request)
            });
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(
            Server::builder()
                .add_service(counted)
                .serve_with_incoming_shutdown(TcpIncoming::from(listener), async {
                    let _ = stopped.await;
                }),
        );
        (addr, calls, stop)
    }

    async fn check(client: &mut HealthClient<crate::Channel>) -> Result<(), tonic::Status> {
        let request = HealthCheckRequest {
            service: String::new(),
        };
        client.check(request).await.map(|_| ())
    }

    #[tokio::test]
    async fn calls_spread_over_the_instances_and_avoid_one_that_stopped() {
        let (a, a_calls, stop_a) = instance().await;
        let (b, b_calls, _stop_b) = instance().await;
        let channel = connect_lazy(&format!("{a},{b}"), std::time::Duration::from_secs(2)).unwrap();
        let mut client = HealthClient::new(channel);
        for _ in 0..200 {
            check(&mut client).await.unwrap();
        }
        // Each instance also gets about one watcher check a second.
        let (a_seen, b_seen) = (
            a_calls.load(Ordering::Relaxed),
            b_calls.load(Ordering::Relaxed),
        );
        assert!(
            a_seen >= 50 && b_seen >= 50,
            "a got {a_seen} calls, b {b_seen}"
        );

        stop_a.send(()).unwrap();
        // A call that meets the stopped instance fails fast; retried once, it
        // reaches the other one.
        for _ in 0..100 {
            if check(&mut client).await.is_err() {
                check(&mut client)
                    .await
                    .expect("the retry reaches the live instance");
            }
        }
        // Once the watcher has seen it stop, no call fails at all.
        let start = std::time::Instant::now();
        'rounds: loop {
            assert!(
                start.elapsed() < std::time::Duration::from_secs(30),
                "calls still reach the stopped instance"
            );
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            for _ in 0..50 {
                if check(&mut client).await.is_err() {
                    continue 'rounds;
                }
            }
            break;
        }
    }

    #[test]
    fn one_plain_address_is_dialled_directly_and_lists_or_dns_names_are_balanced() {
        assert_eq!(
            Targets::parse("graph:50052").unwrap(),
            Targets::Single("graph:50052".into())
        );
        assert_eq!(
            Targets::parse("http://graph:50052").unwrap(),
            Targets::Single("http://graph:50052".into())
        );
        assert_eq!(
            Targets::parse("dns:///graph:50052").unwrap(),
            Targets::Balanced(vec!["graph:50052".into()])
        );
        assert_eq!(
            Targets::parse("127.0.0.1:1, http://127.0.0.1:2").unwrap(),
            Targets::Balanced(vec!["127.0.0.1:1".into(), "127.0.0.1:2".into()])
        );
        for bad in ["", " , ", "a:1,b", "a:1,:2", "dns:///graph"] {
            assert!(Targets::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }
}
