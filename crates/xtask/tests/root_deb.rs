//! The Debian package in a fresh Debian 12 root: `cargo xtask deb` builds
//! it, debootstrap creates the root from the host's Debian mirror, and dpkg
//! installs it there. The binaries are then checked for glibc 2.17.

#[path = "../src/glibc.rs"]
#[allow(dead_code)]
mod glibc;

use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const TEST: &str = "root_deb_installs_in_bookworm";

/// Returns the Debian mirror for bookworm from the host's apt sources, in
/// the one-line or the deb822 format, or else Debian's redirector.
fn debian_mirror() -> String {
    let mut texts = Vec::new();
    texts.extend(fs::read_to_string("/etc/apt/sources.list").ok());
    if let Ok(entries) = fs::read_dir("/etc/apt/sources.list.d") {
        for entry in entries.flatten() {
            if entry.path().extension().is_some_and(|ext| ext == "sources") {
                texts.extend(fs::read_to_string(entry.path()).ok());
            }
        }
    }
    for text in &texts {
        for line in text.lines() {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if let ["deb", uri, "bookworm", ..] = fields[..] {
                return uri.to_owned();
            }
        }
        for stanza in text.split("\n\n") {
            let field = |name: &str| {
                stanza
                    .lines()
                    .find_map(|line| line.strip_prefix(name))
                    .map(str::trim)
            };
            let is_bookworm = field("Suites:")
                .is_some_and(|suites| suites.split_whitespace().any(|suite| suite == "bookworm"));
            if is_bookworm
                && let Some(uri) = field("URIs:").and_then(|uris| uris.split_whitespace().next())
            {
                return uri.to_owned();
            }
        }
    }
    "http://deb.debian.org/debian".to_owned()
}

/// Prints the skip line that `cargo xtask test` counts, or panics under
/// `SEESAW_REQUIRE_ORACLES=1`.
fn skip(reason: &str) {
    if std::env::var_os("SEESAW_REQUIRE_ORACLES").is_some_and(|value| value == "1") {
        panic!("{TEST} cannot run: {reason}");
    }
    println!("SKIPPED {TEST}: {reason}");
}

fn run(command: &mut Command) -> Output {
    let output = command
        .output()
        .unwrap_or_else(|error| panic!("failed to start {command:?}: {error}"));
    assert!(
        output.status.success(),
        "{command:?} failed with {}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .unwrap()
        .to_path_buf()
}

#[test]
#[ignore = "needs root: debootstrap"]
fn root_deb_installs_in_bookworm() {
    if Command::new("debootstrap")
        .arg("--version")
        .output()
        .is_err()
    {
        skip("debootstrap not found; install the Debian package debootstrap");
        return;
    }
    let work = tempfile::tempdir().unwrap();

    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    run(Command::new(cargo)
        .current_dir(workspace_root())
        .args(["xtask", "deb", "--out"])
        .arg(work.path()));
    let deb = fs::read_dir(work.path())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .find(|path| path.extension().is_some_and(|ext| ext == "deb"))
        .expect("cargo xtask deb wrote no .deb");

    // libcap2-bin is not in minbase, and the postinst needs its setcap.
    let root = work.path().join("bookworm");
    let mirror = debian_mirror();
    let bootstrap = Command::new("debootstrap")
        .args(["--variant=minbase", "--include=libcap2-bin", "bookworm"])
        .arg(&root)
        .arg(&mirror)
        .output()
        .unwrap();
    if !bootstrap.status.success() {
        let log = fs::read_to_string(root.join("debootstrap/debootstrap.log")).unwrap_or_default();
        skip(&format!(
            "debootstrap from {mirror} failed with {}: {} {}",
            bootstrap.status,
            String::from_utf8_lossy(&bootstrap.stderr).trim(),
            log.lines().rev().take(5).collect::<Vec<_>>().join(" | ")
        ));
        return;
    }

    fs::copy(&deb, root.join("tmp/seesaw-rs.deb")).unwrap();
    let install = run(Command::new("chroot")
        .arg(&root)
        .args(["dpkg", "-i", "/tmp/seesaw-rs.deb"]));
    let install_log = String::from_utf8_lossy(&install.stderr);
    assert!(!install_log.contains("setcap not found"), "{install_log}");

    let expected = [
        ("/usr/local/seesaw/seesaw_watchdog", 0o755),
        ("/usr/local/seesaw/seesaw_ncc", 0o755),
        ("/usr/local/seesaw/seesaw_engine", 0o755),
        ("/usr/local/seesaw/seesaw_ha", 0o755),
        ("/usr/local/seesaw/seesaw_healthcheck", 0o755),
        ("/usr/local/seesaw/seesaw_ecu", 0o755),
        ("/usr/bin/seesaw", 0o755),
        ("/etc/seesaw/watchdog.cfg", 0o644),
        ("/etc/seesaw/seesaw.cfg.example", 0o644),
        ("/etc/seesaw/cluster.pb.example", 0o644),
        ("/etc/systemd/system/seesaw_watchdog.service", 0o644),
        ("/etc/modules-load.d/seesaw.conf", 0o644),
        ("/var/log/seesaw", 0o755),
    ];
    let listed = run(Command::new("chroot")
        .arg(&root)
        .args(["dpkg", "-L", "seesaw-rs"]));
    let listed = String::from_utf8_lossy(&listed.stdout);
    for (path, mode) in expected {
        assert!(
            listed.lines().any(|line| line == path),
            "dpkg -L lacks {path}:\n{listed}"
        );
        let metadata = fs::metadata(root.join(&path[1..])).unwrap();
        assert_eq!(
            metadata.permissions().mode() & 0o7777,
            mode,
            "mode of {path}"
        );
    }

    let conffiles = run(Command::new("chroot").arg(&root).args([
        "dpkg-query",
        "-W",
        "-f=${Conffiles}",
        "seesaw-rs",
    ]));
    let conffiles = String::from_utf8_lossy(&conffiles.stdout);
    for (path, _) in expected
        .iter()
        .filter(|(path, _)| path.starts_with("/etc/"))
    {
        assert!(
            conffiles.contains(&format!(" {path} ")),
            "{path} is no conffile:\n{conffiles}"
        );
    }

    for daemon in ["seesaw_ha", "seesaw_healthcheck"] {
        let path = format!("/usr/local/seesaw/{daemon}");
        let caps = run(Command::new("chroot").arg(&root).args(["getcap", &path]));
        let caps = String::from_utf8_lossy(&caps.stdout);
        assert!(caps.contains("cap_net_raw"), "getcap {path}: {caps:?}");
    }

    // Each binary starts under Debian 12's glibc and needs no newer than 2.17.
    let check = run(Command::new("chroot").arg(&root).args([
        "/usr/local/seesaw/seesaw_engine",
        "-check",
        "-conf=/etc/seesaw/seesaw.cfg.example",
        "-cluster=/etc/seesaw/cluster.pb.example",
    ]));
    assert!(check.status.success());
    for (path, _) in expected.iter().filter(|(_, mode)| *mode == 0o755) {
        if path.starts_with("/var/") {
            continue;
        }
        let binary = root.join(&path[1..]);
        let newer = glibc::symbols_newer_than(&binary, glibc::BASELINE).unwrap();
        assert!(newer.is_empty(), "{path} needs a newer glibc: {newer:?}");
    }
}
