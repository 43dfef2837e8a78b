//! Self-test of the kernel lab: the guest kernel must provide what Seesaw
//! needs, which are IPVS, dummy and 802.1Q VLAN links, and network namespaces
//! joined by a veth pair.
//!
//! These tests change the kernel's IPVS table and links, so they run only in
//! the lab VM: `cargo xtask vm-selftest` or `cargo xtask test`. Every address
//! exists only inside the guest.

use std::process::Command;

/// Panics unless the test runs in the lab, whose init sets SEESAW_LAB=1, so
/// that `cargo test -- --ignored` cannot change the host's network setup.
fn require_lab() {
    if std::env::var_os("SEESAW_LAB").is_none() {
        panic!(
            "this test changes the kernel's network setup and runs only in the kernel lab; \
             run it with `cargo xtask vm-selftest` or `cargo xtask test`"
        );
    }
}

/// Runs `program` with `args` and returns its stdout; panics with its output
/// when it fails.
fn run(program: &str, args: &[&str]) -> String {
    let output = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|error| panic!("failed to start {program}: {error}"));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "`{program} {}` failed with {}\nstdout:\n{stdout}\nstderr:\n{}",
        args.join(" "),
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

#[test]
#[ignore = "needs the kernel lab: changes the IPVS table"]
fn kernel_ipvsadm_adds_service() {
    require_lab();

    run("ipvsadm", &["-A", "-t", "10.0.0.1:80", "-s", "rr"]);
    let table = run("ipvsadm", &["-Ln"]);
    run("ipvsadm", &["-D", "-t", "10.0.0.1:80"]);

    let service = table
        .lines()
        .map(|line| line.split_whitespace().collect::<Vec<_>>())
        .find(|fields| fields.get(1) == Some(&"10.0.0.1:80"));
    assert_eq!(
        service,
        Some(vec!["TCP", "10.0.0.1:80", "rr"]),
        "ipvsadm -Ln printed:\n{table}"
    );
}

#[test]
#[ignore = "needs the kernel lab: creates links"]
fn kernel_dummy_and_vlan_links() {
    require_lab();

    run("ip", &["link", "add", "lab-dummy0", "type", "dummy"]);
    run(
        "ip",
        &[
            "link",
            "add",
            "link",
            "lab-dummy0",
            "name",
            "lab-dummy0.100",
            "type",
            "vlan",
            "id",
            "100",
        ],
    );
    let dummy = run("ip", &["-d", "link", "show", "lab-dummy0"]);
    let vlan = run("ip", &["-d", "link", "show", "lab-dummy0.100"]);
    run("ip", &["link", "del", "lab-dummy0"]);

    assert!(
        dummy.contains("\n    dummy "),
        "ip -d link show printed:\n{dummy}"
    );
    assert!(
        vlan.contains("vlan protocol 802.1Q id 100"),
        "ip -d link show printed:\n{vlan}"
    );
}

#[test]
#[ignore = "needs the kernel lab: creates network namespaces"]
fn kernel_veth_ping_between_namespaces() {
    require_lab();

    for namespace in ["lab-a", "lab-b"] {
        run("ip", &["netns", "add", namespace]);
        run("ip", &["-n", namespace, "link", "set", "lo", "up"]);
    }
    run(
        "ip",
        &[
            "link", "add", "lab-va", "netns", "lab-a", "type", "veth", "peer", "name", "lab-vb",
            "netns", "lab-b",
        ],
    );
    run(
        "ip",
        &["-n", "lab-a", "addr", "add", "10.0.1.1/24", "dev", "lab-va"],
    );
    run(
        "ip",
        &["-n", "lab-b", "addr", "add", "10.0.1.2/24", "dev", "lab-vb"],
    );
    run("ip", &["-n", "lab-a", "link", "set", "lab-va", "up"]);
    run("ip", &["-n", "lab-b", "link", "set", "lab-vb", "up"]);

    let ping = Command::new("ip")
        .args([
            "netns", "exec", "lab-a", "ping", "-c", "2", "-W", "3", "10.0.1.2",
        ])
        .output()
        .expect("failed to start ip netns exec");
    for namespace in ["lab-a", "lab-b"] {
        run("ip", &["netns", "del", namespace]);
    }

    assert!(
        ping.status.success(),
        "ping from lab-a to lab-b failed with {}:\n{}{}",
        ping.status,
        String::from_utf8_lossy(&ping.stdout),
        String::from_utf8_lossy(&ping.stderr)
    );
}
