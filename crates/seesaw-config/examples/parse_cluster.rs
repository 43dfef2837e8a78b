//! Loads a cluster.pb as a given node would and prints what was derived.
//!
//! Usage: parse_cluster FILE [NODE_IPV4 [CLUSTER_VIP_IPV4]]

use seesaw_config::cluster::{NodeContext, read_cluster_file};

fn main() {
    let mut args = std::env::args().skip(1);
    let path = args
        .next()
        .expect("usage: parse_cluster FILE [NODE_IPV4 [CLUSTER_VIP_IPV4]]");
    let context = NodeContext {
        node_config_file: "seesaw.cfg".into(),
        site: "example".into(),
        node_ipv4: args
            .next()
            .map(|ip| ip.parse().expect("NODE_IPV4 is an IPv4 address")),
        cluster_vip_ipv4: args
            .next()
            .map(|ip| ip.parse().expect("CLUSTER_VIP_IPV4 is an IPv4 address")),
        ..NodeContext::default()
    };
    match read_cluster_file(path.as_ref(), &context) {
        Ok(loaded) => {
            println!("{:#?}", loaded.cluster);
            for warning in &loaded.warnings {
                println!("{warning}");
            }
            for note in &loaded.notes {
                println!("note: {note}");
            }
        }
        Err(rejected) => println!("{rejected}"),
    }
}
