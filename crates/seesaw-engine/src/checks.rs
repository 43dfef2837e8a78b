//! Health check identities, and the manager that turns every vserver's
//! checks into the set of probes the healthcheck component runs.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use seesaw_config::model::{Healthcheck, HealthcheckMode, HealthcheckType, Protocol};
use seesaw_ipvs::{Destination, ForwardMethod, Scheduler, Service};

use crate::kernel::{Family, KernelService, ServiceId};
use crate::marks::MarkPool;

/// The identity of one check of one destination within a vserver.
/// Vserver-level checks have port 0 and no protocol, so every service on
/// the same VIP shares them.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct CheckKey {
    /// The VIP, or `None` in the deduplicated form of a PLAIN check.
    pub vip: Option<IpAddr>,
    pub backend: IpAddr,
    /// The entry's port, or 0 for a vserver-level check.
    pub service_port: u16,
    /// The entry's protocol, or `None` for a vserver-level check.
    pub service_protocol: Option<Protocol>,
    pub mode: HealthcheckMode,
    pub check_type: HealthcheckType,
    pub check_port: u16,
    pub name: String,
}

impl CheckKey {
    /// Returns the key under which identical probes are shared: the name
    /// is dropped, and PLAIN checks also drop the VIP and service because
    /// they probe the backend's own address.
    pub fn dedup(&self) -> CheckKey {
        let mut key = self.clone();
        key.name.clear();
        if key.mode == HealthcheckMode::Plain {
            key.vip = None;
            key.service_port = 0;
            key.service_protocol = None;
        }
        key
    }
}

/// A health check's settings, orderable so it can be part of a map key.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct CheckConfig {
    pub name: String,
    pub check_type: HealthcheckType,
    pub mode: HealthcheckMode,
    pub port: u16,
    pub interval: Duration,
    pub timeout: Duration,
    pub retries: u32,
    pub send: String,
    pub receive: String,
    pub code: i32,
    pub method: String,
    pub proxy: bool,
    pub tls_verify: bool,
}

impl From<&Healthcheck> for CheckConfig {
    fn from(check: &Healthcheck) -> Self {
        CheckConfig {
            name: check.name.clone(),
            check_type: check.check_type,
            mode: check.mode,
            port: check.port,
            interval: check.interval,
            timeout: check.timeout,
            retries: check.retries,
            send: check.send.clone(),
            receive: check.receive.clone(),
            code: check.code,
            method: check.method.clone(),
            proxy: check.proxy,
            tls_verify: check.tls_verify,
        }
    }
}

impl CheckConfig {
    /// Returns why the healthcheck component cannot run this check, if it
    /// cannot: these are the configs its checker constructors reject.
    pub fn invalid_reason(&self) -> Option<String> {
        match self.check_type {
            HealthcheckType::Icmp if self.mode != HealthcheckMode::Plain => {
                Some("ICMP health checks cannot be used with DSR or TUN mode".to_string())
            }
            HealthcheckType::Dns if self.method.is_empty() => {
                Some("DNS health check has no query type in method".to_string())
            }
            HealthcheckType::Radius if self.send.split(':').count() != 3 => {
                Some("RADIUS health check send must be user:password:secret".to_string())
            }
            _ => None,
        }
    }
}

/// The state of a check as the healthcheck component reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum CheckState {
    #[default]
    Unknown,
    Unhealthy,
    Healthy,
}

/// The id of a probe, stable while its [`ProbeKey`] exists.
pub type ProbeId = u64;

/// The identity of a probe: the deduplicated check key and the full config.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ProbeKey {
    pub key: CheckKey,
    pub config: CheckConfig,
}

/// One probe for the healthcheck component to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    pub id: ProbeId,
    /// Address probed: the backend for PLAIN, the VIP for DSR and TUN.
    pub target: IpAddr,
    /// The backend's address.
    pub host: IpAddr,
    /// The mark that steers a DSR or TUN probe to its backend, or 0 for PLAIN.
    pub mark: u32,
    pub config: CheckConfig,
}

/// A subscriber to a probe's results: a vserver and its check key.
pub type Subscriber = (String, CheckKey);

/// A backend address and check mode that a DSR or TUN mark steers to.
type MarkOwner = (IpAddr, HealthcheckMode);

/// The probes and mark services that one [`CheckManager::update`] changed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CheckChanges {
    /// Probes removed, by id in ascending order.
    pub stopped: Vec<ProbeId>,
    /// Probes added, by id in ascending order.
    pub started: Vec<Probe>,
    /// Mark services added (`Some`) or removed (`None`); see
    /// [`CheckManager::mark_services`].
    pub mark_services: Vec<(ServiceId, Option<KernelService>)>,
}

/// Builds probes from every vserver's checks. Identical probes are shared,
/// and every vserver that uses one receives its results, even when two
/// vservers have the very same check key.
///
/// Updates are per vserver, with the outcome a rebuild of every probe from
/// every vserver in name order would have:
/// - a probe whose key survives an update keeps its id and mark, even when
///   one vserver drops it in the same update as another takes it up;
/// - new probes take ids in the order of (vserver name, check key);
/// - marks return to the pool only after the update, in (backend, mode)
///   order;
/// - a vserver whose check found no free mark is tried again on every
///   update.
#[derive(Debug, Clone)]
pub struct CheckManager {
    next_id: ProbeId,
    probes: BTreeMap<ProbeKey, Probe>,
    subscribers: BTreeMap<ProbeId, BTreeSet<Subscriber>>,
    /// The checks of each vserver that runs checks, as last updated.
    vserver_checks: BTreeMap<String, BTreeMap<CheckKey, CheckConfig>>,
    marks: MarkPool,
    /// DSR or TUN mark per backend and mode.
    backend_marks: BTreeMap<MarkOwner, u32>,
    /// Number of probes using each mark in `backend_marks`.
    mark_users: BTreeMap<MarkOwner, usize>,
    /// Vservers with a check that found no free DSR/TUN mark.
    starved: BTreeSet<String>,
    /// Warnings about checks that are not run, by vserver.
    warnings: BTreeMap<String, Vec<String>>,
}

impl CheckManager {
    /// Creates an empty manager whose first probe id is `id_seed`. Seeding
    /// from the process id keeps ids from repeating across restarts.
    pub fn new(id_seed: ProbeId) -> Self {
        Self::with_marks(id_seed, MarkPool::for_checks())
    }

    /// Creates an empty manager that takes DSR and TUN marks from `marks`.
    pub fn with_marks(id_seed: ProbeId, marks: MarkPool) -> Self {
        CheckManager {
            next_id: id_seed,
            probes: BTreeMap::new(),
            subscribers: BTreeMap::new(),
            vserver_checks: BTreeMap::new(),
            marks,
            backend_marks: BTreeMap::new(),
            mark_users: BTreeMap::new(),
            starved: BTreeSet::new(),
            warnings: BTreeMap::new(),
        }
    }

    /// Replaces the checks of the vservers in `changed`. `Some` contains a
    /// vserver's checks, and `None` stops them (a removed or disabled
    /// vserver). Vservers not named keep theirs. Returns the probes and
    /// mark services that changed.
    pub fn update(
        &mut self,
        changed: &BTreeMap<String, Option<&BTreeMap<CheckKey, CheckConfig>>>,
    ) -> CheckChanges {
        let mut updates: BTreeMap<String, Option<BTreeMap<CheckKey, CheckConfig>>> =
            BTreeMap::new();
        for (vserver, checks) in changed {
            if self.vserver_checks.get(vserver) == *checks && !self.starved.contains(vserver) {
                continue;
            }
            updates.insert(vserver.clone(), checks.cloned());
        }
        for vserver in &self.starved {
            if !changed.contains_key(vserver) {
                let checks = self.vserver_checks.get(vserver).cloned();
                updates.insert(vserver.clone(), checks);
            }
        }

        let mut orphans = BTreeSet::new();
        for vserver in updates.keys() {
            self.unsubscribe(vserver, &mut orphans);
        }

        let mut changes = CheckChanges::default();
        for (vserver, checks) in updates {
            let Some(checks) = checks else {
                continue;
            };
            for (key, config) in &checks {
                self.subscribe(&vserver, key, config, &mut changes);
            }
            self.vserver_checks.insert(vserver, checks);
        }

        self.remove_orphans(orphans, &mut changes);
        changes.stopped.sort_unstable();
        changes.started.sort_unstable_by_key(|probe| probe.id);
        changes
    }

    /// Drops the subscriptions of `vserver`, its warnings and its stored
    /// checks. Probes left without subscribers go into `orphans`, which are
    /// removed after the update. So a probe that another vserver takes up
    /// in the same update keeps its id.
    fn unsubscribe(&mut self, vserver: &str, orphans: &mut BTreeSet<ProbeKey>) {
        self.warnings.remove(vserver);
        self.starved.remove(vserver);
        let Some(checks) = self.vserver_checks.remove(vserver) else {
            return;
        };
        for (key, config) in checks {
            let probe_key = ProbeKey {
                key: key.dedup(),
                config,
            };
            let Some(probe) = self.probes.get(&probe_key) else {
                continue;
            };
            let Some(subscribers) = self.subscribers.get_mut(&probe.id) else {
                continue;
            };
            subscribers.remove(&(vserver.to_string(), key));
            if subscribers.is_empty() {
                orphans.insert(probe_key);
            }
        }
    }

    /// Subscribes `vserver` to the probe of one of its checks, building the
    /// probe when it does not exist yet.
    fn subscribe(
        &mut self,
        vserver: &str,
        key: &CheckKey,
        config: &CheckConfig,
        changes: &mut CheckChanges,
    ) {
        if let Some(reason) = config.invalid_reason() {
            self.warn(vserver, format!("check {} not run: {reason}", config.name));
            return;
        }
        let probe_key = ProbeKey {
            key: key.dedup(),
            config: config.clone(),
        };
        let id = match self.probes.get(&probe_key) {
            Some(probe) => probe.id,
            None => {
                let Some(probe) = self.build_probe(&probe_key, changes) else {
                    self.starved.insert(vserver.to_string());
                    self.warn(
                        vserver,
                        format!("check {} not run: no free DSR/TUN marks", config.name),
                    );
                    return;
                };
                let id = probe.id;
                changes.started.push(probe.clone());
                self.probes.insert(probe_key, probe);
                id
            }
        };
        self.subscribers
            .entry(id)
            .or_default()
            .insert((vserver.to_string(), key.clone()));
    }

    fn warn(&mut self, vserver: &str, warning: String) {
        self.warnings
            .entry(vserver.to_string())
            .or_default()
            .push(format!("{vserver}: {warning}"));
    }

    /// Builds a new probe, taking the mark of its backend and mode or a
    /// free one; `None` when no mark is free.
    fn build_probe(&mut self, probe_key: &ProbeKey, changes: &mut CheckChanges) -> Option<Probe> {
        let key = &probe_key.key;
        let mut mark = 0;
        if key.mode != HealthcheckMode::Plain {
            let owner = (key.backend, key.mode);
            mark = match self.backend_marks.get(&owner) {
                Some(mark) => *mark,
                None => {
                    let mark = self.marks.allocate()?;
                    self.backend_marks.insert(owner, mark);
                    let (id, service) = mark_service(owner, mark);
                    changes.mark_services.push((id, Some(service)));
                    mark
                }
            };
            *self.mark_users.entry(owner).or_default() += 1;
        }
        let id = self.next_id;
        self.next_id += 1;
        let target = match key.mode {
            HealthcheckMode::Plain => key.backend,
            HealthcheckMode::Dsr | HealthcheckMode::Tun => key.vip.unwrap_or(key.backend),
        };
        Some(Probe {
            id,
            target,
            host: key.backend,
            mark,
            config: probe_key.config.clone(),
        })
    }

    /// Removes the probes in `orphans` that still have no subscriber, then
    /// returns the marks no probe uses any more to the pool, in (backend,
    /// mode) order.
    fn remove_orphans(&mut self, orphans: BTreeSet<ProbeKey>, changes: &mut CheckChanges) {
        let mut unused_marks = BTreeSet::new();
        for probe_key in orphans {
            let Some(id) = self.probes.get(&probe_key).map(|probe| probe.id) else {
                continue;
            };
            if self.subscribers.get(&id).is_some_and(|s| !s.is_empty()) {
                continue;
            }
            self.subscribers.remove(&id);
            self.probes.remove(&probe_key);
            changes.stopped.push(id);
            if probe_key.key.mode == HealthcheckMode::Plain {
                continue;
            }
            let owner = (probe_key.key.backend, probe_key.key.mode);
            if let Some(users) = self.mark_users.get_mut(&owner) {
                *users -= 1;
                if *users == 0 {
                    unused_marks.insert(owner);
                }
            }
        }
        for owner in unused_marks {
            self.mark_users.remove(&owner);
            if let Some(mark) = self.backend_marks.remove(&owner) {
                self.marks.release(mark);
                let (id, _) = mark_service(owner, mark);
                changes.mark_services.push((id, None));
            }
        }
    }

    /// Returns the probes, ordered by key.
    pub fn probes(&self) -> impl Iterator<Item = &Probe> {
        self.probes.values()
    }

    /// Returns who receives the results of probe `id`.
    pub fn subscribers(&self, id: ProbeId) -> impl Iterator<Item = &Subscriber> {
        self.subscribers.get(&id).into_iter().flatten()
    }

    /// Returns the DSR/TUN marks in use, per backend and mode.
    pub fn marks(&self) -> &BTreeMap<(IpAddr, HealthcheckMode), u32> {
        &self.backend_marks
    }

    /// Returns why some checks are not run, by vserver name.
    pub fn warnings(&self) -> impl Iterator<Item = &String> {
        self.warnings.values().flatten()
    }

    /// Returns the fwmark services that steer DSR and TUN probes: one per
    /// backend and mode, with the backend as its only destination.
    pub fn mark_services(&self) -> BTreeMap<ServiceId, KernelService> {
        self.backend_marks
            .iter()
            .map(|(owner, mark)| mark_service(*owner, *mark))
            .collect()
    }
}

/// Builds the fwmark service of one DSR or TUN mark: the backend is its
/// only destination.
pub fn mark_service(
    (backend, mode): (IpAddr, HealthcheckMode),
    mark: u32,
) -> (ServiceId, KernelService) {
    let id = ServiceId::Fwmark {
        family: Family::of(backend),
        mark,
    };
    let service = Service::new(id.key(), Scheduler::Rr);
    let mut destination = Destination::new(SocketAddr::new(backend, 0));
    destination.weight = 1;
    destination.forward = match mode {
        HealthcheckMode::Tun => ForwardMethod::Tunnel,
        _ => ForwardMethod::DirectRoute,
    };
    let service = KernelService {
        service,
        destinations: BTreeMap::from([(backend, destination)]),
    };
    (id, service)
}
