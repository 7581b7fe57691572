//! The one signal every service stops on: Ctrl-C or SIGTERM.
//!
//! Servers take the shutdown as a future argument instead of listening for
//! signals themselves, so tests stop them with a oneshot channel and
//! production with this function, through the same code path.
//!
//! # Shutdown
//!
//! SIGTERM is what Docker and Kubernetes send, then SIGKILL once the grace
//! period (10 s and 30 s by default) is over. The handlers are installed when
//! [`signal`] is *called*, in `main`, not when its future is first polled: a
//! service spends seconds starting (creating a keyspace or a topic) before it
//! polls the future, and a SIGTERM meanwhile would otherwise take the default
//! action and kill the process, with a non-zero exit. From then on SIGTERM
//! only resolves the future; each service stops accepting work, finishes what
//! it accepted, and returns from `run`, so `main` exits 0. A second signal
//! changes nothing: a drain that hangs ends with the orchestrator's SIGKILL.

use std::future::Future;

/// Resolves on the first Ctrl-C (SIGINT) or SIGTERM received after the call.
#[cfg(unix)]
pub fn signal() -> impl Future<Output = ()> + Send + 'static {
    use tokio::signal::unix::{SignalKind, signal};

    // Fails only outside a Tokio runtime or if the OS refuses a handler:
    // both are bugs in `main`, not conditions to recover from.
    let mut terminate = signal(SignalKind::terminate()).expect("install the SIGTERM handler");
    let mut interrupt = signal(SignalKind::interrupt()).expect("install the SIGINT handler");
    async move {
        let received = tokio::select! {
            _ = terminate.recv() => "SIGTERM",
            _ = interrupt.recv() => "SIGINT",
        };
        tracing::info!(signal = received, "shutdown signal received, draining");
    }
}

/// Resolves on the first Ctrl-C. Without SIGTERM there is no orchestrator
/// signal to catch early, so the handler is installed on first poll.
#[cfg(not(unix))]
pub fn signal() -> impl Future<Output = ()> + Send + 'static {
    async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for Ctrl-C; stop the process another way");
            std::future::pending::<()>().await;
        }
        tracing::info!(signal = "ctrl-c", "shutdown signal received, draining");
    }
}
