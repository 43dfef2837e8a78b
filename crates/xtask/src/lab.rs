//! The kernel lab: `cargo xtask vm` runs a command as root in a QEMU VM with
//! Debian's stock kernel. The VM itself is `lab/vm.sh`; this module picks its
//! cache directory and the directories it shares.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Result, bail};

use crate::workspace;

/// A host directory that the guest mounts at the same path.
#[derive(Clone, Debug)]
pub struct Share {
    pub dir: PathBuf,
    pub writable: bool,
}

const USAGE: &str = "usage: cargo xtask vm [-s DIR]... [-w DIR]... -- COMMAND [ARG]...
  -s DIR   share host DIR read-only at the same path in the guest
  -w DIR   share host DIR read-write (the guest writes as root)
The repository is always shared read-only. COMMAND runs as root in the
guest, in the current directory, and its exit status is returned.";

/// Runs `cargo xtask vm ARGS` and returns the exit status to exit with.
pub fn run_vm_command(args: &[OsString]) -> Result<i32> {
    let (shares, command) = match parse_vm_args(args) {
        Ok(parsed) => parsed,
        Err(message) => {
            eprintln!("{message}\n{USAGE}");
            return Ok(2);
        }
    };
    let status = vm_command(&shares, &command).status()?;
    Ok(status.code().unwrap_or(1))
}

fn parse_vm_args(args: &[OsString]) -> Result<(Vec<Share>, Vec<OsString>), String> {
    let mut shares = Vec::new();
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        match arg.to_str() {
            Some("-s" | "-w") => {
                let dir = rest
                    .next()
                    .ok_or_else(|| format!("{} needs a directory", arg.display()))?;
                shares.push(Share {
                    dir: dir.into(),
                    writable: arg == "-w",
                });
            }
            Some("-h" | "--help") => return Err(String::new()),
            Some("--") => break,
            Some(option) if option.starts_with('-') => {
                return Err(format!("unknown option {option}"));
            }
            _ => {
                // The command starts here; `--` is optional when it does not
                // look like an option.
                let command = std::iter::once(arg).chain(rest).cloned().collect();
                return Ok((shares, command));
            }
        }
    }
    let command: Vec<OsString> = rest.cloned().collect();
    if command.is_empty() {
        return Err("missing COMMAND".into());
    }
    Ok((shares, command))
}

/// Returns the command that runs `command` in a fresh VM, with `shares` and
/// the repository visible in the guest.
pub fn vm_command(shares: &[Share], command: &[OsString]) -> Command {
    let mut vm = script();
    for share in with_repository(shares) {
        vm.arg(if share.writable { "-w" } else { "-s" });
        vm.arg(share.dir);
    }
    vm.arg("--").args(command);
    vm
}

/// Installs the host packages the lab needs and builds its image, without
/// booting. Fails when the lab cannot run on this host.
pub fn prepare() -> Result<()> {
    let status = script().arg("-p").status()?;
    if !status.success() {
        bail!("preparing the kernel lab failed with {status}; see the messages above");
    }
    Ok(())
}

/// Returns the directory that contains the kernel, the initramfs and the module
/// tree: `$SEESAW_LAB_CACHE`, else `.lab-cache` in the repository.
pub fn cache_dir() -> PathBuf {
    match std::env::var_os("SEESAW_LAB_CACHE") {
        Some(dir) if !dir.is_empty() => dir.into(),
        _ => workspace::root().join(".lab-cache"),
    }
}

fn script() -> Command {
    let mut command = Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("lab/vm.sh"));
    command.env("SEESAW_LAB_CACHE", cache_dir());
    command
}

/// Adds the repository as a read-only share unless a given share already
/// contains it.
fn with_repository(shares: &[Share]) -> Vec<Share> {
    let root = workspace::root();
    let mut all = shares.to_vec();
    let covered = shares.iter().any(|share| {
        let dir = share
            .dir
            .canonicalize()
            .unwrap_or_else(|_| share.dir.clone());
        root.starts_with(dir)
    });
    if !covered {
        all.insert(
            0,
            Share {
                dir: root,
                writable: false,
            },
        );
    }
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<OsString> {
        list.iter().map(OsString::from).collect()
    }

    #[test]
    fn vm_args_with_shares_and_separator() {
        let (shares, command) =
            parse_vm_args(&args(&["-s", "/a", "-w", "/b", "--", "ipvsadm", "-Ln"])).unwrap();

        assert_eq!(shares.len(), 2);
        assert_eq!(shares[0].dir, Path::new("/a"));
        assert!(!shares[0].writable);
        assert_eq!(shares[1].dir, Path::new("/b"));
        assert!(shares[1].writable);
        assert_eq!(command, args(&["ipvsadm", "-Ln"]));
    }

    #[test]
    fn vm_args_without_separator() {
        let (shares, command) = parse_vm_args(&args(&["ip", "-br", "link"])).unwrap();
        assert!(shares.is_empty());
        assert_eq!(command, args(&["ip", "-br", "link"]));
    }

    #[test]
    fn vm_args_errors() {
        assert!(parse_vm_args(&args(&[])).is_err());
        assert!(parse_vm_args(&args(&["--"])).is_err());
        assert!(parse_vm_args(&args(&["-s"])).is_err());
        assert!(parse_vm_args(&args(&["-x", "--", "true"])).is_err());
    }

    #[test]
    fn repository_shared_unless_covered() {
        let root = workspace::root();
        let inner = Share {
            dir: root.join("target"),
            writable: true,
        };
        let shares = with_repository(std::slice::from_ref(&inner));
        assert_eq!(shares.len(), 2);
        assert_eq!(shares[0].dir, root);
        assert!(!shares[0].writable);

        let whole = Share {
            dir: root.clone(),
            writable: true,
        };
        let shares = with_repository(std::slice::from_ref(&whole));
        assert_eq!(shares.len(), 1);
        assert!(shares[0].writable);
    }
}
