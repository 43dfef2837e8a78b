//! Clients of the NCC and the engine over their Unix sockets.

use std::path::{Path, PathBuf};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use tokio::net::UnixStream;
use tonic::transport::{Channel, Endpoint, Uri};
use tower::service_fn;

use crate::engine_proto::engine_client::EngineClient as GeneratedEngineClient;
use crate::proto::ncc_client::NccClient as GeneratedClient;

/// The generated client on a channel over the Unix socket. The channel
/// reconnects by itself when the NCC restarts.
pub type NccClient = GeneratedClient<Channel>;

/// The engine's generated client on a channel over its Unix socket.
pub type EngineClient = GeneratedEngineClient<Channel>;

/// Connection attempts and call limits of [`connect`].
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Connection attempts before giving up; at least 1.
    pub connect_attempts: u32,
    /// Wait after the first failed attempt; the n-th failure waits n times
    /// as long (0.5 s, 1 s, 1.5 s with the defaults).
    pub retry_delay: Duration,
    /// Limit on one connection attempt.
    pub connect_timeout: Duration,
    /// Limit on each call, after which it fails with `DEADLINE_EXCEEDED`
    /// or `CANCELLED`; the NCC may still complete the operation.
    pub call_timeout: Duration,
}

impl Default for ClientOptions {
    /// Three attempts and a 20 s call limit, as the Go engine used.
    fn default() -> Self {
        Self {
            connect_attempts: 3,
            retry_delay: Duration::from_millis(500),
            connect_timeout: Duration::from_secs(5),
            call_timeout: Duration::from_secs(20),
        }
    }
}

impl ClientOptions {
    /// Returns options for a caller that retries on its own: one
    /// connection attempt, and `limit` for the dial and for each call.
    pub fn single_attempt(limit: Duration) -> Self {
        Self {
            connect_attempts: 1,
            connect_timeout: limit,
            call_timeout: limit,
            ..Self::default()
        }
    }
}

/// A daemon could not be reached.
#[derive(Debug, thiserror::Error)]
#[error("failed to connect to the {daemon} at {path} after {attempts} attempts: {source}")]
pub struct ConnectError {
    pub daemon: &'static str,
    pub path: PathBuf,
    pub attempts: u32,
    #[source]
    pub source: tonic::transport::Error,
}

/// A failed call to a daemon: the method's name and the gRPC status.
#[derive(Debug, thiserror::Error)]
#[error("{call} failed: {}", status_text(.status))]
pub struct CallError {
    /// The RPC method, such as `HaUpdate`.
    pub call: &'static str,
    #[source]
    pub status: tonic::Status,
}

impl CallError {
    pub fn new(call: &'static str, status: tonic::Status) -> CallError {
        CallError { call, status }
    }
}

/// Returns the status's code and message, followed by the innermost cause
/// when the message does not already end with it: a lost connection has
/// only "transport error" as its message.
fn status_text(status: &tonic::Status) -> String {
    let mut text = format!("{:?}: {}", status.code(), status.message());
    let mut innermost = None;
    let mut cause = std::error::Error::source(status);
    while let Some(error) = cause {
        innermost = Some(error);
        cause = error.source();
    }
    if let Some(error) = innermost {
        let error = error.to_string();
        if !text.ends_with(&error) {
            text.push_str(&format!(" ({error})"));
        }
    }
    text
}

/// Connects to the NCC listening on `path`.
pub async fn connect(
    path: impl AsRef<Path>,
    options: &ClientOptions,
) -> Result<NccClient, ConnectError> {
    connect_channel(path, options, "NCC")
        .await
        .map(GeneratedClient::new)
}

/// Connects to the engine listening on `path`.
pub async fn connect_engine(
    path: impl AsRef<Path>,
    options: &ClientOptions,
) -> Result<EngineClient, ConnectError> {
    connect_channel(path, options, "engine")
        .await
        .map(GeneratedEngineClient::new)
}

/// Connects to the engine listening on `path` without waiting for it: the
/// channel dials the socket at the first call and again at the first call
/// after each failure, so a client can be made before the engine is up.
/// While nothing listens on `path`, each call fails with `UNAVAILABLE`.
pub fn connect_engine_lazy(path: impl AsRef<Path>, options: &ClientOptions) -> EngineClient {
    GeneratedEngineClient::new(lazy_channel(path.as_ref(), options))
}

/// Connects to the NCC listening on `path` without waiting for it, as
/// [`connect_engine_lazy`] does for the engine.
pub fn connect_lazy(path: impl AsRef<Path>, options: &ClientOptions) -> NccClient {
    GeneratedClient::new(lazy_channel(path.as_ref(), options))
}

fn lazy_channel(path: &Path, options: &ClientOptions) -> Channel {
    endpoint(options).connect_with_connector_lazy(unix_connector(path))
}

/// Opens a gRPC channel to the daemon (named `daemon` in messages) that
/// listens on the Unix socket `path`.
pub async fn connect_channel(
    path: impl AsRef<Path>,
    options: &ClientOptions,
    daemon: &'static str,
) -> Result<Channel, ConnectError> {
    let path = path.as_ref().to_path_buf();
    let endpoint = endpoint(options);
    let attempts = options.connect_attempts.max(1);
    let mut attempt = 1;
    loop {
        match endpoint.connect_with_connector(unix_connector(&path)).await {
            Ok(channel) => return Ok(channel),
            Err(source) if attempt >= attempts => {
                return Err(ConnectError {
                    daemon,
                    path,
                    attempts,
                    source,
                });
            }
            Err(error) => {
                let delay = options.retry_delay * attempt.min(10);
                tracing::warn!(
                    "failed to connect to the {daemon} at {} (attempt {attempt} of {attempts}): {error}; retrying in {delay:?}",
                    path.display()
                );
                tokio::time::sleep(delay).await;
                attempt += 1;
            }
        }
    }
}

/// Returns the endpoint with the limits of `options`. Its URI is required
/// by the HTTP/2 layer but never resolved, because the connector always
/// dials the Unix socket.
fn endpoint(options: &ClientOptions) -> Endpoint {
    Endpoint::from_static("http://seesaw.local")
        .connect_timeout(options.connect_timeout)
        .timeout(options.call_timeout)
}

/// Returns a connector that dials the Unix socket `path` for every
/// connection the channel opens.
fn unix_connector(
    path: &Path,
) -> impl tower::Service<Uri, Response = TokioIo<UnixStream>, Error = std::io::Error, Future: Send>
+ Clone
+ Send
+ 'static {
    let path = path.to_path_buf();
    service_fn(move |_: Uri| {
        let path = path.clone();
        async move { Ok::<_, std::io::Error>(TokioIo::new(UnixStream::connect(path).await?)) }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn call_error_names_missing_socket() {
        let root = tempfile::tempdir().unwrap();
        let mut client =
            connect_engine_lazy(root.path().join("missing.sock"), &ClientOptions::default());

        let status = client
            .ha_config(crate::engine_proto::Empty {})
            .await
            .unwrap_err();
        let error = CallError::new("HaConfig", status);

        assert_eq!(
            error.to_string(),
            "HaConfig failed: Unavailable: No such file or directory (os error 2)"
        );
    }

    #[test]
    fn call_error_adds_innermost_cause() {
        let cause = std::io::Error::new(std::io::ErrorKind::BrokenPipe, "broken pipe");
        let mut status = tonic::Status::unknown("transport error");
        status.set_source(std::sync::Arc::new(cause));

        let error = CallError::new("HealthState", status);

        assert_eq!(
            error.to_string(),
            "HealthState failed: Unknown: transport error (broken pipe)"
        );
    }

    #[tokio::test]
    async fn connect_gives_up_after_attempts() {
        let root = tempfile::tempdir().unwrap();
        let path = root.path().join("missing.sock");
        let options = ClientOptions {
            connect_attempts: 2,
            retry_delay: Duration::from_millis(10),
            ..ClientOptions::default()
        };

        let error = connect(&path, &options).await.unwrap_err();

        assert_eq!(error.attempts, 2);
        assert!(error.to_string().contains("missing.sock"), "{error}");
    }

    #[tokio::test]
    async fn connect_retries_until_server_starts() {
        let root = tempfile::tempdir().unwrap();
        let path = root.path().join("late.sock");
        let server_path = path.clone();
        // The listener appears after the first attempt has failed.
        let server = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let listener = tokio::net::UnixListener::bind(&server_path).unwrap();
            let (_stream, _) = listener.accept().await.unwrap();
            tokio::time::sleep(Duration::from_millis(500)).await;
        });
        let options = ClientOptions {
            connect_attempts: 5,
            retry_delay: Duration::from_millis(100),
            ..ClientOptions::default()
        };

        let client = connect(&path, &options).await;

        assert!(client.is_ok(), "{:?}", client.err());
        server.abort();
    }
}
