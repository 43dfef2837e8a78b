//! A lab of network namespaces for the HA tests and the failover bench.
//!
//! Topology: a switch namespace contains a bridge, and every other namespace
//! (the nodes and an injector) has one veth `eth0` whose peer is a port of
//! that bridge. Addresses come from 198.18.0.0/24 and 2001:db8::/64 and
//! exist only inside the lab, which has no route out. Dropping the lab
//! kills every process it started, by PID, and deletes its namespaces, also
//! when a test fails.
#![allow(dead_code)]

pub mod keepalived;

use std::fs;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;
use std::time::{Duration, Instant};

static LAB_COUNTER: AtomicU32 = AtomicU32::new(0);

/// Returns the IPv4 address of lab member `index` (0-based).
pub fn ipv4(index: usize) -> Ipv4Addr {
    Ipv4Addr::new(198, 18, 0, 1 + index as u8)
}

/// Returns the IPv6 address of lab member `index` (0-based).
pub fn ipv6(index: usize) -> Ipv6Addr {
    Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1 + index as u16)
}

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

/// A set of namespaces joined by a bridge, and the processes running in it.
pub struct Lab {
    /// Member namespaces, in index order.
    members: Vec<String>,
    switch: String,
    pub dir: tempfile::TempDir,
    children: Vec<Child>,
}

impl Lab {
    /// Creates `count` member namespaces on one bridge.
    pub fn new(count: usize) -> Lab {
        let prefix = format!(
            "ssha{}x{}",
            std::process::id(),
            LAB_COUNTER.fetch_add(1, Ordering::SeqCst)
        );
        let switch = format!("{prefix}sw");
        let mut lab = Lab {
            members: Vec::new(),
            switch: switch.clone(),
            dir: tempfile::tempdir().expect("failed to create a temporary directory"),
            children: Vec::new(),
        };

        ip(&["netns", "add", &switch]);
        ip(&["-n", &switch, "link", "add", "br0", "type", "bridge"]);
        // Flood every multicast frame, whatever IGMP snooping has seen.
        ip(&[
            "-n",
            &switch,
            "link",
            "set",
            "br0",
            "type",
            "bridge",
            "mcast_snooping",
            "0",
        ]);
        ip(&["-n", &switch, "link", "set", "br0", "up"]);

        for index in 0..count {
            let namespace = format!("{prefix}m{index}");
            ip(&["netns", "add", &namespace]);
            lab.members.push(namespace.clone());
            let port = format!("p{index}");
            ip(&[
                "-n", &namespace, "link", "add", "eth0", "type", "veth", "peer", "name", &port,
                "netns", &switch,
            ]);
            ip(&["-n", &switch, "link", "set", &port, "master", "br0", "up"]);
            ip(&["-n", &namespace, "link", "set", "lo", "up"]);
            ip(&[
                "-n",
                &namespace,
                "addr",
                "add",
                &format!("{}/24", ipv4(index)),
                "dev",
                "eth0",
            ]);
            ip(&[
                "-n",
                &namespace,
                "addr",
                "add",
                &format!("{}/64", ipv6(index)),
                "dev",
                "eth0",
                "nodad",
            ]);
            ip(&["-n", &namespace, "link", "set", "eth0", "up"]);
        }
        lab
    }

    /// Returns the name of member `index`'s namespace.
    pub fn namespace(&self, index: usize) -> &str {
        &self.members[index]
    }

    /// Runs `ip` with `args` in member `index`'s namespace.
    pub fn ip_in(&self, index: usize, args: &[&str]) {
        let mut full = vec!["-n", self.members[index].as_str()];
        full.extend_from_slice(args);
        ip(&full);
    }

    /// Takes member `index` off the bridge, or puts it back.
    pub fn set_link(&self, index: usize, up: bool) {
        let port = format!("p{index}");
        let state = if up { "up" } else { "down" };
        ip(&["-n", &self.switch, "link", "set", &port, state]);
    }

    /// Starts `program` with `args` in member `index`'s namespace, with its
    /// standard output and error appended to `log`. `ip netns exec` execs
    /// the program, so the child's PID is the program's.
    pub fn spawn(&mut self, index: usize, program: &str, args: &[String], log: &Path) -> u32 {
        let file = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .expect("failed to open the log file");
        let child = Command::new("ip")
            .args(["netns", "exec", &self.members[index], program])
            .args(args)
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("failed to clone the log file"))
            .stderr(file)
            .spawn()
            .expect("failed to run ip netns exec");
        let pid = child.id();
        self.children.push(child);
        pid
    }

    /// Returns whether the child `pid` has not exited.
    pub fn is_running(&mut self, pid: u32) -> bool {
        self.children
            .iter_mut()
            .find(|child| child.id() == pid)
            .is_some_and(|child| matches!(child.try_wait(), Ok(None)))
    }

    /// Sends `signal` to the child `pid` and waits for it to exit.
    pub fn stop(&mut self, pid: u32, signal: i32) -> ExitStatus {
        let position = self
            .children
            .iter()
            .position(|child| child.id() == pid)
            .expect("stop() takes a PID that spawn() returned");
        let mut child = self.children.remove(position);
        // SAFETY: kill(2) with the PID of a child that has not been reaped.
        unsafe { libc::kill(pid as i32, signal) };
        child.wait().expect("failed to wait for the child")
    }

    /// Runs `f` on a thread inside member `index`'s namespace, so sockets
    /// it opens belong to that namespace.
    pub fn in_namespace<T: Send + 'static>(
        &self,
        index: usize,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> T {
        let path = format!("/var/run/netns/{}", self.members[index]);
        thread::spawn(move || {
            enter_namespace(&path);
            f()
        })
        .join()
        .expect("the namespace thread panicked")
    }

    /// Returns a path for a file in the lab's temporary directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        // SIGTERM first, so that keepalived stops the VRRP process it
        // forked, which a SIGKILL of its parent would leave running.
        for child in &mut self.children {
            // SAFETY: kill(2) with the PID of our own unreaped child.
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        }
        for child in &mut self.children {
            let exited = wait_for(Duration::from_secs(3), || {
                matches!(child.try_wait(), Ok(Some(_)))
            });
            if !exited {
                // SAFETY: as above.
                unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
                let _ = child.wait();
            }
        }
        for namespace in self.members.iter().chain(std::iter::once(&self.switch)) {
            let _ = Command::new("ip")
                .args(["netns", "del", namespace])
                .status();
        }
    }
}

/// Moves the calling thread into the network namespace at `path`.
pub fn enter_namespace(path: &str) {
    let file =
        fs::File::open(path).unwrap_or_else(|error| panic!("failed to open {path}: {error}"));
    // SAFETY: setns(2) on an open namespace descriptor; it changes only the
    // calling thread's network namespace.
    let result = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
    assert_eq!(
        result,
        0,
        "setns {path} failed: {}",
        io::Error::last_os_error()
    );
}

/// Polls `condition` every 20 ms until it is true or `timeout` passes,
/// and returns whether it became true.
pub fn wait_for(timeout: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    loop {
        if condition() {
            return true;
        }
        if start.elapsed() >= timeout {
            return false;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// A seesaw_ha process in the lab.
pub struct HaNode {
    pub index: usize,
    pub pid: u32,
    pub status_file: PathBuf,
    pub log_file: PathBuf,
}

/// Options for one seesaw_ha process.
#[derive(Clone)]
pub struct HaOptions {
    pub priority: u8,
    pub vrid: u8,
    pub interval: &'static str,
    pub preempt: bool,
    /// The peer: a multicast group or another member's address.
    pub remote: IpAddr,
    /// `-local_addr`, when not the member's lab address of the family that
    /// `ipv6` selects.
    pub local: Option<IpAddr>,
    pub ipv6: bool,
    /// `-advert_addresses`, for a keepalived peer.
    pub advert_addresses: Vec<IpAddr>,
}

impl HaOptions {
    pub fn new(priority: u8) -> HaOptions {
        HaOptions {
            priority,
            vrid: 60,
            interval: "500ms",
            preempt: false,
            remote: IpAddr::V4(Ipv4Addr::new(224, 0, 0, 18)),
            local: None,
            ipv6: false,
            advert_addresses: Vec::new(),
        }
    }
}

impl Lab {
    /// Starts seesaw_ha in member `index`, writing `ha<index>.status` and
    /// appending to `ha<index>.log`.
    pub fn start_ha(&mut self, binary: &str, index: usize, options: &HaOptions) -> HaNode {
        let local: IpAddr = match options.local {
            Some(local) => local,
            None if options.ipv6 => ipv6(index).into(),
            None => ipv4(index).into(),
        };
        let mut args = vec![
            "-test_mode".to_string(),
            format!("-local_addr={local}"),
            format!("-remote_addr={}", options.remote),
            format!("-priority={}", options.priority),
            format!("-vrid={}", options.vrid),
            format!("-master_advert_interval={}", options.interval),
        ];
        if options.preempt {
            args.push("-preempt".to_string());
        }
        if !options.advert_addresses.is_empty() {
            let list: Vec<String> = options
                .advert_addresses
                .iter()
                .map(IpAddr::to_string)
                .collect();
            args.push(format!("-advert_addresses={}", list.join(",")));
        }
        self.spawn_ha(binary, index, args)
    }

    /// Starts seesaw_ha in member `index` in engine mode, with the engine
    /// socket `engine` and short engine intervals: config checks every 1 s,
    /// status reports every 500 ms, and retries from 200 ms with errors
    /// logged after 2 failures. Writes `ha<index>.status` and appends to
    /// `ha<index>.log`.
    pub fn start_ha_with_engine(&mut self, binary: &str, index: usize, engine: &Path) -> HaNode {
        self.start_ha_with_engine_flags(binary, index, engine, &[])
    }

    /// Starts seesaw_ha as [`Lab::start_ha_with_engine`] does, with `flags`
    /// added.
    pub fn start_ha_with_engine_flags(
        &mut self,
        binary: &str,
        index: usize,
        engine: &Path,
        flags: &[&str],
    ) -> HaNode {
        let mut args = vec![
            format!("-engine={}", engine.display()),
            "-init_config_retry_delay=200ms".to_string(),
            "-config_check_interval=1s".to_string(),
            "-config_check_retry_delay=200ms".to_string(),
            "-config_check_max_failures=2".to_string(),
            "-status_report_interval=500ms".to_string(),
            "-status_report_retry_delay=200ms".to_string(),
            "-status_report_max_failures=2".to_string(),
        ];
        args.extend(flags.iter().map(|flag| flag.to_string()));
        self.spawn_ha(binary, index, args)
    }

    /// Starts seesaw_ha in member `index` with `args`, logging to standard
    /// error, with the status file `ha<index>.status` and the log
    /// `ha<index>.log`.
    fn spawn_ha(&mut self, binary: &str, index: usize, mut args: Vec<String>) -> HaNode {
        let status_file = self.path(&format!("ha{index}.status"));
        let log_file = self.path(&format!("ha{index}.log"));
        let _ = fs::remove_file(&status_file);
        // The tests read the log from standard error, where glog writes
        // only ERROR lines by default.
        args.push("-logtostderr".to_string());
        args.push(format!("-status_file={}", status_file.display()));
        let pid = self.spawn(index, binary, &args, &log_file);
        HaNode {
            index,
            pid,
            status_file,
            log_file,
        }
    }
}

impl HaNode {
    /// Returns the value of `key` in the status file, if the file exists.
    pub fn status(&self, key: &str) -> Option<String> {
        let text = fs::read_to_string(&self.status_file).ok()?;
        text.lines()
            .find_map(|line| line.strip_prefix(key)?.strip_prefix('='))
            .map(str::to_string)
    }

    /// Returns the state name from the status file, such as `LEADER`.
    pub fn state(&self) -> Option<String> {
        self.status("state")
    }

    pub fn is(&self, state: &str) -> bool {
        self.state().as_deref() == Some(state)
    }

    pub fn transitions(&self) -> u64 {
        self.status("transitions")
            .and_then(|value| value.parse().ok())
            .unwrap_or(0)
    }

    pub fn log(&self) -> String {
        fs::read_to_string(&self.log_file).unwrap_or_default()
    }
}

/// Panics with the log of `node` unless it contains `text`.
pub fn assert_log_contains(node: &HaNode, text: &str) {
    let log = node.log();
    assert!(
        log.contains(text),
        "log of node {} lacks {text:?}:\n{log}",
        node.index
    );
}
