//! `seesaw`: the operator's shell.

use std::io::Write;
use std::path::Path;

use clap::Parser;
use seesaw_cli::engine::{Engine, GrpcEngine, NoEngine};
use seesaw_cli::exec::{Executor, Format};
use seesaw_cli::render::Clock;
use seesaw_cli::shell;
use seesaw_cli::tree::{Found, find_command};
use seesaw_ipc::DEFAULT_ENGINE_SOCKET;
use seesaw_runtime::{GlogFlags, parse_go_flags};

/// The seesaw shell: inspect and control the load balancer.
#[derive(Parser, Debug)]
#[command(name = "seesaw")]
struct Flags {
    /// Run one command and exit; without it the shell is interactive.
    #[arg(short = 'c', long = "c", default_value = "")]
    command: String,

    /// Engine socket.
    #[arg(long = "engine", default_value = DEFAULT_ENGINE_SOCKET)]
    engine: String,

    /// Output format of the show commands: text or json. A show command
    /// may also end with its own `-o json`.
    #[arg(short = 'o', long = "o", default_value = "text")]
    output: Format,

    /// Accepted for compatibility with the daemons' flags; the shell
    /// writes no log.
    #[command(flatten)]
    _glog: GlogFlags,
}

fn main() {
    let flags: Flags = parse_go_flags(std::env::args());
    std::process::exit(run(&flags));
}

fn run(flags: &Flags) -> i32 {
    if flags.command.is_empty() {
        return match dial(&flags.engine) {
            Ok(engine) => shell::run(engine, flags.output),
            Err(status) => status,
        };
    }

    // Commands that need no engine, such as `config check`, run when no
    // engine is listening.
    let needs_engine = match find_command(&flags.command).found {
        Found::Leaf(action) => action.needs_engine(),
        _ => true,
    };
    let mut engine: Box<dyn Engine> = if needs_engine {
        match dial(&flags.engine) {
            Ok(engine) => engine,
            Err(status) => return status,
        }
    } else {
        Box::new(NoEngine)
    };

    let mut executor = Executor {
        engine: engine.as_mut(),
        format: flags.output,
        clock: Clock::system,
    };
    let outcome = executor.execute(&flags.command);
    print!("{}", outcome.output);
    let _ = std::io::stdout().flush();
    if let Some(error) = outcome.error {
        eprintln!("{error}");
        return 1;
    }
    if outcome.exit {
        println!();
    }
    0
}

/// Connects to the engine, or prints why not and returns the exit status.
fn dial(path: &str) -> Result<Box<dyn Engine>, i32> {
    match GrpcEngine::dial(Path::new(path)) {
        Ok(engine) => Ok(Box::new(engine)),
        Err(e) => {
            eprintln!("Failed to connect to engine: Dial failed: {e}");
            Err(1)
        }
    }
}
