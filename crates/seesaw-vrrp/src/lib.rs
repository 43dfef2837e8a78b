//! VRRPv3 advertisements and the HA state machine.
