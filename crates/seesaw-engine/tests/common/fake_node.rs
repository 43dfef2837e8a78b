//! Node-a of a two-node cluster on 10.255.0.0/8: its seesaw.cfg, the
//! parsing of cluster.pb text for it, and its core with a kernel worker
//! over a fake NCC. Shared by tests/worker.rs and the engine benchmark.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

use seesaw_config::cluster::{NodeContext, load_cluster_text};
use seesaw_config::model::Cluster;
use seesaw_config::node_config::NodeConfig;
use seesaw_engine::daemon::core::Core;
use seesaw_engine::daemon::ncc::{Ncc, Observed};
use seesaw_engine::daemon::worker::{self, Target, WorkerStatus};
use tokio::sync::watch;

/// The cluster.pb header: the cluster VIP and both nodes. Vservers follow.
pub const CLUSTER_HEADER: &str = "\
seesaw_vip: < fqdn: \"seesaw-vip.\" ipv4: \"10.255.0.1/8\" status: PRODUCTION >
node: < fqdn: \"node-a.\" ipv4: \"10.255.0.2/8\" >
node: < fqdn: \"node-b.\" ipv4: \"10.255.0.3/8\" >
";

/// Returns the seesaw.cfg of node-a, with anycast disabled.
pub fn node_config() -> NodeConfig {
    let text = "[cluster]\nname = fake\nnode_ipv4 = 10.255.0.2\npeer_ipv4 = 10.255.0.3\n\
                vip_ipv4 = 10.255.0.1\nanycast_enabled = false\n";
    NodeConfig::parse("seesaw.cfg", text)
        .expect("seesaw.cfg of node-a")
        .0
}

/// Parses and checks cluster.pb text as node-a loads it.
pub fn parse(text: &str) -> Arc<Cluster> {
    let context = NodeContext {
        node_config_file: "seesaw.cfg".into(),
        site: "fake".into(),
        cluster_vip_ipv4: Some(Ipv4Addr::new(10, 255, 0, 1)),
        cluster_vip_ipv6: None::<Ipv6Addr>,
        node_ipv4: Some(Ipv4Addr::new(10, 255, 0, 2)),
        node_ipv6: None,
        anycast_ranges: Default::default(),
    };
    let loaded = load_cluster_text(Path::new("cluster.pb"), text, &context)
        .unwrap_or_else(|rejected| panic!("cluster.pb rejected: {:?}", rejected.0.first()));
    Arc::new(loaded.cluster)
}

/// Creates node-a's core and spawns its kernel worker over `ncc`, which
/// starts from an empty kernel. Must be called inside a tokio runtime.
pub fn start_core<N: Ncc>(ncc: N) -> (Core, Arc<WorkerStatus>) {
    let (target_tx, target_rx) = watch::channel(Target::default());
    let status = Arc::new(WorkerStatus::default());
    tokio::spawn(worker::run(
        ncc,
        Observed::default(),
        target_rx,
        status.clone(),
    ));
    let core = Core::new(node_config(), SystemTime::now(), target_tx);
    (core, status)
}
