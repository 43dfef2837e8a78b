//! The gRPC API of `seesaw_ncc`, served over a Unix socket.
//!
//! - [`proto`]: the messages and the client and server of `proto/ncc.proto`,
//!   generated at build time; [`engine_proto`] likewise for
//!   `proto/engine.proto`, the engine's API; [`sync_proto`] for
//!   `proto/sync.proto`, the peer sync between two engines.
//! - [`ipvs`]: the IPVS messages to and from `seesaw-ipvs` types.
//! - [`client`]: connecting to the NCC with retries and a timeout per call.
//! - [`socket`]: what a server does before serving: create the run
//!   directories, detect a socket that is still in use, remove a stale one.
//! - [`backoff`]: the delays between retries of a call that keeps failing.
//! - `fake_engine` (with the `test-support` feature): an engine server for
//!   the tests of its clients.

pub mod backoff;
pub mod client;
#[cfg(feature = "test-support")]
pub mod fake_engine;
pub mod ipvs;
pub mod socket;

/// Generated from `proto/ncc.proto` (package `seesaw.ncc.v1`).
pub mod proto {
    tonic::include_proto!("seesaw.ncc.v1");
}

/// Generated from `proto/engine.proto` (package `seesaw.engine.v1`).
pub mod engine_proto {
    tonic::include_proto!("seesaw.engine.v1");
}

/// Generated from `proto/sync.proto` (package `seesaw.sync.v1`).
pub mod sync_proto {
    include!(concat!(env!("OUT_DIR"), "/sync/seesaw.sync.v1.rs"));
}

pub use backoff::Backoff;
pub use client::{
    CallError, ClientOptions, ConnectError, EngineClient, NccClient, connect, connect_channel,
    connect_engine, connect_engine_lazy, connect_lazy,
};
pub use socket::{SocketError, SocketGuard, bind_unix_socket, prepare_run_directory};

/// Where the NCC listens by default.
pub const DEFAULT_NCC_SOCKET: &str = "/var/run/seesaw/ncc/ncc.sock";

/// The engine's default socket path.
pub const DEFAULT_ENGINE_SOCKET: &str = "/var/run/seesaw/engine/engine.sock";
