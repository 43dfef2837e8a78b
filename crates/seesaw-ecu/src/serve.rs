//! Listening, the TLS handshake and HTTP/1.1 or HTTP/2 on each
//! connection, with a graceful stop.

use std::future::Future;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tower::ServiceBuilder;

use crate::auth::{Identity, certificate_identity};

/// Maximum time a client may take to finish the TLS handshake, or to send
/// a request's headers.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(30);

/// Maximum time a stop waits for requests in progress.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// The identity that a connection's client certificate gives, added to
/// every request of the connection. `None` without a certificate.
#[derive(Debug, Clone)]
pub struct PeerCertificate(pub Option<Identity>);

/// Binds `address` in Go's `host:port` form, where an empty host (`:10256`)
/// means every address: IPv6 and IPv4 on one dual-stack socket, or IPv4
/// alone where IPv6 is unavailable.
pub async fn bind(address: &str) -> Result<TcpListener, String> {
    let Some(port) = address.strip_prefix(':') else {
        return TcpListener::bind(address)
            .await
            .map_err(|error| format!("failed to listen on {address}: {error}"));
    };
    let port: u16 = port
        .parse()
        .map_err(|_| format!("invalid listen address {address:?}: expected [host]:port"))?;
    match TcpListener::bind((Ipv6Addr::UNSPECIFIED, port)).await {
        Ok(listener) => Ok(listener),
        Err(_) => TcpListener::bind((Ipv4Addr::UNSPECIFIED, port))
            .await
            .map_err(|error| format!("failed to listen on {address}: {error}")),
    }
}

/// Serves `router` on `listener` until `shutdown` completes, then waits
/// up to 10 s for the requests in progress. With `tls`, each connection
/// is a TLS connection whose client certificate, if any, reaches the
/// handlers as a [`PeerCertificate`].
pub async fn serve(
    name: &'static str,
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    router: Router,
    shutdown: impl Future<Output = ()>,
) {
    let acceptor = tls.map(TlsAcceptor::from);
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);

    loop {
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // The process may be out of file descriptors, so wait
                    // for connections to close instead of spinning.
                    tracing::warn!("{name} server: failed to accept a connection: {error}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };

        let router = router.clone();
        let acceptor = acceptor.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let Some(acceptor) = acceptor else {
                let http = http();
                let connection =
                    http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(router));
                if let Err(error) = watcher.watch(connection.into_owned()).await {
                    tracing::debug!("{name} server: connection from {remote} failed: {error}");
                }
                return;
            };

            let stream = match tokio::time::timeout(CLIENT_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(stream)) => stream,
                Ok(Err(error)) => {
                    tracing::info!("{name} server: TLS handshake with {remote} failed: {error}");
                    return;
                }
                Err(_) => {
                    tracing::info!("{name} server: TLS handshake with {remote} timed out");
                    return;
                }
            };
            let peer = PeerCertificate(client_identity(&stream, remote));
            let service = ServiceBuilder::new()
                .map_request(move |mut request: hyper::Request<Incoming>| {
                    request.extensions_mut().insert(peer.clone());
                    request
                })
                .service(router);
            let http = http();
            let connection =
                http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
            if let Err(error) = watcher.watch(connection.into_owned()).await {
                tracing::debug!("{name} server: connection from {remote} failed: {error}");
            }
        });
    }

    drop(listener);
    tracing::info!("{name} server: stopped listening; waiting for requests in progress");
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(DRAIN_TIMEOUT) => {
            tracing::warn!("{name} server: requests still in progress after {DRAIN_TIMEOUT:?}; closing them");
        }
    }
}

/// Returns the HTTP settings of every connection: HTTP/1.1 or HTTP/2, as
/// the client chooses, and a limit on the time to send headers.
fn http() -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(CLIENT_TIMEOUT);
    builder
}

/// Returns the identity of the connection's verified client certificate.
/// A certificate whose subject has no usable name is logged and counts as
/// none.
fn client_identity(
    stream: &tokio_rustls::server::TlsStream<tokio::net::TcpStream>,
    remote: SocketAddr,
) -> Option<Identity> {
    let certificate = stream.get_ref().1.peer_certificates()?.first()?;
    match certificate_identity(certificate) {
        Ok(identity) => Some(identity),
        Err(error) => {
            tracing::warn!("client certificate of {remote} ignored: {error}");
            None
        }
    }
}
