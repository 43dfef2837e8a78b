//! BGP on the engine's side while anycast is enabled, on both nodes
//! whatever their HA state:
//! - the neighbors of cluster.pb configured in bgpd through the NCC, at
//!   the start and whenever the BGP settings change;
//! - the service anycast addresses of seesaw.cfg put on the dummy
//!   interface and advertised from the start;
//! - bgpd's neighbors listed every `bgp_update_interval` (15 s) for the
//!   API, which `show bgp neighbors` reads.
//!
//! A step that fails is retried at the next round. It is logged at its
//! first failure, every [`REPEAT_LOG`] failures after that and when it
//! works again, so a node without bgpd logs it once and serves on.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use seesaw_config::model::{Cluster, Vip, VipType};
use seesaw_config::node_config::NodeConfig;
use seesaw_ipc::engine_proto as api;
use tokio::sync::watch;

use super::core::Core;
use super::ncc::{BgpPeers, Ncc, NccError};

/// A step that keeps failing is logged again after this many failures in
/// a row: about every 10 minutes at the 15-second interval.
pub const REPEAT_LOG: u64 = 40;

/// Returns the neighbors that `cluster` sets for this node, or `None` when
/// it sets none or anycast is disabled on the node.
pub fn bgp_peers(node: &NodeConfig, cluster: &Cluster) -> Option<BgpPeers> {
    if !node.anycast_enabled || !cluster.wants_bgp_peers() {
        return None;
    }
    Some(BgpPeers {
        local_asn: cluster.bgp_local_asn,
        remote_asn: cluster.bgp_remote_asn,
        peers: cluster
            .bgp_peers
            .values()
            .flat_map(|peer| peer.ips())
            .collect(),
        router_id: node.node_ipv4,
        anycast_ranges: node.anycast_ranges,
    })
}

/// Returns the service anycast addresses this node advertises: those of a
/// family in which seesaw.cfg gives the cluster VIP an address, as in
/// Seesaw v2.
pub fn service_anycast(node: &NodeConfig) -> Vec<IpAddr> {
    let ipv4 = node
        .service_anycast_ipv4
        .iter()
        .filter(|_| node.vip_ipv4.is_some())
        .map(|ip| IpAddr::V4(*ip));
    let ipv6 = node
        .service_anycast_ipv6
        .iter()
        .filter(|_| node.vip_ipv6.is_some())
        .map(|ip| IpAddr::V6(*ip));
    ipv4.chain(ipv6).collect()
}

/// Runs the BGP rounds until aborted: one at the start, one per interval
/// and one after each config the core takes. Returns at once when anycast
/// is disabled.
pub async fn run<N: Ncc>(ncc: N, core: Arc<Mutex<Core>>, mut configs: watch::Receiver<u64>) {
    let node = core.lock().expect("engine state poisoned").node.clone();
    if !node.anycast_enabled {
        tracing::info!(
            "anycast is disabled: no BGP neighbors, service anycast addresses or neighbor listing"
        );
        return;
    }
    let interval = node.engine.bgp_update_interval.max(Duration::from_secs(1));
    let mut ticker = tokio::time::interval(interval);
    let mut task = BgpTask::new(node);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            changed = configs.changed() => {
                if changed.is_err() {
                    return;
                }
            }
        }
        task.round(&ncc, &core).await;
    }
}

/// The state the rounds carry from one to the next.
struct BgpTask {
    node: NodeConfig,
    /// Service anycast addresses not yet advertised.
    pending_service: Vec<IpAddr>,
    /// The neighbors bgpd got from this engine; `None` before the first
    /// apply and after one that removed them.
    applied: Option<BgpPeers>,
    /// Whether bgpd took one request of this run. Until then, a config
    /// without BGP settings removes Seesaw's neighbors, which an earlier
    /// run may have left in bgpd.
    synced: bool,
    service_failures: Failures,
    peers_failures: Failures,
    neighbors_failures: Failures,
}

impl BgpTask {
    fn new(node: NodeConfig) -> BgpTask {
        BgpTask {
            pending_service: service_anycast(&node),
            node,
            applied: None,
            synced: false,
            service_failures: Failures::new("advertising the service anycast addresses"),
            peers_failures: Failures::new("configuring bgpd's neighbors"),
            neighbors_failures: Failures::new("listing bgpd's neighbors"),
        }
    }

    /// Runs one round. The neighbors come first, because applying them
    /// creates the `router bgp` instance that advertisements need when
    /// bgpd has none.
    async fn round<N: Ncc>(&mut self, ncc: &N, core: &Mutex<Core>) {
        self.apply_peers(ncc, core).await;
        self.advertise_service_anycast(ncc).await;
        self.list_neighbors(ncc, core).await;
    }

    /// Puts each pending service anycast address on the dummy interface
    /// and advertises it. They stay advertised while the engine runs.
    async fn advertise_service_anycast<N: Ncc>(&mut self, ncc: &N) {
        while let Some(&ip) = self.pending_service.first() {
            let vip = Vip {
                ip,
                vip_type: VipType::Anycast,
            };
            let added = match ncc.vips(vec![(vip, true)]).await {
                Ok(failures) => match failures.into_iter().next() {
                    None => Ok(()),
                    Some((_, error)) => Err(NccError(format!("NCC ApplyVips {ip}: {error}"))),
                },
                Err(error) => Err(error),
            };
            if let Err(error) = added.and(ncc.bgp(ip, true).await) {
                self.service_failures.failed(&error);
                return;
            }
            self.service_failures.succeeded();
            tracing::info!("advertised service anycast address {ip}");
            self.pending_service.remove(0);
        }
    }

    /// Sends bgpd the neighbors of the config in force when they differ
    /// from those it got last, and removes them when the config no longer
    /// sets any, or sets none at the start of this run.
    async fn apply_peers<N: Ncc>(&mut self, ncc: &N, core: &Mutex<Core>) {
        let (desired, asns) = {
            let core = core.lock().expect("engine state poisoned");
            let Some(cluster) = core.cluster.as_deref() else {
                return;
            };
            let asns = (cluster.bgp_local_asn, cluster.bgp_remote_asn);
            (bgp_peers(&self.node, cluster), asns)
        };
        let request = match (&desired, &self.applied) {
            (Some(desired), applied) if applied.as_ref() != Some(desired) => desired.clone(),
            (None, Some(applied)) => BgpPeers {
                peers: BTreeSet::new(),
                ..applied.clone()
            },
            (None, None) if !self.synced => BgpPeers {
                local_asn: asns.0,
                remote_asn: asns.1,
                peers: BTreeSet::new(),
                router_id: self.node.node_ipv4,
                anycast_ranges: self.node.anycast_ranges,
            },
            _ => return,
        };

        let report = match ncc.bgp_peers(request.clone()).await {
            Ok(report) => report,
            Err(error) => {
                self.peers_failures.failed(&error);
                return;
            }
        };
        self.peers_failures.succeeded();
        self.synced = true;
        for skipped in &report.skipped {
            tracing::warn!("BGP peer left as bgpd has it: {skipped}");
        }
        let peers: Vec<String> = request.peers.iter().map(ToString::to_string).collect();
        if request.peers.is_empty() {
            if report.commands.is_empty() {
                tracing::debug!("bgpd has no Seesaw BGP neighbors");
            } else {
                tracing::info!(
                    "removed Seesaw's BGP neighbors from bgpd ({} commands)",
                    report.commands.len()
                );
            }
        } else if report.commands.is_empty() {
            tracing::info!("bgpd already has the BGP neighbors [{}]", peers.join(", "));
        } else {
            tracing::info!(
                "configured bgpd's BGP neighbors [{}] of AS {} in router bgp {} ({} commands)",
                peers.join(", "),
                request.remote_asn,
                request.local_asn,
                report.commands.len()
            );
        }
        self.applied = desired;
    }

    /// Stores bgpd's neighbors for the API; none while bgpd cannot be
    /// reached, rather than a stale list.
    async fn list_neighbors<N: Ncc>(&mut self, ncc: &N, core: &Mutex<Core>) {
        let neighbors = match ncc.bgp_neighbors().await {
            Ok(neighbors) => {
                self.neighbors_failures.succeeded();
                neighbors
            }
            Err(error) => {
                self.neighbors_failures.failed(&error);
                Vec::new()
            }
        };
        core.lock().expect("engine state poisoned").bgp_neighbors =
            api::BgpNeighborList { neighbors };
    }
}

/// The failures in a row of one step, for logging them sparingly.
struct Failures {
    step: &'static str,
    count: u64,
}

impl Failures {
    fn new(step: &'static str) -> Failures {
        Failures { step, count: 0 }
    }

    fn failed(&mut self, error: &NccError) {
        self.count += 1;
        if self.count == 1 {
            tracing::warn!(
                "{} failed: {error}; retrying every round, logged again every {REPEAT_LOG} failures",
                self.step
            );
        } else if self.count.is_multiple_of(REPEAT_LOG) {
            tracing::warn!(
                "{} still fails after {} attempts: {error}",
                self.step,
                self.count
            );
        }
    }

    fn succeeded(&mut self) {
        if self.count > 0 {
            tracing::info!(
                "{} works again after {} failed attempts",
                self.step,
                self.count
            );
        }
        self.count = 0;
    }
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use seesaw_config::cluster::{NodeContext, load_cluster_text};
    use seesaw_config::model::AnycastRanges;

    use super::*;
    use crate::daemon::core::ConfigInfo;
    use crate::daemon::fake_ncc::FakeNcc;
    use crate::daemon::worker::Target;
    use crate::reconcile::ObservedState;

    const NODE: &str = "[cluster]\nname = test\nnode_ipv4 = 192.0.2.2\npeer_ipv4 = 192.0.2.3\n\
                        vip_ipv4 = 192.0.2.1\n\
                        [extra_service_anycast]\nmonitoring = 192.168.255.254\n\
                        monitoring_v6 = 2015:cafe:ffff::254\n";

    const CLUSTER: &str = r#"
seesaw_vip: < fqdn: "vip." ipv4: "192.0.2.1/24" status: PRODUCTION >
node: < fqdn: "lb1." ipv4: "192.0.2.2/24" >
node: < fqdn: "lb2." ipv4: "192.0.2.3/24" >
"#;

    fn node(extra: &str) -> NodeConfig {
        NodeConfig::parse("seesaw.cfg", &format!("{NODE}{extra}"))
            .expect("seesaw.cfg")
            .0
    }

    fn cluster(node: &NodeConfig, bgp: &str) -> Arc<Cluster> {
        let context = NodeContext {
            node_ipv4: Some(node.node_ipv4),
            cluster_vip_ipv4: node.vip_ipv4,
            ..NodeContext::default()
        };
        let text = format!("{CLUSTER}{bgp}");
        let loaded = load_cluster_text("cluster.pb".as_ref(), &text, &context).expect("cluster.pb");
        Arc::new(loaded.cluster)
    }

    const ROUTERS: &str = "bgp_remote_asn: 64513\n\
        bgp_peer: < fqdn: \"r1.\" ipv4: \"192.0.2.254/24\" ipv6: \"2001:db8::fe/64\" >\n";

    /// Returns a core that took `cluster`, and the BGP task's config
    /// watch. The kernel worker is left out: the task does not need it.
    fn started_core(
        node: NodeConfig,
        cluster: Arc<Cluster>,
    ) -> (Arc<Mutex<Core>>, watch::Receiver<u64>) {
        let (target, _) = watch::channel(Target::default());
        let mut core = Core::new(node, SystemTime::now(), target);
        core.start(cluster, ConfigInfo::default(), &ObservedState::default());
        let configs = core.configs.subscribe();
        (Arc::new(Mutex::new(core)), configs)
    }

    /// Polls `condition` in virtual time, 100 rounds at most.
    async fn eventually(mut condition: impl FnMut() -> bool) {
        for _ in 0..100 {
            if condition() {
                return;
            }
            tokio::time::sleep(Duration::from_secs(5)).await;
        }
        panic!("the condition never held");
    }

    fn neighbor(ip: &str) -> api::BgpNeighbor {
        api::BgpNeighbor {
            ip: ip.to_owned(),
            asn: 64513,
            state: "Established".to_owned(),
            ..api::BgpNeighbor::default()
        }
    }

    #[test]
    fn peers_from_config() {
        let node = node("");
        let peers = bgp_peers(&node, &cluster(&node, ROUTERS)).expect("BGP neighbors");
        assert_eq!(peers.local_asn, 64512);
        assert_eq!(peers.remote_asn, 64513);
        let expected: BTreeSet<IpAddr> = ["192.0.2.254", "2001:db8::fe"]
            .iter()
            .map(|ip| ip.parse().unwrap())
            .collect();
        assert_eq!(peers.peers, expected);
        assert_eq!(peers.router_id, node.node_ipv4);
        assert_eq!(peers.anycast_ranges, AnycastRanges::default());

        assert_eq!(bgp_peers(&node, &cluster(&node, "")), None);
        let mut disabled = node.clone();
        disabled.anycast_enabled = false;
        assert_eq!(bgp_peers(&disabled, &cluster(&disabled, ROUTERS)), None);
    }

    #[test]
    fn service_anycast_needs_cluster_vip_family() {
        let node = node("");
        assert_eq!(
            service_anycast(&node),
            ["192.168.255.254".parse::<IpAddr>().unwrap()]
        );
        let mut node = node;
        node.vip_ipv6 = Some("2001:db8::1".parse().unwrap());
        assert_eq!(service_anycast(&node).len(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn task_follows_bgp_settings() {
        let node = node("");
        let ncc = FakeNcc::new();
        ncc.state().bgp_neighbors = vec![neighbor("192.0.2.254")];
        let (core, configs) = started_core(node.clone(), cluster(&node, ROUTERS));
        let task = tokio::spawn(run(ncc.clone(), core.clone(), configs));

        eventually(|| ncc.state().bgp_peers.is_some()).await;
        eventually(|| core.lock().unwrap().bgp_neighbors.neighbors.len() == 1).await;
        let service: IpAddr = "192.168.255.254".parse().unwrap();
        assert!(ncc.state().advertised.contains(&service));
        assert!(ncc.state().vips.contains(&Vip {
            ip: service,
            vip_type: VipType::Anycast
        }));
        // seesaw.cfg gives the cluster VIP no IPv6 address.
        assert_eq!(ncc.state().advertised.len(), 1);

        // Rounds without a change send no BgpApplyPeers.
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert_eq!(ncc.state().bgp_peers_calls, 1);

        // Another peer: one call, right after the config.
        let changed = cluster(
            &node,
            &format!("{ROUTERS}bgp_peer: < fqdn: \"r2.\" ipv4: \"192.0.2.253/24\" >\n"),
        );
        core.lock()
            .unwrap()
            .apply_config(changed, ConfigInfo::default());
        eventually(|| ncc.state().bgp_peers.as_ref().map(|p| p.peers.len()) == Some(3)).await;
        assert_eq!(ncc.state().bgp_peers_calls, 2);

        // No BGP settings: Seesaw's neighbors are removed, once.
        core.lock()
            .unwrap()
            .apply_config(cluster(&node, ""), ConfigInfo::default());
        eventually(|| ncc.state().bgp_peers.is_none()).await;
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert_eq!(ncc.state().bgp_peers_calls, 3);
        task.abort();
    }

    #[tokio::test(start_paused = true)]
    async fn task_waits_for_bgpd() {
        let node = node("");
        let ncc = FakeNcc::new();
        ncc.state().no_bgpd = true;
        ncc.state().bgp_neighbors = vec![neighbor("192.0.2.254")];
        let (core, configs) = started_core(node.clone(), cluster(&node, ROUTERS));
        core.lock().unwrap().bgp_neighbors.neighbors = vec![neighbor("198.51.100.1")];
        let task = tokio::spawn(run(ncc.clone(), core.clone(), configs));

        // The rounds go on; the list shows no neighbor rather than a stale
        // one.
        eventually(|| ncc.state().calls >= 10).await;
        assert!(core.lock().unwrap().bgp_neighbors.neighbors.is_empty());
        assert_eq!(ncc.state().bgp_peers, None);
        assert!(ncc.state().advertised.is_empty());

        // bgpd starts: everything is done at the next round.
        ncc.state().no_bgpd = false;
        eventually(|| ncc.state().bgp_peers.is_some()).await;
        eventually(|| !ncc.state().advertised.is_empty()).await;
        eventually(|| core.lock().unwrap().bgp_neighbors.neighbors.len() == 1).await;
        task.abort();
    }

    #[tokio::test(start_paused = true)]
    async fn task_removes_neighbors_of_earlier_run() {
        let node = node("");
        let ncc = FakeNcc::new();
        let (core, configs) = started_core(node.clone(), cluster(&node, ROUTERS));
        let earlier = bgp_peers(&node, &cluster(&node, ROUTERS)).expect("BGP neighbors");
        ncc.state().bgp_peers = Some(earlier);

        // This run's config sets no neighbors: the earlier ones go once.
        core.lock()
            .unwrap()
            .apply_config(cluster(&node, ""), ConfigInfo::default());
        let task = tokio::spawn(run(ncc.clone(), core.clone(), configs));
        eventually(|| ncc.state().bgp_peers.is_none()).await;
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert_eq!(ncc.state().bgp_peers_calls, 1);
        task.abort();
    }

    #[tokio::test(start_paused = true)]
    async fn task_without_bgp_settings() {
        let node = node("");
        let ncc = FakeNcc::new();
        let (core, configs) = started_core(node.clone(), cluster(&node, ""));
        let task = tokio::spawn(run(ncc.clone(), core.clone(), configs));

        // One request at the start removes the neighbors an earlier run
        // may have left; after it, bgpd's configuration is not touched.
        eventually(|| ncc.state().calls >= 5).await;
        assert_eq!(ncc.state().bgp_peers_calls, 1);
        assert_eq!(ncc.state().bgp_peers, None);
        task.abort();

        // With anycast disabled the task does nothing at all.
        let mut disabled = node.clone();
        disabled.anycast_enabled = false;
        let ncc = FakeNcc::new();
        let (core, configs) = started_core(disabled.clone(), cluster(&disabled, ROUTERS));
        run(ncc.clone(), core, configs).await;
        assert_eq!(ncc.state().calls, 0);
    }
}
