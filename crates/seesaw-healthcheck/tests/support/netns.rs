//! A client and a server network namespace joined by a veth pair, for tests
//! against real servers.
//!
//! The client is 198.18.0.1/24 and 2001:2::1/64, the server 198.18.0.2/24
//! and 2001:2::2/64. RFC 2544 and RFC 5180 set these ranges aside for
//! benchmarking. Neither namespace has a route out. Dropping the pair kills
//! the processes it started, by PID, and deletes both namespaces, also when
//! a test fails.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

pub const CLIENT_IP: &str = "198.18.0.1";
pub const SERVER_IP: &str = "198.18.0.2";
pub const CLIENT_IP6: &str = "2001:2::1";
pub const SERVER_IP6: &str = "2001:2::2";

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// Runs `ip` with `args` and panics with its output if it fails.
pub fn ip(args: &[&str]) {
    let output = Command::new("ip")
        .args(args)
        .output()
        .expect("failed to run ip; is iproute2 installed?");
    assert!(
        output.status.success(),
        "ip {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Waits until `eth0` in `namespace` is operationally up. Until then the
/// kernel has not yet handled the carrier change, the device still has its
/// no-op queueing discipline, and it drops every packet, which would fail
/// a test's first probe.
fn wait_until_up(namespace: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let output = Command::new("ip")
            .args(["-n", namespace, "-o", "link", "show", "eth0"])
            .output()
            .expect("failed to run ip");
        let text = String::from_utf8_lossy(&output.stdout);
        if text.contains("state UP") {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "eth0 in {namespace} is not up after 10 s: {text}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Moves the calling thread into the namespace `name`, so the sockets it
/// opens from now on belong there.
pub fn enter(name: &str) {
    let file = File::open(format!("/var/run/netns/{name}")).expect("namespace file missing");
    // SAFETY: setns(2) on a valid namespace file descriptor changes only the
    // calling thread's network namespace.
    let result = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
    assert_eq!(
        result,
        0,
        "setns failed: {}",
        std::io::Error::last_os_error()
    );
}

/// The two namespaces.
pub struct NamespacePair {
    pub client: String,
    pub server: String,
}

impl NamespacePair {
    pub fn new() -> NamespacePair {
        let prefix = format!(
            "sshc{}x{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        );
        let pair = NamespacePair {
            client: format!("{prefix}c"),
            server: format!("{prefix}s"),
        };
        ip(&["netns", "add", &pair.client]);
        ip(&["netns", "add", &pair.server]);
        ip(&[
            "-n",
            &pair.client,
            "link",
            "add",
            "eth0",
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            &pair.server,
        ]);
        let addresses = [
            (&pair.client, CLIENT_IP, CLIENT_IP6),
            (&pair.server, SERVER_IP, SERVER_IP6),
        ];
        for (namespace, address, address6) in addresses {
            ip(&["-n", namespace, "link", "set", "lo", "up"]);
            ip(&[
                "-n",
                namespace,
                "addr",
                "add",
                &format!("{address}/24"),
                "dev",
                "eth0",
            ]);
            // Without duplicate address detection the address is usable
            // at once instead of after about a second.
            ip(&[
                "-n",
                namespace,
                "addr",
                "add",
                &format!("{address6}/64"),
                "dev",
                "eth0",
                "nodad",
            ]);
            ip(&["-n", namespace, "link", "set", "eth0", "up"]);
        }
        for namespace in [&pair.client, &pair.server] {
            wait_until_up(namespace);
        }
        pair
    }

    /// Runs `command` in `namespace` with `ip netns exec`, which execs it, so
    /// the child's PID is the program's. Output goes to `log`.
    pub fn spawn(&self, namespace: &str, command: &[&str], log: &Path) -> Server {
        let file = File::create(log).expect("failed to create the log file");
        let child = Command::new("ip")
            .args(["netns", "exec", namespace])
            .args(command)
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("failed to clone the log file"))
            .stderr(file)
            .spawn()
            .unwrap_or_else(|error| panic!("failed to start {command:?}: {error}"));
        Server { child: Some(child) }
    }

    /// Sets the sysctl `key` (a path below /proc/sys) in the server.
    pub fn server_sysctl(&self, key: &str, value: &str) {
        ip(&[
            "netns",
            "exec",
            &self.server,
            "sysctl",
            "-q",
            "-w",
            &format!("{key}={value}"),
        ]);
    }
}

impl Drop for NamespacePair {
    fn drop(&mut self) {
        for namespace in [&self.client, &self.server] {
            let _ = Command::new("ip")
                .args(["netns", "del", namespace])
                .status();
        }
    }
}

/// A process started in a namespace, killed by PID when stopped or dropped.
pub struct Server {
    child: Option<Child>,
}

impl Server {
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SAFETY: kill(2) on our own child, which has not been reaped.
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
            let _ = child.wait();
        }
    }

    /// Returns whether the process has exited.
    pub fn exited(&mut self) -> bool {
        match &mut self.child {
            Some(child) => child.try_wait().ok().flatten().is_some(),
            None => true,
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Returns the path of `program` if it is installed, else prints a SKIPPED
/// line and returns `None`, or panics when `SEESAW_REQUIRE_ORACLES=1`.
pub fn require_program(test: &str, program: &str, package: &str) -> Option<String> {
    for directory in ["/usr/sbin", "/usr/bin", "/sbin", "/bin"] {
        let path = format!("{directory}/{program}");
        if Path::new(&path).exists() {
            return Some(path);
        }
    }
    let reason = format!("{program} not found; install the Debian package {package}");
    if std::env::var("SEESAW_REQUIRE_ORACLES").as_deref() == Ok("1") {
        panic!("{test}: {reason}");
    }
    println!("SKIPPED {test}: {reason}");
    None
}
