//! `cargo xtask deb`: a Debian package of the release binaries.
//!
//! The package contains exactly what `cargo xtask install --destdir` stages,
//! built with `dpkg-deb` rather than cargo-deb because the seven binaries
//! come from seven crates and `install` already defines the layout. Every
//! file under /etc is a conffile, so dpkg keeps an operator's changes on
//! upgrade and asks before replacing them.

use std::ffi::OsString;
use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::install::{self, CAPABILITIES, DEFAULT_PREFIX, RAW_SOCKET_DAEMONS};
use crate::release;
use crate::workspace::Workspace;

pub const PACKAGE: &str = "seesaw-rs";

const USAGE: &str = "usage: cargo xtask deb [--out DIR]

Builds the release binaries for glibc 2.17 with cargo-zigbuild, checks their
glibc symbol versions and writes DIR/seesaw-rs_VERSION_amd64.deb (DIR is
target/debian by default).";

/// Runs `cargo xtask deb` and returns the exit status.
pub fn run(args: &[OsString]) -> Result<i32> {
    let workspace = Workspace::load()?;
    let out_dir = match args {
        [] => workspace.target_dir.join("debian"),
        [flag, dir] if flag == "--out" => PathBuf::from(dir),
        [flag] if flag == "-h" || flag == "--help" => {
            println!("{USAGE}");
            return Ok(0);
        }
        _ => bail!("invalid arguments {args:?}\n\n{USAGE}"),
    };

    let binary_dir = release::build(&workspace)?;
    release::check_glibc(&binary_dir)?;
    let version = workspace
        .packages
        .iter()
        .find(|package| package.name == "seesaw-watchdog")
        .map(|package| package.version.clone())
        .context("cargo metadata lists no seesaw-watchdog package")?;

    let staging = workspace.target_dir.join("xtask/deb").join(PACKAGE);
    let deb = build(&workspace.root, &binary_dir, &staging, &version, &out_dir)?;
    println!("wrote {}", deb.display());
    Ok(0)
}

/// Stages the files in `staging`, adds the control files and builds the
/// package in `out_dir`. Returns the package's path.
fn build(
    source_root: &Path,
    binary_dir: &Path,
    staging: &Path,
    version: &str,
    out_dir: &Path,
) -> Result<PathBuf> {
    if staging.exists() {
        fs::remove_dir_all(staging)
            .with_context(|| format!("failed to remove {}", staging.display()))?;
    }
    let options = install::Options {
        prefix: PathBuf::from(DEFAULT_PREFIX),
        destdir: Some(staging.to_path_buf()),
        binaries: Some(binary_dir.to_path_buf()),
    };
    install::install(&options, source_root, binary_dir)?;
    // The umask decided the modes of the directories that install created,
    // and dpkg installs them with the modes they have here.
    set_directory_modes(staging)?;

    let conffiles = conffiles(staging)?;
    let installed_size = disk_usage_kib(staging)?;
    let control_dir = staging.join("DEBIAN");
    fs::create_dir_all(&control_dir)
        .with_context(|| format!("failed to create {}", control_dir.display()))?;
    write_file(
        &control_dir.join("control"),
        &control(version, installed_size),
        0o644,
    )?;
    write_file(&control_dir.join("conffiles"), &conffiles, 0o644)?;
    write_file(&control_dir.join("postinst"), &postinst(), 0o755)?;
    write_file(&control_dir.join("postrm"), POSTRM, 0o755)?;

    fs::create_dir_all(out_dir)
        .with_context(|| format!("failed to create {}", out_dir.display()))?;
    let deb = out_dir.join(format!("{PACKAGE}_{version}_amd64.deb"));
    let output = Command::new("dpkg-deb")
        .args(["--root-owner-group", "--build"])
        .arg(staging)
        .arg(&deb)
        .output()
        .context("failed to start dpkg-deb (Debian package dpkg)")?;
    if !output.status.success() {
        bail!(
            "dpkg-deb --build {} failed with {}: {}",
            staging.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(deb)
}

/// Returns the control file. The binaries need only glibc 2.17, which
/// every supported Debian and Ubuntu release has.
fn control(version: &str, installed_size: u64) -> String {
    let maintainer = maintainer();
    format!(
        "Package: {PACKAGE}\n\
         Version: {version}\n\
         Architecture: amd64\n\
         Maintainer: {maintainer}\n\
         Installed-Size: {installed_size}\n\
         Depends: libc6 (>= 2.17)\n\
         Recommends: libcap2-bin, iptables\n\
         Section: net\n\
         Priority: optional\n\
         Homepage: https://github.com/seesaw-rs/seesaw-rs\n\
         Description: IPVS load balancer, a drop-in replacement for Seesaw v2\n \
         seesaw-rs runs an active/passive pair of Linux nodes that balance\n \
         traffic with IPVS. It reads Seesaw v2's configuration files unchanged\n \
         and installs the same binaries in the same places.\n"
    )
}

/// Returns the Maintainer field from `DEBFULLNAME` and `DEBEMAIL`, the
/// variables that Debian's packaging tools read.
fn maintainer() -> String {
    let name = std::env::var("DEBFULLNAME").unwrap_or_else(|_| "seesaw-rs developers".to_owned());
    match std::env::var("DEBEMAIL") {
        Ok(email) if !email.is_empty() => format!("{name} <{email}>"),
        // NOTE: Debian policy wants an email address here, and dpkg accepts
        // the field without one.
        _ => name,
    }
}

/// Returns the postinst script: setcap on the raw-socket daemons, because
/// dpkg does not keep file capabilities from the package, and a systemd
/// reload so the unit is found.
fn postinst() -> String {
    let daemon_dir = Path::new(DEFAULT_PREFIX).join("seesaw");
    let daemons: Vec<String> = RAW_SOCKET_DAEMONS
        .iter()
        .map(|name| daemon_dir.join(name).display().to_string())
        .collect();
    format!(
        r#"#!/bin/sh
set -e

if [ "$1" = configure ]; then
    if command -v setcap >/dev/null 2>&1; then
        for daemon in {daemons}; do
            setcap {CAPABILITIES} "$daemon" ||
                echo "{PACKAGE}: setcap {CAPABILITIES} $daemon failed; run it as root instead" >&2
        done
    else
        echo "{PACKAGE}: setcap not found, so seesaw_ha and seesaw_healthcheck lack {CAPABILITIES}; install libcap2-bin and run dpkg-reconfigure {PACKAGE}" >&2
    fi
    # Only a system booted with systemd has this directory; a chroot has not.
    if [ -d /run/systemd/system ]; then
        systemctl daemon-reload || true
    fi
fi

exit 0
"#,
        daemons = daemons.join(" ")
    )
}

const POSTRM: &str = r#"#!/bin/sh
set -e

# Forget the removed unit, on a system booted with systemd.
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload || true
fi

exit 0
"#;

/// Returns the conffiles list: every regular file below `staging/etc`.
fn conffiles(staging: &Path) -> Result<String> {
    let mut files = Vec::new();
    let mut pending = vec![staging.join("etc")];
    while let Some(dir) = pending.pop() {
        for entry in
            fs::read_dir(&dir).with_context(|| format!("failed to read {}", dir.display()))?
        {
            let path = entry?.path();
            if path.is_dir() {
                pending.push(path);
            } else {
                let relative = path.strip_prefix(staging).unwrap_or(&path);
                files.push(format!("/{}", relative.display()));
            }
        }
    }
    files.sort();
    Ok(files.iter().map(|file| format!("{file}\n")).collect())
}

/// Sets every directory below `root`, and `root`, to mode 0755.
fn set_directory_modes(root: &Path) -> Result<()> {
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755))
            .with_context(|| format!("failed to set the mode of {}", dir.display()))?;
        for entry in
            fs::read_dir(&dir).with_context(|| format!("failed to read {}", dir.display()))?
        {
            let entry = entry?;
            if entry.file_type()?.is_dir() {
                pending.push(entry.path());
            }
        }
    }
    Ok(())
}

/// Returns the size of the files below `root` in KiB, rounded up per file,
/// for the Installed-Size field.
fn disk_usage_kib(root: &Path) -> Result<u64> {
    let mut total = 0;
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in
            fs::read_dir(&dir).with_context(|| format!("failed to read {}", dir.display()))?
        {
            let entry = entry?;
            let metadata = entry.metadata()?;
            if metadata.is_dir() {
                pending.push(entry.path());
            } else {
                total += metadata.len().div_ceil(1024);
            }
        }
    }
    Ok(total)
}

fn write_file(path: &Path, contents: &str, mode: u32) -> Result<()> {
    fs::write(path, contents).with_context(|| format!("failed to write {}", path.display()))?;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .with_context(|| format!("failed to set the mode of {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn package_builds_from_stand_in_binaries() {
        let binaries = tempfile::tempdir().unwrap();
        for name in install::DAEMONS.into_iter().chain([install::CLI.0]) {
            fs::write(binaries.path().join(name), format!("binary {name}")).unwrap();
        }
        let work = tempfile::tempdir().unwrap();
        let staging = work.path().join("stage");
        let deb = build(
            &crate::workspace::root(),
            binaries.path(),
            &staging,
            "0.1.0",
            work.path(),
        )
        .unwrap();

        let conffiles = fs::read_to_string(staging.join("DEBIAN/conffiles")).unwrap();
        assert_eq!(
            conffiles.lines().collect::<Vec<_>>(),
            [
                "/etc/modules-load.d/seesaw.conf",
                "/etc/seesaw/cluster.pb.example",
                "/etc/seesaw/seesaw.cfg.example",
                "/etc/seesaw/watchdog.cfg",
                "/etc/systemd/system/seesaw_watchdog.service",
            ]
        );

        let info = Command::new("dpkg-deb")
            .arg("--info")
            .arg(&deb)
            .output()
            .unwrap();
        let info = String::from_utf8_lossy(&info.stdout);
        assert!(info.contains("Package: seesaw-rs"), "{info}");
        assert!(info.contains("postinst"), "{info}");

        let listing = Command::new("dpkg-deb")
            .arg("--contents")
            .arg(&deb)
            .output()
            .unwrap();
        let listing = String::from_utf8_lossy(&listing.stdout);
        for line in [
            "-rwxr-xr-x root/root",
            "./usr/local/seesaw/seesaw_ha",
            "./usr/bin/seesaw",
            "./var/log/seesaw/",
        ] {
            assert!(listing.contains(line), "no {line:?} in\n{listing}");
        }
    }
}
