//! Reconciliation of the desired state with what the NCC reads back.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use seesaw_config::model::Vip;
use seesaw_ipvs::{Destination, Service};

use crate::kernel::{Action, KernelService, KernelState, ServiceId, VserverRules, diff};

/// The kernel state as read back through the NCC.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObservedState {
    /// Every IPVS service with its destinations, as listed.
    pub services: Vec<(Service, Vec<Destination>)>,
    /// VIPs found on the LB, VLAN and dummy interfaces. The caller leaves
    /// out the node's own addresses.
    pub vips: BTreeSet<Vip>,
    /// The iptables rules, or `None` when they cannot be read back; then
    /// every wanted rule set is added again.
    // NOTE: this assumes the NCC accepts AddVserverRules for rules that
    // already exist; that path has not been run against the NCC.
    pub rules: Option<BTreeMap<(String, IpAddr), VserverRules>>,
    /// Advertised VIPs, or `None` when unknown; then every wanted VIP is
    /// advertised again.
    pub advertised: Option<BTreeSet<IpAddr>>,
}

impl ObservedState {
    /// Converts the listing into a [`KernelState`]; unknown rules and
    /// advertisements count as absent.
    pub fn to_kernel_state(&self) -> KernelState {
        let services = self
            .services
            .iter()
            .map(|(service, destinations)| {
                let destinations = destinations
                    .iter()
                    .map(|d| (d.address.ip(), d.clone()))
                    .collect();
                (
                    ServiceId::from_key(&service.key),
                    KernelService {
                        service: service.clone(),
                        destinations,
                    },
                )
            })
            .collect();
        KernelState {
            services,
            vips: self.vips.clone(),
            rules: self.rules.clone().unwrap_or_default(),
            advertised: self.advertised.clone().unwrap_or_default(),
        }
    }
}

/// Returns the actions that bring the observed kernel to `desired`.
/// Services and destinations whose settings already match are left alone,
/// so traffic through them is not interrupted. Everything in IPVS that the
/// engine does not want is deleted, because IPVS on a Seesaw node belongs
/// to the engine.
pub fn reconcile(desired: &KernelState, observed: &ObservedState) -> Vec<Action> {
    diff(&observed.to_kernel_state(), desired)
}
