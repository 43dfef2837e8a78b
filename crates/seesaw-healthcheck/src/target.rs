//! The address a check probes and how its packets reach the backend.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

/// The path a check takes to its backend.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Mode {
    /// The check connects to the backend's own address.
    #[default]
    Plain,
    /// The check connects to the VIP, and an IPVS fwmark service forwards it
    /// to one backend by direct routing.
    Dsr,
    /// As `Dsr`, but the IPVS service forwards by IP-in-IP tunnelling.
    Tun,
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mode::Plain => "PLAIN",
            Mode::Dsr => "DSR",
            Mode::Tun => "TUN",
        })
    }
}

/// The address, port and socket mark of one check.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Target {
    /// The address that is dialled: the backend in PLAIN mode, the VIP in
    /// DSR and TUN mode.
    pub ip: IpAddr,
    /// The backend's address, shown in messages only.
    pub host: IpAddr,
    /// `SO_MARK` for the probe's socket; 0 leaves the mark unset.
    pub mark: u32,
    pub mode: Mode,
    /// Port to probe; ICMP checks ignore it.
    pub port: u16,
}

impl Target {
    /// Returns a PLAIN target for `ip:port` with no mark.
    pub fn plain(ip: IpAddr, port: u16) -> Target {
        Target {
            ip,
            host: ip,
            mark: 0,
            mode: Mode::Plain,
            port,
        }
    }

    /// Returns the socket address that is dialled.
    pub fn socket_addr(&self) -> SocketAddr {
        SocketAddr::new(self.ip, self.port)
    }
}

/// Formats as `<ip>:<port> <MODE>`, followed by ` (via <host> mark <mark>)`
/// for DSR and TUN, the form the engine shows to operators. IPv6 addresses
/// are bracketed.
impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.socket_addr(), self.mode)?;
        if self.mode != Mode::Plain {
            write!(f, " (via {} mark {})", self.host, self.mark)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_target_display() {
        let target = Target::plain("192.0.2.7".parse().unwrap(), 80);
        assert_eq!(target.to_string(), "192.0.2.7:80 PLAIN");
    }

    #[test]
    fn dsr_target_display_names_host_and_mark() {
        let target = Target {
            ip: "2001:db8::1".parse().unwrap(),
            host: "2001:db8::7".parse().unwrap(),
            mark: 65536,
            mode: Mode::Dsr,
            port: 443,
        };
        assert_eq!(
            target.to_string(),
            "[2001:db8::1]:443 DSR (via 2001:db8::7 mark 65536)"
        );
    }
}
