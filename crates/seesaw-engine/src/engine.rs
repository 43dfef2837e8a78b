//! The engine's state machine over all vservers: events in, actions out.

use std::collections::{BTreeMap, BTreeSet};

use seesaw_config::model::Vserver;

use crate::checks::{CheckConfig, CheckKey, CheckManager, CheckState, Probe, ProbeId};
use crate::expand::{Expansion, expand};
use crate::health::evaluate;
use crate::kernel::{Action, Family, KernelState, diff};
use crate::marks::MarkPool;
use crate::overrides::{Override, Overrides};
use crate::reconcile::{ObservedState, reconcile};

/// Settings of this node that the state machine needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EngineOptions {
    /// Advertise healthy anycast VIPs over BGP.
    pub anycast_enabled: bool,
    /// First probe id; see [`CheckManager::new`].
    pub probe_id_seed: ProbeId,
}

/// An input to the state machine.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// The vservers this node serves, by name; a missing name stops it.
    Config(BTreeMap<String, Vserver>),
    /// A result of a probe started by [`Action::StartCheck`].
    CheckResult {
        probe: ProbeId,
        state: CheckState,
    },
    /// Many results at once, as seesaw_healthcheck batches them; the
    /// vservers are evaluated once for the whole batch.
    CheckResults(Vec<(ProbeId, CheckState)>),
    Override(Override),
}

/// The state of one vserver.
#[derive(Debug, Clone, PartialEq)]
pub struct VserverState {
    pub config: Vserver,
    /// Effective enabled state, after the vserver override.
    pub enabled: bool,
    pub fwmarks: BTreeMap<Family, u32>,
    pub expansion: Expansion,
    pub check_states: BTreeMap<CheckKey, CheckState>,
    pub service_health: BTreeMap<crate::kernel::ServiceId, bool>,
    /// VIP addresses that are up.
    pub active_vips: Vec<std::net::IpAddr>,
}

/// The engine's vserver state machine.
#[derive(Debug, Clone)]
pub struct Engine {
    options: EngineOptions,
    vservers: BTreeMap<String, VserverState>,
    overrides: Overrides,
    fwmarks: MarkPool,
    checks: CheckManager,
    desired: KernelState,
    warnings: Vec<String>,
}

impl Engine {
    pub fn new(options: EngineOptions) -> Self {
        Engine {
            options,
            vservers: BTreeMap::new(),
            overrides: Overrides::default(),
            fwmarks: MarkPool::for_vservers(),
            checks: CheckManager::new(options.probe_id_seed),
            desired: KernelState::default(),
            warnings: Vec::new(),
        }
    }

    /// Handles one event and returns the actions that bring the kernel and
    /// the healthcheck component from the previous state to the new one.
    pub fn handle(&mut self, event: Event) -> Vec<Action> {
        let old_probes = self.probe_map();
        match event {
            Event::Config(vservers) => self.apply_config(vservers),
            Event::CheckResult { probe, state } => self.apply_result(probe, state),
            Event::CheckResults(results) => {
                for (probe, state) in results {
                    self.apply_result(probe, state);
                }
            }
            Event::Override(request) => {
                self.overrides.store(request);
                self.expand_all();
            }
        }
        let old = std::mem::take(&mut self.desired);
        self.evaluate_all();
        let mut actions = probe_actions(&old_probes, &self.probe_map());
        actions.extend(diff(&old, &self.desired));
        actions
    }

    /// Starts the engine over a kernel that is already programmed, for a
    /// restart that must not flush IPVS. Destinations found in the kernel
    /// that the configuration still describes are taken as healthy until
    /// their first result, so they keep serving. Returns the actions that
    /// converge the kernel and start every probe.
    pub fn start(
        &mut self,
        vservers: BTreeMap<String, Vserver>,
        observed: &ObservedState,
    ) -> Vec<Action> {
        self.apply_config(vservers);
        let observed_state = observed.to_kernel_state();
        for state in self.vservers.values_mut() {
            if !state.enabled {
                continue;
            }
            for (id, service) in &state.expansion.services {
                let Some(kernel) = observed_state.services.get(id) else {
                    continue;
                };
                if !kernel.service.same_settings(&service.ipvs) {
                    continue;
                }
                state.service_health.insert(*id, true);
                for destination in service.destinations.values() {
                    if !kernel.destinations.contains_key(&destination.address) {
                        continue;
                    }
                    for key in &destination.checks {
                        let check = state.check_states.entry(key.clone()).or_default();
                        if *check == CheckState::Unknown {
                            *check = CheckState::Healthy;
                        }
                    }
                }
            }
        }
        self.evaluate_all();
        let mut actions = probe_actions(&BTreeMap::new(), &self.probe_map());
        actions.extend(reconcile(&self.desired, observed));
        actions
    }

    /// Returns what the engine wants programmed now.
    pub fn desired(&self) -> &KernelState {
        &self.desired
    }

    pub fn vserver(&self, name: &str) -> Option<&VserverState> {
        self.vservers.get(name)
    }

    /// Every vserver by name.
    pub fn vservers(&self) -> impl Iterator<Item = (&String, &VserverState)> {
        self.vservers.iter()
    }

    pub fn probes(&self) -> impl Iterator<Item = &Probe> {
        self.checks.probes()
    }

    pub fn overrides(&self) -> &Overrides {
        &self.overrides
    }

    /// Returns what the last event could not apply: exhausted marks and
    /// checks the healthcheck component cannot run.
    pub fn warnings(&self) -> Vec<String> {
        let mut warnings = self.warnings.clone();
        warnings.extend(self.checks.warnings().iter().cloned());
        warnings
    }

    fn apply_config(&mut self, vservers: BTreeMap<String, Vserver>) {
        let removed: Vec<String> = self
            .vservers
            .keys()
            .filter(|name| !vservers.contains_key(*name))
            .cloned()
            .collect();
        for name in removed {
            if let Some(state) = self.vservers.remove(&name) {
                for mark in state.fwmarks.values() {
                    self.fwmarks.release(*mark);
                }
            }
        }
        for (name, config) in vservers {
            match self.vservers.get_mut(&name) {
                Some(state) => state.config = config,
                None => {
                    self.vservers.insert(
                        name,
                        VserverState {
                            config,
                            enabled: false,
                            fwmarks: BTreeMap::new(),
                            expansion: Expansion::default(),
                            check_states: BTreeMap::new(),
                            service_health: BTreeMap::new(),
                            active_vips: Vec::new(),
                        },
                    );
                }
            }
        }
        self.expand_all();
    }

    /// Re-expands every vserver after a config or override change. Check
    /// states and service health survive for keys that still exist.
    fn expand_all(&mut self) {
        self.warnings.clear();
        for (name, state) in &mut self.vservers {
            state.enabled = self.overrides.vserver_enabled(name, state.config.enabled);
            assign_fwmarks(state, &mut self.fwmarks, &mut self.warnings);
            state.expansion = expand(&state.config, &state.fwmarks, &self.overrides);
            if !state.enabled {
                // Disabled vservers run no checks, so their results start
                // over at Unknown when they are enabled again.
                state.check_states.clear();
                state.service_health.clear();
                continue;
            }
            let checks = &state.expansion.checks;
            state.check_states.retain(|key, _| checks.contains_key(key));
            let services = &state.expansion.services;
            state
                .service_health
                .retain(|id, _| services.contains_key(id));
        }

        let wanted: BTreeMap<String, BTreeMap<CheckKey, CheckConfig>> = self
            .vservers
            .iter()
            .filter(|(_, state)| state.enabled)
            .map(|(name, state)| (name.clone(), state.expansion.checks.clone()))
            .collect();
        self.checks.update(&wanted);
    }

    fn apply_result(&mut self, probe: ProbeId, state: CheckState) {
        let subscribers: Vec<(String, CheckKey)> =
            self.checks.subscribers(probe).cloned().collect();
        for (vserver, key) in subscribers {
            if let Some(vserver_state) = self.vservers.get_mut(&vserver) {
                vserver_state.check_states.insert(key, state);
            }
        }
    }

    /// Evaluates every vserver and merges what they want. When two
    /// vservers want the same IPVS service, the first by name wins.
    fn evaluate_all(&mut self) {
        let mut desired = KernelState {
            services: self.checks.mark_services(),
            ..KernelState::default()
        };
        for state in self.vservers.values_mut() {
            let evaluation = evaluate(
                &state.expansion,
                &state.config.vips,
                state.enabled,
                &state.check_states,
                &state.service_health,
                self.options.anycast_enabled,
            );
            state.service_health = evaluation.service_health;
            state.active_vips = evaluation.active_vips;
            let kernel = evaluation.kernel;
            for (id, service) in kernel.services {
                desired.services.entry(id).or_insert(service);
            }
            desired.vips.extend(kernel.vips);
            desired.rules.extend(kernel.rules);
            desired.advertised.extend(kernel.advertised);
        }
        self.desired = desired;
    }

    fn probe_map(&self) -> BTreeMap<ProbeId, Probe> {
        self.checks.probes().map(|p| (p.id, p.clone())).collect()
    }
}

/// Keeps one mark per family with a VIP while the vserver uses fwmark
/// services, and returns the others to the pool.
fn assign_fwmarks(state: &mut VserverState, pool: &mut MarkPool, warnings: &mut Vec<String>) {
    let families: BTreeSet<Family> = if state.config.use_fwm {
        state
            .config
            .vips
            .iter()
            .map(|vip| Family::of(vip.ip))
            .collect()
    } else {
        BTreeSet::new()
    };
    let unused: Vec<Family> = state
        .fwmarks
        .keys()
        .filter(|family| !families.contains(*family))
        .copied()
        .collect();
    for family in unused {
        if let Some(mark) = state.fwmarks.remove(&family) {
            pool.release(mark);
        }
    }
    for family in families {
        if state.fwmarks.contains_key(&family) {
            continue;
        }
        match pool.allocate() {
            Some(mark) => {
                state.fwmarks.insert(family, mark);
            }
            None => warnings.push(format!(
                "{}: no free fwmark for its {family:?} service",
                state.config.name
            )),
        }
    }
}

fn probe_actions(old: &BTreeMap<ProbeId, Probe>, new: &BTreeMap<ProbeId, Probe>) -> Vec<Action> {
    let mut actions = Vec::new();
    for (id, probe) in old {
        if new.get(id) != Some(probe) {
            actions.push(Action::StopCheck(*id));
        }
    }
    for (id, probe) in new {
        if old.get(id) != Some(probe) {
            actions.push(Action::StartCheck(probe.clone()));
        }
    }
    actions
}
