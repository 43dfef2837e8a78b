//! The state that peer sync copies from one engine to the other, its
//! changes, their wire form, and the receiver's copy, which detects a
//! missed change. Nothing here does I/O.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use seesaw_ipc::engine_proto as api;
use seesaw_ipc::sync_proto as wire;

use crate::checks::{CheckKey, CheckState};
use crate::daemon::snapshot;
use crate::engine::Engine;
use crate::overrides::{Override, OverrideState, Overrides};

/// A check of one vserver: the vserver's name and the [`check_label`].
pub type CheckId = (String, String);

/// Known check states, healthy or unhealthy; a check not yet known is
/// absent.
pub type CheckStates = BTreeMap<CheckId, CheckState>;

/// The state that peer sync copies: the overrides, the check states and
/// how many configs the engine has applied.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncState {
    pub overrides: Overrides,
    pub checks: CheckStates,
    /// Counts the configs the engine applied since it started.
    pub config_generation: u64,
}

/// The difference between two [`SyncState`]s.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StateChanges {
    /// An override in state `Default` removes the stored one.
    pub overrides: Vec<Override>,
    /// A check in state `Unknown` is no longer known.
    pub checks: Vec<(CheckId, CheckState)>,
    pub config_generation: u64,
}

impl SyncState {
    /// Returns the changes that turn `self` into `new`, or `None` when
    /// the two are equal.
    pub fn changes_to(&self, new: &SyncState) -> Option<StateChanges> {
        let changes = StateChanges {
            overrides: override_changes(&self.overrides, &new.overrides),
            checks: check_changes(&self.checks, &new.checks),
            config_generation: new.config_generation,
        };
        (!changes.leaves_unchanged(self)).then_some(changes)
    }

    pub fn apply(&mut self, changes: &StateChanges) {
        for request in &changes.overrides {
            self.overrides.store(request.clone());
        }
        for (id, state) in &changes.checks {
            if *state == CheckState::Unknown {
                self.checks.remove(id);
            } else {
                self.checks.insert(id.clone(), *state);
            }
        }
        self.config_generation = changes.config_generation;
    }
}

impl StateChanges {
    /// Returns whether applying the changes to `state` changes nothing.
    pub fn leaves_unchanged(&self, state: &SyncState) -> bool {
        self.overrides.is_empty()
            && self.checks.is_empty()
            && self.config_generation == state.config_generation
    }
}

/// Returns the check states that turn `old` into `new`, `Unknown` for each
/// check that `new` lacks.
pub fn check_changes(old: &CheckStates, new: &CheckStates) -> Vec<(CheckId, CheckState)> {
    map_changes(old, new, CheckState::Unknown)
        .map(|(id, state)| (id.clone(), state))
        .collect()
}

/// Returns the overrides that turn `old` into `new`: each one that is new
/// or different, and `Default` for each one that `new` lacks.
pub fn override_changes(old: &Overrides, new: &Overrides) -> Vec<Override> {
    let default = OverrideState::Default;
    let vservers =
        map_changes(&old.vservers, &new.vservers, default).map(|(name, state)| Override::Vserver {
            vserver: name.clone(),
            state,
        });
    let backends =
        map_changes(&old.backends, &new.backends, default).map(|(name, state)| Override::Backend {
            hostname: name.clone(),
            state,
        });
    let destinations = map_changes(&old.destinations, &new.destinations, default).map(
        |((vserver, destination), state)| Override::Destination {
            vserver: vserver.clone(),
            destination: destination.clone(),
            state,
        },
    );
    vservers.chain(backends).chain(destinations).collect()
}

/// Returns the entries of `new` that are missing or different in `old`,
/// then each key of `old` that `new` lacks, with the value `absent`.
fn map_changes<'a, K: Ord, V: PartialEq + Copy>(
    old: &'a BTreeMap<K, V>,
    new: &'a BTreeMap<K, V>,
    absent: V,
) -> impl Iterator<Item = (&'a K, V)> {
    let added = new
        .iter()
        .filter(|(key, value)| old.get(key) != Some(value))
        .map(|(key, value)| (key, *value));
    let removed = old
        .keys()
        .filter(|key| !new.contains_key(key))
        .map(move |key| (key, absent));
    added.chain(removed)
}

/// Names a check by the fields of its key, the same way on both engines,
/// such as `HTTP/80_0 PLAIN backend 192.0.2.10 port 80 vip 192.0.2.1
/// service 80/TCP`. Probe ids cannot name it, because each engine numbers
/// its probes from its own process id.
pub fn check_label(key: &CheckKey) -> String {
    let mut label = format!(
        "{} {} backend {} port {}",
        key.name, key.mode, key.backend, key.check_port
    );
    if let Some(vip) = key.vip {
        let _ = write!(label, " vip {vip}");
    }
    if let Some(protocol) = key.service_protocol {
        let _ = write!(label, " service {}/{protocol}", key.service_port);
    }
    label
}

/// Returns the known state of every check of every vserver.
pub fn check_states(engine: &Engine) -> CheckStates {
    let mut states = CheckStates::new();
    for (name, vserver) in engine.vservers() {
        for (key, state) in &vserver.check_states {
            if *state != CheckState::Unknown {
                states.insert((name.clone(), check_label(key)), *state);
            }
        }
    }
    states
}

/// Converts a state to its wire form.
pub fn state_to_wire(state: &SyncState) -> wire::State {
    wire::State {
        overrides: override_changes(&Overrides::default(), &state.overrides)
            .iter()
            .map(override_to_wire)
            .collect(),
        checks: state
            .checks
            .iter()
            .map(|(id, state)| check_to_wire(id, *state))
            .collect(),
        config_generation: state.config_generation,
    }
}

/// Converts a state from its wire form. Fails on an enum value this
/// engine does not know, which a newer peer could send.
pub fn state_from_wire(message: &wire::State) -> Result<SyncState, String> {
    let mut state = SyncState {
        config_generation: message.config_generation,
        ..SyncState::default()
    };
    for request in &message.overrides {
        state.overrides.store(override_from_wire(request)?);
    }
    for check in &message.checks {
        let (id, check_state) = check_from_wire(check)?;
        if check_state != CheckState::Unknown {
            state.checks.insert(id, check_state);
        }
    }
    Ok(state)
}

/// Converts changes to their wire form; `base` is the version they apply
/// to.
pub fn changes_to_wire(base: u64, changes: &StateChanges) -> wire::Changes {
    wire::Changes {
        base_version: base,
        overrides: changes.overrides.iter().map(override_to_wire).collect(),
        checks: changes
            .checks
            .iter()
            .map(|(id, state)| check_to_wire(id, *state))
            .collect(),
        config_generation: changes.config_generation,
    }
}

/// Converts changes from their wire form, like [`state_from_wire`].
pub fn changes_from_wire(message: &wire::Changes) -> Result<StateChanges, String> {
    Ok(StateChanges {
        overrides: message
            .overrides
            .iter()
            .map(override_from_wire)
            .collect::<Result<_, _>>()?,
        checks: message
            .checks
            .iter()
            .map(check_from_wire)
            .collect::<Result<_, _>>()?,
        config_generation: message.config_generation,
    })
}

pub fn override_to_wire(request: &Override) -> wire::Override {
    use wire::r#override::Kind;
    let kind = match request {
        Override::Vserver { vserver, state } => Kind::Vserver(api::VserverOverride {
            vserver: vserver.clone(),
            state: snapshot::override_state(*state) as i32,
        }),
        Override::Backend { hostname, state } => Kind::Backend(api::BackendOverride {
            hostname: hostname.clone(),
            state: snapshot::override_state(*state) as i32,
        }),
        Override::Destination {
            vserver,
            destination,
            state,
        } => Kind::Destination(api::DestinationOverride {
            vserver: vserver.clone(),
            destination: destination.clone(),
            state: snapshot::override_state(*state) as i32,
        }),
    };
    wire::Override { kind: Some(kind) }
}

pub fn override_from_wire(message: &wire::Override) -> Result<Override, String> {
    use wire::r#override::Kind;
    let state = |value: i32| {
        api::OverrideState::try_from(value)
            .map(snapshot::override_state_from)
            .map_err(|_| format!("unknown override state {value}"))
    };
    match &message.kind {
        Some(Kind::Vserver(o)) => Ok(Override::Vserver {
            vserver: o.vserver.clone(),
            state: state(o.state)?,
        }),
        Some(Kind::Backend(o)) => Ok(Override::Backend {
            hostname: o.hostname.clone(),
            state: state(o.state)?,
        }),
        Some(Kind::Destination(o)) => Ok(Override::Destination {
            vserver: o.vserver.clone(),
            destination: o.destination.clone(),
            state: state(o.state)?,
        }),
        None => Err("an override names no vserver, backend or destination".to_string()),
    }
}

fn check_to_wire((vserver, check): &CheckId, state: CheckState) -> wire::CheckResult {
    wire::CheckResult {
        vserver: vserver.clone(),
        check: check.clone(),
        state: snapshot::check_state(state) as i32,
    }
}

fn check_from_wire(message: &wire::CheckResult) -> Result<(CheckId, CheckState), String> {
    let state = api::CheckState::try_from(message.state)
        .map(snapshot::check_state_from)
        .map_err(|_| format!("unknown check state {}", message.state))?;
    Ok(((message.vserver.clone(), message.check.clone()), state))
}

/// Describes an override for the log, such as `vserver override for "web":
/// disabled`.
pub fn describe_override(request: &Override) -> String {
    let state = match request {
        Override::Vserver { state, .. }
        | Override::Backend { state, .. }
        | Override::Destination { state, .. } => *state,
    };
    let state = match state {
        OverrideState::Default => "default",
        OverrideState::Disabled => "disabled",
        OverrideState::Enabled => "enabled",
    };
    match request {
        Override::Vserver { vserver, .. } => format!("vserver override for \"{vserver}\": {state}"),
        Override::Backend { hostname, .. } => {
            format!("backend override for \"{hostname}\": {state}")
        }
        Override::Destination {
            vserver,
            destination,
            ..
        } => format!("destination override for \"{destination}\" of \"{vserver}\": {state}"),
    }
}

/// A reason that the receiver's copy no longer matches the sender's state. The
/// receiver then drops the session and gets a full state on a new one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Desync {
    #[error("the session did not start with the full state")]
    NoState,
    #[error("the peer restarted (instance {old:#x}, now {new:#x})")]
    Restarted { old: u64, new: u64 },
    #[error("changes from version {base} arrived while this copy is at version {held}")]
    Gap { held: u64, base: u64 },
    #[error("a heartbeat at version {sent} arrived while this copy is at version {held}")]
    Behind { held: u64, sent: u64 },
    #[error("invalid note: {0}")]
    Invalid(String),
}

/// The effect of a note on the receiver's copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received {
    /// A full state replaced the copy.
    State,
    /// These changes were applied to the copy.
    Changes(StateChanges),
    Heartbeat,
}

/// The receiver's copy of the sender's state, with the sender's instance
/// and version, so that a missed note is noticed.
#[derive(Debug, Clone, Default)]
pub struct Mirror {
    /// The sender's instance and the version of the copy; `None` until
    /// the first full state.
    position: Option<(u64, u64)>,
    pub state: SyncState,
    /// Whether the sender was master at its last note.
    pub master: bool,
}

impl Mirror {
    /// Applies one note. An error leaves the copy unusable: the receiver
    /// starts a new session with a new mirror.
    pub fn receive(&mut self, note: &wire::Note) -> Result<Received, Desync> {
        use wire::note::Body;
        let body = note
            .body
            .as_ref()
            .ok_or_else(|| Desync::Invalid("the note has no body".to_string()))?;
        if let Body::State(state) = body {
            self.state = state_from_wire(state).map_err(Desync::Invalid)?;
            self.position = Some((note.instance, note.version));
            self.master = note.master;
            return Ok(Received::State);
        }

        let (instance, held) = self.position.ok_or(Desync::NoState)?;
        if note.instance != instance {
            return Err(Desync::Restarted {
                old: instance,
                new: note.instance,
            });
        }
        self.master = note.master;
        match body {
            Body::State(_) => unreachable!("a full state returned above"),
            Body::Heartbeat(_) if note.version == held => Ok(Received::Heartbeat),
            Body::Heartbeat(_) => Err(Desync::Behind {
                held,
                sent: note.version,
            }),
            Body::Changes(changes) => {
                if changes.base_version != held || note.version <= held {
                    return Err(Desync::Gap {
                        held,
                        base: changes.base_version,
                    });
                }
                let changes = changes_from_wire(changes).map_err(Desync::Invalid)?;
                self.state.apply(&changes);
                self.position = Some((instance, note.version));
                Ok(Received::Changes(changes))
            }
        }
    }

    /// Returns the version of the copy, once a full state arrived.
    pub fn version(&self) -> Option<u64> {
        self.position.map(|(_, version)| version)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vserver(name: &str, state: OverrideState) -> Override {
        Override::Vserver {
            vserver: name.to_string(),
            state,
        }
    }

    fn overrides(requests: &[Override]) -> Overrides {
        let mut overrides = Overrides::default();
        for request in requests {
            overrides.store(request.clone());
        }
        overrides
    }

    fn check(vserver: &str, label: &str) -> CheckId {
        (vserver.to_string(), label.to_string())
    }

    fn sample() -> SyncState {
        SyncState {
            overrides: overrides(&[
                vserver("web", OverrideState::Disabled),
                Override::Backend {
                    hostname: "b1.example.com".to_string(),
                    state: OverrideState::Enabled,
                },
                Override::Destination {
                    vserver: "web".to_string(),
                    destination: "web/192.0.2.10:80/TCP".to_string(),
                    state: OverrideState::Disabled,
                },
            ]),
            checks: [
                (check("web", "HTTP/80_0"), CheckState::Healthy),
                (check("dns", "DNS/53_0"), CheckState::Unhealthy),
            ]
            .into(),
            config_generation: 3,
        }
    }

    fn note(instance: u64, version: u64, body: wire::note::Body) -> wire::Note {
        wire::Note {
            instance,
            version,
            master: true,
            body: Some(body),
        }
    }

    #[test]
    fn overrides_are_described() {
        let vserver = Override::Vserver {
            vserver: "web".to_string(),
            state: OverrideState::Disabled,
        };
        assert_eq!(
            describe_override(&vserver),
            "vserver override for \"web\": disabled"
        );
        let destination = Override::Destination {
            vserver: "web".to_string(),
            destination: "web/192.0.2.10:80/TCP".to_string(),
            state: OverrideState::Default,
        };
        assert_eq!(
            describe_override(&destination),
            "destination override for \"web/192.0.2.10:80/TCP\" of \"web\": default"
        );
    }

    #[test]
    fn override_changes_add_change_and_remove() {
        let old = overrides(&[
            vserver("a", OverrideState::Disabled),
            vserver("b", OverrideState::Disabled),
        ]);
        let new = overrides(&[
            vserver("b", OverrideState::Enabled),
            vserver("c", OverrideState::Disabled),
        ]);
        let changes = override_changes(&old, &new);
        assert_eq!(
            changes,
            vec![
                vserver("b", OverrideState::Enabled),
                vserver("c", OverrideState::Disabled),
                vserver("a", OverrideState::Default),
            ]
        );

        let mut applied = old.clone();
        for request in changes {
            applied.store(request);
        }
        assert_eq!(applied, new);
    }

    #[test]
    fn equal_states_have_no_changes() {
        assert_eq!(sample().changes_to(&sample()), None);
    }

    #[test]
    fn changes_turn_one_state_into_another() {
        let old = sample();
        let mut new = sample();
        new.overrides.store(vserver("web", OverrideState::Default));
        new.checks.remove(&check("dns", "DNS/53_0"));
        new.checks
            .insert(check("web", "HTTP/80_0"), CheckState::Unhealthy);
        new.config_generation = 4;

        let changes = old.changes_to(&new).expect("the states differ");
        assert_eq!(changes.config_generation, 4);
        let mut applied = old.clone();
        applied.apply(&changes);
        assert_eq!(applied, new);
    }

    #[test]
    fn config_generation_alone_is_a_change() {
        let mut new = sample();
        new.config_generation += 1;
        let changes = sample().changes_to(&new).expect("the generation differs");
        assert!(changes.overrides.is_empty());
        assert!(changes.checks.is_empty());
    }

    #[test]
    fn state_round_trips_through_the_wire() {
        let state = sample();
        assert_eq!(state_from_wire(&state_to_wire(&state)), Ok(state));
    }

    #[test]
    fn changes_round_trip_through_the_wire() {
        let mut new = sample();
        new.overrides.store(vserver("web", OverrideState::Default));
        new.checks.remove(&check("dns", "DNS/53_0"));
        let changes = sample().changes_to(&new).unwrap();
        let wire = changes_to_wire(7, &changes);
        assert_eq!(wire.base_version, 7);
        assert_eq!(changes_from_wire(&wire), Ok(changes));
    }

    #[test]
    fn unknown_override_state_is_rejected() {
        let mut wire = state_to_wire(&sample());
        if let Some(wire::r#override::Kind::Vserver(o)) = &mut wire.overrides[0].kind {
            o.state = 9;
        }
        let error = state_from_wire(&wire).unwrap_err();
        assert_eq!(error, "unknown override state 9");
    }

    #[test]
    fn override_without_kind_is_rejected() {
        let mut wire = state_to_wire(&sample());
        wire.overrides[0].kind = None;
        assert!(state_from_wire(&wire).is_err());
    }

    #[test]
    fn mirror_follows_state_changes_and_heartbeats() {
        use wire::note::Body;
        let mut mirror = Mirror::default();
        let first = note(5, 1, Body::State(state_to_wire(&sample())));
        assert_eq!(mirror.receive(&first), Ok(Received::State));
        assert_eq!(mirror.version(), Some(1));
        assert_eq!(mirror.state, sample());

        let mut new = sample();
        new.overrides.store(vserver("dns", OverrideState::Disabled));
        let changes = sample().changes_to(&new).unwrap();
        let second = note(5, 2, Body::Changes(changes_to_wire(1, &changes)));
        assert_eq!(mirror.receive(&second), Ok(Received::Changes(changes)));
        assert_eq!(mirror.state, new);

        let heartbeat = note(5, 2, Body::Heartbeat(wire::Heartbeat {}));
        assert_eq!(mirror.receive(&heartbeat), Ok(Received::Heartbeat));
        assert_eq!(mirror.version(), Some(2));
    }

    #[test]
    fn mirror_detects_a_gap() {
        use wire::note::Body;
        let mut mirror = Mirror::default();
        mirror
            .receive(&note(5, 1, Body::State(state_to_wire(&sample()))))
            .unwrap();
        let changes = StateChanges {
            config_generation: 9,
            ..StateChanges::default()
        };
        let skipped = note(5, 3, Body::Changes(changes_to_wire(2, &changes)));
        assert_eq!(
            mirror.receive(&skipped),
            Err(Desync::Gap { held: 1, base: 2 })
        );
    }

    #[test]
    fn mirror_detects_a_heartbeat_ahead() {
        use wire::note::Body;
        let mut mirror = Mirror::default();
        mirror
            .receive(&note(5, 1, Body::State(state_to_wire(&sample()))))
            .unwrap();
        let heartbeat = note(5, 4, Body::Heartbeat(wire::Heartbeat {}));
        assert_eq!(
            mirror.receive(&heartbeat),
            Err(Desync::Behind { held: 1, sent: 4 })
        );
    }

    #[test]
    fn mirror_needs_the_full_state_first() {
        use wire::note::Body;
        let mut mirror = Mirror::default();
        let heartbeat = note(5, 1, Body::Heartbeat(wire::Heartbeat {}));
        assert_eq!(mirror.receive(&heartbeat), Err(Desync::NoState));
    }

    #[test]
    fn mirror_detects_a_restarted_sender() {
        use wire::note::Body;
        let mut mirror = Mirror::default();
        mirror
            .receive(&note(5, 1, Body::State(state_to_wire(&sample()))))
            .unwrap();
        let heartbeat = note(6, 1, Body::Heartbeat(wire::Heartbeat {}));
        assert_eq!(
            mirror.receive(&heartbeat),
            Err(Desync::Restarted { old: 5, new: 6 })
        );
    }

    #[test]
    fn mirror_takes_full_state_any_time() {
        use wire::note::Body;
        let mut mirror = Mirror::default();
        mirror
            .receive(&note(5, 1, Body::State(state_to_wire(&sample()))))
            .unwrap();
        let mut later = note(5, 8, Body::State(state_to_wire(&SyncState::default())));
        later.master = false;
        assert_eq!(mirror.receive(&later), Ok(Received::State));
        assert_eq!(mirror.version(), Some(8));
        assert_eq!(mirror.state, SyncState::default());
        assert!(!mirror.master);
    }
}
