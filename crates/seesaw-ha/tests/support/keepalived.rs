//! keepalived as a VRRP version 3 peer in the lab, for the interoperability
//! tests and the failover bench. Written against Debian 12's keepalived
//! 2.2.7.

use std::fs;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use super::{Lab, ipv4};

/// The virtual address of keepalived's instance. A seesaw_ha peer lists it
/// with `-advert_addresses`, because keepalived drops adverts whose address
/// list differs from its own `virtual_ipaddress` list.
pub const VIP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 100);

/// Returns whether keepalived can run. Without it, prints a line starting
/// `SKIPPED` and returns false, or panics when SEESAW_REQUIRE_ORACLES=1.
pub fn have_keepalived() -> bool {
    let found = Command::new("keepalived")
        .arg("--version")
        .output()
        .is_ok_and(|output| output.status.success());
    if !found {
        if std::env::var("SEESAW_REQUIRE_ORACLES").as_deref() == Ok("1") {
            panic!("keepalived is not installed and SEESAW_REQUIRE_ORACLES=1");
        }
        eprintln!("SKIPPED: keepalived is not installed (apt-get install keepalived)");
    }
    found
}

/// Options for one keepalived instance with VRID 60.
#[derive(Debug, Clone)]
pub struct KeepalivedOptions {
    pub priority: u8,
    /// `advert_int`, which VRRP version 3 takes in whole centiseconds.
    pub interval: Duration,
    /// The unicast peer, or `None` for the group 224.0.0.18.
    pub peer: Option<IpAddr>,
}

impl KeepalivedOptions {
    pub fn new(priority: u8) -> KeepalivedOptions {
        KeepalivedOptions {
            priority,
            interval: Duration::from_millis(500),
            peer: None,
        }
    }

    /// Returns the configuration file: one VRRPv3 instance on eth0 that
    /// starts as BACKUP, without preemption, with [`VIP`] as its only
    /// virtual address.
    pub fn config(&self, index: usize) -> String {
        let unicast = match self.peer {
            Some(peer) => format!(
                "    unicast_src_ip {}\n    unicast_peer {{\n        {peer}\n    }}\n",
                ipv4(index)
            ),
            None => String::new(),
        };
        let centis = self.interval.as_millis() / 10;
        format!(
            "global_defs {{\n    router_id keepalived{index}\n    vrrp_version 3\n}}\n\
             vrrp_instance VI_60 {{\n    state BACKUP\n    interface eth0\n    \
             virtual_router_id 60\n    priority {priority}\n    \
             advert_int {seconds}.{fraction:02}\n    nopreempt\n{unicast}    \
             virtual_ipaddress {{\n        {VIP}/32\n    }}\n}}\n",
            priority = self.priority,
            seconds = centis / 100,
            fraction = centis % 100,
        )
    }
}

/// A keepalived process in the lab: the parent, which the lab started, and
/// the VRRP child it forks.
pub struct Keepalived {
    /// The parent's PID.
    pub pid: u32,
    log_file: PathBuf,
    vrrp_pid_file: PathBuf,
}

impl Lab {
    /// Starts keepalived in the foreground in member `index`, with only the
    /// VRRP child and no respawning of it, logging to `keepalived<index>.log`.
    pub fn start_keepalived(&mut self, index: usize, options: &KeepalivedOptions) -> Keepalived {
        let name = format!("keepalived{index}");
        let config_file = self.path(&format!("{name}.conf"));
        fs::write(&config_file, options.config(index))
            .expect("failed to write the keepalived configuration");
        let log_file = self.path(&format!("{name}.log"));
        let vrrp_pid_file = self.path(&format!("{name}.vrrp.pid"));
        let _ = fs::remove_file(&vrrp_pid_file);
        let path = |file: &PathBuf| file.display().to_string();
        let args = [
            "--dont-fork".to_string(),
            "--log-console".to_string(),
            "--log-detail".to_string(),
            "--vrrp".to_string(),
            // A VRRP child killed by a test then takes the parent with it,
            // instead of coming back as a new instance.
            "--dont-respawn".to_string(),
            format!("--use-file={}", path(&config_file)),
            format!("--pid={}", path(&self.path(&format!("{name}.pid")))),
            format!("--vrrp_pid={}", path(&vrrp_pid_file)),
        ];
        let pid = self.spawn(index, "keepalived", &args, &log_file);
        Keepalived {
            pid,
            log_file,
            vrrp_pid_file,
        }
    }

    /// Kills keepalived's VRRP child with SIGKILL, as a crash would, and
    /// waits for the parent, which exits when the child dies.
    pub fn kill_keepalived(&mut self, keepalived: &Keepalived) {
        let child = keepalived
            .vrrp_pid()
            .expect("keepalived wrote no VRRP child PID");
        // SAFETY: kill(2) touches no memory of this process. The PID is the
        // one the VRRP child wrote to its PID file.
        unsafe { libc::kill(child as i32, libc::SIGKILL) };
        // Signal 0 only checks the PID; stop() then waits for the parent.
        self.stop(keepalived.pid, 0);
    }
}

impl Keepalived {
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log_file).unwrap_or_default()
    }

    /// Returns the PID of the VRRP child, once it has written it.
    pub fn vrrp_pid(&self) -> Option<u32> {
        fs::read_to_string(&self.vrrp_pid_file)
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// Returns the state named by the last `Entering <state> STATE` line of
    /// the log, such as `BACKUP` or `MASTER`.
    pub fn state(&self) -> Option<String> {
        let log = self.log();
        log.lines().rev().find_map(|line| {
            let rest = line.split("Entering ").nth(1)?;
            let (state, tail) = rest.split_once(' ')?;
            tail.starts_with("STATE").then(|| state.to_string())
        })
    }

    pub fn is(&self, state: &str) -> bool {
        self.state().as_deref() == Some(state)
    }
}
