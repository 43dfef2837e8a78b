//! Reads what the NCC needs from bgpd's running configuration: the AS
//! number of the default `router bgp` instance, its `network` statements
//! and the statements that configure neighbors.
//!
//! FRR 8.4 prints IPv4 unicast networks inside an `address-family ipv4
//! unicast` block and closes the instance with `exit`:
//!
//! ```text
//! router bgp 64512
//!  neighbor 198.18.0.2 remote-as 64513
//!  !
//!  address-family ipv4 unicast
//!   network 192.168.255.1/32
//!  exit-address-family
//!  !
//!  address-family ipv6 unicast
//!   network 2015:cafe:ffff::1/128
//!  exit-address-family
//! exit
//! ```
//!
//! Quagga prints IPv4 unicast networks directly under `router bgp` with one
//! space of indentation, IPv6 ones under `address-family ipv6`, and ends
//! the instance at the next line that is not indented.

use ipnet::IpNet;

/// The default BGP instance: `router bgp <asn>` without `vrf` or `view`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BgpInstance {
    pub asn: u32,
    /// Prefixes of the `network` statements of the IPv4 and IPv6 unicast
    /// address families, in configuration order. Other address families
    /// (VPN, multicast, EVPN, flowspec) are left out.
    pub networks: Vec<IpNet>,
    /// The statements outside every address-family block, trimmed, such
    /// as `neighbor 198.18.0.2 remote-as 64513`. Quagga also prints the
    /// IPv4 unicast statements here.
    pub statements: Vec<String>,
    /// The statements of the `address-family ipv4 unicast` block, trimmed.
    pub ipv4_unicast: Vec<String>,
    /// The statements of the `address-family ipv6 unicast` block (Quagga:
    /// `address-family ipv6`), trimmed.
    pub ipv6_unicast: Vec<String>,
}

/// The address family block a configuration line is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    Ipv4Unicast,
    Ipv6Unicast,
    Other,
}

/// Finds the default BGP instance in `running_config`, or returns `None`
/// when bgpd has none. A `network` statement whose prefix does not parse
/// is skipped, so one odd line cannot hide the others.
pub fn default_instance(running_config: &str) -> Option<BgpInstance> {
    let mut lines = running_config.lines();
    let asn = lines.by_ref().find_map(default_instance_asn)?;
    let mut instance = BgpInstance {
        asn,
        networks: Vec::new(),
        statements: Vec::new(),
        ipv4_unicast: Vec::new(),
        ipv6_unicast: Vec::new(),
    };

    // Outside an address-family block, statements belong to IPv4 unicast.
    let mut family = Family::Ipv4Unicast;
    let mut in_block = false;
    for line in lines {
        if !line.starts_with(' ') && line != "!" {
            break;
        }
        let statement = line.trim();
        if statement == "!" || statement.is_empty() {
            continue;
        }
        if let Some(rest) = statement.strip_prefix("address-family ") {
            family = address_family(rest);
            in_block = true;
            continue;
        }
        if statement == "exit-address-family" {
            family = Family::Ipv4Unicast;
            in_block = false;
            continue;
        }
        let list = match (in_block, family) {
            (false, _) => Some(&mut instance.statements),
            (true, Family::Ipv4Unicast) => Some(&mut instance.ipv4_unicast),
            (true, Family::Ipv6Unicast) => Some(&mut instance.ipv6_unicast),
            (true, Family::Other) => None,
        };
        if let Some(list) = list {
            list.push(statement.to_owned());
        }
        if let Some(rest) = statement.strip_prefix("network ") {
            let prefix = rest
                .split_whitespace()
                .next()
                .and_then(|text| text.parse().ok());
            let wanted = match prefix {
                Some(IpNet::V4(_)) => family == Family::Ipv4Unicast,
                Some(IpNet::V6(_)) => family == Family::Ipv6Unicast,
                None => false,
            };
            if let (true, Some(prefix)) = (wanted, prefix) {
                instance.networks.push(prefix);
            }
        }
    }
    Some(instance)
}

/// Returns the AS number of a `router bgp <asn>` line of the default
/// instance. FRR also accepts the asdot form `<high>.<low>` (RFC 5396).
fn default_instance_asn(line: &str) -> Option<u32> {
    let mut words = line.strip_prefix("router bgp ")?.split_whitespace();
    let asn = words.next()?;
    // `router bgp 64512 vrf red` and `... view name` are other instances.
    if words
        .next()
        .is_some_and(|word| word == "vrf" || word == "view")
    {
        return None;
    }
    match asn.split_once('.') {
        None => asn.parse().ok(),
        Some((high, low)) => {
            let high: u16 = high.parse().ok()?;
            let low: u16 = low.parse().ok()?;
            Some((u32::from(high) << 16) | u32::from(low))
        }
    }
}

/// Maps the rest of an `address-family` line, such as `ipv4 unicast` or
/// Quagga's `ipv6`, to the family block it opens.
fn address_family(rest: &str) -> Family {
    let mut words = rest.split_whitespace();
    let afi = words.next();
    let safi = words.next().unwrap_or("unicast");
    match (afi, safi) {
        (Some("ipv4"), "unicast") => Family::Ipv4Unicast,
        (Some("ipv6"), "unicast") => Family::Ipv6Unicast,
        _ => Family::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prefixes(texts: &[&str]) -> Vec<IpNet> {
        texts.iter().map(|text| text.parse().unwrap()).collect()
    }

    #[test]
    fn frr_running_config() {
        let captured = include_bytes!("../../tests/fixtures/frr/running-config.vty");
        let text = std::str::from_utf8(&captured[..captured.len() - 4]).unwrap();
        let instance = default_instance(text).expect("router bgp 64512");
        assert_eq!(instance.asn, 64512);
        assert_eq!(
            instance.networks,
            prefixes(&[
                "10.0.0.0/8",
                "192.168.255.1/32",
                "192.168.255.2/32",
                "2015:cafe:ffff::1/128"
            ])
        );
        assert_eq!(instance.statements.len(), 16, "{:?}", instance.statements);
        assert_eq!(instance.statements[0], "bgp router-id 198.18.0.1");
        assert!(
            instance
                .statements
                .contains(&"neighbor 198.18.0.97 description two words here".to_owned())
        );
        assert_eq!(
            instance.ipv4_unicast,
            [
                "network 10.0.0.0/8",
                "network 192.168.255.1/32",
                "network 192.168.255.2/32"
            ]
        );
        assert_eq!(
            instance.ipv6_unicast,
            [
                "network 2015:cafe:ffff::1/128",
                "neighbor 198.18.0.2 activate"
            ]
        );
    }

    #[test]
    fn quagga_running_config() {
        let text = "\
!
router bgp 64512
 bgp router-id 192.0.2.10
 network 192.168.255.1/32
 network 192.168.255.2/32 route-map anycast
 neighbor 192.0.2.1 remote-as 64513
!
 address-family ipv6
 network 2015:cafe:ffff::1/128
 exit-address-family
!
line vty
!
router bgp 64513
 network 192.168.255.9/32
";
        let instance = default_instance(text).unwrap();
        assert_eq!(instance.asn, 64512);
        assert_eq!(
            instance.networks,
            prefixes(&[
                "192.168.255.1/32",
                "192.168.255.2/32",
                "2015:cafe:ffff::1/128"
            ])
        );
        assert_eq!(instance.statements.len(), 4, "{:?}", instance.statements);
        assert_eq!(instance.statements[3], "neighbor 192.0.2.1 remote-as 64513");
        assert!(instance.ipv4_unicast.is_empty());
        assert_eq!(instance.ipv6_unicast, ["network 2015:cafe:ffff::1/128"]);
    }

    #[test]
    fn skips_other_instances_and_families() {
        let text = "\
router bgp 64512 vrf red
 address-family ipv4 unicast
  network 192.168.255.7/32
 exit-address-family
exit
!
router bgp 1.10
 address-family ipv4 multicast
  network 192.168.255.8/32
 exit-address-family
 address-family ipv6 vpn
  network 2001:db8::8/128
 exit-address-family
 address-family ipv4 unicast
  network 192.168.255.1/32
  network not-a-prefix
  network 2001:db8::9/128
 exit-address-family
exit
";
        let instance = default_instance(text).unwrap();
        assert_eq!(instance.asn, 65536 + 10);
        assert_eq!(instance.networks, prefixes(&["192.168.255.1/32"]));
        assert!(instance.statements.is_empty(), "{:?}", instance.statements);
        assert_eq!(
            instance.ipv4_unicast.len(),
            3,
            "{:?}",
            instance.ipv4_unicast
        );
        assert!(instance.ipv6_unicast.is_empty());
    }

    #[test]
    fn no_instance() {
        // FRR 8.4's running configuration of a bgpd with an empty file.
        let text =
            "frr version 8.4.4\nfrr defaults traditional\n!\nhostname vm\n!\nbgp no-rib\n!\n";
        assert_eq!(default_instance(text), None);
        assert_eq!(
            default_instance("router bgp 64512 view sandbox\nexit\n"),
            None
        );
        assert_eq!(default_instance("router bgp\n"), None);
    }
}
