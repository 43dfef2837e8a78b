//! The connections of peer sync. The server accepts a connection only from
//! the peer's addresses and, with TLS, only with a client certificate that
//! chains to the CA and names the address it comes from. The client
//! connects from this node's address, which is what the peer accepts.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ServerConfig};
use seesaw_ipc::sync_proto::peer_sync_client::PeerSyncClient;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::{TlsAcceptor, TlsConnector};
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::server::{Connected, TcpConnectInfo};
use tonic::transport::{Channel, Endpoint, Uri};

use super::tls::names_address;

/// How long a TLS handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long HTTP/2 waits for the peer to acknowledge a keepalive ping
/// before it drops the connection.
pub const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(20);

/// A byte stream, plain TCP or TLS over it.
trait Io: AsyncRead + AsyncWrite + Send + Unpin {}

impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

/// An accepted connection from the peer.
pub struct PeerStream {
    io: Box<dyn Io>,
    info: TcpConnectInfo,
}

impl Connected for PeerStream {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> TcpConnectInfo {
        self.info.clone()
    }
}

impl AsyncRead for PeerStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for PeerStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// Logs at most one line per interval and counts the lines it held back,
/// so that a port scan or a peer that is down does not flood the log.
pub struct Throttle {
    interval: Duration,
    state: Mutex<(Option<Instant>, u64)>,
}

impl Throttle {
    pub fn new(interval: Duration) -> Self {
        Throttle {
            interval,
            state: Mutex::new((None, 0)),
        }
    }

    /// Returns `Some(held back)` when a line may be logged now, with the
    /// number of lines held back since the last one.
    pub fn allow(&self) -> Option<u64> {
        self.allow_at(Instant::now())
    }

    fn allow_at(&self, now: Instant) -> Option<u64> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let (last, held_back) = &mut *state;
        if last.is_some_and(|last| now.duration_since(last) < self.interval) {
            *held_back += 1;
            return None;
        }
        *last = Some(now);
        Some(std::mem::take(held_back))
    }

    /// Forgets the last line, so that the next one is logged at once.
    pub fn reset(&self) {
        *self.state.lock().unwrap_or_else(|e| e.into_inner()) = (None, 0);
    }
}

/// Decides which connections the server takes.
pub struct Gate {
    /// The peer's addresses. Connections from anywhere else are closed.
    pub allowed: Vec<IpAddr>,
    pub tls: Option<Arc<ServerConfig>>,
    pub rejections: Throttle,
}

impl Gate {
    /// Checks the connection's address and, with TLS, runs the handshake
    /// and checks that the client's certificate names that address.
    async fn admit(&self, stream: TcpStream, remote: SocketAddr) -> Result<PeerStream, String> {
        let remote_ip = canonical(remote.ip());
        if !self.allowed.contains(&remote_ip) {
            return Err(format!(
                "{remote_ip} is not the peer (peer_ipv4 allows {})",
                list(&self.allowed)
            ));
        }
        let info = TcpConnectInfo {
            local_addr: stream.local_addr().ok(),
            remote_addr: Some(remote),
        };
        let _ = stream.set_nodelay(true);
        let Some(config) = &self.tls else {
            return Ok(PeerStream {
                io: Box::new(stream),
                info,
            });
        };

        let handshake = TlsAcceptor::from(config.clone()).accept(stream);
        let stream = tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake)
            .await
            .map_err(|_| format!("the TLS handshake timed out after {HANDSHAKE_TIMEOUT:?}"))?
            .map_err(|error| format!("the TLS handshake failed: {error}"))?;
        let certificate = stream
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|chain| chain.first())
            .ok_or("the client sent no certificate")?;
        names_address(certificate, remote_ip)?;
        Ok(PeerStream {
            io: Box::new(stream),
            info,
        })
    }
}

/// Accepts connections on `listener` until the returned stream is dropped.
/// Each connection is checked in its own task, so a slow handshake holds
/// up no other; a rejected one is closed and logged.
pub fn incoming(
    listener: TcpListener,
    gate: Arc<Gate>,
) -> ReceiverStream<Result<PeerStream, io::Error>> {
    let (sender, receiver) = mpsc::channel(16);
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                accepted = listener.accept() => accepted,
                () = sender.closed() => return,
            };
            let (stream, remote) = match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::warn!("peer sync: accepting a connection failed: {error}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let gate = gate.clone();
            let sender = sender.clone();
            tokio::spawn(async move {
                match gate.admit(stream, remote).await {
                    Ok(stream) => {
                        tracing::info!("peer sync: connection from {remote}");
                        let _ = sender.send(Ok(stream)).await;
                    }
                    Err(error) => {
                        if let Some(held_back) = gate.rejections.allow() {
                            tracing::warn!(
                                "peer sync: rejected the connection from {remote}: {error}{}",
                                held_back_note(held_back)
                            );
                        }
                    }
                }
            });
        }
    });
    ReceiverStream::new(receiver)
}

/// The addresses and TLS settings the client connects to the peer with.
#[derive(Clone)]
pub struct Dialer {
    /// This node's address, which connections come from.
    pub local: IpAddr,
    pub peer: SocketAddr,
    pub tls: Option<Arc<ClientConfig>>,
    pub connect_timeout: Duration,
    /// Time between HTTP/2 keepalive pings.
    pub keepalive: Duration,
}

impl Dialer {
    /// Connects to the peer's sync server.
    pub async fn connect(&self) -> Result<PeerSyncClient<Channel>, String> {
        let endpoint = Endpoint::from_shared(format!("http://{}", self.peer))
            .map_err(|error| format!("invalid peer address {}: {error}", self.peer))?
            .connect_timeout(self.connect_timeout)
            .http2_keep_alive_interval(self.keepalive)
            .keep_alive_timeout(KEEPALIVE_TIMEOUT)
            .keep_alive_while_idle(true);
        let dialer = self.clone();
        let connector = tower::service_fn(move |_: Uri| {
            let dialer = dialer.clone();
            async move { dialer.open().await.map(TokioIo::new) }
        });
        let channel = endpoint
            .connect_with_connector(connector)
            .await
            .map_err(|error| describe_error(&error))?;
        Ok(PeerSyncClient::new(channel))
    }

    /// Opens one connection from the local address, with TLS when set.
    async fn open(&self) -> io::Result<Box<dyn Io>> {
        let socket = match self.peer {
            SocketAddr::V4(_) => TcpSocket::new_v4()?,
            SocketAddr::V6(_) => TcpSocket::new_v6()?,
        };
        socket
            .bind(SocketAddr::new(self.local, 0))
            .map_err(|error| {
                io::Error::new(
                    error.kind(),
                    format!("failed to bind the local address {}: {error}", self.local),
                )
            })?;
        let stream = tokio::time::timeout(self.connect_timeout, socket.connect(self.peer))
            .await
            .map_err(|_| {
                io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("connecting timed out after {:?}", self.connect_timeout),
                )
            })??;
        stream.set_nodelay(true)?;
        let Some(config) = &self.tls else {
            return Ok(Box::new(stream));
        };

        let name = ServerName::IpAddress(self.peer.ip().into());
        let handshake = TlsConnector::from(config.clone()).connect(name, stream);
        let stream = tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake)
            .await
            .map_err(|_| {
                io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("the TLS handshake timed out after {HANDSHAKE_TIMEOUT:?}"),
                )
            })??;
        Ok(Box::new(stream))
    }
}

/// Describes a transport error with its causes, which tonic keeps out of
/// its own message.
pub fn describe_error(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// Returns the address an IPv4 peer has when it reaches an IPv6 socket.
fn canonical(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(address, IpAddr::V4),
        IpAddr::V4(_) => address,
    }
}

fn list(addresses: &[IpAddr]) -> String {
    if addresses.is_empty() {
        return "no address".to_string();
    }
    addresses
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(" and ")
}

/// Returns the suffix of a throttled log line.
pub fn held_back_note(held_back: u64) -> String {
    if held_back == 0 {
        String::new()
    } else {
        format!(" ({held_back} similar lines held back)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttle_allows_one_line_per_interval() {
        let throttle = Throttle::new(Duration::from_secs(3600));
        assert_eq!(throttle.allow(), Some(0));
        assert_eq!(throttle.allow(), None);
        assert_eq!(throttle.allow(), None);
        throttle.reset();
        assert_eq!(throttle.allow(), Some(0));
    }

    #[test]
    fn throttle_counts_held_back_lines() {
        let throttle = Throttle::new(Duration::from_secs(60));
        let start = Instant::now();
        assert_eq!(throttle.allow_at(start), Some(0));
        assert_eq!(throttle.allow_at(start + Duration::from_secs(10)), None);
        assert_eq!(throttle.allow_at(start + Duration::from_secs(20)), None);
        assert_eq!(throttle.allow_at(start + Duration::from_secs(61)), Some(2));
        assert_eq!(throttle.allow_at(start + Duration::from_secs(62)), None);
    }

    #[test]
    fn mapped_ipv4_is_canonical() {
        let mapped: IpAddr = "::ffff:192.0.2.3".parse().unwrap();
        assert_eq!(canonical(mapped), "192.0.2.3".parse::<IpAddr>().unwrap());
        let v6: IpAddr = "2001:db8::3".parse().unwrap();
        assert_eq!(canonical(v6), v6);
    }

    #[test]
    fn held_back_note_counts() {
        assert_eq!(held_back_note(0), "");
        assert_eq!(held_back_note(4), " (4 similar lines held back)");
    }
}
