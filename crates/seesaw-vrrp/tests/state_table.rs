//! Conformance table of the state machine: for every state and every kind
//! of event, the next state and the exact actions.

use std::collections::HashSet;
use std::mem::discriminant;
use std::net::IpAddr;
use std::num::NonZeroU8;
use std::time::{Duration, Instant};

use seesaw_vrrp::{Action, AdvertInterval, Advertisement, Config, Event, HaState, Instance, Timer};

const VRID: u8 = 60;
const PRIORITY: u8 = 100;
const LOCAL: &str = "10.0.0.2";
const HIGHER_ADDRESS: &str = "10.0.0.3";
const LOWER_ADDRESS: &str = "10.0.0.1";

/// Master-down interval at priority 100 with the own 500 ms interval.
const OWN_MASTER_DOWN: Duration = Duration::from_nanos(1_804_687_500);
/// Master-down interval at priority 100 after a master advertised 1 s.
const PEER_MASTER_DOWN: Duration = Duration::from_nanos(3_609_375_000);
/// Master-down interval at priority 150 with the own 500 ms interval.
const RAISED_MASTER_DOWN: Duration = Duration::from_nanos(1_707_031_250);

const ADVERT_INTERVAL: Duration = Duration::from_millis(500);

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

fn config(preempt: bool) -> Config {
    let mut config = Config::new(
        NonZeroU8::new(VRID).unwrap(),
        ip(LOCAL),
        NonZeroU8::new(PRIORITY).unwrap(),
    );
    config.preempt = preempt;
    config
}

/// Drives a new instance into `state` through ordinary events.
fn instance_in(state: HaState, preempt: bool, now: Instant) -> Instance {
    let mut instance = Instance::new(config(preempt), now);
    let setup: &[Event] = match state {
        HaState::Unknown => &[],
        HaState::Backup => &[Event::Start],
        HaState::Leader => &[Event::Start, Event::MasterDownTimerFired],
        HaState::Disabled => &[Event::Disable],
        HaState::Shutdown => &[Event::ShutdownRequested],
        HaState::Error => &[Event::Failed],
    };
    for event in setup {
        instance.handle(now, *event);
    }
    assert_eq!(instance.state(), state);
    instance
}

fn advert(source: &str, priority: u8) -> Event {
    Event::AdvertReceived {
        source: ip(source),
        priority,
        interval: AdvertInterval::from_centis(100).unwrap(),
    }
}

fn raise_priority() -> Event {
    Event::ConfigChanged {
        priority: NonZeroU8::new(150).unwrap(),
        advert_interval: AdvertInterval::DEFAULT,
        preempt: false,
    }
}

fn same_config() -> Event {
    Event::ConfigChanged {
        priority: NonZeroU8::new(PRIORITY).unwrap(),
        advert_interval: AdvertInterval::DEFAULT,
        preempt: false,
    }
}

fn send(priority: u8) -> Action {
    Action::SendAdvert(Advertisement::new(VRID, priority, AdvertInterval::DEFAULT))
}

fn arm(timer: Timer, after: Duration) -> Action {
    Action::ArmTimer { timer, after }
}

fn cancel(timer: Timer) -> Action {
    Action::CancelTimer(timer)
}

fn changed(from: HaState, to: HaState) -> Action {
    Action::StateChanged { from, to }
}

struct Row {
    name: &'static str,
    initial: HaState,
    preempt: bool,
    event: Event,
    next: HaState,
    actions: Vec<Action>,
}

fn row(
    name: &'static str,
    initial: HaState,
    event: Event,
    next: HaState,
    actions: Vec<Action>,
) -> Row {
    Row {
        name,
        initial,
        preempt: false,
        event,
        next,
        actions,
    }
}

fn with_preempt(mut row: Row) -> Row {
    row.preempt = true;
    row
}

#[rustfmt::skip]
fn table() -> Vec<Row> {
    use HaState::{Backup, Disabled, Error, Leader, Shutdown, Unknown};
    use Timer::{Advert, MasterDown};

    vec![
        // UNKNOWN: before the start. Nothing runs.
        row("unknown start", Unknown, Event::Start, Backup,
            vec![changed(Unknown, Backup), arm(MasterDown, OWN_MASTER_DOWN)]),
        row("unknown disable", Unknown, Event::Disable, Disabled, vec![changed(Unknown, Disabled)]),
        row("unknown advert", Unknown, advert(LOWER_ADDRESS, 200), Unknown, vec![]),
        row("unknown master down", Unknown, Event::MasterDownTimerFired, Unknown, vec![]),
        row("unknown advert timer", Unknown, Event::AdvertTimerFired, Unknown, vec![]),
        row("unknown shutdown", Unknown, Event::ShutdownRequested, Shutdown,
            vec![changed(Unknown, Shutdown)]),
        row("unknown failover", Unknown, Event::FailoverRequested, Unknown, vec![]),
        row("unknown config", Unknown, raise_priority(), Unknown, vec![]),
        row("unknown failure", Unknown, Event::Failed, Error, vec![changed(Unknown, Error)]),

        // BACKUP: waits for the master's adverts.
        row("backup start again", Backup, Event::Start, Backup, vec![]),
        row("backup disable", Backup, Event::Disable, Disabled,
            vec![changed(Backup, Disabled), cancel(MasterDown)]),
        row("backup higher advert", Backup, advert(LOWER_ADDRESS, 200), Backup,
            vec![arm(MasterDown, PEER_MASTER_DOWN)]),
        row("backup equal advert", Backup, advert(LOWER_ADDRESS, PRIORITY), Backup,
            vec![arm(MasterDown, PEER_MASTER_DOWN)]),
        row("backup lower advert", Backup, advert(HIGHER_ADDRESS, 50), Backup,
            vec![arm(MasterDown, PEER_MASTER_DOWN)]),
        with_preempt(row("backup lower advert, preempt", Backup, advert(HIGHER_ADDRESS, 50), Backup,
            vec![])),
        with_preempt(row("backup equal advert, preempt", Backup, advert(HIGHER_ADDRESS, PRIORITY), Backup,
            vec![arm(MasterDown, PEER_MASTER_DOWN)])),
        row("backup step-down advert", Backup, advert(HIGHER_ADDRESS, 0), Leader,
            vec![cancel(MasterDown), changed(Backup, Leader), send(PRIORITY),
                 arm(Advert, ADVERT_INTERVAL)]),
        with_preempt(row("backup step-down advert, preempt", Backup, advert(HIGHER_ADDRESS, 0), Leader,
            vec![cancel(MasterDown), changed(Backup, Leader), send(PRIORITY),
                 arm(Advert, ADVERT_INTERVAL)])),
        row("backup master down", Backup, Event::MasterDownTimerFired, Leader,
            vec![changed(Backup, Leader), send(PRIORITY), arm(Advert, ADVERT_INTERVAL)]),
        row("backup stale advert timer", Backup, Event::AdvertTimerFired, Backup, vec![]),
        row("backup shutdown", Backup, Event::ShutdownRequested, Shutdown,
            vec![changed(Backup, Shutdown), cancel(MasterDown)]),
        row("backup failover", Backup, Event::FailoverRequested, Backup, vec![]),
        row("backup priority change", Backup, raise_priority(), Backup,
            vec![arm(MasterDown, RAISED_MASTER_DOWN)]),
        row("backup same config", Backup, same_config(), Backup, vec![]),
        row("backup failure", Backup, Event::Failed, Error,
            vec![changed(Backup, Error), cancel(MasterDown)]),

        // LEADER: advertises every interval.
        row("leader start again", Leader, Event::Start, Leader, vec![]),
        row("leader disable", Leader, Event::Disable, Disabled,
            vec![changed(Leader, Disabled), cancel(Advert), send(0)]),
        row("leader higher advert", Leader, advert(LOWER_ADDRESS, 200), Backup,
            vec![changed(Leader, Backup), cancel(Advert), arm(MasterDown, PEER_MASTER_DOWN)]),
        row("leader equal advert, higher address", Leader, advert(HIGHER_ADDRESS, PRIORITY), Backup,
            vec![changed(Leader, Backup), cancel(Advert), arm(MasterDown, PEER_MASTER_DOWN)]),
        row("leader equal advert, lower address", Leader, advert(LOWER_ADDRESS, PRIORITY), Leader,
            vec![]),
        row("leader lower advert", Leader, advert(HIGHER_ADDRESS, 50), Leader, vec![]),
        with_preempt(row("leader lower advert, preempt", Leader, advert(HIGHER_ADDRESS, 50), Leader,
            vec![])),
        row("leader step-down advert", Leader, advert(HIGHER_ADDRESS, 0), Leader,
            vec![send(PRIORITY), arm(Advert, ADVERT_INTERVAL)]),
        row("leader stale master down", Leader, Event::MasterDownTimerFired, Leader, vec![]),
        row("leader advert timer", Leader, Event::AdvertTimerFired, Leader,
            vec![send(PRIORITY), arm(Advert, ADVERT_INTERVAL)]),
        row("leader shutdown", Leader, Event::ShutdownRequested, Shutdown,
            vec![changed(Leader, Shutdown), cancel(Advert), send(0)]),
        row("leader failover", Leader, Event::FailoverRequested, Backup,
            vec![changed(Leader, Backup), cancel(Advert), send(0), arm(MasterDown, OWN_MASTER_DOWN)]),
        row("leader priority change", Leader, raise_priority(), Leader,
            vec![
                Action::SendAdvert(Advertisement::new(VRID, 150, AdvertInterval::DEFAULT)),
                arm(Advert, ADVERT_INTERVAL),
            ]),
        row("leader same config", Leader, same_config(), Leader, vec![]),
        row("leader failure", Leader, Event::Failed, Error,
            vec![changed(Leader, Error), cancel(Advert), send(0)]),

        // DISABLED: out of the election until started again.
        row("disabled start", Disabled, Event::Start, Backup,
            vec![changed(Disabled, Backup), arm(MasterDown, OWN_MASTER_DOWN)]),
        row("disabled disable again", Disabled, Event::Disable, Disabled, vec![]),
        row("disabled advert", Disabled, advert(LOWER_ADDRESS, 200), Disabled, vec![]),
        row("disabled master down", Disabled, Event::MasterDownTimerFired, Disabled, vec![]),
        row("disabled advert timer", Disabled, Event::AdvertTimerFired, Disabled, vec![]),
        row("disabled shutdown", Disabled, Event::ShutdownRequested, Shutdown,
            vec![changed(Disabled, Shutdown)]),
        row("disabled failover", Disabled, Event::FailoverRequested, Disabled, vec![]),
        row("disabled config", Disabled, raise_priority(), Disabled, vec![]),
        row("disabled failure", Disabled, Event::Failed, Error, vec![changed(Disabled, Error)]),

        // SHUTDOWN and ERROR are terminal: the daemon exits.
        row("shutdown start", Shutdown, Event::Start, Shutdown, vec![]),
        row("shutdown disable", Shutdown, Event::Disable, Shutdown, vec![]),
        row("shutdown advert", Shutdown, advert(LOWER_ADDRESS, 200), Shutdown, vec![]),
        row("shutdown master down", Shutdown, Event::MasterDownTimerFired, Shutdown, vec![]),
        row("shutdown advert timer", Shutdown, Event::AdvertTimerFired, Shutdown, vec![]),
        row("shutdown again", Shutdown, Event::ShutdownRequested, Shutdown, vec![]),
        row("shutdown failover", Shutdown, Event::FailoverRequested, Shutdown, vec![]),
        row("shutdown config", Shutdown, raise_priority(), Shutdown, vec![]),
        row("shutdown failure", Shutdown, Event::Failed, Shutdown, vec![]),
        row("error start", Error, Event::Start, Error, vec![]),
        row("error disable", Error, Event::Disable, Error, vec![]),
        row("error advert", Error, advert(LOWER_ADDRESS, 200), Error, vec![]),
        row("error master down", Error, Event::MasterDownTimerFired, Error, vec![]),
        row("error advert timer", Error, Event::AdvertTimerFired, Error, vec![]),
        row("error shutdown", Error, Event::ShutdownRequested, Error, vec![]),
        row("error failover", Error, Event::FailoverRequested, Error, vec![]),
        row("error config", Error, raise_priority(), Error, vec![]),
        row("error failure again", Error, Event::Failed, Error, vec![]),
    ]
}

#[test]
fn state_table_rows() {
    let now = Instant::now();
    for row in table() {
        let mut instance = instance_in(row.initial, row.preempt, now);
        let actions = instance.handle(now, row.event);
        assert_eq!(actions, row.actions, "{}: actions", row.name);
        assert_eq!(instance.state(), row.next, "{}: next state", row.name);
    }
}

#[test]
fn state_table_covers_every_pair() {
    let states = [
        HaState::Unknown,
        HaState::Backup,
        HaState::Leader,
        HaState::Disabled,
        HaState::Shutdown,
        HaState::Error,
    ];
    let events = [
        Event::Start,
        Event::Disable,
        advert(LOWER_ADDRESS, 1),
        Event::MasterDownTimerFired,
        Event::AdvertTimerFired,
        Event::ShutdownRequested,
        Event::FailoverRequested,
        raise_priority(),
        Event::Failed,
    ];
    let covered: HashSet<_> = table()
        .iter()
        .map(|row| (row.initial, discriminant(&row.event)))
        .collect();
    for state in states {
        for event in &events {
            assert!(
                covered.contains(&(state, discriminant(event))),
                "no row for {state} and {event:?}"
            );
        }
    }
}

#[test]
fn state_changes_update_counters() {
    let start = Instant::now();
    let mut instance = Instance::new(config(false), start);
    assert_eq!(instance.counters().transitions, 0);
    assert_eq!(instance.counters().state_since, start);

    let later = start + Duration::from_secs(2);
    instance.handle(start, Event::Start);
    instance.handle(later, Event::MasterDownTimerFired);
    assert_eq!(instance.counters().transitions, 2);
    assert_eq!(instance.counters().state_since, later);
    assert_eq!(instance.counters().adverts_sent, 1);

    // An event that changes nothing leaves the time of the last change.
    instance.handle(later + ADVERT_INTERVAL, Event::AdvertTimerFired);
    assert_eq!(instance.counters().state_since, later);
    assert_eq!(instance.counters().adverts_sent, 2);
}

#[test]
fn adverts_received_in_any_state() {
    let now = Instant::now();
    for state in [
        HaState::Unknown,
        HaState::Backup,
        HaState::Leader,
        HaState::Disabled,
        HaState::Shutdown,
        HaState::Error,
    ] {
        let mut instance = instance_in(state, false, now);
        instance.handle(now, advert(LOWER_ADDRESS, 50));
        instance.handle(now, advert(LOWER_ADDRESS, 0));
        assert_eq!(instance.counters().adverts_received, 2, "{state}");
    }
}

#[test]
fn step_down_adverts_counted_as_sent() {
    let now = Instant::now();
    let mut instance = instance_in(HaState::Leader, false, now);
    assert_eq!(instance.counters().adverts_sent, 1);
    instance.handle(now, Event::ShutdownRequested);
    assert_eq!(instance.counters().adverts_sent, 2);
}

#[test]
fn backup_learns_master_interval() {
    let now = Instant::now();
    let mut instance = instance_in(HaState::Backup, false, now);
    assert_eq!(instance.master_interval(), AdvertInterval::DEFAULT);
    assert_eq!(instance.master_down_interval(), OWN_MASTER_DOWN);

    instance.handle(now, advert(LOWER_ADDRESS, 200));
    assert_eq!(
        instance.master_interval(),
        AdvertInterval::from_centis(100).unwrap()
    );
    assert_eq!(instance.master_down_interval(), PEER_MASTER_DOWN);

    // The skew follows the learned interval.
    assert_eq!(instance.skew_time(), Duration::from_nanos(609_375_000));
}

/// Until a master is heard, the backup's wait follows its own interval, so
/// a new own interval re-arms the timer.
#[test]
fn backup_interval_change_before_master() {
    let now = Instant::now();
    let mut instance = instance_in(HaState::Backup, false, now);
    let one_second = AdvertInterval::from_centis(100).unwrap();
    let actions = instance.handle(
        now,
        Event::ConfigChanged {
            priority: NonZeroU8::new(PRIORITY).unwrap(),
            advert_interval: one_second,
            preempt: false,
        },
    );
    assert_eq!(actions, vec![arm(Timer::MasterDown, PEER_MASTER_DOWN)]);

    // Once a master is heard, the own interval no longer matters.
    instance.handle(now, advert(LOWER_ADDRESS, 200));
    let actions = instance.handle(
        now,
        Event::ConfigChanged {
            priority: NonZeroU8::new(PRIORITY).unwrap(),
            advert_interval: AdvertInterval::DEFAULT,
            preempt: false,
        },
    );
    assert_eq!(actions, vec![]);
}

#[test]
fn config_change_applies() {
    let now = Instant::now();
    let mut instance = instance_in(HaState::Backup, false, now);
    instance.handle(
        now,
        Event::ConfigChanged {
            priority: NonZeroU8::new(7).unwrap(),
            advert_interval: AdvertInterval::from_centis(20).unwrap(),
            preempt: true,
        },
    );
    assert_eq!(instance.config().priority.get(), 7);
    assert_eq!(instance.config().advert_interval.centis(), 20);
    assert!(instance.config().preempt);
}

#[test]
fn ha_state_engine_numbers() {
    let states = [
        (HaState::Unknown, 0, "UNKNOWN"),
        (HaState::Backup, 1, "BACKUP"),
        (HaState::Disabled, 2, "DISABLED"),
        (HaState::Error, 3, "ERROR"),
        (HaState::Leader, 4, "LEADER"),
        (HaState::Shutdown, 5, "SHUTDOWN"),
    ];
    for (state, number, name) in states {
        assert_eq!(state.as_i32(), number);
        assert_eq!(HaState::try_from(number), Ok(state));
        assert_eq!(state.to_string(), name);
    }
    assert_eq!(HaState::try_from(6), Err(6));
    assert_eq!(HaState::try_from(-1), Err(-1));
}
