//! The kernel state that all vservers want together, kept up to date one
//! vserver at a time.
//!
//! Each vserver's evaluation is kept as its contribution, and the merged
//! state always equals what one pass over all vservers in name order would
//! build:
//! - the fwmark services of DSR and TUN checks come first, and when two
//!   vservers want the same IPVS service, the first by name wins;
//! - a VIP or a BGP advertisement stays while any vserver wants it;
//! - when two vservers want rules under the same (vserver name, address)
//!   key, the last by name wins. The key contains the name in the vserver's
//!   config, which the cluster loader makes equal to its map key, so this
//!   only happens with hand-built configs.
//!
//! Every key whose merged value changes is recorded with its value before
//! the change, so [`DesiredState::take_actions`] computes the actions of an
//! event from the keys it touched, not from the whole state.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use seesaw_config::model::Vip;

use crate::kernel::{Action, Changes, KernelService, KernelState, ServiceId};

/// The merged kernel state with each vserver's contribution.
#[derive(Debug, Clone, Default)]
pub struct DesiredState {
    state: KernelState,
    /// The contribution of each vserver that wants anything.
    contributions: BTreeMap<String, KernelState>,
    /// The vservers that want each service.
    service_claims: BTreeMap<ServiceId, BTreeSet<String>>,
    /// The vservers that want each rule set.
    rule_claims: BTreeMap<(String, IpAddr), BTreeSet<String>>,
    /// The number of vservers that want each VIP.
    vip_claims: BTreeMap<Vip, usize>,
    /// The number of vservers that want each VIP advertised.
    advertised_claims: BTreeMap<IpAddr, usize>,
    /// The fwmark services of DSR and TUN checks, by mark.
    mark_services: BTreeMap<ServiceId, KernelService>,
    /// Keys changed since the last [`DesiredState::take_actions`].
    changes: Changes<'static>,
}

impl DesiredState {
    /// Returns the merged state.
    pub fn state(&self) -> &KernelState {
        &self.state
    }

    /// Returns the actions that turn the state as it was at the last call
    /// into the state now, in the order of [`crate::kernel::diff`].
    pub fn take_actions(&mut self) -> Vec<Action> {
        let changes = std::mem::take(&mut self.changes);
        changes.actions(&self.state)
    }

    /// Forgets the changes since the last [`DesiredState::take_actions`],
    /// for a caller that computes its actions another way.
    pub fn forget_changes(&mut self) {
        self.changes = Changes::default();
    }

    /// Sets or removes (`None`) the fwmark service of a DSR or TUN mark.
    pub fn set_mark_service(&mut self, id: ServiceId, service: Option<KernelService>) {
        match service {
            Some(service) => self.mark_services.insert(id, service),
            None => self.mark_services.remove(&id),
        };
        self.refresh_service(id);
    }

    /// Replaces what vserver `name` wants; an empty state withdraws it.
    pub fn set_vserver(&mut self, name: &str, contribution: KernelState) {
        let old = self.contributions.remove(name).unwrap_or_default();
        if old == contribution {
            if !contribution.is_empty() {
                self.contributions.insert(name.to_string(), contribution);
            }
            return;
        }

        update_counted(
            &mut self.state.vips,
            &mut self.vip_claims,
            &old.vips,
            &contribution.vips,
            |vip, was| self.changes.record_vip(vip, was),
        );
        update_counted(
            &mut self.state.advertised,
            &mut self.advertised_claims,
            &old.advertised,
            &contribution.advertised,
            |ip, was| self.changes.record_advertised(ip, was),
        );

        let rule_keys = update_claims(&mut self.rule_claims, name, &old.rules, &contribution.rules);
        let service_ids = update_claims(
            &mut self.service_claims,
            name,
            &old.services,
            &contribution.services,
        );
        if !contribution.is_empty() {
            self.contributions.insert(name.to_string(), contribution);
        }
        for key in rule_keys {
            self.refresh_rules(key);
        }
        for id in service_ids {
            self.refresh_service(id);
        }
    }

    /// Sets the rules under `key` to those of their last claimant by name.
    fn refresh_rules(&mut self, key: (String, IpAddr)) {
        let winner = self
            .rule_claims
            .get(&key)
            .and_then(|names| names.last())
            .and_then(|name| self.contributions.get(name))
            .and_then(|wanted| wanted.rules.get(&key));
        if self.state.rules.get(&key) == winner {
            return;
        }
        let old = match winner.cloned() {
            Some(rules) => self.state.rules.insert(key.clone(), rules),
            None => self.state.rules.remove(&key),
        };
        self.changes.record_rules(key, old);
    }

    /// Sets service `id` to its mark service, or else to the service of
    /// its first claimant by name.
    fn refresh_service(&mut self, id: ServiceId) {
        let claimed = || {
            self.service_claims
                .get(&id)
                .and_then(|names| names.first())
                .and_then(|name| self.contributions.get(name))
                .and_then(|contribution| contribution.services.get(&id))
        };
        let winner = self.mark_services.get(&id).or_else(claimed);
        if self.state.services.get(&id) == winner {
            return;
        }
        let old = match winner.cloned() {
            Some(service) => self.state.services.insert(id, service),
            None => self.state.services.remove(&id),
        };
        self.changes.record_service(id, old);
    }
}

/// Moves one vserver's claims from the keys in `old` to those in `new`.
/// A key joins `merged` with its first claim and leaves it with its last,
/// and `record` gets each such key with whether it was in `merged` before.
fn update_counted<K: Ord + Copy>(
    merged: &mut BTreeSet<K>,
    claims: &mut BTreeMap<K, usize>,
    old: &BTreeSet<K>,
    new: &BTreeSet<K>,
    mut record: impl FnMut(K, bool),
) {
    for key in old.difference(new) {
        let Some(count) = claims.get_mut(key) else {
            continue;
        };
        *count -= 1;
        if *count == 0 {
            claims.remove(key);
            record(*key, true);
            merged.remove(key);
        }
    }
    for key in new.difference(old) {
        let count = claims.entry(*key).or_default();
        *count += 1;
        if *count == 1 {
            record(*key, false);
            merged.insert(*key);
        }
    }
}

/// Moves `name`'s claims from the keys of `old` to the keys of `new`, and
/// returns every key of either, whose merged value may have changed.
fn update_claims<K: Ord + Clone, V>(
    claims: &mut BTreeMap<K, BTreeSet<String>>,
    name: &str,
    old: &BTreeMap<K, V>,
    new: &BTreeMap<K, V>,
) -> BTreeSet<K> {
    for key in old.keys().filter(|key| !new.contains_key(key)) {
        if let Some(names) = claims.get_mut(key) {
            names.remove(name);
            if names.is_empty() {
                claims.remove(key);
            }
        }
    }
    for key in new.keys().filter(|key| !old.contains_key(key)) {
        claims
            .entry(key.clone())
            .or_default()
            .insert(name.to_string());
    }
    old.keys().chain(new.keys()).cloned().collect()
}
