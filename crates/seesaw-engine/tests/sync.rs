//! Peer sync between two engine daemons in one process, each with its own
//! fake NCC, socket and cluster.pb. The sample GKE pair's addresses are
//! moved from 100.115.222.0/25 to 127.1.222.0/25, which is on loopback, so
//! the engines' sync servers and clients use their real node and peer
//! addresses without a network namespace.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    SanType,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore};
use seesaw_config::node_config::NodeConfig;
use seesaw_engine::daemon::access::AccessGroups;
use seesaw_engine::daemon::fake_ncc::FakeNcc;
use seesaw_engine::daemon::sync::transport::Dialer;
use seesaw_engine::daemon::{self, Options, Running};
use seesaw_engine::notifier::{NotifierOptions, Source};
use seesaw_engine::overrides::OverrideState;
use seesaw_ipc::engine_proto as api;
use seesaw_ipc::sync_proto as wire;
use seesaw_ipc::{ClientOptions, EngineClient, connect_engine};
use tokio::sync::oneshot;

const FIXTURES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../seesaw-config/tests/fixtures"
);

const MASTER: &str = "127.1.222.130";
const BACKUP: &str = "127.1.222.131";

/// How long a test waits for the peer to catch up.
const DEADLINE: Duration = Duration::from_secs(30);

/// Moves the sample's addresses onto loopback.
fn on_loopback(text: &str) -> String {
    text.replace("100.115.222.", "127.1.222.")
}

/// The PEM files of one node's `[sync]` section.
struct TlsFiles {
    cert: PathBuf,
    key: PathBuf,
    ca: PathBuf,
}

/// Returns one node's seesaw.cfg: the sample's node .130 when `master`,
/// otherwise .131. The sync timings are shortened so that reconnections are quick.
fn node_config(master: bool, port: u16, tls: Option<&TlsFiles>) -> NodeConfig {
    let file = if master {
        "gke-manual-seesaw.cfg"
    } else {
        "gke-manual-seesaw-peer.cfg"
    };
    let mut text =
        on_loopback(&std::fs::read_to_string(Path::new(FIXTURES).join("ini").join(file)).unwrap());
    if let Some(tls) = tls {
        text.push_str(&format!(
            "\n[sync]\ncert_file = {}\nkey_file = {}\nca_file = {}\n",
            tls.cert.display(),
            tls.key.display(),
            tls.ca.display()
        ));
    }
    let (mut node, _) = NodeConfig::parse(file, &text).expect("fixture seesaw.cfg loads");
    node.engine.sync_port = port;
    node.engine.sync_heartbeat_interval = Duration::from_secs(1);
    node.engine.sync_retry_interval = Duration::from_millis(200);
    // No seesaw_ha runs here, so the HA state must not time out.
    node.engine.ha_state_timeout = Duration::from_secs(3600);
    node
}

/// Returns a port that is free on the master's address.
fn free_port() -> u16 {
    std::net::TcpListener::bind((MASTER, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running engine daemon.
struct Engine {
    dir: tempfile::TempDir,
    cluster: PathBuf,
    running: Running,
    client: EngineClient,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), String>>,
}

impl Engine {
    async fn start(node: NodeConfig, dir: tempfile::TempDir) -> Engine {
        let cluster = dir.path().join("cluster.pb");
        if !cluster.exists() {
            let text =
                std::fs::read_to_string(Path::new(FIXTURES).join("cluster/gke-manual.pb")).unwrap();
            std::fs::write(&cluster, on_loopback(&text)).unwrap();
        }
        let socket = dir.path().join("engine/engine.sock");
        let options = Options {
            node,
            cluster_file: cluster.clone(),
            socket: socket.clone(),
            groups: AccessGroups::default(),
            // These tests read the disk and the peer only.
            adjust_notifier: Some(Arc::new(|options: &mut NotifierOptions| {
                options.config_servers = Vec::new();
                options.source_after_start = Source::Disk;
            })),
        };
        let (stop, stopped) = oneshot::channel();
        let (ready, running) = oneshot::channel();
        let task = tokio::spawn(daemon::run(
            options,
            FakeNcc::new(),
            async move {
                let _ = stopped.await;
            },
            move |running| {
                let _ = ready.send(running);
            },
        ));
        let running = tokio::time::timeout(Duration::from_secs(20), running)
            .await
            .expect("engine started in time")
            .expect("engine started");
        let client = connect_engine(&socket, &ClientOptions::default())
            .await
            .expect("engine socket accepts connections");
        Engine {
            dir,
            cluster,
            running,
            client,
            stop: Some(stop),
            task,
        }
    }

    async fn set_ha_state(&mut self, state: api::HaState) {
        self.client
            .ha_state(api::HaStateRequest {
                state: state as i32,
            })
            .await
            .unwrap();
    }

    fn vserver_override(&self, vserver: &str) -> Option<OverrideState> {
        self.running
            .core
            .lock()
            .unwrap()
            .engine
            .overrides()
            .vservers
            .get(vserver)
            .copied()
    }

    async fn override_vserver(&mut self, vserver: &str, state: api::OverrideState) {
        self.client
            .override_vserver(api::VserverOverride {
                vserver: vserver.to_string(),
                state: state as i32,
            })
            .await
            .unwrap();
    }

    async fn stop(mut self) -> tempfile::TempDir {
        self.stop.take().unwrap().send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(20), self.task)
            .await
            .expect("engine stopped in time")
            .unwrap()
            .expect("engine stops cleanly");
        self.dir
    }
}

/// Starts the master (.130, LEADER) and the backup (.131, BACKUP).
async fn pair(port: u16, tls: Option<(&TlsFiles, &TlsFiles)>) -> (Engine, Engine) {
    let master_node = node_config(true, port, tls.map(|(master, _)| master));
    let backup_node = node_config(false, port, tls.map(|(_, backup)| backup));
    let mut master = Engine::start(master_node, tempfile::tempdir().unwrap()).await;
    let mut backup = Engine::start(backup_node, tempfile::tempdir().unwrap()).await;
    master.set_ha_state(api::HaState::Leader).await;
    backup.set_ha_state(api::HaState::Backup).await;
    (master, backup)
}

/// Polls `condition` until it holds, failing with `what` at the deadline.
async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + DEADLINE;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Opens a sync session to the master with `dialer` and returns its first
/// note.
async fn first_note(dialer: &Dialer) -> Result<wire::Note, String> {
    let mut client = dialer.connect().await?;
    let request = wire::WatchRequest {
        node: dialer.local.to_string(),
        overrides: Vec::new(),
    };
    let mut notes = client
        .watch(request)
        .await
        .map_err(|status| status.to_string())?
        .into_inner();
    match tokio::time::timeout(DEADLINE, notes.message()).await {
        Ok(Ok(Some(note))) => Ok(note),
        Ok(Ok(None)) => Err("the session ended at once".to_string()),
        Ok(Err(status)) => Err(status.to_string()),
        Err(_) => Err("no note arrived".to_string()),
    }
}

fn dialer(local: &str, port: u16, tls: Option<Arc<ClientConfig>>) -> Dialer {
    Dialer {
        local: local.parse().unwrap(),
        peer: SocketAddr::new(MASTER.parse().unwrap(), port),
        tls,
        connect_timeout: Duration::from_secs(2),
        keepalive: Duration::from_secs(5),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn master_override_reaches_backup() {
    let (mut master, backup) = pair(free_port(), None).await;

    master
        .override_vserver("admin-control-plane", api::OverrideState::Disabled)
        .await;
    eventually("the backup has the override", || {
        backup.vserver_override("admin-control-plane") == Some(OverrideState::Disabled)
    })
    .await;

    master
        .override_vserver("admin-control-plane", api::OverrideState::Default)
        .await;
    eventually("the backup dropped the override", || {
        backup.vserver_override("admin-control-plane").is_none()
    })
    .await;

    master.stop().await;
    backup.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_takes_overrides_set_before_it_started() {
    let port = free_port();
    let mut master =
        Engine::start(node_config(true, port, None), tempfile::tempdir().unwrap()).await;
    master.set_ha_state(api::HaState::Leader).await;
    master
        .override_vserver("admin-ingress-controller", api::OverrideState::Disabled)
        .await;

    let backup = Engine::start(node_config(false, port, None), tempfile::tempdir().unwrap()).await;
    // The backup follows while it is not master, so before seesaw_ha
    // reports BACKUP too.
    eventually("the backup has the override", || {
        backup.vserver_override("admin-ingress-controller") == Some(OverrideState::Disabled)
    })
    .await;

    master.stop().await;
    backup.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_failover_reaches_master() {
    let (mut master, mut backup) = pair(free_port(), None).await;

    backup
        .client
        .failover(api::Empty {})
        .await
        .expect("the backup passes the failover to the master");
    let reply = master
        .client
        .ha_update(api::HaStatus {
            state: api::HaState::Leader as i32,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        reply.failover_requested,
        "seesaw_ha on the master is told to give up mastership"
    );

    let master_dir = master.stop().await;
    let error = backup
        .client
        .failover(api::Empty {})
        .await
        .expect_err("no master to pass the failover to");
    assert!(
        error.message().contains("Node is not master"),
        "{}",
        error.message()
    );
    assert!(
        error.message().contains("the peer did not fail over"),
        "{}",
        error.message()
    );
    drop(master_dir);
    backup.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_loads_config_from_peer() {
    let (master, mut backup) = pair(free_port(), None).await;
    let original = master.running.core.lock().unwrap().cluster.clone().unwrap();

    let reply = backup
        .client
        .config_source(api::ConfigSourceRequest {
            source: "peer".to_string(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(reply.previous, "disk");

    // The master reads the edit from its disk; the backup then reloads
    // from the master, not from its own unchanged cluster.pb.
    let text = std::fs::read_to_string(&master.cluster).unwrap();
    assert!(text.contains("scheduler: WLC"));
    std::fs::write(
        &master.cluster,
        text.replacen("scheduler: WLC", "scheduler: RR", 1),
    )
    .unwrap();
    eventually("the master applied the edit", || {
        master.running.core.lock().unwrap().cluster.as_ref() != Some(&original)
    })
    .await;
    let edited = master.running.core.lock().unwrap().cluster.clone().unwrap();
    eventually("the backup has the master's config", || {
        backup.running.core.lock().unwrap().cluster.as_deref() == Some(&*edited)
    })
    .await;

    let status = backup
        .client
        .config_status(api::Empty {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(status.source, "peer");
    // The notifier saves a config after it hands it to the engine.
    eventually(
        "the backup saved the peer's config to its cluster.pb",
        || {
            std::fs::read_to_string(&backup.cluster)
                .is_ok_and(|saved| saved.contains("scheduler: RR"))
        },
    )
    .await;

    master.stop().await;
    backup.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_resyncs_after_master_restart() {
    let port = free_port();
    let (mut master, backup) = pair(port, None).await;
    master
        .override_vserver("admin-control-plane", api::OverrideState::Disabled)
        .await;
    eventually("the backup has the first override", || {
        backup.vserver_override("admin-control-plane") == Some(OverrideState::Disabled)
    })
    .await;

    // Overrides live in memory: the restarted master gets them back from
    // the backup's first session.
    let dir = master.stop().await;
    let mut master = Engine::start(node_config(true, port, None), dir).await;
    eventually("the restarted master took the backup's override", || {
        master.vserver_override("admin-control-plane") == Some(OverrideState::Disabled)
    })
    .await;
    master.set_ha_state(api::HaState::Leader).await;

    master
        .override_vserver("admin-ingress-controller", api::OverrideState::Disabled)
        .await;
    eventually("the backup follows the restarted master", || {
        backup.vserver_override("admin-ingress-controller") == Some(OverrideState::Disabled)
    })
    .await;
    assert_eq!(
        backup.vserver_override("admin-control-plane"),
        Some(OverrideState::Disabled),
        "the resync kept the first override"
    );

    master.stop().await;
    backup.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_from_other_address_is_rejected() {
    let port = free_port();
    let (master, backup) = pair(port, None).await;

    let from_peer = first_note(&dialer(BACKUP, port, None)).await;
    let note = from_peer.expect("the peer's address is accepted");
    assert!(matches!(note.body, Some(wire::note::Body::State(_))));

    let stranger = first_note(&dialer("127.1.222.99", port, None)).await;
    assert!(
        stranger.is_err(),
        "another address is rejected: {stranger:?}"
    );

    master.stop().await;
    backup.stop().await;
}

/// A CA and the certificates it issues, written as PEM files.
struct Pki {
    dir: tempfile::TempDir,
    ca: CertifiedIssuer<'static, KeyPair>,
}

impl Pki {
    fn new(name: &str) -> Pki {
        let mut params = CertificateParams::new(Vec::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        Pki {
            dir: tempfile::tempdir().unwrap(),
            ca: CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap(),
        }
    }

    /// Issues a certificate naming `address`, usable as server and client.
    fn issue(&self, name: &str, address: &str) -> TlsFiles {
        let mut params = CertificateParams::new(vec![format!("{name}.example.com")]).unwrap();
        params
            .subject_alt_names
            .push(SanType::IpAddress(address.parse::<IpAddr>().unwrap()));
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let key = KeyPair::generate().unwrap();
        let certificate = params.signed_by(&key, &self.ca).unwrap();
        let files = TlsFiles {
            cert: self.dir.path().join(format!("{name}.crt")),
            key: self.dir.path().join(format!("{name}.key")),
            ca: self.dir.path().join("ca.crt"),
        };
        std::fs::write(&files.cert, certificate.pem()).unwrap();
        std::fs::write(&files.key, key.serialize_pem()).unwrap();
        std::fs::write(&files.ca, self.ca.pem()).unwrap();
        files
    }
}

/// Returns a TLS client config that trusts `ca` and presents `identity`,
/// when given.
fn client_tls(ca: &Path, identity: Option<&TlsFiles>) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    for certificate in CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(certificate.unwrap()).unwrap();
    }
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let mut config = match identity {
        None => builder.with_no_client_auth(),
        Some(files) => {
            let chain = CertificateDer::pem_file_iter(&files.cert)
                .unwrap()
                .map(Result::unwrap)
                .collect();
            let key = PrivateKeyDer::from_pem_file(&files.key).unwrap();
            builder.with_client_auth_cert(chain, key).unwrap()
        }
    };
    config.alpn_protocols = vec![b"h2".to_vec()];
    Arc::new(config)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_pair_syncs_and_rejects_other_certificates() {
    let pki = Pki::new("seesaw sync CA");
    let master_files = pki.issue("master", MASTER);
    let backup_files = pki.issue("backup", BACKUP);
    let port = free_port();
    let (mut master, mut backup) = pair(port, Some((&master_files, &backup_files))).await;

    master
        .override_vserver("admin-control-plane", api::OverrideState::Enabled)
        .await;
    eventually("the backup has the override over TLS", || {
        backup.vserver_override("admin-control-plane") == Some(OverrideState::Enabled)
    })
    .await;
    backup
        .client
        .failover(api::Empty {})
        .await
        .expect("the failover passes over TLS");

    let ca = &master_files.ca;
    let accepted = first_note(&dialer(
        BACKUP,
        port,
        Some(client_tls(ca, Some(&backup_files))),
    ))
    .await;
    assert!(
        accepted.is_ok(),
        "the backup's certificate is accepted: {accepted:?}"
    );

    let plain = first_note(&dialer(BACKUP, port, None)).await;
    assert!(plain.is_err(), "plain TCP is rejected: {plain:?}");

    let anonymous = first_note(&dialer(BACKUP, port, Some(client_tls(ca, None)))).await;
    assert!(
        anonymous.is_err(),
        "a client without a certificate is rejected: {anonymous:?}"
    );

    let other_ca = Pki::new("another CA");
    let foreign = other_ca.issue("backup", BACKUP);
    let foreign_tls = client_tls(ca, Some(&foreign));
    let foreign_result = first_note(&dialer(BACKUP, port, Some(foreign_tls))).await;
    assert!(
        foreign_result.is_err(),
        "a certificate of another CA is rejected: {foreign_result:?}"
    );

    let misnamed = pki.issue("misnamed", "127.1.222.77");
    let misnamed_tls = client_tls(ca, Some(&misnamed));
    let misnamed_result = first_note(&dialer(BACKUP, port, Some(misnamed_tls))).await;
    assert!(
        misnamed_result.is_err(),
        "a certificate naming another address is rejected: {misnamed_result:?}"
    );

    master.stop().await;
    backup.stop().await;
}
