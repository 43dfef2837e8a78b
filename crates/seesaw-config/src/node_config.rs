//! The node configuration, `/etc/seesaw/seesaw.cfg`: the cluster this node
//! belongs to, its addresses, its peer, its network interfaces and where to
//! fetch the cluster configuration from.
//!
//! The options, their defaults and the goconf reading rules are those of
//! Seesaw v2's engine. Where Seesaw would exit, crash or silently misbehave,
//! the loader rejects the file with a positioned error instead, and it
//! warns about what Seesaw silently ignores (unknown sections and options,
//! options dropped as `rem` comments, options repeated in a section).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;

use crate::diag::{Diagnostic, Position, Rejected};
use crate::goconf::{self, Findings, Found, Lookup, parse_bool, parse_int};
use crate::model::{AnycastRanges, DEFAULT_ANYCAST_IPV4, DEFAULT_ANYCAST_IPV6};

/// The sections of `seesaw.cfg` and their options. `extra_service_anycast`
/// takes options of any name.
const CLUSTER_OPTIONS: &[&str] = &[
    "name",
    "anycast_enabled",
    "anycast_ipv4_range",
    "anycast_ipv6_range",
    "vip_ipv4",
    "vip_ipv6",
    "node_ipv4",
    "node_ipv6",
    "peer_ipv4",
    "peer_ipv6",
    "use_vmac",
    "garp_interval_sec",
    "vrid",
];
const CONFIG_SERVER_OPTIONS: &[&str] = &["primary", "secondary", "tertiary"];
const INTERFACE_OPTIONS: &[&str] = &["node", "lb"];
const ACCESS_OPTIONS: &[&str] = &["admin_group", "operator_group", "reader_group"];
const SYNC_OPTIONS: &[&str] = &["cert_file", "key_file", "ca_file"];
const SECTIONS: &[&str] = &[
    "cluster",
    "config_server",
    "interface",
    "extra_service_anycast",
    "access",
    "sync",
];

/// The config server used when `[config_server]` names none.
pub const DEFAULT_CONFIG_SERVER: &str = "seesaw-config.example.com";

/// Maximum `garp_interval_sec`: the largest number of seconds whose
/// nanoseconds fit Go's 64-bit `time.Duration`. Seesaw's engine overflows
/// above it.
const MAX_GARP_INTERVAL_SECS: i64 = i64::MAX / 1_000_000_000;

/// Linux rejects interface names of 16 bytes or more (IFNAMSIZ counts the
/// terminating NUL).
const MAX_INTERFACE_NAME_BYTES: usize = 15;

/// A typed `seesaw.cfg`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeConfig {
    /// The file it was read from, for messages.
    pub path: PathBuf,
    /// `[cluster] name`.
    pub cluster_name: String,
    /// `[cluster] anycast_enabled`, default true.
    pub anycast_enabled: bool,
    /// `[cluster] anycast_ipv4_range` and `anycast_ipv6_range`: the
    /// networks whose VIPs are anycast, by default Seesaw v2's fixed
    /// 192.168.255.0/24 and 2015:cafe:ffff::/64. Not in Seesaw v2.
    pub anycast_ranges: AnycastRanges,
    /// `[cluster] vip_ipv4` and `vip_ipv6`: the cluster VIP, held by the
    /// master node.
    pub vip_ipv4: Option<Ipv4Addr>,
    pub vip_ipv6: Option<Ipv6Addr>,
    /// `[cluster] node_ipv4` (required) and `node_ipv6`: this node.
    pub node_ipv4: Ipv4Addr,
    pub node_ipv6: Option<Ipv6Addr>,
    /// `[cluster] peer_ipv4` and `peer_ipv6`: the other node of the pair.
    pub peer_ipv4: Option<Ipv4Addr>,
    pub peer_ipv6: Option<Ipv6Addr>,
    /// `[cluster] use_vmac`, default true. When false, failover uses
    /// gratuitous ARP instead of the VRRP virtual MAC.
    pub use_vmac: bool,
    /// `[cluster] garp_interval_sec`, default 10 seconds.
    pub garp_interval: Duration,
    /// `[cluster] vrid`, default 60: the VRRP virtual router ID.
    pub vrid: u8,
    /// `[config_server] primary`, `secondary` and `tertiary` in that order,
    /// the empty ones left out; [`DEFAULT_CONFIG_SERVER`] when none is set.
    /// Host names, never resolved at load time.
    pub config_servers: Vec<String>,
    /// `[interface] node`, default `eth0`.
    pub node_interface: String,
    /// `[interface] lb`, default `eth1`: the load-balancing interface.
    pub lb_interface: String,
    /// The IPv4 addresses of `[extra_service_anycast]` in file order: the
    /// service anycast addresses, advertised while the engine runs.
    /// Seesaw v2 also always advertised 192.168.255.254, its monitoring
    /// address; here it is advertised only when the section lists it.
    pub service_anycast_ipv4: Vec<Ipv4Addr>,
    /// The IPv6 addresses of `[extra_service_anycast]` in file order. Seesaw
    /// v2's 2015:cafe:ffff::254 is advertised only when listed.
    pub service_anycast_ipv6: Vec<Ipv6Addr>,
    /// `[access]`: the groups whose members may use the engine's API
    /// without being root. Not in Seesaw v2.
    pub access: AccessConfig,
    /// `[sync]`: the TLS files of peer sync. Not in Seesaw v2.
    pub sync: SyncConfig,
    /// Engine settings that `seesaw.cfg` cannot change.
    pub engine: EngineDefaults,
    /// The value positions of the options set in the file, by section and
    /// key, for messages about values that fail later (at start-up, say).
    positions: HashMap<(String, String), Position>,
    /// The key of `[extra_service_anycast]` that lists each address.
    service_anycast_keys: HashMap<IpAddr, String>,
}

impl NodeConfig {
    /// Loads `path`. A missing or unreadable file is one error naming the
    /// file and the OS error.
    pub fn load(path: impl AsRef<Path>) -> Result<(NodeConfig, Vec<Diagnostic>), Rejected> {
        goconf::load_file(path.as_ref(), |path, text| Self::parse(path, text))
    }

    /// Parses `text`, naming `path` in messages. Returns the configuration
    /// and its warnings, or every finding (errors and warnings, in file
    /// order) when any is an error.
    pub fn parse(
        path: impl AsRef<Path>,
        text: &str,
    ) -> Result<(NodeConfig, Vec<Diagnostic>), Rejected> {
        let mut findings = Findings::new(path.as_ref(), text);
        findings.warn_unknown_sections(SECTIONS, "seesaw.cfg");
        findings.warn_unknown_options("cluster", CLUSTER_OPTIONS);
        findings.warn_unknown_options("config_server", CONFIG_SERVER_OPTIONS);
        findings.warn_unknown_options("interface", INTERFACE_OPTIONS);
        findings.warn_unknown_options("access", ACCESS_OPTIONS);
        findings.warn_unknown_options("sync", SYNC_OPTIONS);
        findings.warn_replaced_options();
        if findings.has_errors() {
            // goconf rejects the whole file, so the values mean nothing yet.
            return Err(findings.reject());
        }

        let mut reader = Reader {
            findings,
            positions: HashMap::new(),
        };
        let config = reader.read(path.as_ref());
        reader.findings.warn_unused_defaults(home_section);
        match config {
            Ok(mut config) => {
                config.positions = reader.positions;
                reader.findings.finish(config)
            }
            Err(Reported) => Err(reader.findings.reject()),
        }
    }

    /// Returns where the value of `key` in `section` starts in the file,
    /// when the file sets it.
    pub fn position(&self, section: &str, key: &str) -> Option<Position> {
        self.positions
            .get(&(section.to_string(), key.to_string()))
            .copied()
    }

    /// Returns where `[extra_service_anycast]` lists `address`, when it
    /// does.
    pub fn service_anycast_position(&self, address: IpAddr) -> Option<Position> {
        let key = self.service_anycast_keys.get(&address)?;
        self.position("extra_service_anycast", key)
    }
}

/// The `[access]` section: group names, each unset by default, which
/// grants nothing beyond root.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccessConfig {
    /// `admin_group`: may read, fail over, reload and override.
    pub admin_group: Option<String>,
    /// `operator_group`: may read, and override the vservers whose
    /// `access_grant` names them.
    pub operator_group: Option<String>,
    /// `reader_group`: may read.
    pub reader_group: Option<String>,
}

/// The `[sync]` section. Without it, peer sync runs over plain TCP and
/// accepts connections from the peer's address alone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncConfig {
    /// All three files, or `None` when the section sets none.
    pub tls: Option<SyncTls>,
}

/// The PEM files of peer sync over mutual TLS. Each node presents
/// `cert_file` as server and as client, and accepts only a peer whose
/// certificate chains to `ca_file` and names the peer's address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncTls {
    /// `cert_file`: this node's certificate chain.
    pub cert_file: PathBuf,
    /// `key_file`: the private key of `cert_file`.
    pub key_file: PathBuf,
    /// `ca_file`: the CA certificates that the peer's certificate must
    /// chain to.
    pub ca_file: PathBuf,
}

/// Engine settings that Seesaw v2 fixes in code and `seesaw.cfg` cannot set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineDefaults {
    /// How often the cluster configuration is fetched.
    pub config_interval: Duration,
    pub config_server_port: u16,
    /// Timeout of one TCP connection to a config server.
    pub config_server_timeout: Duration,
    /// The CA certificate that config servers must be signed by.
    pub ca_cert_file: PathBuf,
    /// The routing table for load-balanced traffic.
    pub routing_table_id: u8,
    pub dummy_interface: String,
    /// The destination of VRRP advertisements.
    pub vrrp_destination: Ipv4Addr,
    /// How long the engine waits for an HA state update before it gives up
    /// on the HA component.
    pub ha_state_timeout: Duration,
    pub stats_interval: Duration,
    /// The TCP port of the peer sync server.
    pub sync_port: u16,
    /// How often the peer sync server sends a heartbeat and the check
    /// states that changed.
    pub sync_heartbeat_interval: Duration,
    /// How long a peer sync session may stay silent before either end
    /// drops it.
    pub sync_session_timeout: Duration,
    /// The pause before the peer sync client connects again.
    pub sync_retry_interval: Duration,
    pub bgp_update_interval: Duration,
    /// How many peer config sync errors are tolerated.
    pub max_peer_config_sync_errors: u32,
}

impl Default for EngineDefaults {
    fn default() -> Self {
        EngineDefaults {
            config_interval: Duration::from_secs(60),
            config_server_port: 10255,
            config_server_timeout: Duration::from_secs(20),
            ca_cert_file: PathBuf::from("/etc/seesaw/ssl/ca.crt"),
            routing_table_id: 2,
            dummy_interface: "dummy0".to_string(),
            vrrp_destination: Ipv4Addr::new(224, 0, 0, 18),
            ha_state_timeout: Duration::from_secs(30),
            stats_interval: Duration::from_secs(15),
            sync_port: 10258,
            sync_heartbeat_interval: Duration::from_secs(5),
            sync_session_timeout: Duration::from_secs(30),
            sync_retry_interval: Duration::from_secs(5),
            bgp_update_interval: Duration::from_secs(15),
            max_peer_config_sync_errors: 3,
        }
    }
}

/// Returns the section where a known option belongs, for hints about options
/// written in `default`.
fn home_section(key: &str) -> Option<&'static str> {
    if CLUSTER_OPTIONS.contains(&key) {
        Some("cluster")
    } else if CONFIG_SERVER_OPTIONS.contains(&key) {
        Some("config_server")
    } else if INTERFACE_OPTIONS.contains(&key) {
        Some("interface")
    } else if ACCESS_OPTIONS.contains(&key) {
        Some("access")
    } else if SYNC_OPTIONS.contains(&key) {
        Some("sync")
    } else {
        None
    }
}

/// Marks a value whose error is already recorded.
struct Reported;

type Checked<T> = Result<T, Reported>;

/// Reads the typed options, recording each error and carrying on, so that
/// one run reports every bad value.
/// The addresses of `[extra_service_anycast]` by family, and the key that
/// lists each.
#[derive(Default)]
struct ServiceAnycast {
    ipv4: Vec<Ipv4Addr>,
    ipv6: Vec<Ipv6Addr>,
    keys: HashMap<IpAddr, String>,
}

struct Reader {
    findings: Findings,
    positions: HashMap<(String, String), Position>,
}

impl Reader {
    /// Looks an option up. `Ok(None)` means unset.
    fn lookup(&mut self, section: &str, key: &str) -> Checked<Option<Found>> {
        match self.findings.lookup(section, key) {
            Lookup::Found(found) => {
                self.positions
                    .insert((section.to_string(), key.to_string()), found.position);
                Ok(Some(found))
            }
            Lookup::Absent => Ok(None),
            Lookup::Invalid => Err(Reported),
        }
    }

    /// Looks an option up, taking an empty value as unset as Seesaw does.
    fn non_empty(&mut self, section: &str, key: &str) -> Checked<Option<Found>> {
        Ok(self.lookup(section, key)?.filter(|f| !f.value.is_empty()))
    }

    fn error(&mut self, found: &Found, problem: impl std::fmt::Display) -> Reported {
        self.findings.invalid(found, problem);
        Reported
    }

    /// Reads every option before it gives up, so that one run reports
    /// every bad value.
    fn read(&mut self, path: &Path) -> Checked<NodeConfig> {
        let cluster_name = self.cluster_name();
        let anycast_enabled = self.anycast_enabled();
        let anycast_ranges = self.anycast_ranges();
        let vip_ipv4 = self.ipv4("vip_ipv4");
        let vip_ipv6 = self.ipv6("vip_ipv6");
        let node_ipv4 = self.node_ipv4();
        let node_ipv6 = self.ipv6("node_ipv6");
        let peer_ipv4 = self.ipv4("peer_ipv4");
        let peer_ipv6 = self.ipv6("peer_ipv6");
        let use_vmac = self.use_vmac();
        let garp_interval = self.garp_interval();
        let vrid = self.vrid();
        let config_servers = self.config_servers();
        let node_interface = self.interface("node", "eth0");
        let lb_interface = self.interface("lb", "eth1");
        let access = self.access();
        let sync = self.sync();

        // Service anycast addresses must lie in the ranges, so a bad range
        // is reported alone rather than with every address it rejects.
        let anycast_ranges = anycast_ranges?;
        let service_anycast = self.service_anycast(&anycast_ranges)?;
        Ok(NodeConfig {
            path: path.to_path_buf(),
            cluster_name: cluster_name?,
            anycast_enabled: anycast_enabled?,
            anycast_ranges,
            vip_ipv4: vip_ipv4?,
            vip_ipv6: vip_ipv6?,
            node_ipv4: node_ipv4?,
            node_ipv6: node_ipv6?,
            peer_ipv4: peer_ipv4?,
            peer_ipv6: peer_ipv6?,
            use_vmac: use_vmac?,
            garp_interval: garp_interval?,
            vrid: vrid?,
            config_servers: config_servers?,
            node_interface: node_interface?,
            lb_interface: lb_interface?,
            service_anycast_ipv4: service_anycast.ipv4,
            service_anycast_ipv6: service_anycast.ipv6,
            access: access?,
            sync: sync?,
            engine: EngineDefaults::default(),
            positions: HashMap::new(),
            service_anycast_keys: service_anycast.keys,
        })
    }

    fn cluster_name(&mut self) -> Checked<String> {
        match self.lookup("cluster", "name")? {
            Some(found) if !found.value.is_empty() => Ok(found.value),
            Some(found) => Err(self.error(
                &found,
                "is empty: set name = <cluster name> under [cluster]",
            )),
            None => {
                self.findings.error(
                    None,
                    "[cluster] name is missing: add name = <cluster name> under [cluster]",
                );
                Err(Reported)
            }
        }
    }

    fn node_ipv4(&mut self) -> Checked<Ipv4Addr> {
        if let Some(address) = self.ipv4("node_ipv4")? {
            return Ok(address);
        }
        self.findings.error(
            None,
            "[cluster] node_ipv4 is missing: add node_ipv4 = <this node's IPv4 address> \
             under [cluster], because HA and peer sync identify the node by it",
        );
        Err(Reported)
    }

    /// Seesaw keeps the default when the value is empty.
    fn anycast_enabled(&mut self) -> Checked<bool> {
        match self.non_empty("cluster", "anycast_enabled")? {
            Some(found) => self.boolean(&found),
            None => Ok(true),
        }
    }

    /// Reads `[cluster] anycast_ipv4_range` and `anycast_ipv6_range`. An
    /// empty value keeps the default.
    fn anycast_ranges(&mut self) -> Checked<AnycastRanges> {
        let ipv4 = self.anycast_range("anycast_ipv4_range", IpNet::V4(DEFAULT_ANYCAST_IPV4));
        let ipv6 = self.anycast_range("anycast_ipv6_range", IpNet::V6(DEFAULT_ANYCAST_IPV6));
        match (ipv4?, ipv6?) {
            (IpNet::V4(ipv4), IpNet::V6(ipv6)) => Ok(AnycastRanges { ipv4, ipv6 }),
            _ => unreachable!("anycast_range checks the family"),
        }
    }

    /// Reads one anycast network: `address/prefix length` of the family of
    /// `default`, without host bits, and narrower than the whole family.
    fn anycast_range(&mut self, key: &str, default: IpNet) -> Checked<IpNet> {
        let Some(found) = self.non_empty("cluster", key)? else {
            return Ok(default);
        };
        let sibling = if default.addr().is_ipv4() {
            key.replace("ipv4", "ipv6")
        } else {
            key.replace("ipv6", "ipv4")
        };
        let network = match found.value.parse::<IpNet>() {
            Ok(network) => network,
            Err(_) => {
                let problem = match found.value.parse::<IpAddr>() {
                    Ok(address) => format!(
                        "has no prefix length: write the network with its length, such as {}",
                        IpNet::new(address, default.prefix_len())
                            .map_or_else(|_| default.to_string(), |net| net.trunc().to_string())
                    ),
                    Err(_) => format!(
                        "is not a network: write it as address/prefix length, such as {default}"
                    ),
                };
                return Err(self.error(&found, problem));
            }
        };
        if network.addr().is_ipv4() != default.addr().is_ipv4() {
            let family = if network.addr().is_ipv4() {
                "IPv4"
            } else {
                "IPv6"
            };
            return Err(self.error(
                &found,
                format!("is an {family} network: put it in {sibling}"),
            ));
        }
        if network.prefix_len() == 0 {
            return Err(self.error(
                &found,
                format!(
                    "covers every address, so every VIP would be anycast: give the network \
                     reserved for anycast VIPs, such as {default}"
                ),
            ));
        }
        if network.trunc() != network {
            return Err(self.error(
                &found,
                format!(
                    "has host bits set: write the network address, {}",
                    network.trunc()
                ),
            ));
        }
        Ok(network)
    }

    /// Unlike `anycast_enabled`, Seesaw rejects an empty value here.
    fn use_vmac(&mut self) -> Checked<bool> {
        match self.lookup("cluster", "use_vmac")? {
            Some(found) => self.boolean(&found),
            None => Ok(true),
        }
    }

    fn boolean(&mut self, found: &Found) -> Checked<bool> {
        parse_bool(&found.value).ok_or_else(|| {
            self.error(
                found,
                "is not a boolean: use true or false (t, y, yes, on, 1, f, n, no, off \
                 and 0 work too, in any case)",
            )
        })
    }

    /// Reads an integer option and checks that it lies in `min..=max`.
    fn integer(&mut self, found: &Found, min: i64, max: i64, unit: &str) -> Checked<i64> {
        match parse_int(&found.value) {
            Some(value) if (min..=max).contains(&value) => Ok(value),
            Some(_) => Err(self.error(
                found,
                format!("is out of range: use {unit} from {min} to {max}"),
            )),
            None => Err(self.error(
                found,
                format!("is not a decimal integer: use {unit} from {min} to {max}"),
            )),
        }
    }

    fn garp_interval(&mut self) -> Checked<Duration> {
        let Some(found) = self.lookup("cluster", "garp_interval_sec")? else {
            return Ok(Duration::from_secs(10));
        };
        let seconds = self.integer(&found, 1, MAX_GARP_INTERVAL_SECS, "a number of seconds")?;
        Ok(Duration::from_secs(seconds.unsigned_abs()))
    }

    fn vrid(&mut self) -> Checked<u8> {
        let Some(found) = self.lookup("cluster", "vrid")? else {
            return Ok(60);
        };
        let vrid = self.integer(&found, 1, 255, "a value")?;
        Ok(u8::try_from(vrid).expect("the range check keeps the VRID within a byte"))
    }

    /// Reads `[cluster] <key>` as an IPv4 address. An empty value means
    /// unset.
    fn ipv4(&mut self, key: &str) -> Checked<Option<Ipv4Addr>> {
        let Some(found) = self.non_empty("cluster", key)? else {
            return Ok(None);
        };
        let sibling = key.replace("ipv4", "ipv6");
        match parse_address(&found.value) {
            Ok(IpAddr::V4(address)) => Ok(Some(address)),
            Ok(IpAddr::V6(address)) => {
                let problem = match address.to_ipv4_mapped() {
                    Some(v4) => format!("is an IPv4-mapped IPv6 address: write {v4}"),
                    None => format!("is an IPv6 address: put it in {sibling}"),
                };
                Err(self.error(&found, problem))
            }
            Err(problem) => Err(self.error(&found, problem.describe("IPv4"))),
        }
    }

    /// Reads `[cluster] <key>` as an IPv6 address, like [`Reader::ipv4`].
    fn ipv6(&mut self, key: &str) -> Checked<Option<Ipv6Addr>> {
        let Some(found) = self.non_empty("cluster", key)? else {
            return Ok(None);
        };
        let sibling = key.replace("ipv6", "ipv4");
        match parse_address(&found.value) {
            // Seesaw's Go code would take a mapped address for IPv4.
            Ok(IpAddr::V6(address)) => match address.to_ipv4_mapped() {
                Some(v4) => Err(self.error(
                    &found,
                    format!("is an IPv4-mapped address: put {v4} in {sibling}"),
                )),
                None => Ok(Some(address)),
            },
            Ok(IpAddr::V4(_)) => {
                Err(self.error(&found, format!("is an IPv4 address: put it in {sibling}")))
            }
            Err(problem) => Err(self.error(&found, problem.describe("IPv6"))),
        }
    }

    fn access(&mut self) -> Checked<AccessConfig> {
        let mut group = |key: &str| -> Checked<Option<String>> {
            let Some(found) = self.non_empty("access", key)? else {
                return Ok(None);
            };
            if found.value.contains(char::is_whitespace) || found.value.contains(':') {
                return Err(self.error(
                    &found,
                    "is not a group name: give one group name without spaces or colons, \
                     such as seesaw-admin",
                ));
            }
            Ok(Some(found.value))
        };
        let admin_group = group("admin_group");
        let operator_group = group("operator_group");
        let reader_group = group("reader_group");
        Ok(AccessConfig {
            admin_group: admin_group?,
            operator_group: operator_group?,
            reader_group: reader_group?,
        })
    }

    /// Reads `[sync]`: the three TLS files, all or none. The files are
    /// read when the engine starts, not here.
    fn sync(&mut self) -> Checked<SyncConfig> {
        let mut set: Vec<(&str, Found)> = Vec::new();
        let mut failed = false;
        for key in SYNC_OPTIONS {
            match self.non_empty("sync", key) {
                Ok(Some(found)) => set.push((key, found)),
                Ok(None) => {}
                Err(Reported) => failed = true,
            }
        }
        for (_, found) in &set {
            if !Path::new(&found.value).is_absolute() {
                self.error(
                    found,
                    "is not an absolute path: give the file's full path, such as \
                     /etc/seesaw/ssl/sync.crt",
                );
                failed = true;
            }
        }
        if !set.is_empty() && set.len() < SYNC_OPTIONS.len() {
            let missing: Vec<&str> = SYNC_OPTIONS
                .iter()
                .copied()
                .filter(|key| set.iter().all(|(set_key, _)| set_key != key))
                .collect();
            let problem = format!(
                "is set without {}: set cert_file, key_file and ca_file for peer sync over \
                 TLS, or none of them for plain TCP from the peer's address",
                missing.join(" and ")
            );
            self.error(&set[0].1, problem);
            failed = true;
        }
        if failed {
            return Err(Reported);
        }

        let path = |key: &str| {
            set.iter()
                .find(|(set_key, _)| *set_key == key)
                .map(|(_, found)| PathBuf::from(&found.value))
        };
        let tls = match (path("cert_file"), path("key_file"), path("ca_file")) {
            (Some(cert_file), Some(key_file), Some(ca_file)) => Some(SyncTls {
                cert_file,
                key_file,
                ca_file,
            }),
            _ => None,
        };
        Ok(SyncConfig { tls })
    }

    fn config_servers(&mut self) -> Checked<Vec<String>> {
        let mut servers = Vec::new();
        let mut failed = false;
        for key in CONFIG_SERVER_OPTIONS {
            let found = match self.non_empty("config_server", key) {
                Ok(Some(found)) => found,
                Ok(None) => continue,
                Err(Reported) => {
                    failed = true;
                    continue;
                }
            };
            // Seesaw resolves the value as a host name and fetches
            // https://<host>:10255/config/<cluster>, so a URL or a path
            // cannot work. This is only a warning because Seesaw accepts
            // the file and can still run from the cluster file on disk.
            if found.value.contains("://")
                || found.value.contains('/')
                || found.value.contains(char::is_whitespace)
            {
                let message = format!(
                    "{} is not a host name, so fetching from it will fail: give the host \
                     name alone, such as {DEFAULT_CONFIG_SERVER}",
                    found.describe()
                );
                self.findings.warning(Some(found.position), message);
            }
            servers.push(found.value);
        }
        if failed {
            return Err(Reported);
        }
        if servers.is_empty() {
            servers.push(DEFAULT_CONFIG_SERVER.to_string());
        }
        Ok(servers)
    }

    fn interface(&mut self, key: &str, default: &str) -> Checked<String> {
        let Some(found) = self.non_empty("interface", key)? else {
            return Ok(default.to_string());
        };
        let name = &found.value;
        let valid = name.len() <= MAX_INTERFACE_NAME_BYTES
            && name != "."
            && name != ".."
            && !name.contains(['/', ':'])
            && !name.contains(char::is_whitespace);
        if !valid {
            return Err(self.error(
                &found,
                format!(
                    "is not a valid Linux interface name: use at most \
                     {MAX_INTERFACE_NAME_BYTES} bytes without /, : or white space, such as \
                     {default}"
                ),
            ));
        }
        Ok(found.value)
    }

    /// Reads `[extra_service_anycast]`, whose addresses must lie in
    /// `ranges`. Only the section's own options count. Seesaw also tries to
    /// read every option of `default` here and exits because goconf cannot
    /// return them, which is not copied.
    fn service_anycast(&mut self, ranges: &AnycastRanges) -> Checked<ServiceAnycast> {
        let mut listed = ServiceAnycast::default();
        let keys: Vec<String> = match self.findings.conf.section("extra_service_anycast") {
            Some(section) => section.entries().iter().map(|e| e.key.clone()).collect(),
            None => Vec::new(),
        };
        let mut failed = false;
        for key in keys {
            let address = self
                .lookup("extra_service_anycast", &key)
                .and_then(|found| self.anycast_address(&found.expect("the key is set"), ranges));
            match address {
                Ok(address) => {
                    match address {
                        IpAddr::V4(v4) => listed.ipv4.push(v4),
                        IpAddr::V6(v6) => listed.ipv6.push(v6),
                    }
                    listed.keys.entry(address).or_insert(key);
                }
                Err(Reported) => failed = true,
            }
        }
        if failed {
            return Err(Reported);
        }
        Ok(listed)
    }

    fn anycast_address(&mut self, found: &Found, ranges: &AnycastRanges) -> Checked<IpAddr> {
        let advice = format!("use an address in {} or {}", ranges.ipv4, ranges.ipv6);
        if found.value.is_empty() {
            return Err(self.error(found, format!("is empty: {advice}, or remove the line")));
        }
        let address = match parse_address(&found.value) {
            // Seesaw reads an IPv4-mapped IPv6 address as IPv4.
            Ok(IpAddr::V6(v6)) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
            Ok(address) => address,
            Err(problem) => return Err(self.error(found, problem.describe("IP"))),
        };
        if !ranges.contains(address) {
            let message = format!(
                "{}: \"{address}\" is not an anycast address: {advice}",
                found.describe()
            );
            self.findings.error(Some(found.position), message);
            return Err(Reported);
        }
        Ok(address)
    }
}

/// The reason a value is not a plain IP address.
enum AddressProblem {
    /// An address with a prefix length, such as `192.0.2.4/24`.
    Prefix(IpAddr),
    Invalid,
}

impl AddressProblem {
    fn describe(&self, family: &str) -> String {
        match self {
            AddressProblem::Prefix(address) => format!(
                "has a prefix length, but the option takes a single address: \
                 drop the prefix length and write {address}"
            ),
            AddressProblem::Invalid => {
                let example = match family {
                    "IPv4" => "such as 192.0.2.10, without leading zeros",
                    "IPv6" => "such as 2001:db8::10, without a zone",
                    _ => "such as 192.0.2.10 or 2001:db8::10",
                };
                format!(
                    "is not a valid {family} address: write the address in numbers, {example}; \
                     host names are not accepted"
                )
            }
        }
    }
}

/// Parses a plain IP address as Go's `net.ParseIP` does for the forms
/// operators write: dotted IPv4 without leading zeros, or IPv6 without a
/// zone.
fn parse_address(value: &str) -> Result<IpAddr, AddressProblem> {
    if let Ok(address) = value.parse::<IpAddr>() {
        return Ok(address);
    }
    match value.parse::<ipnet::IpNet>() {
        Ok(network) => Err(AddressProblem::Prefix(network.addr())),
        Err(_) => Err(AddressProblem::Invalid),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_defaults() {
        let defaults = EngineDefaults::default();
        assert_eq!(defaults.config_server_port, 10255);
        assert_eq!(defaults.sync_port, 10258);
        assert_eq!(defaults.routing_table_id, 2);
        assert_eq!(defaults.vrrp_destination, Ipv4Addr::new(224, 0, 0, 18));
    }

    #[test]
    fn parse_address_forms() {
        assert!(matches!(parse_address("192.0.2.1"), Ok(IpAddr::V4(_))));
        assert!(matches!(parse_address("2001:db8::1"), Ok(IpAddr::V6(_))));
        assert!(matches!(
            parse_address("192.0.2.4/24"),
            Err(AddressProblem::Prefix(_))
        ));
        assert!(matches!(
            parse_address("192.0.2.010"),
            Err(AddressProblem::Invalid)
        ));
        assert!(matches!(
            parse_address("fe80::1%eth0"),
            Err(AddressProblem::Invalid)
        ));
        assert!(matches!(
            parse_address("host.example.com"),
            Err(AddressProblem::Invalid)
        ));
    }
}
