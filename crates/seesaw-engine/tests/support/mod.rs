//! Helpers for the config source tests: generated clusters, a node
//! config, a test CA, a small HTTPS config server, and waits with
//! deadlines.

#![allow(dead_code)]

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prost::Message;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use seesaw_config::cluster_text::parse_cluster_text;
use seesaw_config::node_config::NodeConfig;
use seesaw_engine::notifier::{
    ClusterNotification, Notifier, NotifierHandle, NotifierOptions, NotifierStatus, Source,
    StaticResolver,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc::error::TryRecvError;
use tokio::task::JoinHandle;

/// The config servers' name in the tests. It resolves only through the
/// tests' static resolver, never through DNS.
pub const SERVER_NAME: &str = "config.seesaw.test";

/// The cluster name of the tests' seesaw.cfg.
pub const CLUSTER_NAME: &str = "test";

/// How long a test waits for the notifier before it fails.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// Returns cluster.pb text with `vservers` vservers. `weight` is every
/// backend's weight, so that two texts with different weights differ in
/// every vserver. `last_updated` adds metadata.
pub fn cluster_text(vservers: usize, weight: u32, last_updated: Option<i64>) -> String {
    let mut text = String::from(
        "seesaw_vip: < fqdn: \"vip.test.\" ipv4: \"10.0.0.1/16\" status: PRODUCTION >\n\
         node: < fqdn: \"lb1.test.\" ipv4: \"10.0.0.2/16\" status: PRODUCTION >\n\
         node: < fqdn: \"lb2.test.\" ipv4: \"10.0.0.3/16\" status: PRODUCTION >\n",
    );
    for i in 0..vservers {
        let address = Ipv4Addr::new(10, 0, 1 + (i / 250) as u8, 1 + (i % 250) as u8);
        text.push_str(&format!(
            "vserver: <\n  name: \"web{i}.test\"\n  entry_address: < fqdn: \"web{i}.vip.test.\" ipv4: \"{address}/16\" status: PRODUCTION >\n  rp: \"ops@example.com\"\n  vserver_entry: < protocol: TCP port: 80 healthcheck: < type: TCP > >\n  backend: < host: < fqdn: \"backend{i}.test.\" ipv4: \"10.0.200.{}/16\" status: PRODUCTION > weight: {weight} >\n>\n",
            1 + i % 250
        ));
    }
    if let Some(seconds) = last_updated {
        text.push_str(&format!("metadata: < last_updated: {seconds} >\n"));
    }
    text
}

/// Returns the text as a binary `Cluster`, as a config server sends it.
pub fn cluster_binary(text: &str) -> Vec<u8> {
    parse_cluster_text(Path::new("cluster.pb"), text)
        .expect("the test cluster parses")
        .message
        .encode_to_vec()
}

/// Writes `contents` to `path` the way editors save: to a temporary file
/// that is renamed over the old one.
pub fn replace_file(path: &Path, contents: &str) {
    let temporary = path.with_extension("pb.new");
    std::fs::write(&temporary, contents).unwrap();
    std::fs::rename(&temporary, path).unwrap();
}

/// Returns the seesaw.cfg of the tests' node, naming `servers` as its
/// config servers.
pub fn node_config(servers: &[&str]) -> NodeConfig {
    let mut text = format!(
        "[cluster]\nname = {CLUSTER_NAME}\nnode_ipv4 = 10.0.0.2\npeer_ipv4 = 10.0.0.3\nvip_ipv4 = 10.0.0.1\n"
    );
    let keys = ["primary", "secondary", "tertiary"];
    if !servers.is_empty() {
        text.push_str("[config_server]\n");
    }
    for (key, server) in keys.iter().zip(servers) {
        text.push_str(&format!("{key} = {server}\n"));
    }
    let (config, _warnings) =
        NodeConfig::parse("seesaw.cfg", &text).expect("the test seesaw.cfg parses");
    config
}

/// Returns notifier options for a node in `dir`: cluster.pb and the CA
/// bundle there, [`SERVER_NAME`] resolving to loopback, and the config
/// servers on `port`. The file watch is off, so that only the test's own
/// reloads trigger checks.
pub fn options(dir: &Path, port: u16) -> NotifierOptions {
    let mut options = NotifierOptions::new(&node_config(&[SERVER_NAME]), dir.join("cluster.pb"));
    options.ca_cert_file = dir.join("ca.crt");
    options.config_server_port = port;
    options.config_server_timeout = Duration::from_secs(10);
    options.file_poll_interval = None;
    options.resolver =
        Arc::new(StaticResolver::new().with_host(SERVER_NAME, &[IpAddr::V4(Ipv4Addr::LOCALHOST)]));
    options
}

/// Starts a notifier, failing the test when no config loads.
pub async fn start(options: NotifierOptions) -> Notifier {
    match Notifier::start(options).await {
        Ok(notifier) => notifier,
        Err(error) => panic!("the notifier did not start: {error}"),
    }
}

/// Waits for the next notification.
pub async fn next(notifier: &mut Notifier) -> ClusterNotification {
    match tokio::time::timeout(DEADLINE, notifier.notifications.recv()).await {
        Ok(Some(notification)) => notification,
        Ok(None) => panic!("the notifier stopped"),
        Err(_) => panic!(
            "no notification within {DEADLINE:?}: {:?}",
            notifier.handle.status()
        ),
    }
}

/// Asserts that no notification is waiting.
pub fn assert_no_notification(notifier: &mut Notifier) {
    match notifier.notifications.try_recv() {
        Err(TryRecvError::Empty) => {}
        Ok(notification) => panic!(
            "unexpected notification from {} ({})",
            notification.source, notification.source_detail
        ),
        Err(TryRecvError::Disconnected) => panic!("the notifier stopped"),
    }
}

/// Queues a reload and waits until the notifier has finished it, returning
/// the status after it.
pub async fn reload_and_wait(handle: &NotifierHandle) -> NotifierStatus {
    let before = handle.status().attempts;
    handle.reload().expect("no reload is queued");
    wait_for_attempts(handle, before + 1).await
}

/// Waits until the notifier has made `attempts` attempts.
pub async fn wait_for_attempts(handle: &NotifierHandle, attempts: u64) -> NotifierStatus {
    let waited = async {
        loop {
            let status = handle.status();
            if status.attempts >= attempts {
                return status;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    match tokio::time::timeout(DEADLINE, waited).await {
        Ok(status) => status,
        Err(_) => panic!(
            "the notifier made no attempt {attempts} within {DEADLINE:?}: {:?}",
            handle.status()
        ),
    }
}

/// A CA made for one test, and a server certificate it issued.
pub struct TestPki {
    pub ca_pem: String,
    pub server_cert_pem: String,
    pub server_key_pem: String,
}

impl TestPki {
    /// Creates a CA and a certificate for `server_name` issued by it.
    pub fn new(server_name: &str) -> TestPki {
        TestPki::with_ca_name("seesaw test CA", server_name)
    }

    /// Creates a CA with the common name `ca_name`, and a certificate for
    /// `server_name` issued by it.
    pub fn with_ca_name(ca_name: &str, server_name: &str) -> TestPki {
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, ca_name);
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();

        let server_key = KeyPair::generate().unwrap();
        let server_params = CertificateParams::new(vec![server_name.to_string()]).unwrap();
        let server_cert = server_params.signed_by(&server_key, &ca).unwrap();

        TestPki {
            ca_pem: ca.pem(),
            server_cert_pem: server_cert.pem(),
            server_key_pem: server_key.serialize_pem(),
        }
    }

    /// Writes the CA bundle to `path`.
    pub fn write_ca(&self, path: &Path) {
        std::fs::write(path, &self.ca_pem).unwrap();
    }

    /// Writes the server certificate and key into `dir`, returning their
    /// paths.
    pub fn write_server_files(&self, dir: &Path, prefix: &str) -> (PathBuf, PathBuf) {
        let cert = dir.join(format!("{prefix}.crt"));
        let key = dir.join(format!("{prefix}.key"));
        std::fs::write(&cert, &self.server_cert_pem).unwrap();
        std::fs::write(&key, &self.server_key_pem).unwrap();
        (cert, key)
    }
}

/// The reply of the test config server.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub content_type: String,
    pub body: Vec<u8>,
}

impl Reply {
    /// Returns a 200 reply with the config Content-Type and `text` as a binary Cluster.
    pub fn config(text: &str) -> Reply {
        Reply {
            status: 200,
            content_type: "application/x-protobuffer".to_string(),
            body: cluster_binary(text),
        }
    }
}

/// A config server on loopback, in the test process: TLS with a test
/// certificate and one fixed HTTP/1.1 reply per connection.
pub struct TestServer {
    pub port: u16,
    reply: Arc<Mutex<Reply>>,
    /// The request heads received, oldest first.
    pub requests: Arc<Mutex<Vec<String>>>,
    task: JoinHandle<()>,
}

impl TestServer {
    pub async fn start(pki: &TestPki, reply: Reply) -> TestServer {
        let certificates: Vec<CertificateDer<'static>> =
            CertificateDer::pem_slice_iter(pki.server_cert_pem.as_bytes())
                .map(Result::unwrap)
                .collect();
        let key = PrivateKeyDer::from_pem_slice(pki.server_key_pem.as_bytes()).unwrap();
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(certificates, key)
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));

        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let reply = Arc::new(Mutex::new(reply));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let task = tokio::spawn(serve(listener, acceptor, reply.clone(), requests.clone()));
        TestServer {
            port,
            reply,
            requests,
            task,
        }
    }

    pub fn set_reply(&self, reply: Reply) {
        *self.reply.lock().unwrap() = reply;
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(
    listener: TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    reply: Arc<Mutex<Reply>>,
    requests: Arc<Mutex<Vec<String>>>,
) {
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            return;
        };
        let acceptor = acceptor.clone();
        let reply = reply.lock().unwrap().clone();
        let requests = requests.clone();
        tokio::spawn(async move {
            let Ok(mut stream) = acceptor.accept(tcp).await else {
                return;
            };
            let mut head = Vec::new();
            let mut buffer = [0u8; 1024];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buffer).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => head.extend_from_slice(&buffer[..n]),
                }
            }
            requests
                .lock()
                .unwrap()
                .push(String::from_utf8_lossy(&head).into_owned());

            let mut response = format!(
                "HTTP/1.1 {} Test\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                reply.status,
                reply.content_type,
                reply.body.len()
            )
            .into_bytes();
            response.extend_from_slice(&reply.body);
            let _ = stream.write_all(&response).await;
            let _ = stream.shutdown().await;
        });
    }
}

/// Returns the files in `dir/archive`, sorted.
pub fn archived(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = match std::fs::read_dir(dir.join("archive")) {
        Ok(entries) => entries.map(|entry| entry.unwrap().path()).collect(),
        Err(_) => Vec::new(),
    };
    files.sort();
    files
}

/// Returns the source and vserver count of a notification.
pub fn summary(notification: &ClusterNotification) -> (Source, usize) {
    (notification.source, notification.cluster.vservers.len())
}
