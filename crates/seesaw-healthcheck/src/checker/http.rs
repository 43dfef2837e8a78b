//! HTTP and HTTPS requests.

use std::fmt;
use std::net::IpAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1;
use hyper::{Method, Request, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::TlsConnector;

use super::{CheckContext, CheckResult, Outcome, quote};
use crate::dial;
use crate::target::Target;

/// How much of a response body is searched for the expected text.
const MAX_BODY: usize = 64 * 1024;

/// An HTTP or HTTPS check.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct HttpChecker {
    pub target: Target,
    /// Request method, such as `GET` or `HEAD`.
    pub method: String,
    /// A path (`/healthz`) or an absolute URL. An absolute URL names the Host
    /// header and, with `proxy`, the request line; the connection always
    /// goes to the target.
    pub request: String,
    /// Text the first 64 KiB of the body must contain; empty accepts any body.
    pub response: String,
    /// Expected status code; 0 accepts any status.
    pub response_code: u16,
    /// Send the request in absolute form, as to a forward proxy.
    pub proxy: bool,
    /// Use HTTPS.
    pub secure: bool,
    /// Verify the server's certificate against the request's host.
    pub tls_verify: bool,
}

/// The failed step of an exchange and its error.
struct ExchangeError {
    step: &'static str,
    error: hyper::Error,
}

impl HttpChecker {
    pub(super) async fn check(&self, context: &CheckContext) -> CheckResult {
        let outcome = Outcome::start();
        let message = format!("HTTP {} to {}", self.method, self.target.socket_addr());

        let (request, host) = match self.build_request() {
            Ok(built) => built,
            Err(error) => return outcome.error(format!("{message}; invalid request"), error),
        };

        let stream = match dial::connect_tcp(&self.target).await {
            Ok(stream) => stream,
            Err(error) => return outcome.error(format!("{message}; failed to connect"), error),
        };
        let exchanged = if self.secure {
            let connector = TlsConnector::from(context.tls.config(self.tls_verify));
            match connector.connect(server_name(&host), stream).await {
                Ok(stream) => exchange(stream, request).await,
                Err(error) => {
                    return outcome.error(format!("{message}; TLS handshake failed"), error);
                }
            }
        } else {
            exchange(stream, request).await
        };

        let (status, body) = match exchanged {
            Ok(response) => response,
            Err(failure) => {
                return outcome.error(format!("{message}; {}", failure.step), failure.error);
            }
        };
        let message = format!("{message}; got {}", status_text(status));
        if self.response_code != 0 && status.as_u16() != self.response_code {
            return outcome.failure(message);
        }
        if !contains(&body, self.response.as_bytes()) {
            let excerpt = &body[..body.len().min(self.response.len().max(64))];
            return outcome.failure(format!(
                "{message}; unexpected response - {}",
                quote(excerpt)
            ));
        }
        outcome.success(message)
    }

    /// Builds the request and returns it with the authority it names.
    fn build_request(&self) -> Result<(Request<Empty<Bytes>>, String), String> {
        let uri: Uri = self
            .request
            .parse()
            .map_err(|error| format!("{:?} is not a valid URL or path: {error}", self.request))?;
        let authority = match uri.authority() {
            Some(authority) => authority.to_string(),
            None => self.target.socket_addr().to_string(),
        };
        let path = uri.path_and_query().map_or("/", |path| path.as_str());
        let scheme = if self.secure { "https" } else { "http" };

        let request_target = if self.proxy {
            format!("{scheme}://{authority}{path}")
        } else {
            path.to_string()
        };
        let method = Method::from_bytes(self.method.as_bytes())
            .map_err(|_| format!("{:?} is not a valid HTTP method", self.method))?;
        let request = Request::builder()
            .method(method)
            .uri(request_target)
            .header(hyper::header::HOST, &authority)
            .header(hyper::header::USER_AGENT, "seesaw_healthcheck")
            .body(Empty::new())
            .map_err(|error| error.to_string())?;
        Ok((request, authority))
    }
}

/// Sends `request` on `stream` and reads the status and up to [`MAX_BODY`]
/// bytes of the body.
async fn exchange<S>(
    stream: S,
    request: Request<Empty<Bytes>>,
) -> Result<(StatusCode, Vec<u8>), ExchangeError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let failed = |step| move |error| ExchangeError { step, error };
    let (mut sender, connection) = http1::handshake(TokioIo::new(stream))
        .await
        .map_err(failed("failed to send request"))?;

    let response = async {
        let response = sender
            .send_request(request)
            .await
            .map_err(failed("failed to send request"))?;
        let status = response.status();
        let mut body = response.into_body();
        let mut collected = Vec::new();
        while collected.len() < MAX_BODY {
            let Some(frame) = body.frame().await else {
                break;
            };
            let frame = frame.map_err(failed("failed to read HTTP response"))?;
            if let Ok(data) = frame.into_data() {
                collected.extend_from_slice(&data);
            }
        }
        collected.truncate(MAX_BODY);
        Ok((status, collected))
    };

    // The connection is driven here rather than in a spawned task, so a
    // timed-out check leaves nothing running.
    tokio::pin!(response, connection);
    tokio::select! {
        result = &mut response => result,
        ended = &mut connection => match ended {
            Err(error) => Err(ExchangeError { step: "failed to read HTTP response", error }),
            Ok(()) => response.await,
        },
    }
}

/// Returns the TLS server name for an authority `host[:port]`: an IP address
/// (no SNI) or a DNS name.
fn server_name(authority: &str) -> ServerName<'static> {
    let host = match authority.rsplit_once(':') {
        Some((host, port)) if port.bytes().all(|byte| byte.is_ascii_digit()) => host,
        _ => authority,
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = host.parse::<IpAddr>() {
        return ServerName::IpAddress(ip.into());
    }
    match ServerName::try_from(host.to_string()) {
        Ok(name) => name,
        // An invalid name fails verification, which reports it.
        Err(_) => ServerName::IpAddress(IpAddr::from([0, 0, 0, 0]).into()),
    }
}

/// Formats a status as `200 OK`.
fn status_text(status: StatusCode) -> String {
    match status.canonical_reason() {
        Some(reason) => format!("{} {reason}", status.as_u16()),
        None => status.as_u16().to_string(),
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty()
        || haystack
            .windows(needle.len())
            .any(|window| window == needle)
}

/// Formats as `HTTP <METHOD> <request> [code <n>; proxy; secure; verify]
/// <target>`, listing only the options that are set.
impl fmt::Display for HttpChecker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "HTTP {} {} [code {}",
            self.method, self.request, self.response_code
        )?;
        if self.proxy {
            f.write_str("; proxy")?;
        }
        if self.secure {
            f.write_str("; secure")?;
            if self.tls_verify {
                f.write_str("; verify")?;
            }
        }
        write!(f, "] {}", self.target)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_name_of_ip_authority() {
        assert!(matches!(
            server_name("192.0.2.1:443"),
            ServerName::IpAddress(_)
        ));
        assert!(matches!(
            server_name("[2001:db8::1]:443"),
            ServerName::IpAddress(_)
        ));
    }

    #[test]
    fn server_name_of_dns_authority() {
        let name = server_name("www.example.com:8443");
        assert_eq!(name.to_str(), "www.example.com");
    }

    #[test]
    fn contains_finds_substring() {
        assert!(contains(b"status: ok\n", b"ok"));
        assert!(contains(b"anything", b""));
        assert!(!contains(b"o", b"ok"));
    }
}
