//! Anycast VIPs end to end (crates/xtask/lab/anycast.sh): two Seesaw
//! nodes, each with its own FRR bgpd, whose neighbor, a router bgpd, the
//! engine configures from cluster.pb. The router must have the anycast
//! VIP's /32 from both nodes while the vserver is healthy, whichever node
//! is master. It must lose the route within one check interval (plus a
//! margin) after the backends fail and get it back after they recover.
//! A node that stops must withdraw its path, and so must a restarted
//! engine whose vserver left cluster.pb while it was killed.

mod lab;

#[test]
#[ignore = "needs the kernel lab: runs two Seesaw nodes and three bgpd in namespaces"]
fn kernel_anycast_follows_health_and_shutdown() {
    lab::require_lab();
    if !lab::frr_installed("kernel_anycast_follows_health_and_shutdown") {
        return;
    }
    let stdout = lab::run_scenario("anycast.sh", &[]);
    lab::expect_steps(
        &stdout,
        &[
            "both sessions are Established",
            "n1 is LEADER, n2 is BACKUP",
            "both nodes hold 192.168.255.10 on dummy0",
            "n2 is LEADER, n1 is BACKUP; the router has 192.168.255.10/32 from 198.51.100.11 198.51.100.12",
            "192.168.255.10 left dummy0 on both nodes",
            "the router has 192.168.255.10/32 from both nodes again",
            "the router has 192.168.255.10/32 from 198.51.100.11 only",
            "the router has 192.168.255.10/32 from 198.51.100.12 only",
            "every step succeeded",
        ],
    );
}
