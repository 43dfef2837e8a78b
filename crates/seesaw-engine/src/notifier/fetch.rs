//! Fetching the cluster config from the config servers over HTTPS.
//!
//! Each server named in seesaw.cfg is tried in order: primary, secondary,
//! tertiary. A server's name is resolved at fetch time, and its addresses
//! are tried IPv6 first, each family in random order. One request goes to
//! each address, `GET https://<server>:<port>/config/<cluster name>`, and
//! the first reply that is a 200 with Content-Type
//! `application/x-protobuffer` and a body that decodes as a `Cluster` wins.
//! The server's certificate must be issued by the CA bundle of seesaw.cfg,
//! never by the system's roots, and must name the server.

use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1;
use hyper::header::{CONNECTION, CONTENT_TYPE, HOST, USER_AGENT};
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use seesaw_config::cluster_text::decode_cluster_binary;
use seesaw_config::pb;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::source::BoxFuture;

/// The Content-Type a config server must send, spelled as Seesaw spells it.
pub const CONFIG_CONTENT_TYPE: &str = "application/x-protobuffer";

/// Resolves a config server's name to its addresses.
pub trait Resolve: Send + Sync {
    fn lookup<'a>(&'a self, host: &'a str) -> BoxFuture<'a, io::Result<Vec<IpAddr>>>;
}

/// The system resolver (`getaddrinfo`), asked afresh at every fetch.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemResolver;

impl Resolve for SystemResolver {
    fn lookup<'a>(&'a self, host: &'a str) -> BoxFuture<'a, io::Result<Vec<IpAddr>>> {
        Box::pin(async move {
            let addresses = tokio::net::lookup_host((host, 0)).await?;
            Ok(addresses.map(|address| address.ip()).collect())
        })
    }
}

/// A fixed table of names and addresses, so that tests reach a local
/// server by its certificate's name without DNS. A name not in the table
/// fails to resolve.
#[derive(Debug, Clone, Default)]
pub struct StaticResolver {
    hosts: HashMap<String, Vec<IpAddr>>,
}

impl StaticResolver {
    pub fn new() -> Self {
        StaticResolver::default()
    }

    /// Adds `host` with `addresses`, replacing any earlier entry.
    pub fn with_host(mut self, host: &str, addresses: &[IpAddr]) -> Self {
        self.hosts.insert(host.to_string(), addresses.to_vec());
        self
    }
}

impl Resolve for StaticResolver {
    fn lookup<'a>(&'a self, host: &'a str) -> BoxFuture<'a, io::Result<Vec<IpAddr>>> {
        let found = self.hosts.get(host).cloned().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("{host} is not in the static resolver"),
            )
        });
        Box::pin(async move { found })
    }
}

/// Settings of a fetch: the servers, port, timeout, CA bundle and resolver.
#[derive(Clone)]
pub struct FetchSettings {
    /// `[cluster] name` of seesaw.cfg, the last step of the URL path.
    pub cluster_name: String,
    /// Host names in the order they are tried.
    pub servers: Vec<String>,
    pub port: u16,
    /// Deadline of one request to one address, from the TCP connect to
    /// the end of the body.
    pub timeout: Duration,
    /// PEM bundle of the CAs that may issue config server certificates.
    pub ca_cert_file: PathBuf,
    pub resolver: Arc<dyn Resolve>,
}

/// A config fetched from a config server and decoded.
#[derive(Debug, Clone)]
pub struct FetchedConfig {
    pub message: pb::Cluster,
    /// `<url> (<address>)`, naming the reply in logs and messages.
    pub detail: String,
}

/// A failed fetch: no config server sent a valid config.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    #[error("no config servers: name one in the [config_server] section of seesaw.cfg")]
    NoServers,
    #[error("failed to load certificates from {path:?}: {reason}")]
    CaFile { path: PathBuf, reason: String },
    /// Every server and address failed. Each failure is one line, in order.
    #[error("all config server requests failed: {}", .0.join("; "))]
    AllFailed(Vec<String>),
}

impl FetchError {
    /// Returns the error as lines for `config status`: the summary, then
    /// each server or address that failed.
    pub fn lines(&self) -> Vec<String> {
        match self {
            FetchError::AllFailed(failures) => {
                let mut lines = vec!["all config server requests failed:".to_string()];
                lines.extend(failures.iter().cloned());
                lines
            }
            other => vec![other.to_string()],
        }
    }
}

/// Fetches the cluster config from the first config server that serves
/// a valid one. The CA bundle is read at each call, so a renewed bundle
/// takes effect at the next fetch.
pub async fn fetch_config(settings: &FetchSettings) -> Result<FetchedConfig, FetchError> {
    if settings.servers.is_empty() {
        return Err(FetchError::NoServers);
    }
    let tls = Arc::new(client_config(&settings.ca_cert_file)?);

    let mut failures = Vec::new();
    for server in &settings.servers {
        let addresses = match settings.resolver.lookup(server).await {
            Ok(addresses) if addresses.is_empty() => {
                Err(io::Error::new(io::ErrorKind::NotFound, "no addresses"))
            }
            other => other,
        };
        let addresses = match addresses {
            Ok(addresses) => ordered(addresses),
            Err(error) => {
                let failure = format!("DNS lookup failed for config server {server:?}: {error}");
                tracing::error!("{failure}");
                failures.push(failure);
                continue;
            }
        };

        let url = config_url(server, settings.port, &settings.cluster_name);
        for address in addresses {
            let detail = format!("{url} ({address})");
            match fetch_from(settings, &tls, server, address).await {
                Ok(message) => {
                    tracing::info!("successful fetch from config server {detail}");
                    return Ok(FetchedConfig { message, detail });
                }
                Err(error) => {
                    let failure = format!("fetch failed from {detail}: {error}");
                    tracing::warn!("{failure}");
                    failures.push(failure);
                }
            }
        }
    }
    Err(FetchError::AllFailed(failures))
}

/// Returns `https://<server>:<port>/config/<cluster>`, with an IPv6
/// address in brackets.
fn config_url(server: &str, port: u16, cluster: &str) -> String {
    format!("https://{}/config/{cluster}", authority(server, port))
}

fn authority(server: &str, port: u16) -> String {
    if server.parse::<std::net::Ipv6Addr>().is_ok() {
        format!("[{server}]:{port}")
    } else {
        format!("{server}:{port}")
    }
}

/// Orders addresses as Seesaw does: IPv6 before IPv4, each family shuffled
/// so that load spreads over a server's addresses.
fn ordered(addresses: Vec<IpAddr>) -> Vec<IpAddr> {
    let (mut ipv6, mut ipv4): (Vec<IpAddr>, Vec<IpAddr>) =
        addresses.into_iter().partition(IpAddr::is_ipv6);
    shuffle(&mut ipv6);
    shuffle(&mut ipv4);
    ipv6.extend(ipv4);
    ipv6
}

/// Shuffles with Fisher-Yates. The randomness comes from the standard
/// library's randomly keyed hasher, which is enough to spread load.
fn shuffle(items: &mut [IpAddr]) {
    let state = RandomState::new();
    for i in (1..items.len()).rev() {
        let j = (state.hash_one(i) % (i as u64 + 1)) as usize;
        items.swap(i, j);
    }
}

/// Builds the TLS client that trusts only the CAs in `ca_cert_file`.
fn client_config(ca_cert_file: &Path) -> Result<ClientConfig, FetchError> {
    let failed = |reason: String| FetchError::CaFile {
        path: ca_cert_file.to_path_buf(),
        reason,
    };
    let pem = std::fs::read(ca_cert_file).map_err(|error| failed(error.to_string()))?;
    let mut roots = RootCertStore::empty();
    let certificates = CertificateDer::pem_slice_iter(&pem).filter_map(Result::ok);
    let (added, ignored) = roots.add_parsable_certificates(certificates);
    if added == 0 {
        return Err(failed(format!(
            "no usable PEM certificate ({ignored} unparsable); the file must hold the CA that issued the config servers' certificates"
        )));
    }

    let mut config = ClientConfig::builder_with_provider(ring_provider())
        .with_safe_default_protocol_versions()
        .map_err(|error| failed(error.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// Returns the ring crypto provider, as the health checker uses.
///
/// rustls 0.23.48 deprecates it because ring has no post-quantum key
/// exchange. The alternative, aws-lc-rs, needs a C and assembler build
/// that this project avoids.
#[allow(deprecated)]
fn ring_provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Fetches and decodes the config from one address of `server`, within
/// the timeout.
async fn fetch_from(
    settings: &FetchSettings,
    tls: &Arc<ClientConfig>,
    server: &str,
    address: IpAddr,
) -> Result<pb::Cluster, String> {
    let exchange = request_config(settings, tls, server, address);
    let body = match tokio::time::timeout(settings.timeout, exchange).await {
        Ok(result) => result?,
        Err(_) => return Err(format!("timed out after {:?}", settings.timeout)),
    };

    // The caller names the URL and address, so the findings go without them.
    decode_cluster_binary(Path::new(""), &body).map_err(|rejected| {
        let findings: Vec<&str> = rejected.0.iter().map(|d| d.message.as_str()).collect();
        format!("invalid configuration: {}", findings.join("; "))
    })
}

/// Connects, sends the request and returns the body of a valid reply.
async fn request_config(
    settings: &FetchSettings,
    tls: &Arc<ClientConfig>,
    server: &str,
    address: IpAddr,
) -> Result<Vec<u8>, String> {
    let server_name = ServerName::try_from(server.to_string())
        .map_err(|error| format!("invalid server name {server:?}: {error}"))?;
    let tcp = TcpStream::connect(SocketAddr::new(address, settings.port))
        .await
        .map_err(|error| format!("failed to connect: {error}"))?;
    let stream = TlsConnector::from(tls.clone())
        .connect(server_name, tcp)
        .await
        .map_err(|error| format!("TLS handshake failed: {error}"))?;

    let (mut sender, connection) = http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|error| format!("HTTP handshake failed: {}", chain(&error)))?;
    let request = Request::get(format!("/config/{}", settings.cluster_name))
        .header(HOST, authority(server, settings.port))
        .header(CONNECTION, "close")
        .header(USER_AGENT, "seesaw_engine")
        .body(Empty::<Bytes>::new())
        .map_err(|error| format!("invalid request: {error}"))?;

    let exchange = async {
        let response = sender
            .send_request(request)
            .await
            .map_err(|error| format!("request failed: {}", chain(&error)))?;
        check_response(response.status(), response.headers())?;
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|error| format!("failed to read the body: {}", chain(&error)))?;
        Ok(body.to_bytes().to_vec())
    };

    // The connection task drives the socket. With `Connection: close` it
    // ends when the reply is complete, and its end is only an error when
    // the exchange has not finished.
    tokio::pin!(exchange, connection);
    let mut connection_done = false;
    loop {
        tokio::select! {
            biased;
            result = &mut exchange => return result,
            ended = &mut connection, if !connection_done => {
                ended.map_err(|error| format!("connection failed: {}", chain(&error)))?;
                connection_done = true;
            }
        }
    }
}

/// Accepts only a 200 reply with the config Content-Type. Redirects are
/// not followed.
fn check_response(status: StatusCode, headers: &hyper::HeaderMap) -> Result<(), String> {
    if status.is_redirection() {
        return Err(format!(
            "received HTTP status {status}: redirects are not followed; point seesaw.cfg at the server that serves the config"
        ));
    }
    if status != StatusCode::OK {
        return Err(format!("received HTTP status {status}"));
    }
    let content_type = headers
        .get(CONTENT_TYPE)
        .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned())
        .unwrap_or_default();
    if content_type != CONFIG_CONTENT_TYPE {
        return Err(format!(
            "unexpected Content-Type: {content_type:?}, expected {CONFIG_CONTENT_TYPE:?}"
        ));
    }
    Ok(())
}

/// Formats an error with its causes, which hyper keeps out of its own
/// message.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn ipv6_addresses_come_first() {
        let addresses = vec![
            ip("192.0.2.1"),
            ip("2001:db8::1"),
            ip("192.0.2.2"),
            ip("2001:db8::2"),
        ];
        let ordered = ordered(addresses);
        assert!(ordered[..2].iter().all(IpAddr::is_ipv6), "{ordered:?}");
        assert!(ordered[2..].iter().all(IpAddr::is_ipv4), "{ordered:?}");
    }

    #[test]
    fn shuffle_keeps_every_address() {
        let mut addresses: Vec<IpAddr> = (1..=20).map(|i| ip(&format!("192.0.2.{i}"))).collect();
        let before = addresses.clone();
        shuffle(&mut addresses);
        addresses.sort();
        assert_eq!(addresses, before);
    }

    #[test]
    fn url_brackets_ipv6_literal() {
        assert_eq!(
            config_url("config.example.com", 10255, "au-syd"),
            "https://config.example.com:10255/config/au-syd"
        );
        assert_eq!(
            config_url("2001:db8::1", 10255, "au-syd"),
            "https://[2001:db8::1]:10255/config/au-syd"
        );
    }

    #[test]
    fn reply_must_be_200_with_protobuf_type() {
        let mut headers = hyper::HeaderMap::new();
        headers.insert(CONTENT_TYPE, CONFIG_CONTENT_TYPE.parse().unwrap());
        assert_eq!(check_response(StatusCode::OK, &headers), Ok(()));

        let not_found = check_response(StatusCode::NOT_FOUND, &headers).unwrap_err();
        assert_eq!(not_found, "received HTTP status 404 Not Found");

        let moved = check_response(StatusCode::MOVED_PERMANENTLY, &headers).unwrap_err();
        assert!(moved.contains("redirects are not followed"), "{moved}");

        headers.insert(CONTENT_TYPE, "application/octet-stream".parse().unwrap());
        let wrong_type = check_response(StatusCode::OK, &headers).unwrap_err();
        assert_eq!(
            wrong_type,
            "unexpected Content-Type: \"application/octet-stream\", expected \"application/x-protobuffer\""
        );

        headers.remove(CONTENT_TYPE);
        let missing_type = check_response(StatusCode::OK, &headers).unwrap_err();
        assert!(
            missing_type.starts_with("unexpected Content-Type: \"\""),
            "{missing_type}"
        );
    }

    #[tokio::test]
    async fn no_servers_fails_before_io() {
        let settings = FetchSettings {
            cluster_name: "test".to_string(),
            servers: Vec::new(),
            port: 10255,
            timeout: Duration::from_secs(1),
            ca_cert_file: PathBuf::from("/nonexistent/ca.crt"),
            resolver: Arc::new(StaticResolver::new()),
        };
        assert_eq!(
            fetch_config(&settings).await.unwrap_err(),
            FetchError::NoServers
        );
    }

    #[tokio::test]
    async fn missing_ca_file_fails_before_io() {
        let settings = FetchSettings {
            cluster_name: "test".to_string(),
            servers: vec!["config.test".to_string()],
            port: 10255,
            timeout: Duration::from_secs(1),
            ca_cert_file: PathBuf::from("/nonexistent/ca.crt"),
            resolver: Arc::new(StaticResolver::new()),
        };
        let error = fetch_config(&settings).await.unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("failed to load certificates from \"/nonexistent/ca.crt\": "),
            "{error}"
        );
    }

    #[tokio::test]
    async fn unresolvable_server_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.crt");
        let certified = rcgen::generate_simple_self_signed(vec!["ca.test".to_string()]).unwrap();
        std::fs::write(&ca, certified.cert.pem()).unwrap();
        let settings = FetchSettings {
            cluster_name: "test".to_string(),
            servers: vec!["primary.test".to_string(), "secondary.test".to_string()],
            port: 10255,
            timeout: Duration::from_secs(1),
            ca_cert_file: ca,
            resolver: Arc::new(StaticResolver::new()),
        };
        let error = fetch_config(&settings).await.unwrap_err();
        assert_eq!(
            error.lines(),
            vec![
                "all config server requests failed:".to_string(),
                "DNS lookup failed for config server \"primary.test\": primary.test is not in the static resolver".to_string(),
                "DNS lookup failed for config server \"secondary.test\": secondary.test is not in the static resolver".to_string(),
            ]
        );
    }
}
