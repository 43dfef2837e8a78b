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

/// Builds probes from every vserver's checks. Identical probes are shared,
/// and every vserver that uses one receives its results, even when two
/// vservers have the very same check key.
#[derive(Debug, Clone)]
pub struct CheckManager {
    next_id: ProbeId,
    probes: BTreeMap<ProbeKey, Probe>,
    subscribers: BTreeMap<ProbeId, BTreeSet<Subscriber>>,
    marks: MarkPool,
    /// DSR or TUN mark per backend and mode.
    backend_marks: BTreeMap<(IpAddr, HealthcheckMode), u32>,
    warnings: Vec<String>,
}

impl CheckManager {
    /// Creates an empty manager whose first probe id is `id_seed`. Seeding
    /// from the process id keeps ids from repeating across restarts.
    pub fn new(id_seed: ProbeId) -> Self {
        CheckManager {
            next_id: id_seed,
            probes: BTreeMap::new(),
            subscribers: BTreeMap::new(),
            marks: MarkPool::for_checks(),
            backend_marks: BTreeMap::new(),
            warnings: Vec::new(),
        }
    }

    /// Replaces the wanted checks: `checks` maps each vserver to its checks.
    /// Probes whose key survives keep their id and mark.
    pub fn update(&mut self, checks: &BTreeMap<String, BTreeMap<CheckKey, CheckConfig>>) {
        let mut probes = BTreeMap::new();
        let mut subscribers: BTreeMap<ProbeId, BTreeSet<Subscriber>> = BTreeMap::new();
        let mut used_marks = BTreeMap::new();
        self.warnings.clear();

        for (vserver, vserver_checks) in checks {
            for (key, config) in vserver_checks {
                if let Some(reason) = config.invalid_reason() {
                    self.warnings.push(format!(
                        "{vserver}: check {} not run: {reason}",
                        config.name
                    ));
                    continue;
                }
                let probe_key = ProbeKey {
                    key: key.dedup(),
                    config: config.clone(),
                };
                let probe = match probes.get(&probe_key) {
                    Some(probe) => probe,
                    None => {
                        let Some(probe) = self.build_probe(&probe_key, key, &mut used_marks) else {
                            self.warnings.push(format!(
                                "{vserver}: check {} not run: no free DSR/TUN marks",
                                config.name
                            ));
                            continue;
                        };
                        probes.entry(probe_key).or_insert(probe)
                    }
                };
                subscribers
                    .entry(probe.id)
                    .or_default()
                    .insert((vserver.clone(), key.clone()));
            }
        }

        for (backend_mode, mark) in &self.backend_marks {
            if !used_marks.contains_key(backend_mode) {
                self.marks.release(*mark);
            }
        }
        self.backend_marks = used_marks;
        self.probes = probes;
        self.subscribers = subscribers;
    }

    fn build_probe(
        &mut self,
        probe_key: &ProbeKey,
        key: &CheckKey,
        used_marks: &mut BTreeMap<(IpAddr, HealthcheckMode), u32>,
    ) -> Option<Probe> {
        let mut mark = 0;
        if key.mode != HealthcheckMode::Plain {
            let backend_mode = (key.backend, key.mode);
            mark = match used_marks.get(&backend_mode) {
                Some(mark) => *mark,
                None => {
                    let mark = match self.backend_marks.get(&backend_mode) {
                        Some(mark) => *mark,
                        None => self.marks.allocate()?,
                    };
                    used_marks.insert(backend_mode, mark);
                    mark
                }
            };
        }
        let id = match self.probes.get(probe_key) {
            Some(existing) => existing.id,
            None => {
                let id = self.next_id;
                self.next_id += 1;
                id
            }
        };
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

    /// Returns why some checks are not run.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// Returns the fwmark services that steer DSR and TUN probes: one per
    /// backend and mode, with the backend as its only destination.
    pub fn mark_services(&self) -> BTreeMap<ServiceId, KernelService> {
        let mut services = BTreeMap::new();
        for ((backend, mode), mark) in &self.backend_marks {
            let id = ServiceId::Fwmark {
                family: Family::of(*backend),
                mark: *mark,
            };
            let service = Service::new(id.key(), Scheduler::Rr);
            let mut destination = Destination::new(SocketAddr::new(*backend, 0));
            destination.weight = 1;
            destination.forward = match mode {
                HealthcheckMode::Tun => ForwardMethod::Tunnel,
                _ => ForwardMethod::DirectRoute,
            };
            services.insert(
                id,
                KernelService {
                    service,
                    destinations: BTreeMap::from([(*backend, destination)]),
                },
            );
        }
        services
    }
}
