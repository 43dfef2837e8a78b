//! Config sources: the [`Source`] names and the peer hook.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::str::FromStr;

/// A source of the cluster config, with Seesaw's names for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    /// No source. Every pull from it fails.
    None,
    /// The cluster.pb file, in protobuf text format.
    Disk,
    /// The other node of the pair, through a [`PeerConfigSource`].
    Peer,
    /// The config servers of seesaw.cfg, over HTTPS, in binary protobuf.
    Server,
}

impl Source {
    /// Returns the name used by `config source` and in `config status`.
    pub fn name(self) -> &'static str {
        match self {
            Source::None => "none",
            Source::Disk => "disk",
            Source::Peer => "peer",
            Source::Server => "server",
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An unknown source name: not `none`, `disk`, `peer` or `server`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown source {0:?}: use disk, server or peer")]
pub struct UnknownSource(pub String);

impl FromStr for Source {
    type Err = UnknownSource;

    /// Parses a source name. Names are exact and lower case, as in Seesaw.
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        match name {
            "none" => Ok(Source::None),
            "disk" => Ok(Source::Disk),
            "peer" => Ok(Source::Peer),
            "server" => Ok(Source::Server),
            _ => Err(UnknownSource(name.to_string())),
        }
    }
}

/// The cluster config in force on the peer node.
#[derive(Debug, Clone)]
pub struct PeerConfig {
    /// The config as a binary (wire-format) `Cluster` message.
    pub bytes: Vec<u8>,
    /// The origin, for logs and `config status`, such as the peer's
    /// address.
    pub detail: String,
}

/// A boxed future, so that [`PeerConfigSource`] can be a trait object.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Fetches the cluster config from the peer node. The engine supplies it
/// once its peer sync client exists. The notifier decodes and checks the
/// bytes as it does a config server's reply.
pub trait PeerConfigSource: Send + Sync {
    /// Fetches the peer's config. The error is one line for logs and
    /// `config status`.
    fn fetch(&self) -> BoxFuture<'_, Result<PeerConfig, String>>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_names_round_trip() {
        for source in [Source::None, Source::Disk, Source::Peer, Source::Server] {
            assert_eq!(source.name().parse::<Source>(), Ok(source));
        }
    }

    #[test]
    fn unknown_source_name() {
        let error = "Disk".parse::<Source>().unwrap_err();
        assert_eq!(
            error.to_string(),
            "unknown source \"Disk\": use disk, server or peer"
        );
    }
}
