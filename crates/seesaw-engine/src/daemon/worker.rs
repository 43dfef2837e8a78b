//! The kernel worker: brings the kernel, through the NCC, to the state the
//! engine wants, and keeps trying until it is there.
//!
//! The core publishes a [`Target`] on a watch channel: the VLANs and the
//! LB interface state as values, and the kernel state as a queue of
//! changes, each a list of actions from the engine. The worker keeps its
//! own copy of the wanted kernel state by applying every change to it.
//! After a round that succeeded, it sends each new change's actions and
//! nothing else. So an event costs NCC calls and worker time in proportion
//! to what it changed, and a reload of an unchanged config sends nothing.
//!
//! When a call fails, that knowledge is dropped: after a pause the worker
//! reads the kernel back through the NCC and sends the difference between
//! what it finds and its copy of the wanted state. The first round after
//! start does the same from the state read at start. The worker never
//! gives up and never exits on an NCC error.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ipnet::IpNet;
use seesaw_config::model::{Vip, VipType, Vlan};
use tokio::sync::watch;

use super::ncc::{IpvsChange, LbOperation, Ncc, NccError, Observed};
use crate::kernel::VserverRules;
use crate::kernel::{self, Action, KernelState, diff};

/// What the engine wants the kernel to hold.
///
/// The watch channel contains one value, which the core changes in place.
/// The worker reads the VLANs and the LB state from it and drains the
/// kernel changes from its queue, which the core and the worker share.
#[derive(Debug, Clone, Default)]
pub struct Target {
    /// Changes of the wanted kernel state not yet taken by the worker.
    pub kernel: KernelChanges,
    pub vlans: BTreeMap<u16, Vlan>,
    /// Whether the LB interface should be up; `None` leaves it as it is
    /// (before seesaw_ha has reported a state).
    pub lb_up: Option<bool>,
    /// Counts the changes of the target, so that callers can tell when
    /// the worker has applied a given one.
    pub version: u64,
}

/// One change of the wanted kernel state.
#[derive(Debug, Clone, PartialEq)]
pub enum KernelChange {
    /// The whole state, as at start.
    Replace(Arc<KernelState>),
    /// The actions that turn the previous state into the next, in order.
    Apply(Vec<Action>),
}

/// A queue of [`KernelChange`]s, oldest first; clones share the queue.
#[derive(Debug, Clone, Default)]
pub struct KernelChanges(Arc<Mutex<Vec<KernelChange>>>);

impl KernelChanges {
    /// Appends a change.
    pub fn push(&self, change: KernelChange) {
        self.0.lock().expect("kernel changes poisoned").push(change);
    }

    /// Removes and returns every queued change.
    pub fn take(&self) -> Vec<KernelChange> {
        std::mem::take(&mut *self.0.lock().expect("kernel changes poisoned"))
    }
}

/// Progress and errors of the worker, for the rest of the engine.
#[derive(Debug, Default)]
pub struct WorkerStatus {
    /// Changes sent to the NCC since start, IPVS changes counted one by
    /// one.
    pub changes: AtomicU64,
    /// Targets fully applied since start.
    pub converged: AtomicU64,
    /// The version of the last target fully applied.
    pub applied: AtomicU64,
    /// Failed rounds since start.
    pub failures: AtomicU64,
    /// The last failure, cleared when a round succeeds.
    pub last_error: std::sync::Mutex<Option<String>>,
}

impl WorkerStatus {
    pub fn last_error(&self) -> Option<String> {
        self.last_error.lock().expect("status poisoned").clone()
    }
}

/// The worker's copy of the target: the wanted kernel state with every
/// queued change applied.
#[derive(Debug, Default)]
struct Wanted {
    kernel: KernelState,
    vlans: BTreeMap<u16, Vlan>,
    lb_up: Option<bool>,
    version: u64,
}

/// The worker's belief of the kernel state.
#[derive(Debug)]
struct Belief {
    kernel: KernelBelief,
    vlans: BTreeMap<u16, VlanBelief>,
    lb_up: Option<bool>,
}

/// The worker's belief of one VLAN interface.
#[derive(Debug)]
enum VlanBelief {
    /// Created by the worker for this VLAN.
    Created(Vlan),
    /// Read back through the NCC with these addresses.
    Observed(BTreeSet<IpNet>),
}

impl VlanBelief {
    /// Returns whether the interface carries the node's addresses that
    /// `vlan` gives it.
    fn matches(&self, vlan: &Vlan) -> bool {
        match self {
            VlanBelief::Created(created) => {
                created.host.ipv4 == vlan.host.ipv4 && created.host.ipv6 == vlan.host.ipv6
            }
            VlanBelief::Observed(addresses) => {
                vlan.host.addresses().all(|net| addresses.contains(&net))
            }
        }
    }
}

#[derive(Debug)]
enum KernelBelief {
    /// The wanted state before the changes whose actions are `unsent`.
    Wanted { unsent: Vec<Action> },
    /// A state read back through the NCC.
    Observed(KernelState),
}

impl Belief {
    fn from_observed(observed: &Observed, wanted: &Wanted) -> Self {
        let vlans = observed
            .vlans
            .iter()
            .map(|(id, addresses)| (*id, VlanBelief::Observed(addresses.clone())))
            .collect();
        Belief {
            kernel: KernelBelief::Observed(observed_kernel(observed, wanted)),
            vlans,
            lb_up: Some(observed.lb_up),
        }
    }
}

/// Returns the kernel state that `observed` shows, in the terms of
/// `wanted`. The NCC lists the node's own address on each VLAN with the
/// VIPs, so the addresses the wanted VLANs give the node are left out, or
/// the worker would delete them as stale VIPs.
fn observed_kernel(observed: &Observed, wanted: &Wanted) -> KernelState {
    let mut kernel = observed.state.to_kernel_state();
    kernel.vips = normalise_vips(&kernel.vips, &wanted.kernel.vips);
    let vlan_addresses: BTreeSet<IpAddr> = wanted
        .vlans
        .values()
        .flat_map(|vlan| vlan.host.addresses())
        .map(|net| net.addr())
        .collect();
    kernel.vips.retain(|vip| !vlan_addresses.contains(&vip.ip));
    kernel
}

/// Gives observed dummy-interface VIPs the type the target has for the
/// same address, because the NCC cannot tell anycast from dedicated ones.
fn normalise_vips(observed: &BTreeSet<Vip>, wanted: &BTreeSet<Vip>) -> BTreeSet<Vip> {
    observed
        .iter()
        .map(|vip| {
            if vip.vip_type == VipType::Unicast {
                return *vip;
            }
            wanted
                .iter()
                .find(|w| w.ip == vip.ip && w.vip_type != VipType::Unicast)
                .copied()
                .unwrap_or(*vip)
        })
        .collect()
}

/// Pauses between failed rounds: 1 s doubling up to 30 s.
fn backoff(failures: u32) -> Duration {
    Duration::from_secs(1u64 << failures.min(5)).min(Duration::from_secs(30))
}

/// Takes the current target: copies its values and applies its queued
/// kernel changes to `wanted`. While `belief` is the wanted state, the
/// actions also go to it to be sent. A replaced state makes the worker
/// read the kernel back.
fn take_target(
    target: &mut watch::Receiver<Target>,
    wanted: &mut Wanted,
    belief: &mut Option<Belief>,
) {
    // The version and the changes are read under one borrow, and the core
    // queues changes only under the channel's lock, so the version read
    // covers every change taken. The changes are applied after the borrow
    // ends, so that the core can publish meanwhile.
    let changes = {
        let current = target.borrow_and_update();
        wanted.vlans = current.vlans.clone();
        wanted.lb_up = current.lb_up;
        wanted.version = current.version;
        current.kernel.take()
    };
    for change in changes {
        match change {
            KernelChange::Replace(state) => {
                wanted.kernel = Arc::unwrap_or_clone(state);
                if let Some(Belief {
                    kernel: KernelBelief::Wanted { .. },
                    ..
                }) = belief
                {
                    *belief = None;
                }
            }
            KernelChange::Apply(actions) => {
                kernel::apply(&mut wanted.kernel, &actions);
                if let Some(Belief {
                    kernel: KernelBelief::Wanted { unsent },
                    ..
                }) = belief
                {
                    unsent.extend(actions);
                }
            }
        }
    }
}

/// Runs until `target` is closed. `observed` is what the NCC read back at
/// start.
pub async fn run<N: Ncc>(
    ncc: N,
    observed: Observed,
    mut target: watch::Receiver<Target>,
    status: Arc<WorkerStatus>,
) {
    let mut wanted = Wanted::default();
    take_target(&mut target, &mut wanted, &mut None);
    let mut belief = Some(Belief::from_observed(&observed, &wanted));
    let mut failures = 0u32;
    loop {
        let current = match belief.take() {
            Some(current) => Ok(current),
            None => ncc
                .observe()
                .await
                .map(|observed| Belief::from_observed(&observed, &wanted)),
        };
        let sent_before = status.changes.load(Ordering::Relaxed);
        let result = match current {
            Ok(mut current) => {
                let result = converge(&ncc, &mut current, &wanted, &status).await;
                if result.is_ok() {
                    belief = Some(current);
                }
                result
            }
            Err(error) => Err(error),
        };
        match result {
            Ok(()) => {
                failures = 0;
                let sent = status.changes.load(Ordering::Relaxed) - sent_before;
                if sent > 0 {
                    tracing::info!("sent {sent} changes to the NCC");
                }
                status.converged.fetch_add(1, Ordering::Relaxed);
                status.applied.store(wanted.version, Ordering::Relaxed);
                *status.last_error.lock().expect("status poisoned") = None;
                if target.changed().await.is_err() {
                    return;
                }
            }
            Err(error) => {
                failures += 1;
                status.failures.fetch_add(1, Ordering::Relaxed);
                let pause = backoff(failures);
                tracing::error!(
                    "failed to bring the kernel to the wanted state: {error}; reading it back and retrying in {pause:?}"
                );
                *status.last_error.lock().expect("status poisoned") = Some(error.0);
                tokio::select! {
                    _ = tokio::time::sleep(pause) => {}
                    changed = target.changed() => if changed.is_err() { return },
                }
            }
        }
        take_target(&mut target, &mut wanted, &mut belief);
    }
}

/// Sends what brings the kernel from `current` to `wanted`, and on
/// success leaves `current` holding `wanted`. On failure `current` is
/// left as far as it got, and the caller drops it.
async fn converge<N: Ncc>(
    ncc: &N,
    current: &mut Belief,
    wanted: &Wanted,
    status: &WorkerStatus,
) -> Result<(), NccError> {
    let count = |n: u64| status.changes.fetch_add(n, Ordering::Relaxed);
    // A failed LB interface or VLAN call must not hold back IPVS and the
    // VIPs: the error is kept, the rest goes on, and the round fails at
    // the end so that it is retried.
    let mut errors = Vec::new();
    if let Some(up) = wanted.lb_up
        && current.lb_up != Some(up)
    {
        let operation = if up {
            LbOperation::Up
        } else {
            LbOperation::Down
        };
        count(1);
        match ncc.lb(operation).await {
            Ok(()) => current.lb_up = Some(up),
            Err(error) => errors.push(error.0),
        }
    }
    // A VLAN interface without the node's addresses of the config is
    // deleted and created again, which takes the VIPs on it away too.
    let mut recreated = false;
    for (id, vlan) in &wanted.vlans {
        match current.vlans.get(id) {
            Some(belief) if belief.matches(vlan) => continue,
            Some(_) => {
                count(1);
                if let Err(error) = ncc.delete_vlan(*id).await {
                    errors.push(error.0);
                    continue;
                }
                current.vlans.remove(id);
                recreated = true;
            }
            None => {}
        }
        count(1);
        match ncc.add_vlan(vlan.clone()).await {
            Ok(()) => {
                current.vlans.insert(*id, VlanBelief::Created(vlan.clone()));
            }
            Err(error) => errors.push(error.0),
        }
    }
    if recreated {
        // The kernel is read back, so that the VIPs the re-created
        // interfaces lost are added again.
        let observed = ncc.observe().await?;
        current.kernel = KernelBelief::Observed(observed_kernel(&observed, wanted));
    }

    let belief = std::mem::replace(
        &mut current.kernel,
        KernelBelief::Wanted { unsent: Vec::new() },
    );
    let actions = match belief {
        KernelBelief::Wanted { unsent } => unsent,
        KernelBelief::Observed(kernel) => diff(&kernel, &wanted.kernel),
    };
    send(ncc, actions, status).await?;

    let stale: Vec<u16> = current
        .vlans
        .keys()
        .filter(|id| !wanted.vlans.contains_key(id))
        .copied()
        .collect();
    for id in stale {
        count(1);
        match ncc.delete_vlan(id).await {
            Ok(()) => {
                current.vlans.remove(&id);
            }
            Err(error) => errors.push(error.0),
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(NccError(errors.join("; ")))
    }
}

/// A run of consecutive actions of one kind, sent in one NCC call.
enum Batch {
    Ipvs(Vec<IpvsChange>),
    Rules(Vec<(VserverRules, bool)>),
    Vips(Vec<(Vip, bool)>),
}

impl Batch {
    fn len(&self) -> usize {
        match self {
            Batch::Ipvs(changes) => changes.len(),
            Batch::Rules(changes) => changes.len(),
            Batch::Vips(changes) => changes.len(),
        }
    }

    /// Adds `action` when it is of this batch's kind; otherwise gives it
    /// back.
    fn push(&mut self, action: Action) -> Option<Action> {
        match (self, action) {
            (Batch::Ipvs(changes), action) => match ipvs_change(&action) {
                Some(change) => changes.push(change),
                None => return Some(action),
            },
            (Batch::Rules(changes), Action::AddVserverRules(rules)) => changes.push((rules, true)),
            (Batch::Rules(changes), Action::DeleteVserverRules(rules)) => {
                changes.push((rules, false))
            }
            (Batch::Vips(changes), Action::AddVip(vip)) => changes.push((vip, true)),
            (Batch::Vips(changes), Action::DeleteVip(vip)) => changes.push((vip, false)),
            (_, action) => return Some(action),
        }
        None
    }

    /// Returns an empty batch of `action`'s kind, or `None` for an action
    /// that is sent alone.
    fn for_action(action: &Action) -> Option<Batch> {
        match action {
            Action::AddVserverRules(_) | Action::DeleteVserverRules(_) => {
                Some(Batch::Rules(Vec::new()))
            }
            Action::AddVip(_) | Action::DeleteVip(_) => Some(Batch::Vips(Vec::new())),
            _ if ipvs_change(action).is_some() => Some(Batch::Ipvs(Vec::new())),
            _ => None,
        }
    }

    async fn send<N: Ncc>(self, ncc: &N, status: &WorkerStatus) -> Result<(), NccError> {
        status
            .changes
            .fetch_add(self.len() as u64, Ordering::Relaxed);
        match self {
            Batch::Ipvs(changes) => batch_result("IPVS", &ncc.ipvs(changes).await?),
            Batch::Rules(changes) => {
                batch_result("iptables rule", &ncc.rules_batch(changes).await?)
            }
            Batch::Vips(changes) => batch_result("VIP", &ncc.vips(changes).await?),
        }
    }
}

/// Sends `actions` in order. Consecutive actions of one kind (IPVS
/// changes, iptables rules, VIPs) go out as one batch call; the order of
/// the actions holds.
async fn send<N: Ncc>(
    ncc: &N,
    actions: Vec<Action>,
    status: &WorkerStatus,
) -> Result<(), NccError> {
    let mut batch: Option<Batch> = None;
    for action in actions {
        let action = match batch.as_mut() {
            Some(open) => match open.push(action) {
                None => continue,
                Some(action) => action,
            },
            None => action,
        };
        if let Some(full) = batch.take() {
            full.send(ncc, status).await?;
        }
        if let Some(mut next) = Batch::for_action(&action) {
            next.push(action);
            batch = Some(next);
            continue;
        }
        status.changes.fetch_add(1, Ordering::Relaxed);
        match action {
            Action::WithdrawVip(ip) => ncc.bgp(ip, false).await?,
            Action::AdvertiseVip(ip) => ncc.bgp(ip, true).await?,
            _ => {}
        }
    }
    if let Some(last) = batch {
        last.send(ncc, status).await?;
    }
    Ok(())
}

/// Turns a batch's failures into one error naming the first few.
fn batch_result(what: &str, failures: &[(usize, String)]) -> Result<(), NccError> {
    if failures.is_empty() {
        return Ok(());
    }
    let first_failures: Vec<String> = failures
        .iter()
        .take(5)
        .map(|(index, error)| format!("change {index}: {error}"))
        .collect();
    Err(NccError(format!(
        "{} {what} changes failed: {}",
        failures.len(),
        first_failures.join("; ")
    )))
}

fn ipvs_change(action: &Action) -> Option<IpvsChange> {
    Some(match action {
        Action::AddService(service) => IpvsChange::AddService(service.clone()),
        Action::UpdateService(service) => IpvsChange::UpdateService(service.clone()),
        Action::DeleteService(key) => IpvsChange::DeleteService(*key),
        Action::AddDestination {
            service,
            destination,
        } => IpvsChange::AddDestination(*service, destination.clone()),
        Action::UpdateDestination {
            service,
            destination,
        } => IpvsChange::UpdateDestination(*service, destination.clone()),
        Action::DeleteDestination {
            service,
            destination,
        } => IpvsChange::DeleteDestination(*service, destination.clone()),
        _ => return None,
    })
}
