//! The daemon's core and kernel worker against the fake NCC: random
//! configs, check results, overrides and HA states, with NCC calls failing
//! in between. Once the worker has settled, the fake kernel must hold what
//! the engine wants, whether the worker got there by sending the engine's
//! changes or by reading the kernel back after a failure.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use proptest::prelude::*;
use seesaw_engine::checks::CheckState;
use seesaw_engine::daemon::core::{ConfigInfo, Core};
use seesaw_engine::daemon::fake_ncc::FakeNcc;
use seesaw_engine::daemon::worker::WorkerStatus;
use seesaw_engine::overrides::{Override, OverrideState};
use seesaw_vrrp::HaState;

mod common;

use common::fake_node::{CLUSTER_HEADER, parse, start_core};

const VSERVERS: usize = 3;
const BACKENDS: usize = 3;

/// One vserver's backends as (present, weight).
type Backends = [(bool, u8); BACKENDS];

/// Generates cluster.pb text for the vservers that are present.
fn cluster_text(vservers: &[Option<Backends>]) -> String {
    let mut text = String::from(CLUSTER_HEADER);
    for (v, backends) in vservers.iter().enumerate() {
        let Some(backends) = backends else {
            continue;
        };
        writeln!(
            text,
            "vserver: < name: \"vs-{v}\" entry_address: < fqdn: \"vs-{v}.\" ipv4: \"10.0.0.{}/32\" > \
             rp: \"ops@example.com\" vserver_entry: < protocol: TCP port: 80 scheduler: WLC mode: DSR \
             healthcheck: < type: HTTP port: 8080 mode: PLAIN send: \"/healthz\" > >",
            v + 1
        )
        .unwrap();
        for (b, (present, weight)) in backends.iter().enumerate() {
            if !present {
                continue;
            }
            // Backend 0 is the same host in every vserver, so its probe is
            // shared.
            let (name, address) = if b == 0 {
                ("shared".to_string(), "10.128.0.1".to_string())
            } else {
                (format!("b-{v}-{b}"), format!("10.128.{}.{}", v + 1, b + 1))
            };
            writeln!(
                text,
                "  backend: < host: < fqdn: \"{name}.\" ipv4: \"{address}/32\" > weight: {weight} >"
            )
            .unwrap();
        }
        text.push_str(">\n");
    }
    text
}

#[derive(Debug, Clone)]
enum Step {
    Config(Vec<Option<Backends>>),
    /// The same result for the probes whose index modulo 3 is in the set.
    Results(u8, CheckState),
    Disable(usize, bool),
    Ha(bool),
    /// The next this many NCC calls fail.
    Fail(u32),
    /// Waits for the worker to apply everything published so far.
    Settle,
}

fn step() -> impl Strategy<Value = Step> {
    let backends = proptest::array::uniform3((any::<bool>(), 0..3u8));
    let config = proptest::collection::vec(proptest::option::weighted(0.8, backends), VSERVERS);
    let state = prop_oneof![
        3 => Just(CheckState::Healthy),
        1 => Just(CheckState::Unhealthy)
    ];
    prop_oneof![
        3 => config.prop_map(Step::Config),
        4 => (1..8u8, state).prop_map(|(set, state)| Step::Results(set, state)),
        1 => (0..VSERVERS, any::<bool>()).prop_map(|(v, off)| Step::Disable(v, off)),
        1 => any::<bool>().prop_map(Step::Ha),
        2 => (1..4u32).prop_map(Step::Fail),
        2 => Just(Step::Settle),
    ]
}

struct Harness {
    core: Core,
    ncc: FakeNcc,
    status: Arc<WorkerStatus>,
}

impl Harness {
    fn new() -> Self {
        let ncc = FakeNcc::new();
        let (core, status) = start_core(ncc.clone());
        Harness { core, ncc, status }
    }

    /// Waits, in virtual time, for the worker to apply the last target.
    async fn settle(&self) {
        let version = self.core.published_version();
        for _ in 0..10_000 {
            if self.status.applied.load(Ordering::Relaxed) == version {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "the worker did not apply version {version}: {:?}",
            self.status.last_error()
        );
    }

    fn run(&mut self, step: Step) {
        match step {
            Step::Config(vservers) => {
                let cluster = parse(&cluster_text(&vservers));
                self.core.apply_config(cluster, ConfigInfo::default());
            }
            Step::Results(set, state) => {
                let results: Vec<_> = self
                    .core
                    .probes
                    .keys()
                    .enumerate()
                    .filter(|(index, _)| set & (1 << (index % 3)) != 0)
                    .map(|(_, id)| (*id, state))
                    .collect();
                self.core.check_results(results);
            }
            Step::Disable(v, off) => {
                let state = if off {
                    OverrideState::Disabled
                } else {
                    OverrideState::Default
                };
                self.core.override_state(Override::Vserver {
                    vserver: format!("vs-{v}"),
                    state,
                });
            }
            Step::Ha(leader) => {
                let state = if leader {
                    HaState::Leader
                } else {
                    HaState::Backup
                };
                self.core.ha_state(state);
            }
            Step::Fail(calls) => self.ncc.state().fail_next = calls,
            Step::Settle => unreachable!("handled by the caller"),
        }
    }

    /// Checks that the fake kernel contains what the engine wants. Rules are
    /// a superset: the NCC cannot read them back, so after a failure the
    /// worker re-adds every wanted rule set but cannot see stale ones.
    fn check(&self) -> Result<(), TestCaseError> {
        let desired = self.core.engine.desired();
        let kernel = self.ncc.state();
        let services: Vec<_> = kernel
            .services
            .iter()
            .map(|(id, (service, destinations))| (*id, service.clone(), destinations.clone()))
            .collect();
        let wanted: Vec<_> = desired
            .services
            .iter()
            .map(|(id, service)| (*id, service.service.clone(), service.destinations.clone()))
            .collect();
        prop_assert_eq!(services, wanted);
        prop_assert_eq!(&kernel.vips, &desired.vips);
        for (key, rules) in &desired.rules {
            prop_assert_eq!(kernel.rules.get(key), Some(rules));
        }
        prop_assert_eq!(&kernel.advertised, &desired.advertised);
        Ok(())
    }
}

async fn scenario(steps: Vec<Step>) -> Result<(), TestCaseError> {
    let mut harness = Harness::new();
    for step in steps {
        match step {
            Step::Settle => {
                harness.settle().await;
                harness.check()?;
            }
            step => harness.run(step),
        }
        // Lets the worker run between some steps and not others, so
        // changes reach it one by one or several at once.
        tokio::task::yield_now().await;
    }
    harness.ncc.state().fail_next = 0;
    harness.settle().await;
    harness.check()
}

fn run_scenario(steps: Vec<Step>) -> Result<(), TestCaseError> {
    paused_runtime().block_on(scenario(steps))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn kernel_follows_engine(steps in proptest::collection::vec(step(), 1..25)) {
        run_scenario(steps)?;
    }
}

#[test]
fn failure_during_changes_recovers() {
    let all = Some([(true, 1), (true, 1), (true, 1)]);
    let fewer = Some([(true, 2), (false, 1), (true, 1)]);
    run_scenario(vec![
        Step::Config(vec![all, all, None]),
        Step::Results(7, CheckState::Healthy),
        Step::Settle,
        Step::Fail(1),
        Step::Config(vec![fewer, None, all]),
        Step::Results(7, CheckState::Healthy),
        Step::Disable(0, true),
        Step::Settle,
    ])
    .unwrap();
}

#[test]
fn one_weight_change_sends_one_change() {
    paused_runtime().block_on(async {
        let mut harness = Harness::new();
        let all = Some([(true, 1), (true, 1), (true, 1)]);
        harness.run(Step::Config(vec![all, all, all]));
        harness.run(Step::Results(7, CheckState::Healthy));
        harness.settle().await;
        harness.check().unwrap();

        let before = harness.ncc.state().changes;
        harness.run(Step::Config(vec![all, all, all]));
        harness.settle().await;
        assert_eq!(harness.ncc.state().changes, before, "unchanged reload");

        let heavier = Some([(true, 1), (true, 2), (true, 1)]);
        harness.run(Step::Config(vec![all, heavier, all]));
        harness.settle().await;
        assert_eq!(harness.ncc.state().changes, before + 1, "one weight");
        harness.check().unwrap();
    });
}

#[test]
fn many_vservers_coming_up_take_a_few_calls() {
    paused_runtime().block_on(async {
        let mut harness = Harness::new();
        let all = Some([(true, 1), (true, 1), (true, 1)]);
        harness.run(Step::Config(vec![all; 40]));
        harness.run(Step::Ha(true));
        harness.settle().await;
        let before = harness.ncc.state().calls;

        harness.run(Step::Results(7, CheckState::Healthy));
        harness.settle().await;
        harness.check().unwrap();
        assert_eq!(harness.ncc.state().vips.len(), 40);
        // The VIPs, the iptables rules and the IPVS changes each go in one
        // batch call, not one call per VIP or vserver.
        let calls = harness.ncc.state().calls - before;
        assert!(calls <= 3, "{calls} NCC calls for 40 vservers");
    });
}

/// cluster.pb with VLAN 100, on which the node has `address`/24, and a
/// vserver whose VIP is on that VLAN.
fn vlan_cluster(address: &str) -> String {
    format!(
        "{CLUSTER_HEADER}\
         vlan: < vlan_id: 100 host: < fqdn: \"node-a-vlan100.\" ipv4: \"{address}/24\" > >
         vserver: < name: \"vs-vlan\" entry_address: < fqdn: \"vs-vlan.\" ipv4: \"192.0.2.10/32\" > \
         rp: \"ops@example.com\" vserver_entry: < protocol: TCP port: 80 scheduler: WLC mode: DSR \
         healthcheck: < type: HTTP port: 8080 mode: PLAIN send: \"/healthz\" > > \
         backend: < host: < fqdn: \"b.\" ipv4: \"192.0.2.20/32\" > > >\n"
    )
}

#[test]
fn vlan_survives_reads_and_readdressing() {
    paused_runtime().block_on(async {
        let mut harness = Harness::new();
        let vlan_address = |harness: &Harness| {
            let state = harness.ncc.state();
            state.vlans.get(&100).and_then(|vlan| vlan.host.ipv4)
        };
        let vip = |harness: &Harness| {
            let state = harness.ncc.state();
            let address: std::net::IpAddr = "192.0.2.10".parse().unwrap();
            state.vips.iter().any(|vip| vip.ip == address)
        };
        harness
            .core
            .apply_config(parse(&vlan_cluster("192.0.2.2")), ConfigInfo::default());
        harness.run(Step::Results(7, CheckState::Healthy));
        harness.settle().await;
        harness.check().unwrap();
        assert_eq!(
            vlan_address(&harness),
            Some("192.0.2.2/24".parse().unwrap())
        );
        assert!(vip(&harness), "the VIP is up");

        // A failed call makes the worker read the kernel back, where the
        // NCC lists the node's address on the VLAN with the VIPs.
        harness.ncc.state().fail_next = 1;
        harness.run(Step::Ha(true));
        harness.settle().await;
        harness.check().unwrap();
        assert_eq!(
            vlan_address(&harness),
            Some("192.0.2.2/24".parse().unwrap()),
            "the VLAN keeps the node's address after a read-back"
        );

        harness
            .core
            .apply_config(parse(&vlan_cluster("192.0.2.3")), ConfigInfo::default());
        harness.settle().await;
        harness.check().unwrap();
        assert_eq!(
            vlan_address(&harness),
            Some("192.0.2.3/24".parse().unwrap()),
            "the VLAN interface has the new address"
        );
        assert!(vip(&harness), "the VIP is back on the re-created VLAN");
    });
}

/// Builds a current-thread runtime whose clock starts paused, so that the
/// worker's retry pauses pass in virtual time.
fn paused_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .expect("tokio runtime")
}
