//! The engine's gRPC service on its Unix socket.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use seesaw_ipc::engine_proto as api;
use seesaw_ipc::engine_proto::engine_server::Engine as EngineApi;
use tonic::{Request, Response, Status};

use super::access::{AccessGroups, Caller};
use super::core::Core;
use super::snapshot;
use crate::ha::FailoverError;
use crate::notifier::source::BoxFuture;
use crate::overrides::Override;

/// Reloads and source changes, carried out by the config loop.
pub trait ConfigControl: Send + Sync + 'static {
    /// Queues a reload; fails when one is already queued.
    fn reload(&self) -> Result<(), String>;
    /// Sets the source by name and reloads; returns the previous name.
    fn set_source(&self, name: &str) -> Result<String, String>;
    fn source(&self) -> String;
    /// When the last attempt to load a config was made, and why it failed
    /// (empty when it did not).
    fn last_attempt(&self) -> (Option<std::time::SystemTime>, Vec<String>);
}

/// Passes a failover requested on the backup to the master.
pub trait PeerFailover: Send + Sync + 'static {
    /// Asks the peer to fail over; returns the peer's address for logs.
    fn failover(&self) -> BoxFuture<'_, Result<String, String>>;
}

/// The service; clones share the state.
#[derive(Clone)]
pub struct EngineService {
    core: Arc<Mutex<Core>>,
    config: Arc<dyn ConfigControl>,
    groups: Arc<AccessGroups>,
    /// The last result of each probe, for `CheckStatus`.
    results: Arc<Mutex<HashMap<u64, api::HealthNotification>>>,
    /// The peer that a failover goes to when this node is not master.
    peer: Option<Arc<dyn PeerFailover>>,
}

type Reply<T> = Result<Response<T>, Status>;

impl EngineService {
    pub fn new(
        core: Arc<Mutex<Core>>,
        config: Arc<dyn ConfigControl>,
        groups: AccessGroups,
    ) -> Self {
        EngineService {
            core,
            config,
            groups: Arc::new(groups),
            results: Arc::new(Mutex::new(HashMap::new())),
            peer: None,
        }
    }

    /// Passes failovers requested while this node is not master to `peer`.
    pub fn with_peer_failover(mut self, peer: Arc<dyn PeerFailover>) -> Self {
        self.peer = Some(peer);
        self
    }

    fn core(&self) -> MutexGuard<'_, Core> {
        self.core.lock().expect("engine state poisoned")
    }

    fn caller<T>(&self, request: &Request<T>) -> Caller {
        Caller::of(request, &self.groups)
    }
}

fn not_loaded() -> Status {
    Status::failed_precondition("no cluster configuration loaded")
}

#[tonic::async_trait]
impl EngineApi for EngineService {
    async fn ha_config(&self, request: Request<api::Empty>) -> Reply<api::HaConfigReply> {
        self.caller(&request).require_component("HaConfig")?;
        let core = self.core();
        let cluster = core
            .cluster
            .as_ref()
            .ok_or_else(|| Status::failed_precondition("cluster configuration not loaded"))?;
        let node_ip = core.node.node_ipv4;
        let node = cluster
            .node_by_ipv4(node_ip)
            .ok_or_else(|| Status::failed_precondition(format!("node {node_ip} not configured")))?;
        Ok(Response::new(api::HaConfigReply {
            enabled: node.state != seesaw_config::model::NodeState::Disabled,
            local_addr: node_ip.to_string(),
            remote_addr: core.node.engine.vrrp_destination.to_string(),
            priority: u32::from(node.priority),
            vrid: u32::from(core.node.vrid),
        }))
    }

    async fn ha_update(&self, request: Request<api::HaStatus>) -> Reply<api::HaUpdateReply> {
        self.caller(&request).require_component("HaUpdate")?;
        let status = snapshot::ha_status_from(request.get_ref());
        let failover_requested = self.core().ha_update(status);
        Ok(Response::new(api::HaUpdateReply { failover_requested }))
    }

    async fn ha_state(&self, request: Request<api::HaStateRequest>) -> Reply<api::Empty> {
        self.caller(&request).require_component("HaState")?;
        let state = snapshot::ha_state_from(request.get_ref().state());
        self.core().ha_state(state);
        Ok(Response::new(api::Empty {}))
    }

    async fn healthchecks(&self, request: Request<api::Empty>) -> Reply<api::HealthcheckList> {
        self.caller(&request).require_component("Healthchecks")?;
        let core = self.core();
        Ok(Response::new(api::HealthcheckList {
            checks: core.probes.values().map(snapshot::healthcheck).collect(),
        }))
    }

    async fn health_state(&self, request: Request<api::HealthStateBatch>) -> Reply<api::Empty> {
        self.caller(&request).require_component("HealthState")?;
        let results: Vec<_> = request
            .get_ref()
            .notifications
            .iter()
            .map(|n| (n.id, snapshot::check_state_from(n.state())))
            .collect();
        self.core().check_results(results);
        let mut last = self.results.lock().expect("results poisoned");
        for notification in &request.get_ref().notifications {
            last.insert(notification.id, notification.clone());
        }
        Ok(Response::new(api::Empty {}))
    }

    async fn check_status(&self, request: Request<api::Empty>) -> Reply<api::CheckStatusList> {
        self.caller(&request).require_read("CheckStatus")?;
        let core = self.core();
        let mut results = self.results.lock().expect("results poisoned");
        results.retain(|id, _| core.probes.contains_key(id));
        Ok(Response::new(snapshot::check_status(&core, &results)))
    }

    async fn access_grants(&self, request: Request<api::Empty>) -> Reply<api::AccessGrantList> {
        self.caller(&request).require_read("AccessGrants")?;
        let core = self.core();
        let cluster = core.cluster.as_ref().ok_or_else(not_loaded)?;
        Ok(Response::new(snapshot::access_grants(cluster)))
    }

    async fn cluster_status(&self, request: Request<api::Empty>) -> Reply<api::ClusterStatusReply> {
        self.caller(&request).require_read("ClusterStatus")?;
        let core = self.core();
        let cluster = core.cluster.as_ref().ok_or_else(not_loaded)?;
        Ok(Response::new(snapshot::cluster_status(cluster)))
    }

    async fn config_status(&self, request: Request<api::Empty>) -> Reply<api::ConfigStatusReply> {
        self.caller(&request).require_read("ConfigStatus")?;
        let (last_attempt, last_errors) = self.config.last_attempt();
        let core = self.core();
        let cluster = core.cluster.as_ref().ok_or_else(not_loaded)?;
        let mut info = core.config.clone();
        info.source = self.config.source();
        info.last_attempt = last_attempt;
        info.last_errors = last_errors;
        Ok(Response::new(snapshot::config_status(Some(cluster), &info)))
    }

    async fn ha_status_get(&self, request: Request<api::Empty>) -> Reply<api::HaStatus> {
        self.caller(&request).require_read("HaStatus")?;
        Ok(Response::new(snapshot::ha_status(&self.core().ha.status())))
    }

    async fn bgp_neighbors(&self, request: Request<api::Empty>) -> Reply<api::BgpNeighborList> {
        self.caller(&request).require_read("BgpNeighbors")?;
        Ok(Response::new(self.core().bgp_neighbors.clone()))
    }

    async fn vlans(&self, request: Request<api::Empty>) -> Reply<api::VlanList> {
        self.caller(&request).require_read("Vlans")?;
        let core = self.core();
        let cluster = core.cluster.as_ref().ok_or_else(not_loaded)?;
        Ok(Response::new(snapshot::vlans(cluster)))
    }

    async fn vservers(&self, request: Request<api::Empty>) -> Reply<api::VserverList> {
        self.caller(&request).require_read("Vservers")?;
        Ok(Response::new(snapshot::vservers(&self.core())))
    }

    async fn backends(&self, request: Request<api::Empty>) -> Reply<api::BackendList> {
        self.caller(&request).require_read("Backends")?;
        Ok(Response::new(snapshot::backends(&self.core())))
    }

    async fn config_reload(&self, request: Request<api::Empty>) -> Reply<api::Empty> {
        let caller = self.caller(&request);
        caller.require_write("ConfigReload")?;
        self.config.reload().map_err(Status::failed_precondition)?;
        tracing::info!("config reload requested by {caller}");
        Ok(Response::new(api::Empty {}))
    }

    async fn config_source(
        &self,
        request: Request<api::ConfigSourceRequest>,
    ) -> Reply<api::ConfigSourceReply> {
        let caller = self.caller(&request);
        let source = request.get_ref().source.clone();
        if source.is_empty() {
            caller.require_read("ConfigSource")?;
            return Ok(Response::new(api::ConfigSourceReply {
                previous: self.config.source(),
            }));
        }
        caller.require_write("ConfigSource")?;
        let previous = self
            .config
            .set_source(&source)
            .map_err(Status::invalid_argument)?;
        tracing::info!("config source set to {source} (was {previous}) by {caller}");
        Ok(Response::new(api::ConfigSourceReply { previous }))
    }

    async fn failover(&self, request: Request<api::Empty>) -> Reply<api::Empty> {
        let caller = self.caller(&request);
        caller.require_write("Failover")?;
        let requested = self.core().request_failover();
        let (error, peer) = match (requested, &self.peer) {
            (Ok(()), _) => {
                tracing::info!("failover requested by {caller}");
                return Ok(Response::new(api::Empty {}));
            }
            (Err(error @ FailoverError::NotMaster(_)), Some(peer)) => (error, peer.clone()),
            (Err(error), _) => return Err(Status::failed_precondition(error.to_string())),
        };
        match peer.failover().await {
            Ok(address) => {
                tracing::info!("failover requested by {caller}, passed to the master {address}");
                Ok(Response::new(api::Empty {}))
            }
            Err(peer_error) => {
                tracing::warn!(
                    "failover requested by {caller}: {error}, and the peer did not fail over: {peer_error}"
                );
                Err(Status::failed_precondition(format!(
                    "{error}, and the peer did not fail over: {peer_error}"
                )))
            }
        }
    }

    async fn override_vserver(&self, request: Request<api::VserverOverride>) -> Reply<api::Empty> {
        let caller = self.caller(&request);
        let message = request.get_ref();
        let mut core = self.core();
        let reason = caller
            .may_override_vserver(core.cluster.as_deref(), &message.vserver)
            .inspect_err(|_| {
                tracing::warn!(
                    "Vserver override on \"{}\" denied for {caller}",
                    message.vserver
                );
            })?;
        tracing::info!(
            "Vserver override for \"{}\" requested by {caller} ({reason})",
            message.vserver
        );
        core.override_state(Override::Vserver {
            vserver: message.vserver.clone(),
            state: snapshot::override_state_from(message.state()),
        });
        Ok(Response::new(api::Empty {}))
    }

    async fn override_backend(&self, request: Request<api::BackendOverride>) -> Reply<api::Empty> {
        let caller = self.caller(&request);
        caller.require_write("OverrideBackend")?;
        let message = request.get_ref();
        if message.hostname.is_empty() {
            return Err(Status::invalid_argument("backend is empty"));
        }
        tracing::info!(
            "backend override for \"{}\" requested by {caller}",
            message.hostname
        );
        self.core().override_state(Override::Backend {
            hostname: message.hostname.clone(),
            state: snapshot::override_state_from(message.state()),
        });
        Ok(Response::new(api::Empty {}))
    }

    async fn override_destination(
        &self,
        request: Request<api::DestinationOverride>,
    ) -> Reply<api::Empty> {
        let caller = self.caller(&request);
        caller.require_write("OverrideDestination")?;
        let message = request.get_ref();
        if message.destination.is_empty() {
            return Err(Status::invalid_argument("destination is empty"));
        }
        tracing::info!(
            "destination override for \"{}\" requested by {caller}",
            message.destination
        );
        self.core().override_state(Override::Destination {
            vserver: message.vserver.clone(),
            destination: message.destination.clone(),
            state: snapshot::override_state_from(message.state()),
        });
        Ok(Response::new(api::Empty {}))
    }
}
