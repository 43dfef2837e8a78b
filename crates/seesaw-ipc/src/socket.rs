//! Socket setup for a server on a Unix socket.

use std::fs;
use std::io;
use std::os::unix::fs::{PermissionsExt, chown};
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::net::{UnixListener, UnixStream};

/// How long to wait for an existing socket to accept a connection before
/// treating it as stale.
const IN_USE_PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// Failure to set up the listening socket.
#[derive(Debug, thiserror::Error)]
pub enum SocketError {
    /// Another process accepts connections on the socket.
    #[error("socket {} is in use by another process; stop it before starting this one", .0.display())]
    InUse(PathBuf),
    #[error("failed to remove the stale socket {}: {source}", path.display())]
    RemoveStale {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("failed to listen on {}: {source}", path.display())]
    Bind {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// Creates the directories of a socket such as
/// `/var/run/seesaw/ncc/ncc.sock`: the grandparent (`/var/run/seesaw`)
/// with mode 0755 and the parent (`/var/run/seesaw/ncc`) with mode 0770,
/// owned by root. The socket itself is left to the umask, so the parent's
/// mode is what limits access to root and the root group.
pub fn prepare_run_directory(socket: &Path) -> io::Result<()> {
    let Some(parent) = socket.parent().filter(|dir| !dir.as_os_str().is_empty()) else {
        return Ok(());
    };
    if let Some(grandparent) = parent.parent().filter(|dir| !dir.as_os_str().is_empty())
        && !grandparent.exists()
    {
        fs::create_dir_all(grandparent)?;
        fs::set_permissions(grandparent, fs::Permissions::from_mode(0o755))?;
    }
    if !parent.exists() {
        fs::create_dir(parent)?;
    }
    // Only root can change the owner; other users keep their own, which
    // matters for tests run without privileges.
    if nix::unistd::geteuid().is_root() {
        chown(parent, Some(0), Some(0))?;
    }
    fs::set_permissions(parent, fs::Permissions::from_mode(0o770))
}

/// Binds a listener on `path`. An existing socket that still accepts
/// connections is an error; one that does not is stale, so it is removed
/// and the removal logged.
pub async fn bind_unix_socket(path: &Path) -> Result<UnixListener, SocketError> {
    if fs::symlink_metadata(path).is_ok() {
        let probe = tokio::time::timeout(IN_USE_PROBE_TIMEOUT, UnixStream::connect(path)).await;
        if let Ok(Ok(_)) = probe {
            return Err(SocketError::InUse(path.to_path_buf()));
        }
        tracing::info!("removing stale socket {}", path.display());
        fs::remove_file(path).map_err(|source| SocketError::RemoveStale {
            path: path.to_path_buf(),
            source,
        })?;
    }
    UnixListener::bind(path).map_err(|source| SocketError::Bind {
        path: path.to_path_buf(),
        source,
    })
}

/// Removes the socket file when dropped, so a clean shutdown leaves no
/// stale socket behind.
#[derive(Debug)]
pub struct SocketGuard {
    path: PathBuf,
}

impl SocketGuard {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }
}

impl Drop for SocketGuard {
    fn drop(&mut self) {
        if let Err(error) = fs::remove_file(&self.path)
            && error.kind() != io::ErrorKind::NotFound
        {
            tracing::warn!("failed to remove socket {}: {error}", self.path.display());
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn run_directory_modes() {
        let root = tempfile::tempdir().unwrap();
        let socket = root.path().join("seesaw/ncc/ncc.sock");

        prepare_run_directory(&socket).unwrap();

        assert_eq!(mode(&root.path().join("seesaw")), 0o755);
        assert_eq!(mode(&root.path().join("seesaw/ncc")), 0o770);
    }

    #[test]
    fn run_directory_mode_fixed_when_present() {
        let root = tempfile::tempdir().unwrap();
        let parent = root.path().join("seesaw/ncc");
        fs::create_dir_all(&parent).unwrap();
        fs::set_permissions(&parent, fs::Permissions::from_mode(0o777)).unwrap();

        prepare_run_directory(&parent.join("ncc.sock")).unwrap();

        assert_eq!(mode(&parent), 0o770);
    }

    #[tokio::test]
    async fn stale_socket_removed() {
        let root = tempfile::tempdir().unwrap();
        let path = root.path().join("ncc.sock");
        // A socket file whose listener is gone: binding it again must work.
        drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
        assert!(path.exists());

        let listener = bind_unix_socket(&path).await.unwrap();

        drop(listener);
    }

    #[tokio::test]
    async fn socket_in_use_rejected() {
        let root = tempfile::tempdir().unwrap();
        let path = root.path().join("ncc.sock");
        let _live = UnixListener::bind(&path).unwrap();

        let error = bind_unix_socket(&path).await.unwrap_err();

        assert!(matches!(error, SocketError::InUse(_)), "{error}");
        assert!(error.to_string().contains("is in use"), "{error}");
        assert!(path.exists(), "a live socket must not be removed");
    }

    #[test]
    fn guard_removes_socket() {
        let root = tempfile::tempdir().unwrap();
        let path = root.path().join("ncc.sock");
        fs::write(&path, b"").unwrap();

        drop(SocketGuard::new(&path));

        assert!(!path.exists());
    }
}
