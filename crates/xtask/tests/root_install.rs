//! `cargo xtask install` as root onto the real paths (/usr/local/seesaw,
//! /usr/bin, /etc, /var/log), run in a private mount namespace whose
//! overlays catch every write, so the host's files stay as they were.

use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::{Command, Output};

const TEST: &str = "root_install_sets_cap_net_raw";

/// The binaries that `cargo xtask install --binaries` takes: the daemons
/// of `install::DAEMONS`, then the CLI.
const BINARIES: [&str; 7] = [
    "seesaw_watchdog",
    "seesaw_ncc",
    "seesaw_engine",
    "seesaw_ha",
    "seesaw_healthcheck",
    "seesaw_ecu",
    "seesaw_cli",
];

/// Mounts a tmpfs on the scratch directory `$1`, lays an overlay with its
/// upper directory there over each directory the install writes to, runs
/// `$2 install --binaries $3` and lists the capabilities of the installed
/// binaries. A tmpfs upper directory stores the security.capability
/// attribute that setcap writes, whatever file system /tmp is on.
const IN_NAMESPACE: &str = r#"
set -eu
scratch=$1
xtask=$2
binaries=$3
mount -t tmpfs seesaw-install-test "$scratch"
for dir in /usr/local /usr/bin /etc /var/log; do
    name=$(echo "$dir" | tr / _)
    mkdir "$scratch/upper$name" "$scratch/work$name"
    mount -t overlay seesaw-install-test \
        -o "lowerdir=$dir,upperdir=$scratch/upper$name,workdir=$scratch/work$name" "$dir"
done
"$xtask" install --binaries "$binaries"
echo "== getcap"
getcap /usr/local/seesaw/* /usr/bin/seesaw
"#;

/// Prints the skip line that `cargo xtask test` counts, or panics under
/// `SEESAW_REQUIRE_ORACLES=1`.
fn skip(reason: &str) {
    if std::env::var_os("SEESAW_REQUIRE_ORACLES").is_some_and(|value| value == "1") {
        panic!("{TEST} cannot run: {reason}");
    }
    println!("SKIPPED {TEST}: {reason}");
}

fn found(program: &str) -> bool {
    Command::new(program).arg("--help").output().is_ok()
}

/// Returns the installed paths that exist on the host, to compare before
/// and after the test.
fn host_paths() -> Vec<String> {
    let mut paths: Vec<String> = BINARIES[..6]
        .iter()
        .map(|name| format!("/usr/local/seesaw/{name}"))
        .collect();
    paths.extend(
        [
            "/usr/bin/seesaw",
            "/etc/seesaw/watchdog.cfg",
            "/etc/systemd/system/seesaw_watchdog.service",
            "/etc/modules-load.d/seesaw.conf",
            "/var/log/seesaw",
        ]
        .map(String::from),
    );
    paths.retain(|path| Path::new(path).exists());
    paths
}

fn text(output: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
#[ignore = "needs root: mounts overlays in a private mount namespace and runs setcap"]
fn root_install_sets_cap_net_raw() {
    for program in ["unshare", "setcap", "getcap"] {
        if !found(program) {
            skip(&format!(
                "{program} not found; install the Debian packages util-linux and libcap2-bin"
            ));
            return;
        }
    }

    // Stand-ins are enough: setcap marks any regular file.
    let work = tempfile::tempdir().unwrap();
    let binaries = work.path().join("binaries");
    fs::create_dir(&binaries).unwrap();
    for name in BINARIES {
        let path = binaries.join(name);
        fs::write(&path, format!("#!/bin/sh\necho stand-in for {name}\n")).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    }
    let scratch = work.path().join("overlays");
    fs::create_dir(&scratch).unwrap();
    let before = host_paths();

    let output = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg(IN_NAMESPACE)
        .arg("sh")
        .arg(&scratch)
        .arg(env!("CARGO_BIN_EXE_xtask"))
        .arg(&binaries)
        .output()
        .unwrap();
    let (stdout, stderr) = text(&output);
    assert!(
        output.status.success(),
        "the install in a mount namespace failed with {}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        output.status
    );

    let (notes, caps) = stdout
        .split_once("== getcap\n")
        .unwrap_or_else(|| panic!("no getcap output:\n{stdout}"));
    for daemon in ["seesaw_ha", "seesaw_healthcheck"] {
        let note = format!("set cap_net_raw+ep on /usr/local/seesaw/{daemon}");
        assert!(notes.lines().any(|line| line == note), "{notes}");
    }
    assert!(!notes.contains("warning:"), "{notes}");

    // getcap lists only files that have capabilities.
    let mut listed: Vec<(&str, &str)> = caps
        .lines()
        .filter_map(|line| line.split_once(' '))
        .collect();
    listed.sort();
    assert_eq!(
        listed,
        [
            ("/usr/local/seesaw/seesaw_ha", "cap_net_raw=ep"),
            ("/usr/local/seesaw/seesaw_healthcheck", "cap_net_raw=ep"),
        ],
        "getcap:\n{caps}\nstderr:\n{stderr}"
    );

    assert_eq!(host_paths(), before, "the install reached the host's files");
}
