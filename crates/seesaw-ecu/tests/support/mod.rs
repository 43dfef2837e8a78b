//! What the ECU's tests share: a test CA with server and client
//! certificates, a token file, the `seesaw_ecu` process on loopback ports
//! it picks itself, an HTTP(S) client, and the fake engine's replies.

#![allow(dead_code)]

use std::fs::{self, File};
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use seesaw_ipc::engine_proto::*;
use seesaw_ipc::fake_engine::Reads;

const BINARY: &str = env!("CARGO_BIN_EXE_seesaw_ecu");

/// Generous for a loaded machine; every wait polls and ends early.
pub const WAIT: Duration = Duration::from_secs(30);

pub const ADMIN_TOKEN: &str = "admin-token-0123456789abcdef";
pub const OPERATOR_TOKEN: &str = "operator-token-0123456789abcdef";
pub const READER_TOKEN: &str = "reader-token-0123456789abcdef";

/// A client certificate and its key, in PEM.
pub struct ClientCertificate {
    pub certificate: String,
    pub key: String,
}

/// A CA, the server certificate it signed for 127.0.0.1, and client
/// certificates, written to a directory with the token file.
pub struct Pki {
    pub directory: tempfile::TempDir,
    pub ca_pem: String,
    /// Common name alice, organizational unit admin.
    pub admin: ClientCertificate,
    /// Common name bob, organizational unit reader.
    pub reader: ClientCertificate,
    /// Common name mallory, organizational unit admin, from another CA.
    pub stranger: ClientCertificate,
}

impl Pki {
    pub fn new() -> Pki {
        let directory = tempfile::tempdir().unwrap();
        let ca = certificate_authority("seesaw test CA");
        let other_ca = certificate_authority("another CA");

        let mut server = CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
        server
            .distinguished_name
            .push(DnType::CommonName, "seesaw.example.com");
        server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let server_key = KeyPair::generate().unwrap();
        let server_certificate = server.signed_by(&server_key, &ca).unwrap();

        let ca_pem = AsRef::<rcgen::Certificate>::as_ref(&ca).pem();
        fs::write(directory.path().join("ca.crt"), &ca_pem).unwrap();
        fs::write(
            directory.path().join("seesaw.crt"),
            server_certificate.pem(),
        )
        .unwrap();
        fs::write(
            directory.path().join("seesaw.key"),
            server_key.serialize_pem(),
        )
        .unwrap();
        let tokens = directory.path().join("tokens");
        fs::write(
            &tokens,
            format!(
                "# token role name\n{ADMIN_TOKEN} admin alice\n{OPERATOR_TOKEN} operator carol\n{READER_TOKEN} reader bob\n"
            ),
        )
        .unwrap();
        fs::set_permissions(&tokens, fs::Permissions::from_mode(0o600)).unwrap();

        Pki {
            ca_pem,
            admin: client_certificate(&ca, "alice", "admin"),
            reader: client_certificate(&ca, "bob", "reader"),
            stranger: client_certificate(&other_ca, "mallory", "admin"),
            directory,
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.directory.path().join(name)
    }

    /// Returns a TLS client configuration that trusts the test CA and
    /// presents `certificate`, if any.
    pub fn client_tls(&self, certificate: Option<&ClientCertificate>) -> Arc<rustls::ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        for der in CertificateDer::pem_slice_iter(self.ca_pem.as_bytes()) {
            roots.add(der.unwrap()).unwrap();
        }
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots);
        let config = match certificate {
            Some(client) => {
                let chain = CertificateDer::pem_slice_iter(client.certificate.as_bytes())
                    .collect::<Result<Vec<_>, _>>()
                    .unwrap();
                let key = PrivateKeyDer::from_pem_slice(client.key.as_bytes()).unwrap();
                builder.with_client_auth_cert(chain, key).unwrap()
            }
            None => builder.with_no_client_auth(),
        };
        Arc::new(config)
    }
}

fn certificate_authority(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
}

fn client_certificate(
    ca: &CertifiedIssuer<'static, KeyPair>,
    name: &str,
    unit: &str,
) -> ClientCertificate {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(DnType::CommonName, name);
    params
        .distinguished_name
        .push(DnType::OrganizationalUnitName, unit);
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let key = KeyPair::generate().unwrap();
    let certificate = params.signed_by(&key, ca).unwrap();
    ClientCertificate {
        certificate: certificate.pem(),
        key: key.serialize_pem(),
    }
}

/// A `seesaw_ecu` process, killed when dropped, whose standard error goes
/// to a file.
pub struct Ecu {
    child: Child,
    log: PathBuf,
    /// Where the control server listens; `None` when it is disabled.
    pub control: Option<SocketAddr>,
    pub monitor: SocketAddr,
}

impl Ecu {
    /// Starts the ECU with the test PKI's files, the engine at `socket` and
    /// the `-name=value` flags of `extra`, on loopback ports it picks, and
    /// waits until it listens.
    pub fn start(pki: &Pki, socket: &Path, extra: &[String]) -> Ecu {
        let log = pki.path(&format!("ecu-{}.log", unique()));
        let mut args = vec![
            "-logtostderr".to_string(),
            "-control_address=127.0.0.1:0".to_string(),
            "-monitor_address=127.0.0.1:0".to_string(),
            format!("-engine={}", socket.display()),
            format!("-cert_file={}", pki.path("seesaw.crt").display()),
            format!("-key_file={}", pki.path("seesaw.key").display()),
            format!("-ca_file={}", pki.path("ca.crt").display()),
            format!("-token_file={}", pki.path("tokens").display()),
            "-stats_interval=200ms".to_string(),
            "-engine_timeout=2s".to_string(),
        ];
        // A flag in `extra` replaces the default above.
        for flag in extra {
            let name = flag.split('=').next().unwrap();
            args.retain(|arg| arg.split('=').next() != Some(name));
            args.push(flag.clone());
        }
        let child = Command::new(BINARY)
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut ecu = Ecu {
            child,
            log,
            control: None,
            monitor: "127.0.0.1:0".parse().unwrap(),
        };

        let deadline = Instant::now() + WAIT;
        loop {
            let log = ecu.log();
            let monitor = listening_address(&log, "monitoring server (HTTP) listening on ");
            if let Some(monitor) = monitor {
                ecu.monitor = monitor;
                ecu.control = listening_address(&log, "control server (HTTPS) listening on ");
                return ecu;
            }
            if let Some(status) = ecu.child.try_wait().unwrap() {
                panic!("seesaw_ecu exited with {status}:\n{log}");
            }
            assert!(
                Instant::now() < deadline,
                "seesaw_ecu did not listen:\n{log}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    pub fn control(&self) -> SocketAddr {
        self.control
            .unwrap_or_else(|| panic!("the control server is off:\n{}", self.log()))
    }

    /// Sends SIGTERM with kill(1) and returns the exit status, or panics
    /// when the ECU does not exit in time.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let sent = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success(), "kill -TERM failed");
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "seesaw_ecu ignored SIGTERM:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Ecu {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Returns a number unique within the test process.
fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// Finds the address that follows `marker` in the log.
fn listening_address(log: &str, marker: &str) -> Option<SocketAddr> {
    let start = log.find(marker)? + marker.len();
    let rest = &log[start..];
    let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
    rest[..end].parse().ok()
}

/// An HTTP response: status, content type and body.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub content_type: String,
    pub www_authenticate: Option<String>,
    pub body: String,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|error| panic!("invalid JSON ({error}): {}", self.body))
    }
}

/// An HTTP request with its options.
pub struct Call<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub token: Option<&'a str>,
    pub body: Option<&'a str>,
    /// TLS settings; `None` sends plain HTTP.
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

impl<'a> Call<'a> {
    pub fn get(path: &'a str) -> Call<'a> {
        Call {
            method: "GET",
            path,
            token: None,
            body: None,
            tls: None,
        }
    }

    pub fn post(path: &'a str, body: &'a str) -> Call<'a> {
        Call {
            method: "POST",
            body: Some(body),
            ..Call::get(path)
        }
    }

    pub fn token(self, token: &'a str) -> Call<'a> {
        Call {
            token: Some(token),
            ..self
        }
    }

    pub fn tls(self, tls: Arc<rustls::ClientConfig>) -> Call<'a> {
        Call {
            tls: Some(tls),
            ..self
        }
    }

    /// Sends the request over a new HTTP/1.1 connection to `address`.
    pub async fn send(self, address: SocketAddr) -> Result<Reply, String> {
        let stream = tokio::net::TcpStream::connect(address)
            .await
            .map_err(|error| format!("connect: {error}"))?;
        match self.tls.clone() {
            Some(config) => {
                let connector = tokio_rustls::TlsConnector::from(config);
                let name = ServerName::IpAddress(address.ip().into());
                let stream = connector
                    .connect(name, stream)
                    .await
                    .map_err(|error| format!("TLS handshake: {error}"))?;
                self.exchange(TokioIo::new(stream)).await
            }
            None => self.exchange(TokioIo::new(stream)).await,
        }
    }

    async fn exchange<I>(self, io: I) -> Result<Reply, String>
    where
        I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    {
        let (mut sender, connection) = hyper::client::conn::http1::handshake(io)
            .await
            .map_err(|error| format!("HTTP handshake: {error}"))?;
        tokio::spawn(connection);

        let mut request = hyper::Request::builder()
            .method(self.method)
            .uri(self.path)
            .header("host", "127.0.0.1");
        if let Some(token) = self.token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let body = Full::new(Bytes::from(self.body.unwrap_or("").to_string()));
        let request = request.body(body).unwrap();
        let response = sender
            .send_request(request)
            .await
            .map_err(|error| format!("request: {error}"))?;

        let status = response.status().as_u16();
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .map(|value| value.to_str().unwrap().to_string())
        };
        let content_type = header("content-type").unwrap_or_default();
        let www_authenticate = header("www-authenticate");
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|error| format!("body: {error}"))?
            .to_bytes();
        Ok(Reply {
            status,
            content_type,
            www_authenticate,
            body: String::from_utf8(body.to_vec()).unwrap(),
        })
    }
}

/// Polls `condition` every 50 ms until it is true or [`WAIT`] passes.
pub async fn eventually<F, Fut>(mut condition: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + WAIT;
    while Instant::now() < deadline {
        if condition().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

fn host(hostname: &str, ipv4: &str) -> Option<Host> {
    Some(Host {
        hostname: hostname.to_string(),
        ipv4: ipv4.to_string(),
        ipv6: String::new(),
    })
}

fn destination(vserver: &str, backend: &str, address: &str, healthy: bool) -> Destination {
    Destination {
        name: format!("{vserver}/{address}:80/TCP"),
        vserver_name: vserver.to_string(),
        backend: Some(Backend {
            host: host(backend, &format!("{address}/24")),
            weight: 1,
            enabled: true,
            in_service: true,
        }),
        weight: 1,
        enabled: true,
        healthy,
        active: healthy,
        stats: Some(IpvsStats {
            connections: 7,
            packets_in: 70,
            packets_out: 60,
            bytes_in: 7000,
            bytes_out: 6000,
            ..IpvsStats::default()
        }),
        active_conns: 2,
        inactive_conns: 1,
        persist_conns: 0,
    }
}

fn web_vserver() -> Vserver {
    Vserver {
        name: "web@example".to_string(),
        host: host("web.example.com.", "192.0.2.10/24"),
        entries: vec![VserverEntry {
            port: 80,
            protocol: 6,
            scheduler: "wrr".to_string(),
            mode: "DSR".to_string(),
            ..VserverEntry::default()
        }],
        services: vec![Service {
            family: 4,
            protocol: 6,
            port: 80,
            ip: "192.0.2.10".to_string(),
            mode: "DSR".to_string(),
            scheduler: "wrr".to_string(),
            enabled: true,
            healthy: true,
            active: true,
            low_watermark: 0.5,
            high_watermark: 1.0,
            current_watermark: 0.5,
            stats: Some(IpvsStats {
                connections: 14,
                packets_in: 140,
                packets_out: 120,
                bytes_in: 14000,
                bytes_out: 12000,
                ..IpvsStats::default()
            }),
            destinations: vec![
                destination("web@example", "web1.example.com.", "192.0.2.21", true),
                destination("web@example", "web2.example.com.", "192.0.2.22", false),
            ],
            ..Service::default()
        }],
        enabled: true,
        config_enabled: true,
        ..Vserver::default()
    }
}

fn dns_vserver() -> Vserver {
    Vserver {
        name: "dns@example".to_string(),
        host: host("dns.example.com.", "192.0.2.30/24"),
        enabled: false,
        config_enabled: true,
        override_state: OverrideState::Disabled as i32,
        ..Vserver::default()
    }
}

/// 2026-01-02T03:04:05Z.
pub const SINCE_MS: i64 = 1_767_323_045_000;

/// Returns the replies of a loaded engine on the leader of a two-node cluster with
/// the vservers web@example (two backends, one healthy) and dns@example
/// (disabled by an override), a check per web backend, and an access grant
/// of web@example to carol.
pub fn engine_reads() -> Reads {
    Reads {
        cluster_status: Some(ClusterStatusReply {
            version: 2,
            site: "example".to_string(),
            nodes: vec![
                Node {
                    host: host("node1.example.com.", "192.0.2.1/24"),
                    priority: 255,
                    state: HaState::Backup as i32,
                    vservers_enabled: true,
                    ..Node::default()
                },
                Node {
                    host: host("node2.example.com.", "192.0.2.2/24"),
                    priority: 1,
                    state: HaState::Backup as i32,
                    vservers_enabled: true,
                    ..Node::default()
                },
            ],
        }),
        config_status: Some(ConfigStatusReply {
            last_update_ms: SINCE_MS,
            attributes: vec![ConfigAttribute {
                name: "cluster".to_string(),
                value: "example".to_string(),
            }],
            warnings: vec!["vserver dns@example has no entries".to_string()],
            source: "disk".to_string(),
            source_detail: "/etc/seesaw/cluster.pb".to_string(),
            last_attempt_ms: SINCE_MS,
            last_errors: Vec::new(),
        }),
        ha_status: Some(HaStatus {
            state: HaState::Leader as i32,
            since_ms: SINCE_MS,
            last_update_ms: SINCE_MS + 3000,
            sent: 120,
            received: 4,
            received_queued: 0,
            transitions: 2,
        }),
        bgp_neighbors: Some(BgpNeighborList {
            neighbors: vec![BgpNeighbor {
                ip: "192.0.2.254".to_string(),
                router_id: "192.0.2.254".to_string(),
                asn: 64512,
                description: "router".to_string(),
                state: "Established".to_string(),
                uptime_ms: 60_000,
            }],
        }),
        vlans: Some(VlanList {
            vlans: vec![Vlan {
                id: 100,
                host: host("vlan100.example.com.", "198.51.100.2/24"),
                backends_ipv4: 2,
                vips_ipv4: 1,
                ..Vlan::default()
            }],
        }),
        vservers: Some(VserverList {
            vservers: vec![web_vserver(), dns_vserver()],
        }),
        backends: None,
        check_status: Some(CheckStatusList {
            checks: vec![
                check_status(11, "192.0.2.21", "web1.example.com.", CheckState::Healthy),
                check_status(12, "192.0.2.22", "web2.example.com.", CheckState::Unhealthy),
            ],
        }),
        access_grants: Some(AccessGrantList {
            grants: vec![AccessGrant {
                vserver: "web@example".to_string(),
                user: "carol".to_string(),
                source: "group:web-oncall".to_string(),
            }],
        }),
        config_source: Some("disk".to_string()),
    }
}

fn check_status(id: u64, ip: &str, backend: &str, state: CheckState) -> CheckStatus {
    let healthy = state == CheckState::Healthy;
    CheckStatus {
        check: Some(Healthcheck {
            id,
            r#type: "HTTP".to_string(),
            ip: ip.to_string(),
            host: ip.to_string(),
            port: 80,
            interval_ms: 5000,
            ..Healthcheck::default()
        }),
        result: Some(HealthNotification {
            id,
            state: state as i32,
            message: if healthy {
                "200 OK"
            } else {
                "connection refused"
            }
            .to_string(),
            last_check_ms: SINCE_MS + 5000,
            duration_ms: 25,
            failures: if healthy { 0 } else { 9 },
            successes: if healthy { 10 } else { 1 },
        }),
        backend: backend.to_string(),
        destinations: vec![format!("web@example/{ip}:80/TCP")],
    }
}

/// Returns whether `promtool` is installed; without it, prints why the
/// check is skipped, or panics when SEESAW_REQUIRE_ORACLES=1.
pub fn promtool_found() -> bool {
    let found = Command::new("promtool")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if !found {
        if std::env::var("SEESAW_REQUIRE_ORACLES").as_deref() == Ok("1") {
            panic!("promtool is not installed and SEESAW_REQUIRE_ORACLES=1");
        }
        println!("SKIPPED: promtool is not installed (apt-get install prometheus)");
    }
    found
}

/// Runs `promtool check metrics` on `text` and returns its exit status and
/// output.
pub fn promtool_check(text: &str) -> (bool, String) {
    use std::io::Write;
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    let mut printed = String::from_utf8_lossy(&output.stdout).into_owned();
    printed.push_str(&String::from_utf8_lossy(&output.stderr));
    (output.status.success(), printed)
}

/// Parses the text exposition format into `(series, value)` pairs, where
/// the series is the sample line up to its value, such as
/// `seesaw_ha_state{state="LEADER"}`. Panics on a malformed line.
pub fn parse_samples(text: &str) -> Vec<(String, f64)> {
    text.lines()
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| {
            let (series, value) = line
                .rsplit_once(' ')
                .unwrap_or_else(|| panic!("malformed sample line: {line}"));
            let value = match value {
                "+Inf" => f64::INFINITY,
                "-Inf" => f64::NEG_INFINITY,
                other => other
                    .parse()
                    .unwrap_or_else(|_| panic!("malformed value in: {line}")),
            };
            (series.to_string(), value)
        })
        .collect()
}

/// Returns the value of `series` in `samples`.
#[track_caller]
pub fn sample(samples: &[(String, f64)], series: &str) -> f64 {
    samples
        .iter()
        .find(|(name, _)| name == series)
        .map(|(_, value)| *value)
        .unwrap_or_else(|| panic!("no sample {series}"))
}

/// Returns a validator for one show command's JSON: the shell's schema
/// with its root at `$defs/<definition>`.
pub fn schema_for(definition: &str) -> jsonschema::Validator {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../seesaw-cli/schema/show.schema.json");
    let mut schema: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(path).unwrap()).unwrap();
    schema["$ref"] = serde_json::Value::String(format!("#/$defs/{definition}"));
    jsonschema::options()
        .should_validate_formats(true)
        .build(&schema)
        .unwrap()
}

#[track_caller]
pub fn assert_schema(definition: &str, reply: &Reply) {
    let instance = reply.json();
    let errors: Vec<String> = schema_for(definition)
        .iter_errors(&instance)
        .map(|error| format!("{error} at {}", error.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{definition}: {errors:#?}\n{}",
        reply.body
    );
}
