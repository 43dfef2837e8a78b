//! The engine daemon's state: the vserver state machine, the HA state, the
//! config in force, and the target it publishes for the kernel worker.
//!
//! Every input (a config, a check result, an HA report, an override) is a
//! method call under one lock; each ends by publishing the new target,
//! which the worker turns into NCC calls outside the lock.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::SystemTime;

use seesaw_config::model::{Cluster, NodeState, Vserver};
use seesaw_config::node_config::NodeConfig;
use seesaw_ipvs::{Destination, Service};
use seesaw_vrrp::HaState;
use tokio::sync::watch;

use super::worker::Target;
use crate::checks::{CheckState, Probe, ProbeId};
use crate::engine::{Engine, EngineOptions, Event};
use crate::ha::{FailoverError, HaManager, HaStatus, Transition};
use crate::kernel::ServiceId;
use crate::overrides::Override;
use crate::reconcile::ObservedState;

/// Where the config in force came from, and how the last attempt went.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConfigInfo {
    pub source: String,
    pub source_detail: String,
    /// When the config in force was applied.
    pub applied: Option<SystemTime>,
    pub last_attempt: Option<SystemTime>,
    /// Why the last attempt failed; empty when it did not.
    pub last_errors: Vec<String>,
    /// Warnings of the config in force.
    pub warnings: Vec<String>,
}

/// IPVS counters by service, refreshed periodically for the snapshots.
pub type ServiceStats = HashMap<ServiceId, (Service, BTreeMap<IpAddr, Destination>)>;

/// The daemon's state behind its lock.
pub struct Core {
    pub node: NodeConfig,
    pub engine: Engine,
    pub cluster: Option<Arc<Cluster>>,
    pub config: ConfigInfo,
    pub ha: HaManager,
    /// IPVS counters from the last listing.
    pub stats: ServiceStats,
    /// The probes by id, as last published to seesaw_healthcheck.
    pub probes: BTreeMap<ProbeId, Probe>,
    /// BGP neighbours as the NCC last listed them.
    pub bgp_neighbors: seesaw_ipc::engine_proto::BgpNeighborList,
    target: watch::Sender<Target>,
    lb_up: Option<bool>,
}

impl Core {
    pub fn new(node: NodeConfig, now: SystemTime, target: watch::Sender<Target>) -> Self {
        let options = EngineOptions {
            anycast_enabled: node.anycast_enabled,
            probe_id_seed: (u64::from(std::process::id()) & 0xffff) << 48,
        };
        let ha = HaManager::new(now, node.engine.ha_state_timeout);
        Core {
            node,
            engine: Engine::new(options),
            cluster: None,
            config: ConfigInfo::default(),
            ha,
            stats: HashMap::new(),
            probes: BTreeMap::new(),
            bgp_neighbors: Default::default(),
            target,
            lb_up: None,
        }
    }

    /// Applies the first config over a kernel that may already serve it:
    /// destinations found programmed keep serving until checked.
    pub fn start(&mut self, cluster: Arc<Cluster>, info: ConfigInfo, observed: &ObservedState) {
        let vservers = self.accept(cluster, info);
        self.engine.start(vservers, observed);
        self.publish();
    }

    /// Applies a new config.
    pub fn apply_config(&mut self, cluster: Arc<Cluster>, info: ConfigInfo) {
        let vservers = self.accept(cluster, info);
        self.engine.handle(Event::Config(vservers));
        self.publish();
    }

    /// Records a config that failed to load; the one in force stays.
    pub fn config_failed(&mut self, errors: Vec<String>, now: SystemTime) {
        self.config.last_attempt = Some(now);
        self.config.last_errors = errors;
    }

    /// Stores the cluster and returns the vservers this node serves.
    fn accept(&mut self, cluster: Arc<Cluster>, info: ConfigInfo) -> BTreeMap<String, Vserver> {
        self.config = info;
        self.cluster = Some(cluster.clone());
        let now = SystemTime::now();
        let Some(node) = cluster.node_by_ipv4(self.node.node_ipv4) else {
            tracing::error!(
                "node {} not configured in the cluster config; vservers stay as they are",
                self.node.node_ipv4
            );
            return self
                .engine
                .vservers()
                .map(|(name, state)| (name.clone(), state.config.clone()))
                .collect();
        };
        let transition = self.ha.set_enabled(node.state != NodeState::Disabled, now);
        self.transition(transition);
        if !node.vservers_enabled {
            tracing::info!("vservers are disabled on this node");
            return BTreeMap::new();
        }
        cluster.vservers.clone()
    }

    /// Applies a batch of results; ids of probes that no longer exist are
    /// ignored.
    pub fn check_results(&mut self, results: impl IntoIterator<Item = (ProbeId, CheckState)>) {
        let known: Vec<_> = results
            .into_iter()
            .filter(|(probe, _)| self.probes.contains_key(probe))
            .collect();
        if known.is_empty() {
            return;
        }
        self.engine.handle(Event::CheckResults(known));
        self.publish();
    }

    pub fn override_state(&mut self, request: Override) {
        self.engine.handle(Event::Override(request));
        self.publish();
    }

    pub fn ha_state(&mut self, state: HaState) {
        let transition = self.ha.set_state(state, SystemTime::now());
        self.transition(transition);
        self.publish();
    }

    /// Records a status report; returns whether a failover was requested.
    pub fn ha_update(&mut self, status: HaStatus) -> bool {
        let (transition, failover) = self.ha.update(status, SystemTime::now());
        self.transition(transition);
        self.publish();
        failover
    }

    pub fn ha_expire(&mut self) {
        let transition = self.ha.expire(SystemTime::now());
        if transition != Transition::None {
            self.transition(transition);
            self.publish();
        }
    }

    pub fn request_failover(&mut self) -> Result<(), FailoverError> {
        self.ha.request_failover()
    }

    fn transition(&mut self, transition: Transition) {
        match transition {
            Transition::None => {}
            Transition::BecomeMaster => {
                tracing::info!("becoming master: bringing the LB interface up");
                self.lb_up = Some(true);
            }
            Transition::BecomeBackup => {
                tracing::info!("becoming backup: bringing the LB interface down");
                self.lb_up = Some(false);
            }
        }
    }

    /// Publishes the target for the kernel worker; the worker only wakes
    /// when it differs from the last one.
    fn publish(&mut self) {
        self.probes = self
            .engine
            .probes()
            .map(|probe| (probe.id, probe.clone()))
            .collect();
        let vlans = match &self.cluster {
            Some(cluster) if self.serves_vservers() => cluster.vlans.clone(),
            _ => BTreeMap::new(),
        };
        let kernel = self.engine.desired();
        let lb_up = self.lb_up;
        self.target.send_if_modified(|target| {
            let mut changed = false;
            if *target.kernel != *kernel {
                target.kernel = Arc::new(kernel.clone());
                changed = true;
            }
            if target.vlans != vlans {
                target.vlans = vlans;
                changed = true;
            }
            if target.lb_up != lb_up {
                target.lb_up = lb_up;
                changed = true;
            }
            if changed {
                target.version += 1;
            }
            changed
        });
    }

    /// The version of the last published target; see [`Target::version`].
    pub fn published_version(&self) -> u64 {
        self.target.borrow().version
    }

    fn serves_vservers(&self) -> bool {
        self.cluster
            .as_ref()
            .and_then(|cluster| cluster.node_by_ipv4(self.node.node_ipv4))
            .is_some_and(|node| node.vservers_enabled)
    }

    /// The addresses to announce with gratuitous ARP while master, by
    /// interface: the cluster VIP, and without the VRRP MAC every unicast
    /// IPv4 VIP on the interface that carries it.
    pub fn arp_targets(&self) -> BTreeMap<String, Vec<IpAddr>> {
        let mut targets: BTreeMap<String, Vec<IpAddr>> = BTreeMap::new();
        let lb = self.node.lb_interface.clone();
        if let Some(vip) = self.node.vip_ipv4 {
            targets.entry(lb.clone()).or_default().push(IpAddr::V4(vip));
        }
        if self.node.use_vmac {
            return targets;
        }
        let Some(cluster) = &self.cluster else {
            return targets;
        };
        for vserver in cluster.vservers.values() {
            for vip in &vserver.vips {
                if !vip.ip.is_ipv4() || vip.vip_type != seesaw_config::model::VipType::Unicast {
                    continue;
                }
                let interface = cluster
                    .vlans
                    .values()
                    .find(|vlan| {
                        vlan.host
                            .ipv4
                            .is_some_and(|net| ipnet::IpNet::V4(net).contains(&vip.ip))
                    })
                    .map(|vlan| format!("{lb}.{}", vlan.id))
                    .unwrap_or_else(|| lb.clone());
                targets.entry(interface).or_default().push(vip.ip);
            }
        }
        targets
    }
}
