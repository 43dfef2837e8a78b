//! BGP advertisements of anycast VIPs through the bgpd of FRR (or Quagga),
//! driven over its vty socket as `vtysh` drives it.
//!
//! The VIP calls add and remove `network <vip>/32` and `network <vip>/128`
//! statements in the default `router bgp <asn>` instance, whose AS number
//! they read from the running configuration. They never create an
//! instance. The neighbors come either from the operator's own bgpd
//! configuration, as with Seesaw v2, or from cluster.pb through
//! [`Bgp::apply_peers`] ([`peers`] describes what that configures).

pub mod config;
pub mod neighbors;
pub mod peers;
pub mod vty;

use std::io;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;
use tokio::sync::Mutex;

use self::config::{BgpInstance, default_instance};
use self::neighbors::{Neighbor, parse_neighbors};
use self::peers::{OtherInstance, PeerPlan, Peering, plan_peers};
use self::vty::{Vty, status_name};

/// The path of bgpd's vty socket in Debian's `frr` package.
pub const DEFAULT_VTY_SOCKET: &str = "/var/run/frr/bgpd.vty";

/// Limit of the connect and of each command's round trip. Go Seesaw waited
/// 1 s for a whole reply, which a long `show ip bgp neighbors` can exceed.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// A BGP operation failed.
#[derive(Debug, thiserror::Error)]
pub enum BgpError {
    #[error(
        "failed to connect to bgpd at {}: {source}; is bgpd running with this vty socket?",
        path.display()
    )]
    Connect {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error("failed to send `{command}` to bgpd at {}: {source}", path.display())]
    Io {
        path: PathBuf,
        command: String,
        #[source]
        source: io::Error,
    },

    #[error("bgpd at {} closed the connection during `{command}`", path.display())]
    Closed { path: PathBuf, command: String },

    #[error(
        "bgpd at {} did not complete `{command}` within {} s",
        path.display(),
        timeout.as_secs_f64()
    )]
    Timeout {
        path: PathBuf,
        command: String,
        timeout: Duration,
    },

    /// bgpd returned a status other than success.
    #[error(
        "bgpd at {} rejected `{command}` with status {status} ({}): {output}",
        path.display(),
        status_name(*status)
    )]
    Rejected {
        path: PathBuf,
        command: String,
        status: u8,
        output: String,
    },

    /// bgpd returned success with a `% ...` message instead of the output,
    /// as FRR does for `show ip bgp neighbors` without a BGP instance.
    #[error("bgpd at {} answered `{command}` with: {message}", path.display())]
    Reported {
        path: PathBuf,
        command: String,
        message: String,
    },

    #[error(
        "bgpd at {} has no `router bgp <asn>` instance in its running configuration; \
         configure one with the node's AS number and neighbours",
        path.display()
    )]
    NoInstance { path: PathBuf },

    /// The running configuration has a default instance of another AS
    /// than cluster.pb's `bgp_local_asn`.
    #[error(
        "bgpd at {} runs `router bgp {running}`, but cluster.pb sets bgp_local_asn {requested}: \
         bgpd has one default instance, so set bgp_local_asn to {running}, or change the \
         instance in bgpd's configuration (no router bgp {running}, which drops its \
         configuration)",
        path.display()
    )]
    OtherInstance {
        path: PathBuf,
        running: u32,
        requested: u32,
    },

    /// The requested neighbors cannot be configured.
    #[error("invalid BGP neighbors: {0}")]
    InvalidPeering(String),

    /// bgpd took every command, yet its running configuration still
    /// differs from the neighbors requested.
    #[error(
        "bgpd at {} took the commands but still needs: {}; check its log for the reason",
        path.display(),
        remaining.join("; ")
    )]
    NotApplied {
        path: PathBuf,
        remaining: Vec<String>,
    },

    /// A command text the vty protocol cannot carry; a bug in the caller.
    #[error("invalid vty command {0:?}: it contains a NUL byte or a line break")]
    InvalidCommand(String),
}

/// A `network` statement to add or remove.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Advertise(IpNet),
    Withdraw(IpNet),
}

impl Change {
    fn prefix(self) -> IpNet {
        match self {
            Change::Advertise(prefix) | Change::Withdraw(prefix) => prefix,
        }
    }

    /// Returns the configuration command inside the prefix's address family.
    fn command(self) -> String {
        match self {
            Change::Advertise(prefix) => format!("network {prefix}"),
            Change::Withdraw(prefix) => format!("no network {prefix}"),
        }
    }
}

impl std::fmt::Display for Change {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Change::Advertise(prefix) => write!(formatter, "advertise {prefix}"),
            Change::Withdraw(prefix) => write!(formatter, "withdraw {prefix}"),
        }
    }
}

/// Returns the host prefix of `address`: /32 for IPv4, /128 for IPv6.
pub fn host_prefix(address: IpAddr) -> IpNet {
    IpNet::from(address)
}

/// Returns whether `prefix` covers a single address.
pub fn is_host_prefix(prefix: &IpNet) -> bool {
    prefix.prefix_len() == prefix.max_prefix_len()
}

/// Returns the vty commands that apply `changes` to the instance `asn`,
/// grouped by address family, from `configure terminal` to `end`.
pub fn configuration_commands(asn: u32, changes: &[Change]) -> Vec<String> {
    let mut commands = vec!["configure terminal".to_owned(), format!("router bgp {asn}")];
    for (family, ipv4) in [("ipv4", true), ("ipv6", false)] {
        let family_changes: Vec<_> = changes
            .iter()
            .filter(|change| matches!(change.prefix(), IpNet::V4(_)) == ipv4)
            .collect();
        if family_changes.is_empty() {
            continue;
        }
        commands.push(format!("address-family {family} unicast"));
        commands.extend(family_changes.iter().map(|change| change.command()));
        commands.push("exit-address-family".to_owned());
    }
    commands.push("end".to_owned());
    commands
}

/// The outcome of [`Bgp::apply_peers`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeerReport {
    /// The configuration commands sent, none when nothing changed.
    pub commands: Vec<String>,
    /// Peers left alone, each with the reason and the fix.
    pub skipped: Vec<String>,
}

/// The NCC's handle on bgpd. Each operation opens its own vty session, so
/// a bgpd restart between calls does no harm.
pub struct Bgp {
    socket: PathBuf,
    timeout: Duration,
    /// Serialises read-modify-write changes of the `network` statements,
    /// so that two calls never interleave their configuration sessions.
    config_lock: Mutex<()>,
}

impl Bgp {
    /// Drives the bgpd whose vty socket is at `socket`.
    pub fn new(socket: impl Into<PathBuf>) -> Bgp {
        Bgp {
            socket: socket.into(),
            timeout: DEFAULT_TIMEOUT,
            config_lock: Mutex::new(()),
        }
    }

    /// Sets the limit of the connect and of each command's round trip.
    pub fn with_timeout(mut self, timeout: Duration) -> Bgp {
        self.timeout = timeout;
        self
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// Opens a session in the enable node, where `show running-config` and
    /// `configure terminal` exist.
    async fn session(&self) -> Result<Vty, BgpError> {
        let mut vty = Vty::connect(&self.socket, self.timeout).await?;
        vty.command("enable").await?;
        Ok(vty)
    }

    async fn read_running_config(&self, vty: &mut Vty) -> Result<String, BgpError> {
        vty.command("show running-config").await
    }

    /// Returns bgpd's running configuration, one line per element.
    pub async fn running_config(&self) -> Result<Vec<String>, BgpError> {
        let mut vty = self.session().await?;
        let text = self.read_running_config(&mut vty).await?;
        Ok(text.lines().map(str::to_owned).collect())
    }

    /// Returns the neighbours of `show ip bgp neighbors`.
    pub async fn neighbors(&self) -> Result<Vec<Neighbor>, BgpError> {
        const COMMAND: &str = "show ip bgp neighbors";
        let mut vty = self.session().await?;
        let output = vty.command(COMMAND).await?;
        let first_line = output.lines().find(|line| !line.trim().is_empty());
        if let Some(message) = first_line.filter(|line| line.starts_with('%')) {
            return Err(BgpError::Reported {
                path: self.socket.clone(),
                command: COMMAND.to_owned(),
                message: message.to_owned(),
            });
        }
        Ok(parse_neighbors(&output))
    }

    /// Advertises `vip` as a host prefix. Advertising it again does nothing.
    pub async fn advertise(&self, vip: IpAddr) -> Result<(), BgpError> {
        self.change(Change::Advertise(host_prefix(vip))).await
    }

    /// Withdraws the host prefix of `vip`. Withdrawing what is not
    /// advertised does nothing.
    pub async fn withdraw(&self, vip: IpAddr) -> Result<(), BgpError> {
        self.change(Change::Withdraw(host_prefix(vip))).await
    }

    async fn change(&self, change: Change) -> Result<(), BgpError> {
        let _guard = self.config_lock.lock().await;
        let mut vty = self.session().await?;
        let instance = self.instance(&mut vty).await?;
        let configured = instance.networks.contains(&change.prefix());
        let needed = match change {
            Change::Advertise(_) => !configured,
            Change::Withdraw(_) => configured,
        };
        if !needed {
            tracing::debug!("BGP {change}: already so in router bgp {}", instance.asn);
            return Ok(());
        }
        vty.commands(&configuration_commands(instance.asn, &[change]))
            .await?;
        tracing::info!("BGP {change}: done in router bgp {}", instance.asn);
        Ok(())
    }

    /// Withdraws every host prefix (/32 and /128) of the IPv4 and IPv6
    /// unicast families and returns them. Other prefixes stay. Without a
    /// BGP instance nothing is advertised, so that is a success.
    pub async fn withdraw_all(&self) -> Result<Vec<IpNet>, BgpError> {
        let _guard = self.config_lock.lock().await;
        let mut vty = self.session().await?;
        let instance = match self.instance(&mut vty).await {
            Ok(instance) => instance,
            Err(BgpError::NoInstance { .. }) => return Ok(Vec::new()),
            Err(error) => return Err(error),
        };
        let withdrawn: Vec<IpNet> = instance
            .networks
            .into_iter()
            .filter(is_host_prefix)
            .collect();
        if withdrawn.is_empty() {
            return Ok(withdrawn);
        }
        let changes: Vec<Change> = withdrawn.iter().copied().map(Change::Withdraw).collect();
        vty.commands(&configuration_commands(instance.asn, &changes))
            .await?;
        tracing::info!(
            "BGP withdrew {} host prefixes from router bgp {}",
            withdrawn.len(),
            instance.asn
        );
        Ok(withdrawn)
    }

    /// Configures the neighbors of `peering` and removes Seesaw's neighbors
    /// that it no longer lists, leaving the rest of bgpd's configuration
    /// as it is. Applying the same `peering` again sends no command.
    /// Returns what was done.
    pub async fn apply_peers(&self, peering: &Peering) -> Result<PeerReport, BgpError> {
        peering.validate().map_err(BgpError::InvalidPeering)?;
        let _guard = self.config_lock.lock().await;
        let mut vty = self.session().await?;

        let plan = self.plan_peers(&mut vty, peering).await?;
        if plan.commands.is_empty() {
            tracing::debug!(
                "BGP neighbors already as configured: {} peers",
                peering.peers.len()
            );
            return Ok(PeerReport {
                commands: Vec::new(),
                skipped: plan.skipped,
            });
        }
        vty.commands(&plan.commands).await?;

        // bgpd returns success with a message for some commands (one that
        // names a missing route map, say), so the status alone does not
        // show that the configuration changed, and the result is read back.
        let remaining = self.plan_peers(&mut vty, peering).await?.commands;
        if !remaining.is_empty() {
            return Err(BgpError::NotApplied {
                path: self.socket.clone(),
                remaining,
            });
        }
        tracing::info!(
            "BGP neighbors configured: {} peers of AS {} ({})",
            peering.peers.len(),
            peering.remote_asn,
            plan.commands.join("; ")
        );
        Ok(PeerReport {
            commands: plan.commands,
            skipped: plan.skipped,
        })
    }

    async fn plan_peers(&self, vty: &mut Vty, peering: &Peering) -> Result<PeerPlan, BgpError> {
        let text = self.read_running_config(vty).await?;
        plan_peers(&text, peering).map_err(|OtherInstance { asn }| BgpError::OtherInstance {
            path: self.socket.clone(),
            running: asn,
            requested: peering.local_asn,
        })
    }

    async fn instance(&self, vty: &mut Vty) -> Result<BgpInstance, BgpError> {
        let text = self.read_running_config(vty).await?;
        default_instance(&text).ok_or_else(|| BgpError::NoInstance {
            path: self.socket.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prefix(text: &str) -> IpNet {
        text.parse().unwrap()
    }

    #[test]
    fn host_prefixes() {
        assert_eq!(
            host_prefix("192.168.255.1".parse().unwrap()),
            prefix("192.168.255.1/32")
        );
        assert_eq!(
            host_prefix("2015:cafe:ffff::1".parse().unwrap()),
            prefix("2015:cafe:ffff::1/128")
        );
        assert!(is_host_prefix(&prefix("2015:cafe:ffff::1/128")));
        assert!(!is_host_prefix(&prefix("192.168.255.0/24")));
    }

    #[test]
    fn advertise_commands() {
        let commands = configuration_commands(64512, &[Change::Advertise(prefix("192.0.2.1/32"))]);
        assert_eq!(
            commands,
            [
                "configure terminal",
                "router bgp 64512",
                "address-family ipv4 unicast",
                "network 192.0.2.1/32",
                "exit-address-family",
                "end",
            ]
        );
    }

    #[test]
    fn withdraw_commands_grouped_by_family() {
        let changes = [
            Change::Withdraw(prefix("2001:db8::1/128")),
            Change::Withdraw(prefix("192.0.2.1/32")),
            Change::Withdraw(prefix("2001:db8::2/128")),
        ];
        assert_eq!(
            configuration_commands(65000, &changes),
            [
                "configure terminal",
                "router bgp 65000",
                "address-family ipv4 unicast",
                "no network 192.0.2.1/32",
                "exit-address-family",
                "address-family ipv6 unicast",
                "no network 2001:db8::1/128",
                "no network 2001:db8::2/128",
                "exit-address-family",
                "end",
            ]
        );
    }
}
