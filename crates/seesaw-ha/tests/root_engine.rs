//! seesaw_ha in engine mode between network namespaces, against fake
//! engines that the tests serve on Unix sockets in the lab's temporary
//! directory.
//!
//! Needs root. `cargo xtask test` runs these `root_*` tests as root; plain
//! `cargo test` skips them.

mod support;

use std::time::Duration;

use seesaw_ipc::engine_proto::{HaConfigReply, HaState, HaStatus};
use seesaw_ipc::fake_engine::{Calls, FakeEngine};
use support::{Lab, assert_log_contains, ipv4, wait_for};

const BINARY: &str = env!("CARGO_BIN_EXE_seesaw_ha");

/// At 500 ms the longest master-down interval (priority 1) is 2 s; 5 s
/// leaves room for a loaded machine.
const TAKEOVER: Duration = Duration::from_secs(5);

/// Bound on waits for engine calls, which come every 500 ms to 1 s.
const WAIT: Duration = Duration::from_secs(15);

/// Returns the engine's HA config for lab member `index`.
fn reply(index: usize, priority: u32) -> HaConfigReply {
    HaConfigReply {
        enabled: true,
        local_addr: ipv4(index).to_string(),
        remote_addr: "224.0.0.18".into(),
        priority,
        vrid: 60,
    }
}

fn last_state(calls: &Calls) -> Option<HaState> {
    calls.ha_states.last().copied()
}

fn leader_updates(calls: &Calls) -> Vec<HaStatus> {
    calls
        .ha_updates
        .iter()
        .filter(|update| update.state() == HaState::Leader)
        .copied()
        .collect()
}

#[test]
#[ignore = "needs root: network namespaces"]
fn root_engine_leader_survives_outage() {
    let mut lab = Lab::new(1);
    let socket = lab.path("engine0.sock");
    let engine = FakeEngine::new();

    // The engine's socket appears only once it has loaded its config, so
    // the daemon starts first and retries.
    let node = lab.start_ha_with_engine(BINARY, 0, &socket);
    assert!(
        wait_for(WAIT, || node.log().contains("HaConfig failed")),
        "{}",
        node.log()
    );
    let served = engine.serve(&socket).unwrap();
    assert!(engine.wait_for(WAIT, |calls| calls.ha_config >= 1));
    engine.set_ha_config(Some(reply(0, 200)));

    let led = engine.wait_for(WAIT, |calls| calls.ha_states.len() >= 2);
    assert!(led, "no state reports:\n{}", node.log());
    assert_eq!(engine.calls().ha_states, [HaState::Backup, HaState::Leader]);
    assert!(engine.wait_for(WAIT, |calls| leader_updates(calls).len() >= 2));
    let updates = leader_updates(&engine.calls());
    assert!(updates[1].sent > updates[0].sent, "{updates:?}");
    assert_eq!(updates[1].transitions, 2);
    assert!(updates[1].since_ms > 0);
    assert!(updates[1].since_ms <= updates[1].last_update_ms);

    // With the engine gone the node stays master, and keeps retrying.
    served.stop();
    let before_outage = engine.calls();
    let log_before_outage = node.log().len();
    let escalated = wait_for(WAIT, || {
        node.log()[log_before_outage..].contains("failures in a row")
    });
    assert!(escalated, "no error after 2 failed calls:\n{}", node.log());
    assert!(lab.is_running(node.pid), "{}", node.log());
    assert!(node.is("LEADER"));

    let _served = engine.serve(&socket).unwrap();
    let reported = engine.wait_for(WAIT, |calls| {
        calls.ha_updates.len() > before_outage.ha_updates.len()
    });
    assert!(reported, "no report after the restart:\n{}", node.log());
    let after = *engine.calls().ha_updates.last().unwrap();
    let before = before_outage.ha_updates.last().unwrap();
    assert_eq!(after.state(), HaState::Leader);
    assert_eq!(after.transitions, 2, "the state changed during the outage");
    assert!(after.sent > before.sent, "no adverts during the outage");
    assert!(lab.is_running(node.pid));
}

#[test]
#[ignore = "needs root: network namespaces"]
fn root_engine_config_changes_apply() {
    let mut lab = Lab::new(1);
    let socket = lab.path("engine0.sock");
    let engine = FakeEngine::new();
    engine.set_ha_config(Some(reply(0, 200)));
    let _served = engine.serve(&socket).unwrap();
    let node = lab.start_ha_with_engine(BINARY, 0, &socket);
    let led = engine.wait_for(TAKEOVER, |calls| last_state(calls) == Some(HaState::Leader));
    assert!(led, "not LEADER:\n{}", node.log());

    // A new priority applies to the running instance: no change of state.
    engine.set_ha_config(Some(reply(0, 150)));
    assert!(
        wait_for(WAIT, || node.log().contains("priority=150 vrid=60")),
        "{}",
        node.log()
    );
    let updates = engine.calls().ha_updates.len();
    assert!(engine.wait_for(WAIT, |calls| calls.ha_updates.len() >= updates + 2));
    assert_eq!(engine.calls().ha_states, [HaState::Backup, HaState::Leader]);

    // Disabled: the master steps down.
    engine.set_ha_config(Some(HaConfigReply {
        enabled: false,
        ..reply(0, 150)
    }));
    let disabled = engine.wait_for(WAIT, |calls| last_state(calls) == Some(HaState::Disabled));
    assert!(disabled, "not DISABLED:\n{}", node.log());
    assert_log_contains(
        &node,
        "state LEADER -> DISABLED vrid=60 peer=224.0.0.18 cause=\"HA config changed\"",
    );

    // Enabled again: the node rejoins and, alone, becomes master.
    engine.set_ha_config(Some(reply(0, 150)));
    let led = engine.wait_for(WAIT, |calls| {
        calls
            .ha_states
            .ends_with(&[HaState::Disabled, HaState::Backup, HaState::Leader])
    });
    assert!(led, "not LEADER again:\n{}", node.log());

    // A new VRID needs a new instance on new sockets. The DISABLED of the
    // old instance may not reach the engine, because the state reporter
    // sends only the newest state and BACKUP follows within a millisecond.
    let before_restart = engine.calls().ha_states.len();
    engine.set_ha_config(Some(HaConfigReply {
        vrid: 61,
        ..reply(0, 150)
    }));
    let restarted = engine.wait_for(WAIT, |calls| {
        calls.ha_states.len() >= before_restart + 2 && last_state(calls) == Some(HaState::Leader)
    });
    assert!(restarted, "{:?}\n{}", engine.calls().ha_states, node.log());
    assert_log_contains(&node, "restarting the VRRP instance");
    assert_log_contains(&node, "started vrid=61");
    assert!(lab.is_running(node.pid));
}

#[test]
#[ignore = "needs root: network namespaces"]
fn root_engine_failover_to_peer() {
    let mut lab = Lab::new(2);
    let sockets = [lab.path("engine0.sock"), lab.path("engine1.sock")];
    let engines = [FakeEngine::new(), FakeEngine::new()];
    engines[0].set_ha_config(Some(reply(0, 200)));
    engines[1].set_ha_config(Some(reply(1, 100)));
    let _served = [
        engines[0].serve(&sockets[0]).unwrap(),
        engines[1].serve(&sockets[1]).unwrap(),
    ];
    let high = lab.start_ha_with_engine(BINARY, 0, &sockets[0]);
    let low = lab.start_ha_with_engine(BINARY, 1, &sockets[1]);
    let is = |index: usize, state| {
        engines[index].wait_for(TAKEOVER, |calls| last_state(calls) == Some(state))
    };
    assert!(is(0, HaState::Leader), "{}", high.log());
    assert!(is(1, HaState::Backup), "{}", low.log());

    engines[0].request_failover();

    assert!(
        is(1, HaState::Leader),
        "the peer did not take over:\n{}",
        low.log()
    );
    assert!(is(0, HaState::Backup), "{}", high.log());
    assert!(!engines[0].failover_pending());
    // The peer takes over on the step-down advert, not after a timer.
    assert_log_contains(
        &low,
        "state BACKUP -> LEADER vrid=60 peer=224.0.0.18 cause=\"advert from 198.18.0.1 priority 0\"",
    );
    assert_log_contains(
        &high,
        "state LEADER -> BACKUP vrid=60 peer=224.0.0.18 cause=\"failover requested by the engine\"",
    );
    // Without preemption the former master stays BACKUP.
    let left_backup = wait_for(Duration::from_secs(3), || !high.is("BACKUP"));
    assert!(!left_backup, "{}", high.log());
    assert_eq!(last_state(&engines[0].calls()), Some(HaState::Backup));
    assert_eq!(last_state(&engines[1].calls()), Some(HaState::Leader));
}

/// The grace period of `root_engine_lost_master_steps_down`: long enough
/// for the short outage to stay inside it on a loaded machine.
const GRACE_PERIOD: Duration = Duration::from_secs(4);

#[test]
#[ignore = "needs root: network namespaces"]
fn root_engine_lost_master_steps_down() {
    let mut lab = Lab::new(2);
    let sockets = [lab.path("engine0.sock"), lab.path("engine1.sock")];
    let engines = [FakeEngine::new(), FakeEngine::new()];
    engines[0].set_ha_config(Some(reply(0, 200)));
    engines[1].set_ha_config(Some(reply(1, 100)));
    let served = engines[0].serve(&sockets[0]).unwrap();
    let _served_peer = engines[1].serve(&sockets[1]).unwrap();
    let grace_flag = format!("-engine_grace_period={}s", GRACE_PERIOD.as_secs());
    let high = lab.start_ha_with_engine_flags(BINARY, 0, &sockets[0], &[&grace_flag]);
    let low = lab.start_ha_with_engine(BINARY, 1, &sockets[1]);
    let is = |index: usize, state| {
        engines[index].wait_for(TAKEOVER, |calls| last_state(calls) == Some(state))
    };
    assert!(is(0, HaState::Leader), "{}", high.log());
    assert!(is(1, HaState::Backup), "{}", low.log());

    // An outage shorter than the grace period, as when the watchdog
    // restarts the engine, leaves the master in place.
    served.stop();
    let log_before_outage = high.log().len();
    let failed = wait_for(WAIT, || {
        high.log()[log_before_outage..].contains("HaUpdate failed")
    });
    assert!(failed, "no failed HaUpdate call:\n{}", high.log());
    std::thread::sleep(Duration::from_secs(1));
    let served = engines[0].serve(&sockets[0]).unwrap();
    let updates = engines[0].calls().ha_updates.len();
    let reported = engines[0].wait_for(WAIT, |calls| calls.ha_updates.len() > updates);
    assert!(reported, "no report after the restart:\n{}", high.log());
    // Past the end of the grace period, counted from the first failure.
    let moved = wait_for(GRACE_PERIOD, || !high.is("LEADER") || !low.is("BACKUP"));
    assert!(!moved, "a short outage moved mastership:\n{}", high.log());
    assert_eq!(high.transitions(), 2, "{}", high.log());

    // An outage longer than the grace period: the master steps down, and
    // its step-down advert makes the peer master at once.
    let stopped = std::time::Instant::now();
    served.stop();
    let took_over = wait_for(WAIT, || low.is("LEADER"));
    assert!(took_over, "the peer did not take over:\n{}", high.log());
    eprintln!(
        "peer took over {:?} after the engine stopped",
        stopped.elapsed()
    );
    // The outage starts with the first failed call, which starts after
    // the stop unless one was in flight then, a millisecond at most.
    assert!(
        stopped.elapsed() >= GRACE_PERIOD - Duration::from_millis(100),
        "the master left before the grace period ended:\n{}",
        high.log()
    );
    assert!(high.is("DISABLED"), "{:?}", high.state());
    assert_log_contains(
        &high,
        "state LEADER -> DISABLED vrid=60 peer=224.0.0.18 cause=\"engine unreachable for longer than the grace period\"",
    );
    assert_log_contains(
        &low,
        "state BACKUP -> LEADER vrid=60 peer=224.0.0.18 cause=\"advert from 198.18.0.1 priority 0\"",
    );

    // The engine is back: the node rejoins as BACKUP and, without
    // preemption, leaves the peer master.
    let _served = engines[0].serve(&sockets[0]).unwrap();
    assert!(is(0, HaState::Backup), "{}", high.log());
    assert!(high.is("BACKUP"), "{:?}", high.state());
    assert_log_contains(
        &high,
        "state DISABLED -> BACKUP vrid=60 peer=224.0.0.18 cause=\"engine reachable again\"",
    );
    let moved = wait_for(Duration::from_secs(3), || !high.is("BACKUP"));
    assert!(!moved, "{}", high.log());
    assert!(low.is("LEADER"), "{:?}", low.state());
}
