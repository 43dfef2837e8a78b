//! Links, addresses, routes and policy rules through route netlink.
//!
//! A thin layer over rtnetlink that makes each change idempotent (adding
//! what exists or removing what is missing succeeds), retries transient
//! kernel errors and names the object in every error.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use futures_util::TryStreamExt;
use ipnet::IpNet;
use netlink_packet_route::AddressFamily;
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{LinkAttribute, LinkFlags, LinkMessage};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::rule::{RuleAction, RuleAttribute, RuleMessage};
use rtnetlink::{Handle, IpVersion, LinkDummy, LinkUnspec, LinkVlan, RouteMessageBuilder};

use crate::error::{NccError, Result, netlink_errno};

const EINTR: i32 = 4;
const ENOENT: i32 = 2;
const ESRCH: i32 = 3;
const EAGAIN: i32 = 11;
const EBUSY: i32 = 16;
const EEXIST: i32 = 17;
const ENODEV: i32 = 19;
const EADDRNOTAVAIL: i32 = 99;
const ENOBUFS: i32 = 105;

/// Attempts of a request that fails with a transient error.
const ATTEMPTS: u32 = 3;
/// Pause between those attempts.
const RETRY_DELAY: Duration = Duration::from_millis(100);

/// The kernel's `local` routing table.
pub const TABLE_LOCAL: u32 = 255;
/// The kernel's `main` routing table.
pub const TABLE_MAIN: u32 = 254;

/// A network interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub index: u32,
    pub name: String,
    /// Administratively up (`IFF_UP`).
    pub up: bool,
    pub mac: Vec<u8>,
}

/// An address configured on an interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Address {
    pub index: u32,
    pub address: IpAddr,
    pub prefix_len: u8,
}

impl Address {
    /// The network of this address, such as 192.0.2.0/24 for 192.0.2.7/24.
    pub fn network(&self) -> IpNet {
        IpNet::new(self.address, self.prefix_len)
            .expect("the kernel reports valid prefix lengths")
            .trunc()
    }

    pub fn is_link_local(&self) -> bool {
        matches!(self.address, IpAddr::V6(v6) if v6.segments()[0] & 0xffc0 == 0xfe80)
    }
}

/// A policy-routing rule, as read back from the kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub priority: u32,
    pub source: Option<IpNet>,
    pub destination: Option<IpNet>,
    pub table: u32,
    /// Whether the rule has selectors besides source and destination
    /// (interface, mark, ...), which Seesaw never sets.
    pub has_other_selectors: bool,
    pub message: RuleMessage,
}

impl Rule {
    /// Reports whether this is exactly the rule
    /// `[from source] [to destination] lookup table`.
    pub fn is(&self, source: Option<IpAddr>, destination: Option<IpAddr>, table: u32) -> bool {
        self.table == table
            && self.source == source.map(IpNet::from)
            && self.destination == destination.map(IpNet::from)
            && !self.has_other_selectors
    }
}

/// The route netlink side of the NCC.
#[derive(Clone)]
pub struct Net {
    handle: Handle,
}

/// Runs `request` up to [`ATTEMPTS`] times while it fails with an error
/// that may go away (`EBUSY`, `EAGAIN`, `ENOBUFS`, `EINTR`).
async fn retry<T, F, Fut>(action: &str, mut request: F) -> std::result::Result<T, rtnetlink::Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = std::result::Result<T, rtnetlink::Error>>,
{
    let mut attempt = 1;
    loop {
        match request().await {
            Err(error)
                if attempt < ATTEMPTS
                    && matches!(
                        netlink_errno(&error),
                        Some(EBUSY | EAGAIN | ENOBUFS | EINTR)
                    ) =>
            {
                tracing::warn!(
                    "{action} failed with a transient error (attempt {attempt} of {ATTEMPTS}), retrying: {error}"
                );
                tokio::time::sleep(RETRY_DELAY).await;
                attempt += 1;
            }
            other => return other,
        }
    }
}

fn failed(action: impl Into<String>) -> impl FnOnce(rtnetlink::Error) -> NccError {
    let action = action.into();
    move |source| NccError::Netlink { action, source }
}

/// Treats the listed errnos as success: the object already is in the
/// requested state.
fn accept_errnos(
    result: std::result::Result<(), rtnetlink::Error>,
    errnos: &[i32],
) -> std::result::Result<(), rtnetlink::Error> {
    match result {
        Err(error) if netlink_errno(&error).is_some_and(|errno| errnos.contains(&errno)) => Ok(()),
        other => other,
    }
}

impl Net {
    /// Opens a route netlink socket and spawns its connection task.
    pub fn connect() -> Result<Self> {
        let (connection, handle, _) = rtnetlink::new_connection()
            .map_err(|source| NccError::io("open a route netlink socket", source))?;
        tokio::spawn(connection);
        Ok(Self { handle })
    }

    pub async fn links(&self) -> Result<Vec<Link>> {
        let messages: Vec<LinkMessage> = retry("list links", || {
            self.handle.link().get().execute().try_collect()
        })
        .await
        .map_err(failed("list links"))?;
        Ok(messages.iter().map(link_from_message).collect())
    }

    /// Returns the interface called `name`, or `NotFound`.
    pub async fn link(&self, name: &str) -> Result<Link> {
        let result: std::result::Result<Vec<LinkMessage>, _> = retry("look up a link", || {
            self.handle
                .link()
                .get()
                .match_name(name.to_owned())
                .execute()
                .try_collect()
        })
        .await;
        match result {
            Ok(messages) => messages
                .first()
                .map(link_from_message)
                .ok_or_else(|| NccError::NotFound(format!("interface {name} not found"))),
            Err(error) if matches!(netlink_errno(&error), Some(ENODEV)) => {
                Err(NccError::NotFound(format!("interface {name} not found")))
            }
            Err(source) => Err(NccError::Netlink {
                action: format!("look up interface {name}"),
                source,
            }),
        }
    }

    /// Returns the interface called `name`, or `None` when it is missing.
    pub async fn find_link(&self, name: &str) -> Result<Option<Link>> {
        match self.link(name).await {
            Ok(link) => Ok(Some(link)),
            Err(NccError::NotFound(_)) => Ok(None),
            Err(error) => Err(error),
        }
    }

    pub async fn set_link_up(&self, link: &Link, up: bool) -> Result<()> {
        let state = if up { "up" } else { "down" };
        retry("set link state", || {
            let builder = LinkUnspec::new_with_index(link.index);
            let message = if up { builder.up() } else { builder.down() }.build();
            self.handle.link().set(message).execute()
        })
        .await
        .map_err(failed(format!("set interface {} {state}", link.name)))
    }

    pub async fn set_link_mac(&self, link: &Link, mac: [u8; 6]) -> Result<()> {
        retry("set link address", || {
            let message = LinkUnspec::new_with_index(link.index)
                .address(mac.to_vec())
                .build();
            self.handle.link().set(message).execute()
        })
        .await
        .map_err(failed(format!(
            "set the MAC address of {} to {}",
            link.name,
            format_mac(&mac)
        )))
    }

    /// Creates a dummy interface unless one of that name exists.
    pub async fn ensure_dummy(&self, name: &str) -> Result<Link> {
        if let Some(link) = self.find_link(name).await? {
            return Ok(link);
        }
        let result = retry("add dummy link", || {
            self.handle
                .link()
                .add(LinkDummy::new(name).build())
                .execute()
        })
        .await;
        accept_errnos(result, &[EEXIST])
            .map_err(failed(format!("create dummy interface {name}")))?;
        self.link(name).await
    }

    /// Creates VLAN interface `name` with `id` on `parent` unless it exists.
    pub async fn ensure_vlan(&self, name: &str, parent: &Link, id: u16) -> Result<Link> {
        if let Some(link) = self.find_link(name).await? {
            return Ok(link);
        }
        let result = retry("add VLAN link", || {
            self.handle
                .link()
                .add(LinkVlan::new(name, parent.index, id).build())
                .execute()
        })
        .await;
        accept_errnos(result, &[EEXIST]).map_err(failed(format!(
            "create VLAN interface {name} (id {id} on {})",
            parent.name
        )))?;
        self.link(name).await
    }

    /// Deletes the interface called `name`; a missing one is not an error.
    pub async fn delete_link(&self, name: &str) -> Result<()> {
        let Some(link) = self.find_link(name).await? else {
            return Ok(());
        };
        let result = retry("delete link", || {
            self.handle.link().del(link.index).execute()
        })
        .await;
        accept_errnos(result, &[ENODEV]).map_err(failed(format!("delete interface {name}")))
    }

    /// Returns the addresses of one interface, or of all with `None`.
    pub async fn addresses(&self, index: Option<u32>) -> Result<Vec<Address>> {
        let messages: Vec<AddressMessage> = retry("list addresses", || {
            let mut request = self.handle.address().get();
            if let Some(index) = index {
                request = request.set_link_index_filter(index);
            }
            request.execute().try_collect()
        })
        .await
        .map_err(failed("list addresses"))?;
        Ok(messages
            .iter()
            .filter(|message| index.is_none_or(|index| message.header.index == index))
            .filter_map(address_from_message)
            .collect())
    }

    /// Adds `address/prefix_len` to `link`. IPv4 addresses get the
    /// broadcast address of their network (none for /31 and /32).
    pub async fn add_address(&self, link: &Link, address: IpAddr, prefix_len: u8) -> Result<()> {
        let result = retry("add address", || {
            self.handle
                .address()
                .add(link.index, address, prefix_len)
                .execute()
        })
        .await;
        accept_errnos(result, &[EEXIST]).map_err(failed(format!(
            "add address {address}/{prefix_len} to {}",
            link.name
        )))
    }

    pub async fn delete_address(&self, link: &Link, address: IpAddr, prefix_len: u8) -> Result<()> {
        let result = retry("delete address", || {
            let message = rtnetlink::AddressMessageBuilder::<Ipv4Addr>::new();
            let message = match address {
                IpAddr::V4(v4) => message.index(link.index).address(v4, prefix_len).build(),
                IpAddr::V6(v6) => rtnetlink::AddressMessageBuilder::<Ipv6Addr>::new()
                    .index(link.index)
                    .address(v6, prefix_len)
                    .build(),
            };
            self.handle.address().del(message).execute()
        })
        .await;
        accept_errnos(result, &[EADDRNOTAVAIL, ENODEV]).map_err(failed(format!(
            "delete address {address}/{prefix_len} from {}",
            link.name
        )))
    }

    /// Deletes every address of `link` except IPv6 link-local ones, which
    /// neighbour discovery needs.
    pub async fn flush_addresses(&self, link: &Link) -> Result<()> {
        for address in self.addresses(Some(link.index)).await? {
            if !address.is_link_local() {
                self.delete_address(link, address.address, address.prefix_len)
                    .await?;
            }
        }
        Ok(())
    }

    pub async fn rules(&self, family: IpVersion) -> Result<Vec<Rule>> {
        let messages: Vec<RuleMessage> = retry("list rules", || {
            self.handle
                .rule()
                .get(family.clone())
                .execute()
                .try_collect()
        })
        .await
        .map_err(failed("list policy rules"))?;
        Ok(messages.into_iter().map(rule_from_message).collect())
    }

    /// Adds the rule `[from source] [to destination] lookup table` unless a
    /// rule with exactly these selectors and table exists.
    pub async fn add_rule(
        &self,
        source: Option<IpAddr>,
        destination: Option<IpAddr>,
        table: u32,
    ) -> Result<()> {
        let v6 = source
            .or(destination)
            .is_some_and(|address| address.is_ipv6());
        let family = if v6 { IpVersion::V6 } else { IpVersion::V4 };
        let exists = self
            .rules(family)
            .await?
            .iter()
            .any(|rule| rule.is(source, destination, table));
        if exists {
            return Ok(());
        }
        self.insert_rule(source, destination, table).await
    }

    /// Adds the rule `[from source] [to destination] lookup table` without
    /// first reading the rules back; the caller knows it is missing.
    pub async fn insert_rule(
        &self,
        source: Option<IpAddr>,
        destination: Option<IpAddr>,
        table: u32,
    ) -> Result<()> {
        let description = describe_rule(source, destination, table);
        let result = retry("add rule", || {
            // Without ToTable the kernel treats the rule as unspecified and
            // drops what it matches.
            let request = self
                .handle
                .rule()
                .add()
                .table_id(table)
                .action(RuleAction::ToTable);
            match (source, destination) {
                (Some(IpAddr::V6(_)), _) | (_, Some(IpAddr::V6(_))) => {
                    let mut request = request.v6();
                    if let Some(IpAddr::V6(address)) = source {
                        request = request.source_prefix(address, 128);
                    }
                    if let Some(IpAddr::V6(address)) = destination {
                        request = request.destination_prefix(address, 128);
                    }
                    futures_util::future::Either::Left(request.execute())
                }
                _ => {
                    let mut request = request.v4();
                    if let Some(IpAddr::V4(address)) = source {
                        request = request.source_prefix(address, 32);
                    }
                    if let Some(IpAddr::V4(address)) = destination {
                        request = request.destination_prefix(address, 32);
                    }
                    futures_util::future::Either::Right(request.execute())
                }
            }
        })
        .await;
        accept_errnos(result, &[EEXIST]).map_err(failed(format!("add rule {description}")))
    }

    pub async fn delete_rule(&self, rule: &Rule) -> Result<()> {
        let result = retry("delete rule", || {
            self.handle.rule().del(rule.message.clone()).execute()
        })
        .await;
        accept_errnos(result, &[ENOENT]).map_err(failed(format!(
            "delete rule {}",
            describe_rule(
                rule.source.map(|net| net.addr()),
                rule.destination.map(|net| net.addr()),
                rule.table
            )
        )))
    }

    /// Returns every route of one family in every table.
    pub async fn routes(&self, v6: bool) -> Result<Vec<RouteMessage>> {
        let filter = if v6 {
            RouteMessageBuilder::<Ipv6Addr>::new().build()
        } else {
            RouteMessageBuilder::<Ipv4Addr>::new().build()
        };
        retry("list routes", || {
            self.handle
                .route()
                .get(filter.clone())
                .execute()
                .try_collect()
        })
        .await
        .map_err(failed("list routes"))
    }

    /// Adds `route` unless an equal route exists.
    pub async fn add_route(&self, route: RouteMessage, description: &str) -> Result<()> {
        let result = retry("add route", || {
            self.handle.route().add(route.clone()).execute()
        })
        .await;
        accept_errnos(result, &[EEXIST]).map_err(failed(format!("add route {description}")))
    }

    /// Adds `route`, replacing the first route of the same destination,
    /// table, type of service and metric.
    pub async fn replace_route(&self, route: RouteMessage, description: &str) -> Result<()> {
        retry("replace route", || {
            self.handle.route().add(route.clone()).replace().execute()
        })
        .await
        .map_err(failed(format!("replace route {description}")))
    }

    pub async fn delete_route(&self, route: RouteMessage, description: &str) -> Result<()> {
        let result = retry("delete route", || {
            self.handle.route().del(route.clone()).execute()
        })
        .await;
        accept_errnos(result, &[ESRCH, ENOENT])
            .map_err(failed(format!("delete route {description}")))
    }
}

fn link_from_message(message: &LinkMessage) -> Link {
    let mut link = Link {
        index: message.header.index,
        name: String::new(),
        up: message.header.flags.contains(LinkFlags::Up),
        mac: Vec::new(),
    };
    for attribute in &message.attributes {
        match attribute {
            LinkAttribute::IfName(name) => link.name = name.clone(),
            LinkAttribute::Address(mac) => link.mac = mac.clone(),
            _ => {}
        }
    }
    link
}

fn address_from_message(message: &AddressMessage) -> Option<Address> {
    // IFA_LOCAL is the interface's own address; IFA_ADDRESS is the peer on
    // point-to-point links and equals IFA_LOCAL elsewhere. IPv6 sends only
    // IFA_ADDRESS.
    let mut local = None;
    let mut address = None;
    for attribute in &message.attributes {
        match attribute {
            AddressAttribute::Local(ip) => local = Some(*ip),
            AddressAttribute::Address(ip) => address = Some(*ip),
            _ => {}
        }
    }
    Some(Address {
        index: message.header.index,
        address: local.or(address)?,
        prefix_len: message.header.prefix_len,
    })
}

fn rule_from_message(message: RuleMessage) -> Rule {
    let mut rule = Rule {
        priority: 0,
        source: None,
        destination: None,
        table: u32::from(message.header.table),
        has_other_selectors: false,
        message: message.clone(),
    };
    for attribute in &message.attributes {
        match attribute {
            RuleAttribute::Priority(priority) => rule.priority = *priority,
            RuleAttribute::Table(table) => rule.table = *table,
            RuleAttribute::Source(address) => {
                rule.source = IpNet::new(*address, message.header.src_len).ok();
            }
            RuleAttribute::Destination(address) => {
                rule.destination = IpNet::new(*address, message.header.dst_len).ok();
            }
            RuleAttribute::Iifname(_)
            | RuleAttribute::Oifname(_)
            | RuleAttribute::FwMark(_)
            | RuleAttribute::Goto(_)
            | RuleAttribute::UidRange(_)
            | RuleAttribute::IpProtocol(_)
            | RuleAttribute::SourcePortRange(_)
            | RuleAttribute::DestinationPortRange(_) => rule.has_other_selectors = true,
            _ => {}
        }
    }
    if message.header.action != RuleAction::ToTable {
        rule.has_other_selectors = true;
    }
    rule
}

/// Renders a rule the way `ip rule` prints it: `from 192.0.2.1 lookup 2`.
pub fn describe_rule(source: Option<IpAddr>, destination: Option<IpAddr>, table: u32) -> String {
    let mut text = String::from("from ");
    match source {
        Some(address) => text.push_str(&address.to_string()),
        None => text.push_str("all"),
    }
    if let Some(address) = destination {
        text.push_str(&format!(" to {address}"));
    }
    text.push_str(&format!(" lookup {table}"));
    text
}

pub fn format_mac(mac: &[u8]) -> String {
    mac.iter()
        .map(|byte| format!("{byte:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Builds a route message with the table stored both in the header (for
/// tables below 256) and as an attribute, as iproute2 does.
fn with_table(mut route: RouteMessage, table: u32) -> RouteMessage {
    route.header.table = if table < 256 {
        table as u8
    } else {
        RouteHeader::RT_TABLE_UNSPEC
    };
    route.attributes.push(RouteAttribute::Table(table));
    route
}

/// `local <address> dev <index> src <source> table local`: the route that
/// makes the kernel accept packets for `address`, with `source` as the
/// preferred source of connections the node opens to it.
pub fn local_route(address: IpAddr, index: u32, source: IpAddr) -> RouteMessage {
    let mut route = match (address, source) {
        (IpAddr::V4(address), IpAddr::V4(source)) => RouteMessageBuilder::<Ipv4Addr>::new()
            .destination_prefix(address, 32)
            .pref_source(source)
            .output_interface(index)
            .build(),
        (IpAddr::V6(address), IpAddr::V6(source)) => RouteMessageBuilder::<Ipv6Addr>::new()
            .destination_prefix(address, 128)
            .pref_source(source)
            .output_interface(index)
            .build(),
        _ => panic!("local_route needs addresses of one family"),
    };
    route.header.kind = RouteType::Local;
    route.header.scope = RouteScope::Host;
    route.header.protocol = RouteProtocol::Boot;
    with_table(route, TABLE_LOCAL)
}

/// `<network> dev <index> table <table> scope link proto boot`.
pub fn device_route(network: IpNet, index: u32, table: u32) -> RouteMessage {
    let mut route = match network {
        IpNet::V4(net) => RouteMessageBuilder::<Ipv4Addr>::new()
            .destination_prefix(net.network(), net.prefix_len())
            .output_interface(index)
            .build(),
        IpNet::V6(net) => RouteMessageBuilder::<Ipv6Addr>::new()
            .destination_prefix(net.network(), net.prefix_len())
            .output_interface(index)
            .build(),
    };
    route.header.scope = RouteScope::Link;
    route.header.protocol = RouteProtocol::Boot;
    with_table(route, table)
}

/// `default via <gateway> dev <index> table <table> proto boot`.
pub fn default_route(gateway: Ipv4Addr, index: u32, table: u32) -> RouteMessage {
    let mut route = RouteMessageBuilder::<Ipv4Addr>::new()
        .gateway(gateway)
        .output_interface(index)
        .build();
    route.header.protocol = RouteProtocol::Boot;
    with_table(route, table)
}

/// The parts of a route the NCC looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteView {
    pub table: u32,
    pub kind: RouteType,
    pub protocol: RouteProtocol,
    pub destination: Option<IpNet>,
    pub gateway: Option<IpAddr>,
    pub output: Option<u32>,
    pub preferred_source: Option<IpAddr>,
}

/// Reports whether `view` is the local route the NCC installs for a VIP
/// on interface `index` (see [`local_route`]), not one the kernel added.
pub fn is_own_local_route(view: &RouteView, index: u32, source: IpAddr) -> bool {
    view.preferred_source == Some(source)
        && view.output == Some(index)
        && view.protocol == RouteProtocol::Boot
}

pub fn view_route(route: &RouteMessage) -> RouteView {
    let mut view = RouteView {
        table: u32::from(route.header.table),
        kind: route.header.kind,
        protocol: route.header.protocol,
        destination: None,
        gateway: None,
        output: None,
        preferred_source: None,
    };
    let prefix_len = route.header.destination_prefix_length;
    for attribute in &route.attributes {
        match attribute {
            RouteAttribute::Table(table) => view.table = *table,
            RouteAttribute::Destination(address) => {
                view.destination = route_ip(address).and_then(|ip| IpNet::new(ip, prefix_len).ok());
            }
            RouteAttribute::Gateway(address) => view.gateway = route_ip(address),
            RouteAttribute::Oif(index) => view.output = Some(*index),
            RouteAttribute::PrefSource(address) => view.preferred_source = route_ip(address),
            _ => {}
        }
    }
    if view.destination.is_none() {
        let unspecified = if route.header.address_family == AddressFamily::Inet6 {
            IpAddr::V6(Ipv6Addr::UNSPECIFIED)
        } else {
            IpAddr::V4(Ipv4Addr::UNSPECIFIED)
        };
        view.destination = IpNet::new(unspecified, 0).ok();
    }
    view
}

fn route_ip(address: &RouteAddress) -> Option<IpAddr> {
    match address {
        RouteAddress::Inet(v4) => Some(IpAddr::V4(*v4)),
        RouteAddress::Inet6(v6) => Some(IpAddr::V6(*v6)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_description_like_ip_rule() {
        let vip: IpAddr = "192.0.2.1".parse().unwrap();

        assert_eq!(describe_rule(Some(vip), None, 2), "from 192.0.2.1 lookup 2");
        assert_eq!(
            describe_rule(None, Some(vip), 2),
            "from all to 192.0.2.1 lookup 2"
        );
    }

    #[test]
    fn local_route_fields() {
        let route = local_route(
            "192.0.2.1".parse().unwrap(),
            3,
            "192.0.2.9".parse().unwrap(),
        );
        let view = view_route(&route);

        assert_eq!(view.table, TABLE_LOCAL);
        assert_eq!(view.kind, RouteType::Local);
        assert_eq!(view.destination, Some("192.0.2.1/32".parse().unwrap()));
        assert_eq!(view.preferred_source, Some("192.0.2.9".parse().unwrap()));
        assert_eq!(view.output, Some(3));
        assert_eq!(route.header.scope, RouteScope::Host);
    }

    #[test]
    fn device_route_is_scope_link() {
        let route = device_route("192.0.2.0/24".parse().unwrap(), 3, 2);

        assert_eq!(route.header.scope, RouteScope::Link);
        assert_eq!(route.header.protocol, RouteProtocol::Boot);
        assert_eq!(view_route(&route).table, 2);
    }

    #[test]
    fn default_route_without_destination() {
        let view = view_route(&default_route("192.0.2.254".parse().unwrap(), 3, 2));

        assert_eq!(view.destination, Some("0.0.0.0/0".parse().unwrap()));
        assert_eq!(view.gateway, Some("192.0.2.254".parse().unwrap()));
    }

    #[test]
    fn mac_text() {
        assert_eq!(format_mac(&[0, 0, 0x5e, 0, 1, 0x3c]), "00:00:5e:00:01:3c");
    }
}
