//! A fake engine for the shell's tests: canned replies built from a
//! cluster.pb, served over a Unix socket as seesaw_engine serves them, or
//! called in process through the shell's `Engine` trait.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

use seesaw_cli::engine::{Engine, EngineError, EngineResult};
use seesaw_config::check::context_of;
use seesaw_config::cluster::read_cluster_file;
use seesaw_config::model::{self, Cluster, NodeState};
use seesaw_config::node_config::NodeConfig;
use seesaw_ipc::engine_proto::engine_server::{Engine as EngineService, EngineServer};
use seesaw_ipc::engine_proto::{
    BackendList, BackendOverride, BgpNeighbor, BgpNeighborList, ClusterStatusReply,
    ConfigAttribute, ConfigSourceReply, ConfigSourceRequest, ConfigStatusReply, Destination,
    DestinationOverride, Empty, HaConfigReply, HaState, HaStateRequest, HaStatus, HaUpdateReply,
    HealthStateBatch, HealthcheckList, Host, Node, Service, Vlan, VlanList, Vserver, VserverList,
    VserverOverride,
};
use tonic::{Request, Response, Status};

/// 2026-12-04T20:20:20Z, when the GKE master became leader.
pub const MASTER_SINCE_MS: i64 = 1_796_415_620_000;
/// 2026-12-04T20:20:28Z, when the GKE backup became backup.
pub const BACKUP_SINCE_MS: i64 = 1_796_415_628_000;

/// What the fake engine replies, and the write calls it received.
#[derive(Debug, Clone, Default)]
pub struct FakeState {
    pub cluster: ClusterStatusReply,
    pub config: ConfigStatusReply,
    pub ha: HaStatus,
    pub bgp: BgpNeighborList,
    pub vlans: VlanList,
    pub vservers: VserverList,
    pub source: String,
    /// The error of the next failover call, as the engine words it.
    pub failover_error: Option<String>,
    /// When set, every call fails with this message.
    pub broken: Option<String>,
    /// Write calls, one line each: `reload`, `source disk`,
    /// `override vserver web disabled`, ...
    pub calls: Vec<String>,
}

impl FakeState {
    fn check(&self) -> EngineResult<()> {
        match &self.broken {
            Some(message) => Err(EngineError(message.clone())),
            None => Ok(()),
        }
    }

    fn override_name(state: i32) -> &'static str {
        seesaw_cli::render::override_state_name(state)
    }
}

impl Engine for FakeState {
    fn cluster_status(&mut self) -> EngineResult<ClusterStatusReply> {
        self.check()?;
        Ok(self.cluster.clone())
    }

    fn config_status(&mut self) -> EngineResult<ConfigStatusReply> {
        self.check()?;
        Ok(self.config.clone())
    }

    fn ha_status(&mut self) -> EngineResult<HaStatus> {
        self.check()?;
        Ok(self.ha)
    }

    fn bgp_neighbors(&mut self) -> EngineResult<BgpNeighborList> {
        self.check()?;
        Ok(self.bgp.clone())
    }

    fn vlans(&mut self) -> EngineResult<VlanList> {
        self.check()?;
        Ok(self.vlans.clone())
    }

    fn vservers(&mut self) -> EngineResult<VserverList> {
        self.check()?;
        Ok(self.vservers.clone())
    }

    fn config_reload(&mut self) -> EngineResult<()> {
        self.check()?;
        self.calls.push("reload".to_string());
        Ok(())
    }

    fn config_source(&mut self, source: &str) -> EngineResult<String> {
        self.check()?;
        let previous = self.source.clone();
        if source.is_empty() {
            return Ok(previous);
        }
        if !["disk", "peer", "server"].contains(&source) {
            return Err(EngineError(format!("unknown source \"{source}\"")));
        }
        self.calls.push(format!("source {source}"));
        self.source = source.to_string();
        Ok(previous)
    }

    fn failover(&mut self) -> EngineResult<()> {
        self.check()?;
        if let Some(error) = &self.failover_error {
            return Err(EngineError(error.clone()));
        }
        self.calls.push("failover".to_string());
        Ok(())
    }

    fn override_vserver(&mut self, request: VserverOverride) -> EngineResult<()> {
        self.check()?;
        self.calls.push(format!(
            "override vserver {} {}",
            request.vserver,
            Self::override_name(request.state)
        ));
        Ok(())
    }

    fn override_backend(&mut self, request: BackendOverride) -> EngineResult<()> {
        self.check()?;
        self.calls.push(format!(
            "override backend {} {}",
            request.hostname,
            Self::override_name(request.state)
        ));
        Ok(())
    }

    fn override_destination(&mut self, request: DestinationOverride) -> EngineResult<()> {
        self.check()?;
        self.calls.push(format!(
            "override destination {} {} {}",
            request.vserver,
            request.destination,
            Self::override_name(request.state)
        ));
        Ok(())
    }
}

/// The fake state behind the gRPC service.
#[derive(Clone)]
struct FakeService(Arc<Mutex<FakeState>>);

impl FakeService {
    fn call<T>(
        &self,
        f: impl FnOnce(&mut FakeState) -> EngineResult<T>,
    ) -> Result<Response<T>, Status> {
        let mut state = self.0.lock().unwrap();
        f(&mut state)
            .map(Response::new)
            .map_err(|EngineError(message)| Status::failed_precondition(message))
    }
}

fn not_for_the_shell<T>() -> Result<Response<T>, Status> {
    Err(Status::unimplemented("not served by the fake engine"))
}

#[tonic::async_trait]
impl EngineService for FakeService {
    async fn ha_config(&self, _: Request<Empty>) -> Result<Response<HaConfigReply>, Status> {
        not_for_the_shell()
    }

    async fn ha_update(&self, _: Request<HaStatus>) -> Result<Response<HaUpdateReply>, Status> {
        not_for_the_shell()
    }

    async fn ha_state(&self, _: Request<HaStateRequest>) -> Result<Response<Empty>, Status> {
        not_for_the_shell()
    }

    async fn healthchecks(&self, _: Request<Empty>) -> Result<Response<HealthcheckList>, Status> {
        not_for_the_shell()
    }

    async fn health_state(&self, _: Request<HealthStateBatch>) -> Result<Response<Empty>, Status> {
        not_for_the_shell()
    }

    async fn backends(&self, _: Request<Empty>) -> Result<Response<BackendList>, Status> {
        not_for_the_shell()
    }

    async fn cluster_status(
        &self,
        _: Request<Empty>,
    ) -> Result<Response<ClusterStatusReply>, Status> {
        self.call(|s| s.cluster_status())
    }

    async fn config_status(
        &self,
        _: Request<Empty>,
    ) -> Result<Response<ConfigStatusReply>, Status> {
        self.call(|s| s.config_status())
    }

    async fn ha_status_get(&self, _: Request<Empty>) -> Result<Response<HaStatus>, Status> {
        self.call(|s| s.ha_status())
    }

    async fn bgp_neighbors(&self, _: Request<Empty>) -> Result<Response<BgpNeighborList>, Status> {
        self.call(|s| s.bgp_neighbors())
    }

    async fn vlans(&self, _: Request<Empty>) -> Result<Response<VlanList>, Status> {
        self.call(|s| s.vlans())
    }

    async fn vservers(&self, _: Request<Empty>) -> Result<Response<VserverList>, Status> {
        self.call(|s| s.vservers())
    }

    async fn config_reload(&self, _: Request<Empty>) -> Result<Response<Empty>, Status> {
        self.call(|s| s.config_reload().map(|()| Empty {}))
    }

    async fn config_source(
        &self,
        request: Request<ConfigSourceRequest>,
    ) -> Result<Response<ConfigSourceReply>, Status> {
        let source = request.into_inner().source;
        self.call(|s| {
            s.config_source(&source)
                .map(|previous| ConfigSourceReply { previous })
        })
    }

    async fn failover(&self, _: Request<Empty>) -> Result<Response<Empty>, Status> {
        self.call(|s| s.failover().map(|()| Empty {}))
    }

    async fn override_vserver(
        &self,
        request: Request<VserverOverride>,
    ) -> Result<Response<Empty>, Status> {
        self.call(|s| s.override_vserver(request.into_inner()).map(|()| Empty {}))
    }

    async fn override_backend(
        &self,
        request: Request<BackendOverride>,
    ) -> Result<Response<Empty>, Status> {
        self.call(|s| s.override_backend(request.into_inner()).map(|()| Empty {}))
    }

    async fn override_destination(
        &self,
        request: Request<DestinationOverride>,
    ) -> Result<Response<Empty>, Status> {
        self.call(|s| {
            s.override_destination(request.into_inner())
                .map(|()| Empty {})
        })
    }
}

/// A fake engine serving on a socket in its own temporary directory, for
/// as long as the value lives.
pub struct RunningEngine {
    pub dir: tempfile::TempDir,
    pub socket: PathBuf,
    pub state: Arc<Mutex<FakeState>>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl RunningEngine {
    /// Starts serving `state`; returns once the socket accepts connections.
    pub fn start(state: FakeState) -> RunningEngine {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("engine.sock");
        let shared = Arc::new(Mutex::new(state));
        let (shutdown, stop) = tokio::sync::oneshot::channel::<()>();

        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let listener = runtime.block_on(async { tokio::net::UnixListener::bind(&socket) });
        let listener = listener.unwrap();
        let service = FakeService(shared.clone());
        let thread = std::thread::spawn(move || {
            runtime.block_on(async move {
                let incoming = tokio_stream::wrappers::UnixListenerStream::new(listener);
                let _ = tonic::transport::Server::builder()
                    .add_service(EngineServer::new(service))
                    .serve_with_incoming_shutdown(incoming, async {
                        let _ = stop.await;
                    })
                    .await;
            });
        });

        RunningEngine {
            dir,
            socket,
            state: shared,
            shutdown: Some(shutdown),
            thread: Some(thread),
        }
    }

    /// Returns the write calls the engine received so far.
    pub fn calls(&self) -> Vec<String> {
        self.state.lock().unwrap().calls.clone()
    }

    /// Runs `seesaw_cli -engine <socket> ARGS...` to completion.
    pub fn cli(&self, args: &[&str]) -> Output {
        let mut all = vec!["-engine", self.socket.to_str().unwrap()];
        all.extend_from_slice(args);
        run_cli(&all, self.dir.path())
    }
}

impl Drop for RunningEngine {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Runs the shell binary with `args`, times in UTC and `home` as its home
/// directory.
pub fn run_cli(args: &[&str], home: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_seesaw_cli"))
        .args(args)
        .env("TZ", "UTC")
        .env("HOME", home)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap()
}

/// Returns the directory of the original shell's golden outputs.
pub fn golden_dir() -> PathBuf {
    // A copy of what the original printed for the GKE pair in the kernel
    // lab (golden/go-seesaw/cli of the project's reference material).
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/golden-cli")
}

/// Returns the path of a file under the repository root.
pub fn repo_file(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(relative)
}

/// Loads a cluster as the engine of the node whose seesaw.cfg is
/// `node_config` would.
pub fn load_cluster(cluster: &Path, node_config: &Path) -> Cluster {
    let (node, _) = NodeConfig::load(node_config)
        .unwrap_or_else(|e| panic!("{}: {:?}", node_config.display(), e.0));
    read_cluster_file(cluster, &context_of(&node))
        .unwrap_or_else(|e| panic!("{}: {:?}", cluster.display(), e.0))
        .cluster
}

fn host(host: &model::Host) -> Host {
    Host {
        hostname: host.hostname.clone(),
        ipv4: host.ipv4.map(|n| n.to_string()).unwrap_or_default(),
        ipv6: host.ipv6.map(|n| n.to_string()).unwrap_or_default(),
    }
}

/// Builds the replies an engine holds for `cluster` once every check
/// passed: every vserver enabled as configured, every destination of an
/// enabled backend healthy and active.
pub fn state_from_cluster(cluster: &Cluster) -> FakeState {
    let nodes = cluster
        .nodes
        .values()
        .map(|node| Node {
            host: Some(host(&node.host)),
            priority: u32::from(node.priority),
            state: if node.state == NodeState::Disabled {
                HaState::Disabled
            } else {
                HaState::Backup
            } as i32,
            // The original's engine drops these two flags.
            anycast_enabled: false,
            bgp_enabled: false,
            vservers_enabled: node.vservers_enabled,
        })
        .collect();

    FakeState {
        cluster: ClusterStatusReply {
            version: 2,
            site: cluster.site.clone(),
            nodes,
        },
        config: ConfigStatusReply {
            last_update_ms: cluster.status.last_update.unwrap_or(0) * 1000,
            attributes: cluster
                .status
                .attributes
                .iter()
                .map(|(name, value)| ConfigAttribute {
                    name: name.clone(),
                    value: value.clone(),
                })
                .collect(),
            warnings: cluster.status.warnings.clone(),
            source: "disk".to_string(),
            ..ConfigStatusReply::default()
        },
        vlans: VlanList {
            vlans: cluster
                .vlans
                .values()
                .map(|vlan| Vlan {
                    id: u32::from(vlan.id),
                    host: Some(host(&vlan.host)),
                    backends_ipv4: vlan.backend_count.ipv4,
                    backends_ipv6: vlan.backend_count.ipv6,
                    vips_ipv4: vlan.vip_count.ipv4,
                    vips_ipv6: vlan.vip_count.ipv6,
                })
                .collect(),
        },
        vservers: VserverList {
            vservers: cluster.vservers.values().map(vserver).collect(),
        },
        source: "disk".to_string(),
        ..FakeState::default()
    }
}

fn vserver(config: &model::Vserver) -> Vserver {
    let mut services = Vec::new();
    for vip in config.host.ips() {
        for entry in config.entries.values() {
            services.push(service(config, vip, entry));
        }
    }
    Vserver {
        name: config.name.clone(),
        host: Some(host(&config.host)),
        services,
        enabled: config.enabled,
        config_enabled: config.enabled,
        warnings: config.warnings.clone(),
        ..Vserver::default()
    }
}

fn service(config: &model::Vserver, vip: std::net::IpAddr, entry: &model::VserverEntry) -> Service {
    let destinations: Vec<Destination> = config
        .backends
        .values()
        .filter_map(|backend| {
            let ip = backend
                .host
                .ips()
                .find(|ip| ip.is_ipv4() == vip.is_ipv4())?;
            let healthy = backend.enabled;
            Some(Destination {
                name: format!(
                    "{}/{}/{}",
                    config.name,
                    std::net::SocketAddr::new(ip, entry.port),
                    entry.protocol
                ),
                vserver_name: config.name.clone(),
                backend: Some(seesaw_ipc::engine_proto::Backend {
                    host: Some(host(&backend.host)),
                    weight: backend.weight,
                    enabled: backend.enabled,
                    in_service: backend.in_service,
                }),
                weight: backend.weight,
                enabled: backend.enabled,
                healthy,
                active: healthy && config.enabled,
                ..Destination::default()
            })
        })
        .collect();
    let in_service = config.backends.values().filter(|b| b.in_service).count();
    let healthy = destinations.iter().filter(|d| d.healthy).count();

    Service {
        family: if vip.is_ipv4() { 4 } else { 6 },
        protocol: match entry.protocol {
            model::Protocol::Tcp => 6,
            model::Protocol::Udp => 17,
        },
        port: u32::from(entry.port),
        ip: vip.to_string(),
        mode: entry.mode.to_string(),
        scheduler: entry.scheduler.name().to_string(),
        one_packet: entry.one_packet,
        persistence: entry.persistence.as_secs() as u32,
        enabled: config.enabled,
        healthy: healthy > 0,
        active: healthy > 0 && config.enabled,
        low_watermark: entry.low_watermark,
        high_watermark: entry.high_watermark,
        current_watermark: if in_service == 0 {
            0.0
        } else {
            healthy as f32 / in_service as f32
        },
        destinations,
        ..Service::default()
    }
}

/// Loads the GKE pair's cluster as the master, node .130, reads it. The
/// fixtures are copies of the files the golden outputs were recorded with.
pub fn gke_cluster() -> Cluster {
    let fixtures = repo_file("crates/seesaw-config/tests/fixtures");
    load_cluster(
        &fixtures.join("cluster/gke-manual.pb"),
        &fixtures.join("ini/gke-manual-seesaw.cfg"),
    )
}

/// Returns the state of the original's engine on the GKE master when the
/// golden outputs were recorded.
pub fn gke_master() -> FakeState {
    let mut state = state_from_cluster(&gke_cluster());
    // The golden files show no config metadata and the config server as
    // the source.
    state.source = "server".to_string();
    state.config.source = "server".to_string();
    state.ha = HaStatus {
        state: HaState::Leader as i32,
        since_ms: MASTER_SINCE_MS,
        last_update_ms: MASTER_SINCE_MS + 47_000,
        sent: 93,
        received: 0,
        transitions: 2,
        ..HaStatus::default()
    };
    state
}

/// Returns the state of the original's engine on the GKE backup.
pub fn gke_backup() -> FakeState {
    let mut state = gke_master();
    state.ha = HaStatus {
        state: HaState::Backup as i32,
        since_ms: BACKUP_SINCE_MS,
        last_update_ms: BACKUP_SINCE_MS + 51_000,
        sent: 0,
        received: 103,
        transitions: 1,
        ..HaStatus::default()
    };
    state
}

/// Returns the full example cluster of etc/, with state that exercises
/// every branch of the output: a BGP neighbor, a vserver disabled by an
/// override, and an unhealthy destination.
pub fn example() -> FakeState {
    let cluster = load_cluster(
        &repo_file("etc/cluster.pb.example"),
        &repo_file("etc/seesaw.cfg.example"),
    );
    let mut state = state_from_cluster(&cluster);
    state.ha = HaStatus {
        state: HaState::Backup as i32,
        since_ms: MASTER_SINCE_MS,
        last_update_ms: MASTER_SINCE_MS + 3_723_000,
        sent: 0,
        received: 1241,
        transitions: 1,
        ..HaStatus::default()
    };
    state.bgp = BgpNeighborList {
        neighbors: vec![BgpNeighbor {
            ip: "192.0.2.254".to_string(),
            router_id: "192.0.2.254".to_string(),
            asn: 64513,
            description: "router1.example.com.".to_string(),
            state: "Established".to_string(),
            uptime_ms: 93_780_000,
        }],
    };

    for vserver in &mut state.vservers.vservers {
        if vserver.name == "dns@example" {
            vserver.enabled = false;
            vserver.override_state = seesaw_ipc::engine_proto::OverrideState::Disabled as i32;
            for service in &mut vserver.services {
                service.enabled = false;
                service.active = false;
                for destination in &mut service.destinations {
                    destination.active = false;
                }
            }
        }
        if vserver.name == "web@example" {
            for service in &mut vserver.services {
                let Some(web2) = service
                    .destinations
                    .iter_mut()
                    .find(|d| d.name.contains("192.0.2.22"))
                else {
                    continue;
                };
                web2.healthy = false;
                web2.active = false;
                service.current_watermark = 0.5;
            }
        }
    }
    state
}
