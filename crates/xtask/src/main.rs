//! Project tasks, run as `cargo xtask <task>`.

mod lab;
mod workspace;

use std::ffi::OsString;
use std::process::ExitCode;

const USAGE: &str = "usage: cargo xtask <task>

Tasks:
  vm [-s DIR]... [-w DIR]... -- COMMAND [ARG]...
                                run COMMAND as root in the kernel lab VM";

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let task = args.first().and_then(|arg| arg.to_str());
    let result = match task {
        Some("vm") => lab::run_vm_command(&args[1..]),
        Some("-h" | "--help" | "help") => {
            println!("{USAGE}");
            Ok(0)
        }
        _ => {
            eprintln!("{USAGE}");
            Ok(2)
        }
    };
    match result {
        Ok(status) => ExitCode::from(u8::try_from(status).unwrap_or(1)),
        Err(error) => {
            eprintln!("xtask: {error:#}");
            ExitCode::FAILURE
        }
    }
}
