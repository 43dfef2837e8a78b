//! The async handle: one generic netlink socket, resolved family id,
//! request/acknowledgement matching by sequence number.
//!
//! The socket is netlink-sys's `TokioSocket`, a non-blocking socket driven
//! by tokio's reactor. IPVS requests are short and the kernel handles them
//! synchronously, so a blocking socket on `spawn_blocking` would only add a
//! thread hop per call. One socket serves the handle, and a mutex serialises
//! calls. Replies whose sequence number does not belong to the current call
//! (left over from a cancelled call) are dropped.

use netlink_packet_core::{
    DoneBuffer, DoneMessage, ErrorBuffer, ErrorMessage, NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST,
    NLMSG_DONE, NLMSG_ERROR, NetlinkBuffer, NetlinkHeader, NetlinkMessage, NlasIterator, Parseable,
    ParseableParametrized,
};
use netlink_packet_generic::GenlMessage;
use netlink_packet_generic::constants::{CTRL_ATTR_FAMILY_ID, GENL_ID_CTRL};
use netlink_packet_generic::ctrl::nlas::GenlCtrlAttrs;
use netlink_packet_generic::ctrl::{GenlCtrl, GenlCtrlCmd};
use netlink_sys::protocols::NETLINK_GENERIC;
use netlink_sys::{AsyncSocket, AsyncSocketExt, SocketAddr, TokioSocket};
use tokio::sync::Mutex;

use crate::constants::GENL_NAME;
use crate::destination::Destination;
use crate::error::{Error, Result};
use crate::info::{Info, Timeouts};
use crate::message::IpvsMessage;
use crate::request::Request;
use crate::service::{Service, ServiceKey};

/// Receive buffer for one datagram. The kernel sizes dump datagrams to at
/// most 32 KiB (`NLMSG_GOODSIZE` grown up to the reader's buffer), so a
/// 64 KiB buffer receives any of them whole.
const RECEIVE_BUFFER_LEN: usize = 64 * 1024;

/// Requested socket receive buffer. Acknowledgements of a batch queue
/// there until read; the kernel caps the value at `net.core.rmem_max` and
/// doubles it.
const SOCKET_RECEIVE_BUFFER: usize = 4 * 1024 * 1024;

/// Most requests sent per datagram by [`Ipvs::apply`] before reading their
/// acknowledgements. Measured in the kernel lab (Linux 6.1, receive buffer
/// 425984 bytes): 256 per round trip worked, 1024 overflowed the buffer.
pub const DEFAULT_BATCH_WINDOW: usize = 256;

/// Receive-buffer space budgeted per acknowledgement, an estimate with
/// room to spare: the kernel charges a socket buffer's true size (several
/// hundred bytes) for each 36-byte acknowledgement. A smaller socket buffer
/// gets a smaller window, because an overflow loses acknowledgements and
/// the batch fails with `ENOBUFS`.
const ACK_BUFFER_COST: usize = 1024;

/// The outcome of [`Ipvs::apply`]: the requests the kernel rejected.
#[derive(Debug, Default)]
pub struct BatchReport {
    /// Requests sent, which equals the batch length.
    pub sent: usize,
    pub failures: Vec<BatchFailure>,
}

impl BatchReport {
    pub fn is_success(&self) -> bool {
        self.failures.is_empty()
    }
}

/// One rejected request of a batch.
#[derive(Debug)]
pub struct BatchFailure {
    /// Position of the request in the batch.
    pub index: usize,
    /// An [`Error::Kernel`] naming the request's object.
    pub error: Error,
}

/// A handle on the kernel's IPVS table.
pub struct Ipvs {
    family_id: u16,
    batch_window: usize,
    connection: Mutex<Connection>,
}

struct Connection {
    socket: TokioSocket,
    next_sequence: u32,
    buffer: Vec<u8>,
}

/// One message of a received datagram: header fields and the payload.
struct Received<'a> {
    message_type: u16,
    sequence: u32,
    payload: &'a [u8],
}

/// The meaning of a received message for the request it replies to.
enum Reply {
    /// A data message (a service, a destination, an info reply).
    Data(IpvsMessage),
    /// `NLMSG_ERROR` with code 0.
    Ack,
    /// `NLMSG_ERROR` with a negative errno; stored positive.
    Rejected(i32),
    /// `NLMSG_DONE`, the end of a dump.
    Done,
}

impl Ipvs {
    /// Opens a generic netlink socket and resolves the `IPVS` family.
    pub async fn connect() -> Result<Self> {
        let mut socket = TokioSocket::new(NETLINK_GENERIC).map_err(Error::Socket)?;
        socket.socket_mut().bind_auto().map_err(Error::Socket)?;
        socket
            .socket_ref()
            .connect(&SocketAddr::new(0, 0))
            .map_err(Error::Socket)?;
        // Both settings are optimisations: without NETLINK_CAP_ACK (Linux
        // 4.3) error replies carry a copy of the request, and a smaller
        // buffer only makes batches fail sooner with ENOBUFS.
        let _ = socket.socket_ref().set_cap_ack(true);
        let _ = socket.socket_ref().set_rx_buf_sz(SOCKET_RECEIVE_BUFFER);
        let receive_buffer = socket.socket_ref().get_rx_buf_sz().map_err(Error::Socket)?;
        let batch_window = (receive_buffer / ACK_BUFFER_COST).clamp(1, DEFAULT_BATCH_WINDOW);
        let mut connection = Connection {
            socket,
            next_sequence: 1,
            buffer: Vec::with_capacity(RECEIVE_BUFFER_LEN),
        };
        let family_id = connection.resolve_family().await?;
        Ok(Self {
            family_id,
            batch_window,
            connection: Mutex::new(connection),
        })
    }

    /// Returns the numeric id the kernel gave the `IPVS` family.
    pub fn family_id(&self) -> u16 {
        self.family_id
    }

    /// Sets how many requests [`Ipvs::apply`] sends before reading their
    /// acknowledgements (at least 1). The default is [`DEFAULT_BATCH_WINDOW`],
    /// or less if the socket's receive buffer is small. A window too large
    /// for the buffer makes the batch fail with `ENOBUFS`.
    pub fn set_batch_window(&mut self, window: usize) {
        self.batch_window = window.max(1);
    }

    /// `GET_INFO`: the IPVS version and connection table size.
    pub async fn info(&self) -> Result<Info> {
        let replies = self
            .query(IpvsMessage::get_info(), false, "get info", "")
            .await?;
        let reply = replies.first().ok_or_else(|| no_reply("get info"))?;
        Info::from_message_attributes(&reply.attributes).map_err(decode_error)
    }

    /// `GET_CONFIG`: the connection timeouts.
    pub async fn timeouts(&self) -> Result<Timeouts> {
        let replies = self
            .query(IpvsMessage::get_config(), false, "get timeouts", "")
            .await?;
        let reply = replies.first().ok_or_else(|| no_reply("get timeouts"))?;
        Ok(Timeouts::from_message_attributes(&reply.attributes))
    }

    /// `SET_CONFIG`: changes the connection timeouts; 0 keeps a value.
    pub async fn set_timeouts(&self, timeouts: &Timeouts) -> Result<()> {
        self.execute(&Request::SetTimeouts(*timeouts)).await
    }

    /// `FLUSH`: deletes every service and destination.
    pub async fn flush(&self) -> Result<()> {
        self.execute(&Request::Flush).await
    }

    /// `NEW_SERVICE`.
    pub async fn add_service(&self, service: &Service) -> Result<()> {
        self.execute(&Request::AddService(service.clone())).await
    }

    /// `SET_SERVICE`: replaces scheduler, flags, timeout, netmask and
    /// persistence engine of an existing service.
    pub async fn update_service(&self, service: &Service) -> Result<()> {
        self.execute(&Request::UpdateService(service.clone())).await
    }

    /// `DEL_SERVICE`, with its destinations.
    pub async fn delete_service(&self, key: &ServiceKey) -> Result<()> {
        self.execute(&Request::DeleteService(*key)).await
    }

    /// `GET_SERVICE` for one service. A missing service is an
    /// [`Error::Kernel`] with `ESRCH`.
    pub async fn service(&self, key: &ServiceKey) -> Result<Service> {
        let object = key.to_string();
        let replies = self
            .query(IpvsMessage::get_service(key), false, "get service", &object)
            .await?;
        let reply = replies.first().ok_or_else(|| no_reply("get service"))?;
        Service::from_message_attributes(&reply.attributes).map_err(decode_error)
    }

    /// `GET_SERVICE` dump: every service, in the kernel's hash order.
    pub async fn services(&self) -> Result<Vec<Service>> {
        let replies = self
            .query(IpvsMessage::dump_services(), true, "list services", "")
            .await?;
        replies
            .iter()
            .map(|reply| Service::from_message_attributes(&reply.attributes).map_err(decode_error))
            .collect()
    }

    /// Lists every service with its destinations. Like `ipvsadm -L`, this takes
    /// one dump per service, so it is not atomic against concurrent changes.
    pub async fn services_with_destinations(&self) -> Result<Vec<(Service, Vec<Destination>)>> {
        let mut table = Vec::new();
        for service in self.services().await? {
            let destinations = self.destinations(&service.key).await?;
            table.push((service, destinations));
        }
        Ok(table)
    }

    /// `NEW_DEST`.
    pub async fn add_destination(&self, key: &ServiceKey, destination: &Destination) -> Result<()> {
        self.execute(&Request::AddDestination(*key, destination.clone()))
            .await
    }

    /// `SET_DEST`: replaces forwarding method, weight, thresholds and
    /// tunnel settings of an existing destination.
    pub async fn update_destination(
        &self,
        key: &ServiceKey,
        destination: &Destination,
    ) -> Result<()> {
        self.execute(&Request::UpdateDestination(*key, destination.clone()))
            .await
    }

    /// `DEL_DEST`; only the destination's address and port are used.
    pub async fn delete_destination(
        &self,
        key: &ServiceKey,
        destination: &Destination,
    ) -> Result<()> {
        self.execute(&Request::DeleteDestination(*key, destination.clone()))
            .await
    }

    /// `GET_DEST` dump: the destinations of one service.
    pub async fn destinations(&self, key: &ServiceKey) -> Result<Vec<Destination>> {
        let object = key.to_string();
        let replies = self
            .query(
                IpvsMessage::dump_destinations(key),
                true,
                "list destinations of",
                &object,
            )
            .await?;
        replies
            .iter()
            .map(|reply| {
                Destination::from_message_attributes(&reply.attributes, key.family())
                    .map_err(decode_error)
            })
            .collect()
    }

    /// Sends one request and waits for its acknowledgement.
    pub async fn execute(&self, request: &Request) -> Result<()> {
        let report = self.apply(std::slice::from_ref(request)).await?;
        match report.failures.into_iter().next() {
            Some(failure) => Err(failure.error),
            None => Ok(()),
        }
    }

    /// Sends many requests with as few round trips as the kernel allows.
    ///
    /// Requests go out back to back, up to the batch window per datagram,
    /// each with `NLM_F_ACK` and its own sequence number. The kernel handles
    /// them in order and acknowledges each one. A rejected request does not
    /// stop the others (a destination whose service was rejected fails in
    /// turn with `ESRCH`). `Err` means the socket failed; per-request
    /// rejections are in the report.
    pub async fn apply(&self, requests: &[Request]) -> Result<BatchReport> {
        let mut connection = self.connection.lock().await;
        let mut report = BatchReport {
            sent: 0,
            failures: Vec::new(),
        };
        for (chunk_index, chunk) in requests.chunks(self.batch_window).enumerate() {
            let first_index = chunk_index * self.batch_window;
            let messages: Vec<IpvsMessage> = chunk.iter().map(Request::message).collect();
            let first_sequence = connection
                .send(self.family_id, &messages, NLM_F_REQUEST | NLM_F_ACK)
                .await?;
            report.sent += chunk.len();
            let mut acknowledged = vec![false; chunk.len()];
            let mut outstanding = chunk.len();
            while outstanding > 0 {
                for (sequence, reply) in connection.receive(self.family_id).await? {
                    let offset = sequence.wrapping_sub(first_sequence) as usize;
                    if offset >= chunk.len() || acknowledged[offset] {
                        continue;
                    }
                    let errno = match reply {
                        Reply::Ack => None,
                        Reply::Rejected(errno) => Some(errno),
                        // A NEW/SET/DEL command has no data reply.
                        Reply::Data(_) | Reply::Done => continue,
                    };
                    acknowledged[offset] = true;
                    outstanding -= 1;
                    if let Some(errno) = errno {
                        let request = &chunk[offset];
                        report.failures.push(BatchFailure {
                            index: first_index + offset,
                            error: Error::Kernel {
                                operation: request.operation(),
                                object: request.object(),
                                errno,
                            },
                        });
                    }
                }
            }
        }
        Ok(report)
    }

    /// Sends one read request and collects its data replies: up to the
    /// acknowledgement for a plain request, up to `NLMSG_DONE` for a dump.
    async fn query(
        &self,
        message: IpvsMessage,
        dump: bool,
        operation: &'static str,
        object: &str,
    ) -> Result<Vec<IpvsMessage>> {
        let mut connection = self.connection.lock().await;
        let flags = NLM_F_REQUEST | NLM_F_ACK | if dump { NLM_F_DUMP } else { 0 };
        let sequence = connection
            .send(self.family_id, std::slice::from_ref(&message), flags)
            .await?;
        let mut data = Vec::new();
        loop {
            for (reply_sequence, reply) in connection.receive(self.family_id).await? {
                if reply_sequence != sequence {
                    continue;
                }
                match reply {
                    Reply::Data(message) => data.push(message),
                    Reply::Done => return Ok(data),
                    // A dump ends with NLMSG_DONE alone, because the kernel
                    // does not acknowledge dumps. A plain request gets its
                    // data and then the acknowledgement.
                    Reply::Ack if !dump => return Ok(data),
                    Reply::Ack => {}
                    Reply::Rejected(errno) => {
                        return Err(Error::Kernel {
                            operation,
                            object: object.to_owned(),
                            errno,
                        });
                    }
                }
            }
        }
    }
}

impl Connection {
    /// Sends messages in one datagram, numbered from the returned sequence.
    async fn send(&mut self, family_id: u16, messages: &[IpvsMessage], flags: u16) -> Result<u32> {
        let first_sequence = self.next_sequence;
        let mut datagram = Vec::new();
        for message in messages {
            // The port id stays 0: the kernel fills in the socket's own.
            datagram.extend(message.to_bytes(family_id, flags, self.next_sequence, 0));
            self.next_sequence = self.next_sequence.wrapping_add(1);
        }
        self.send_datagram(&datagram).await?;
        Ok(first_sequence)
    }

    async fn send_datagram(&mut self, datagram: &[u8]) -> Result<()> {
        self.socket
            .send(datagram)
            .await
            .map_err(|source| Error::Io {
                operation: "send",
                source,
            })?;
        Ok(())
    }

    /// Receives one datagram and classifies its messages.
    async fn receive(&mut self, family_id: u16) -> Result<Vec<(u32, Reply)>> {
        self.receive_datagram().await?;
        let mut replies = Vec::new();
        for message in split_datagram(&self.buffer)? {
            let reply = match message.message_type {
                NLMSG_ERROR => {
                    let error = ErrorBuffer::new_checked(&message.payload)
                        .and_then(|buffer| ErrorMessage::parse(&buffer))
                        .map_err(decode_error)?;
                    match error.code {
                        None => Reply::Ack,
                        Some(code) => Reply::Rejected(code.get().saturating_neg()),
                    }
                }
                NLMSG_DONE => {
                    // The payload carries the dump's final status: a
                    // negative errno if the dump was cut short.
                    let code = if message.payload.len() >= 4 {
                        DoneBuffer::new_checked(&message.payload)
                            .and_then(|buffer| DoneMessage::parse(&buffer))
                            .map_err(decode_error)?
                            .code
                    } else {
                        0
                    };
                    if code < 0 {
                        Reply::Rejected(code.saturating_neg())
                    } else {
                        Reply::Done
                    }
                }
                message_type if message_type == family_id => {
                    let genl =
                        GenlMessage::<IpvsMessage>::parse_with_param(message.payload, message_type)
                            .map_err(decode_error)?;
                    Reply::Data(genl.payload)
                }
                _ => continue,
            };
            replies.push((message.sequence, reply));
        }
        Ok(replies)
    }

    async fn receive_datagram(&mut self) -> Result<()> {
        self.buffer.clear();
        self.socket
            .recv(&mut self.buffer)
            .await
            .map_err(|source| Error::Io {
                operation: "receive",
                source,
            })?;
        if self.buffer.len() >= RECEIVE_BUFFER_LEN {
            return Err(Error::Decode(format!(
                "datagram filled the whole {RECEIVE_BUFFER_LEN}-byte receive buffer and may be truncated"
            )));
        }
        Ok(())
    }

    /// Asks the generic netlink controller for the id of the IPVS family.
    async fn resolve_family(&mut self) -> Result<u16> {
        let mut genl = GenlMessage::from_payload(GenlCtrl {
            cmd: GenlCtrlCmd::GetFamily,
            nlas: vec![GenlCtrlAttrs::FamilyName(GENL_NAME.to_owned())],
        });
        genl.finalize();
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | NLM_F_ACK;
        header.sequence_number = self.next_sequence;
        let sequence = self.next_sequence;
        self.next_sequence = self.next_sequence.wrapping_add(1);
        let mut netlink = NetlinkMessage::new(header, genl.into());
        netlink.finalize();
        let mut datagram = vec![0; netlink.buffer_len()];
        netlink.serialize(&mut datagram);
        self.send_datagram(&datagram).await?;

        let mut family_id = None;
        loop {
            self.receive_datagram().await?;
            for message in split_datagram(&self.buffer)? {
                if message.sequence != sequence {
                    continue;
                }
                match message.message_type {
                    NLMSG_ERROR => {
                        let error = ErrorBuffer::new_checked(&message.payload)
                            .and_then(|buffer| ErrorMessage::parse(&buffer))
                            .map_err(decode_error)?;
                        return match (error.code, family_id) {
                            (None, Some(id)) => Ok(id),
                            (None, None) => Err(Error::Decode(
                                "the controller acknowledged without a family id".to_owned(),
                            )),
                            // ENOENT: no such family.
                            (Some(_), _) => Err(Error::FamilyNotFound),
                        };
                    }
                    GENL_ID_CTRL => family_id = Some(parse_family_id(message.payload)?),
                    _ => {}
                }
            }
        }
    }
}

/// Reads `CTRL_ATTR_FAMILY_ID` from a controller reply. The attributes are
/// walked by hand because netlink-packet-generic 0.5 rejects controller
/// attributes it does not know, and newer kernels add some.
fn parse_family_id(payload: &[u8]) -> Result<u16> {
    const GENL_HEADER_LEN: usize = 4;
    let attributes = payload
        .get(GENL_HEADER_LEN..)
        .ok_or_else(|| Error::Decode("controller reply shorter than its header".to_owned()))?;
    for nla in NlasIterator::new(attributes) {
        let nla = nla.map_err(decode_error)?;
        if nla.kind() == CTRL_ATTR_FAMILY_ID {
            let value = nla.value();
            if value.len() >= 2 {
                return Ok(u16::from_ne_bytes([value[0], value[1]]));
            }
        }
    }
    Err(Error::Decode(
        "controller reply has no family id attribute".to_owned(),
    ))
}

/// Splits a datagram into its netlink messages.
fn split_datagram(datagram: &[u8]) -> Result<Vec<Received<'_>>> {
    let mut messages = Vec::new();
    let mut offset = 0;
    while offset < datagram.len() {
        let buffer = NetlinkBuffer::new_checked(&datagram[offset..]).map_err(decode_error)?;
        let length = buffer.length() as usize;
        let payload_end = offset + length;
        messages.push(Received {
            message_type: buffer.message_type(),
            sequence: buffer.sequence_number(),
            payload: &datagram[offset + 16..payload_end],
        });
        // Messages are 4-byte aligned (NLMSG_ALIGN).
        offset += (length + 3) & !3;
    }
    Ok(messages)
}

fn decode_error(error: impl std::fmt::Display) -> Error {
    Error::Decode(error.to_string())
}

fn no_reply(operation: &str) -> Error {
    Error::Decode(format!(
        "the kernel acknowledged {operation} without a reply"
    ))
}
