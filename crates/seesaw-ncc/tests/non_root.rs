//! `seesaw_ncc` started without root privileges must exit with status 2
//! and print the reason, before it changes anything.
//!
//! Run by a normal user, the test starts the daemon directly. Run as root,
//! it drops to `nobody` (uid and gid 65534) with `setpriv`, and skips with
//! a reason when `setpriv` is missing.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const NOBODY: u32 = 65534;

fn find_setpriv() -> Option<PathBuf> {
    ["/usr/bin/setpriv", "/bin/setpriv", "/usr/sbin/setpriv"]
        .into_iter()
        .map(PathBuf::from)
        .find(|path| path.exists())
}

/// Runs seesaw_ncc with `args` as a user without root: the current user
/// if that is not root, else `nobody`. Returns None, with the reason
/// printed, when root cannot drop its privileges here.
fn run_without_root(args: &[&str], dir: &Path) -> Option<Output> {
    let daemon = env!("CARGO_BIN_EXE_seesaw_ncc");
    if !nix::unistd::geteuid().is_root() {
        return Some(
            Command::new(daemon)
                .args(args)
                .output()
                .expect("run seesaw_ncc"),
        );
    }
    let Some(setpriv) = find_setpriv() else {
        eprintln!(
            "skipped: running as root and setpriv is missing, so the test cannot drop to nobody"
        );
        return None;
    };
    // `nobody` may be unable to reach the build directory; a copy in a
    // directory open to everyone is.
    let copy = dir.join("seesaw_ncc");
    std::fs::copy(daemon, &copy).expect("copy seesaw_ncc");
    let output = Command::new(setpriv)
        .args([
            format!("--reuid={NOBODY}"),
            format!("--regid={NOBODY}"),
            "--clear-groups".to_owned(),
        ])
        .arg(&copy)
        .args(args)
        .output()
        .expect("run setpriv");
    Some(output)
}

#[test]
fn ncc_without_root_exits_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let socket = dir.path().join("ncc.sock");
    let log_dir = dir.path().join("logs");
    std::fs::create_dir(&log_dir).unwrap();
    std::fs::set_permissions(&log_dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let socket = socket.to_str().unwrap();

    // With the default logging (files in -log_dir) and with -logtostderr,
    // the reason reaches stderr.
    for args in [
        vec!["-log_dir", log_dir.to_str().unwrap(), "-socket", socket],
        vec!["-logtostderr", "-socket", socket],
    ] {
        let Some(output) = run_without_root(&args, dir.path()) else {
            return;
        };
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains("seesaw_ncc must run as root"),
            "{args:?}: {stderr}"
        );
        assert!(
            !Path::new(socket).exists(),
            "{args:?}: the socket was created"
        );
    }
}
