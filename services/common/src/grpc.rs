//! gRPC plumbing: serving on a listener the caller bound, and dialling a peer.
//!
//! Peers are dialled lazily, so services start in any order and a restarted
//! peer is reconnected transparently; every call carries a deadline, so a slow
//! or dead peer turns into an `Unavailable` error instead of a hung request.

use std::future::Future;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::transport::server::Router;
use tonic::transport::{Channel, Endpoint};

/// How long any one call to a peer may take before it fails.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(3);

/// A channel to `addr` (`host:port` or a full `http://` URI) that connects on
/// first use and fails every call that outlives `deadline`.
pub fn connect_lazy(addr: &str, deadline: Duration) -> anyhow::Result<Channel> {
    let uri = if addr.contains("://") {
        addr.to_owned()
    } else {
        format!("http://{addr}")
    };
    Ok(Endpoint::from_shared(uri)?
        .connect_timeout(Duration::from_secs(1))
        .timeout(deadline)
        .tcp_nodelay(true)
        .connect_lazy())
}

/// Serves `router` on `listener` until `shutdown` resolves, then stops
/// accepting and lets in-flight calls finish.
pub async fn serve(
    router: Router,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    router
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), shutdown)
        .await?;
    Ok(())
}
