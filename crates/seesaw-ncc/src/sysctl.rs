//! Kernel settings under /proc/sys, with the old values kept so that
//! shutdown can restore them.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::PathBuf;
use std::sync::Mutex;

/// Settings written at every LB interface init, in order.
pub const GLOBAL: &[(&str, &str)] = &[
    // Neighbour table limits; these exist only in the initial network
    // namespace, so inside a namespace they are skipped with a warning.
    ("net/ipv4/neigh/default/gc_thresh1", "1024"),
    ("net/ipv4/neigh/default/gc_thresh2", "2048"),
    ("net/ipv4/neigh/default/gc_thresh3", "4096"),
    ("net/ipv4/ip_forward", "1"),
    // Let IPVS keep conntrack entries, which the NAT rules need.
    ("net/ipv4/vs/conntrack", "1"),
    ("net/netfilter/nf_conntrack_tcp_timeout_established", "900"),
    // Drop connections to a removed destination at once.
    ("net/ipv4/vs/expire_nodest_conn", "1"),
];

/// Settings of each interface (and of `all` and `default`).
pub const PER_INTERFACE: &[(&str, &str, &str)] = &[
    ("ipv4", "accept_local", "1"),
    ("ipv4", "arp_filter", "1"),
    ("ipv4", "arp_ignore", "1"),
    ("ipv4", "arp_announce", "2"),
    ("ipv4", "arp_notify", "1"),
    ("ipv4", "rp_filter", "2"),
    ("ipv4", "send_redirects", "0"),
    ("ipv6", "autoconf", "0"),
    ("ipv6", "accept_dad", "0"),
    ("ipv6", "dad_transmits", "0"),
];

/// Writes sysctls and remembers the first value seen at each path.
#[derive(Debug)]
pub struct Sysctls {
    root: PathBuf,
    original: Mutex<BTreeMap<String, String>>,
}

impl Default for Sysctls {
    fn default() -> Self {
        Self::with_root("/proc/sys")
    }
}

impl Sysctls {
    /// Uses `root` in place of /proc/sys (for tests).
    pub fn with_root(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            original: Mutex::new(BTreeMap::new()),
        }
    }

    /// Sets `key` (a path relative to /proc/sys, such as
    /// `net/ipv4/ip_forward`) to `value`. A key missing in this network
    /// namespace, or a module that is not loaded, is logged and skipped.
    pub fn set(&self, key: &str, value: &str) -> io::Result<()> {
        let path = self.root.join(key);
        let old = match fs::read_to_string(&path) {
            Ok(old) => old.trim_end().to_owned(),
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                tracing::warn!("sysctl {key} does not exist here; not setting it to {value}");
                return Ok(());
            }
            Err(error) => return Err(error),
        };
        if old != value {
            fs::write(&path, format!("{value}\n"))?;
            tracing::info!("sysctl {key} = {value} (was {old})");
        }
        self.original
            .lock()
            .expect("sysctl map lock")
            .entry(key.to_owned())
            .or_insert(old);
        Ok(())
    }

    /// Applies [`GLOBAL`].
    pub fn set_global(&self) -> io::Result<()> {
        for (key, value) in GLOBAL {
            self.set(key, value)?;
        }
        Ok(())
    }

    /// Applies [`PER_INTERFACE`] to `interface` (or `all`, `default`).
    /// Dots in VLAN names stay as they are: /proc/sys paths use them as-is.
    pub fn set_interface(&self, interface: &str) -> io::Result<()> {
        for (family, key, value) in PER_INTERFACE {
            self.set(&format!("net/{family}/conf/{interface}/{key}"), value)?;
        }
        Ok(())
    }

    /// Drops the saved values of `interface`, whose settings went with it
    /// when it was deleted, so that shutdown does not try to restore them.
    pub fn forget_interface(&self, interface: &str) {
        let prefixes = [
            format!("net/ipv4/conf/{interface}/"),
            format!("net/ipv6/conf/{interface}/"),
        ];
        self.original
            .lock()
            .expect("sysctl map lock")
            .retain(|key, _| !prefixes.iter().any(|prefix| key.starts_with(prefix)));
    }

    /// Writes back every value that was changed, logging failures (such as
    /// the settings of an interface that is gone).
    pub fn restore(&self) {
        let original = std::mem::take(&mut *self.original.lock().expect("sysctl map lock"));
        for (key, value) in original {
            let path = self.root.join(&key);
            match fs::read_to_string(&path) {
                Ok(current) if current.trim_end() == value => {}
                Ok(_) => match fs::write(&path, format!("{value}\n")) {
                    Ok(()) => tracing::info!("sysctl {key} restored to {value}"),
                    Err(error) => {
                        tracing::warn!("failed to restore sysctl {key} to {value}: {error}")
                    }
                },
                Err(error) => tracing::warn!("failed to restore sysctl {key} to {value}: {error}"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_and_restore() {
        let root = tempfile::tempdir().unwrap();
        let path = root.path().join("net/ipv4/ip_forward");
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, "0\n").unwrap();
        let sysctls = Sysctls::with_root(root.path());

        sysctls.set("net/ipv4/ip_forward", "1").unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "1\n");

        sysctls.set("net/ipv4/ip_forward", "1").unwrap();
        sysctls.restore();
        assert_eq!(fs::read_to_string(&path).unwrap(), "0\n");
    }

    #[test]
    fn missing_key_skipped() {
        let root = tempfile::tempdir().unwrap();
        let sysctls = Sysctls::with_root(root.path());

        let result = sysctls.set("net/ipv4/neigh/default/gc_thresh1", "1024");

        assert!(result.is_ok(), "{result:?}");
    }

    #[test]
    fn forgotten_interface_not_restored() {
        let root = tempfile::tempdir().unwrap();
        let vlan = root.path().join("net/ipv4/conf/eth1.100");
        let lb = root.path().join("net/ipv4/conf/eth1");
        for dir in [&vlan, &lb] {
            fs::create_dir_all(dir).unwrap();
            fs::write(dir.join("arp_ignore"), "0\n").unwrap();
        }
        let sysctls = Sysctls::with_root(root.path());
        sysctls.set_interface("eth1.100").unwrap();
        sysctls.set_interface("eth1").unwrap();

        sysctls.forget_interface("eth1.100");
        sysctls.restore();

        assert_eq!(fs::read_to_string(vlan.join("arp_ignore")).unwrap(), "1\n");
        assert_eq!(fs::read_to_string(lb.join("arp_ignore")).unwrap(), "0\n");
    }

    #[test]
    fn interface_paths_keep_dots() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("net/ipv4/conf/eth1.100");
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("arp_ignore"), "0\n").unwrap();
        let sysctls = Sysctls::with_root(root.path());

        sysctls.set_interface("eth1.100").unwrap();

        assert_eq!(fs::read_to_string(dir.join("arp_ignore")).unwrap(), "1\n");
    }
}
