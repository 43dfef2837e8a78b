//! The engine daemon's state: the vserver state machine, the HA state, the
//! config in force, and the target it publishes for the kernel worker.
//!
//! Every input (a config, a check result, an HA report, an override) is a
//! method call under one lock. Each ends by publishing what changed in the
//! target, which the worker turns into NCC calls outside the lock. The
//! engine's actions travel to the worker as they are, so publishing costs
//! in proportion to the change, not to the size of the kernel state.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::SystemTime;

use seesaw_config::model::{Cluster, NodeState, Vserver};
use seesaw_config::node_config::NodeConfig;
use seesaw_ipvs::{Destination, Service};
use seesaw_vrrp::HaState;
use tokio::sync::watch;

use super::worker::{KernelChange, Target};
use crate::checks::{CheckState, Probe, ProbeId};
use crate::engine::{Engine, EngineOptions, Event};
use crate::ha::{FailoverError, HaManager, HaStatus, Transition};
use crate::kernel::{Action, ServiceId};
use crate::overrides::Override;
use crate::reconcile::ObservedState;

/// Source of the config in force and outcome of the last attempt.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConfigInfo {
    pub source: String,
    pub source_detail: String,
    /// When the config in force was applied.
    pub applied: Option<SystemTime>,
    pub last_attempt: Option<SystemTime>,
    /// Errors of the last attempt; empty when it succeeded.
    pub last_errors: Vec<String>,
    /// Warnings of the config in force.
    pub warnings: Vec<String>,
}

/// The vservers this node serves under a new config.
enum Served {
    /// Every vserver of the cluster.
    Cluster,
    /// None: vservers are disabled on this node.
    Nothing,
    /// Those served now: the node is missing from the cluster.
    Unchanged,
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
    /// Counts the transitions to master and to backup; the daemon resets
    /// the config source at each, as Seesaw does.
    pub transitions: watch::Sender<u64>,
    /// Counts the configs taken, metadata-only changes aside, so that the
    /// BGP task reconfigures bgpd when cluster.pb's BGP settings change.
    pub configs: watch::Sender<u64>,
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
            transitions: watch::Sender::new(0),
            configs: watch::Sender::new(0),
        }
    }

    /// Applies the first config over a kernel that may already serve it:
    /// destinations found programmed keep serving until checked.
    ///
    /// The worker gets the whole desired state and converges to it from
    /// what it read back, so the engine's actions, which are relative to
    /// `observed`, are not sent.
    pub fn start(&mut self, cluster: Arc<Cluster>, info: ConfigInfo, observed: &ObservedState) {
        let vservers = match self.accept(&cluster, info) {
            Served::Cluster => cluster.vservers.clone(),
            Served::Nothing => BTreeMap::new(),
            Served::Unchanged => self.current_vservers(),
        };
        self.engine.start(vservers, observed);
        self.probes = self
            .engine
            .probes()
            .map(|probe| (probe.id, probe.clone()))
            .collect();
        let desired = Arc::new(self.engine.desired().clone());
        self.publish_change(Some(KernelChange::Replace(desired)));
    }

    /// Applies a new config.
    pub fn apply_config(&mut self, cluster: Arc<Cluster>, info: ConfigInfo) {
        // Freeing a large config takes longer than applying a small change
        // of it, so the replaced one is dropped after the worker has the
        // change.
        let replaced = self.cluster.take();
        let actions = match self.accept(&cluster, info) {
            Served::Cluster => self.engine.apply_config(&cluster.vservers),
            Served::Nothing => self.engine.apply_config(&BTreeMap::new()),
            Served::Unchanged => {
                let vservers = self.current_vservers();
                self.engine.handle(Event::Config(vservers))
            }
        };
        self.publish(actions);
        drop(replaced);
    }

    /// Records a config that failed to load; the one in force stays.
    pub fn config_failed(&mut self, errors: Vec<String>, now: SystemTime) {
        self.config.last_attempt = Some(now);
        self.config.last_errors = errors;
    }

    /// Stores the cluster and returns which vservers this node serves.
    fn accept(&mut self, cluster: &Arc<Cluster>, info: ConfigInfo) -> Served {
        self.config = info;
        self.cluster = Some(cluster.clone());
        self.configs.send_modify(|count| *count += 1);
        let now = SystemTime::now();
        let Some(node) = cluster.node_by_ipv4(self.node.node_ipv4) else {
            tracing::error!(
                "node {} not configured in the cluster config; vservers stay as they are",
                self.node.node_ipv4
            );
            return Served::Unchanged;
        };
        let transition = self.ha.set_enabled(node.state != NodeState::Disabled, now);
        self.transition(transition);
        if !node.vservers_enabled {
            tracing::info!("vservers are disabled on this node");
            return Served::Nothing;
        }
        Served::Cluster
    }

    fn current_vservers(&self) -> BTreeMap<String, Vserver> {
        self.engine
            .vservers()
            .map(|(name, state)| (name.clone(), state.config.clone()))
            .collect()
    }

    /// Applies a batch of results; ids of probes that no longer exist are
    /// ignored.
    ///
    /// An UNKNOWN result is ignored: a check reports it only before its
    /// first run, and it must not undo the health a restarted engine
    /// adopted from the destinations it found programmed.
    pub fn check_results(&mut self, results: impl IntoIterator<Item = (ProbeId, CheckState)>) {
        let known: Vec<_> = results
            .into_iter()
            .filter(|(probe, state)| {
                *state != CheckState::Unknown && self.probes.contains_key(probe)
            })
            .collect();
        if known.is_empty() {
            return;
        }
        let actions = self.engine.handle(Event::CheckResults(known));
        self.publish(actions);
    }

    pub fn override_state(&mut self, request: Override) {
        let actions = self.engine.handle(Event::Override(request));
        self.publish(actions);
    }

    pub fn ha_state(&mut self, state: HaState) {
        let transition = self.ha.set_state(state, SystemTime::now());
        self.transition(transition);
        self.publish(Vec::new());
    }

    /// Records a status report; returns whether a failover was requested.
    pub fn ha_update(&mut self, status: HaStatus) -> bool {
        let (transition, failover) = self.ha.update(status, SystemTime::now());
        self.transition(transition);
        self.publish(Vec::new());
        failover
    }

    pub fn ha_expire(&mut self) {
        let transition = self.ha.expire(SystemTime::now());
        if transition != Transition::None {
            self.transition(transition);
            self.publish(Vec::new());
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
                self.transitions.send_modify(|count| *count += 1);
            }
            Transition::BecomeBackup => {
                tracing::info!("becoming backup: bringing the LB interface down");
                self.lb_up = Some(false);
                self.transitions.send_modify(|count| *count += 1);
            }
        }
    }

    /// Carries out the engine's `actions`: the probe changes go into
    /// [`Core::probes`], the kernel changes to the worker.
    fn publish(&mut self, actions: Vec<Action>) {
        let mut kernel = Vec::new();
        for action in actions {
            match action {
                Action::StartCheck(probe) => {
                    self.probes.insert(probe.id, probe);
                }
                Action::StopCheck(id) => {
                    self.probes.remove(&id);
                }
                action => kernel.push(action),
            }
        }
        let change = (!kernel.is_empty()).then_some(KernelChange::Apply(kernel));
        self.publish_change(change);
    }

    /// Publishes the target for the kernel worker with `change` queued;
    /// the worker only wakes when the target changed.
    fn publish_change(&mut self, change: Option<KernelChange>) {
        let vlans = match &self.cluster {
            Some(cluster) if self.serves_vservers() => cluster.vlans.clone(),
            _ => BTreeMap::new(),
        };
        let lb_up = self.lb_up;
        self.target.send_if_modified(|target| {
            let mut changed = false;
            if let Some(change) = change {
                target.kernel.push(change);
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

    /// Returns the addresses to announce with gratuitous ARP while master,
    /// by interface: the cluster VIP, and without the VRRP MAC every unicast
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
