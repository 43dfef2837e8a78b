//! Many VIP changes in one pass; see `ApplyVips` in the API.
//!
//! Adding or deleting one VIP reads the interfaces, their addresses, the
//! routes and the policy rules back from the kernel, and each of those
//! lists grows with the number of VIPs. A batch reads them once, makes
//! every change, and then reads the routes and rules once more to clean up,
//! so 1,000 VIPs cost a few thousand netlink requests instead of dumps that
//! list about a million objects in all.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::ops::Range;

use futures_util::{StreamExt, stream};
use ipnet::IpNet;
use rtnetlink::IpVersion;

use crate::error::{NccError, Result};
use crate::net::{self, Address, Link, Rule, TABLE_LOCAL, TABLE_MAIN};
use crate::ops::{LbConfig, Ncc, VipKind};

/// One change of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VipChange {
    pub vip: IpAddr,
    pub kind: VipKind,
    /// True to add the VIP, false to delete it.
    pub add: bool,
}

/// The number of VIPs whose requests are in flight at once. The NCC then
/// sends the next request without waiting for each reply.
const IN_FLIGHT: usize = 32;

/// The requests of one change, worked out before any is sent.
enum Plan {
    Add {
        vip: IpAddr,
        link: Link,
        prefix_len: u8,
        node: IpAddr,
        /// The table of the policy rule to add, when it is missing.
        rule_table: Option<u32>,
    },
    Delete {
        vip: IpAddr,
        /// The interfaces that hold the VIP, with its prefix length there.
        addresses: Vec<(Link, u8)>,
    },
}

/// A VIP added in this run, whose local route is checked at the end.
struct Added {
    index: usize,
    vip: IpAddr,
    link: Link,
    node: IpAddr,
    announce: bool,
}

/// A VIP deleted in this run, whose routes and rule go at the end.
struct Deleted {
    index: usize,
    vip: IpAddr,
    kind: VipKind,
}

/// The kernel state a run reads before it changes anything.
struct Snapshot {
    /// The VLAN interfaces, then the LB interface: the order in which a
    /// unicast VIP's interface is chosen.
    unicast_links: Vec<Link>,
    addresses: BTreeMap<u32, Vec<Address>>,
    dummy: Option<Link>,
    /// IPv4 policy rules, read when a unicast IPv4 VIP is added.
    rules: Option<Vec<Rule>>,
}

impl Ncc {
    /// Applies `changes` in order and returns the failed ones by index,
    /// each with an error that names its VIP.
    pub async fn apply_vips(&self, lb: &LbConfig, changes: &[VipChange]) -> Vec<(usize, String)> {
        let mut failures = Vec::new();
        for run in runs(changes) {
            if let Err(error) = self
                .apply_run(lb, changes, run.clone(), &mut failures)
                .await
            {
                for index in run {
                    if !failures.iter().any(|(failed, _)| *failed == index) {
                        failures.push((index, format!("VIP {}: {error}", changes[index].vip)));
                    }
                }
            }
        }
        failures.sort_by_key(|(index, _)| *index);
        failures
    }

    /// Applies `changes[run]`, whose VIPs are all different. Failures of
    /// single changes go to `failures`, and an error fails the changes not
    /// yet reported.
    ///
    /// The interface of each VIP is chosen from one snapshot first. Then
    /// the requests go to the kernel for up to [`IN_FLIGHT`] VIPs at a
    /// time, each VIP's own requests in order.
    async fn apply_run(
        &self,
        lb: &LbConfig,
        changes: &[VipChange],
        run: Range<usize>,
        failures: &mut Vec<(usize, String)>,
    ) -> Result<()> {
        let mut snapshot = self.snapshot(lb).await?;
        let mut plans = Vec::new();
        for index in run {
            let change = changes[index];
            let plan = if change.add {
                self.plan_add(lb, &mut snapshot, change).await
            } else {
                self.plan_delete(lb, &snapshot, change).await
            };
            match plan {
                Ok(plan) => plans.push((index, plan)),
                Err(error) => failures.push((index, format!("VIP {}: {error}", change.vip))),
            }
        }

        let results: Vec<(usize, Plan, Result<()>)> = stream::iter(plans)
            .map(|(index, plan)| async move {
                let result = self.carry_out(&plan).await;
                (index, plan, result)
            })
            .buffer_unordered(IN_FLIGHT)
            .collect()
            .await;
        let mut added = Vec::new();
        let mut deleted = Vec::new();
        for (index, plan, result) in results {
            let vip = changes[index].vip;
            if let Err(error) = result {
                failures.push((index, format!("VIP {vip}: {error}")));
                continue;
            }
            match plan {
                Plan::Add { link, node, .. } => added.push(Added {
                    index,
                    vip,
                    announce: changes[index].kind == VipKind::Unicast && link.up,
                    link,
                    node,
                }),
                Plan::Delete { .. } => deleted.push(Deleted {
                    index,
                    vip,
                    kind: changes[index].kind,
                }),
            }
        }
        added.sort_by_key(|added| added.index);
        self.clean_routes(&added, &deleted, failures).await?;
        self.clean_rules(lb, &deleted, failures).await?;
        self.announce_added(&added, failures);
        Ok(())
    }

    async fn snapshot(&self, lb: &LbConfig) -> Result<Snapshot> {
        let mut unicast_links = self.vlan_links(lb).await?;
        unicast_links.push(self.net.link(&lb.name).await?);
        let mut addresses: BTreeMap<u32, Vec<Address>> = BTreeMap::new();
        for address in self.net.addresses(None).await? {
            addresses.entry(address.index).or_default().push(address);
        }
        Ok(Snapshot {
            unicast_links,
            addresses,
            dummy: None,
            rules: None,
        })
    }

    /// Works out where a VIP goes: its interface, prefix length and node
    /// address, and whether its policy rule is missing.
    async fn plan_add(
        &self,
        lb: &LbConfig,
        snapshot: &mut Snapshot,
        change: VipChange,
    ) -> Result<Plan> {
        let vip = change.vip;
        let node = lb.node_address(vip)?;
        let (link, prefix_len, add_rule) = match change.kind {
            VipKind::Dummy => {
                let dummy = match &snapshot.dummy {
                    Some(dummy) => dummy.clone(),
                    None => {
                        let dummy = self.net.ensure_dummy(&lb.dummy).await?;
                        snapshot.dummy = Some(dummy.clone());
                        dummy
                    }
                };
                (dummy, IpNet::from(vip).max_prefix_len(), false)
            }
            VipKind::Unicast => {
                let (link, prefix_len) = unicast_interface(lb, snapshot, vip)?;
                let mut add_rule = false;
                if link.name == lb.name && vip.is_ipv4() {
                    let rules = match &mut snapshot.rules {
                        Some(rules) => rules,
                        None => snapshot.rules.insert(self.net.rules(IpVersion::V4).await?),
                    };
                    add_rule = !rules.iter().any(|rule| rule.is(Some(vip), None, lb.table));
                }
                (link, prefix_len, add_rule)
            }
        };
        Ok(Plan::Add {
            vip,
            link,
            prefix_len,
            node,
            rule_table: add_rule.then_some(lb.table),
        })
    }

    /// Finds the addresses a VIP has on its candidate interfaces.
    async fn plan_delete(
        &self,
        lb: &LbConfig,
        snapshot: &Snapshot,
        change: VipChange,
    ) -> Result<Plan> {
        let links: Vec<Link> = match change.kind {
            VipKind::Dummy => match &snapshot.dummy {
                Some(dummy) => vec![dummy.clone()],
                None => self.net.find_link(&lb.dummy).await?.into_iter().collect(),
            },
            VipKind::Unicast => snapshot.unicast_links.clone(),
        };
        let mut addresses = Vec::new();
        for link in links {
            let on_link = snapshot.addresses.get(&link.index).into_iter().flatten();
            for address in on_link.filter(|address| address.address == change.vip) {
                addresses.push((link.clone(), address.prefix_len));
            }
        }
        Ok(Plan::Delete {
            vip: change.vip,
            addresses,
        })
    }

    /// Sends one VIP's requests in order.
    async fn carry_out(&self, plan: &Plan) -> Result<()> {
        match plan {
            Plan::Add {
                vip,
                link,
                prefix_len,
                node,
                rule_table,
            } => {
                if let Some(table) = rule_table {
                    self.net.insert_rule(Some(*vip), None, *table).await?;
                }
                self.net.add_address(link, *vip, *prefix_len).await?;
                let description = format!("local {vip} dev {} src {node} table local", link.name);
                self.net
                    .replace_route(net::local_route(*vip, link.index, *node), &description)
                    .await
            }
            Plan::Delete { vip, addresses } => {
                for (link, prefix_len) in addresses {
                    self.net.delete_address(link, *vip, *prefix_len).await?;
                }
                Ok(())
            }
        }
    }

    /// Deletes the local routes of added VIPs that are not the NCC's own,
    /// and every host route of deleted VIPs in tables local and main.
    async fn clean_routes(
        &self,
        added: &[Added],
        deleted: &[Deleted],
        failures: &mut Vec<(usize, String)>,
    ) -> Result<()> {
        for v6 in [false, true] {
            let family_added = added.iter().filter(|added| added.vip.is_ipv6() == v6);
            let mut added_by_vip: BTreeMap<IpAddr, &Added> =
                family_added.map(|added| (added.vip, added)).collect();
            let deleted_by_vip: BTreeMap<IpAddr, usize> = deleted
                .iter()
                .filter(|deleted| deleted.vip.is_ipv6() == v6)
                .map(|deleted| (deleted.vip, deleted.index))
                .collect();
            if added_by_vip.is_empty() && deleted_by_vip.is_empty() {
                continue;
            }
            for route in self.net.routes(v6).await? {
                let view = net::view_route(&route);
                let Some(destination) = view
                    .destination
                    .filter(|net| net.prefix_len() == net.max_prefix_len())
                else {
                    continue;
                };
                let vip = destination.addr();
                let (index, description) = if let Some(added) = added_by_vip.get(&vip) {
                    if view.table != TABLE_LOCAL
                        || net::is_own_local_route(&view, added.link.index, added.node)
                    {
                        continue;
                    }
                    (added.index, format!("local {vip} (kernel)"))
                } else if let Some(index) = deleted_by_vip.get(&vip) {
                    if !matches!(view.table, TABLE_LOCAL | TABLE_MAIN) {
                        continue;
                    }
                    (*index, format!("{vip} in table {}", view.table))
                } else {
                    continue;
                };
                if let Err(error) = self.net.delete_route(route, &description).await {
                    failures.push((index, format!("VIP {vip}: {error}")));
                    added_by_vip.remove(&vip);
                }
            }
        }
        Ok(())
    }

    /// Deletes the policy rules of deleted unicast IPv4 VIPs.
    async fn clean_rules(
        &self,
        lb: &LbConfig,
        deleted: &[Deleted],
        failures: &mut Vec<(usize, String)>,
    ) -> Result<()> {
        let unicast_v4: BTreeMap<IpNet, usize> = deleted
            .iter()
            .filter(|deleted| deleted.kind == VipKind::Unicast && deleted.vip.is_ipv4())
            .map(|deleted| (IpNet::from(deleted.vip), deleted.index))
            .collect();
        if unicast_v4.is_empty() {
            return Ok(());
        }
        for rule in self.net.rules(IpVersion::V4).await? {
            let Some(index) = rule.source.and_then(|source| unicast_v4.get(&source)) else {
                continue;
            };
            if rule.destination.is_none()
                && rule.table == lb.table
                && let Err(error) = self.net.delete_rule(&rule).await
            {
                failures.push((*index, error.to_string()));
            }
        }
        Ok(())
    }

    /// Announces the added unicast VIPs on interfaces that are up, and logs
    /// one line per interface.
    fn announce_added(&self, added: &[Added], failures: &mut Vec<(usize, String)>) {
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for added in added.iter().filter(|added| added.announce) {
            if failures.iter().any(|(index, _)| *index == added.index) {
                continue;
            }
            match self.announce(&added.link, added.vip) {
                Ok(()) => *counts.entry(added.link.name.as_str()).or_default() += 1,
                Err(error) => failures.push((added.index, format!("VIP {}: {error}", added.vip))),
            }
        }
        for (link, count) in counts {
            tracing::info!("sent gratuitous announcements for {count} VIPs on {link}");
        }
    }
}

/// Splits `changes` into runs of consecutive changes with different VIPs,
/// so that a VIP deleted and added again in one batch ends as the last
/// change leaves it.
fn runs(changes: &[VipChange]) -> Vec<Range<usize>> {
    let mut runs = Vec::new();
    let mut start = 0;
    let mut seen = std::collections::BTreeSet::new();
    for (index, change) in changes.iter().enumerate() {
        if !seen.insert(change.vip) {
            runs.push(start..index);
            start = index;
            seen.clear();
            seen.insert(change.vip);
        }
    }
    if start < changes.len() {
        runs.push(start..changes.len());
    }
    runs
}

/// Picks the interface for a unicast VIP from the snapshot: a VLAN
/// interface whose network contains it, else the LB interface.
fn unicast_interface(lb: &LbConfig, snapshot: &Snapshot, vip: IpAddr) -> Result<(Link, u8)> {
    for link in &snapshot.unicast_links {
        let on_link = snapshot.addresses.get(&link.index).into_iter().flatten();
        for address in on_link {
            if !address.is_link_local()
                && address.prefix_len < address.network().max_prefix_len()
                && address.network().contains(&vip)
            {
                return Ok((link.clone(), address.prefix_len));
            }
        }
    }
    Err(NccError::NotFound(format!(
        "no network on {} or its VLAN interfaces contains VIP {vip}",
        lb.name
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(vip: &str, add: bool) -> VipChange {
        VipChange {
            vip: vip.parse().unwrap(),
            kind: VipKind::Unicast,
            add,
        }
    }

    #[test]
    fn runs_split_where_a_vip_repeats() {
        let changes = [
            change("192.0.2.1", true),
            change("192.0.2.2", true),
            change("192.0.2.1", false),
            change("192.0.2.3", true),
            change("192.0.2.3", false),
        ];
        assert_eq!(runs(&changes), vec![0..2, 2..4, 4..5]);
        assert_eq!(runs(&changes[..2]), vec![0..2]);
        assert!(runs(&[]).is_empty());
    }
}
