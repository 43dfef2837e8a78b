//! The IPVS generic netlink message: a command and its attributes.

use netlink_packet_core::{
    DecodeError, Emitable, ErrorContext, NetlinkBuffer, NetlinkHeader, NetlinkMessage,
    NetlinkPayload, NlasIterator, Parseable, ParseableParametrized,
};
use netlink_packet_generic::{GenlFamily, GenlHeader, GenlMessage};

use crate::constants::*;
use crate::nla::IpvsAttribute;

/// An IPVS command (`IPVS_CMD_*`). Replies use the `New*`/`Set*` commands:
/// the kernel replies to a service dump with `NewService` messages and to
/// `GetInfo` with `SetInfo`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IpvsCommand {
    NewService,
    SetService,
    DelService,
    GetService,
    NewDest,
    SetDest,
    DelDest,
    GetDest,
    NewDaemon,
    DelDaemon,
    GetDaemon,
    SetConfig,
    GetConfig,
    SetInfo,
    GetInfo,
    Zero,
    Flush,
    /// A command number this crate does not know.
    Other(u8),
}

impl From<IpvsCommand> for u8 {
    fn from(command: IpvsCommand) -> u8 {
        use IpvsCommand::*;
        match command {
            NewService => CMD_NEW_SERVICE,
            SetService => CMD_SET_SERVICE,
            DelService => CMD_DEL_SERVICE,
            GetService => CMD_GET_SERVICE,
            NewDest => CMD_NEW_DEST,
            SetDest => CMD_SET_DEST,
            DelDest => CMD_DEL_DEST,
            GetDest => CMD_GET_DEST,
            NewDaemon => CMD_NEW_DAEMON,
            DelDaemon => CMD_DEL_DAEMON,
            GetDaemon => CMD_GET_DAEMON,
            SetConfig => CMD_SET_CONFIG,
            GetConfig => CMD_GET_CONFIG,
            SetInfo => CMD_SET_INFO,
            GetInfo => CMD_GET_INFO,
            Zero => CMD_ZERO,
            Flush => CMD_FLUSH,
            Other(value) => value,
        }
    }
}

impl From<u8> for IpvsCommand {
    fn from(value: u8) -> Self {
        use IpvsCommand::*;
        match value {
            CMD_NEW_SERVICE => NewService,
            CMD_SET_SERVICE => SetService,
            CMD_DEL_SERVICE => DelService,
            CMD_GET_SERVICE => GetService,
            CMD_NEW_DEST => NewDest,
            CMD_SET_DEST => SetDest,
            CMD_DEL_DEST => DelDest,
            CMD_GET_DEST => GetDest,
            CMD_NEW_DAEMON => NewDaemon,
            CMD_DEL_DAEMON => DelDaemon,
            CMD_GET_DAEMON => GetDaemon,
            CMD_SET_CONFIG => SetConfig,
            CMD_GET_CONFIG => GetConfig,
            CMD_SET_INFO => SetInfo,
            CMD_GET_INFO => GetInfo,
            CMD_ZERO => Zero,
            CMD_FLUSH => Flush,
            other => Other(other),
        }
    }
}

/// The payload of an IPVS generic netlink message, after the 4-byte
/// generic netlink header. It does no I/O; wrap it in
/// `GenlMessage` and `NetlinkMessage` to get the full datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpvsMessage {
    pub command: IpvsCommand,
    pub attributes: Vec<IpvsAttribute>,
}

impl IpvsMessage {
    pub fn new(command: IpvsCommand, attributes: Vec<IpvsAttribute>) -> Self {
        Self {
            command,
            attributes,
        }
    }
}

impl IpvsMessage {
    /// Encodes the message as a whole netlink message: netlink header,
    /// generic netlink header (version 1) and attributes. `family_id` is the
    /// id the controller resolved for `IPVS`.
    pub fn to_bytes(&self, family_id: u16, flags: u16, sequence: u32, port: u32) -> Vec<u8> {
        let mut header = NetlinkHeader::default();
        header.flags = flags;
        header.sequence_number = sequence;
        header.port_number = port;
        let mut genl = GenlMessage::from_payload(self.clone());
        genl.set_resolved_family_id(family_id);
        let mut netlink = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(genl));
        netlink.finalize();
        let mut bytes = vec![0; netlink.buffer_len()];
        netlink.serialize(&mut bytes);
        bytes
    }

    /// Decodes one whole netlink message that carries an IPVS payload,
    /// returning its netlink header too. Trailing bytes after the length
    /// in the header are ignored.
    pub fn from_bytes(bytes: &[u8]) -> Result<(NetlinkHeader, IpvsMessage), DecodeError> {
        let buffer = NetlinkBuffer::new_checked(bytes)?;
        let header = NetlinkHeader::parse(&buffer)?;
        let genl =
            GenlMessage::<IpvsMessage>::parse_with_param(buffer.payload(), header.message_type)?;
        Ok((header, genl.payload))
    }
}

impl GenlFamily for IpvsMessage {
    fn family_name() -> &'static str {
        GENL_NAME
    }

    fn command(&self) -> u8 {
        self.command.into()
    }

    fn version(&self) -> u8 {
        GENL_VERSION
    }
}

impl Emitable for IpvsMessage {
    fn buffer_len(&self) -> usize {
        self.attributes.as_slice().buffer_len()
    }

    fn emit(&self, buffer: &mut [u8]) {
        self.attributes.as_slice().emit(buffer)
    }
}

impl ParseableParametrized<[u8], GenlHeader> for IpvsMessage {
    fn parse_with_param(buf: &[u8], header: GenlHeader) -> Result<Self, DecodeError> {
        let command = IpvsCommand::from(header.cmd);
        let info = matches!(command, IpvsCommand::GetInfo | IpvsCommand::SetInfo);
        let attributes = NlasIterator::new(buf)
            .map(|nla| nla.and_then(|nla| IpvsAttribute::parse(&nla, info)))
            .collect::<Result<Vec<_>, _>>()
            .with_context(|| format!("invalid attributes in IPVS command {}", header.cmd))?;
        Ok(Self {
            command,
            attributes,
        })
    }
}
