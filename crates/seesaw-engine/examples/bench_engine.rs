//! Engine time from config load to the last NCC call, against the fake
//! NCC that counts operations (docs/benchmarks.md).
//!
//! Usage: `bench_engine [VSERVERS...]` (default 1000 10000). For each
//! count it generates a cluster of that many vservers with 5 backends and
//! one HTTP check each, then measures, through the daemon's core and its
//! kernel worker:
//! - parse: parsing and checking the text alone;
//! - cold: apply the parsed config, mark every check healthy, and program
//!   everything;
//! - one-vserver change: one backend's weight changes, from the parsed
//!   config (apply only) and from the text (with parsing);
//! - unchanged reload: the same config again, parsed and from the text;
//! - one check result: one backend of one vserver turns unhealthy or
//!   healthy again.
//!
//! "Last NCC call" is the time from the start of the step to the end of
//! the last NCC call that changed something. "Settled" is the time until
//! the core has returned and the worker has applied the step's target.
//! Steps after the cold start run 5 times and show the median.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use seesaw_config::model::{Vip, Vlan};
use seesaw_engine::checks::{CheckState, ProbeId};
use seesaw_engine::daemon::core::{ConfigInfo, Core};
use seesaw_engine::daemon::fake_ncc::FakeNcc;
use seesaw_engine::daemon::ncc::{
    BgpPeers, BgpPeersReport, IpvsChange, LbOperation, Ncc, Observed, Result,
};
use seesaw_engine::daemon::worker::WorkerStatus;
use seesaw_engine::kernel::VserverRules;
use seesaw_ipc::engine_proto as api;
use seesaw_ipvs::{Destination, Service};

#[path = "../tests/common/fake_node.rs"]
mod fake_node;

use fake_node::{CLUSTER_HEADER, parse, start_core};

const RUNS: usize = 5;

fn address(base: u32, index: u32) -> Ipv4Addr {
    Ipv4Addr::from(base + index)
}

/// Generates cluster.pb text; `weight_bump` changes the first vserver's
/// first backend.
fn cluster_text(vservers: u32, weight_bump: bool) -> String {
    let mut text = String::from(CLUSTER_HEADER);
    let vip_base = u32::from(Ipv4Addr::new(10, 0, 0, 1));
    let backend_base = u32::from(Ipv4Addr::new(10, 128, 0, 1));
    for v in 0..vservers {
        let vip = address(vip_base, v);
        writeln!(
            text,
            "vserver: < name: \"vs-{v}\" entry_address: < fqdn: \"vs-{v}.\" ipv4: \"{vip}/32\" > \
             rp: \"ops@example.com\" vserver_entry: < protocol: TCP port: 80 scheduler: WLC mode: DSR \
             healthcheck: < type: HTTP port: 8080 mode: PLAIN send: \"/healthz\" > >"
        )
        .unwrap();
        for b in 0..5 {
            let ip = address(backend_base, v * 5 + b);
            let weight = if weight_bump && v == 0 && b == 0 {
                2
            } else {
                1
            };
            writeln!(
                text,
                "  backend: < host: < fqdn: \"b-{v}-{b}.\" ipv4: \"{ip}/32\" > weight: {weight} >"
            )
            .unwrap();
        }
        text.push_str(">\n");
    }
    text
}

/// The fake NCC, noting when the last call that changes something ended.
#[derive(Clone)]
struct TimedNcc {
    fake: FakeNcc,
    last_change: Arc<Mutex<Option<Instant>>>,
}

impl TimedNcc {
    fn note<T>(&self, result: Result<T>) -> Result<T> {
        *self.last_change.lock().unwrap() = Some(Instant::now());
        result
    }
}

impl Ncc for TimedNcc {
    async fn lb(&self, operation: LbOperation) -> Result<()> {
        self.note(self.fake.lb(operation).await)
    }

    async fn ipvs(&self, changes: Vec<IpvsChange>) -> Result<Vec<(usize, String)>> {
        self.note(self.fake.ipvs(changes).await)
    }

    async fn vips(&self, changes: Vec<(Vip, bool)>) -> Result<Vec<(usize, String)>> {
        self.note(self.fake.vips(changes).await)
    }

    async fn rules(&self, rules: VserverRules, add: bool) -> Result<()> {
        self.note(self.fake.rules(rules, add).await)
    }

    async fn prepare(&self) -> Result<bool> {
        self.note(self.fake.prepare().await)
    }

    async fn rules_batch(
        &self,
        changes: Vec<(VserverRules, bool)>,
    ) -> Result<Vec<(usize, String)>> {
        self.note(self.fake.rules_batch(changes).await)
    }

    async fn bgp(&self, ip: IpAddr, advertise: bool) -> Result<()> {
        self.note(self.fake.bgp(ip, advertise).await)
    }

    async fn bgp_peers(&self, peers: BgpPeers) -> Result<BgpPeersReport> {
        self.note(self.fake.bgp_peers(peers).await)
    }

    async fn bgp_neighbors(&self) -> Result<Vec<api::BgpNeighbor>> {
        self.note(self.fake.bgp_neighbors().await)
    }

    async fn add_vlan(&self, vlan: Vlan) -> Result<()> {
        self.note(self.fake.add_vlan(vlan).await)
    }

    async fn delete_vlan(&self, id: u16) -> Result<()> {
        self.note(self.fake.delete_vlan(id).await)
    }

    async fn gratuitous_arp(
        &self,
        targets: std::collections::BTreeMap<String, Vec<IpAddr>>,
    ) -> Result<()> {
        self.fake.gratuitous_arp(targets).await
    }

    async fn ipvs_services(&self) -> Result<Vec<(Service, Vec<Destination>)>> {
        self.fake.ipvs_services().await
    }

    async fn observe(&self) -> Result<Observed> {
        self.fake.observe().await
    }
}

/// One step's figures.
struct Measured {
    last_call: Option<Duration>,
    settled: Duration,
    changes: u64,
}

struct Bench {
    core: Core,
    ncc: TimedNcc,
    status: Arc<WorkerStatus>,
}

impl Bench {
    fn new() -> Self {
        let ncc = TimedNcc {
            fake: FakeNcc::new(),
            last_change: Arc::default(),
        };
        let (core, status) = start_core(ncc.clone());
        Bench { core, ncc, status }
    }

    /// Waits for the worker to apply the last published target.
    async fn settle(&self) {
        let version = self.core.published_version();
        while self.status.applied.load(Ordering::Relaxed) != version {
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
    }

    /// Runs `step` and waits for the worker to settle.
    async fn measure(&mut self, step: impl FnOnce(&mut Core)) -> Measured {
        *self.ncc.last_change.lock().unwrap() = None;
        let before = self.ncc.fake.state().changes;
        let start = Instant::now();
        step(&mut self.core);
        self.settle().await;
        let settled = start.elapsed();
        let last_call = self.ncc.last_change.lock().unwrap().map(|end| end - start);
        Measured {
            last_call,
            settled,
            changes: self.ncc.fake.state().changes - before,
        }
    }

    /// Runs `step` [`RUNS`] times and returns the run with the median
    /// time to the last NCC call (or to settling, without calls).
    async fn median(&mut self, mut step: impl FnMut(&mut Core, usize)) -> Measured {
        let mut runs = Vec::new();
        for run in 0..RUNS {
            runs.push(self.measure(|core| step(core, run)).await);
        }
        runs.sort_by_key(|m| m.last_call.unwrap_or(m.settled));
        runs.swap_remove(RUNS / 2)
    }

    /// Returns the probe of the first backend of vserver vs-0.
    fn first_probe(&self) -> ProbeId {
        let first = Ipv4Addr::new(10, 128, 0, 1);
        self.core
            .probes
            .values()
            .find(|probe| probe.host == IpAddr::V4(first))
            .expect("probe of vs-0's first backend")
            .id
    }
}

fn ms(duration: Duration) -> String {
    format!("{:.1} ms", duration.as_secs_f64() * 1000.0)
}

fn row(count: u32, step: &str, measured: &Measured) {
    let last_call = measured.last_call.map_or("no call".to_string(), ms);
    println!(
        "| {count} | {step} | {last_call} | {} | {} |",
        ms(measured.settled),
        measured.changes
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let counts: Vec<u32> = std::env::args()
        .skip(1)
        .map(|arg| arg.parse().expect("vserver count"))
        .collect();
    let counts = if counts.is_empty() {
        vec![1000, 10000]
    } else {
        counts
    };
    println!("| Vservers | Step | Last NCC call | Settled | NCC changes |");
    println!("|---|---|---|---|---|");
    for count in counts {
        let texts = [cluster_text(count, false), cluster_text(count, true)];
        let start = Instant::now();
        let parsed = [parse(&texts[0]), parse(&texts[1])];
        let parse_time = start.elapsed() / 2;
        println!(
            "| {count} | parse and check the text | | {} | |",
            ms(parse_time)
        );

        let mut bench = Bench::new();
        let cold = bench
            .measure(|core| {
                core.apply_config(parsed[0].clone(), ConfigInfo::default());
                let probes: Vec<_> = core.probes.keys().copied().collect();
                core.check_results(probes.iter().map(|id| (*id, CheckState::Healthy)));
            })
            .await;
        row(count, "cold start, all healthy (apply only)", &cold);

        // Each run flips the weight, so every run is a change.
        let change = bench
            .median(|core, run| {
                let cluster = parsed[(run + 1) % 2].clone();
                core.apply_config(cluster, ConfigInfo::default());
            })
            .await;
        row(count, "one-vserver change (apply only)", &change);

        let change = bench
            .median(|core, run| {
                let cluster = parse(&texts[run % 2]);
                core.apply_config(cluster, ConfigInfo::default());
            })
            .await;
        row(count, "one-vserver change (with parsing)", &change);

        // The last run above applied this text.
        let current_index = (RUNS - 1) % 2;
        let current = parsed[current_index].clone();
        let reload = bench
            .median(|core, _| core.apply_config(current.clone(), ConfigInfo::default()))
            .await;
        row(count, "unchanged reload (apply only)", &reload);

        let reload = bench
            .median(|core, _| {
                let cluster = parse(&texts[current_index]);
                core.apply_config(cluster, ConfigInfo::default());
            })
            .await;
        row(count, "unchanged reload (with parsing)", &reload);

        let probe = bench.first_probe();
        let result = bench
            .median(|core, run| {
                let state = if run % 2 == 0 {
                    CheckState::Unhealthy
                } else {
                    CheckState::Healthy
                };
                core.check_results([(probe, state)]);
            })
            .await;
        row(count, "one check result", &result);
    }
}
