//! The interactive shell: a line editor with the original's prompt and
//! keys, plus history kept across sessions.
//!
//! - Tab completes command words and the names a command takes.
//! - `?` lists what may follow the text before the cursor. The line is
//!   accepted with a marker so that the list prints below it in cooked
//!   mode, and editing resumes with the rewritten line.
//! - Ctrl-D on an empty line, Ctrl-C, `exit` and `quit` end the shell.
//! - History lives in `~/.seesaw_history`, 1000 entries.

use std::cell::RefCell;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::{Arc, Mutex};

use nix::sys::signal::{SigSet, Signal};
use nix::sys::termios::{SetArg, Termios, tcgetattr, tcsetattr};
use rustyline::completion::{Completer, Pair};
use rustyline::error::ReadlineError;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::history::{DefaultHistory, History};
use rustyline::validate::Validator;
use rustyline::{
    Cmd, CompletionType, ConditionalEventHandler, Config, Context, Editor, Event, EventContext,
    EventHandler, Helper, KeyCode, KeyEvent, Modifiers, RepeatCount,
};

use crate::complete::{complete, engine_names, help};
use crate::engine::Engine;
use crate::exec::{Executor, Format};
use crate::render::Clock;

/// The file under the home directory that keeps the history.
pub const HISTORY_FILE: &str = ".seesaw_history";
/// The maximum number of history entries kept.
pub const HISTORY_SIZE: usize = 1000;

type SharedEngine = Rc<RefCell<Box<dyn Engine>>>;

/// Completion for rustyline, backed by the engine for argument names.
struct ShellHelper {
    engine: SharedEngine,
}

impl Completer for ShellHelper {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let mut engine = self.engine.borrow_mut();
        let mut names = |kind| engine_names(engine.as_mut(), kind);
        let candidates = complete(&line[..pos], &mut names)
            .into_iter()
            .filter(|c| c.replacement != line[..pos])
            .map(|c| Pair {
                display: c.display,
                replacement: c.replacement,
            })
            .collect();
        // Each replacement is the whole text before the cursor, so that
        // Tab also spells out abbreviated command words.
        Ok((0, candidates))
    }
}

impl Hinter for ShellHelper {
    type Hint = String;
}

impl Highlighter for ShellHelper {}

impl Validator for ShellHelper {}

impl Helper for ShellHelper {}

/// The `?` key: records the cursor position and accepts the line, so that
/// the shell can print the list below it.
struct QuestionMark {
    pending: Arc<Mutex<Option<usize>>>,
}

impl ConditionalEventHandler for QuestionMark {
    fn handle(&self, _: &Event, _: RepeatCount, _: bool, ctx: &EventContext) -> Option<Cmd> {
        if let Ok(mut pending) = self.pending.lock() {
            *pending = Some(ctx.pos());
        }
        // Show the `?` where it was typed; the text after the cursor is
        // dropped, so it is cleared from the screen too.
        let mut stdout = std::io::stdout();
        let _ = stdout.write_all(b"\x1b[K?");
        let _ = stdout.flush();
        Some(Cmd::AcceptLine)
    }
}

/// Runs the interactive shell until the user leaves it; returns the exit
/// status.
pub fn run(engine: Box<dyn Engine>, format: Format) -> i32 {
    let engine: SharedEngine = Rc::new(RefCell::new(engine));

    let cluster = match engine.borrow_mut().cluster_status() {
        Ok(cluster) => cluster,
        Err(e) => return fatal(&format!("Failed to get cluster status: {e}")),
    };
    print!("\nSeesaw CLI - Engine version {}\n\n", cluster.version);

    let user = match current_user() {
        Ok(user) => user,
        Err(e) => return fatal(&format!("Failed to get current user: {e}")),
    };
    let ha = match engine.borrow_mut().ha_status() {
        Ok(ha) => ha,
        Err(e) => return fatal(&format!("Failed to get HA status: {e}")),
    };
    if ha.state != seesaw_ipc::engine_proto::HaState::Leader as i32 {
        println!("WARNING: This seesaw is not currently the master.");
    }
    let prompt = format!("{user}@{}> ", cluster.site);

    if !std::io::stdin().is_terminal() {
        return fatal("Failed to get raw terminal: inappropriate ioctl for device");
    }
    let saved_terminal = tcgetattr(std::io::stdin()).ok();
    exit_on_signals(saved_terminal);

    let mut editor = match new_editor(engine.clone()) {
        Ok(editor) => editor,
        Err(e) => return fatal(&format!("Failed to get raw terminal: {e}")),
    };
    let pending = Arc::new(Mutex::new(None));
    editor.bind_sequence(
        KeyEvent(KeyCode::Char('?'), Modifiers::NONE),
        EventHandler::Conditional(Box::new(QuestionMark {
            pending: pending.clone(),
        })),
    );
    let history = history_path();
    if let Some(path) = &history {
        match editor.load_history(path) {
            Ok(()) => {}
            // A missing file is the normal case on first use.
            Err(ReadlineError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => eprintln!("cannot read the history from {}: {e}", path.display()),
        }
    }

    let mut initial = String::new();
    let mut history_error_shown = false;
    loop {
        let line = match editor.readline_with_initial(&prompt, (&initial, "")) {
            Ok(line) => line,
            Err(ReadlineError::Eof | ReadlineError::Interrupted) => break,
            Err(e) => return fatal(&format!("Failed to read a line: {e}")),
        };
        initial.clear();

        let question = pending.lock().ok().and_then(|mut p| p.take());
        if let Some(pos) = question {
            let mut engine = engine.borrow_mut();
            let mut names = |kind| engine_names(engine.as_mut(), kind);
            let listing = help(&line[..pos.min(line.len())], &mut names);
            for text in &listing.lines {
                println!("{text}");
            }
            initial = listing.line;
            continue;
        }

        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let _ = editor.add_history_entry(line);
        if let Some(path) = &history
            && let Err(e) = editor.append_history(path)
            && !history_error_shown
        {
            eprintln!("cannot save the history to {}: {e}", path.display());
            history_error_shown = true;
        }

        let mut engine = engine.borrow_mut();
        let mut executor = Executor {
            engine: engine.as_mut(),
            format,
            clock: Clock::system,
        };
        let outcome = executor.execute(line);
        print!("{}", outcome.output);
        if let Some(error) = outcome.error {
            println!("{error}");
        }
        if outcome.exit {
            break;
        }
    }

    println!();
    0
}

fn new_editor(engine: SharedEngine) -> rustyline::Result<Editor<ShellHelper, DefaultHistory>> {
    let config = Config::builder()
        .completion_type(CompletionType::List)
        .max_history_size(HISTORY_SIZE)?
        .auto_add_history(false)
        .build();
    let mut editor = Editor::with_config(config)?;
    editor.set_helper(Some(ShellHelper { engine }));
    // Keep an entry that repeats the one before it: the history then
    // shows what was typed, as a terminal log would.
    editor.history_mut().ignore_dups(false)?;
    Ok(editor)
}

/// Returns `~/.seesaw_history`, or `None` without a home directory.
pub fn history_path() -> Option<PathBuf> {
    let home = std::env::var_os("HOME").filter(|h| !h.is_empty())?;
    Some(PathBuf::from(home).join(HISTORY_FILE))
}

/// Returns the name of the user running the shell.
fn current_user() -> Result<String, String> {
    let uid = nix::unistd::getuid();
    match nix::unistd::User::from_uid(uid) {
        Ok(Some(user)) => Ok(user.name),
        Ok(None) => Err(format!("unknown user id {uid}")),
        Err(e) => Err(e.to_string()),
    }
}

/// Prints `message` to standard error and returns the failure status.
fn fatal(message: &str) -> i32 {
    let _ = std::io::stdout().flush();
    eprintln!("{message}");
    1
}

/// Makes SIGINT, SIGQUIT and SIGTERM end the shell as the original does:
/// restore the terminal, print a newline and exit with status 0. A thread
/// waits for them; the signals stay blocked everywhere else.
fn exit_on_signals(saved_terminal: Option<Termios>) {
    let mut signals = SigSet::empty();
    signals.add(Signal::SIGINT);
    signals.add(Signal::SIGQUIT);
    signals.add(Signal::SIGTERM);
    if signals.thread_block().is_err() {
        // The default actions stay; the shell still works.
        return;
    }
    std::thread::spawn(move || {
        if signals.wait().is_err() {
            return;
        }
        if let Some(terminal) = &saved_terminal {
            let _ = tcsetattr(std::io::stdin(), SetArg::TCSANOW, terminal);
        }
        println!();
        std::process::exit(0);
    });
}
