//! UDP request and reply.

use std::fmt;

use super::{CheckResult, Outcome, quote};
use crate::dial;
use crate::target::Target;

/// Largest UDP payload over IPv4 or IPv6 without jumbograms.
const MAX_DATAGRAM: usize = 65_535;

/// A UDP check: one datagram out, one back.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct UdpChecker {
    pub target: Target,
    /// The request datagram; empty sends an empty datagram.
    pub send: Vec<u8>,
    /// The reply must start with these bytes. A reply is required even when
    /// this is empty.
    pub receive: Vec<u8>,
}

impl UdpChecker {
    pub(super) async fn check(&self) -> CheckResult {
        let outcome = Outcome::start();
        let message = format!("UDP check to {}", self.target.socket_addr());

        let socket = match dial::connect_udp(&self.target) {
            Ok(socket) => socket,
            Err(error) => {
                return outcome.error(format!("{message}; failed to create socket"), error);
            }
        };
        if let Err(error) = socket.send(&self.send).await {
            return outcome.error(format!("{message}; failed to send request"), error);
        }

        // An ICMP port unreachable for the request arrives here as
        // ECONNREFUSED, because the socket is connected.
        let mut reply = vec![0; MAX_DATAGRAM];
        let length = match socket.recv(&mut reply).await {
            Ok(length) => length,
            Err(error) => {
                return outcome.error(format!("{message}; failed to read response"), error);
            }
        };
        let reply = &reply[..length];
        if !reply.starts_with(&self.receive) {
            return outcome.failure(format!("{message}; unexpected response - {}", quote(reply)));
        }
        outcome.success(message)
    }
}

impl fmt::Display for UdpChecker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UDP {}", self.target)
    }
}
