//! Rule keys: a rule reduced to what iptables compares, so that a rule as
//! the NCC writes it (`-p tcp -d 192.0.2.10/32 --dport 80 -j ACCEPT`) and
//! as `iptables-save` prints it (`-d 192.0.2.10/32 -p tcp -m tcp --dport 80
//! -j ACCEPT`) get the same key.
//!
//! The key covers the options of the rules that the NCC writes into its own
//! chains. iptables-save (1.8.9, nft and legacy) prints them in a fixed
//! order with implicit protocol matches, default target options and
//! protocol names, so the key orders the options and drops or rewrites
//! those differences. An option outside that set is kept as written, so a
//! rule someone else put into our chains never matches one of ours unless
//! it is the same rule.
//!
//! NOTE: the forms were checked against iptables 1.8.9 only. A version
//! that prints one of our rules in another form makes a batch add that
//! rule again and leave it in place on delete.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::OnceLock;

use ipnet::IpNet;

use super::Family;

/// A rule's options in a canonical form, sorted: each element is one option
/// with its values, such as `-d 192.0.2.10` or `--dport 80`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RuleKey(Vec<String>);

/// Protocol match extensions that `-p` loads implicitly and that
/// iptables-save prints as `-m <protocol>` before the protocol's options.
const IMPLICIT_MATCHES: [&str; 6] = ["tcp", "udp", "sctp", "udplite", "icmp", "icmp6"];

impl RuleKey {
    /// Builds the key of a rule given by its arguments after the chain
    /// name, as the NCC writes them or as `iptables-save` prints them.
    pub fn of(family: Family, args: &[String]) -> Self {
        let mut options: Vec<(String, Vec<String>)> = Vec::new();
        let mut negated = false;
        for arg in args {
            if arg == "!" {
                negated = true;
            } else if is_option(arg) {
                let name = if negated {
                    format!("! {}", long_name(arg))
                } else {
                    long_name(arg).to_owned()
                };
                options.push((name, Vec::new()));
                negated = false;
            } else if let Some((_, values)) = options.last_mut() {
                values.push(arg.clone());
            } else {
                options.push((String::new(), vec![arg.clone()]));
            }
        }

        let target = options
            .iter()
            .find(|(name, _)| name == "-j")
            .and_then(|(_, values)| values.first().cloned())
            .unwrap_or_default();
        let mut key: Vec<String> = options
            .into_iter()
            .filter_map(|(name, values)| canonical_option(family, &target, &name, &values))
            .collect();
        if target == "CT" && key.iter().any(|option| option == "--notrack") {
            // Older iptables-save prints NOTRACK as `-j CT --notrack`.
            key.retain(|option| option != "--notrack" && option != "-j CT");
            key.push("-j NOTRACK".to_owned());
        }
        key.sort();
        Self(key)
    }

    /// Returns the options of the key, one element each.
    pub fn options(&self) -> &[String] {
        &self.0
    }

    /// Returns the value of `option` in the key, such as `80` for
    /// `--dport`.
    pub fn value(&self, option: &str) -> Option<&str> {
        self.0.iter().find_map(|element| {
            element
                .strip_prefix(option)
                .and_then(|rest| rest.strip_prefix(' '))
        })
    }

    /// Tells whether the key has `option` with exactly `value`.
    pub fn has(&self, option: &str, value: &str) -> bool {
        self.value(option) == Some(value)
    }
}

/// Tells whether `arg` starts an option (`-d`, `--dport`) rather than being
/// a value. Values never start with `-`, except negative numbers, which no
/// option of ours takes.
fn is_option(arg: &str) -> bool {
    arg.len() > 1 && arg.starts_with('-') && !arg[1..].starts_with(|c: char| c.is_ascii_digit())
}

/// Returns the short form of an option that iptables-save prints short.
fn long_name(option: &str) -> &str {
    match option {
        "--protocol" => "-p",
        "--destination" | "--dst" => "-d",
        "--source" | "--src" => "-s",
        "--jump" => "-j",
        "--match" => "-m",
        "--in-interface" => "-i",
        "--out-interface" => "-o",
        "--destination-port" => "--dport",
        "--source-port" => "--sport",
        other => other,
    }
}

/// Returns the canonical text of one option, or `None` when the option
/// only restates a default.
fn canonical_option(family: Family, target: &str, name: &str, values: &[String]) -> Option<String> {
    let value = values.join(" ");
    let canonical = match name {
        "-p" | "! -p" => {
            let number = protocol_number(&value);
            if number == Some(0) && name == "-p" {
                return None;
            }
            number.map_or(value, |number| number.to_string())
        }
        "-m" if IMPLICIT_MATCHES.contains(&value.as_str()) => return None,
        "-d" | "! -d" | "-s" | "! -s" | "--vaddr" | "! --vaddr" | "--to-source"
        | "--to-destination" => canonical_address(&value),
        "--dport" | "! --dport" | "--sport" | "! --sport" | "--vport" | "! --vport" => {
            canonical_number(&value)
        }
        "--reject-with" if target == "REJECT" && value == default_reject(family) => return None,
        "--set-mark" if target == "MARK" && !value.contains('/') => {
            return Some(format!(
                "--set-xmark {}",
                canonical_mark(&value, "0xffffffff")
            ));
        }
        "--set-xmark" if target == "MARK" => match value.split_once('/') {
            Some((mark, mask)) => canonical_mark(mark, mask),
            None => canonical_mark(&value, "0xffffffff"),
        },
        _ => value,
    };
    if canonical.is_empty() {
        Some(name.to_owned())
    } else if name.is_empty() {
        Some(canonical)
    } else {
        Some(format!("{name} {canonical}"))
    }
}

/// Returns the ICMP message that REJECT sends without `--reject-with`.
fn default_reject(family: Family) -> &'static str {
    match family {
        Family::V4 => "icmp-port-unreachable",
        Family::V6 => "icmp6-port-unreachable",
    }
}

/// Writes a host prefix (/32, /128) as the bare address and any other
/// address or prefix in its standard text form.
fn canonical_address(text: &str) -> String {
    if let Ok(net) = text.parse::<IpNet>() {
        if net.prefix_len() == net.max_prefix_len() {
            return net.addr().to_string();
        }
        return net.to_string();
    }
    text.parse::<IpAddr>()
        .map_or_else(|_| text.to_owned(), |address| address.to_string())
}

fn canonical_number(text: &str) -> String {
    text.parse::<u32>()
        .map_or_else(|_| text.to_owned(), |number| number.to_string())
}

/// Writes a mark and mask as iptables-save does: `0x7/0xffffffff`.
fn canonical_mark(mark: &str, mask: &str) -> String {
    match (parse_u32(mark), parse_u32(mask)) {
        (Some(mark), Some(mask)) => format!("{mark:#x}/{mask:#x}"),
        _ => format!("{mark}/{mask}"),
    }
}

fn parse_u32(text: &str) -> Option<u32> {
    match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => u32::from_str_radix(hex, 16).ok(),
        None => text.parse().ok(),
    }
}

/// Returns the IP protocol number of a protocol as `-p` takes it: a number,
/// a name built into iptables, or a name from /etc/protocols, which
/// iptables-save uses to print protocols it has no name for.
pub fn protocol_number(name: &str) -> Option<u8> {
    if let Ok(number) = name.parse() {
        return Some(number);
    }
    let name = name.to_ascii_lowercase();
    let builtin = match name.as_str() {
        "all" => Some(0),
        "icmp" => Some(1),
        "tcp" => Some(6),
        "udp" => Some(17),
        "esp" => Some(50),
        "ah" => Some(51),
        "icmpv6" | "ipv6-icmp" | "icmp6" => Some(58),
        "sctp" => Some(132),
        "mh" | "ipv6-mh" => Some(135),
        "udplite" => Some(136),
        _ => None,
    };
    builtin.or_else(|| system_protocols().get(&name).copied())
}

/// Returns the names and aliases of /etc/protocols, or none when the file
/// cannot be read.
fn system_protocols() -> &'static HashMap<String, u8> {
    static PROTOCOLS: OnceLock<HashMap<String, u8>> = OnceLock::new();
    PROTOCOLS.get_or_init(|| {
        std::fs::read_to_string("/etc/protocols")
            .map(|text| parse_protocols(&text))
            .unwrap_or_default()
    })
}

/// Parses /etc/protocols: `name number [alias...] [# comment]` per line.
fn parse_protocols(text: &str) -> HashMap<String, u8> {
    let mut protocols = HashMap::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("");
        let mut words = line.split_whitespace();
        let (Some(name), Some(number)) = (words.next(), words.next()) else {
            continue;
        };
        let Ok(number) = number.parse::<u8>() else {
            continue;
        };
        for alias in std::iter::once(name).chain(words) {
            protocols
                .entry(alias.to_ascii_lowercase())
                .or_insert(number);
        }
    }
    protocols
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(family: Family, text: &str) -> RuleKey {
        let args: Vec<String> = text.split_whitespace().map(str::to_owned).collect();
        RuleKey::of(family, &args)
    }

    /// Pairs of a rule as the NCC writes it and as iptables-save 1.8.9
    /// (nf_tables) printed it in the kernel lab.
    const SAME: [(Family, &str, &str); 10] = [
        (
            Family::V4,
            "-p tcp -d 192.0.2.10/32 --dport 80 -j ACCEPT",
            "-d 192.0.2.10/32 -p tcp -m tcp --dport 80 -j ACCEPT",
        ),
        (
            Family::V4,
            "-p icmp -d 192.0.2.10/32 -j ACCEPT",
            "-d 192.0.2.10/32 -p icmp -j ACCEPT",
        ),
        (
            Family::V4,
            "-d 192.0.2.10/32 -j REJECT",
            "-d 192.0.2.10/32 -j REJECT --reject-with icmp-port-unreachable",
        ),
        (
            Family::V6,
            "-d 2001:db8::10/128 -j REJECT",
            "-d 2001:db8::10/128 -j REJECT --reject-with icmp6-port-unreachable",
        ),
        (
            Family::V6,
            "-p ipv6-icmp -d 2001:db8::10/128 -j ACCEPT",
            "-d 2001:db8::10/128 -p ipv6-icmp -j ACCEPT",
        ),
        (
            Family::V4,
            "-p tcp -d 192.0.2.10/32 --dport 80 -j MARK --set-mark 7",
            "-d 192.0.2.10/32 -p tcp -m tcp --dport 80 -j MARK --set-xmark 0x7/0xffffffff",
        ),
        (
            Family::V4,
            "-m ipvs -p udp --vport 53 --vaddr 192.0.2.10/32 -j SNAT --to-source 192.0.2.2 --random",
            "-p udp -m ipvs --vaddr 192.0.2.10 --vport 53 -j SNAT --to-source 192.0.2.2 --random",
        ),
        (
            Family::V4,
            "-p 47 -d 192.0.2.10/32 -j ACCEPT",
            "-d 192.0.2.10/32 -p gre -j ACCEPT",
        ),
        (
            Family::V4,
            "-p 0 -d 192.0.2.10/32 -j ACCEPT",
            "-d 192.0.2.10/32 -j ACCEPT",
        ),
        (Family::V4, "-j NOTRACK", "-j CT --notrack"),
    ];

    #[test]
    fn written_and_saved_rules_match() {
        for (family, written, saved) in SAME {
            assert_eq!(key(family, written), key(family, saved), "{written}");
        }
    }

    #[test]
    fn different_rules_differ() {
        let pairs = [
            (
                "-p tcp -d 192.0.2.10/32 --dport 80 -j ACCEPT",
                "-p tcp -d 192.0.2.10/32 --dport 81 -j ACCEPT",
            ),
            (
                "-p tcp -d 192.0.2.10/32 --dport 80 -j ACCEPT",
                "-p udp -d 192.0.2.10/32 --dport 80 -j ACCEPT",
            ),
            (
                "-p tcp -d 192.0.2.10/32 -j ACCEPT",
                "-p tcp -d 192.0.2.11/32 -j ACCEPT",
            ),
            (
                "-d 192.0.2.10/32 -j REJECT",
                "-d 192.0.2.10/32 -j REJECT --reject-with icmp-host-prohibited",
            ),
            (
                "-p tcp -d 192.0.2.10/32 -j MARK --set-mark 7",
                "-p tcp -d 192.0.2.10/32 -j MARK --set-mark 8",
            ),
            (
                "-p tcp -d 192.0.2.10/32 -j ACCEPT",
                "-p tcp ! -d 192.0.2.10/32 -j ACCEPT",
            ),
            ("-d 192.0.2.0/24 -j ACCEPT", "-d 192.0.2.0/32 -j ACCEPT"),
        ];
        for (one, other) in pairs {
            assert_ne!(key(Family::V4, one), key(Family::V4, other), "{one}");
        }
    }

    #[test]
    fn key_values() {
        let key = key(
            Family::V4,
            "-d 192.0.2.10/32 -p tcp -m tcp --dport 80 -j ACCEPT",
        );

        assert_eq!(key.value("-d"), Some("192.0.2.10"));
        assert_eq!(key.value("-p"), Some("6"));
        assert!(key.has("-j", "ACCEPT"));
        assert_eq!(key.value("--sport"), None);
        assert_eq!(
            key.options(),
            ["--dport 80", "-d 192.0.2.10", "-j ACCEPT", "-p 6"]
        );
    }

    #[test]
    fn protocols_file_parsed() {
        let text = "# comment\nip\t0\tIP\t\t# internet protocol\ngre\t47\tGRE\nbad\tline\n";

        let protocols = parse_protocols(text);

        assert_eq!(protocols.get("gre"), Some(&47));
        assert_eq!(protocols.get("ip"), Some(&0));
        assert_eq!(protocols.get("bad"), None);
        assert_eq!(protocol_number("ipv6-icmp"), Some(58));
        assert_eq!(protocol_number("250"), Some(250));
    }
}
