//! systemd readiness notification (`Type=notify`) without libsystemd.
//!
//! systemd passes the path of a datagram socket in `NOTIFY_SOCKET`; a
//! message is newline-separated `KEY=VALUE` assignments. A path starting with
//! `@` names a socket in the abstract namespace.

use std::io;
use std::os::linux::net::SocketAddrExt as _;
use std::os::unix::ffi::OsStrExt as _;
use std::os::unix::net::{SocketAddr, UnixDatagram};

/// The variable through which systemd passes the notification socket.
pub const NOTIFY_SOCKET: &str = "NOTIFY_SOCKET";

/// Sends `message` (such as `READY=1`) to the socket in `NOTIFY_SOCKET`.
///
/// Returns `Ok(false)` when the variable is unset, which is the case
/// outside systemd and under `Type=simple`.
pub fn notify(message: &str) -> io::Result<bool> {
    let Some(path) = std::env::var_os(NOTIFY_SOCKET) else {
        return Ok(false);
    };
    let path = path.as_bytes();
    let socket = UnixDatagram::unbound()?;
    let address = match path.first() {
        Some(b'@') => SocketAddr::from_abstract_name(&path[1..])?,
        Some(b'/') => SocketAddr::from_pathname(std::ffi::OsStr::from_bytes(path))?,
        _ => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "{NOTIFY_SOCKET}={:?} is neither an absolute path nor an abstract \
                     socket name starting with @",
                    String::from_utf8_lossy(path)
                ),
            ));
        }
    };
    socket.send_to_addr(message.as_bytes(), &address)?;
    Ok(true)
}
