//! Operator overrides of vservers, backends and destinations.

use std::collections::BTreeMap;

/// What an override asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum OverrideState {
    /// Follow the configuration; storing it removes the override.
    Default,
    Disabled,
    Enabled,
}

impl OverrideState {
    /// Applies the override to the configured value.
    pub fn apply(self, configured: bool) -> bool {
        match self {
            OverrideState::Default => configured,
            OverrideState::Disabled => false,
            OverrideState::Enabled => true,
        }
    }
}

/// An override as the CLI or the peer sends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Override {
    Vserver {
        vserver: String,
        state: OverrideState,
    },
    /// Applies to the backend in every vserver.
    Backend {
        hostname: String,
        state: OverrideState,
    },
    /// Applies to one destination, named `<vserver>/<ip>:<port>/<PROTO>`
    /// (or `<vserver>/<ip>` for fwmark services).
    Destination {
        vserver: String,
        destination: String,
        state: OverrideState,
    },
}

/// The stored overrides, one map per kind so that a vserver and a backend
/// with the same name cannot overwrite each other's override.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overrides {
    pub vservers: BTreeMap<String, OverrideState>,
    pub backends: BTreeMap<String, OverrideState>,
    pub destinations: BTreeMap<(String, String), OverrideState>,
}

impl Overrides {
    /// Stores an override; a `Default` one removes the stored override.
    pub fn store(&mut self, request: Override) {
        fn set<K: Ord>(map: &mut BTreeMap<K, OverrideState>, key: K, state: OverrideState) {
            if state == OverrideState::Default {
                map.remove(&key);
            } else {
                map.insert(key, state);
            }
        }
        match request {
            Override::Vserver { vserver, state } => set(&mut self.vservers, vserver, state),
            Override::Backend { hostname, state } => set(&mut self.backends, hostname, state),
            Override::Destination {
                vserver,
                destination,
                state,
            } => set(&mut self.destinations, (vserver, destination), state),
        }
    }

    /// Returns whether a vserver serves, given its configured state.
    pub fn vserver_enabled(&self, vserver: &str, configured: bool) -> bool {
        self.vservers
            .get(vserver)
            .map_or(configured, |state| state.apply(configured))
    }

    /// Returns whether a destination may serve: a destination override
    /// wins over a backend override, which wins over the configuration.
    pub fn destination_enabled(
        &self,
        vserver: &str,
        destination: &str,
        hostname: &str,
        configured: bool,
    ) -> bool {
        let key = (vserver.to_string(), destination.to_string());
        if let Some(state) = self.destinations.get(&key) {
            return state.apply(configured);
        }
        self.backends
            .get(hostname)
            .map_or(configured, |state| state.apply(configured))
    }
}
