//! The vtysh protocol that FRR and Quagga daemons speak on their vty Unix
//! socket (`bgpd.vty`): the client sends one command as text followed by a
//! NUL byte, and the daemon replies with the command's output followed by
//! three NUL bytes and a status byte, the daemon's `CMD_*` return code.
//! FRR 8.4 and Quagga 0.99 frame replies the same way.
//!
//! A new session starts in the view node, where only `show` commands
//! exist; `enable` moves it to the enable node without a password.

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

use super::BgpError;

/// The command succeeded (`CMD_SUCCESS`).
pub const STATUS_SUCCESS: u8 = 0;

/// Returns the name of a daemon status byte, from the `CMD_*` codes of
/// FRR 8.4's `lib/command.h`.
pub fn status_name(status: u8) -> &'static str {
    match status {
        0 => "success",
        1 => "warning",
        2 => "unknown command",
        3 => "ambiguous command",
        4 => "incomplete command",
        5 => "too many arguments",
        6 => "nothing to do",
        10 => "success in another daemon",
        11 => "no such file",
        13 => "configuration failed",
        14 => "not my instance",
        15 => "no level up",
        16 => "no such daemon",
        _ => "unexpected status",
    }
}

/// Encodes one command for the daemon: its text and a terminating NUL.
///
/// A command with a NUL byte or a line break is rejected, because the
/// daemon would read it as two commands or a truncated one.
pub fn encode_command(command: &str) -> Result<Vec<u8>, BgpError> {
    if command.contains(['\0', '\n', '\r']) {
        return Err(BgpError::InvalidCommand(command.to_owned()));
    }
    let mut bytes = Vec::with_capacity(command.len() + 1);
    bytes.extend_from_slice(command.as_bytes());
    bytes.push(0);
    Ok(bytes)
}

/// A complete reply to one command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The command's output; empty for most configuration commands.
    pub text: String,
    /// The daemon's return code; [`STATUS_SUCCESS`] when it succeeded.
    pub status: u8,
}

/// Collects the bytes of one reply until its end marker.
///
/// The output itself never contains three NULs in a row. Shorter runs of
/// NUL bytes inside it are dropped, as Go Seesaw's reader dropped them.
#[derive(Debug, Default)]
pub struct ReplyDecoder {
    text: Vec<u8>,
    nul_run: usize,
}

impl ReplyDecoder {
    /// Consumes `bytes` up to the end of the reply. Returns the reply and
    /// how many bytes of `bytes` it used once the status byte has arrived,
    /// and `None` while more bytes are needed.
    pub fn push(&mut self, bytes: &[u8]) -> Option<(Reply, usize)> {
        for (index, &byte) in bytes.iter().enumerate() {
            if self.nul_run == 3 {
                let text = String::from_utf8_lossy(&self.text).into_owned();
                *self = Self::default();
                return Some((Reply { text, status: byte }, index + 1));
            }
            if byte == 0 {
                self.nul_run += 1;
            } else {
                self.nul_run = 0;
                self.text.push(byte);
            }
        }
        None
    }
}

/// An open session with a daemon's vty socket.
pub struct Vty {
    stream: UnixStream,
    path: PathBuf,
    timeout: Duration,
    /// Bytes read after the end of the previous reply. The daemon sends
    /// nothing unasked, so this stays empty in practice.
    unread: Vec<u8>,
}

impl Vty {
    /// Connects to the vty socket at `path`. `timeout` limits the connect
    /// and each command's round trip.
    pub async fn connect(path: &Path, timeout: Duration) -> Result<Vty, BgpError> {
        let connect_failed = |source| BgpError::Connect {
            path: path.to_owned(),
            source,
        };
        let stream = tokio::time::timeout(timeout, UnixStream::connect(path))
            .await
            .map_err(|_| connect_failed(io::ErrorKind::TimedOut.into()))?
            .map_err(connect_failed)?;
        Ok(Vty {
            stream,
            path: path.to_owned(),
            timeout,
            unread: Vec::new(),
        })
    }

    /// Sends `command` and returns its reply, whatever its status.
    pub async fn send(&mut self, command: &str) -> Result<Reply, BgpError> {
        let request = encode_command(command)?;
        tokio::time::timeout(self.timeout, self.round_trip(command, &request))
            .await
            .map_err(|_| BgpError::Timeout {
                path: self.path.clone(),
                command: command.to_owned(),
                timeout: self.timeout,
            })?
    }

    /// Sends `command` and returns its output, or an error when the daemon
    /// reports a status other than success.
    pub async fn command(&mut self, command: &str) -> Result<String, BgpError> {
        let reply = self.send(command).await?;
        if reply.status != STATUS_SUCCESS {
            return Err(BgpError::Rejected {
                path: self.path.clone(),
                command: command.to_owned(),
                status: reply.status,
                output: reply.text.trim().to_owned(),
            });
        }
        Ok(reply.text)
    }

    /// Sends each command in turn, stopping at the first that fails.
    pub async fn commands(&mut self, commands: &[String]) -> Result<(), BgpError> {
        for command in commands {
            self.command(command).await?;
        }
        Ok(())
    }

    async fn round_trip(&mut self, command: &str, request: &[u8]) -> Result<Reply, BgpError> {
        let io_failed = |source| BgpError::Io {
            path: self.path.clone(),
            command: command.to_owned(),
            source,
        };
        self.stream.write_all(request).await.map_err(io_failed)?;

        let mut decoder = ReplyDecoder::default();
        let mut pending = std::mem::take(&mut self.unread);
        let mut buffer = vec![0; 16 * 1024];
        loop {
            if let Some((reply, used)) = decoder.push(&pending) {
                self.unread = pending.split_off(used);
                return Ok(reply);
            }
            let count = self.stream.read(&mut buffer).await.map_err(io_failed)?;
            if count == 0 {
                return Err(BgpError::Closed {
                    path: self.path.clone(),
                    command: command.to_owned(),
                });
            }
            pending.clear();
            pending.extend_from_slice(&buffer[..count]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Replies of FRR 8.4's bgpd to `show ip bgp neighbors` and `show
    /// running-config`, captured with their end markers.
    const NEIGHBORS: &[u8] = include_bytes!("../../tests/fixtures/frr/show-ip-bgp-neighbors.vty");
    const RUNNING_CONFIG: &[u8] = include_bytes!("../../tests/fixtures/frr/running-config.vty");

    #[test]
    fn encode_appends_nul() {
        assert_eq!(encode_command("enable").unwrap(), b"enable\0");
        assert_eq!(encode_command("").unwrap(), b"\0");
    }

    #[test]
    fn encode_rejects_line_breaks_and_nul() {
        for command in ["network 192.0.2.1/32\nend", "end\r", "a\0b"] {
            let error = encode_command(command).unwrap_err();
            assert!(matches!(error, BgpError::InvalidCommand(_)), "{error}");
        }
    }

    #[test]
    fn decode_empty_success() {
        let mut decoder = ReplyDecoder::default();
        let (reply, used) = decoder.push(b"\0\0\0\0").unwrap();
        assert_eq!(reply.text, "");
        assert_eq!(reply.status, STATUS_SUCCESS);
        assert_eq!(used, 4);
    }

    #[test]
    fn decode_unknown_command_status() {
        // bgpd's reply to "bogus command" in the enable node.
        let bytes = b"% [BGP] Unknown command: bogus command\n\0\0\0\x02";
        let (reply, used) = ReplyDecoder::default().push(bytes).unwrap();
        assert_eq!(reply.text, "% [BGP] Unknown command: bogus command\n");
        assert_eq!(reply.status, 2);
        assert_eq!(used, bytes.len());
        assert_eq!(status_name(reply.status), "unknown command");
    }

    #[test]
    fn decode_captured_replies_in_any_split() {
        for captured in [NEIGHBORS, RUNNING_CONFIG] {
            let (text, marker) = captured.split_at(captured.len() - 4);
            assert_eq!(marker, b"\0\0\0\0", "fixture must end with the marker");
            let expected = std::str::from_utf8(text).unwrap();

            for chunk in [1, 2, 3, 4, 7, 1024, captured.len()] {
                let mut decoder = ReplyDecoder::default();
                let mut replies = Vec::new();
                for piece in captured.chunks(chunk) {
                    if let Some((reply, used)) = decoder.push(piece) {
                        assert_eq!(used, piece.len(), "chunk size {chunk}");
                        replies.push(reply);
                    }
                }
                assert_eq!(replies.len(), 1, "chunk size {chunk}");
                assert_eq!(replies[0].text, expected, "chunk size {chunk}");
                assert_eq!(replies[0].status, STATUS_SUCCESS);
            }
        }
    }

    #[test]
    fn decode_stops_at_status_byte() {
        let mut decoder = ReplyDecoder::default();
        let (first, used) = decoder.push(b"one\0\0\0\x0dtwo\0\0\0\0").unwrap();
        assert_eq!(first.text, "one");
        assert_eq!(first.status, 13);
        assert_eq!(used, 7);

        let (second, _) = decoder.push(b"two\0\0\0\0").unwrap();
        assert_eq!(second.text, "two");
    }

    #[test]
    fn decode_drops_short_nul_runs() {
        let (reply, _) = ReplyDecoder::default().push(b"a\0b\0\0c\0\0\0\0").unwrap();
        assert_eq!(reply.text, "abc");
    }

    /// Serves one connection on a socket in `dir`: for each command read,
    /// writes the next of `replies`, then closes the connection.
    fn scripted_bgpd(dir: &Path, replies: Vec<&'static [u8]>) -> PathBuf {
        let path = dir.join("bgpd.vty");
        let listener = tokio::net::UnixListener::bind(&path).unwrap();
        tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut buffer = [0; 256];
            for reply in replies {
                // Reads up to the command's NUL.
                let mut request = Vec::new();
                while !request.ends_with(&[0]) {
                    let count = stream.read(&mut buffer).await.unwrap();
                    assert!(count > 0, "client closed early");
                    request.extend_from_slice(&buffer[..count]);
                }
                stream.write_all(reply).await.unwrap();
            }
        });
        path
    }

    #[tokio::test]
    async fn session_returns_output_then_rejection() {
        let dir = tempfile::tempdir().unwrap();
        let path = scripted_bgpd(
            dir.path(),
            vec![
                b"\0\0\0\0",
                b"line one\nline two\n\0\0\0\0",
                b"% Can't find static route specified\n\0\0\0\x0d",
            ],
        );
        let mut vty = Vty::connect(&path, Duration::from_secs(10)).await.unwrap();
        assert_eq!(vty.command("enable").await.unwrap(), "");
        assert_eq!(
            vty.command("show running-config").await.unwrap(),
            "line one\nline two\n"
        );
        let error = vty.command("no network 192.0.2.1/32").await.unwrap_err();
        let BgpError::Rejected {
            command,
            status,
            output,
            ..
        } = &error
        else {
            panic!("{error:?}");
        };
        assert_eq!(command, "no network 192.0.2.1/32");
        assert_eq!(*status, 13);
        assert_eq!(output, "% Can't find static route specified");
        assert!(
            error.to_string().contains("configuration failed"),
            "{error}"
        );
    }

    #[tokio::test]
    async fn session_reports_closed_connection() {
        let dir = tempfile::tempdir().unwrap();
        // A reply cut off before its status byte, then the end of stream.
        let path = scripted_bgpd(dir.path(), vec![b"partial\0\0"]);
        let mut vty = Vty::connect(&path, Duration::from_secs(10)).await.unwrap();
        let error = vty.command("enable").await.unwrap_err();
        assert!(matches!(error, BgpError::Closed { .. }), "{error:?}");
    }

    #[tokio::test]
    async fn session_times_out_without_reply() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bgpd.vty");
        // Accepts nothing: the connection waits in the backlog unanswered.
        let _listener = tokio::net::UnixListener::bind(&path).unwrap();
        let mut vty = Vty::connect(&path, Duration::from_millis(200))
            .await
            .unwrap();
        let error = vty.command("enable").await.unwrap_err();
        assert!(matches!(error, BgpError::Timeout { .. }), "{error:?}");
        assert!(error.to_string().contains("`enable`"), "{error}");
    }

    #[tokio::test]
    async fn connect_names_missing_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing.vty");
        let Err(error) = Vty::connect(&path, Duration::from_secs(1)).await else {
            panic!("connected to a missing socket");
        };
        assert!(matches!(error, BgpError::Connect { .. }), "{error:?}");
        assert!(error.to_string().contains("missing.vty"), "{error}");
    }

    #[test]
    fn decode_waits_for_status_byte() {
        let mut decoder = ReplyDecoder::default();
        assert!(decoder.push(b"text\0\0\0").is_none());
        let (reply, used) = decoder.push(b"\x01").unwrap();
        assert_eq!(reply.text, "text");
        assert_eq!(reply.status, 1);
        assert_eq!(used, 1);
    }
}
