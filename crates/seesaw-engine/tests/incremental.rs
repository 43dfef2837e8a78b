//! Property tests of the incremental engine: random sequences of config
//! changes, check results and overrides over a few vservers that share
//! VIPs, services, backends and probes. After every event the engine's
//! desired state must equal a from-scratch evaluation of its inputs, its
//! actions must equal the diff of the old and new desired states, and
//! applying them to the old state must give the new one.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::time::Duration;

use proptest::prelude::*;
use seesaw_config::model::{
    Backend, ForwardingMode, HealthcheckMode, HealthcheckType, Host, HostStatus, Protocol,
    Scheduler, Vip, VipType, Vserver, VserverEntry,
};
use seesaw_engine::checks::{CheckManager, CheckState, Probe, ProbeId, mark_service};
use seesaw_engine::expand::expand;
use seesaw_engine::health::evaluate;
use seesaw_engine::kernel::{Action, KernelState, apply, diff};
use seesaw_engine::overrides::{Override, OverrideState};
use seesaw_engine::{Engine, EngineOptions, Event};

mod common;

use common::check;

const NAMES: [&str; 4] = ["alpha", "bravo", "charlie", "delta"];
const VIPS: [&str; 3] = ["192.0.2.1", "192.0.2.2", "2001:db8::1"];
const BACKENDS: usize = 4;

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

/// The parts of a vserver that the generator varies.
#[derive(Debug, Clone)]
struct VserverSpec {
    /// VIP index into [`VIPS`] and type.
    vips: Vec<(usize, VipType)>,
    /// Port, protocol, forwarding mode, and whether the watermarks are
    /// 0.5 (else 0).
    entries: Vec<(u16, Protocol, ForwardingMode, bool)>,
    /// Backend index, weight, enabled.
    backends: Vec<(usize, i32, bool)>,
    /// Mode and type of the vserver-level check; ICMP with DSR is a check
    /// the healthcheck component cannot run.
    check: (HealthcheckMode, HealthcheckType),
    /// Whether the entries get a check of their own.
    entry_checks: bool,
    use_fwm: bool,
    enabled: bool,
}

fn vip_type() -> impl Strategy<Value = VipType> {
    prop_oneof![
        Just(VipType::Unicast),
        Just(VipType::Anycast),
        Just(VipType::Dedicated)
    ]
}

fn vserver_spec() -> impl Strategy<Value = VserverSpec> {
    let vips = proptest::collection::vec((0..VIPS.len(), vip_type()), 1..4);
    let entries = proptest::collection::vec(
        (
            prop_oneof![Just(53u16), Just(80u16)],
            prop_oneof![Just(Protocol::Tcp), Just(Protocol::Udp)],
            prop_oneof![Just(ForwardingMode::Dsr), Just(ForwardingMode::Nat)],
            any::<bool>(),
        ),
        0..3,
    );
    let backends = proptest::collection::vec(
        (
            0..BACKENDS,
            0..3i32,
            prop_oneof![4 => Just(true), 1 => Just(false)],
        ),
        1..5,
    );
    let check = (
        prop_oneof![Just(HealthcheckMode::Plain), Just(HealthcheckMode::Dsr)],
        prop_oneof![
            4 => Just(HealthcheckType::Tcp),
            1 => Just(HealthcheckType::Icmp)
        ],
    );
    (
        vips,
        entries,
        backends,
        check,
        any::<bool>(),
        any::<bool>(),
        prop_oneof![4 => Just(true), 1 => Just(false)],
    )
        .prop_map(
            |(vips, entries, backends, check, entry_checks, use_fwm, enabled)| VserverSpec {
                vips,
                entries,
                backends,
                check,
                entry_checks,
                use_fwm,
                enabled,
            },
        )
}

fn host(hostname: &str, v4: String, v6: String) -> Host {
    Host {
        hostname: hostname.to_string(),
        ipv4: Some(v4.parse().unwrap()),
        ipv6: Some(v6.parse().unwrap()),
        status: HostStatus::Production,
    }
}

fn backend_name(index: usize) -> String {
    format!("backend-{index}.example.com")
}

fn build(name: &str, spec: &VserverSpec) -> Vserver {
    let mut vips: Vec<Vip> = Vec::new();
    for (index, vip_type) in &spec.vips {
        let address = ip(VIPS[*index]);
        if vips.iter().all(|vip| vip.ip != address) {
            vips.push(Vip {
                ip: address,
                vip_type: *vip_type,
            });
        }
    }
    let mut entries = BTreeMap::new();
    for (port, protocol, mode, watermarks) in &spec.entries {
        let level = if *watermarks { 0.5 } else { 0.0 };
        let mut healthchecks = BTreeMap::new();
        if spec.entry_checks {
            let check = check("entry", HealthcheckType::Tcp, HealthcheckMode::Plain, 80);
            healthchecks.insert("entry".to_string(), check);
        }
        let entry = VserverEntry {
            port: *port,
            protocol: *protocol,
            scheduler: Scheduler::Wrr,
            mode: *mode,
            persistence: Duration::ZERO,
            one_packet: false,
            high_watermark: level,
            low_watermark: level,
            lower_threshold: 0,
            upper_threshold: 0,
            healthchecks,
        };
        entries.insert(entry.key(), entry);
    }
    let mut backends = BTreeMap::new();
    for (index, weight, enabled) in &spec.backends {
        let hostname = backend_name(*index);
        let host = host(
            &hostname,
            format!("10.0.0.{}/24", 10 + index),
            format!("2001:db8:1::{}/64", 10 + index),
        );
        let backend = Backend {
            host,
            weight: *weight,
            enabled: *enabled,
            in_service: true,
        };
        backends.insert(hostname, backend);
    }
    let (mode, check_type) = spec.check;
    Vserver {
        name: name.to_string(),
        host: host(
            &format!("{name}.example.com"),
            "192.0.2.1/24".to_string(),
            "2001:db8::1/64".to_string(),
        ),
        entries,
        backends,
        healthchecks: BTreeMap::from([(
            "vserver".to_string(),
            check("vserver", check_type, mode, 80),
        )]),
        vips,
        access_grants: BTreeMap::new(),
        enabled: spec.enabled,
        use_fwm: spec.use_fwm,
        warnings: Vec::new(),
    }
}

/// One step of a scenario.
#[derive(Debug, Clone)]
enum Step {
    /// Sets (`Some`) or removes one vserver, then sends the whole config.
    Set(usize, Option<VserverSpec>),
    /// Sends the config unchanged.
    Reload,
    /// Results for the probes at these indexes, modulo their count.
    Results(Vec<(usize, CheckState)>),
    /// The same result for every probe.
    AllResults(CheckState),
    /// An override of a vserver, a backend, or a destination given by its
    /// index among the vserver's destinations.
    VserverOverride(usize, OverrideState),
    BackendOverride(usize, OverrideState),
    DestinationOverride(usize, usize, OverrideState),
}

fn override_state() -> impl Strategy<Value = OverrideState> {
    prop_oneof![
        Just(OverrideState::Default),
        Just(OverrideState::Disabled),
        Just(OverrideState::Enabled)
    ]
}

fn check_state() -> impl Strategy<Value = CheckState> {
    prop_oneof![
        4 => Just(CheckState::Healthy),
        2 => Just(CheckState::Unhealthy),
        1 => Just(CheckState::Unknown)
    ]
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (0..NAMES.len(), proptest::option::weighted(0.8, vserver_spec()))
            .prop_map(|(name, spec)| Step::Set(name, spec)),
        1 => Just(Step::Reload),
        5 => proptest::collection::vec((0..64usize, check_state()), 1..12)
            .prop_map(Step::Results),
        2 => check_state().prop_map(Step::AllResults),
        1 => (0..NAMES.len(), override_state())
            .prop_map(|(name, state)| Step::VserverOverride(name, state)),
        1 => (0..BACKENDS + 1, override_state())
            .prop_map(|(backend, state)| Step::BackendOverride(backend, state)),
        1 => (0..NAMES.len(), 0..8usize, override_state())
            .prop_map(|(name, index, state)| Step::DestinationOverride(name, index, state)),
    ]
}

/// Turns a step into an event for the engine as it is now.
fn event(engine: &Engine, config: &mut BTreeMap<String, Vserver>, step: Step) -> Event {
    match step {
        Step::Set(index, spec) => {
            let name = NAMES[index];
            match spec {
                Some(spec) => config.insert(name.to_string(), build(name, &spec)),
                None => config.remove(name),
            };
            Event::Config(config.clone())
        }
        Step::Reload => Event::Config(config.clone()),
        Step::Results(results) => {
            let ids: Vec<ProbeId> = engine.probes().map(|probe| probe.id).collect();
            let results = results
                .into_iter()
                .filter(|_| !ids.is_empty())
                .map(|(index, state)| (ids[index % ids.len()], state))
                .collect();
            Event::CheckResults(results)
        }
        Step::AllResults(state) => {
            let results = engine.probes().map(|probe| (probe.id, state)).collect();
            Event::CheckResults(results)
        }
        Step::VserverOverride(index, state) => Event::Override(Override::Vserver {
            vserver: NAMES[index].to_string(),
            state,
        }),
        // The last index names a vserver, which must not reach the
        // backend of that name.
        Step::BackendOverride(index, state) => Event::Override(Override::Backend {
            hostname: if index < BACKENDS {
                backend_name(index)
            } else {
                NAMES[0].to_string()
            },
            state,
        }),
        Step::DestinationOverride(index, destination, state) => {
            let vserver = NAMES[index];
            let names: Vec<String> = engine
                .vserver(vserver)
                .map(|state| {
                    let services = state.expansion.services.values();
                    services
                        .flat_map(|service| service.destinations.values())
                        .map(|destination| destination.name.clone())
                        .collect()
                })
                .unwrap_or_default();
            let destination = names
                .get(destination)
                .cloned()
                .unwrap_or_else(|| format!("{vserver}/192.0.2.99:1/TCP"));
            Event::Override(Override::Destination {
                vserver: vserver.to_string(),
                destination,
                state,
            })
        }
    }
}

/// Evaluates every vserver of `engine` afresh from its config, overrides,
/// marks, check states and service health, and merges the results as one
/// pass in name order does. Also checks that the stored expansion and
/// evaluation are what they would be afresh.
fn from_scratch(engine: &Engine) -> Result<KernelState, TestCaseError> {
    let mut desired = KernelState::default();
    let mut marks = BTreeMap::new();
    for probe in engine.probes().filter(|probe| probe.mark != 0) {
        let owner = (probe.host, probe.config.mode);
        let (id, service) = mark_service(owner, probe.mark);
        prop_assert_eq!(*marks.entry(owner).or_insert(probe.mark), probe.mark);
        desired.services.insert(id, service);
    }
    let distinct: BTreeSet<u32> = marks.values().copied().collect();
    prop_assert_eq!(distinct.len(), marks.len(), "one mark per backend and mode");

    for (name, state) in engine.vservers() {
        let overrides = engine.overrides();
        let enabled = overrides.vserver_enabled(name, state.config.enabled);
        prop_assert_eq!(enabled, state.enabled, "{} enabled", name);
        let expansion = expand(&state.config, &state.fwmarks, overrides);
        prop_assert_eq!(&expansion, &state.expansion, "{} expansion", name);
        for key in state.check_states.keys() {
            prop_assert!(
                expansion.checks.contains_key(key),
                "{} stale {:?}",
                name,
                key
            );
        }

        let evaluation = evaluate(
            &expansion,
            &state.config.vips,
            state.enabled,
            &state.check_states,
            &state.service_health,
            true,
        );
        prop_assert_eq!(
            &evaluation.service_health,
            &state.service_health,
            "{}",
            name
        );
        prop_assert_eq!(&evaluation.active_vips, &state.active_vips, "{}", name);
        for (id, service) in evaluation.kernel.services {
            desired.services.entry(id).or_insert(service);
        }
        desired.vips.extend(evaluation.kernel.vips);
        desired.rules.extend(evaluation.kernel.rules);
        desired.advertised.extend(evaluation.kernel.advertised);
    }
    Ok(desired)
}

/// Checks that the engine runs the probes a fresh check manager would
/// build from every enabled vserver's checks, ids and marks aside.
fn check_probes(engine: &Engine) -> Result<(), TestCaseError> {
    let wanted = engine
        .vservers()
        .filter(|(_, state)| state.enabled)
        .map(|(name, state)| (name.clone(), Some(&state.expansion.checks)))
        .collect();
    let mut fresh = CheckManager::new(0);
    fresh.update(&wanted);
    let shape = |probe: &Probe| {
        (
            probe.target,
            probe.host,
            probe.mark != 0,
            probe.config.clone(),
        )
    };
    let expected: Vec<_> = fresh.probes().map(shape).collect();
    let actual: Vec<_> = engine.probes().map(shape).collect();
    prop_assert_eq!(actual, expected);
    let warnings: Vec<String> = fresh.warnings().cloned().collect();
    let engine_warnings = engine.warnings();
    prop_assert_eq!(engine_warnings, warnings);
    Ok(())
}

/// Returns the probe actions `handle` must return for a change of the
/// probes from `old` to `new`: stops, then starts, each by id.
fn probe_actions(old: &BTreeMap<ProbeId, Probe>, new: &BTreeMap<ProbeId, Probe>) -> Vec<Action> {
    let mut actions = Vec::new();
    for (id, probe) in old {
        if new.get(id) != Some(probe) {
            actions.push(Action::StopCheck(*id));
        }
    }
    for (id, probe) in new {
        if old.get(id) != Some(probe) {
            actions.push(Action::StartCheck(probe.clone()));
        }
    }
    actions
}

fn probes_by_id(engine: &Engine) -> BTreeMap<ProbeId, Probe> {
    engine
        .probes()
        .map(|probe| (probe.id, probe.clone()))
        .collect()
}

fn run(steps: Vec<Step>) -> Result<(), TestCaseError> {
    let mut engine = Engine::new(EngineOptions {
        anycast_enabled: true,
        probe_id_seed: 1,
    });
    let mut config = BTreeMap::new();
    for step in steps {
        let event = event(&engine, &mut config, step);
        let old = engine.desired().clone();
        let old_probes = probes_by_id(&engine);

        let actions = engine.handle(event.clone());

        let (checks, kernel): (Vec<Action>, Vec<Action>) = actions
            .iter()
            .cloned()
            .partition(|action| matches!(action, Action::StartCheck(_) | Action::StopCheck(_)));
        prop_assert_eq!(
            &checks[..],
            &probe_actions(&old_probes, &probes_by_id(&engine))[..],
            "probe actions after {:?}",
            event
        );
        prop_assert_eq!(
            &kernel[..],
            &diff(&old, engine.desired())[..],
            "kernel actions after {:?}",
            event
        );
        prop_assert_eq!(
            &actions[..checks.len()],
            &checks[..],
            "probe actions come first"
        );

        let mut applied = old;
        apply(&mut applied, &actions);
        prop_assert_eq!(
            &applied,
            engine.desired(),
            "applied actions after {:?}",
            event
        );

        let expected = from_scratch(&engine)?;
        prop_assert_eq!(
            engine.desired(),
            &expected,
            "desired state after {:?}",
            event
        );
        check_probes(&engine)?;
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn incremental_matches_from_scratch(steps in proptest::collection::vec(step(), 1..40)) {
        run(steps)?;
    }
}

#[test]
fn shared_service_goes_to_first_by_name() {
    let spec = VserverSpec {
        vips: vec![(0, VipType::Unicast)],
        entries: vec![(80, Protocol::Tcp, ForwardingMode::Dsr, false)],
        backends: vec![(0, 1, true)],
        check: (HealthcheckMode::Plain, HealthcheckType::Tcp),
        entry_checks: false,
        use_fwm: false,
        enabled: true,
    };
    let mut heavier = spec.clone();
    heavier.backends[0].1 = 2;
    let steps = vec![
        Step::Set(1, Some(heavier)),
        Step::Results(vec![(0, CheckState::Healthy)]),
        Step::Set(0, Some(spec)),
        Step::Results(vec![(0, CheckState::Healthy), (1, CheckState::Healthy)]),
        Step::Set(0, None),
    ];
    run(steps).unwrap();
}
