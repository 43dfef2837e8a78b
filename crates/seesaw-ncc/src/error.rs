//! Errors of NCC operations. Every message names the object that failed.

use std::io;

use crate::bgp::BgpError;

/// An NCC operation failed.
#[derive(Debug, thiserror::Error)]
pub enum NccError {
    /// The request itself is wrong (a missing field, an address of the
    /// wrong family, a table id out of range).
    #[error("{0}")]
    Invalid(String),

    /// A named object (interface, address, service) does not exist.
    #[error("{0}")]
    NotFound(String),

    /// The kernel rejected a route netlink request.
    #[error("failed to {action}: {source}")]
    Netlink {
        action: String,
        #[source]
        source: rtnetlink::Error,
    },

    /// The kernel rejected an IPVS request.
    #[error("failed to {action}: {source}")]
    Ipvs {
        action: String,
        #[source]
        source: seesaw_ipvs::Error,
    },

    /// A file, socket or process call failed.
    #[error("failed to {action}: {source}")]
    Io {
        action: String,
        #[source]
        source: io::Error,
    },

    /// An external command (iptables) exited with an error.
    #[error("`{command}` failed ({status}): {stderr}")]
    Command {
        command: String,
        status: String,
        stderr: String,
    },

    /// bgpd could not be reached or rejected a change.
    #[error("failed to {action}: {source}")]
    Bgp {
        action: String,
        #[source]
        source: BgpError,
    },

    /// The operation exists in the API but not yet in this NCC.
    #[error("{0}")]
    Unimplemented(String),
}

pub type Result<T, E = NccError> = std::result::Result<T, E>;

impl From<seesaw_ipc::ipvs::InvalidMessage> for NccError {
    fn from(error: seesaw_ipc::ipvs::InvalidMessage) -> Self {
        NccError::Invalid(error.0)
    }
}

impl NccError {
    pub fn io(action: impl Into<String>, source: io::Error) -> Self {
        Self::Io {
            action: action.into(),
            source,
        }
    }
}

impl From<NccError> for tonic::Status {
    fn from(error: NccError) -> Self {
        let message = error.to_string();
        match error {
            NccError::Invalid(_) => tonic::Status::invalid_argument(message),
            NccError::NotFound(_) => tonic::Status::not_found(message),
            NccError::Unimplemented(_) => tonic::Status::unimplemented(message),
            NccError::Ipvs { ref source, .. } if source.is_not_found() => {
                tonic::Status::not_found(message)
            }
            NccError::Bgp { ref source, .. } => match source {
                BgpError::Connect { .. } => tonic::Status::unavailable(message),
                BgpError::Timeout { .. } => tonic::Status::deadline_exceeded(message),
                BgpError::NoInstance { .. } | BgpError::OtherInstance { .. } => {
                    tonic::Status::failed_precondition(message)
                }
                BgpError::InvalidPeering(_) => tonic::Status::invalid_argument(message),
                _ => tonic::Status::internal(message),
            },
            _ => tonic::Status::internal(message),
        }
    }
}

/// Returns the positive errno of a netlink error reply, if it is one.
pub fn netlink_errno(error: &rtnetlink::Error) -> Option<i32> {
    match error {
        rtnetlink::Error::NetlinkError(message) => message.code.map(|code| -code.get()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::io;

    use super::*;

    fn bgp_status(source: BgpError) -> tonic::Status {
        NccError::Bgp {
            action: "advertise VIP 192.0.2.1 over BGP".to_owned(),
            source,
        }
        .into()
    }

    #[test]
    fn bgp_errors_name_operation_and_map_codes() {
        let path = std::path::PathBuf::from("/var/run/frr/bgpd.vty");
        let status = bgp_status(BgpError::NoInstance { path: path.clone() });
        assert_eq!(status.code(), tonic::Code::FailedPrecondition);
        assert!(
            status
                .message()
                .starts_with("failed to advertise VIP 192.0.2.1 over BGP: bgpd at /var/run/frr/bgpd.vty has no `router bgp <asn>`"),
            "{}",
            status.message()
        );

        let status = bgp_status(BgpError::Connect {
            path: path.clone(),
            source: io::ErrorKind::NotFound.into(),
        });
        assert_eq!(status.code(), tonic::Code::Unavailable);

        let status = bgp_status(BgpError::Rejected {
            path: path.clone(),
            command: "network 192.0.2.1/32".to_owned(),
            status: 13,
            output: "% Inconsistent address and mask".to_owned(),
        });
        assert_eq!(status.code(), tonic::Code::Internal);
        assert!(
            status
                .message()
                .contains("status 13 (configuration failed)")
        );

        let status = bgp_status(BgpError::OtherInstance {
            path,
            running: 65000,
            requested: 64512,
        });
        assert_eq!(status.code(), tonic::Code::FailedPrecondition);
        assert!(
            status.message().contains(
                "runs `router bgp 65000`, but cluster.pb sets bgp_local_asn 64512: bgpd has one \
                 default instance, so set bgp_local_asn to 65000"
            ),
            "{}",
            status.message()
        );

        let status = bgp_status(BgpError::InvalidPeering("peer 0.0.0.0".to_owned()));
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
    }
}
