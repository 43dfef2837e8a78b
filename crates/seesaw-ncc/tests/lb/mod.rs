//! The load balancer of the kernel lab tests and of the example
//! `bench_vserver_rules`: node 10.10.0.5 on `eth0`, LB interface `eth1`,
//! IPv4 cluster VIP 10.10.0.10, default route via 10.10.0.1.

use seesaw_ipc::proto;

pub const NODE: &str = "10.10.0.5";
pub const CLUSTER_VIP: &str = "10.10.0.10";
pub const GATEWAY: &str = "10.10.0.1";

pub fn lb_interface() -> proto::LbInterface {
    proto::LbInterface {
        name: "eth1".to_owned(),
        dummy_interface: "dummy0".to_owned(),
        node_interface: "eth0".to_owned(),
        node: Some(proto::HostAddresses {
            ipv4: NODE.to_owned(),
            ipv6: String::new(),
        }),
        cluster_vip: Some(proto::HostAddresses {
            ipv4: CLUSTER_VIP.to_owned(),
            ipv6: String::new(),
        }),
        routing_table: 2,
        vrid: 60,
        use_vmac: true,
    }
}
