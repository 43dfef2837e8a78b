//! The Seesaw ECU: remote control and monitoring of one Seesaw node.
//!
//! - [`api`]: the control server's HTTPS routes, a read-only JSON API that
//!   mirrors the shell's show commands and the control operations.
//! - [`auth`]: bearer tokens, client certificates and roles.
//! - [`monitor`]: the plain HTTP monitoring server, `/healthz` and
//!   `/metrics`.
//! - [`stats`], [`metrics`]: the periodic collection of the engine's
//!   state and its Prometheus exposition.
//! - [`serve`], [`tls`]: listeners, TLS and graceful stops.

#![forbid(unsafe_code)]

pub mod api;
pub mod auth;
pub mod metrics;
pub mod monitor;
pub mod serve;
pub mod stats;
pub mod tls;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use seesaw_ipc::{ClientOptions, connect_engine_lazy};
use tokio::sync::watch;

use crate::auth::TokenFile;
use crate::metrics::RequestCounts;
use crate::tls::TlsFiles;

/// The ECU's settings.
#[derive(Debug, Clone)]
pub struct EcuConfig {
    /// Listen address of the HTTPS control server, as Go's `host:port`.
    pub control_address: String,
    /// Listen address of the plain HTTP monitoring server.
    pub monitor_address: String,
    pub engine_socket: PathBuf,
    pub tls: TlsFiles,
    /// The bearer tokens; `None` disables them.
    pub token_file: Option<PathBuf>,
    /// The time between collections of the engine's state.
    pub stats_interval: Duration,
    /// The limit on each engine call of a collection.
    pub engine_timeout: Duration,
}

/// Runs both servers and the collector until `shutdown` completes.
///
/// A control server whose certificate or key cannot be loaded is left
/// off and the rest runs, as in the original. An address that cannot be
/// bound is an error.
pub async fn run(config: EcuConfig, shutdown: impl Future<Output = ()>) -> Result<(), String> {
    let (stop, stopped) = watch::channel(false);
    let stop_signal = move || {
        let mut stopped = stopped.clone();
        async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        }
    };

    let tokens = Arc::new(TokenFile::new(config.token_file.clone()));
    let requests = Arc::new(RequestCounts::default());
    let engine = connect_engine_lazy(
        &config.engine_socket,
        &ClientOptions::single_attempt(config.engine_timeout),
    );
    tracing::info!(
        "collecting the engine's state from {} every {:?}",
        config.engine_socket.display(),
        config.stats_interval
    );
    let stats = stats::spawn_collector(engine.clone(), config.stats_interval, stop_signal());

    let mut servers = Vec::new();
    match tls::server_tls(&config.tls) {
        Ok(server_tls) => {
            if config.token_file.is_none() && !server_tls.client_certificates {
                tracing::warn!(
                    "neither a token file nor client certificates are set up, so every control request gets 401"
                );
            }
            let listener = serve::bind(&config.control_address).await?;
            log_listening("control server (HTTPS)", &listener);
            let router = api::router(api::ControlState {
                engine_socket: config.engine_socket.clone(),
                engine,
                tokens,
                requests: Arc::clone(&requests),
            });
            servers.push(tokio::spawn(serve::serve(
                "control",
                listener,
                Some(server_tls.config),
                router,
                stop_signal(),
            )));
        }
        Err(error) => tracing::error!("disabling the ECU control server: {error}"),
    }

    let listener = serve::bind(&config.monitor_address).await?;
    log_listening("monitoring server (HTTP)", &listener);
    let router = monitor::router(monitor::MonitorState { stats, requests });
    servers.push(tokio::spawn(serve::serve(
        "monitoring",
        listener,
        None,
        router,
        stop_signal(),
    )));

    shutdown.await;
    let _ = stop.send(true);
    for server in servers {
        let _ = server.await;
    }
    tracing::info!("shutdown complete");
    Ok(())
}

fn log_listening(name: &str, listener: &tokio::net::TcpListener) {
    match listener.local_addr() {
        Ok(address) => tracing::info!("{name} listening on {address}"),
        Err(error) => tracing::warn!("{name} listening on an unknown address: {error}"),
    }
}
