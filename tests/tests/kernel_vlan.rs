//! VLAN-attached and dedicated VIPs end to end (crates/xtask/lab/vlan.sh):
//! one Seesaw node whose cluster.pb has two `vlan` blocks. The engine,
//! through the NCC, must create each VLAN interface with the node's
//! address and bring each VLAN's VIP up on it. The LB network's VIP goes
//! on the LB interface and the dedicated VIP on the dummy interface, and
//! a client reaches each through IPVS. An engine restart must leave them
//! as they are, and the VLANs must follow cluster.pb as a VLAN leaves,
//! comes back and changes its address.

mod lab;

#[test]
#[ignore = "needs the kernel lab: creates 802.1Q VLAN interfaces in namespaces"]
fn kernel_vlan_vips_follow_cluster_config() {
    lab::require_lab();
    let stdout = lab::run_scenario("vlan.sh", &[]);
    lab::expect_steps(
        &stdout,
        &[
            "n1 is LEADER",
            "the client reached 10.100.0.10, 10.200.0.10, 203.0.113.30 and 10.250.0.10 through IPVS",
            "the VLAN interfaces, their addresses and every VIP stayed",
            "ens224.100 and 10.100.0.10 are gone; the other addresses, VIPs and services stay",
            "VLAN 100 is back with its VIP",
            "ens224.200 has the new address and 10.200.0.10 still answers",
            "every step succeeded",
        ],
    );
}
