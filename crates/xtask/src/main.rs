//! Project tasks, run as `cargo xtask <task>`.

fn main() {
    eprintln!("usage: cargo xtask test");
    std::process::exit(2);
}
