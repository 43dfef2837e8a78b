//! The engine's state machine over all vservers: events in, actions out.
//!
//! The state machine is incremental. An event expands and evaluates only
//! the vservers it touches, the [`CheckManager`] updates the probes of
//! those vservers alone, and [`DesiredState`] merges their contributions
//! and computes the actions from the kernel keys that changed. The actions
//! and the desired state are the same as a pass over every vserver would
//! give, which tests/incremental.rs checks on random event sequences. So
//! an event costs in proportion to what it touches, except that a config
//! event also compares every vserver's config with the one it had.

use std::collections::{BTreeMap, BTreeSet};

use seesaw_config::model::Vserver;

use crate::checks::{
    CheckChanges, CheckConfig, CheckKey, CheckManager, CheckState, Probe, ProbeId,
};
use crate::desired::DesiredState;
use crate::expand::{Expansion, expand};
use crate::health::evaluate;
use crate::kernel::{Action, Family, KernelService, KernelState, ServiceId};
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
    /// Vservers that use fwmark services and lack a mark for a family of
    /// their VIPs; every config and override event tries them again.
    fwmark_starved: BTreeSet<String>,
    /// Vservers with each backend, by the backend's key in the config.
    by_backend: Index,
    /// Vservers by the name in their config, which destination overrides
    /// use.
    by_name: Index,
    checks: CheckManager,
    desired: DesiredState,
    /// Warnings about vservers that got no fwmark, by vserver.
    warnings: BTreeMap<String, Vec<String>>,
}

/// The changes of one event, before the vservers are evaluated.
#[derive(Debug, Default)]
struct Update {
    /// Vservers to evaluate again, including removed ones.
    evaluate: BTreeSet<String>,
    checks: CheckChanges,
}

impl Engine {
    pub fn new(options: EngineOptions) -> Self {
        Engine {
            options,
            vservers: BTreeMap::new(),
            overrides: Overrides::default(),
            fwmarks: MarkPool::for_vservers(),
            fwmark_starved: BTreeSet::new(),
            by_backend: Index::default(),
            by_name: Index::default(),
            checks: CheckManager::new(options.probe_id_seed),
            desired: DesiredState::default(),
            warnings: BTreeMap::new(),
        }
    }

    /// Handles one event and returns the actions that bring the kernel and
    /// the healthcheck component from the previous state to the new one.
    ///
    /// Only the vservers the event touches are expanded and evaluated
    /// again: those whose config differs, those added or removed, those an
    /// override names or reaches through a backend, and the subscribers of
    /// a result. Every other vserver would evaluate to what it wants
    /// already, because evaluation with unchanged inputs is idempotent.
    pub fn handle(&mut self, event: Event) -> Vec<Action> {
        let update = match event {
            Event::Config(vservers) => self.update_config(&vservers),
            Event::CheckResult { probe, state } => {
                let mut update = Update::default();
                self.apply_result(probe, state, &mut update.evaluate);
                update
            }
            Event::CheckResults(results) => {
                let mut update = Update::default();
                for (probe, state) in results {
                    self.apply_result(probe, state, &mut update.evaluate);
                }
                update
            }
            Event::Override(request) => self.update_override(request),
        };
        self.finish(update)
    }

    /// Applies a new config, as [`Event::Config`] does, without taking the
    /// vservers by value: only vservers whose config changed are copied.
    pub fn apply_config(&mut self, vservers: &BTreeMap<String, Vserver>) -> Vec<Action> {
        let update = self.update_config(vservers);
        self.finish(update)
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
        let update = self.update_config(&vservers);
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

        let mut names = update.evaluate;
        names.extend(self.vservers.keys().cloned());
        self.merge(&names, update.checks.mark_services);
        self.desired.forget_changes();

        let mut probes: Vec<&Probe> = self.checks.probes().collect();
        probes.sort_unstable_by_key(|probe| probe.id);
        let mut actions: Vec<Action> = probes
            .into_iter()
            .map(|probe| Action::StartCheck(probe.clone()))
            .collect();
        actions.extend(reconcile(self.desired.state(), observed));
        actions
    }

    /// Returns what the engine wants programmed now.
    pub fn desired(&self) -> &KernelState {
        self.desired.state()
    }

    pub fn vserver(&self, name: &str) -> Option<&VserverState> {
        self.vservers.get(name)
    }

    /// Returns every vserver by name.
    pub fn vservers(&self) -> impl Iterator<Item = (&String, &VserverState)> {
        self.vservers.iter()
    }

    pub fn probes(&self) -> impl Iterator<Item = &Probe> {
        self.checks.probes()
    }

    pub fn overrides(&self) -> &Overrides {
        &self.overrides
    }

    /// Returns what the last config or override event could not apply:
    /// exhausted marks and checks the healthcheck component cannot run.
    pub fn warnings(&self) -> Vec<String> {
        let mut warnings: Vec<String> = self.warnings.values().flatten().cloned().collect();
        warnings.extend(self.checks.warnings().cloned());
        warnings
    }

    /// Evaluates the vservers `update` names, merges what they want and
    /// returns the actions of the event.
    fn finish(&mut self, update: Update) -> Vec<Action> {
        self.merge(&update.evaluate, update.checks.mark_services);
        let mut actions: Vec<Action> = update
            .checks
            .stopped
            .into_iter()
            .map(Action::StopCheck)
            .collect();
        actions.extend(update.checks.started.into_iter().map(Action::StartCheck));
        actions.extend(self.desired.take_actions());
        actions
    }

    /// Stores the new configs, drops removed vservers and expands the
    /// vservers whose config changed.
    fn update_config(&mut self, vservers: &BTreeMap<String, Vserver>) -> Update {
        let (removed, changed) = compare_configs(&self.vservers, vservers);
        let mut dropped = Vec::new();
        let mut update = Update::default();
        for name in removed {
            let Some(state) = self.vservers.remove(&name) else {
                continue;
            };
            for mark in state.fwmarks.values() {
                self.fwmarks.release(*mark);
            }
            self.unindex(&name, &state.config);
            self.fwmark_starved.remove(&name);
            self.warnings.remove(&name);
            dropped.push(name.clone());
            update.evaluate.insert(name);
        }

        let mut expand = self.fwmark_starved.clone();
        for (name, config) in changed {
            match self.vservers.get_mut(name) {
                Some(state) => {
                    let old = std::mem::replace(&mut state.config, config.clone());
                    self.unindex(name, &old);
                }
                None => {
                    self.vservers.insert(
                        name.clone(),
                        VserverState {
                            config: config.clone(),
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
            self.index(name, config);
            expand.insert(name.clone());
        }
        self.expand(&expand, &dropped, &mut update);
        update
    }

    /// Stores an override and expands the vservers it reaches.
    fn update_override(&mut self, request: Override) -> Update {
        let mut expand = self.fwmark_starved.clone();
        match &request {
            Override::Vserver { vserver, .. } => {
                if self.vservers.contains_key(vserver) {
                    expand.insert(vserver.clone());
                }
            }
            Override::Backend { hostname, .. } => expand.extend(self.by_backend.get(hostname)),
            Override::Destination { vserver, .. } => expand.extend(self.by_name.get(vserver)),
        }
        self.overrides.store(request);
        let mut update = Update::default();
        self.expand(&expand, &[], &mut update);
        update
    }

    /// Expands the vservers in `names` again after a config or override
    /// change, and updates their checks and those of the removed vservers
    /// in `removed`. Check states and service health survive for keys that
    /// still exist.
    fn expand(&mut self, names: &BTreeSet<String>, removed: &[String], update: &mut Update) {
        for name in names {
            let Some(state) = self.vservers.get_mut(name) else {
                continue;
            };
            state.enabled = self.overrides.vserver_enabled(name, state.config.enabled);
            let mut warnings = Vec::new();
            assign_fwmarks(state, &mut self.fwmarks, &mut warnings);
            if warnings.is_empty() {
                self.warnings.remove(name);
                self.fwmark_starved.remove(name);
            } else {
                self.warnings.insert(name.clone(), warnings);
                self.fwmark_starved.insert(name.clone());
            }
            state.expansion = expand(&state.config, &state.fwmarks, &self.overrides);
            update.evaluate.insert(name.clone());
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

        let mut check_changes: BTreeMap<String, Option<&BTreeMap<CheckKey, CheckConfig>>> =
            removed.iter().map(|name| (name.clone(), None)).collect();
        for name in names {
            let checks = self
                .vservers
                .get(name)
                .map(|state| Some(&state.expansion.checks).filter(|_| state.enabled));
            if let Some(checks) = checks {
                check_changes.insert(name.clone(), checks);
            }
        }
        update.checks = self.checks.update(&check_changes);
    }

    fn apply_result(&mut self, probe: ProbeId, state: CheckState, touched: &mut BTreeSet<String>) {
        for (vserver, key) in self.checks.subscribers(probe) {
            if let Some(vserver_state) = self.vservers.get_mut(vserver) {
                vserver_state.check_states.insert(key.clone(), state);
                touched.insert(vserver.clone());
            }
        }
    }

    /// Evaluates the vservers in `names` and merges what they want, with
    /// the changed fwmark services of DSR and TUN checks.
    fn merge(
        &mut self,
        names: &BTreeSet<String>,
        mark_services: Vec<(ServiceId, Option<KernelService>)>,
    ) {
        for (id, service) in mark_services {
            self.desired.set_mark_service(id, service);
        }
        for name in names {
            let contribution = match self.vservers.get_mut(name) {
                Some(state) => {
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
                    evaluation.kernel
                }
                None => KernelState::default(),
            };
            self.desired.set_vserver(name, contribution);
        }
    }

    fn index(&mut self, name: &str, config: &Vserver) {
        for backend in config.backends.keys() {
            self.by_backend.insert(backend, name);
        }
        self.by_name.insert(&config.name, name);
    }

    fn unindex(&mut self, name: &str, config: &Vserver) {
        for backend in config.backends.keys() {
            self.by_backend.remove(backend, name);
        }
        self.by_name.remove(&config.name, name);
    }
}

/// Compares the stored configs with `new` in one pass over both maps in
/// name order. Returns the names that are no longer configured, and the
/// vservers that are new or whose config differs.
fn compare_configs<'a>(
    old: &BTreeMap<String, VserverState>,
    new: &'a BTreeMap<String, Vserver>,
) -> (Vec<String>, Vec<(&'a String, &'a Vserver)>) {
    let mut removed = Vec::new();
    let mut changed = Vec::new();
    let mut old = old.iter().peekable();
    for (name, config) in new {
        while let Some((old_name, _)) = old.next_if(|(old_name, _)| *old_name < name) {
            removed.push(old_name.clone());
        }
        match old.next_if(|(old_name, _)| *old_name == name) {
            Some((_, state)) if state.config == *config => {}
            _ => changed.push((name, config)),
        }
    }
    removed.extend(old.map(|(name, _)| name.clone()));
    (removed, changed)
}

/// Vserver names by a term of their config, such as a backend.
#[derive(Debug, Clone, Default)]
struct Index(BTreeMap<String, BTreeSet<String>>);

impl Index {
    fn insert(&mut self, term: &str, vserver: &str) {
        self.0
            .entry(term.to_string())
            .or_default()
            .insert(vserver.to_string());
    }

    fn remove(&mut self, term: &str, vserver: &str) {
        if let Some(vservers) = self.0.get_mut(term) {
            vservers.remove(vserver);
            if vservers.is_empty() {
                self.0.remove(term);
            }
        }
    }

    fn get(&self, term: &str) -> impl Iterator<Item = String> + '_ {
        self.0.get(term).into_iter().flatten().cloned()
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
