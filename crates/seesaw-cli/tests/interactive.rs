//! The interactive shell driven through a pseudo-terminal: the banner and
//! prompt, `?`, Tab, history across sessions, and the ways out.

mod support;

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::pty::{OpenptyResult, Winsize, openpty};
use support::{RunningEngine, gke_backup, gke_master};

/// How long any expected text may take to appear.
const DEADLINE: Duration = Duration::from_secs(20);

/// The shell on the slave side of a pseudo-terminal; the test types on
/// the master side and reads what the shell draws.
struct Terminal {
    child: Child,
    master: File,
    screen: Arc<Mutex<Vec<u8>>>,
    /// How much of the output earlier expectations consumed.
    seen: usize,
}

impl Terminal {
    fn start(engine: &RunningEngine, home: &std::path::Path) -> Terminal {
        let size = Winsize {
            ws_row: 40,
            ws_col: 120,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        let OpenptyResult { master, slave } = openpty(Some(&size), None).unwrap();
        let slave_io = |fd: &OwnedFd| Stdio::from(fd.try_clone().unwrap());
        let child = Command::new(env!("CARGO_BIN_EXE_seesaw_cli"))
            .args(["-engine", engine.socket.to_str().unwrap()])
            .env("TZ", "UTC")
            .env("TERM", "xterm")
            .env("HOME", home)
            // Ctrl-Z stops the shell's process group, which must not be
            // the test's.
            .process_group(0)
            .stdin(slave_io(&slave))
            .stdout(slave_io(&slave))
            .stderr(slave_io(&slave))
            .spawn()
            .unwrap();
        drop(slave);

        let master = File::from(master);
        let screen = Arc::new(Mutex::new(Vec::new()));
        let mut reader = master.try_clone().unwrap();
        let mut answer = master.try_clone().unwrap();
        let sink = screen.clone();
        std::thread::spawn(move || {
            let mut buffer = [0u8; 4096];
            // Reading fails with EIO once the shell has exited.
            while let Ok(n) = reader.read(&mut buffer) {
                if n == 0 {
                    break;
                }
                let chunk = &buffer[..n];
                // The line editor requests the cursor position, and a
                // terminal replies with its row and column.
                if chunk.windows(4).any(|w| w == b"\x1b[6n") {
                    let _ = answer.write_all(b"\x1b[1;1R");
                }
                sink.lock().unwrap().extend_from_slice(chunk);
            }
        });

        Terminal {
            child,
            master,
            screen,
            seen: 0,
        }
    }

    fn type_keys(&mut self, keys: &str) {
        self.master.write_all(keys.as_bytes()).unwrap();
        self.master.flush().unwrap();
    }

    /// Returns the output so far with escape sequences and carriage
    /// returns removed.
    fn text(&self) -> String {
        plain(&String::from_utf8_lossy(&self.screen.lock().unwrap()))
    }

    /// Waits until `expected` appears after what earlier calls consumed,
    /// and consumes the output up to its end.
    #[track_caller]
    fn expect(&mut self, expected: &str) {
        let start = Instant::now();
        loop {
            let text = self.text();
            if let Some(found) = text[self.seen.min(text.len())..].find(expected) {
                self.seen += found + expected.len();
                return;
            }
            assert!(
                start.elapsed() < DEADLINE,
                "{expected:?} did not appear; the output after what was consumed:\n{}",
                &text[self.seen.min(text.len())..]
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for the shell to exit and returns its status.
    fn wait(&mut self) -> Option<i32> {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            if start.elapsed() > DEADLINE {
                let _ = self.child.kill();
                panic!("the shell did not exit; output:\n{}", self.text());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Removes ANSI escape sequences and carriage returns.
fn plain(raw: &str) -> String {
    let mut text = String::with_capacity(raw.len());
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\x1b' => {
                if chars.peek() == Some(&'[') {
                    chars.next();
                    // Parameters, then one final byte from @ to ~.
                    for c in chars.by_ref() {
                        if ('@'..='~').contains(&c) {
                            break;
                        }
                    }
                } else {
                    chars.next();
                }
            }
            '\r' | '\x07' => {}
            c => text.push(c),
        }
    }
    text
}

fn prompt() -> String {
    let user = nix::unistd::User::from_uid(nix::unistd::getuid())
        .unwrap()
        .unwrap()
        .name;
    format!("{user}@bundled-seesaw-onprem> ")
}

#[test]
fn banner_prompt_and_command() {
    let engine = RunningEngine::start(gke_master());
    let home = tempfile::tempdir().unwrap();
    let mut term = Terminal::start(&engine, home.path());

    term.expect("\nSeesaw CLI - Engine version 2\n\n");
    term.expect(&prompt());
    term.type_keys("show nodes\r");
    term.expect("Nodes\n[1] node.100.115.222.130. enabled\n[2] node.100.115.222.131. enabled\n");
    term.type_keys("frobnicate\r");
    term.expect("Unknown command.\n");
    term.type_keys("exit\r");

    assert_eq!(term.wait(), Some(0));
    assert!(!term.text().contains("WARNING"), "{}", term.text());
}

#[test]
fn backup_warns_it_is_not_master() {
    let engine = RunningEngine::start(gke_backup());
    let home = tempfile::tempdir().unwrap();
    let mut term = Terminal::start(&engine, home.path());

    term.expect("WARNING: This seesaw is not currently the master.\n");
    term.expect(&prompt());
    term.type_keys("\x04");

    assert_eq!(term.wait(), Some(0));
}

#[test]
fn question_mark_lists_what_follows() {
    let engine = RunningEngine::start(gke_master());
    let home = tempfile::tempdir().unwrap();
    let mut term = Terminal::start(&engine, home.path());
    term.expect(&prompt());

    term.type_keys("?");
    // The `?` shows after the prompt, where it was typed.
    term.expect("?\n config\n exit\n failover\n help\n override\n quit\n show\n");
    term.expect(&prompt());

    term.type_keys("sh v?");
    term.expect("sh v?\n version\n vlans\n vservers\n");
    // The line comes back with the command spelled out.
    term.expect(&format!("{}show v", prompt()));

    term.type_keys("s admin?");
    term.expect(" admin-control-plane\n admin-ingress-controller\n");
    term.expect(&format!("{}show vservers admin", prompt()));

    term.type_keys("\x15frob?");
    term.expect("frob?\nUnknown command.\n");
    term.type_keys("\x15\x04");

    assert_eq!(term.wait(), Some(0));
}

#[test]
fn tab_completes_commands_and_names() {
    let engine = RunningEngine::start(gke_master());
    let home = tempfile::tempdir().unwrap();
    let mut term = Terminal::start(&engine, home.path());
    term.expect(&prompt());

    term.type_keys("sh vs\t");
    term.expect("show vservers ");
    term.type_keys("user-1-i\t");
    term.expect("show vservers user-1-ingress-controller ");
    term.type_keys("\r");
    term.expect("Vserver\n  Name:                user-1-ingress-controller\n");

    term.type_keys("sh backends adm\t\t");
    // The second Tab lists the candidates under the line.
    term.expect("admin-1");
    term.expect("admin-4");
    term.type_keys("3\r");
    term.expect("Backend\n  Hostname: admin-3\n");

    term.type_keys("\x04");
    assert_eq!(term.wait(), Some(0));
}

#[test]
fn history_survives_sessions() {
    let engine = RunningEngine::start(gke_master());
    let home = tempfile::tempdir().unwrap();

    let mut first = Terminal::start(&engine, home.path());
    first.expect(&prompt());
    first.type_keys("show warnings\r");
    first.expect("No warnings.\n");
    first.type_keys("\x04");
    assert_eq!(first.wait(), Some(0));

    let history = std::fs::read_to_string(home.path().join(".seesaw_history")).unwrap();
    assert!(history.contains("show warnings"), "{history}");

    let mut second = Terminal::start(&engine, home.path());
    second.expect(&prompt());
    // Up recalls the command of the earlier session.
    second.type_keys("\x1b[A\r");
    second.expect("No warnings.\n");
    second.type_keys("quit\r");
    assert_eq!(second.wait(), Some(0));
}

#[test]
fn ctrl_c_and_sigterm_exit_cleanly() {
    let engine = RunningEngine::start(gke_master());
    let home = tempfile::tempdir().unwrap();

    let mut term = Terminal::start(&engine, home.path());
    term.expect(&prompt());
    term.type_keys("show\x03");
    assert_eq!(term.wait(), Some(0));

    let mut term = Terminal::start(&engine, home.path());
    term.expect(&prompt());
    let pid = nix::unistd::Pid::from_raw(term.child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    assert_eq!(term.wait(), Some(0));
}

/// Returns the state letter of a process from /proc: `T` when stopped.
fn process_state(pid: u32) -> char {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The state follows the command name, which is in brackets.
    stat.rsplit_once(") ")
        .and_then(|(_, rest)| rest.chars().next())
        .unwrap_or('?')
}

#[test]
fn ctrl_z_suspends_and_resumes() {
    let engine = RunningEngine::start(gke_master());
    let home = tempfile::tempdir().unwrap();
    let mut term = Terminal::start(&engine, home.path());
    term.expect(&prompt());

    term.type_keys("show no\x1a");
    let start = Instant::now();
    while process_state(term.child.id()) != 'T' {
        assert!(start.elapsed() < DEADLINE, "the shell did not stop");
        std::thread::sleep(Duration::from_millis(20));
    }
    let pid = nix::unistd::Pid::from_raw(term.child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGCONT).unwrap();

    // The line is still there: finishing it runs the command.
    term.type_keys("des\r");
    term.expect("Nodes\n[1] node.100.115.222.130. enabled\n");
    term.type_keys("\x04");
    assert_eq!(term.wait(), Some(0));
}

#[test]
fn interactive_needs_a_terminal() {
    let engine = RunningEngine::start(gke_master());

    let output = engine.cli(&[]);

    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        "Failed to get raw terminal: inappropriate ioctl for device\n"
    );
    assert!(
        String::from_utf8_lossy(&output.stdout).starts_with("\nSeesaw CLI - Engine version 2\n\n")
    );
}

#[test]
fn plain_strips_escapes() {
    assert_eq!(plain("\x1b[Kab\r\x1b[2Cc\x1b[6n\n"), "abc\n");
}
