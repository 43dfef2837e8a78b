//! Raw IP sockets of protocol 112 that carry the adverts.
//!
//! | Peer | Sends with | Receives on |
//! |---|---|---|
//! | IPv4 unicast | one socket bound to the local address, TTL 255 | the same socket |
//! | IPv4 group | the same, multicast TTL 255, no loopback | a second socket bound to the group and joined on the local address's interface, and the first socket for unicast adverts |
//! | IPv6 unicast or group | one socket bound to the local address, hop limit 255 | the same socket, with the hop limit and destination from the ancillary data |
//!
//! A raw IPv4 socket bound to a unicast address does not receive packets
//! sent to a group, which is why IPv4 needs the second socket. A raw IPv6
//! socket receives the groups it joined whatever it is bound to.

use std::io::{self, IoSliceMut};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6};
use std::os::fd::AsRawFd;

use nix::sys::socket::{ControlMessageOwned, MsgFlags, SockaddrIn6, recvmsg, setsockopt, sockopt};
use seesaw_vrrp::packet::{Datagram, Endpoints, IP_PROTOCOL, REQUIRED_HOP_LIMIT};
use seesaw_vrrp::{Advertisement, EncodeError, Ipv4HeaderError};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use thiserror::Error;
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

/// Receive buffer size in bytes: an IPv4 header with options (60) plus an
/// advert with 255 IPv6 addresses (8 + 4,080) fits.
const RECEIVE_BUFFER_LEN: usize = 4200;

/// A failure to set up the sockets. Fatal at start-up.
#[derive(Debug, Error)]
pub enum SetupError {
    #[error("local address {local} and remote address {remote} are of different address families")]
    FamilyMismatch { local: IpAddr, remote: IpAddr },
    #[error("no interface has the local address {0}; add it or fix -local_addr")]
    NoInterface(IpAddr),
    #[error("failed to list the interfaces: {0}")]
    Interfaces(#[source] nix::Error),
    #[error("failed to {step} for the VRRP socket of {address}: {source}")]
    Socket {
        step: &'static str,
        address: IpAddr,
        #[source]
        source: io::Error,
    },
}

/// A failure to send or receive one packet. The daemon logs it and carries on.
#[derive(Debug, Error)]
pub enum PacketError {
    #[error("failed to encode the advert: {0}")]
    Encode(#[from] EncodeError),
    #[error("failed to send the advert to {remote}: {source}")]
    Send {
        remote: IpAddr,
        #[source]
        source: io::Error,
    },
    #[error("failed to receive from the VRRP socket: {0}")]
    Receive(#[source] io::Error),
    #[error("received an invalid IPv4 packet: {0}")]
    Ipv4Header(#[from] Ipv4HeaderError),
    #[error("received an IPv6 packet without its {0} ancillary data")]
    MissingAncillary(&'static str),
}

impl PacketError {
    /// Returns a short, fixed name for the kind of error, used to rate-limit
    /// the log.
    pub fn kind(&self) -> &'static str {
        match self {
            PacketError::Encode(_) => "encode",
            PacketError::Send { .. } => "send",
            PacketError::Receive(_) => "receive",
            PacketError::Ipv4Header(_) => "ipv4_header",
            PacketError::MissingAncillary(_) => "ancillary",
        }
    }
}

/// A received packet, copied out of the socket buffer.
#[derive(Debug, Clone)]
pub struct ReceivedPacket {
    pub endpoints: Endpoints,
    pub hop_limit: u8,
    pub payload: Vec<u8>,
}

impl ReceivedPacket {
    pub fn datagram(&self) -> Datagram<'_> {
        Datagram {
            endpoints: self.endpoints,
            hop_limit: self.hop_limit,
            payload: &self.payload,
        }
    }
}

/// The sockets of one node.
pub struct VrrpSockets {
    local: IpAddr,
    remote: IpAddr,
    /// Sends every advert and receives unicast adverts (and, for IPv6,
    /// group adverts too).
    main: AsyncFd<Socket>,
    /// IPv4 with a group peer only: receives the group's adverts.
    group: Option<AsyncFd<Socket>>,
    /// The destination of every advert, with the interface for an IPv6
    /// link-local group.
    destination: SockAddr,
}

impl VrrpSockets {
    /// Opens the sockets for adverts between `local` and `remote`, a unicast
    /// peer or a multicast group. Needs CAP_NET_RAW and a tokio runtime.
    pub fn open(local: IpAddr, remote: IpAddr) -> Result<Self, SetupError> {
        match (local, remote) {
            (IpAddr::V4(local), IpAddr::V4(remote)) => Self::open_v4(local, remote),
            (IpAddr::V6(local), IpAddr::V6(remote)) => Self::open_v6(local, remote),
            _ => Err(SetupError::FamilyMismatch { local, remote }),
        }
    }

    fn open_v4(local: Ipv4Addr, remote: Ipv4Addr) -> Result<Self, SetupError> {
        let address = IpAddr::V4(local);
        let step = |step: &'static str| {
            move |source: io::Error| SetupError::Socket {
                step,
                address,
                source,
            }
        };

        let main = raw_socket(Domain::IPV4).map_err(step("create"))?;
        main.bind(&SocketAddr::new(address, 0).into())
            .map_err(step("bind the local address"))?;
        main.set_ttl_v4(u32::from(REQUIRED_HOP_LIMIT))
            .map_err(step("set the TTL"))?;

        let mut group = None;
        if remote.is_multicast() {
            main.set_multicast_ttl_v4(u32::from(REQUIRED_HOP_LIMIT))
                .map_err(step("set the multicast TTL"))?;
            main.set_multicast_loop_v4(false)
                .map_err(step("turn off multicast loopback"))?;
            // Pick the interface explicitly rather than rely on the route
            // lookup choosing the device that owns the bound address.
            main.set_multicast_if_v4(&local)
                .map_err(step("set the multicast interface"))?;

            let receiver = raw_socket(Domain::IPV4).map_err(step("create the group socket"))?;
            receiver
                .bind(&SocketAddr::new(IpAddr::V4(remote), 0).into())
                .map_err(step("bind the group socket to the group"))?;
            receiver
                .join_multicast_v4(&remote, &local)
                .map_err(step("join the multicast group"))?;
            group = Some(async_fd(receiver).map_err(step("register the group socket"))?);
        }

        Ok(VrrpSockets {
            local: address,
            remote: IpAddr::V4(remote),
            main: async_fd(main).map_err(step("register the socket"))?,
            group,
            destination: SocketAddr::new(IpAddr::V4(remote), 0).into(),
        })
    }

    fn open_v6(local: Ipv6Addr, remote: Ipv6Addr) -> Result<Self, SetupError> {
        let address = IpAddr::V6(local);
        let step = |step: &'static str| {
            move |source: io::Error| SetupError::Socket {
                step,
                address,
                source,
            }
        };
        let interface = interface_index(address)?;
        let scope = |ip: &Ipv6Addr| {
            if ip.is_unicast_link_local() || ip.is_multicast() {
                interface
            } else {
                0
            }
        };

        let main = raw_socket(Domain::IPV6).map_err(step("create"))?;
        main.bind(&SocketAddrV6::new(local, 0, 0, scope(&local)).into())
            .map_err(step("bind the local address"))?;
        main.set_unicast_hops_v6(u32::from(REQUIRED_HOP_LIMIT))
            .map_err(step("set the hop limit"))?;
        setsockopt(&main, sockopt::Ipv6RecvHopLimit, &true)
            .map_err(|errno| step("request the hop limit")(errno.into()))?;
        setsockopt(&main, sockopt::Ipv6RecvPacketInfo, &true)
            .map_err(|errno| step("request the packet information")(errno.into()))?;

        if remote.is_multicast() {
            main.set_multicast_hops_v6(u32::from(REQUIRED_HOP_LIMIT))
                .map_err(step("set the multicast hop limit"))?;
            main.set_multicast_loop_v6(false)
                .map_err(step("turn off multicast loopback"))?;
            main.set_multicast_if_v6(interface)
                .map_err(step("set the multicast interface"))?;
            main.join_multicast_v6(&remote, interface)
                .map_err(step("join the multicast group"))?;
        }

        Ok(VrrpSockets {
            local: address,
            remote: IpAddr::V6(remote),
            main: async_fd(main).map_err(step("register the socket"))?,
            group: None,
            destination: SocketAddrV6::new(remote, 0, 0, scope(&remote)).into(),
        })
    }

    /// Encodes `advertisement` for the configured peer or group and sends it.
    ///
    /// The socket is non-blocking: a full send buffer drops the advert with
    /// an error instead of delaying the next event.
    pub fn send(&self, advertisement: &Advertisement) -> Result<(), PacketError> {
        let endpoints = Endpoints::new(self.local, self.remote)
            .expect("open() checked that both addresses are of one family");
        let packet = advertisement.encode(&endpoints)?;
        self.main
            .get_ref()
            .send_to(&packet, &self.destination)
            .map_err(|source| PacketError::Send {
                remote: self.remote,
                source,
            })?;
        Ok(())
    }

    /// Waits until a socket is readable and returns what [`Self::drain`]
    /// reads then. Returns only when at least one packet or error is read.
    ///
    /// Cancel-safe: a cancelled call leaves every packet queued.
    pub async fn receive(&self) -> Vec<Result<ReceivedPacket, PacketError>> {
        loop {
            let mut guard = match &self.group {
                None => self.main.readable().await,
                Some(group) => tokio::select! {
                    guard = self.main.readable() => guard,
                    guard = group.readable() => guard,
                },
            };
            let Ok(guard) = guard.as_mut() else {
                // Registration errors only happen when the runtime shuts
                // down. A direct read returns the socket's own error, if any.
                return self.drain();
            };
            let packets = self.drain();
            // drain() read until EAGAIN, so a packet that arrived since is
            // a new readiness event and clearing cannot lose it.
            guard.clear_ready();
            if !packets.is_empty() {
                return packets;
            }
        }
    }

    /// Reads every packet queued on the sockets without waiting.
    ///
    /// The daemon also calls it when a timer fires, before handling the
    /// expiry, so that an advert that arrived at the last moment counts.
    /// The ICMP errors that a raw socket reports while the peer has no VRRP
    /// socket open (ENOPROTOOPT, EPROTO, ECONNREFUSED, EHOSTUNREACH) are
    /// skipped, as the Go peer skips them. Other errors are returned beside
    /// the packets.
    pub fn drain(&self) -> Vec<Result<ReceivedPacket, PacketError>> {
        let mut out = Vec::new();
        for socket in std::iter::once(&self.main).chain(self.group.as_ref()) {
            loop {
                let result = match self.local {
                    IpAddr::V4(_) => receive_v4(socket.get_ref()),
                    IpAddr::V6(_) => receive_v6(socket.get_ref()),
                };
                match result {
                    Ok(packet) => out.push(packet),
                    Err(error) if error.kind() == io::ErrorKind::WouldBlock => break,
                    Err(error) if is_peer_unreachable(&error) => continue,
                    Err(error) => {
                        out.push(Err(PacketError::Receive(error)));
                        break;
                    }
                }
            }
        }
        out
    }
}

fn raw_socket(domain: Domain) -> io::Result<Socket> {
    let socket = Socket::new(
        domain,
        Type::RAW,
        Some(Protocol::from(i32::from(IP_PROTOCOL))),
    )?;
    socket.set_nonblocking(true)?;
    socket.set_cloexec(true)?;
    Ok(socket)
}

fn async_fd(socket: Socket) -> io::Result<AsyncFd<Socket>> {
    // SAFETY: the socket2 `Socket` owns its descriptor, keeps it open until
    // it is dropped, and always returns the same one from `as_raw_fd`.
    let registered = unsafe { AsyncFd::register_with_interest(socket, Interest::READABLE) };
    registered.map_err(io::Error::from)
}

/// Returns the index of the interface that has `address`.
fn interface_index(address: IpAddr) -> Result<u32, SetupError> {
    let interfaces = nix::ifaddrs::getifaddrs().map_err(SetupError::Interfaces)?;
    for interface in interfaces {
        let Some(storage) = interface.address else {
            continue;
        };
        let matches = match address {
            IpAddr::V4(v4) => storage.as_sockaddr_in().is_some_and(|sin| sin.ip() == v4),
            IpAddr::V6(v6) => storage
                .as_sockaddr_in6()
                .is_some_and(|sin6| sin6.ip() == v6),
        };
        if matches {
            return nix::net::if_::if_nametoindex(interface.interface_name.as_str())
                .map_err(SetupError::Interfaces);
        }
    }
    Err(SetupError::NoInterface(address))
}

fn is_peer_unreachable(error: &io::Error) -> bool {
    matches!(
        error.raw_os_error(),
        Some(libc::ENOPROTOOPT | libc::EPROTO | libc::ECONNREFUSED | libc::EHOSTUNREACH)
    )
}

/// Reads one IPv4 packet; a raw IPv4 socket returns it with its IP header.
fn receive_v4(socket: &Socket) -> io::Result<Result<ReceivedPacket, PacketError>> {
    let mut buffer = [0u8; RECEIVE_BUFFER_LEN];
    let len = nix::sys::socket::recv(socket.as_raw_fd(), &mut buffer, MsgFlags::MSG_DONTWAIT)
        .map_err(io::Error::from)?;
    Ok(Datagram::from_ipv4_packet(&buffer[..len])
        .map(|datagram| ReceivedPacket {
            endpoints: datagram.endpoints,
            hop_limit: datagram.hop_limit,
            payload: datagram.payload.to_vec(),
        })
        .map_err(PacketError::from))
}

/// Reads one IPv6 packet. The socket returns only the VRRP payload, so the
/// hop limit and the destination come from the ancillary data.
fn receive_v6(socket: &Socket) -> io::Result<Result<ReceivedPacket, PacketError>> {
    let mut buffer = [0u8; RECEIVE_BUFFER_LEN];
    let mut control = nix::cmsg_space!(libc::in6_pktinfo, libc::c_int);
    let mut iov = [IoSliceMut::new(&mut buffer)];
    let message = recvmsg::<SockaddrIn6>(
        socket.as_raw_fd(),
        &mut iov,
        Some(&mut control),
        MsgFlags::MSG_DONTWAIT,
    )
    .map_err(io::Error::from)?;

    let len = message.bytes;
    let source = message.address.map(|address| address.ip());
    let mut hop_limit = None;
    let mut destination = None;
    for cmsg in message.cmsgs().map_err(io::Error::from)? {
        match cmsg {
            ControlMessageOwned::Ipv6HopLimit(limit) => hop_limit = u8::try_from(limit).ok(),
            ControlMessageOwned::Ipv6PacketInfo(info) => {
                destination = Some(Ipv6Addr::from(info.ipi6_addr.s6_addr))
            }
            _ => {}
        }
    }

    let packet = (|| {
        let source = source.ok_or(PacketError::MissingAncillary("source address"))?;
        let hop_limit = hop_limit.ok_or(PacketError::MissingAncillary("hop limit"))?;
        let destination = destination.ok_or(PacketError::MissingAncillary("packet information"))?;
        Ok(ReceivedPacket {
            endpoints: Endpoints::V6 {
                source,
                destination,
            },
            hop_limit,
            payload: buffer[..len].to_vec(),
        })
    })();
    Ok(packet)
}
