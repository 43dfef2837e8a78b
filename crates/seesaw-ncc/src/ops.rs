//! The NCC operations on links, addresses, rules and routes.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Mutex;

use ipnet::IpNet;
use netlink_packet_route::route::RouteProtocol;
use rtnetlink::IpVersion;

use crate::arp;
use crate::error::{NccError, Result};
use crate::iptables::{self, Family, Iptables};
use crate::net::{self, Address, Link, Net, TABLE_LOCAL, TABLE_MAIN};
use crate::sysctl::Sysctls;
use crate::vserver_rules::Registry;

/// The load-balancing interface and what surrounds it, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LbConfig {
    pub name: String,
    pub dummy: String,
    pub node_interface: String,
    pub node_v4: Option<Ipv4Addr>,
    pub node_v6: Option<IpAddr>,
    pub cluster_v4: Option<Ipv4Addr>,
    pub cluster_v6: Option<IpAddr>,
    /// 1 to 250.
    pub table: u32,
    pub vrid: u8,
    pub use_vmac: bool,
}

impl LbConfig {
    /// The node address of `address`'s family.
    pub fn node_address(&self, address: IpAddr) -> Result<IpAddr> {
        let node = match address {
            IpAddr::V4(_) => self.node_v4.map(IpAddr::V4),
            IpAddr::V6(_) => self.node_v6,
        };
        node.ok_or_else(|| {
            NccError::Invalid(format!(
                "the node has no address of the family of {address}; set node.{} in the request",
                if address.is_ipv4() { "ipv4" } else { "ipv6" }
            ))
        })
    }

    pub fn cluster_vips(&self) -> Vec<IpAddr> {
        self.cluster_v4
            .map(IpAddr::V4)
            .into_iter()
            .chain(self.cluster_v6)
            .collect()
    }

    /// Name of VLAN `id` on the LB interface.
    pub fn vlan_name(&self, id: u16) -> String {
        format!("{}.{id}", self.name)
    }
}

/// The VRRP virtual MAC of `vrid` (RFC 5798, section 7.3, IPv4).
pub fn vrrp_mac(vrid: u8) -> [u8; 6] {
    [0x00, 0x00, 0x5e, 0x00, 0x01, vrid]
}

/// Where a VIP lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VipKind {
    /// On the LB interface or a VLAN interface.
    Unicast,
    /// On the dummy interface (anycast and dedicated VIPs).
    Dummy,
}

/// The NCC's view of the kernel.
pub struct Ncc {
    pub net: Net,
    pub iptables: Iptables,
    pub sysctls: Sysctls,
    /// The iptables rules of each virtual server address added since the
    /// last LB interface init. Deleting one virtual server keeps the rules
    /// that another one still has.
    pub(crate) vserver_rules: Mutex<Registry>,
}

impl Ncc {
    pub fn new(net: Net) -> Self {
        Self {
            net,
            iptables: Iptables::default(),
            sysctls: Sysctls::default(),
            vserver_rules: Mutex::new(Registry::default()),
        }
    }

    /// The VLAN interfaces of the LB interface, named `<lb>.<id>`.
    pub async fn vlan_links(&self, lb: &LbConfig) -> Result<Vec<Link>> {
        let prefix = format!("{}.", lb.name);
        Ok(self
            .net
            .links()
            .await?
            .into_iter()
            .filter(|link| link.name.starts_with(&prefix))
            .collect())
    }

    /// Returns the network of `node` on the node interface.
    async fn node_network(&self, lb: &LbConfig, node: IpAddr) -> Result<IpNet> {
        let link = self.net.link(&lb.node_interface).await?;
        self.net
            .addresses(Some(link.index))
            .await?
            .iter()
            .find(|address| address.address == node)
            .map(Address::network)
            .ok_or_else(|| {
                NccError::NotFound(format!(
                    "node address {node} not found on node interface {}",
                    link.name
                ))
            })
    }

    /// Resets the LB interface; see `InitLbInterface` in the API.
    pub async fn init_lb(&self, lb: &LbConfig) -> Result<()> {
        let link = self.net.link(&lb.name).await?;
        self.net.link(&lb.node_interface).await?;
        tracing::info!(
            "initialising load-balancing interface {} (VRID {}, VMAC {})",
            lb.name,
            lb.vrid,
            net::format_mac(&vrrp_mac(lb.vrid))
        );

        self.net.set_link_up(&link, false).await?;
        if lb.use_vmac {
            self.net.set_link_mac(&link, vrrp_mac(lb.vrid)).await?;
        }
        for vlan in self.vlan_links(lb).await? {
            self.net.delete_link(&vlan.name).await?;
            self.sysctls.forget_interface(&vlan.name);
        }

        self.apply_sysctls(lb)?;

        self.net.flush_addresses(&link).await?;
        self.remove_vip_rules(lb).await?;
        if let Some(vip) = lb.cluster_v4 {
            self.add_cluster_vip(lb, &link, IpAddr::V4(vip)).await?;
        }
        if let Some(vip) = lb.cluster_v6 {
            self.add_cluster_vip(lb, &link, vip).await?;
        }

        // Flushing our chains removes every virtual server's rules.
        self.vserver_rules.lock().unwrap().clear();
        for family in [Family::V4, Family::V6] {
            self.init_iptables(family, lb).await?;
        }

        let dummy = self.net.ensure_dummy(&lb.dummy).await?;
        self.net.set_link_up(&dummy, false).await?;
        self.net.flush_addresses(&dummy).await?;
        self.net.set_link_up(&dummy, true).await?;
        self.remove_stale_local_routes(&[link.index, dummy.index])
            .await?;
        Ok(())
    }

    /// Readies an LB interface that an earlier engine set up, without
    /// touching its link, addresses or routes: sysctls applied, our chains
    /// and their base rules present. Returns whether the chains were there
    /// already; when they were not, no seesaw-rs NCC initialised this
    /// node (the Go Seesaw may have), and the caller must initialise it.
    /// See `PrepareLbInterface` in the API.
    pub async fn prepare_lb(&self, lb: &LbConfig) -> Result<bool> {
        let saved_v4 = self.iptables.save(Family::V4).await?;
        let declared = iptables::saved_chains(&saved_v4);
        let existed = iptables::OWN_CHAINS
            .into_iter()
            .filter(|chain| chain.table != "nat")
            .all(|chain| declared.contains(&(chain.table.to_owned(), chain.name.to_owned())));
        if !existed {
            return Ok(false);
        }
        self.apply_sysctls(lb)?;
        self.ready_iptables(Family::V4, lb, saved_v4, false).await?;
        let saved_v6 = self.iptables.save(Family::V6).await?;
        self.ready_iptables(Family::V6, lb, saved_v6, false).await?;
        tracing::info!(
            "load-balancing interface {} kept as it is; sysctls and chains ready",
            lb.name
        );
        Ok(true)
    }

    fn apply_sysctls(&self, lb: &LbConfig) -> Result<()> {
        let failed = |source| NccError::io("set sysctls", source);
        self.sysctls.set_global().map_err(failed)?;
        for interface in [
            "all",
            "default",
            lb.node_interface.as_str(),
            lb.name.as_str(),
        ] {
            self.sysctls.set_interface(interface).map_err(failed)?;
        }
        Ok(())
    }

    /// Removes every rule that sends one host address to our table: the
    /// cluster VIP and VIP rules of an earlier run, by us or the Go NCC.
    async fn remove_vip_rules(&self, lb: &LbConfig) -> Result<()> {
        for family in [IpVersion::V4, IpVersion::V6] {
            for rule in self.net.rules(family).await? {
                let host = |net: Option<IpNet>| {
                    net.is_some_and(|net| net.prefix_len() == net.max_prefix_len())
                };
                let only_source = host(rule.source) && rule.destination.is_none();
                let only_destination = host(rule.destination) && rule.source.is_none();
                if rule.table == lb.table
                    && !rule.has_other_selectors
                    && (only_source || only_destination)
                {
                    tracing::info!(
                        "removing rule {}",
                        net::describe_rule(
                            rule.source.map(|n| n.addr()),
                            rule.destination.map(|n| n.addr()),
                            rule.table
                        )
                    );
                    self.net.delete_rule(&rule).await?;
                }
            }
        }
        Ok(())
    }

    async fn add_cluster_vip(&self, lb: &LbConfig, link: &Link, vip: IpAddr) -> Result<()> {
        let node = lb.node_address(vip)?;
        let network = self.node_network(lb, node).await?;
        if !network.contains(&vip) {
            return Err(NccError::Invalid(format!(
                "node network {network} does not contain cluster VIP {vip}"
            )));
        }
        // Policy routing is IPv4 only, as in Seesaw: traffic to and from
        // the cluster VIP uses the LB interface's table.
        if vip.is_ipv4() {
            self.net.add_rule(None, Some(vip), lb.table).await?;
            self.net.add_rule(Some(vip), None, lb.table).await?;
        }
        self.net.add_address(link, vip, network.prefix_len()).await
    }

    async fn init_iptables(&self, family: Family, lb: &LbConfig) -> Result<()> {
        let saved = self.iptables.save(family).await?;
        self.ready_iptables(family, lb, saved, true).await
    }

    /// Readies our chains and base rules with one iptables-restore; see
    /// [`iptables::ready_script`]. `saved` is the family's current
    /// `iptables-save` output.
    async fn ready_iptables(
        &self,
        family: Family,
        lb: &LbConfig,
        saved: String,
        empty: bool,
    ) -> Result<()> {
        let cluster_vip = match family {
            Family::V4 => lb.cluster_v4.map(IpAddr::V4),
            Family::V6 => lb.cluster_v6,
        };
        let chains = iptables::OWN_CHAINS;
        let Some(script) = iptables::ready_script(family, &saved, cluster_vip, &chains, empty)
        else {
            return Ok(());
        };
        let outcome = self.iptables.restore(family, &script).await?;
        if outcome.success {
            return Ok(());
        }
        // IPv6 NAT needs the ip6table_nat module; without it only NAT
        // virtual servers of that family fail, so the rest is set up.
        if family == Family::V6 {
            let chains: Vec<_> = chains
                .into_iter()
                .filter(|chain| chain.table != "nat")
                .collect();
            let retry = iptables::ready_script(family, &saved, cluster_vip, &chains, empty);
            let ready = match retry {
                Some(script) => self.iptables.restore(family, &script).await?.success,
                None => true,
            };
            if ready {
                tracing::warn!("IPv6 NAT is unavailable: {}", outcome.stderr);
                return Ok(());
            }
        }
        Err(NccError::Command {
            command: format!("{}-restore", family.program()),
            status: outcome.status,
            stderr: outcome.stderr,
        })
    }

    /// Deletes local and main routes on `indexes` whose destination is a
    /// host address that no longer is configured there, such as VIP routes
    /// with a node source that outlived their address.
    async fn remove_stale_local_routes(&self, indexes: &[u32]) -> Result<()> {
        let configured: Vec<IpAddr> = self
            .net
            .addresses(None)
            .await?
            .iter()
            .map(|address| address.address)
            .collect();
        for v6 in [false, true] {
            for route in self.net.routes(v6).await? {
                let view = net::view_route(&route);
                let Some(destination) = view.destination else {
                    continue;
                };
                let on_our_links = view.output.is_some_and(|index| indexes.contains(&index));
                let host = destination.prefix_len() == destination.max_prefix_len();
                let ours = matches!(view.table, TABLE_LOCAL | TABLE_MAIN)
                    && view.protocol != RouteProtocol::Kernel;
                if on_our_links && host && ours && !configured.contains(&destination.addr()) {
                    tracing::info!(
                        "removing stale route to {destination} in table {}",
                        view.table
                    );
                    self.net
                        .delete_route(route, &destination.to_string())
                        .await?;
                }
            }
        }
        Ok(())
    }

    /// Sets the LB interface up and fills its table; see `BringLbInterfaceUp`.
    pub async fn lb_up(&self, lb: &LbConfig) -> Result<()> {
        let link = self.net.link(&lb.name).await?;
        let node = lb.node_v4.ok_or_else(|| {
            NccError::Invalid("bringing the LB interface up needs node.ipv4".to_owned())
        })?;
        let network = self.node_network(lb, IpAddr::V4(node)).await?;
        if let Some(vip) = lb.cluster_v4
            && !network.contains(&IpAddr::V4(vip))
        {
            return Err(NccError::Invalid(format!(
                "node network {network} does not contain cluster VIP {vip}"
            )));
        }
        let gateway = self.default_gateway().await?.0;

        self.net.set_link_up(&link, true).await?;
        self.net
            .add_route(
                net::device_route(network, link.index, lb.table),
                &format!("{network} dev {} table {}", lb.name, lb.table),
            )
            .await?;
        self.net
            .add_route(
                net::default_route(gateway, link.index, lb.table),
                &format!("default via {gateway} dev {} table {}", lb.name, lb.table),
            )
            .await?;
        // Link-up makes the kernel add its own local route for every
        // address again; ours, with the node as source, must win.
        self.rewrite_vip_local_routes(lb).await
    }

    /// Rewrites the local route of every VIP on the LB and VLAN interfaces.
    pub async fn rewrite_vip_local_routes(&self, lb: &LbConfig) -> Result<()> {
        let cluster = lb.cluster_vips();
        let mut links = vec![self.net.link(&lb.name).await?];
        links.extend(self.vlan_links(lb).await?);
        for link in links {
            let is_vlan = link.name != lb.name;
            for address in self.net.addresses(Some(link.index)).await? {
                if address.is_link_local() || cluster.contains(&address.address) {
                    continue;
                }
                // A VLAN's first address of each family is the load
                // balancer's own address there, not a VIP.
                if is_vlan && self.is_primary(&link, &address).await? {
                    continue;
                }
                let node = lb.node_address(address.address)?;
                self.set_local_route(&link, address.address, node).await?;
            }
        }
        Ok(())
    }

    async fn is_primary(&self, link: &Link, address: &Address) -> Result<bool> {
        let first = self
            .net
            .addresses(Some(link.index))
            .await?
            .into_iter()
            .find(|other| {
                other.address.is_ipv4() == address.address.is_ipv4() && !other.is_link_local()
            });
        Ok(first.is_some_and(|first| first.address == address.address))
    }

    /// Sets the LB interface down, keeping its IPv6 addresses; see
    /// `BringLbInterfaceDown`.
    pub async fn lb_down(&self, lb: &LbConfig) -> Result<()> {
        let link = self.net.link(&lb.name).await?;
        if !link.up {
            return Ok(());
        }
        let mut links = vec![link.clone()];
        links.extend(self.vlan_links(lb).await?);
        let mut kept = Vec::new();
        for link in &links {
            for address in self.net.addresses(Some(link.index)).await? {
                if address.address.is_ipv6() && !address.is_link_local() {
                    kept.push((link.clone(), address));
                }
            }
        }
        self.net.set_link_up(&link, false).await?;
        // The kernel drops IPv6 addresses on link down; IPv4 ones stay.
        for (link, address) in kept {
            self.net
                .add_address(&link, address.address, address.prefix_len)
                .await?;
        }
        Ok(())
    }

    /// Makes `local <vip> dev <link> src <node>` the only local route of
    /// `vip`. The replace keeps a local route in place throughout, so the
    /// VIP never stops being local; the kernel's own route (protocol
    /// kernel, source = the VIP's primary address) is then deleted.
    pub async fn set_local_route(&self, link: &Link, vip: IpAddr, node: IpAddr) -> Result<()> {
        let description = format!("local {vip} dev {} src {node} table local", link.name);
        self.net
            .replace_route(net::local_route(vip, link.index, node), &description)
            .await?;
        for route in self.net.routes(vip.is_ipv6()).await? {
            let view = net::view_route(&route);
            let same_destination = view.destination == Some(IpNet::from(vip));
            let ours = net::is_own_local_route(&view, link.index, node);
            if view.table == TABLE_LOCAL && same_destination && !ours {
                self.net
                    .delete_route(route, &format!("local {vip} (kernel)"))
                    .await?;
            }
        }
        Ok(())
    }

    /// Deletes every route to the host address `vip` in tables local and main.
    async fn delete_host_routes(&self, vip: IpAddr) -> Result<()> {
        for route in self.net.routes(vip.is_ipv6()).await? {
            let view = net::view_route(&route);
            if matches!(view.table, TABLE_LOCAL | TABLE_MAIN)
                && view.destination == Some(IpNet::from(vip))
            {
                self.net
                    .delete_route(route, &format!("{vip} in table {}", view.table))
                    .await?;
            }
        }
        Ok(())
    }

    /// Picks the interface for a unicast VIP: a VLAN interface whose
    /// network contains it, else the LB interface.
    async fn select_interface(&self, lb: &LbConfig, vip: IpAddr) -> Result<(Link, u8)> {
        let mut links = self.vlan_links(lb).await?;
        links.push(self.net.link(&lb.name).await?);
        for link in links {
            for address in self.net.addresses(Some(link.index)).await? {
                if !address.is_link_local()
                    && address.prefix_len < address.network().max_prefix_len()
                    && address.network().contains(&vip)
                {
                    return Ok((link, address.prefix_len));
                }
            }
        }
        Err(NccError::NotFound(format!(
            "no network on {} or its VLAN interfaces contains VIP {vip}",
            lb.name
        )))
    }

    /// Adds a VIP; see `AddVip`.
    pub async fn add_vip(&self, lb: &LbConfig, vip: IpAddr, kind: VipKind) -> Result<()> {
        let node = lb.node_address(vip)?;
        match kind {
            VipKind::Dummy => {
                let dummy = self.net.ensure_dummy(&lb.dummy).await?;
                let prefix_len = IpNet::from(vip).max_prefix_len();
                self.net.add_address(&dummy, vip, prefix_len).await?;
                self.set_local_route(&dummy, vip, node).await
            }
            VipKind::Unicast => {
                let (link, prefix_len) = self.select_interface(lb, vip).await?;
                if link.name == lb.name && vip.is_ipv4() {
                    self.net.add_rule(Some(vip), None, lb.table).await?;
                }
                self.net.add_address(&link, vip, prefix_len).await?;
                self.set_local_route(&link, vip, node).await?;
                if link.up {
                    self.announce(&link, vip)?;
                    tracing::info!("sent a gratuitous announcement for {vip} on {}", link.name);
                }
                Ok(())
            }
        }
    }

    /// Removes a VIP; see `DeleteVip`. A VIP that is not configured only
    /// has its rule and routes cleaned up.
    pub async fn delete_vip(&self, lb: &LbConfig, vip: IpAddr, kind: VipKind) -> Result<()> {
        let links: Vec<Link> = match kind {
            VipKind::Dummy => self.net.find_link(&lb.dummy).await?.into_iter().collect(),
            VipKind::Unicast => {
                let mut links = self.vlan_links(lb).await?;
                links.push(self.net.link(&lb.name).await?);
                links
            }
        };
        for link in &links {
            for address in self.net.addresses(Some(link.index)).await? {
                if address.address == vip {
                    self.net
                        .delete_address(link, vip, address.prefix_len)
                        .await?;
                }
            }
        }
        self.delete_host_routes(vip).await?;
        if kind == VipKind::Unicast && vip.is_ipv4() {
            for rule in self.net.rules(IpVersion::V4).await? {
                if rule.source == Some(IpNet::from(vip))
                    && rule.destination.is_none()
                    && rule.table == lb.table
                {
                    self.net.delete_rule(&rule).await?;
                }
            }
        }
        Ok(())
    }

    /// Creates VLAN `id` with its addresses; see `AddVlan`.
    pub async fn add_vlan(&self, lb: &LbConfig, id: u16, addresses: &[IpNet]) -> Result<()> {
        if !(1..=4094).contains(&id) {
            return Err(NccError::Invalid(format!(
                "invalid VLAN id {id}: must be 1 to 4094"
            )));
        }
        let parent = self.net.link(&lb.name).await?;
        let name = lb.vlan_name(id);
        let link = self.net.ensure_vlan(&name, &parent, id).await?;
        self.sysctls
            .set_interface(&name)
            .map_err(|source| NccError::io(format!("set sysctls of {name}"), source))?;
        for address in addresses {
            self.net
                .add_address(&link, address.addr(), address.prefix_len())
                .await?;
        }
        if parent.up {
            self.net.set_link_up(&link, true).await?;
        }
        Ok(())
    }

    pub async fn delete_vlan(&self, lb: &LbConfig, id: u16) -> Result<()> {
        let name = lb.vlan_name(id);
        self.net.delete_link(&name).await?;
        self.sysctls.forget_interface(&name);
        Ok(())
    }

    /// Sends a gratuitous ARP or an unsolicited neighbour advertisement for
    /// `address` on `link`.
    pub fn announce(&self, link: &Link, address: IpAddr) -> Result<()> {
        let mac: [u8; 6] = link.mac.as_slice().try_into().map_err(|_| {
            NccError::Invalid(format!("interface {} has no Ethernet address", link.name))
        })?;
        let result = match address {
            IpAddr::V4(v4) => arp::send_arp(link.index, &arp::gratuitous_arp(mac, v4)),
            IpAddr::V6(v6) => arp::send_neighbour_advertisement(link.index, &link.name, mac, v6),
        };
        result
            .map_err(|source| NccError::io(format!("announce {address} on {}", link.name), source))
    }

    /// Returns the IPv4 default gateway of the main table and its interface.
    pub async fn default_gateway(&self) -> Result<(Ipv4Addr, Option<String>)> {
        let links = self.net.links().await?;
        for route in self.net.routes(false).await? {
            let view = net::view_route(&route);
            if view.table == TABLE_MAIN
                && view.destination.is_some_and(|net| net.prefix_len() == 0)
                && let Some(IpAddr::V4(gateway)) = view.gateway
            {
                let interface = view
                    .output
                    .and_then(|index| links.iter().find(|link| link.index == index))
                    .map(|link| link.name.clone());
                return Ok((gateway, interface));
            }
        }
        Err(NccError::NotFound(
            "no IPv4 default route in the main table".to_owned(),
        ))
    }

    /// Removes what the Go Seesaw NCC left in the built-in iptables chains.
    /// Its addresses, rules and routes are replaced at the next LB interface
    /// init, which knows the interface and table.
    pub async fn remove_go_iptables(&self) -> Result<usize> {
        let mut removed = 0;
        for family in [Family::V4, Family::V6] {
            let saved = match self.iptables.save(family).await {
                Ok(saved) => saved,
                Err(error) => {
                    tracing::warn!("cannot look for Go NCC iptables rules: {error}");
                    continue;
                }
            };
            for rule in iptables::go_leftovers(family, &iptables::parse_save(&saved)) {
                tracing::info!(
                    "removing Go NCC rule -t {} -A {} {}",
                    rule.table,
                    rule.chain,
                    rule.args.join(" ")
                );
                self.iptables.delete_saved_rule(family, &rule).await?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Restores the sysctls, at shutdown. The iptables chains, addresses
    /// and IPVS services stay, so the data plane keeps working while the
    /// NCC restarts; the next LB interface init resets them.
    pub fn shutdown(&self) {
        self.sysctls.restore();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vmac_from_vrid() {
        assert_eq!(vrrp_mac(60), [0, 0, 0x5e, 0, 1, 0x3c]);
    }
}
