//! Errors of the async handle.

use std::io;

/// An error from [`crate::Ipvs`].
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Opening, binding or configuring the netlink socket failed.
    #[error("failed to open a generic netlink socket: {0}")]
    Socket(#[source] io::Error),

    /// Sending or receiving on the netlink socket failed. `ENOBUFS` on
    /// receive means the kernel dropped replies because the socket's
    /// receive buffer was full.
    #[error("failed to {operation} a netlink message: {source}")]
    Io {
        operation: &'static str,
        #[source]
        source: io::Error,
    },

    /// The generic netlink controller does not know the `IPVS` family:
    /// the `ip_vs` module is not loaded, or the kernel lacks IPVS.
    #[error(
        "the kernel has no IPVS generic netlink family; load the ip_vs module (modprobe ip_vs)"
    )]
    FamilyNotFound,

    /// The kernel rejected a request. `errno` is positive (`EEXIST` = 17).
    #[error("{operation} {object} failed: {}", io::Error::from_raw_os_error(*errno))]
    Kernel {
        operation: &'static str,
        /// The service or destination as text, empty for table-wide requests.
        object: String,
        errno: i32,
    },

    /// A kernel message could not be decoded.
    #[error("invalid netlink message from the kernel: {0}")]
    Decode(String),
}

impl Error {
    /// Returns the kernel's errno for a rejected request.
    pub fn errno(&self) -> Option<i32> {
        match self {
            Self::Kernel { errno, .. } => Some(*errno),
            _ => None,
        }
    }

    /// True when the object already exists (`EEXIST`), as when adding a
    /// service or destination twice.
    pub fn is_exists(&self) -> bool {
        self.errno() == Some(libc_errno::EEXIST)
    }

    /// True when the object does not exist: the kernel returns `ESRCH` for
    /// a missing service and `ENOENT` for a missing destination or
    /// scheduler.
    pub fn is_not_found(&self) -> bool {
        matches!(
            self.errno(),
            Some(libc_errno::ESRCH) | Some(libc_errno::ENOENT)
        )
    }
}

/// The few errno values this crate names (Linux, all architectures).
pub(crate) mod libc_errno {
    pub const ENOENT: i32 = 2;
    pub const ESRCH: i32 = 3;
    pub const EEXIST: i32 = 17;
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
