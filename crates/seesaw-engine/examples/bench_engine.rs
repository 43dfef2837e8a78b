//! Engine time from config load to the last NCC call, against the fake
//! NCC that counts operations (docs/benchmarks.md).
//!
//! Usage: `bench_engine [VSERVERS...]` (default 1000 10000). For each
//! count it generates a cluster of that many vservers with 5 backends and
//! one HTTP check each, then measures, through the daemon's core and its
//! kernel worker:
//! - cold: parse and check the text, apply it, mark every check healthy,
//!   and program everything;
//! - one-vserver change: one backend's weight changes;
//! - unchanged reload: the same text again.

use std::fmt::Write as _;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime};

use seesaw_config::cluster::{NodeContext, load_cluster_text};
use seesaw_config::node_config::NodeConfig;
use seesaw_engine::checks::CheckState;
use seesaw_engine::daemon::core::{ConfigInfo, Core};
use seesaw_engine::daemon::fake_ncc::FakeNcc;
use seesaw_engine::daemon::ncc::Observed;
use seesaw_engine::daemon::worker::{self, Target, WorkerStatus};
use tokio::sync::watch;

const NODE: Ipv4Addr = Ipv4Addr::new(10, 255, 0, 2);

fn address(base: u32, index: u32) -> Ipv4Addr {
    Ipv4Addr::from(base + index)
}

/// Generates cluster.pb text; `weight_bump` changes the first vserver's
/// first backend.
fn cluster_text(vservers: u32, weight_bump: bool) -> String {
    let mut text = String::from(
        "seesaw_vip: < fqdn: \"seesaw-vip.\" ipv4: \"10.255.0.1/8\" status: PRODUCTION >\n\
         node: < fqdn: \"node-a.\" ipv4: \"10.255.0.2/8\" >\n\
         node: < fqdn: \"node-b.\" ipv4: \"10.255.0.3/8\" >\n",
    );
    let vip_base = u32::from(Ipv4Addr::new(10, 0, 0, 1));
    let backend_base = u32::from(Ipv4Addr::new(10, 128, 0, 1));
    for v in 0..vservers {
        let vip = address(vip_base, v);
        write!(
            text,
            "vserver: < name: \"vs-{v}\" entry_address: < fqdn: \"vs-{v}.\" ipv4: \"{vip}/32\" > \
             rp: \"ops@example.com\" vserver_entry: < protocol: TCP port: 80 scheduler: WLC mode: DSR \
             healthcheck: < type: HTTP port: 8080 mode: PLAIN send: \"/healthz\" > >\n"
        )
        .unwrap();
        for b in 0..5 {
            let ip = address(backend_base, v * 5 + b);
            let weight = if weight_bump && v == 0 && b == 0 { 2 } else { 1 };
            write!(
                text,
                "  backend: < host: < fqdn: \"b-{v}-{b}.\" ipv4: \"{ip}/32\" > weight: {weight} >\n"
            )
            .unwrap();
        }
        text.push_str(">\n");
    }
    text
}

fn node_config() -> NodeConfig {
    let text = "[cluster]\nname = bench\nnode_ipv4 = 10.255.0.2\npeer_ipv4 = 10.255.0.3\n\
                vip_ipv4 = 10.255.0.1\nanycast_enabled = false\n";
    NodeConfig::parse("seesaw.cfg", text).expect("bench seesaw.cfg").0
}

fn context() -> NodeContext {
    NodeContext {
        node_config_file: "seesaw.cfg".into(),
        site: "bench".into(),
        cluster_vip_ipv4: Some(Ipv4Addr::new(10, 255, 0, 1)),
        cluster_vip_ipv6: None::<Ipv6Addr>,
        node_ipv4: Some(NODE),
        node_ipv6: None,
    }
}

struct Bench {
    core: Core,
    ncc: FakeNcc,
    status: Arc<WorkerStatus>,
}

impl Bench {
    fn new() -> Self {
        let (target_tx, target_rx) = watch::channel(Target::default());
        let ncc = FakeNcc::new();
        let status = Arc::new(WorkerStatus::default());
        tokio::spawn(worker::run(
            ncc.clone(),
            Observed::default(),
            target_rx,
            status.clone(),
        ));
        Bench {
            core: Core::new(node_config(), SystemTime::now(), target_tx),
            ncc,
            status,
        }
    }

    /// Waits for the worker to apply the last published target.
    async fn settle(&self) {
        let version = self.core.published_version();
        while self.status.applied.load(Ordering::Relaxed) != version {
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
    }

    fn apply(&mut self, text: &str) {
        let loaded = load_cluster_text(Path::new("cluster.pb"), text, &context())
            .unwrap_or_else(|rejected| panic!("bench config rejected: {:?}", rejected.0.first()));
        self.core
            .apply_config(Arc::new(loaded.cluster), ConfigInfo::default());
    }

    fn changes(&self) -> u64 {
        self.ncc.state().changes
    }
}

fn ms(duration: Duration) -> String {
    format!("{:.1} ms", duration.as_secs_f64() * 1000.0)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let counts: Vec<u32> = std::env::args()
        .skip(1)
        .map(|arg| arg.parse().expect("vserver count"))
        .collect();
    let counts = if counts.is_empty() { vec![1000, 10000] } else { counts };
    println!("| Vservers | Step | Time | NCC changes |");
    println!("|---|---|---|---|");
    for count in counts {
        let text = cluster_text(count, false);
        let changed = cluster_text(count, true);
        let mut bench = Bench::new();

        let start = Instant::now();
        bench.apply(&text);
        let probes: Vec<_> = bench.core.probes.keys().copied().collect();
        bench
            .core
            .check_results(probes.iter().map(|id| (*id, CheckState::Healthy)));
        bench.settle().await;
        let cold = start.elapsed();
        let cold_changes = bench.changes();
        println!("| {count} | cold start, all healthy | {} | {cold_changes} |", ms(cold));

        let before = bench.changes();
        let start = Instant::now();
        bench.apply(&changed);
        bench.settle().await;
        println!(
            "| {count} | one-vserver change (load and apply) | {} | {} |",
            ms(start.elapsed()),
            bench.changes() - before
        );

        let loaded = load_cluster_text(Path::new("cluster.pb"), &text, &context()).unwrap();
        let cluster = Arc::new(loaded.cluster);
        let before = bench.changes();
        let start = Instant::now();
        bench.core.apply_config(cluster, ConfigInfo::default());
        bench.settle().await;
        println!(
            "| {count} | one-vserver change (apply only) | {} | {} |",
            ms(start.elapsed()),
            bench.changes() - before
        );

        let before = bench.changes();
        let start = Instant::now();
        bench.apply(&text);
        bench.settle().await;
        println!(
            "| {count} | unchanged reload | {} | {} |",
            ms(start.elapsed()),
            bench.changes() - before
        );
    }
}
