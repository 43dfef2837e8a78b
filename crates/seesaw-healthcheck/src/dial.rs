//! The one place where checks open sockets, so every probe can carry the
//! target's `SO_MARK`.
//!
//! In DSR and TUN mode the probe is addressed to the VIP, and the mark makes
//! the local IPVS fwmark service forward it to one backend. The mark is set
//! before `connect()` for TCP and UDP alike, because IPVS reads the mark of
//! the first packet. Setting a mark needs CAP_NET_ADMIN.

use std::io;
use std::net::SocketAddr;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::{TcpSocket, TcpStream, UdpSocket};

use crate::target::Target;

/// Opens a socket of `kind` for `addr`'s family with `mark` applied.
fn new_socket(addr: SocketAddr, kind: Type, protocol: Protocol, mark: u32) -> io::Result<Socket> {
    let socket = Socket::new(Domain::for_address(addr), kind, Some(protocol))?;
    socket.set_nonblocking(true)?;
    socket.set_cloexec(true)?;
    if mark != 0 {
        socket.set_mark(mark)?;
    }
    Ok(socket)
}

/// Connects a TCP stream to the target, with its mark set before the SYN.
pub async fn connect_tcp(target: &Target) -> io::Result<TcpStream> {
    let addr = target.socket_addr();
    let socket = new_socket(addr, Type::STREAM, Protocol::TCP, target.mark)?;
    let std_stream: std::net::TcpStream = socket.into();
    TcpSocket::from_std_stream(std_stream).connect(addr).await
}

/// Returns a UDP socket connected to the target, with its mark set.
///
/// A connected socket receives only the target's datagrams and reports an
/// ICMP port unreachable as a receive error.
pub fn connect_udp(target: &Target) -> io::Result<UdpSocket> {
    let addr = target.socket_addr();
    let socket = new_socket(addr, Type::DGRAM, Protocol::UDP, target.mark)?;
    socket.connect(&addr.into())?;
    let std_socket: std::net::UdpSocket = socket.into();
    UdpSocket::from_std(std_socket)
}

/// The kind of ICMP socket a ping check got.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IcmpSocketKind {
    /// A raw socket (CAP_NET_RAW). IPv4 reads include the IP header.
    Raw,
    /// A datagram ping socket, allowed by `net.ipv4.ping_group_range`. The
    /// kernel sets the echo identifier to the socket's own.
    Datagram,
}

/// Opens an ICMP socket for `target`'s family: raw when the process may,
/// else a datagram ping socket.
///
/// The socket is wrapped as a tokio `UdpSocket` only for its readiness and
/// its `send_to`/`recv_from`, which work on any datagram socket.
pub fn open_icmp(target: &Target) -> io::Result<(UdpSocket, IcmpSocketKind)> {
    let addr = SocketAddr::new(target.ip, 0);
    let protocol = if target.ip.is_ipv4() {
        Protocol::ICMPV4
    } else {
        Protocol::ICMPV6
    };

    let (socket, kind) = match new_socket(addr, Type::RAW, protocol, target.mark) {
        Ok(socket) => (socket, IcmpSocketKind::Raw),
        Err(raw_error) if raw_error.kind() == io::ErrorKind::PermissionDenied => {
            match new_socket(addr, Type::DGRAM, protocol, target.mark) {
                Ok(socket) => (socket, IcmpSocketKind::Datagram),
                // The raw socket's error names the missing capability.
                Err(_) => return Err(raw_error),
            }
        }
        Err(error) => return Err(error),
    };
    let std_socket: std::net::UdpSocket = socket.into();
    Ok((UdpSocket::from_std(std_socket)?, kind))
}
