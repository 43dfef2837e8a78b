//! Go-style command-line flags on top of clap.
//!
//! Go's `flag` package accepts `-name`, `-name=value`, `-name value`,
//! `--name` and `--name=value` for every flag, and stops at the first
//! argument that is not a flag or at `--`. Operators' unit files and
//! watchdog.cfg use the single-dash form (`-log_dir=/var/log/seesaw`), which
//! clap does not accept for long names. [`parse_go_flags`] rewrites the
//! single-dash forms to clap's `--name` before clap sees them.

use clap::{Args, Parser};

/// The glog flags every Seesaw binary accepts.
///
/// The daemons take these so unit files and watchdog.cfg entries written
/// for the Go binaries keep working.
#[derive(Args, Debug, Clone, Default)]
pub struct GlogFlags {
    /// Directory for log files; when empty, logs go to the temporary
    /// directory.
    #[arg(long = "log_dir", default_value = "")]
    pub log_dir: String,

    /// Log to standard error instead of files.
    #[arg(long = "logtostderr", num_args = 0..=1, default_missing_value = "true", default_value = "false")]
    pub logtostderr: GoBool,

    /// Log to standard error as well as to files.
    #[arg(long = "alsologtostderr", num_args = 0..=1, default_missing_value = "true", default_value = "false")]
    pub alsologtostderr: GoBool,

    /// Log events at or above this severity (INFO, WARNING, ERROR, FATAL or
    /// 0 to 3) to standard error as well as to files.
    #[arg(long = "stderrthreshold", default_value = "ERROR")]
    pub stderrthreshold: String,

    /// Verbosity level for V-logs.
    #[arg(short = 'v', long = "v", default_value_t = 0)]
    pub verbosity: i32,

    /// Per-module verbosity, as comma-separated pattern=N.
    #[arg(long = "vmodule", default_value = "")]
    pub vmodule: String,

    /// Emit a stack trace when logging at file:N.
    #[arg(long = "log_backtrace_at", default_value = "")]
    pub log_backtrace_at: String,
}

/// A boolean flag value spelled as Go's `strconv.ParseBool` accepts it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GoBool(pub bool);

impl std::str::FromStr for GoBool {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        match value {
            "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(GoBool(true)),
            "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(GoBool(false)),
            _ => Err(format!(
                "invalid boolean value {value:?}: use true or false"
            )),
        }
    }
}

/// Parses `args` (with the program name first) as Go's `flag` package would,
/// into the clap type `T`.
///
/// On `-help` clap prints the usage and exits 0; on a bad flag it prints
/// the error and exits 2, as Go does.
pub fn parse_go_flags<T: Parser>(args: impl IntoIterator<Item = String>) -> T {
    let command = T::command();
    // The rewrite needs the argument metadata clap derived for T.
    let rewritten = rewrite_go_args(&command, args.into_iter().collect());
    let matches = command.get_matches_from(rewritten);
    match T::from_arg_matches(&matches) {
        Ok(value) => value,
        Err(error) => error.exit(),
    }
}

/// Rewrites single-dash long flags to the double-dash form clap expects.
///
/// A flag whose value is given as the next argument keeps that argument as
/// it is. Rewriting stops at the first non-flag argument or at `--`, because
/// Go's `flag` package treats everything after that as positional.
pub fn rewrite_go_args(command: &clap::Command, args: Vec<String>) -> Vec<String> {
    let mut out = Vec::with_capacity(args.len());
    let mut iter = args.into_iter();
    if let Some(program) = iter.next() {
        out.push(program);
    }

    while let Some(arg) = iter.next() {
        if arg == "--" || arg == "-" || !arg.starts_with('-') {
            // Everything from here on is positional, even if it looks like
            // a flag; `--` tells clap the same.
            out.push("--".to_string());
            if arg != "--" {
                out.push(arg);
            }
            out.extend(iter);
            break;
        }

        let body = arg.trim_start_matches('-');
        let (name, inline_value) = match body.split_once('=') {
            Some((name, value)) => (name, Some(value)),
            None => (body, None),
        };
        let name = if name == "h" { "help" } else { name };
        let known = command.get_arguments().find(|a| {
            a.get_long() == Some(name) || a.get_short().map(String::from).as_deref() == Some(name)
        });

        if let Some(value) = inline_value {
            out.push(format!("--{name}={value}"));
            continue;
        }

        // A Go boolean flag never takes the next argument as its value, but
        // clap would for an optional value, so spell the implied value out.
        // Every flag here with an optional value is a boolean.
        let optional_value = known
            .and_then(|a| a.get_num_args())
            .is_some_and(|range| range.min_values() == 0);
        if optional_value {
            out.push(format!("--{name}=true"));
            continue;
        }

        out.push(format!("--{name}"));
        let takes_value = known.is_some_and(|a| a.get_action().takes_values());
        if takes_value && let Some(value) = iter.next() {
            out.push(value);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, Parser};

    #[derive(Parser, Debug)]
    struct Demo {
        #[arg(long = "config", default_value = "/etc/seesaw/watchdog.cfg")]
        config: String,

        #[command(flatten)]
        glog: GlogFlags,

        rest: Vec<String>,
    }

    fn parse(args: &[&str]) -> Demo {
        let args = std::iter::once("demo")
            .chain(args.iter().copied())
            .map(String::from);
        Demo::try_parse_from(rewrite_go_args(&Demo::command(), args.collect())).unwrap()
    }

    #[test]
    fn single_dash_with_equals() {
        let demo = parse(&["-log_dir=/var/log/seesaw"]);
        assert_eq!(demo.glog.log_dir, "/var/log/seesaw");
    }

    #[test]
    fn single_dash_value_in_next_argument() {
        let demo = parse(&["-config", "/tmp/w.cfg", "-v=2", "-alsologtostderr"]);
        assert_eq!(demo.config, "/tmp/w.cfg");
        assert_eq!(demo.glog.verbosity, 2);
        assert!(demo.glog.alsologtostderr.0);
    }

    #[test]
    fn boolean_with_explicit_value() {
        let demo = parse(&["-alsologtostderr=false", "-logtostderr=1"]);
        assert!(!demo.glog.alsologtostderr.0);
        assert!(demo.glog.logtostderr.0);
    }

    #[test]
    fn boolean_does_not_take_next_argument() {
        // Go leaves "false" as the first positional argument here.
        let demo = parse(&["-alsologtostderr", "false"]);
        assert!(demo.glog.alsologtostderr.0);
        assert_eq!(demo.rest, vec!["false"]);
    }

    #[test]
    fn stops_at_first_positional() {
        let demo = parse(&["-v=1", "show", "-config=x"]);
        assert_eq!(demo.config, "/etc/seesaw/watchdog.cfg");
        assert_eq!(demo.rest, vec!["show", "-config=x"]);
    }

    #[test]
    fn double_dash_forms_still_work() {
        let demo = parse(&["--config=/a", "--log_dir", "/b"]);
        assert_eq!(demo.config, "/a");
        assert_eq!(demo.glog.log_dir, "/b");
    }
}
