//! The engine daemon against a fake NCC: the gRPC API as seesaw_ha,
//! seesaw_healthcheck and the shell use it, with the GKE sample cluster.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use seesaw_config::node_config::NodeConfig;
use seesaw_engine::daemon::access::AccessGroups;
use seesaw_engine::daemon::fake_ncc::FakeNcc;
use seesaw_engine::daemon::{self, Options, Running};
use seesaw_engine::notifier::{NotifierOptions, Source};
use seesaw_ipc::engine_proto as api;
use seesaw_ipc::{ClientOptions, EngineClient, connect_engine};
use std::sync::Arc;
use tokio::sync::oneshot;

const FIXTURES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../seesaw-config/tests/fixtures"
);

/// A running engine on a temporary socket.
struct Harness {
    dir: tempfile::TempDir,
    cluster: PathBuf,
    ncc: FakeNcc,
    running: Running,
    client: EngineClient,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), String>>,
}

impl Harness {
    async fn start(ncc: FakeNcc, dir: tempfile::TempDir) -> Harness {
        Harness::start_node(ncc, dir, |_| {}).await
    }

    /// Starts the engine with the fixture's seesaw.cfg as `adjust` changes
    /// it.
    async fn start_node(
        ncc: FakeNcc,
        dir: tempfile::TempDir,
        adjust: impl FnOnce(&mut NodeConfig),
    ) -> Harness {
        let cluster = dir.path().join("cluster.pb");
        if !cluster.exists() {
            std::fs::copy(Path::new(FIXTURES).join("cluster/gke-manual.pb"), &cluster).unwrap();
        }
        let (mut node, _) = NodeConfig::load(Path::new(FIXTURES).join("ini/gke-manual-seesaw.cfg"))
            .expect("fixture seesaw.cfg loads");
        adjust(&mut node);
        let socket = dir.path().join("engine/engine.sock");
        let options = Options {
            node,
            cluster_file: cluster.clone(),
            socket: socket.clone(),
            groups: AccessGroups::default(),
            // The sample names a config server; these tests read the disk
            // only and never ask DNS or the network.
            adjust_notifier: Some(Arc::new(|options: &mut NotifierOptions| {
                options.config_servers = Vec::new();
                options.source_after_start = Source::Disk;
            })),
        };
        let (stop, stopped) = oneshot::channel();
        let (ready, running) = oneshot::channel();
        let task = tokio::spawn(daemon::run(
            options,
            ncc.clone(),
            async move {
                let _ = stopped.await;
            },
            move |running| {
                let _ = ready.send(running);
            },
        ));
        let running = tokio::time::timeout(Duration::from_secs(20), running)
            .await
            .expect("engine started in time")
            .expect("engine started");
        let client = connect_engine(&socket, &ClientOptions::default())
            .await
            .expect("engine socket accepts connections");
        Harness {
            dir,
            cluster,
            ncc,
            running,
            client,
            stop: Some(stop),
            task,
        }
    }

    /// Waits until the worker has applied everything published so far.
    async fn settled(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let published = self.running.core.lock().unwrap().published_version();
            if self.running.worker.applied.load(Ordering::Relaxed) == published {
                return;
            }
            assert!(Instant::now() < deadline, "kernel worker did not settle");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Sends `state` as the result of every check the engine lists.
    async fn report(&mut self, state: api::CheckState) {
        let checks = self
            .client
            .healthchecks(api::Empty {})
            .await
            .unwrap()
            .into_inner()
            .checks;
        let notifications = checks
            .iter()
            .map(|check| api::HealthNotification {
                id: check.id,
                state: state as i32,
                ..Default::default()
            })
            .collect();
        self.client
            .health_state(api::HealthStateBatch { notifications })
            .await
            .unwrap();
    }

    /// Reports `state` for every check and waits for the worker to apply it.
    async fn report_all(&mut self, state: api::CheckState) {
        self.report(state).await;
        self.settled().await;
    }

    async fn stop(mut self) -> (FakeNcc, tempfile::TempDir) {
        self.stop.take().unwrap().send(()).unwrap();
        self.task.await.unwrap().expect("engine stops cleanly");
        (self.ncc, self.dir)
    }
}

fn fresh() -> (FakeNcc, tempfile::TempDir) {
    (FakeNcc::new(), tempfile::tempdir().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gke_cluster_served_when_healthy() {
    let (ncc, dir) = fresh();
    let mut engine = Harness::start(ncc, dir).await;
    engine.settled().await;
    assert!(
        engine.ncc.state().lb_initialised,
        "the LB interface was set up"
    );
    assert!(
        engine.ncc.state().services.is_empty(),
        "no service before any check passed"
    );

    let ha = engine
        .client
        .ha_config(api::Empty {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ha.local_addr, "100.115.222.130");
    assert_eq!(ha.remote_addr, "224.0.0.18");
    assert_eq!(ha.vrid, 128);
    assert!(ha.enabled);

    engine.report_all(api::CheckState::Healthy).await;
    // What the original programmed for this cluster
    // (golden/go-seesaw/system/master__ipvsadm_-Ln.txt).
    let programmed: Vec<(String, usize)> = engine
        .ncc
        .state()
        .services
        .values()
        .map(|(service, destinations)| (service.key.to_string(), destinations.len()))
        .collect();
    let expected = [
        ("TCP 100.115.222.143:443", 4),
        ("TCP 100.115.222.144:80", 4),
        ("TCP 100.115.222.144:443", 4),
        ("TCP 100.115.222.145:80", 3),
        ("TCP 100.115.222.145:443", 3),
        ("TCP 100.115.222.146:443", 4),
    ];
    let expected: Vec<(String, usize)> = expected
        .iter()
        .map(|(key, count)| (key.to_string(), *count))
        .collect();
    assert_eq!(programmed, expected);
    assert_eq!(engine.ncc.state().vips.len(), 4, "every VIP is up");

    engine
        .client
        .ha_state(api::HaStateRequest {
            state: api::HaState::Leader as i32,
        })
        .await
        .unwrap();
    engine.settled().await;
    assert!(
        engine.ncc.state().lb_up,
        "master brings the LB interface up"
    );

    let list = engine
        .client
        .vservers(api::Empty {})
        .await
        .unwrap()
        .into_inner();
    let control = list
        .vservers
        .iter()
        .find(|v| v.name == "admin-control-plane")
        .expect("admin-control-plane listed");
    assert!(control.enabled);
    assert!(control.services.iter().all(|s| s.healthy && s.active));

    engine.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_unchanged_or_broken_keeps_ipvs() {
    let (ncc, dir) = fresh();
    let mut engine = Harness::start(ncc, dir).await;
    engine.report_all(api::CheckState::Healthy).await;
    let before = engine.ncc.state().changes;
    let programmed = engine.ncc.state().services.clone();

    engine.client.config_reload(api::Empty {}).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    engine.settled().await;
    assert_eq!(
        engine.ncc.state().changes,
        before,
        "unchanged reload sends nothing"
    );

    let good = std::fs::read_to_string(&engine.cluster).unwrap();
    std::fs::write(
        &engine.cluster,
        good.replacen("vserver: <", "vserver: < oops", 1),
    )
    .unwrap();
    engine.client.config_reload(api::Empty {}).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        let status = engine
            .client
            .config_status(api::Empty {})
            .await
            .unwrap()
            .into_inner();
        if !status.last_errors.is_empty() {
            break status;
        }
        assert!(Instant::now() < deadline, "the bad config was not reported");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let first = &status.last_errors[0];
    assert!(
        first.contains("cluster.pb:") && first.split(':').nth(2).is_some(),
        "error names file, line and column: {first}"
    );
    engine.settled().await;
    assert_eq!(engine.ncc.state().services, programmed, "IPVS untouched");
    assert_eq!(engine.ncc.state().changes, before);

    engine.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_adopts_kernel_unchanged() {
    let (ncc, dir) = fresh();
    let mut engine = Harness::start(ncc, dir).await;
    engine.report_all(api::CheckState::Healthy).await;
    let (ncc, dir) = engine.stop().await;
    let programmed = ncc.state().services.clone();
    let vips = ncc.state().vips.clone();
    ncc.state().changes = 0;

    let mut engine = Harness::start(ncc, dir).await;
    engine.settled().await;
    // seesaw_healthcheck reports checks that have not run yet as UNKNOWN;
    // that must not take the adopted destinations out.
    engine.report_all(api::CheckState::Unknown).await;
    let state = engine.ncc.state().clone();
    assert_eq!(state.services, programmed, "IPVS kept as it was");
    assert_eq!(state.vips, vips, "VIPs kept");
    // The NCC cannot read iptables rules back, so the restarted engine
    // adds them again; the NCC treats that as a no-op. Nothing else goes.
    let rule_sets = state.rules.len() as u64;
    assert_eq!(state.changes, rule_sets, "only the rules are re-sent");
    engine.stop().await;
}

/// An anycast vserver on admin-1, added to the sample cluster.
const ANYCAST_VSERVER: &str = r#"
vserver: <
  name: "anycast-web"
  entry_address: <
    fqdn: "anycast-web"
    ipv4: "192.168.255.10/32"
  >
  rp: "ops@example.com"
  vserver_entry: <
    protocol: TCP
    port: 80
    scheduler: RR
    mode: DSR
    healthcheck: <
      type: HTTP
      port: 80
      send: "/"
    >
  >
  backend: <
    host: <
      fqdn: "admin-1"
      ipv4: "100.115.222.163/32"
    >
  >
>
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_withdraws_anycast_vips() {
    let (ncc, dir) = fresh();
    let sample =
        std::fs::read_to_string(Path::new(FIXTURES).join("cluster/gke-manual.pb")).unwrap();
    std::fs::write(dir.path().join("cluster.pb"), sample + ANYCAST_VSERVER).unwrap();
    let anycast = |node: &mut NodeConfig| node.anycast_enabled = true;
    let vip: std::net::IpAddr = "192.168.255.10".parse().unwrap();

    let mut engine = Harness::start_node(ncc, dir, anycast).await;
    engine.report_all(api::CheckState::Healthy).await;
    assert!(
        engine.ncc.state().advertised.contains(&vip),
        "the healthy anycast VIP is advertised"
    );

    let (ncc, dir) = engine.stop().await;
    let state = ncc.state().clone();
    assert!(
        state.advertised.is_empty(),
        "advertised after shutdown: {:?}",
        state.advertised
    );
    assert!(
        state.vips.iter().any(|configured| configured.ip == vip),
        "the anycast VIP stays configured"
    );
    assert_eq!(state.services.len(), 7, "IPVS stays as it was");

    // A restarted engine adopts the services it finds and advertises the
    // VIP again before any check has run.
    let engine = Harness::start_node(ncc, dir, anycast).await;
    engine.settled().await;
    assert!(
        engine.ncc.state().advertised.contains(&vip),
        "the restarted engine advertises the VIP again"
    );
    engine.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_withdraws_vip_of_removed_vserver() {
    let (ncc, dir) = fresh();
    ncc.state().report_advertised = true;
    let sample =
        std::fs::read_to_string(Path::new(FIXTURES).join("cluster/gke-manual.pb")).unwrap();
    std::fs::write(
        dir.path().join("cluster.pb"),
        sample.clone() + ANYCAST_VSERVER,
    )
    .unwrap();
    let anycast = |node: &mut NodeConfig| node.anycast_enabled = true;
    let vip: std::net::IpAddr = "192.168.255.10".parse().unwrap();

    let mut engine = Harness::start_node(ncc, dir, anycast).await;
    engine.report_all(api::CheckState::Healthy).await;
    assert!(engine.ncc.state().advertised.contains(&vip));

    // The engine is killed before it can withdraw, and its vserver leaves
    // cluster.pb while it is down: bgpd still advertises the VIP.
    let (ncc, dir) = engine.stop().await;
    ncc.state().advertised.insert(vip);
    std::fs::write(dir.path().join("cluster.pb"), sample).unwrap();

    let engine = Harness::start_node(ncc, dir, anycast).await;
    engine.settled().await;
    let state = engine.ncc.state().clone();
    assert!(
        !state.advertised.contains(&vip),
        "the removed vserver's VIP is still advertised"
    );
    assert!(
        !state.vips.iter().any(|configured| configured.ip == vip),
        "the removed vserver's VIP is still configured"
    );
    engine.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overrides_and_ncc_failures_apply() {
    let (ncc, dir) = fresh();
    let mut engine = Harness::start(ncc, dir).await;
    engine.report_all(api::CheckState::Healthy).await;
    let with_all = engine.ncc.state().services.len();

    engine
        .client
        .override_vserver(api::VserverOverride {
            vserver: "admin-control-plane".into(),
            state: api::OverrideState::Disabled as i32,
        })
        .await
        .unwrap();
    engine.settled().await;
    assert!(
        engine.ncc.state().services.len() < with_all,
        "the vserver's services left"
    );

    engine
        .client
        .override_vserver(api::VserverOverride {
            vserver: "admin-control-plane".into(),
            state: api::OverrideState::Default as i32,
        })
        .await
        .unwrap();
    engine.report_all(api::CheckState::Healthy).await;
    assert_eq!(engine.ncc.state().services.len(), with_all);

    // A failing NCC is retried until it works again.
    engine.ncc.state().fail_next = 2;
    engine.report_all(api::CheckState::Unhealthy).await;
    assert!(
        engine.ncc.state().services.is_empty(),
        "unhealthy backends leave"
    );
    assert!(engine.running.worker.failures.load(Ordering::Relaxed) >= 1);

    engine.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_reaches_next_ha_update() {
    let (ncc, dir) = fresh();
    let mut engine = Harness::start(ncc, dir).await;
    let error = engine.client.failover(api::Empty {}).await.unwrap_err();
    assert!(error.message().contains("Node is not master"), "{error}");

    let leader = api::HaStatus {
        state: api::HaState::Leader as i32,
        ..Default::default()
    };
    engine.client.ha_update(leader).await.unwrap();
    engine.client.failover(api::Empty {}).await.unwrap();
    let reply = engine.client.ha_update(leader).await.unwrap().into_inner();
    assert!(reply.failover_requested);
    let reply = engine.client.ha_update(leader).await.unwrap().into_inner();
    assert!(!reply.failover_requested, "the request is consumed once");

    let status = engine
        .client
        .ha_status_get(api::Empty {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(status.state(), api::HaState::Leader);
    engine.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lb_failure_does_not_block_ipvs() {
    let (ncc, dir) = fresh();
    let mut engine = Harness::start(ncc, dir).await;
    engine.ncc.state().fail_lb = true;
    engine
        .client
        .ha_state(api::HaStateRequest {
            state: api::HaState::Leader as i32,
        })
        .await
        .unwrap();
    engine.report(api::CheckState::Healthy).await;

    let deadline = Instant::now() + Duration::from_secs(20);
    while engine.ncc.state().services.len() < 6 {
        assert!(
            Instant::now() < deadline,
            "IPVS waited for the LB interface"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        !engine.ncc.state().lb_up,
        "the LB interface call kept failing"
    );
    assert!(engine.running.worker.failures.load(Ordering::Relaxed) >= 1);

    engine.ncc.state().fail_lb = false;
    let deadline = Instant::now() + Duration::from_secs(20);
    while !engine.ncc.state().lb_up {
        assert!(
            Instant::now() < deadline,
            "the LB interface call was not retried"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    engine.stop().await;
}

/// With anycast enabled and BGP settings in cluster.pb, the engine sends
/// bgpd the neighbors, advertises the service anycast address until it
/// stops, and lists bgpd's neighbors for the shell's `show bgp neighbors`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bgp_neighbors_and_service_anycast() {
    let (ncc, dir) = fresh();
    let gke = std::fs::read_to_string(Path::new(FIXTURES).join("cluster/gke-manual.pb")).unwrap();
    let bgp = "bgp_remote_asn: 64513\n\
               bgp_peer: < fqdn: \"router1.\" ipv4: \"100.115.222.1/24\" >\n";
    std::fs::write(dir.path().join("cluster.pb"), format!("{gke}{bgp}")).unwrap();
    let neighbor = api::BgpNeighbor {
        ip: "100.115.222.1".to_owned(),
        router_id: "100.115.222.1".to_owned(),
        asn: 64513,
        state: "Established".to_owned(),
        uptime_ms: 34_000,
        ..api::BgpNeighbor::default()
    };
    ncc.state().bgp_neighbors = vec![neighbor.clone()];
    let service: std::net::IpAddr = "192.168.255.254".parse().unwrap();
    let mut engine = Harness::start_node(ncc, dir, |node| {
        node.anycast_enabled = true;
        node.service_anycast_ipv4 = vec!["192.168.255.254".parse().unwrap()];
    })
    .await;

    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let listed = engine
            .client
            .bgp_neighbors(api::Empty {})
            .await
            .expect("BgpNeighbors")
            .into_inner()
            .neighbors;
        if !listed.is_empty() {
            assert_eq!(listed, [neighbor]);
            break;
        }
        assert!(Instant::now() < deadline, "no BGP neighbor listed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let peers = engine.ncc.state().bgp_peers.clone().expect("BgpApplyPeers");
    assert_eq!(peers.local_asn, 64512);
    assert_eq!(peers.remote_asn, 64513);
    let addresses: Vec<String> = peers.peers.iter().map(ToString::to_string).collect();
    assert_eq!(addresses, ["100.115.222.1"]);
    assert_eq!(peers.router_id.to_string(), "100.115.222.130");
    assert!(engine.ncc.state().advertised.contains(&service));

    // At shutdown the service anycast address is withdrawn with the VIPs.
    let (ncc, _dir) = engine.stop().await;
    assert!(
        !ncc.state().advertised.contains(&service),
        "{:?}",
        ncc.state().advertised
    );
}
