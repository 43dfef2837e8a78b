//! Requests that change the IPVS table, and the messages of every command.

use std::fmt;

use crate::destination::Destination;
use crate::info::Timeouts;
use crate::message::{IpvsCommand, IpvsMessage};
use crate::nla::IpvsAttribute;
use crate::service::{Service, ServiceKey};

/// A change to the IPVS table: the unit of [`crate::Ipvs::apply`] and of
/// the single-request methods of [`crate::Ipvs`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    AddService(Service),
    UpdateService(Service),
    DeleteService(ServiceKey),
    AddDestination(ServiceKey, Destination),
    UpdateDestination(ServiceKey, Destination),
    /// Only the destination's address and port matter to the kernel.
    DeleteDestination(ServiceKey, Destination),
    SetTimeouts(Timeouts),
    /// Deletes every service and destination.
    Flush,
}

impl Request {
    /// Builds the message that carries this request to the kernel.
    pub fn message(&self) -> IpvsMessage {
        match self {
            Self::AddService(service) => service_message(IpvsCommand::NewService, service),
            Self::UpdateService(service) => service_message(IpvsCommand::SetService, service),
            Self::DeleteService(key) => IpvsMessage::new(
                IpvsCommand::DelService,
                vec![IpvsAttribute::Service(key.request_attributes())],
            ),
            Self::AddDestination(key, destination) => {
                destination_message(IpvsCommand::NewDest, key, destination)
            }
            Self::UpdateDestination(key, destination) => {
                destination_message(IpvsCommand::SetDest, key, destination)
            }
            Self::DeleteDestination(key, destination) => {
                destination_message(IpvsCommand::DelDest, key, destination)
            }
            Self::SetTimeouts(timeouts) => {
                IpvsMessage::new(IpvsCommand::SetConfig, timeouts.attributes())
            }
            Self::Flush => IpvsMessage::new(IpvsCommand::Flush, Vec::new()),
        }
    }

    /// Returns the operation's name for error messages: `add service`.
    pub fn operation(&self) -> &'static str {
        match self {
            Self::AddService(_) => "add service",
            Self::UpdateService(_) => "update service",
            Self::DeleteService(_) => "delete service",
            Self::AddDestination(..) => "add destination",
            Self::UpdateDestination(..) => "update destination",
            Self::DeleteDestination(..) => "delete destination",
            Self::SetTimeouts(_) => "set timeouts",
            Self::Flush => "flush",
        }
    }

    /// Returns the object concerned, for error messages: `TCP 192.0.2.1:80 (wlc)`
    /// or `192.0.2.2:80 of TCP 192.0.2.1:80`; empty for a flush.
    pub fn object(&self) -> String {
        match self {
            Self::AddService(service) | Self::UpdateService(service) => service.to_string(),
            Self::DeleteService(key) => key.to_string(),
            Self::AddDestination(key, destination)
            | Self::UpdateDestination(key, destination)
            | Self::DeleteDestination(key, destination) => format!("{destination} of {key}"),
            Self::SetTimeouts(timeouts) => format!(
                "tcp {} s, tcpfin {} s, udp {} s",
                timeouts.tcp, timeouts.tcp_fin, timeouts.udp
            ),
            Self::Flush => String::new(),
        }
    }
}

impl fmt::Display for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let object = self.object();
        if object.is_empty() {
            f.write_str(self.operation())
        } else {
            write!(f, "{} {}", self.operation(), object)
        }
    }
}

fn service_message(command: IpvsCommand, service: &Service) -> IpvsMessage {
    IpvsMessage::new(command, vec![IpvsAttribute::Service(service.attributes())])
}

fn destination_message(
    command: IpvsCommand,
    key: &ServiceKey,
    destination: &Destination,
) -> IpvsMessage {
    IpvsMessage::new(
        command,
        vec![
            IpvsAttribute::Service(key.request_attributes()),
            IpvsAttribute::Destination(destination.attributes()),
        ],
    )
}

/// Messages of the read-only commands.
impl IpvsMessage {
    /// `GET_INFO`: version and connection table size.
    pub fn get_info() -> Self {
        Self::new(IpvsCommand::GetInfo, Vec::new())
    }

    /// `GET_CONFIG`: the connection timeouts.
    pub fn get_config() -> Self {
        Self::new(IpvsCommand::GetConfig, Vec::new())
    }

    /// `GET_SERVICE` sent with `NLM_F_DUMP`: every service.
    pub fn dump_services() -> Self {
        Self::new(IpvsCommand::GetService, Vec::new())
    }

    /// `GET_SERVICE` for one service.
    pub fn get_service(key: &ServiceKey) -> Self {
        Self::new(
            IpvsCommand::GetService,
            vec![IpvsAttribute::Service(key.request_attributes())],
        )
    }

    /// `GET_DEST` sent with `NLM_F_DUMP`: the destinations of one service.
    pub fn dump_destinations(key: &ServiceKey) -> Self {
        Self::new(
            IpvsCommand::GetDest,
            vec![IpvsAttribute::Service(key.attributes())],
        )
    }
}
