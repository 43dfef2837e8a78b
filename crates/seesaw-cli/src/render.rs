//! The text output of the show commands, as pure functions of the
//! engine's replies, laid out as the original shell prints them.

use std::fmt::Write as _;

use jiff::tz::TimeZone;
use seesaw_ipc::engine_proto::{
    BgpNeighbor, BgpNeighborList, ClusterStatusReply, ConfigStatusReply, HaState, HaStatus, Host,
    Node, OverrideState, Service, Vlan, Vserver,
};

use crate::layout::{go_duration, go_time, label, push_value, status_summary};
use crate::select::{
    BackendGroups, BackendState, DestinationView, backend_hostname, backend_state,
};

/// The moment and time zone that times and durations are shown in.
#[derive(Debug, Clone)]
pub struct Clock {
    /// Unix time in milliseconds.
    pub now_ms: i64,
    pub zone: TimeZone,
}

impl Clock {
    /// Returns the current time in the system's time zone.
    pub fn system() -> Self {
        Clock {
            now_ms: jiff::Timestamp::now().as_millisecond(),
            zone: TimeZone::system(),
        }
    }
}

/// Returns the name of an HA state as the original prints it: `LEADER`,
/// `BACKUP`, or the number for a value this shell does not know.
pub fn ha_state_name(state: i32) -> String {
    match HaState::try_from(state) {
        Ok(known) => known
            .as_str_name()
            .trim_start_matches("HA_STATE_")
            .to_string(),
        Err(_) => state.to_string(),
    }
}

/// Returns `default`, `disabled` or `enabled`.
pub fn override_state_name(state: i32) -> &'static str {
    match OverrideState::try_from(state) {
        Ok(OverrideState::Disabled) => "disabled",
        Ok(OverrideState::Enabled) => "enabled",
        _ => "default",
    }
}

/// Returns a host address as `ip/prefix`, or `<not configured>`.
fn printable(address: &str) -> &str {
    if address.is_empty() {
        "<not configured>"
    } else {
        address
    }
}

fn ipv4_of(host: Option<&Host>) -> &str {
    printable(host.map_or("", |h| h.ipv4.as_str()))
}

fn ipv6_of(host: Option<&Host>) -> &str {
    printable(host.map_or("", |h| h.ipv6.as_str()))
}

/// `show ha`.
pub fn ha_status(ha: &HaStatus, clock: &Clock) -> String {
    let duration = if ha.since_ms == 0 {
        "N/A".to_string()
    } else {
        // Whole seconds, as the original truncates them.
        let elapsed = clock.now_ms.saturating_sub(ha.since_ms).max(0) as u64 / 1000 * 1000;
        format!(
            "{} (since {})",
            go_duration(elapsed),
            go_time(ha.since_ms, &clock.zone)
        )
    };

    let mut out = String::from("HA Status\n");
    push_value(&mut out, "State:", ha_state_name(ha.state));
    push_value(&mut out, "Duration:", duration);
    push_value(&mut out, "Transitions:", ha.transitions);
    push_value(&mut out, "Advertisements Sent:", ha.sent);
    push_value(&mut out, "Advertisements Rcvd:", ha.received);
    push_value(
        &mut out,
        "Last Update:",
        go_time(ha.last_update_ms, &clock.zone),
    );
    out
}

/// `config status`. The label of Last Update has no colon, as in the
/// original.
pub fn config_status(status: &ConfigStatusReply, zone: &TimeZone) -> String {
    let mut out = String::from("Config Status\n");
    push_value(
        &mut out,
        "Last Update",
        go_time(status.last_update_ms, zone),
    );
    out.push_str("\n  Attributes:\n");
    for attribute in &status.attributes {
        push_value(&mut out, &label(&attribute.name, 4, 18), &attribute.value);
    }
    out
}

/// `show warnings`.
pub fn warnings(status: &ConfigStatusReply) -> String {
    if status.warnings.is_empty() {
        return "No warnings.\n".to_string();
    }
    let mut out = format!("There are {} warnings:\n\n", status.warnings.len());
    for (index, warning) in status.warnings.iter().enumerate() {
        let _ = writeln!(out, "[{:3}] {warning}", index + 1);
    }
    out
}

/// `show nodes`: the nodes in the order given.
pub fn node_list(nodes: &[&Node]) -> String {
    let mut out = String::from("Nodes\n");
    for (index, node) in nodes.iter().enumerate() {
        let state = if node.state == HaState::Disabled as i32 {
            "disabled"
        } else {
            "enabled"
        };
        let name = node.host.as_ref().map_or("", |h| h.hostname.as_str());
        let _ = writeln!(out, "[{}] {name} {state}", index + 1);
    }
    out
}

/// `show nodes <hostname>`.
pub fn node_detail(cluster: &ClusterStatusReply, node: &Node) -> String {
    let host = node.host.as_ref();
    let mut out = String::from("Node\n");
    push_value(&mut out, "Hostname:", host.map_or("", |h| &h.hostname));
    push_value(&mut out, "Site:", &cluster.site);
    push_value(&mut out, "IPv4 Address:", ipv4_of(host));
    push_value(&mut out, "IPv6 Address:", ipv6_of(host));
    push_value(
        &mut out,
        "HA Enabled:",
        node.state != HaState::Disabled as i32,
    );
    push_value(&mut out, "Anycast Enabled:", node.anycast_enabled);
    push_value(&mut out, "BGP Enabled:", node.bgp_enabled);
    push_value(&mut out, "Vservers Enabled:", node.vservers_enabled);
    out
}

/// `show vlans`: the VLANs in the order given.
pub fn vlan_list(vlans: &[&Vlan]) -> String {
    let mut out = String::from("VLANs\n");
    for (index, vlan) in vlans.iter().enumerate() {
        let name = vlan.host.as_ref().map_or("", |h| h.hostname.as_str());
        let _ = writeln!(out, "[{:3}] VLAN ID {} - {name}", index + 1, vlan.id);
    }
    out
}

/// `show vlans <id|ip>`.
pub fn vlan_detail(vlan: &Vlan) -> String {
    let host = vlan.host.as_ref();
    let mut out = String::from("VLAN\n");
    push_value(&mut out, "ID:", vlan.id);
    push_value(&mut out, "Hostname:", host.map_or("", |h| &h.hostname));
    push_value(&mut out, "IPv4 Address:", ipv4_of(host));
    push_value(&mut out, "IPv6 Address:", ipv6_of(host));
    push_value(&mut out, "IPv4 Backend Count:", vlan.backends_ipv4);
    push_value(&mut out, "IPv6 Backend Count:", vlan.backends_ipv6);
    push_value(&mut out, "IPv4 VIP Count:", vlan.vips_ipv4);
    push_value(&mut out, "IPv6 VIP Count:", vlan.vips_ipv6);
    out
}

/// `show bgp neighbors`, in the engine's order.
pub fn neighbor_list(list: &BgpNeighborList) -> String {
    let mut out = String::from("BGP Neighbors\n");
    for (index, neighbor) in list.neighbors.iter().enumerate() {
        let _ = writeln!(
            out,
            "[{:3}] {} ({}, {})",
            index + 1,
            neighbor.ip,
            neighbor.state,
            go_duration(neighbor.uptime_ms)
        );
    }
    out
}

/// `show bgp neighbors <ip>`.
pub fn neighbor_detail(neighbor: &BgpNeighbor) -> String {
    let mut out = String::from("BGP Neighbor\n");
    push_value(&mut out, "IP Address:", &neighbor.ip);
    push_value(&mut out, "Router ID:", &neighbor.router_id);
    push_value(&mut out, "ASN:", neighbor.asn);
    push_value(&mut out, "Description:", &neighbor.description);
    push_value(&mut out, "BGP State:", &neighbor.state);
    push_value(&mut out, "Duration:", go_duration(neighbor.uptime_ms));
    out
}

/// `show vservers` with several matches: names in the order given.
pub fn vserver_list(vservers: &[&Vserver]) -> String {
    let mut out = String::from("Vservers\n");
    for (index, vserver) in vservers.iter().enumerate() {
        let status = if vserver.enabled { "" } else { " (disabled)" };
        let _ = writeln!(out, "[{:3}] {}{status}", index + 1, vserver.name);
    }
    out
}

/// Returns the name of an address family as the original prints it.
pub fn family_name(family: u32) -> String {
    match family {
        4 => "IPv4".to_string(),
        6 => "IPv6".to_string(),
        other => format!("AF({other})"),
    }
}

/// Returns the name of an IP protocol as the original prints it; a
/// firewall-mark service has protocol 0, printed `IP(0)`.
pub fn protocol_name(protocol: u32) -> String {
    match protocol {
        1 => "ICMP".to_string(),
        6 => "TCP".to_string(),
        17 => "UDP".to_string(),
        58 => "ICMPv6".to_string(),
        other => format!("IP({other})"),
    }
}

/// Returns the services sorted by address family, protocol and port.
pub fn sorted_services(vserver: &Vserver) -> Vec<&Service> {
    let mut services: Vec<&Service> = vserver.services.iter().collect();
    services.sort_by_key(|s| (s.family, s.protocol, s.port));
    services
}

/// `show vservers` with one match.
pub fn vserver_detail(vserver: &Vserver) -> String {
    let host = vserver.host.as_ref();
    let status = format!(
        "{} (override state {}; config state {})",
        if vserver.enabled {
            "enabled"
        } else {
            "disabled"
        },
        override_state_name(vserver.override_state),
        if vserver.config_enabled {
            "enabled"
        } else {
            "disabled"
        },
    );

    let mut out = String::from("Vserver\n");
    push_value(&mut out, "Name:", &vserver.name);
    push_value(&mut out, "Hostname:", host.map_or("", |h| &h.hostname));
    push_value(&mut out, "Status:", status);
    push_value(&mut out, "IPv4 Address:", ipv4_of(host));
    push_value(&mut out, "IPv6 Address:", ipv6_of(host));
    out.push_str("\n  Services:\n");

    for service in sorted_services(vserver) {
        push_service(&mut out, service);
    }

    if !vserver.warnings.is_empty() {
        out.push_str("\n  Warnings:\n");
        for warning in &vserver.warnings {
            let _ = writeln!(out, "    - {warning}");
        }
    }
    out
}

fn push_service(out: &mut String, service: &Service) {
    let mode = if service.mode.is_empty() {
        "None"
    } else {
        service.mode.as_str()
    };
    let mut parts = vec![mode.to_string(), format!("{} scheduler", service.scheduler)];
    if service.one_packet {
        parts.push("one-packet mode".to_string());
    }
    if service.persistence > 0 {
        parts.push(format!("{}s persistence", service.persistence));
    }
    let key = format!(
        "{} {}/{}",
        family_name(service.family),
        protocol_name(service.protocol),
        service.port
    );

    let _ = writeln!(out, "\n{} ({})", label(&key, 4, 18), parts.join(", "));
    let _ = writeln!(
        out,
        "{} {}",
        label("State:", 8, 20),
        status_summary(service.enabled, service.healthy, service.active)
    );
    let _ = writeln!(
        out,
        "{} Low {:.2}, High {:.2}, Currently {:.2}",
        label("Watermarks:", 8, 20),
        service.low_watermark,
        service.high_watermark,
        service.current_watermark
    );
}

/// Returns a destination's state as lists show it: `enabled, healthy,
/// active` and its variants, `disabled`, or `vserver disabled`.
pub fn destination_status(view: &DestinationView) -> String {
    let d = view.destination;
    if view.vserver_enabled {
        status_summary(d.enabled, d.healthy, d.active)
    } else {
        "vserver disabled".to_string()
    }
}

/// Returns `<name> (<status>)` for a destination in a list.
pub fn destination_summary(view: &DestinationView) -> String {
    format!("{} ({})", view.destination.name, destination_status(view))
}

/// `show destinations` with several matches.
pub fn destination_list(views: &[DestinationView]) -> String {
    let mut out = String::from("Destinations\n");
    for (index, view) in views.iter().enumerate() {
        let _ = writeln!(out, "[{:4}] {}", index + 1, destination_summary(view));
    }
    out
}

/// `show destinations` with one match.
pub fn destination_detail(view: &DestinationView) -> String {
    let d = view.destination;
    let mut vserver = d.vserver_name.clone();
    if !view.vserver_enabled {
        vserver.push_str(" (disabled)");
    }

    let mut out = String::from("Destination\n");
    push_value(&mut out, "Name:", &d.name);
    push_value(&mut out, "Vserver:", vserver);
    push_value(&mut out, "Backend:", backend_hostname(d));
    push_value(&mut out, "Enabled:", d.enabled);
    push_value(&mut out, "Healthy:", d.healthy);
    push_value(&mut out, "Active:", d.active);
    out
}

/// `show backends` with several matches.
pub fn backend_list(groups: &BackendGroups) -> String {
    let mut out = String::from("Backends\n");
    for (index, (host, views)) in groups.iter().enumerate() {
        let suffix = match backend_state(views) {
            BackendState::Enabled => "",
            BackendState::PartiallyDisabled => " (partially disabled)",
            BackendState::Disabled => " (disabled)",
        };
        let _ = writeln!(out, "[{:4}] {host}{suffix}", index + 1);
    }
    out
}

/// `show backends` with one match: its destinations.
pub fn backend_detail(host: &str, views: &[DestinationView]) -> String {
    let mut out = format!("Backend\n  Hostname: {host}\n  Destinations:\n");
    for (index, view) in views.iter().enumerate() {
        let _ = writeln!(out, "  [{:3}] {}", index + 1, destination_summary(view));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ha_state_names() {
        assert_eq!(ha_state_name(HaState::Leader as i32), "LEADER");
        assert_eq!(ha_state_name(HaState::Backup as i32), "BACKUP");
        assert_eq!(ha_state_name(42), "42");
    }

    #[test]
    fn ha_duration_truncates_to_seconds() {
        let ha = HaStatus {
            state: HaState::Leader as i32,
            since_ms: 1_000_000,
            last_update_ms: 1_049_000,
            ..HaStatus::default()
        };
        let clock = Clock {
            now_ms: 1_049_999,
            zone: TimeZone::UTC,
        };

        let text = ha_status(&ha, &clock);

        assert!(
            text.contains("  Duration:            49s (since Jan 1 00:16:40 UTC)\n"),
            "{text}"
        );
    }

    #[test]
    fn ha_without_since_is_not_available() {
        let text = ha_status(
            &HaStatus::default(),
            &Clock {
                now_ms: 0,
                zone: TimeZone::UTC,
            },
        );

        assert!(text.contains("  Duration:            N/A\n"), "{text}");
        assert!(text.contains("  State:               UNKNOWN\n"), "{text}");
    }

    #[test]
    fn service_header_lists_options() {
        let service = Service {
            family: 4,
            protocol: 17,
            port: 53,
            mode: "DSR".into(),
            scheduler: "rr".into(),
            one_packet: true,
            persistence: 100,
            enabled: true,
            low_watermark: 0.3,
            high_watermark: 0.3,
            current_watermark: 0.25,
            ..Service::default()
        };
        let mut out = String::new();

        push_service(&mut out, &service);

        assert_eq!(
            out,
            "\n    IPv4 UDP/53    (DSR, rr scheduler, one-packet mode, 100s persistence)\n        State:       enabled, unhealthy, inactive\n        Watermarks:  Low 0.30, High 0.30, Currently 0.25\n"
        );
    }

    #[test]
    fn firewall_mark_service_prints_ip_zero() {
        let service = Service {
            family: 6,
            fwmark: 300,
            scheduler: "wlc".into(),
            ..Service::default()
        };
        let mut out = String::new();

        push_service(&mut out, &service);

        assert!(
            out.starts_with("\n    IPv6 IP(0)/0   (None, wlc scheduler)\n"),
            "{out}"
        );
        assert!(out.contains("State:       disabled\n"), "{out}");
    }
}
