//! The Seesaw engine's vserver logic as pure state machines: events such
//! as a new configuration, a health check result or an override go in,
//! and the resulting actions for the NCC and the healthcheck component
//! come out. Nothing here does I/O; a thin task around [`Engine`] carries
//! the actions out.
//!
//! - [`expand`]: a vserver into IPVS services, destinations, rules and checks.
//! - [`checks`]: check keys, probe deduplication and DSR/TUN marks.
//! - [`health`]: health propagation and watermarks.
//! - [`kernel`]: the desired kernel state, actions and their diff.
//! - `desired`: the kernel state of all vservers, merged one at a time.
//! - [`overrides`]: vserver, backend and destination overrides.
//! - [`reconcile`]: convergence with the state read back from the kernel.
//! - [`engine`]: the state machine over all vservers.
//! - [`ha`]: the HA state as seesaw_ha reports it.
//! - [`daemon`]: the `seesaw_engine` daemon around them: the NCC client,
//!   the kernel worker, the gRPC service and its access control.

#![forbid(unsafe_code)]

pub mod checks;
pub mod daemon;
mod desired;
pub mod engine;
pub mod expand;
pub mod ha;
pub mod health;
pub mod kernel;
pub mod marks;
pub mod notifier;
pub mod overrides;
pub mod reconcile;

pub use engine::{Engine, EngineOptions, Event, VserverState};
pub use kernel::{Action, KernelState};
