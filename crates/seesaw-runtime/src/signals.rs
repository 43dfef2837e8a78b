//! Shutdown on the signals the original daemons stop on.

use tokio::signal::unix::{SignalKind, signal};

/// Completes on the first SIGINT, SIGTERM or SIGQUIT and logs which one
/// came. A signal that cannot be handled is logged and left out.
pub async fn shutdown_signal() {
    let mut handlers = Vec::new();
    for (kind, name) in [
        (SignalKind::interrupt(), "SIGINT"),
        (SignalKind::terminate(), "SIGTERM"),
        (SignalKind::quit(), "SIGQUIT"),
    ] {
        match signal(kind) {
            Ok(handler) => handlers.push((handler, name)),
            Err(error) => tracing::warn!("failed to handle {name}: {error}"),
        }
    }
    if handlers.is_empty() {
        return std::future::pending().await;
    }
    let waits = handlers.iter_mut().map(|(handler, name)| {
        Box::pin(async move {
            handler.recv().await;
            *name
        })
    });
    let (name, _, _) = futures_util::future::select_all(waits).await;
    tracing::info!("Received {name}, initiating shutdown...");
}
