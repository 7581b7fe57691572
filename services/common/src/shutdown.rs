//! The one signal every service stops on: Ctrl-C or SIGTERM.
//!
//! Servers take the shutdown as a future argument instead of listening for
//! signals themselves, so tests stop them with a oneshot channel and
//! production with this function, through the same code path.

/// Resolves on the first Ctrl-C or SIGTERM (what Docker and Kubernetes send).
pub async fn signal() {
    let ctrl_c = async {
        tokio::signal::ctrl_c()
            .await
            .expect("install Ctrl-C handler");
    };
    #[cfg(unix)]
    let terminate = async {
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("install SIGTERM handler")
            .recv()
            .await;
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();

    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutdown signal received, draining");
}
