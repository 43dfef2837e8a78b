//! FRR's bgpd (Debian's `frr` 8.4) as a test peer: one daemon per network
//! namespace, each with its own configuration, vty socket, PID file and
//! log under a directory of the test, and where a test needs the routes of
//! the namespace, a zebra beside it. Dropping a daemon stops it by PID.
#![allow(dead_code)]

use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

pub const BGPD: &str = "/usr/lib/frr/bgpd";
pub const ZEBRA: &str = "/usr/lib/frr/zebra";
pub const VTYSH: &str = "/usr/bin/vtysh";

/// How long bgpd may take to open its vty socket, and a session to reach
/// Established. Both took about a second in these tests; the rest is room
/// for a loaded machine.
pub const START_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a change may take to reach the peer's BGP table. With FRR's
/// eBGP advertisement interval of 0 s it takes well under a second.
pub const ROUTE_TIMEOUT: Duration = Duration::from_secs(20);

/// Returns whether bgpd and vtysh are installed. When they are not, prints
/// a SKIPPED line for `test`, or panics when SEESAW_REQUIRE_ORACLES=1.
pub fn frr_installed(test: &str) -> bool {
    if [BGPD, ZEBRA, VTYSH]
        .iter()
        .all(|path| Path::new(path).exists())
    {
        return true;
    }
    if std::env::var("SEESAW_REQUIRE_ORACLES").as_deref() == Ok("1") {
        panic!("FRR is not installed and SEESAW_REQUIRE_ORACLES=1 (apt-get install frr)");
    }
    println!("SKIPPED {test}: FRR is not installed (apt-get install frr)");
    false
}

/// A neighbour in a configuration written by [`bgpd_config`].
pub struct Peer<'a> {
    pub address: &'a str,
    pub asn: u32,
    /// Empty for none.
    pub description: &'a str,
}

/// Returns a bgpd configuration with one instance of AS `asn` that peers
/// with each of `peers` for IPv4 and IPv6 unicast and originates
/// `networks`. Without zebra a `network` statement has no route to check,
/// so the import check is off; eBGP needs no policy.
pub fn bgpd_config(
    hostname: &str,
    asn: u32,
    router_id: &str,
    peers: &[Peer],
    networks: &[&str],
) -> String {
    let mut config = format!(
        "hostname {hostname}\nrouter bgp {asn}\n bgp router-id {router_id}\n \
         no bgp ebgp-requires-policy\n no bgp network import-check\n timers bgp 3 9\n"
    );
    for peer in peers {
        let address = peer.address;
        config.push_str(&format!(" neighbor {address} remote-as {}\n", peer.asn));
        config.push_str(&format!(" neighbor {address} timers connect 1\n"));
        if !peer.description.is_empty() {
            config.push_str(&format!(
                " neighbor {address} description {}\n",
                peer.description
            ));
        }
    }
    config.push_str(" address-family ipv4 unicast\n");
    for network in networks {
        config.push_str(&format!("  network {network}\n"));
    }
    config.push_str(" exit-address-family\n address-family ipv6 unicast\n");
    for peer in peers {
        config.push_str(&format!("  neighbor {} activate\n", peer.address));
    }
    config.push_str(" exit-address-family\nexit\n");
    config
}

/// Polls `condition` every 100 ms until it is true or `timeout` passes.
pub fn wait_for(timeout: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(100));
    }
}

/// Stops a child by PID: SIGTERM, then SIGKILL after 5 s.
fn stop(child: &mut Child) {
    // SAFETY: kill(2) with the PID of our own child, not yet reaped.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let stopped = wait_for(Duration::from_secs(5), || {
        matches!(child.try_wait(), Ok(Some(_)))
    });
    if !stopped {
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// Starts the FRR daemon `binary` (`bgpd`, say, named `name`) in
/// `namespace` with `flags`, its configuration `<dir>/<name>.conf`, and its
/// PID file, vty socket and log in `dir`. `ip netns exec` execs the daemon,
/// so the child's PID is the daemon's.
fn spawn_daemon(namespace: &str, binary: &str, name: &str, dir: &Path, flags: &[&OsStr]) -> Child {
    let output = fs::File::create(dir.join("output.log")).expect("failed to create a log");
    Command::new("ip")
        .args(["netns", "exec", namespace, binary])
        .args(flags)
        .arg("-P")
        .arg("0")
        .arg("-f")
        .arg(dir.join(format!("{name}.conf")))
        .arg("-i")
        .arg(dir.join(format!("{name}.pid")))
        .arg("--vty_socket")
        .arg(dir)
        .arg("--log")
        .arg(format!(
            "file:{}",
            dir.join(format!("{name}.log")).display()
        ))
        .stdin(Stdio::null())
        .stdout(output.try_clone().expect("failed to clone the log"))
        .stderr(output)
        .spawn()
        .unwrap_or_else(|error| panic!("failed to run ip netns exec {binary}: {error}"))
}

/// One zebra process, which sends bgpd the routes of its namespace, so
/// that bgpd's default import check (a `network` is announced only while
/// the namespace has a route for it) works as on a real node.
pub struct Zebra {
    child: Child,
    dir: PathBuf,
}

impl Zebra {
    /// Starts zebra in `namespace`, keeping its files in `dir`, and waits
    /// until its API socket exists. zebra runs as the `frr` user, as
    /// Debian runs it, because it rejects a user outside the `frrvty`
    /// group, so `dir` and its parents must let `frr` in.
    pub fn start(namespace: &str, dir: &Path) -> Zebra {
        fs::create_dir_all(dir).expect("failed to create the zebra directory");
        let frr = nix::unistd::User::from_name("frr")
            .ok()
            .flatten()
            .expect("the frr package creates the user frr");
        std::os::unix::fs::chown(dir, Some(frr.uid.as_raw()), Some(frr.gid.as_raw()))
            .expect("failed to give the zebra directory to frr");
        fs::write(dir.join("zebra.conf"), "hostname zebra\n")
            .expect("failed to write the zebra configuration");

        let api_socket = dir.join("zserv.api");
        let flags: [&OsStr; 6] = [
            "-u".as_ref(),
            "frr".as_ref(),
            "-g".as_ref(),
            "frr".as_ref(),
            "-z".as_ref(),
            api_socket.as_os_str(),
        ];
        let child = spawn_daemon(namespace, ZEBRA, "zebra", dir, &flags);
        let mut zebra = Zebra {
            child,
            dir: dir.to_owned(),
        };
        if !wait_for(START_TIMEOUT, || zebra.api_socket().exists()) {
            let exited = zebra.child.try_wait().ok().flatten();
            let read = |name: &str| fs::read_to_string(dir.join(name)).unwrap_or_default();
            panic!(
                "zebra in {namespace} did not open its API socket (exit status {exited:?}):\n{}\n{}",
                read("zebra.log"),
                read("output.log")
            );
        }
        zebra
    }

    /// Returns the socket bgpd reaches zebra on.
    pub fn api_socket(&self) -> PathBuf {
        self.dir.join("zserv.api")
    }
}

impl Drop for Zebra {
    fn drop(&mut self) {
        stop(&mut self.child);
    }
}

/// One bgpd process.
pub struct Bgpd {
    child: Child,
    dir: PathBuf,
}

impl Bgpd {
    /// Starts bgpd in `namespace` without zebra, with `config` as its
    /// configuration file, keeping its files in `dir`, and waits until its
    /// vty responds. Without zebra, `network` statements need `no bgp
    /// network import-check`.
    pub fn start(namespace: &str, dir: &Path, config: &str) -> Bgpd {
        Bgpd::spawn(namespace, dir, config, None)
    }

    /// Starts bgpd like [`Bgpd::start`], connected to `zebra`.
    pub fn start_with_zebra(namespace: &str, dir: &Path, config: &str, zebra: &Zebra) -> Bgpd {
        Bgpd::spawn(namespace, dir, config, Some(zebra))
    }

    /// The flags: `-S` runs as root without the frrvty group check, `-Z`
    /// without zebra, `-P 0` without the TCP vty.
    fn spawn(namespace: &str, dir: &Path, config: &str, zebra: Option<&Zebra>) -> Bgpd {
        fs::create_dir_all(dir).expect("failed to create the bgpd directory");
        fs::write(dir.join("bgpd.conf"), config).expect("failed to write the bgpd configuration");
        // Unless vtysh.conf lets root in without a password, vtysh checks
        // with PAM, which the kernel lab guest has no configuration for.
        fs::write(dir.join("vtysh.conf"), "username root nopassword\n")
            .expect("failed to write the vtysh configuration");

        let api_socket = zebra.map(Zebra::api_socket);
        let flags: Vec<&OsStr> = match &api_socket {
            Some(socket) => vec!["-S".as_ref(), "-z".as_ref(), socket.as_os_str()],
            None => vec!["-S".as_ref(), "-Z".as_ref()],
        };
        let child = spawn_daemon(namespace, BGPD, "bgpd", dir, &flags);
        let mut bgpd = Bgpd {
            child,
            dir: dir.to_owned(),
        };
        let answered = wait_for(START_TIMEOUT, || {
            bgpd.vty_socket().exists() && bgpd.try_vtysh("show version").is_some()
        });
        if !answered {
            let exited = bgpd.child.try_wait().ok().flatten();
            panic!(
                "bgpd in {namespace} did not open its vty (exit status {exited:?}):\n{}",
                bgpd.log()
            );
        }
        bgpd
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn vty_socket(&self) -> PathBuf {
        self.dir.join("bgpd.vty")
    }

    /// Runs one command through vtysh, the independent view of bgpd's
    /// state, and returns its output, or `None` when vtysh fails.
    pub fn try_vtysh(&self, command: &str) -> Option<String> {
        let output = Command::new(VTYSH)
            .arg("--config_dir")
            .arg(&self.dir)
            .arg("--vty_socket")
            .arg(&self.dir)
            .args(["-d", "bgpd", "-c", command])
            .output()
            .ok()?;
        output
            .status
            .success()
            .then(|| String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// Runs `commands` in vtysh's configuration mode, and panics with
    /// bgpd's log when one fails.
    pub fn configure(&self, commands: &[&str]) {
        let mut vtysh = Command::new(VTYSH);
        vtysh
            .arg("--config_dir")
            .arg(&self.dir)
            .arg("--vty_socket")
            .arg(&self.dir)
            .args(["-d", "bgpd", "-c", "configure terminal"]);
        for command in commands {
            vtysh.args(["-c", command]);
        }
        let output = vtysh.output().expect("failed to run vtysh");
        assert!(
            output.status.success(),
            "vtysh {commands:?} failed: {}{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
            self.log()
        );
    }

    /// Like [`Bgpd::try_vtysh`], but panics with bgpd's log when vtysh fails.
    pub fn vtysh(&self, command: &str) -> String {
        self.try_vtysh(command)
            .unwrap_or_else(|| panic!("vtysh `{command}` failed:\n{}", self.log()))
    }

    /// Returns whether the BGP table of `family` ("ipv4" or "ipv6") has
    /// `prefix`, such as "192.168.255.1/32".
    pub fn has_route(&self, family: &str, prefix: &str) -> bool {
        self.vtysh(&format!("show bgp {family} unicast"))
            .split_whitespace()
            .any(|word| word == prefix)
    }

    /// Returns how many paths the BGP table of `family` has for `prefix`.
    pub fn path_count(&self, family: &str, prefix: &str) -> usize {
        let output = self.vtysh(&format!("show bgp {family} unicast {prefix}"));
        // "Paths: (2 available, best #2, table default)"
        output
            .split_once("Paths: (")
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .and_then(|count| count.parse().ok())
            .unwrap_or(0)
    }

    /// Returns bgpd's own log and its standard output and error.
    pub fn log(&self) -> String {
        let read = |name: &str| fs::read_to_string(self.dir.join(name)).unwrap_or_default();
        format!(
            "bgpd.log:\n{}\noutput.log:\n{}",
            read("bgpd.log"),
            read("output.log")
        )
    }
}

impl Drop for Bgpd {
    fn drop(&mut self) {
        stop(&mut self.child);
    }
}
