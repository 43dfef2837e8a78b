//! TCP connect, optionally over TLS and with a request and expected reply.

use std::fmt;

use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_rustls::TlsConnector;

use super::{CheckContext, CheckResult, Outcome, quote};
use crate::dial;
use crate::target::Target;

/// A TCP (or TCP_TLS) check.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TcpChecker {
    pub target: Target,
    /// Bytes written after connecting; empty sends nothing.
    pub send: Vec<u8>,
    /// The reply must start with these bytes; empty reads nothing.
    pub receive: Vec<u8>,
    /// Run a TLS handshake after connecting (TCP_TLS).
    pub secure: bool,
    /// Verify the server's certificate against the target's IP address.
    pub tls_verify: bool,
}

impl TcpChecker {
    pub(super) async fn check(&self, context: &CheckContext) -> CheckResult {
        let outcome = Outcome::start();
        let message = format!("TCP connect to {}", self.target.socket_addr());

        let stream = match dial::connect_tcp(&self.target).await {
            Ok(stream) => stream,
            Err(error) => return outcome.error(format!("{message}; failed to connect"), error),
        };
        if !self.secure {
            return self.exchange(stream, &outcome, message).await;
        }

        // The certificate is checked against the IP address, which also
        // means no SNI is sent.
        let connector = TlsConnector::from(context.tls.config(self.tls_verify));
        let server_name = ServerName::IpAddress(self.target.ip.into());
        match connector.connect(server_name, stream).await {
            Ok(stream) => self.exchange(stream, &outcome, message).await,
            Err(error) => outcome.error(format!("{message}; TLS handshake failed"), error),
        }
    }

    /// Sends the request and compares the first `receive.len()` bytes of the
    /// reply.
    async fn exchange<S>(&self, mut stream: S, outcome: &Outcome, message: String) -> CheckResult
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        if !self.send.is_empty() {
            let written = async {
                stream.write_all(&self.send).await?;
                stream.flush().await
            };
            if let Err(error) = written.await {
                return outcome.error(format!("{message}; failed to send request"), error);
            }
        }
        if self.receive.is_empty() {
            return outcome.success(message);
        }

        let mut reply = vec![0; self.receive.len()];
        if let Err(error) = stream.read_exact(&mut reply).await {
            return outcome.error(format!("{message}; failed to read response"), error);
        }
        if reply != self.receive {
            return outcome.failure(format!(
                "{message}; unexpected response - {}",
                quote(&reply)
            ));
        }
        outcome.success(message)
    }
}

/// Formats as `TCP [secure; verify] <target>`.
impl fmt::Display for TcpChecker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TCP ")?;
        if self.secure {
            f.write_str(if self.tls_verify {
                "[secure; verify] "
            } else {
                "[secure] "
            })?;
        }
        write!(f, "{}", self.target)
    }
}
