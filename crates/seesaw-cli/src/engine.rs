//! The engine calls the shell makes, behind a trait so that commands can
//! run against a fake in tests, and the blocking gRPC client that
//! implements it over the engine's Unix socket.

use std::fmt;
use std::path::Path;
use std::time::Duration;

use seesaw_ipc::engine_proto::{
    BackendOverride, BgpNeighborList, ClusterStatusReply, ConfigSourceRequest, ConfigStatusReply,
    DestinationOverride, Empty, HaStatus, VlanList, VserverList, VserverOverride,
};
use seesaw_ipc::{ClientOptions, EngineClient, connect_engine};

/// A failed engine call: the engine's message, or the transport's when the
/// call did not reach the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineError(pub String);

impl fmt::Display for EngineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<tonic::Status> for EngineError {
    fn from(status: tonic::Status) -> Self {
        EngineError(status_text(&status))
    }
}

pub type EngineResult<T> = Result<T, EngineError>;

/// The engine calls of the shell.
pub trait Engine {
    fn cluster_status(&mut self) -> EngineResult<ClusterStatusReply>;
    fn config_status(&mut self) -> EngineResult<ConfigStatusReply>;
    fn ha_status(&mut self) -> EngineResult<HaStatus>;
    fn bgp_neighbors(&mut self) -> EngineResult<BgpNeighborList>;
    fn vlans(&mut self) -> EngineResult<VlanList>;
    fn vservers(&mut self) -> EngineResult<VserverList>;
    fn config_reload(&mut self) -> EngineResult<()>;
    /// Sets the config source, or only reads it when `source` is empty;
    /// returns the source in force before the call.
    fn config_source(&mut self, source: &str) -> EngineResult<String>;
    fn failover(&mut self) -> EngineResult<()>;
    fn override_vserver(&mut self, request: VserverOverride) -> EngineResult<()>;
    fn override_backend(&mut self, request: BackendOverride) -> EngineResult<()>;
    fn override_destination(&mut self, request: DestinationOverride) -> EngineResult<()>;
}

/// The engine reached over gRPC, with each call run to completion on a
/// single-threaded runtime.
pub struct GrpcEngine {
    runtime: tokio::runtime::Runtime,
    client: EngineClient,
    last_failure: Option<tonic::Code>,
}

/// The engine's socket could not be reached.
#[derive(Debug)]
pub struct DialError(pub String);

impl fmt::Display for DialError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl GrpcEngine {
    /// Connects once, without retries, to the engine listening on `path`.
    pub fn dial(path: &Path) -> Result<Self, DialError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|error| DialError(format!("cannot start the I/O runtime: {error}")))?;
        let options = ClientOptions {
            connect_attempts: 1,
            connect_timeout: Duration::from_secs(5),
            ..ClientOptions::default()
        };
        let client = runtime
            .block_on(connect_engine(path, &options))
            .map_err(|error| {
                DialError(format!(
                    "dial unix {}: {}",
                    path.display(),
                    dial_cause(&error.source)
                ))
            })?;
        Ok(GrpcEngine {
            runtime,
            client,
            last_failure: None,
        })
    }

    /// Returns the gRPC code of the last call that failed, if any did.
    pub fn last_failure(&self) -> Option<tonic::Code> {
        self.last_failure
    }

    fn reply<T>(&mut self, result: Result<tonic::Response<T>, tonic::Status>) -> EngineResult<T> {
        match result {
            Ok(reply) => Ok(reply.into_inner()),
            Err(status) => {
                self.last_failure = Some(status.code());
                Err(status.into())
            }
        }
    }
}

/// Returns why a dial failed, worded as Go words a failed connect:
/// `connect: no such file or directory`, or else the deepest cause.
fn dial_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut current = error;
    loop {
        if let Some(io) = current.downcast_ref::<std::io::Error>()
            && let Some(code) = io.raw_os_error()
        {
            let reason = nix::errno::Errno::from_raw(code).desc().to_lowercase();
            return format!("connect: {reason}");
        }
        match current.source() {
            Some(next) => current = next,
            None => return current.to_string(),
        }
    }
}

/// Returns the status's message followed by its deepest cause when the
/// message does not already end with it: a lost connection has only
/// "transport error" as its message.
fn status_text(status: &tonic::Status) -> String {
    let mut text = if status.message().is_empty() {
        status.code().description().to_string()
    } else {
        status.message().to_string()
    };
    let mut cause = std::error::Error::source(status);
    let mut innermost = None;
    while let Some(error) = cause {
        innermost = Some(error.to_string());
        cause = error.source();
    }
    if let Some(innermost) = innermost
        && !text.ends_with(&innermost)
    {
        text.push_str(&format!(": {innermost}"));
    }
    text
}

impl Engine for GrpcEngine {
    fn cluster_status(&mut self) -> EngineResult<ClusterStatusReply> {
        let call = self.client.cluster_status(Empty {});
        let result = self.runtime.block_on(call);
        self.reply(result)
    }

    fn config_status(&mut self) -> EngineResult<ConfigStatusReply> {
        let call = self.client.config_status(Empty {});
        let result = self.runtime.block_on(call);
        self.reply(result)
    }

    fn ha_status(&mut self) -> EngineResult<HaStatus> {
        let call = self.client.ha_status_get(Empty {});
        let result = self.runtime.block_on(call);
        self.reply(result)
    }

    fn bgp_neighbors(&mut self) -> EngineResult<BgpNeighborList> {
        let call = self.client.bgp_neighbors(Empty {});
        let result = self.runtime.block_on(call);
        self.reply(result)
    }

    fn vlans(&mut self) -> EngineResult<VlanList> {
        let call = self.client.vlans(Empty {});
        let result = self.runtime.block_on(call);
        self.reply(result)
    }

    fn vservers(&mut self) -> EngineResult<VserverList> {
        let call = self.client.vservers(Empty {});
        let result = self.runtime.block_on(call);
        self.reply(result)
    }

    fn config_reload(&mut self) -> EngineResult<()> {
        let call = self.client.config_reload(Empty {});
        let result = self.runtime.block_on(call);
        self.reply(result).map(|_| ())
    }

    fn config_source(&mut self, source: &str) -> EngineResult<String> {
        let call = self.client.config_source(ConfigSourceRequest {
            source: source.to_string(),
        });
        let result = self.runtime.block_on(call);
        Ok(self.reply(result)?.previous)
    }

    fn failover(&mut self) -> EngineResult<()> {
        let call = self.client.failover(Empty {});
        let result = self.runtime.block_on(call);
        self.reply(result).map(|_| ())
    }

    fn override_vserver(&mut self, request: VserverOverride) -> EngineResult<()> {
        let call = self.client.override_vserver(request);
        let result = self.runtime.block_on(call);
        self.reply(result).map(|_| ())
    }

    fn override_backend(&mut self, request: BackendOverride) -> EngineResult<()> {
        let call = self.client.override_backend(request);
        let result = self.runtime.block_on(call);
        self.reply(result).map(|_| ())
    }

    fn override_destination(&mut self, request: DestinationOverride) -> EngineResult<()> {
        let call = self.client.override_destination(request);
        let result = self.runtime.block_on(call);
        self.reply(result).map(|_| ())
    }
}

/// The engine of commands that need none, such as `help` and
/// `config check`: every call fails.
pub struct NoEngine;

fn not_connected<T>() -> EngineResult<T> {
    Err(EngineError("not connected to the engine".to_string()))
}

impl Engine for NoEngine {
    fn cluster_status(&mut self) -> EngineResult<ClusterStatusReply> {
        not_connected()
    }

    fn config_status(&mut self) -> EngineResult<ConfigStatusReply> {
        not_connected()
    }

    fn ha_status(&mut self) -> EngineResult<HaStatus> {
        not_connected()
    }

    fn bgp_neighbors(&mut self) -> EngineResult<BgpNeighborList> {
        not_connected()
    }

    fn vlans(&mut self) -> EngineResult<VlanList> {
        not_connected()
    }

    fn vservers(&mut self) -> EngineResult<VserverList> {
        not_connected()
    }

    fn config_reload(&mut self) -> EngineResult<()> {
        not_connected()
    }

    fn config_source(&mut self, _: &str) -> EngineResult<String> {
        not_connected()
    }

    fn failover(&mut self) -> EngineResult<()> {
        not_connected()
    }

    fn override_vserver(&mut self, _: VserverOverride) -> EngineResult<()> {
        not_connected()
    }

    fn override_backend(&mut self, _: BackendOverride) -> EngineResult<()> {
        not_connected()
    }

    fn override_destination(&mut self, _: DestinationOverride) -> EngineResult<()> {
        not_connected()
    }
}
