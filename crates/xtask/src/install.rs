//! `cargo xtask install`: builds the release binaries and installs them with
//! the configuration, the systemd unit and the kernel module list, in the
//! layout of Seesaw v2.
//!
//! Files under /etc belong to the operator once installed: an existing file
//! that differs from ours is kept, and ours goes beside it as `<name>.dist`.
//! Binaries are replaced by a rename, so a running daemon keeps its old file.

use std::ffi::OsString;
use std::fs;
use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Component, Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::workspace::{self, Workspace};

/// The default installation prefix, which Seesaw v2's watchdog.cfg and
/// systemd unit name.
pub const DEFAULT_PREFIX: &str = "/usr/local";

/// The daemons, installed in `<prefix>/seesaw/`.
pub const DAEMONS: [&str; 6] = [
    "seesaw_watchdog",
    "seesaw_ncc",
    "seesaw_engine",
    "seesaw_ha",
    "seesaw_healthcheck",
    "seesaw_ecu",
];

/// The packages that build [`DAEMONS`] and the CLI.
pub const PACKAGES: [&str; 7] = [
    "seesaw-watchdog",
    "seesaw-ncc",
    "seesaw-engine",
    "seesaw-ha",
    "seesaw-healthcheck",
    "seesaw-ecu",
    "seesaw-cli",
];

/// The CLI's binary name and its installed path, which Seesaw v2 fixes.
pub const CLI: (&str, &str) = ("seesaw_cli", "/usr/bin/seesaw");

/// Daemons that open raw sockets, seesaw_ha for VRRP adverts and
/// seesaw_healthcheck for ICMP checks, and so get `cap_net_raw`.
pub const RAW_SOCKET_DAEMONS: [&str; 2] = ["seesaw_ha", "seesaw_healthcheck"];

/// The capability set that `setcap` gives [`RAW_SOCKET_DAEMONS`].
pub const CAPABILITIES: &str = "cap_net_raw+ep";

pub const LOG_DIR: &str = "/var/log/seesaw";

/// The kernel modules that the NCC needs: IPVS, connection tracking for
/// IPVS and iptables, dummy links for VIPs and 802.1Q VLAN links.
const MODULES_LOAD: &str = "\
# Kernel modules for seesaw-rs, loaded at boot by systemd-modules-load:
# IPVS, connection tracking, dummy links for the VIPs and 802.1Q VLANs.
ip_vs
nf_conntrack
dummy
8021q
";

const USAGE: &str = "usage: cargo xtask install [--prefix DIR] [--destdir DIR] [--binaries DIR]

Builds the release binaries and installs the daemons in PREFIX/seesaw/ (PREFIX
is /usr/local by default), the CLI as /usr/bin/seesaw, the configuration in
/etc/seesaw/, the systemd unit, /etc/modules-load.d/seesaw.conf and
/var/log/seesaw/. --destdir installs below DIR instead of /, for packaging,
and skips setcap. --binaries installs the binaries already built in DIR, such
as target/x86_64-unknown-linux-gnu/release/ from `cargo xtask release`,
instead of building them.";

/// The installation prefix and staging root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// The daemons go to `<prefix>/seesaw/`.
    pub prefix: PathBuf,
    /// A staging root that every path is installed below, or `None` for /.
    pub destdir: Option<PathBuf>,
    /// A directory of binaries built before, installed instead of a new
    /// release build, or `None` to build them.
    pub binaries: Option<PathBuf>,
}

impl Options {
    /// Parses `--prefix DIR`, `--destdir DIR` and `--binaries DIR`, also as
    /// `--name=DIR`.
    pub fn parse(args: &[OsString]) -> Result<Options> {
        let mut options = Options {
            prefix: PathBuf::from(DEFAULT_PREFIX),
            destdir: None,
            binaries: None,
        };
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            let text = arg.to_string_lossy();
            let (name, inline) = match text.split_once('=') {
                Some((name, value)) => (name.to_owned(), Some(PathBuf::from(value))),
                None => (text.into_owned(), None),
            };
            let mut value = || -> Result<PathBuf> {
                match inline.clone().or_else(|| args.next().map(PathBuf::from)) {
                    Some(value) if !value.as_os_str().is_empty() => Ok(value),
                    _ => bail!("{name} needs a directory\n\n{USAGE}"),
                }
            };
            match name.as_str() {
                "--prefix" => options.prefix = value()?,
                "--destdir" => options.destdir = Some(value()?),
                "--binaries" => options.binaries = Some(value()?),
                _ => bail!("unknown argument {name:?}\n\n{USAGE}"),
            }
        }
        if !options.prefix.is_absolute() {
            bail!(
                "--prefix {} is not an absolute path; the systemd unit and watchdog.cfg \
                 name the daemons by absolute path",
                options.prefix.display()
            );
        }
        Ok(options)
    }

    /// Returns the directory of the daemons on the installed system.
    pub fn daemon_dir(&self) -> PathBuf {
        self.prefix.join("seesaw")
    }

    /// Returns where the absolute `path` of the installed system is written.
    pub fn staged(&self, path: &Path) -> PathBuf {
        match &self.destdir {
            Some(destdir) => under(destdir, path),
            None => path.to_path_buf(),
        }
    }
}

/// Joins the absolute `path` below `root`.
pub fn under(root: &Path, path: &Path) -> PathBuf {
    let relative: PathBuf = path
        .components()
        .filter(|component| matches!(component, Component::Normal(_)))
        .collect();
    root.join(relative)
}

/// Runs `cargo xtask install` and returns the exit status.
pub fn run(args: &[OsString]) -> Result<i32> {
    if args
        .iter()
        .any(|arg| arg == "-h" || arg == "--help" || arg == "help")
    {
        println!("{USAGE}");
        return Ok(0);
    }
    let options = Options::parse(args)?;
    // With --binaries, nothing runs cargo, so the task also works where the
    // xtask program runs without a Rust toolchain.
    let (source_root, binary_dir) = match &options.binaries {
        Some(dir) => (workspace::root(), dir.clone()),
        None => {
            let workspace = Workspace::load()?;
            let binary_dir = build_release(&workspace)?;
            (workspace.root, binary_dir)
        }
    };
    let notes = install(&options, &source_root, &binary_dir)?;
    for note in notes {
        println!("{note}");
    }
    Ok(0)
}

/// Builds the seven binaries with the host's toolchain and returns the
/// directory that contains them.
fn build_release(workspace: &Workspace) -> Result<PathBuf> {
    println!("== building the release binaries");
    let mut command = workspace::cargo();
    command
        .current_dir(&workspace.root)
        .args(["build", "--release", "--bins"]);
    for package in PACKAGES {
        command.args(["-p", package]);
    }
    let status = command.status().context("failed to start cargo build")?;
    if !status.success() {
        bail!("cargo build --release failed with {status}");
    }
    Ok(workspace.target_dir.join("release"))
}

/// Installs every file from the workspace at `source_root` and the binaries
/// in `binary_dir`, then sets the capabilities. Returns the notes for the
/// operator: kept files, the capability step and what was installed.
pub fn install(options: &Options, source_root: &Path, binary_dir: &Path) -> Result<Vec<String>> {
    let mut notes = Vec::new();
    let daemon_dir = options.daemon_dir();
    // Checked first, so that a missing binary leaves no half-done install.
    let missing: Vec<&str> = DAEMONS
        .into_iter()
        .chain([CLI.0])
        .filter(|name| !binary_dir.join(name).is_file())
        .collect();
    if !missing.is_empty() {
        bail!(
            "{} is missing {}; build the binaries first, for example with `cargo xtask release`",
            binary_dir.display(),
            missing.join(", ")
        );
    }

    for name in DAEMONS {
        let target = daemon_dir.join(name);
        install_binary(&binary_dir.join(name), &options.staged(&target))?;
        notes.push(format!("installed {}", target.display()));
    }
    let cli = Path::new(CLI.1);
    install_binary(&binary_dir.join(CLI.0), &options.staged(cli))?;
    notes.push(format!("installed {}", cli.display()));

    for (source, target) in [
        ("etc/watchdog.cfg", "/etc/seesaw/watchdog.cfg"),
        ("etc/seesaw.cfg.example", "/etc/seesaw/seesaw.cfg.example"),
        ("etc/cluster.pb.example", "/etc/seesaw/cluster.pb.example"),
        (
            "systemd/seesaw_watchdog.service",
            "/etc/systemd/system/seesaw_watchdog.service",
        ),
    ] {
        let path = source_root.join(source);
        let text = fs::read_to_string(&path)
            .with_context(|| format!("failed to read {}", path.display()))?;
        let text = with_daemon_dir(&text, &daemon_dir);
        notes.push(install_config(options, Path::new(target), text.as_bytes())?);
    }
    notes.push(install_config(
        options,
        Path::new("/etc/modules-load.d/seesaw.conf"),
        MODULES_LOAD.as_bytes(),
    )?);

    let log_dir = options.staged(Path::new(LOG_DIR));
    fs::create_dir_all(&log_dir)
        .with_context(|| format!("failed to create {}", log_dir.display()))?;
    set_mode(&log_dir, 0o755)?;
    notes.push(format!("created {LOG_DIR}"));

    notes.extend(set_capabilities(options));
    Ok(notes)
}

/// Rewrites the default daemon directory in watchdog.cfg and the unit to
/// `daemon_dir`, which differs only with `--prefix`.
fn with_daemon_dir(text: &str, daemon_dir: &Path) -> String {
    let default = Path::new(DEFAULT_PREFIX).join("seesaw");
    if daemon_dir == default {
        return text.to_owned();
    }
    text.replace(
        &format!("{}/", default.display()),
        &format!("{}/", daemon_dir.display()),
    )
}

/// Copies the binary `source` to `target` through a temporary file and a
/// rename, because writing into the file of a running daemon fails with
/// ETXTBSY.
fn install_binary(source: &Path, target: &Path) -> Result<()> {
    let contents =
        fs::read(source).with_context(|| format!("failed to read {}", source.display()))?;
    write_replacing(target, &contents, 0o755)
}

/// Installs the /etc file `target` unless the operator has one: a differing
/// file is kept and ours is written as `<target>.dist`. Returns the note.
fn install_config(options: &Options, target: &Path, contents: &[u8]) -> Result<String> {
    let staged = options.staged(target);
    match fs::read(&staged) {
        Ok(existing) if existing == contents => {
            Ok(format!("{} is already up to date", target.display()))
        }
        Ok(_) => {
            let mut dist = staged.into_os_string();
            dist.push(".dist");
            write_replacing(Path::new(&dist), contents, 0o644)?;
            Ok(format!(
                "kept your {0}; the new version is {0}.dist, so compare the two and merge \
                 what you need",
                target.display()
            ))
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            write_replacing(&staged, contents, 0o644)?;
            Ok(format!("installed {}", target.display()))
        }
        Err(error) => Err(error).with_context(|| format!("failed to read {}", staged.display())),
    }
}

/// Writes `contents` with `mode` to a temporary file beside `target` and
/// renames it over `target`, creating the parent directories.
fn write_replacing(target: &Path, contents: &[u8], mode: u32) -> Result<()> {
    let parent = target
        .parent()
        .with_context(|| format!("{} has no parent directory", target.display()))?;
    fs::create_dir_all(parent).with_context(|| format!("failed to create {}", parent.display()))?;
    let mut temporary = target.as_os_str().to_owned();
    temporary.push(".xtask-new");
    let temporary = PathBuf::from(temporary);

    let mut file = fs::File::create(&temporary)
        .with_context(|| format!("failed to create {}", temporary.display()))?;
    file.write_all(contents)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("failed to write {}", temporary.display()))?;
    drop(file);
    // Set explicitly, because the umask would otherwise decide.
    set_mode(&temporary, mode)?;
    fs::rename(&temporary, target).with_context(|| {
        format!(
            "failed to rename {} to {}",
            temporary.display(),
            target.display()
        )
    })
}

fn set_mode(path: &Path, mode: u32) -> Result<()> {
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .with_context(|| format!("failed to set mode {mode:o} on {}", path.display()))
}

/// Gives [`RAW_SOCKET_DAEMONS`] `cap_net_raw` with setcap, so they can run
/// as a user other than root. Returns the notes, which explain a skipped or
/// failed step.
fn set_capabilities(options: &Options) -> Vec<String> {
    let daemons = RAW_SOCKET_DAEMONS.join(" and ");
    if options.destdir.is_some() {
        return vec![format!(
            "skipped setcap {CAPABILITIES} on {daemons}: --destdir stages files for packaging, \
             and the package's postinst sets the capabilities"
        )];
    }
    let mut notes = Vec::new();
    for name in RAW_SOCKET_DAEMONS {
        let path = options.daemon_dir().join(name);
        let note = match Command::new("setcap").arg(CAPABILITIES).arg(&path).output() {
            Ok(output) if output.status.success() => {
                format!("set {CAPABILITIES} on {}", path.display())
            }
            Ok(output) => format!(
                "warning: setcap {CAPABILITIES} {} failed with {}: {}",
                path.display(),
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            ),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                notes.push(format!(
                    "warning: setcap not found, so {daemons} have no {CAPABILITIES}; install \
                     the Debian package libcap2-bin and run this task again, or run them as \
                     root (the watchdog's default)"
                ));
                return notes;
            }
            Err(error) => format!("warning: failed to start setcap: {error}"),
        };
        notes.push(note);
    }
    notes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<OsString> {
        list.iter().map(OsString::from).collect()
    }

    #[test]
    fn options_default_to_usr_local() {
        let options = Options::parse(&[]).unwrap();
        assert_eq!(options.prefix, Path::new("/usr/local"));
        assert_eq!(options.destdir, None);
        assert_eq!(options.daemon_dir(), Path::new("/usr/local/seesaw"));
    }

    #[test]
    fn options_accept_both_forms() {
        let options = Options::parse(&args(&[
            "--prefix",
            "/opt",
            "--destdir=/tmp/stage",
            "--binaries",
            "target/release",
        ]))
        .unwrap();
        assert_eq!(options.prefix, Path::new("/opt"));
        assert_eq!(options.destdir.as_deref(), Some(Path::new("/tmp/stage")));
        assert_eq!(
            options.binaries.as_deref(),
            Some(Path::new("target/release"))
        );
        assert_eq!(
            options.staged(Path::new("/etc/seesaw/watchdog.cfg")),
            Path::new("/tmp/stage/etc/seesaw/watchdog.cfg")
        );
    }

    #[test]
    fn options_reject_bad_arguments() {
        for bad in [
            &["--prefix"][..],
            &["--prefix", "relative"],
            &["--destdir="],
            &["--binaries"],
            &["--unknown"],
        ] {
            assert!(Options::parse(&args(bad)).is_err(), "{bad:?} was accepted");
        }
    }

    /// Returns every file, symlink and directory below `root` with its
    /// mode, as `(path on the installed system, mode)`, sorted.
    fn tree(root: &Path) -> Vec<(String, u32)> {
        let mut entries = Vec::new();
        let mut pending = vec![root.to_path_buf()];
        while let Some(dir) = pending.pop() {
            for entry in fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                let metadata = fs::symlink_metadata(&path).unwrap();
                let name = format!("/{}", path.strip_prefix(root).unwrap().display());
                if metadata.is_dir() {
                    pending.push(path);
                    entries.push((format!("{name}/"), metadata.permissions().mode() & 0o7777));
                } else {
                    entries.push((name, metadata.permissions().mode() & 0o7777));
                }
            }
        }
        entries.sort();
        entries
    }

    /// Stages an installation with stand-in binaries into a new destdir.
    fn stage(destdir: &Path) -> Vec<String> {
        let binaries = tempfile::tempdir().unwrap();
        for name in DAEMONS.into_iter().chain([CLI.0]) {
            fs::write(binaries.path().join(name), format!("binary {name}")).unwrap();
        }
        let options = Options {
            prefix: PathBuf::from(DEFAULT_PREFIX),
            destdir: Some(destdir.to_path_buf()),
            binaries: Some(binaries.path().to_path_buf()),
        };
        install(&options, &workspace::root(), binaries.path()).unwrap()
    }

    #[test]
    fn destdir_gets_seesaw_layout() {
        let destdir = tempfile::tempdir().unwrap();
        let notes = stage(destdir.path());

        let files: Vec<(String, u32)> = tree(destdir.path())
            .into_iter()
            .filter(|(name, _)| !name.ends_with('/'))
            .collect();
        let expected: Vec<(String, u32)> = [
            ("/etc/modules-load.d/seesaw.conf", 0o644),
            ("/etc/seesaw/cluster.pb.example", 0o644),
            ("/etc/seesaw/seesaw.cfg.example", 0o644),
            ("/etc/seesaw/watchdog.cfg", 0o644),
            ("/etc/systemd/system/seesaw_watchdog.service", 0o644),
            ("/usr/bin/seesaw", 0o755),
            ("/usr/local/seesaw/seesaw_ecu", 0o755),
            ("/usr/local/seesaw/seesaw_engine", 0o755),
            ("/usr/local/seesaw/seesaw_ha", 0o755),
            ("/usr/local/seesaw/seesaw_healthcheck", 0o755),
            ("/usr/local/seesaw/seesaw_ncc", 0o755),
            ("/usr/local/seesaw/seesaw_watchdog", 0o755),
        ]
        .into_iter()
        .map(|(name, mode)| (name.to_owned(), mode))
        .collect();
        assert_eq!(files, expected);

        let log_dir = fs::metadata(destdir.path().join("var/log/seesaw")).unwrap();
        assert!(log_dir.is_dir());
        assert_eq!(log_dir.permissions().mode() & 0o7777, 0o755);

        let modules =
            fs::read_to_string(destdir.path().join("etc/modules-load.d/seesaw.conf")).unwrap();
        let names: Vec<&str> = modules
            .lines()
            .filter(|line| !line.starts_with('#'))
            .collect();
        assert_eq!(names, ["ip_vs", "nf_conntrack", "dummy", "8021q"]);

        let cli = fs::read_to_string(destdir.path().join("usr/bin/seesaw")).unwrap();
        assert_eq!(cli, "binary seesaw_cli");
        assert!(
            notes.iter().any(|note| note.starts_with("skipped setcap")),
            "{notes:?}"
        );
    }

    #[test]
    fn operator_config_is_kept() {
        let destdir = tempfile::tempdir().unwrap();
        let watchdog_cfg = destdir.path().join("etc/seesaw/watchdog.cfg");
        fs::create_dir_all(watchdog_cfg.parent().unwrap()).unwrap();
        fs::write(&watchdog_cfg, "[ncc]\nbinary = /opt/ncc\n").unwrap();

        let notes = stage(destdir.path());

        assert_eq!(
            fs::read_to_string(&watchdog_cfg).unwrap(),
            "[ncc]\nbinary = /opt/ncc\n"
        );
        let ours = fs::read_to_string(workspace::root().join("etc/watchdog.cfg")).unwrap();
        let dist = destdir.path().join("etc/seesaw/watchdog.cfg.dist");
        assert_eq!(fs::read_to_string(dist).unwrap(), ours);
        assert!(
            notes
                .iter()
                .any(|note| note.contains("kept your /etc/seesaw/watchdog.cfg")),
            "{notes:?}"
        );

        // A second run finds its own files unchanged and writes no .dist.
        let notes = stage(destdir.path());
        assert!(
            notes
                .iter()
                .any(|note| note == "/etc/seesaw/cluster.pb.example is already up to date"),
            "{notes:?}"
        );
        assert!(
            !destdir
                .path()
                .join("etc/seesaw/cluster.pb.example.dist")
                .exists()
        );
    }

    #[test]
    fn missing_binary_installs_nothing() {
        let destdir = tempfile::tempdir().unwrap();
        let binaries = tempfile::tempdir().unwrap();
        for name in DAEMONS.into_iter().filter(|name| *name != "seesaw_ha") {
            fs::write(binaries.path().join(name), format!("binary {name}")).unwrap();
        }
        let options = Options {
            prefix: PathBuf::from(DEFAULT_PREFIX),
            destdir: Some(destdir.path().to_path_buf()),
            binaries: Some(binaries.path().to_path_buf()),
        };

        let error = install(&options, &workspace::root(), binaries.path()).unwrap_err();

        let message = error.to_string();
        assert!(
            message.contains("is missing seesaw_ha, seesaw_cli;"),
            "{message}"
        );
        assert_eq!(tree(destdir.path()), []);
    }

    #[test]
    fn prefix_rewrites_daemon_paths() {
        let text = "binary = /usr/local/seesaw/seesaw_ncc\n";
        assert_eq!(with_daemon_dir(text, Path::new("/usr/local/seesaw")), text);
        assert_eq!(
            with_daemon_dir(text, Path::new("/opt/seesaw")),
            "binary = /opt/seesaw/seesaw_ncc\n"
        );
    }
}
