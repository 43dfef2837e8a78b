//! Fixture tests of the vserver state machine: a model and events in,
//! actions and state out.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use proptest::prelude::*;
use seesaw_config::model::{
    Backend, ForwardingMode, HealthcheckMode, HealthcheckType, Host, HostStatus, Protocol,
    Scheduler, Vip, VipType, Vserver, VserverEntry,
};
use seesaw_engine::checks::CheckState;
use seesaw_engine::kernel::{Action, Family, KernelState, ServiceId, apply, diff};
use seesaw_engine::overrides::{Override, OverrideState};
use seesaw_engine::reconcile::{ObservedState, reconcile};
use seesaw_engine::{Engine, EngineOptions, Event};

mod common;

use common::check;

const NAME: &str = "dns.resolver@au-syd";

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

fn entry(port: u16, protocol: Protocol, checks: &[&str]) -> VserverEntry {
    VserverEntry {
        port,
        protocol,
        scheduler: Scheduler::Wrr,
        mode: ForwardingMode::Dsr,
        persistence: Duration::ZERO,
        one_packet: false,
        high_watermark: 0.0,
        low_watermark: 0.0,
        lower_threshold: 0,
        upper_threshold: 0,
        healthchecks: checks
            .iter()
            .map(|name| {
                let hc = check(name, HealthcheckType::Tcp, HealthcheckMode::Plain, port);
                (name.to_string(), hc)
            })
            .collect(),
    }
}

fn backend(name: &str, v4: &str, v6: &str, weight: i32) -> (String, Backend) {
    let host = Host {
        hostname: name.to_string(),
        ipv4: Some(format!("{v4}/24").parse().unwrap()),
        ipv6: Some(format!("{v6}/64").parse().unwrap()),
        status: HostStatus::Production,
    };
    let backend = Backend {
        host,
        weight,
        enabled: true,
        in_service: true,
    };
    (name.to_string(), backend)
}

/// The vserver of Seesaw's own vserver tests: an anycast IPv4 VIP and a
/// unicast IPv6 VIP, two entries, two dual-stack backends, one
/// vserver-level check.
fn resolver() -> Vserver {
    let mut tcp = entry(8053, Protocol::Tcp, &["hc3", "hc4"]);
    tcp.high_watermark = 0.2;
    tcp.low_watermark = 0.1;
    let entries = BTreeMap::from([
        (
            "53/UDP".to_string(),
            entry(53, Protocol::Udp, &["hc1", "hc2"]),
        ),
        ("8053/TCP".to_string(), tcp),
    ]);
    Vserver {
        name: NAME.to_string(),
        host: Host {
            hostname: "dns.resolver".to_string(),
            ipv4: Some("192.168.255.1/24".parse().unwrap()),
            ipv6: Some("2012::1/64".parse().unwrap()),
            status: HostStatus::Production,
        },
        entries,
        backends: BTreeMap::from([
            backend("dns1.example.com", "1.1.1.10", "2012::10", 1),
            backend("dns2.example.com", "1.1.1.11", "2012::11", 2),
        ]),
        healthchecks: BTreeMap::from([(
            "hc5".to_string(),
            check("hc5", HealthcheckType::Http, HealthcheckMode::Plain, 5),
        )]),
        vips: vec![
            Vip {
                ip: ip("192.168.255.1"),
                vip_type: VipType::Anycast,
            },
            Vip {
                ip: ip("2012::1"),
                vip_type: VipType::Unicast,
            },
        ],
        access_grants: BTreeMap::new(),
        enabled: true,
        use_fwm: false,
        warnings: Vec::new(),
    }
}

fn engine() -> Engine {
    Engine::new(EngineOptions {
        anycast_enabled: true,
        probe_id_seed: 1000,
    })
}

fn config(vservers: &[Vserver]) -> Event {
    Event::Config(
        vservers
            .iter()
            .map(|v| (v.name.clone(), v.clone()))
            .collect(),
    )
}

/// A simulated engine and kernel: every action list is applied to the
/// kernel, which must then equal the engine's desired state.
struct Harness {
    engine: Engine,
    kernel: KernelState,
    last: Vec<Action>,
}

impl Harness {
    fn new() -> Self {
        Harness {
            engine: engine(),
            kernel: KernelState::default(),
            last: Vec::new(),
        }
    }

    fn send(&mut self, event: Event) {
        self.last = self.engine.handle(event);
        apply(&mut self.kernel, &self.last);
        assert_eq!(
            &self.kernel,
            self.engine.desired(),
            "kernel diverged after {:?}",
            self.last
        );
    }

    /// Reports `state` for every probe whose config name or target matches.
    fn report(&mut self, matches: impl Fn(&str, IpAddr) -> bool, state: CheckState) {
        let ids: Vec<u64> = self
            .engine
            .probes()
            .filter(|p| matches(&p.config.name, p.host))
            .map(|p| p.id)
            .collect();
        for probe in ids {
            self.send(Event::CheckResult { probe, state });
        }
    }

    fn all(&mut self, state: CheckState) {
        self.report(|_, _| true, state);
    }

    fn udp53(&self, vip: &str) -> bool {
        self.kernel.services.contains_key(&ServiceId::Inet {
            address: ip(vip),
            protocol: 17,
            port: 53,
        })
    }

    fn tcp8053(&self, vip: &str) -> bool {
        self.kernel.services.contains_key(&ServiceId::Inet {
            address: ip(vip),
            protocol: 6,
            port: 8053,
        })
    }
}

#[test]
fn expansion_services_and_destinations() {
    let mut engine = engine();
    engine.handle(config(&[resolver()]));
    let state = engine.vserver(NAME).unwrap();
    let services = &state.expansion.services;
    assert_eq!(services.len(), 4);
    for service in services.values() {
        assert_eq!(service.destinations.len(), 2);
        for address in service.destinations.keys() {
            assert_eq!(Family::of(*address), Family::of(service.vip));
        }
    }
    let udp = &services[&ServiceId::Inet {
        address: ip("2012::1"),
        protocol: 17,
        port: 53,
    }];
    assert_eq!(udp.destinations[&ip("2012::11")].ipvs.weight, 2);
    assert_eq!(
        udp.destinations[&ip("2012::11")].name,
        format!("{NAME}/[2012::11]:53/UDP")
    );
}

#[test]
fn expansion_checks_count_and_sharing() {
    let mut engine = engine();
    engine.handle(config(&[resolver()]));
    let state = engine.vserver(NAME).unwrap();
    // 1 vserver check x 2 backends x 2 VIPs, plus 2 entry checks x 2
    // backends x 2 VIPs x 2 entries.
    assert_eq!(state.expansion.checks.len(), 20);
    let mut references = 0;
    for service in state.expansion.services.values() {
        for destination in service.destinations.values() {
            assert_eq!(destination.checks.len(), 3);
            references += destination.checks.len();
        }
    }
    assert_eq!(references, 24);
    // Each family's VIP has its own backend addresses and every check has
    // its own name, so no two checks share a probe here.
    assert_eq!(engine.probes().count(), 20);
}

#[test]
fn expansion_fwm_marks_and_first_entry() {
    let mut vserver = resolver();
    vserver.use_fwm = true;
    let mut engine = engine();
    engine.handle(config(&[vserver]));
    let state = engine.vserver(NAME).unwrap();
    let ids: Vec<ServiceId> = state.expansion.services.keys().copied().collect();
    assert_eq!(
        ids,
        vec![
            ServiceId::Fwmark {
                family: Family::V4,
                mark: 256
            },
            ServiceId::Fwmark {
                family: Family::V6,
                mark: 257
            },
        ]
    );
    for service in state.expansion.services.values() {
        assert_eq!(service.destinations.len(), 2);
        // Watermarks come from the first entry by key, "53/UDP".
        assert_eq!(service.high_watermark, 0.0);
        // Every entry's checks apply: hc1..hc4 plus hc5.
        for destination in service.destinations.values() {
            assert_eq!(destination.checks.len(), 5);
        }
    }
}

#[test]
fn expansion_fwm_without_entries() {
    let mut vserver = resolver();
    vserver.use_fwm = true;
    vserver.entries.clear();
    let mut harness = Harness::new();
    harness.send(config(&[vserver]));
    assert!(
        harness
            .engine
            .vserver(NAME)
            .unwrap()
            .expansion
            .services
            .is_empty()
    );
    // The unicast VIP is configured; the anycast one has no services.
    assert_eq!(harness.kernel.vips.len(), 1);
}

#[test]
fn health_notification_table() {
    let mut h = Harness::new();
    h.send(config(&[resolver()]));
    assert!(h.kernel.services.is_empty());

    h.report(|name, _| name == "hc1", CheckState::Healthy);
    assert!(
        h.kernel.services.is_empty(),
        "one healthy check of three brings nothing up"
    );

    h.all(CheckState::Healthy);
    assert_eq!(h.kernel.services.len(), 4);
    assert!(h.kernel.advertised.contains(&ip("192.168.255.1")));

    h.report(
        |name, host| name == "hc1" && host == ip("1.1.1.10"),
        CheckState::Unhealthy,
    );
    assert!(h.udp53("192.168.255.1"));
    let udp = ServiceId::Inet {
        address: ip("192.168.255.1"),
        protocol: 17,
        port: 53,
    };
    assert_eq!(h.kernel.services[&udp].destinations.len(), 1);

    // The anycast VIP needs every service healthy.
    h.report(
        |name, host| name == "hc1" && host == ip("1.1.1.11"),
        CheckState::Unhealthy,
    );
    assert!(!h.udp53("192.168.255.1"));
    assert!(!h.tcp8053("192.168.255.1"));
    assert!(h.kernel.advertised.is_empty());
    assert!(h.udp53("2012::1"));

    // The unicast VIP needs any: TCP stays up.
    h.report(
        |name, host| name == "hc1" && host.is_ipv6(),
        CheckState::Unhealthy,
    );
    assert!(!h.udp53("2012::1"));
    assert!(h.tcp8053("2012::1"));
    assert!(h.kernel.vips.contains(&Vip {
        ip: ip("2012::1"),
        vip_type: VipType::Unicast
    }));

    h.all(CheckState::Unhealthy);
    assert!(h.kernel.services.is_empty());
    assert_eq!(h.kernel.vips.len(), 1, "the unicast VIP stays configured");
}

#[test]
fn watermark_rules() {
    use seesaw_engine::health::service_healthy;
    // High 0.51, low 0.49 with two backends.
    assert!(!service_healthy(false, 1, 2, 0.51, 0.49));
    assert!(service_healthy(false, 2, 2, 0.51, 0.49));
    assert!(service_healthy(true, 1, 2, 0.51, 0.49));
    assert!(!service_healthy(true, 0, 2, 0.51, 0.49));
    // Thresholds are inclusive.
    assert!(service_healthy(false, 1, 2, 0.5, 0.5));
    // Five backends at 0.4: down below 2 healthy, back up at 2.
    assert!(service_healthy(true, 2, 5, 0.4, 0.4));
    assert!(!service_healthy(true, 1, 5, 0.4, 0.4));
    assert!(!service_healthy(false, 1, 5, 0.4, 0.4));
    assert!(service_healthy(false, 2, 5, 0.4, 0.4));
    // An unset low watermark keeps a healthy service up with one backend.
    assert!(service_healthy(true, 1, 10, 0.9, 0.0));
    // High below low comes up at low.
    assert!(!service_healthy(false, 1, 2, 0.1, 0.6));
}

#[test]
fn disable_and_override() {
    let mut h = Harness::new();
    let mut vserver = resolver();
    h.send(config(&[vserver.clone()]));
    h.all(CheckState::Healthy);
    assert_eq!(h.kernel.services.len(), 4);

    vserver.enabled = false;
    h.send(config(&[vserver.clone()]));
    assert!(h.kernel.services.is_empty());
    assert!(h.kernel.vips.is_empty());
    assert_eq!(h.engine.vserver(NAME).unwrap().expansion.services.len(), 4);
    assert_eq!(
        h.engine.probes().count(),
        0,
        "a disabled vserver runs no checks"
    );

    // An Enable override brings it back after fresh results.
    h.send(Event::Override(Override::Vserver {
        vserver: NAME.to_string(),
        state: OverrideState::Enabled,
    }));
    assert!(h.kernel.services.is_empty());
    h.all(CheckState::Healthy);
    assert_eq!(h.kernel.services.len(), 4);

    vserver.enabled = true;
    h.send(config(&[vserver.clone()]));
    assert!(
        h.last.is_empty(),
        "enabling in the config as well changes nothing"
    );
    h.send(Event::Override(Override::Vserver {
        vserver: NAME.to_string(),
        state: OverrideState::Default,
    }));
    assert!(h.last.is_empty());

    h.send(Event::Override(Override::Vserver {
        vserver: NAME.to_string(),
        state: OverrideState::Disabled,
    }));
    assert!(h.kernel.services.is_empty());
}

#[test]
fn backend_and_destination_overrides() {
    let mut h = Harness::new();
    h.send(config(&[resolver()]));
    h.all(CheckState::Healthy);
    h.send(Event::Override(Override::Backend {
        hostname: "dns1.example.com".to_string(),
        state: OverrideState::Disabled,
    }));
    for service in h.kernel.services.values() {
        assert_eq!(service.destinations.len(), 1);
    }
    h.send(Event::Override(Override::Destination {
        vserver: NAME.to_string(),
        destination: format!("{NAME}/[2012::10]:53/UDP"),
        state: OverrideState::Enabled,
    }));
    // The destination's checks start at Unknown again, so it waits.
    h.all(CheckState::Healthy);
    let udp6 = ServiceId::Inet {
        address: ip("2012::1"),
        protocol: 17,
        port: 53,
    };
    assert_eq!(h.kernel.services[&udp6].destinations.len(), 2);
    // The backend and vserver override maps are separate.
    h.send(Event::Override(Override::Backend {
        hostname: NAME.to_string(),
        state: OverrideState::Disabled,
    }));
    assert_eq!(h.kernel.services.len(), 4);
}

#[test]
fn config_update_keeps_serving() {
    let mut h = Harness::new();
    let mut vserver = resolver();
    h.send(config(&[vserver.clone()]));
    h.all(CheckState::Healthy);

    // Same config: nothing.
    h.send(config(&[vserver.clone()]));
    assert!(h.last.is_empty());

    // Persistence change: an in-place service update, no teardown.
    vserver.entries.get_mut("53/UDP").unwrap().persistence = Duration::from_secs(300);
    h.send(config(&[vserver.clone()]));
    assert_eq!(h.last.len(), 2, "{:?}", h.last);
    assert!(h.last.iter().all(|a| matches!(a, Action::UpdateService(_))));

    // Weight change: destination updates only.
    vserver.backends.get_mut("dns2.example.com").unwrap().weight = 5;
    h.send(config(&[vserver.clone()]));
    assert!(
        h.last
            .iter()
            .all(|a| matches!(a, Action::UpdateDestination { .. }))
    );
    assert_eq!(h.last.len(), 4);

    // Mode change: the rules are re-created, the destinations updated in place.
    vserver.entries.get_mut("53/UDP").unwrap().mode = ForwardingMode::Nat;
    h.send(config(&[vserver.clone()]));
    assert!(
        h.last
            .iter()
            .any(|a| matches!(a, Action::DeleteVserverRules(_)))
    );
    assert!(
        !h.last
            .iter()
            .any(|a| matches!(a, Action::DeleteService(_) | Action::DeleteVip(_)))
    );
    assert!(h.udp53("2012::1"));

    // A new entry: rules re-created; its checks start Unknown. The unicast
    // VIP keeps serving, the anycast VIP waits for all services.
    vserver
        .entries
        .insert("80/TCP".to_string(), entry(80, Protocol::Tcp, &["hc6"]));
    h.send(config(&[vserver.clone()]));
    assert!(h.udp53("2012::1"));
    assert!(!h.udp53("192.168.255.1"));
    h.all(CheckState::Healthy);
    assert_eq!(h.kernel.services.len(), 6);
}

#[test]
fn config_update_removes_backend_and_reips() {
    let mut h = Harness::new();
    let mut vserver = resolver();
    h.send(config(&[vserver.clone()]));
    h.all(CheckState::Healthy);
    vserver.backends.remove("dns1.example.com");
    h.send(config(&[vserver.clone()]));
    assert!(
        h.last
            .iter()
            .all(|a| matches!(a, Action::DeleteDestination { .. } | Action::StopCheck(_)))
    );

    // Re-IP of the unicast VIP: the old VIP and its services go.
    vserver.vips[1].ip = ip("2012::99");
    h.send(config(&[vserver.clone()]));
    assert!(h.last.contains(&Action::DeleteVip(Vip {
        ip: ip("2012::1"),
        vip_type: VipType::Unicast
    })));
    assert!(!h.udp53("2012::1"));
    h.all(CheckState::Healthy);
    assert!(h.udp53("2012::99"));
}

#[test]
fn vip_type_change_replaces_vip() {
    let mut h = Harness::new();
    let mut vserver = resolver();
    h.send(config(&[vserver.clone()]));
    vserver.vips[1].vip_type = VipType::Dedicated;
    h.send(config(&[vserver.clone()]));
    assert_eq!(
        h.kernel.vips.iter().copied().collect::<Vec<_>>(),
        vec![Vip {
            ip: ip("2012::1"),
            vip_type: VipType::Dedicated
        }]
    );
}

#[test]
fn entryless_vserver_has_no_vip_churn() {
    let mut h = Harness::new();
    let mut vserver = resolver();
    vserver.entries.clear();
    h.send(config(&[vserver.clone()]));
    assert_eq!(h.kernel.vips.len(), 1);
    vserver.backends.remove("dns1.example.com");
    h.send(config(&[vserver.clone()]));
    assert!(h.last.is_empty(), "{:?}", h.last);
}

#[test]
fn shared_check_reaches_both_vservers() {
    let mut h = Harness::new();
    let first = resolver();
    let mut second = resolver();
    second.name = "other@au-syd".to_string();
    second.entries.remove("8053/TCP");
    h.send(config(&[first, second]));
    h.all(CheckState::Healthy);
    for name in [NAME, "other@au-syd"] {
        let state = h.engine.vserver(name).unwrap();
        assert!(
            state
                .check_states
                .values()
                .all(|s| *s == CheckState::Healthy),
            "{name}"
        );
    }
}

#[test]
fn dsr_checks_get_marks_and_services() {
    let mut h = Harness::new();
    let mut vserver = resolver();
    vserver.healthchecks.insert(
        "hc7".to_string(),
        check("hc7", HealthcheckType::Tcp, HealthcheckMode::Dsr, 53),
    );
    h.send(config(&[vserver.clone()]));
    // One mark per backend address; one probe per VIP and backend.
    let marks: Vec<u32> = h
        .engine
        .probes()
        .filter(|p| p.mark != 0)
        .map(|p| p.mark)
        .collect();
    assert_eq!(marks.len(), 4);
    let mark_services = h
        .kernel
        .services
        .keys()
        .filter(|id| matches!(id, ServiceId::Fwmark { mark, .. } if *mark >= 65536))
        .count();
    assert_eq!(mark_services, 4);
    for probe in h.engine.probes().filter(|p| p.mark != 0) {
        assert!(probe.target == ip("192.168.255.1") || probe.target == ip("2012::1"));
    }
    vserver.healthchecks.remove("hc7");
    h.send(config(&[vserver]));
    assert!(h.kernel.services.is_empty());
}

#[test]
fn invalid_check_is_reported() {
    let mut h = Harness::new();
    let mut vserver = resolver();
    vserver.healthchecks.insert(
        "hc8".to_string(),
        check("hc8", HealthcheckType::Icmp, HealthcheckMode::Dsr, 0),
    );
    h.send(config(&[vserver]));
    assert!(h.engine.warnings().iter().any(|w| w.contains("hc8")));
    assert!(h.engine.probes().all(|p| p.config.name != "hc8"));
}

#[test]
fn exhausted_fwmarks_retried_on_config() {
    // Bare fwmark vservers with one unicast IPv4 VIP each: 8000 of them take every
    // vserver mark, so one more gets none.
    let bare = |name: String| {
        let mut vserver = resolver();
        vserver.name = name;
        vserver.use_fwm = true;
        vserver.vips.truncate(1);
        vserver.vips[0].vip_type = VipType::Unicast;
        vserver.entries.clear();
        vserver.backends.clear();
        vserver.healthchecks.clear();
        vserver
    };
    let mut vservers: Vec<Vserver> = (0..8000).map(|i| bare(format!("fwm-{i:04}"))).collect();
    vservers.push(bare("zz".to_string()));
    let mut h = Harness::new();
    h.send(config(&vservers));
    assert!(h.engine.vserver("zz").unwrap().fwmarks.is_empty());
    assert_eq!(
        h.engine.warnings(),
        ["zz: no free fwmark for its V4 service"]
    );

    // Removing one frees its mark before the others are expanded, so the
    // same config event gives it to the starved vserver.
    let freed = h.engine.vserver("fwm-0000").unwrap().fwmarks[&Family::V4];
    h.send(config(&vservers[1..]));
    let zz = h.engine.vserver("zz").unwrap();
    assert_eq!(zz.fwmarks.get(&Family::V4), Some(&freed));
    assert!(h.engine.warnings().is_empty());
    let key = ("zz".to_string(), ip("192.168.255.1"));
    assert_eq!(h.kernel.rules[&key].fwmark, freed);
}

#[test]
fn vserver_removed_tears_down() {
    let mut h = Harness::new();
    h.send(config(&[resolver()]));
    h.all(CheckState::Healthy);
    h.send(config(&[]));
    assert_eq!(h.kernel, KernelState::default());
    assert_eq!(h.engine.probes().count(), 0);
}

#[test]
fn restart_keeps_serving_services() {
    let mut h = Harness::new();
    h.send(config(&[resolver()]));
    h.all(CheckState::Healthy);
    let observed = ObservedState {
        services: h
            .kernel
            .services
            .values()
            .map(|s| {
                (
                    s.service.clone(),
                    s.destinations.values().cloned().collect(),
                )
            })
            .collect(),
        vips: h.kernel.vips.clone(),
        rules: Some(h.kernel.rules.clone()),
        advertised: Some(h.kernel.advertised.clone()),
    };
    let mut restarted = engine();
    let vservers = [resolver()]
        .into_iter()
        .map(|v| (v.name.clone(), v))
        .collect();
    let actions = restarted.start(vservers, &observed);
    assert!(
        actions.iter().all(|a| matches!(a, Action::StartCheck(_))),
        "{actions:?}"
    );
    assert_eq!(restarted.desired(), &h.kernel);

    // Unknown rules and advertisements are re-added, nothing is removed.
    let blind = ObservedState {
        rules: None,
        advertised: None,
        ..observed
    };
    let actions = reconcile(restarted.desired(), &blind);
    assert!(
        actions
            .iter()
            .all(|a| matches!(a, Action::AddVserverRules(_) | Action::AdvertiseVip(_)))
    );
    assert!(!actions.is_empty());
}

fn arbitrary_kernel() -> impl Strategy<Value = KernelState> {
    (any::<u8>(), any::<u8>(), any::<u8>()).prop_map(|(checks, weights, vips)| {
        let mut h = Harness::new();
        let mut vserver = resolver();
        vserver
            .vips
            .retain(|vip| vips & 1 == 0 || vip.vip_type == VipType::Unicast);
        vserver.backends.get_mut("dns2.example.com").unwrap().weight = i32::from(weights % 4);
        h.send(config(&[vserver]));
        let probes: Vec<u64> = h.engine.probes().map(|p| p.id).collect();
        for (index, probe) in probes.into_iter().enumerate() {
            let state = if checks.rotate_left(index as u32) & 1 == 1 {
                CheckState::Healthy
            } else {
                CheckState::Unhealthy
            };
            h.send(Event::CheckResult { probe, state });
        }
        h.kernel
    })
}

proptest! {
    #[test]
    fn diff_converges(a in arbitrary_kernel(), b in arbitrary_kernel()) {
        let mut state = a.clone();
        apply(&mut state, &diff(&a, &b));
        prop_assert_eq!(state, b);
    }

    #[test]
    fn reconcile_self_is_empty(a in arbitrary_kernel()) {
        let observed = ObservedState {
            services: a.services.values()
                .map(|s| (s.service.clone(), s.destinations.values().cloned().collect()))
                .collect(),
            vips: a.vips.clone(),
            rules: Some(a.rules.clone()),
            advertised: Some(a.advertised.clone()),
        };
        prop_assert!(reconcile(&a, &observed).is_empty());
    }

    #[test]
    fn random_results_keep_kernel_in_step(results in proptest::collection::vec((0usize..10, any::<bool>()), 0..40)) {
        // Harness::send asserts after every event that the applied actions
        // reproduce the engine's desired state.
        let mut h = Harness::new();
        h.send(config(&[resolver()]));
        let probes: Vec<u64> = h.engine.probes().map(|p| p.id).collect();
        for (index, healthy) in results {
            let state = if healthy { CheckState::Healthy } else { CheckState::Unhealthy };
            h.send(Event::CheckResult { probe: probes[index % probes.len()], state });
        }
    }
}
