//! A Redis Cluster connection that replaces itself when it is wedged.
//!
//! redis 1.8's cluster connection is one background driver behind a queue;
//! after a master dies under concurrent load that driver can deadlock (a
//! node repair queued for the connection map's lock is not polled while a
//! slot refresh waits for that same lock), and every command sent to it
//! then fails on its response timeout, for good, though the cluster has
//! long failed over. Nothing in the connection's answers tells a deadlock
//! from a master that is simply down, so the rule is about time: a failover
//! takes the cluster a few seconds (`cluster-node-timeout` plus an
//! election), and a connection on which *every* command has failed on the
//! transport for [`WEDGED_AFTER`] is replaced by a fresh one from the same
//! client, in the background. One answer (even an error the server sent)
//! proves the driver alive and resets the clock.
//!
//! Why a replacement and not a fix: the deadlock is inside the `redis`
//! crate; a fresh connection learns the slot map anew and works at once.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use redis::aio::ConnectionLike;
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisError, RedisFuture, RedisResult, Value};

/// How long every command must have failed on the transport before the
/// connection counts as wedged: well past a failover's few seconds, short
/// enough that a wedged service is back within a retry or two of its
/// callers.
pub const WEDGED_AFTER: Duration = Duration::from_secs(10);
/// A replacement that does not connect within this is abandoned; the next
/// failure tries again.
const RECONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The cluster connection and what replaces it. Cloning is cheap: clones
/// share the connection, its health and its replacement.
#[derive(Clone)]
pub struct Healing(Arc<Shared>);

struct Shared {
    /// Makes the replacements, with the settings of the first connection.
    client: ClusterClient,
    /// The connection commands go to now; a replacement swaps it.
    current: RwLock<ClusterConnection>,
    /// Since when every command has failed on the transport (None while
    /// commands are answered).
    failing_since: Mutex<Option<Instant>>,
    /// A replacement is being connected: one at a time.
    replacing: AtomicBool,
}

impl Healing {
    pub fn new(client: ClusterClient, connection: ClusterConnection) -> Self {
        Self(Arc::new(Shared {
            client,
            current: RwLock::new(connection),
            failing_since: Mutex::new(None),
            replacing: AtomicBool::new(false),
        }))
    }

    fn connection(&self) -> ClusterConnection {
        self.0
            .current
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Notes how a command went; replaces the connection once it is wedged.
    fn observe<T>(&self, result: &RedisResult<T>) {
        let mut since = self
            .0
            .failing_since
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        match result {
            Err(error) if transport(error) => {
                let first = *since.get_or_insert_with(Instant::now);
                if first.elapsed() >= WEDGED_AFTER {
                    *since = None;
                    drop(since);
                    self.replace(first.elapsed());
                }
            }
            _ => *since = None,
        }
    }

    /// Connects a fresh connection in the background and swaps it in.
    fn replace(&self, failing_for: Duration) {
        if self.0.replacing.swap(true, Ordering::AcqRel) {
            return;
        }
        tracing::warn!(
            failing_for_s = failing_for.as_secs(),
            "redis cluster connection failing every command; replacing it"
        );
        let shared = self.0.clone();
        tokio::spawn(async move {
            let fresh =
                tokio::time::timeout(RECONNECT_TIMEOUT, shared.client.get_async_connection()).await;
            match fresh {
                Ok(Ok(connection)) => {
                    *shared
                        .current
                        .write()
                        .unwrap_or_else(|poisoned| poisoned.into_inner()) = connection;
                    tracing::info!("redis cluster connection replaced");
                }
                Ok(Err(error)) => tracing::warn!(%error, "redis cluster reconnect failed"),
                Err(_) => tracing::warn!("redis cluster reconnect timed out"),
            }
            shared.replacing.store(false, Ordering::Release);
        });
    }
}

/// A failure of the way to the server (timed out, refused, reset), not an
/// answer from it.
fn transport(error: &RedisError) -> bool {
    error.is_timeout() || error.is_io_error() || error.is_connection_dropped()
}

impl ConnectionLike for Healing {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        Box::pin(async move {
            let result = self.connection().req_packed_command(cmd).await;
            self.observe(&result);
            result
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        Box::pin(async move {
            let result = self
                .connection()
                .req_packed_commands(pipeline, offset, count)
                .await;
            self.observe(&result);
            result
        })
    }

    fn get_db(&self) -> i64 {
        self.connection().get_db()
    }
}
