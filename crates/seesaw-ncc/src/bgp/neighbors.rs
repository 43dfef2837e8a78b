//! Parses the output of `show ip bgp neighbors` of FRR 8.4 and Quagga.
//!
//! Each neighbour starts with a line at column 0, followed by indented
//! detail lines:
//!
//! ```text
//! BGP neighbor is 198.18.0.2, remote AS 64513, local AS 64512, external link
//!  Description: router
//!   BGP version 4, remote router ID 198.18.0.2, local router ID 198.18.0.1
//!   BGP state = Established, up for 00:00:34
//!   Message statistics:
//!                          Sent       Rcvd
//!     Opens:                  3          3
//!     Route Refresh:          0          0
//!     Total:                 15         13
//! ```
//!
//! An interface (unnumbered) neighbour of FRR starts with `BGP neighbor on
//! eth1: fe80::1, remote AS ...`, with `(unspec)` in place of the address
//! until the peer is discovered.

use std::net::IpAddr;
use std::time::Duration;

/// A state of the BGP finite state machine (RFC 4271, section 8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BgpState {
    /// A state name other than the six below, such as FRR's `Clearing`
    /// or `Deleted`.
    #[default]
    Unknown,
    Idle,
    Connect,
    Active,
    OpenSent,
    OpenConfirm,
    Established,
}

impl BgpState {
    /// Returns the state named `name`, ignoring case.
    pub fn from_name(name: &str) -> BgpState {
        [
            BgpState::Idle,
            BgpState::Connect,
            BgpState::Active,
            BgpState::OpenSent,
            BgpState::OpenConfirm,
            BgpState::Established,
        ]
        .into_iter()
        .find(|state| state.name().eq_ignore_ascii_case(name))
        .unwrap_or(BgpState::Unknown)
    }

    pub fn name(self) -> &'static str {
        match self {
            BgpState::Unknown => "Unknown",
            BgpState::Idle => "Idle",
            BgpState::Connect => "Connect",
            BgpState::Active => "Active",
            BgpState::OpenSent => "OpenSent",
            BgpState::OpenConfirm => "OpenConfirm",
            BgpState::Established => "Established",
        }
    }
}

/// Messages of one type sent to and received from a neighbour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MessageCount {
    pub sent: u64,
    pub received: u64,
}

/// The `Message statistics` table of one neighbour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MessageStats {
    pub opens: MessageCount,
    pub notifications: MessageCount,
    pub updates: MessageCount,
    pub keepalives: MessageCount,
    pub route_refresh: MessageCount,
    pub capability: MessageCount,
    pub total: MessageCount,
}

/// One BGP neighbour as bgpd reports it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Neighbor {
    /// `None` for an interface neighbour whose address is not known yet.
    pub address: Option<IpAddr>,
    /// The interface of an interface neighbour.
    pub interface: Option<String>,
    /// The remote AS as printed; FRR prints 0 for `remote-as internal` or
    /// `external` until the session comes up.
    pub asn: u32,
    /// `None` when the line is missing or does not parse; FRR prints
    /// 0.0.0.0 before the first session.
    pub router_id: Option<IpAddr>,
    pub description: String,
    pub state: BgpState,
    /// Time in Established, at the resolution bgpd prints (seconds under a
    /// day, minutes under a week, hours beyond).
    pub uptime: Duration,
    pub messages: MessageStats,
}

/// Parses `show ip bgp neighbors` output. Lines before the first neighbour,
/// and lines that match nothing, are ignored.
pub fn parse_neighbors(output: &str) -> Vec<Neighbor> {
    let mut neighbors: Vec<Neighbor> = Vec::new();
    // Whether detail lines belong to the last neighbour: not after a
    // header that did not parse, so its details go nowhere.
    let mut in_neighbor = false;
    let mut in_message_stats = false;
    for line in output.lines() {
        if line.starts_with("BGP neighbor ") {
            in_message_stats = false;
            let header = parse_header(line);
            in_neighbor = header.is_some();
            neighbors.extend(header);
            continue;
        }
        let Some(neighbor) = neighbors.last_mut().filter(|_| in_neighbor) else {
            continue;
        };

        if let Some(description) = line.strip_prefix(" Description: ") {
            neighbor.description = description.to_owned();
        } else if let Some(rest) = line.strip_prefix("  BGP state = ") {
            parse_state(rest, neighbor);
        } else if let Some(rest) = line.strip_prefix("  BGP version ") {
            neighbor.router_id = rest
                .split_once("remote router ID ")
                .and_then(|(_, id)| id.split([',', ' ']).next())
                .and_then(|id| id.parse().ok());
        } else if line == "  Message statistics:" {
            in_message_stats = true;
        } else if in_message_stats && let Some((name, count)) = parse_message_count(line) {
            let stats = &mut neighbor.messages;
            let slot = match name {
                "Opens" => &mut stats.opens,
                "Notifications" => &mut stats.notifications,
                "Updates" => &mut stats.updates,
                "Keepalives" => &mut stats.keepalives,
                "Route Refresh" => &mut stats.route_refresh,
                "Capability" => &mut stats.capability,
                "Total" => &mut stats.total,
                _ => continue,
            };
            *slot = count;
            if name == "Total" {
                in_message_stats = false;
            }
        }
    }
    neighbors
}

/// Parses `BGP neighbor is <address>, remote AS <asn>, ...` or FRR's
/// `BGP neighbor on <interface>: <address>, remote AS <asn>, ...`.
fn parse_header(line: &str) -> Option<Neighbor> {
    let (who, rest) = line.split_once(", remote AS ")?;
    let asn = rest.split(',').next()?.trim().parse().ok()?;
    let mut neighbor = Neighbor {
        asn,
        ..Neighbor::default()
    };
    if let Some(address) = who.strip_prefix("BGP neighbor is ") {
        // FRR marks a neighbour of a `bgp listen range` with a `*`.
        neighbor.address = Some(address.trim_start_matches('*').parse().ok()?);
    } else {
        let (interface, address) = who.strip_prefix("BGP neighbor on ")?.split_once(": ")?;
        neighbor.interface = Some(interface.to_owned());
        neighbor.address = address.parse().ok();
    }
    Some(neighbor)
}

/// Parses the rest of `  BGP state = Established, up for 00:00:34` or of
/// FRR's `  BGP state = Active (passive)`.
fn parse_state(rest: &str, neighbor: &mut Neighbor) {
    let name = rest
        .split(|c: char| !c.is_ascii_alphanumeric())
        .next()
        .unwrap_or_default();
    neighbor.state = BgpState::from_name(name);
    neighbor.uptime = rest
        .split_once(", up for ")
        .map(|(_, uptime)| parse_uptime(uptime.trim()))
        .unwrap_or_default();
}

/// Parses a line of the message statistics table, such as
/// `    Route Refresh:          0          0`.
fn parse_message_count(line: &str) -> Option<(&str, MessageCount)> {
    let (name, counts) = line.strip_prefix("    ")?.split_once(':')?;
    let mut counts = counts.split_whitespace();
    let sent = counts.next()?.parse().ok()?;
    let received = counts.next()?.parse().ok()?;
    if counts.next().is_some() {
        return None;
    }
    Some((name, MessageCount { sent, received }))
}

/// Parses an uptime as bgpd prints it: `hh:mm:ss` under a day, `NdNNhNNm`
/// under a week and `NNwNdNNh` beyond. `never`, `<error>` and anything
/// else give zero.
pub fn parse_uptime(text: &str) -> Duration {
    const MINUTE: u64 = 60;
    const HOUR: u64 = 60 * MINUTE;
    const DAY: u64 = 24 * HOUR;
    const WEEK: u64 = 7 * DAY;

    let seconds = if let Some([h, m, s]) = clock(text) {
        h * HOUR + m * MINUTE + s
    } else if let Some([d, h, m]) = with_units(text, ['d', 'h', 'm']) {
        d * DAY + h * HOUR + m * MINUTE
    } else if let Some([w, d, h]) = with_units(text, ['w', 'd', 'h']) {
        w * WEEK + d * DAY + h * HOUR
    } else {
        0
    };
    Duration::from_secs(seconds)
}

/// Parses three numbers, each followed by its unit letter, such as
/// `2d23h12m` with the units `d`, `h` and `m`.
fn with_units(text: &str, units: [char; 3]) -> Option<[u64; 3]> {
    let mut values = [0; 3];
    let mut rest = text;
    for (value, unit) in values.iter_mut().zip(units) {
        let (number, tail) = rest.split_once(unit)?;
        // u32 fields keep the sum within u64, whatever bgpd prints.
        *value = u64::from(number.parse::<u32>().ok()?);
        rest = tail;
    }
    rest.is_empty().then_some(values)
}

/// Parses `hh:mm:ss`.
fn clock(text: &str) -> Option<[u64; 3]> {
    let mut fields = text
        .split(':')
        .map(|field| field.parse::<u32>().ok().map(u64::from));
    let time = [fields.next()??, fields.next()??, fields.next()??];
    fields.next().is_none().then_some(time)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn captured_neighbors() -> Vec<Neighbor> {
        let captured = include_bytes!("../../tests/fixtures/frr/show-ip-bgp-neighbors.vty");
        let text = std::str::from_utf8(&captured[..captured.len() - 4]).unwrap();
        parse_neighbors(text)
    }

    fn address(text: &str) -> Option<IpAddr> {
        Some(text.parse().unwrap())
    }

    #[test]
    fn frr_neighbor_addresses_and_states() {
        let neighbors = captured_neighbors();
        let summary: Vec<_> = neighbors
            .iter()
            .map(|n| (n.address, n.interface.as_deref(), n.asn, n.state))
            .collect();
        assert_eq!(
            summary,
            [
                (None, Some("bgpx-a"), 0, BgpState::Idle),
                (address("198.18.0.2"), None, 64513, BgpState::Established),
                (address("198.18.0.97"), None, 0, BgpState::Active),
                (address("198.18.0.98"), None, 65001, BgpState::Idle),
                (address("198.18.0.99"), None, 65000, BgpState::Active),
                (address("2001:db8:5::2"), None, 64514, BgpState::Active),
            ]
        );
    }

    #[test]
    fn frr_established_neighbor() {
        let neighbors = captured_neighbors();
        let router = &neighbors[1];
        assert_eq!(router.description, "router");
        assert_eq!(router.router_id, address("198.18.0.2"));
        assert_eq!(router.uptime, Duration::from_secs(34));
        let count = |sent, received| MessageCount { sent, received };
        assert_eq!(
            router.messages,
            MessageStats {
                opens: count(3, 3),
                notifications: count(2, 0),
                updates: count(7, 7),
                keepalives: count(3, 3),
                route_refresh: count(0, 0),
                capability: count(0, 0),
                total: count(15, 13),
            }
        );
    }

    #[test]
    fn frr_idle_neighbors() {
        let neighbors = captured_neighbors();
        assert_eq!(neighbors[2].description, "two words here");
        assert_eq!(neighbors[2].router_id, address("0.0.0.0"));
        assert_eq!(neighbors[2].uptime, Duration::ZERO);
        // An administratively shut down neighbour has no description line.
        assert_eq!(neighbors[3].description, "");
        assert_eq!(neighbors[3].messages, MessageStats::default());
    }

    #[test]
    fn quagga_neighbor_with_route_refresh() {
        let text = "\
BGP neighbor is 192.0.2.1, remote AS 64513, local AS 64512, external link
 Description: core router 1
  BGP version 4, remote router ID 192.0.2.254
  BGP state = Established, up for 2d23h12m
  Message statistics:
    Inq depth is 0
    Outq depth is 0
                         Sent       Rcvd
    Opens:                  1          1
    Notifications:          0          0
    Updates:                4          9
    Keepalives:          4271       4272
    Route Refresh:          2          1
    Capability:             0          0
    Total:               4278       4283
  Minimum time between advertisement runs is 30 seconds
    Opens:                 99         99
";
        let neighbors = parse_neighbors(text);
        assert_eq!(neighbors.len(), 1);
        let neighbor = &neighbors[0];
        assert_eq!(neighbor.description, "core router 1");
        assert_eq!(neighbor.router_id, address("192.0.2.254"));
        assert_eq!(neighbor.state, BgpState::Established);
        assert_eq!(
            neighbor.uptime,
            Duration::from_secs(2 * 86400 + 23 * 3600 + 12 * 60)
        );
        assert_eq!(
            neighbor.messages.route_refresh,
            MessageCount {
                sent: 2,
                received: 1
            }
        );
        assert_eq!(neighbor.messages.keepalives.received, 4272);
        // The table ends at Total: later lines of the same shape are not counts.
        assert_eq!(
            neighbor.messages.opens,
            MessageCount {
                sent: 1,
                received: 1
            }
        );
    }

    #[test]
    fn ignores_lines_before_first_neighbor() {
        let text = "% BGP instance not found\n  BGP state = Established, up for 00:01:00\n";
        assert!(parse_neighbors(text).is_empty());
        assert!(parse_neighbors("").is_empty());
    }

    #[test]
    fn dynamic_neighbor_address() {
        let text = "BGP neighbor is *198.18.5.7, remote AS 65010, local AS 64512, external link\n";
        assert_eq!(parse_neighbors(text)[0].address, address("198.18.5.7"));
    }

    #[test]
    fn unparsable_header_does_not_collect_details() {
        let text = "\
BGP neighbor is 198.18.0.2, remote AS 64513, local AS 64512, external link
 Description: first
BGP neighbor is something new, remote AS x
 Description: second
";
        let neighbors = parse_neighbors(text);
        assert_eq!(neighbors.len(), 1);
        assert_eq!(neighbors[0].description, "first");
    }

    #[test]
    fn state_names() {
        assert_eq!(BgpState::from_name("established"), BgpState::Established);
        assert_eq!(BgpState::from_name("OpenConfirm"), BgpState::OpenConfirm);
        assert_eq!(BgpState::from_name("Clearing"), BgpState::Unknown);
        for state in [BgpState::Idle, BgpState::OpenSent, BgpState::Unknown] {
            assert_eq!(BgpState::from_name(state.name()), state);
        }
    }

    #[test]
    fn uptime_formats() {
        let cases = [
            ("07:05:56", 7 * 3600 + 5 * 60 + 56),
            ("2d23h12m", 2 * 86400 + 23 * 3600 + 12 * 60),
            ("03w5d13h", 3 * 7 * 86400 + 5 * 86400 + 13 * 3600),
            ("never", 0),
            ("<error>", 0),
            ("", 0),
            ("1:2", 0),
            ("1:2:3:4", 0),
            ("2d23h", 0),
            ("xd1h1m", 0),
        ];
        for (text, seconds) in cases {
            assert_eq!(parse_uptime(text), Duration::from_secs(seconds), "{text:?}");
        }
    }
}
