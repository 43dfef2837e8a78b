//! Project tasks, run as `cargo xtask <task>`.

mod deb;
mod doctests;
mod glibc;
mod install;
mod inventory;
mod jobs;
mod lab;
mod nextest;
mod release;
mod report;
mod sample_lab;
mod test_cmd;
mod workspace;

use std::ffi::OsString;
use std::process::ExitCode;

const USAGE: &str = "usage: cargo xtask <task>

Tasks:
  deb [--out DIR]               build the Debian package of the release binaries
  install [--prefix DIR] [--destdir DIR] [--binaries DIR]
                                build the release binaries (or take DIR's) and
                                install them
  lab                           the sample GKE manual-mode pair on a real kernel
  release                       build release binaries for glibc 2.17 and check them
  test                          run every test: host, doc, root and kernel lab
  vm [-s DIR]... [-w DIR]... -- COMMAND [ARG]...
                                run COMMAND as root in the kernel lab VM
  vm-selftest                   run the kernel lab's self-test in the VM

docs/testing.md describes the test groups and their conventions.";

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let task = args.first().and_then(|arg| arg.to_str());
    let result = match task {
        Some("test") if args.len() == 1 => test_cmd::run(&test_cmd::Selection {
            packages: Vec::new(),
            lab_only: false,
        }),
        Some("deb") => deb::run(&args[1..]),
        Some("install") => install::run(&args[1..]),
        Some("lab") if args.len() == 1 => sample_lab::run(),
        Some("release") if args.len() == 1 => release::run(),
        Some("vm") => lab::run_vm_command(&args[1..]),
        Some("vm-selftest") if args.len() == 1 => test_cmd::run(&test_cmd::Selection {
            packages: vec!["xtask".to_owned()],
            lab_only: true,
        }),
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
