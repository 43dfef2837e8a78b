//! The kernel worker: brings the kernel, through the NCC, to the state the
//! engine wants, and keeps trying until it is there.
//!
//! The engine publishes a [`Target`]; the worker compares it with what it
//! believes the kernel holds and sends only the difference, so a reload of
//! an unchanged config sends nothing. When a call fails, the belief is
//! dropped: after a pause the worker reads the kernel back through the NCC
//! and converges from what it finds. It never gives up and never exits on
//! an NCC error.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use seesaw_config::model::{Vip, VipType, Vlan};
use tokio::sync::watch;

use super::ncc::{IpvsChange, LbOperation, Ncc, NccError, Observed};
use crate::kernel::{Action, KernelState, diff};

/// What the engine wants the kernel to hold.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Target {
    pub kernel: Arc<KernelState>,
    pub vlans: BTreeMap<u16, Vlan>,
    /// Whether the LB interface should be up; `None` leaves it as it is
    /// (before seesaw_ha has reported a state).
    pub lb_up: Option<bool>,
    /// Counts the changes of the target, so that callers can tell when
    /// the worker has applied a given one.
    pub version: u64,
}

/// What the worker reports to the rest of the engine.
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

/// What the worker believes the kernel holds.
#[derive(Debug, Clone)]
struct Belief {
    kernel: KernelState,
    vlans: BTreeSet<u16>,
    lb_up: Option<bool>,
}

impl Belief {
    fn from_observed(observed: &Observed, target: &Target) -> Self {
        let mut kernel = observed.state.to_kernel_state();
        kernel.vips = normalise_vips(&kernel.vips, &target.kernel.vips);
        Belief {
            kernel,
            vlans: observed.vlans.clone(),
            lb_up: Some(observed.lb_up),
        }
    }
}

/// The NCC reads VIPs on the dummy interface back without telling anycast
/// from dedicated ones; take the type the target gives the same address.
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

/// Runs until `target` is closed. `observed` is what the NCC read back at
/// start.
pub async fn run<N: Ncc>(
    ncc: N,
    observed: Observed,
    mut target: watch::Receiver<Target>,
    status: Arc<WorkerStatus>,
) {
    let mut belief = Some(Belief::from_observed(&observed, &target.borrow()));
    let mut failures = 0u32;
    loop {
        let wanted = target.borrow_and_update().clone();
        let current = match belief.take() {
            Some(current) => Ok(current),
            None => ncc
                .observe()
                .await
                .map(|observed| Belief::from_observed(&observed, &wanted)),
        };
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
    }
}

/// Sends the difference between `current` and `wanted`, updating
/// `current` as far as it got.
async fn converge<N: Ncc>(
    ncc: &N,
    current: &mut Belief,
    wanted: &Target,
    status: &WorkerStatus,
) -> Result<(), NccError> {
    let count = |n: u64| status.changes.fetch_add(n, Ordering::Relaxed);
    if let Some(up) = wanted.lb_up
        && current.lb_up != Some(up)
    {
        let operation = if up {
            LbOperation::Up
        } else {
            LbOperation::Down
        };
        count(1);
        ncc.lb(operation).await?;
        current.lb_up = Some(up);
    }
    for (id, vlan) in &wanted.vlans {
        if !current.vlans.contains(id) {
            count(1);
            ncc.add_vlan(vlan.clone()).await?;
            current.vlans.insert(*id);
        }
    }

    let actions = diff(&current.kernel, &wanted.kernel);
    let mut batch = Vec::new();
    for action in actions {
        if let Some(change) = ipvs_change(&action) {
            batch.push(change);
            continue;
        }
        flush(ncc, &mut batch, status).await?;
        count(1);
        match action {
            Action::WithdrawVip(ip) => ncc.bgp(ip, false).await?,
            Action::AdvertiseVip(ip) => ncc.bgp(ip, true).await?,
            Action::DeleteVip(vip) => ncc.vip(vip, false).await?,
            Action::AddVip(vip) => ncc.vip(vip, true).await?,
            Action::DeleteVserverRules(rules) => ncc.rules(rules, false).await?,
            Action::AddVserverRules(rules) => ncc.rules(rules, true).await?,
            _ => {}
        }
    }
    flush(ncc, &mut batch, status).await?;
    current.kernel = (*wanted.kernel).clone();

    let stale: Vec<u16> = current
        .vlans
        .iter()
        .filter(|id| !wanted.vlans.contains_key(id))
        .copied()
        .collect();
    for id in stale {
        count(1);
        ncc.delete_vlan(id).await?;
        current.vlans.remove(&id);
    }
    Ok(())
}

async fn flush<N: Ncc>(
    ncc: &N,
    batch: &mut Vec<IpvsChange>,
    status: &WorkerStatus,
) -> Result<(), NccError> {
    if batch.is_empty() {
        return Ok(());
    }
    let changes = std::mem::take(batch);
    status
        .changes
        .fetch_add(changes.len() as u64, Ordering::Relaxed);
    let failures = ncc.ipvs(changes).await?;
    if failures.is_empty() {
        return Ok(());
    }
    let shown: Vec<String> = failures
        .iter()
        .take(5)
        .map(|(index, error)| format!("change {index}: {error}"))
        .collect();
    Err(NccError(format!(
        "{} IPVS changes failed: {}",
        failures.len(),
        shown.join("; ")
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
