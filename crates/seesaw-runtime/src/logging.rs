//! glog-style logging on top of `tracing`.
//!
//! Every daemon calls [`init`] once with its program name and its
//! [`GlogFlags`]. Events logged with the `tracing` macros then land where
//! Seesaw v2's glog put them, in the same layout, so operators' tools and
//! habits keep working:
//!
//! - files in `-log_dir` named
//!   `<program>.<host>.<user>.log.<SEVERITY>.<YYYYMMDD-HHMMSS>.<pid>`, one per
//!   severity (INFO, WARNING, ERROR), each holding its own severity and every
//!   higher one, with a `<program>.<SEVERITY>` symlink to the newest;
//! - five header lines, then lines such as
//!   `I1204 19:45:19.287874    3333 main.rs:43] message`;
//! - standard error for `-logtostderr`, `-alsologtostderr` and events at or
//!   above `-stderrthreshold` (ERROR by default).
//!
//! As in glog, a severity's file is created when its first line is written,
//! so a daemon that never warns has no WARNING file. Without `-log_dir`, a
//! daemon whose standard error is the systemd journal logs only to standard
//! error, because the journal already stores and rotates the lines. Anywhere
//! else it writes files to the temporary directory, as glog does.
//!
//! `tracing` levels map to severities as TRACE, DEBUG and INFO to INFO, WARN
//! to WARNING and ERROR to ERROR. `-v=1` enables DEBUG events and `-v=2` or
//! more enables TRACE events. NOTE: `-vmodule` and `-log_backtrace_at` are
//! accepted but ignored, and no event maps to FATAL.

use std::fmt::{self, Write as _};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use chrono::{DateTime, Local};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::Registry;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::{Context, Layer, SubscriberExt as _};

use crate::flags::GlogFlags;

/// A glog severity. The order is the order of importance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Info,
    Warning,
    Error,
    Fatal,
}

impl Severity {
    const ALL: [Severity; 4] = [
        Severity::Info,
        Severity::Warning,
        Severity::Error,
        Severity::Fatal,
    ];

    /// Returns the upper-case name used in file names and symlinks.
    pub fn name(self) -> &'static str {
        match self {
            Severity::Info => "INFO",
            Severity::Warning => "WARNING",
            Severity::Error => "ERROR",
            Severity::Fatal => "FATAL",
        }
    }

    /// Returns the letter that starts each log line.
    fn letter(self) -> char {
        match self {
            Severity::Info => 'I',
            Severity::Warning => 'W',
            Severity::Error => 'E',
            Severity::Fatal => 'F',
        }
    }

    fn index(self) -> usize {
        self as usize
    }

    /// Maps a `tracing` level to the severity glog would use.
    pub fn from_level(level: Level) -> Severity {
        if level == Level::ERROR {
            Severity::Error
        } else if level == Level::WARN {
            Severity::Warning
        } else {
            Severity::Info
        }
    }

    /// Parses a `-stderrthreshold` value: a name in any case or 0 to 3, as
    /// glog accepts.
    pub fn parse(value: &str) -> Option<Severity> {
        let value = value.trim();
        if let Ok(number) = value.parse::<usize>() {
            return Severity::ALL.get(number).copied();
        }
        Severity::ALL
            .into_iter()
            .find(|severity| severity.name().eq_ignore_ascii_case(value))
    }
}

/// glog starts a new file when one reaches this size (1800 MiB).
const MAX_FILE_SIZE: u64 = 1800 * 1024 * 1024;

/// The destinations of log lines, resolved from the flags and the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSettings {
    /// The program name at the start of file names, such as `seesaw_ncc`.
    pub program: String,
    /// The directory for log files, or `None` to write no files.
    pub log_dir: Option<PathBuf>,
    /// Events at or above this severity are also written to standard error.
    pub stderr_threshold: Severity,
    /// The maximum `tracing` level that is logged (TRACE is the most verbose).
    pub max_level: LevelFilter,
}

impl LogSettings {
    /// Resolves the glog flags. `journal_on_stderr` is whether standard
    /// error is the systemd journal, and `temp_dir` is where files go
    /// without `-log_dir`.
    ///
    /// Returns the settings and a warning about an invalid
    /// `-stderrthreshold`, which falls back to ERROR.
    pub fn from_flags(
        program: &str,
        flags: &GlogFlags,
        journal_on_stderr: bool,
        temp_dir: &Path,
    ) -> (LogSettings, Option<String>) {
        let mut warning = None;
        let threshold = Severity::parse(&flags.stderrthreshold).unwrap_or_else(|| {
            warning = Some(format!(
                "invalid -stderrthreshold {:?}: use INFO, WARNING, ERROR, FATAL or 0 to 3; \
                 using ERROR",
                flags.stderrthreshold
            ));
            Severity::Error
        });

        let stderr_only = flags.logtostderr.0 || (flags.log_dir.is_empty() && journal_on_stderr);
        let log_dir = if stderr_only {
            None
        } else if flags.log_dir.is_empty() {
            Some(temp_dir.to_path_buf())
        } else {
            Some(PathBuf::from(&flags.log_dir))
        };
        let stderr_threshold = if stderr_only || flags.alsologtostderr.0 {
            Severity::Info
        } else {
            threshold
        };

        let max_level = match flags.verbosity {
            i32::MIN..=0 => LevelFilter::INFO,
            1 => LevelFilter::DEBUG,
            _ => LevelFilter::TRACE,
        };

        let settings = LogSettings {
            program: program.to_string(),
            log_dir,
            stderr_threshold,
            max_level,
        };
        (settings, warning)
    }
}

/// Installs the glog-style logger as the global `tracing` subscriber.
///
/// Call it once, right after parsing the flags. A second call, or a call
/// after another subscriber was installed, changes nothing.
pub fn init(program: &str, flags: &GlogFlags) {
    let (settings, warning) =
        LogSettings::from_flags(program, flags, journal_on_stderr(), &std::env::temp_dir());
    let subscriber = Registry::default().with(GlogLayer::new(settings));
    if tracing::subscriber::set_global_default(subscriber).is_ok()
        && let Some(warning) = warning
    {
        tracing::warn!("{warning}");
    }
}

/// Reports whether standard error is the systemd journal stream.
///
/// systemd sets `JOURNAL_STREAM` to `<device>:<inode>` of that stream.
/// Programs that inherit the variable but whose standard error was
/// redirected, such as the watchdog's children, must not take it as the
/// journal, so the device and inode are compared with standard error's.
pub fn journal_on_stderr() -> bool {
    let Ok(value) = std::env::var("JOURNAL_STREAM") else {
        return false;
    };
    let Some((device, inode)) = value.split_once(':') else {
        return false;
    };
    let (Ok(device), Ok(inode)) = (device.parse::<u64>(), inode.parse::<u64>()) else {
        return false;
    };
    match nix::sys::stat::fstat(io::stderr()) {
        Ok(stat) => stat.st_dev == device && stat.st_ino == inode,
        Err(_) => false,
    }
}

/// The `tracing` layer that writes glog files and lines.
pub struct GlogLayer {
    settings: LogSettings,
    host: String,
    user: String,
    pid: u32,
    files: Mutex<[Option<LogFile>; 4]>,
}

struct LogFile {
    file: File,
    size: u64,
}

impl GlogLayer {
    pub fn new(settings: LogSettings) -> GlogLayer {
        GlogLayer {
            settings,
            host: short_hostname(),
            user: user_name(),
            pid: std::process::id(),
            files: Mutex::new([None, None, None, None]),
        }
    }

    /// Writes one formatted line to the files of `severity` and of every
    /// lower severity, and to standard error when the threshold or a file
    /// error requires it.
    fn write_line(&self, severity: Severity, now: &DateTime<Local>, line: &str) {
        let mut to_stderr = severity >= self.settings.stderr_threshold;
        if let Some(dir) = &self.settings.log_dir {
            // A poisoned lock only means another thread panicked while
            // writing, and the files are still usable.
            let mut files = self
                .files
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            for target in Severity::ALL.into_iter().filter(|s| *s <= severity) {
                let slot = &mut files[target.index()];
                if let Err(error) = self.write_to_file(slot, dir, target, now, line) {
                    *slot = None;
                    if !to_stderr {
                        eprintln!(
                            "{}: failed to write the {} log file in {}: {error}; writing to \
                             standard error instead",
                            self.settings.program,
                            target.name(),
                            dir.display()
                        );
                    }
                    to_stderr = true;
                }
            }
        }
        if to_stderr {
            // Nowhere is left to report a failed write to standard error.
            let _ = io::stderr().lock().write_all(line.as_bytes());
        }
    }

    fn write_to_file(
        &self,
        slot: &mut Option<LogFile>,
        dir: &Path,
        severity: Severity,
        now: &DateTime<Local>,
        line: &str,
    ) -> io::Result<()> {
        let full = slot
            .as_ref()
            .is_some_and(|f| f.size + line.len() as u64 > MAX_FILE_SIZE);
        if slot.is_none() || full {
            *slot = Some(self.create_file(dir, severity, now)?);
        }
        let Some(log_file) = slot.as_mut() else {
            unreachable!("the slot was filled above");
        };
        log_file.file.write_all(line.as_bytes())?;
        log_file.size += line.len() as u64;
        Ok(())
    }

    /// Creates a new file for `severity`, writes the header and points the
    /// `<program>.<SEVERITY>` symlink at it.
    fn create_file(
        &self,
        dir: &Path,
        severity: Severity,
        now: &DateTime<Local>,
    ) -> io::Result<LogFile> {
        fs::create_dir_all(dir)?;
        let name = log_file_name(
            &self.settings.program,
            &self.host,
            &self.user,
            severity,
            now,
            self.pid,
        );
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join(&name))?;
        let header = log_file_header(&self.host, now);
        file.write_all(header.as_bytes())?;

        let link = dir.join(format!("{}.{}", self.settings.program, severity.name()));
        replace_symlink(&name, &link);
        Ok(LogFile {
            file,
            size: header.len() as u64,
        })
    }
}

impl<S: Subscriber> Layer<S> for GlogLayer {
    fn enabled(&self, metadata: &tracing::Metadata<'_>, _: Context<'_, S>) -> bool {
        self.settings.max_level >= *metadata.level()
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(self.settings.max_level)
    }

    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        let metadata = event.metadata();
        if self.settings.max_level < *metadata.level() {
            return;
        }
        let severity = Severity::from_level(*metadata.level());
        let now = Local::now();

        let mut message = MessageVisitor::default();
        event.record(&mut message);
        let file = metadata
            .file()
            .map(|path| path.rsplit('/').next().unwrap_or(path))
            .unwrap_or("???");
        let line = format_line(
            severity,
            &now,
            self.pid,
            file,
            metadata.line().unwrap_or(0),
            &message.text,
        );
        self.write_line(severity, &now, &line);
    }
}

/// Collects the `message` field and appends other fields as ` key=value`.
#[derive(Default)]
struct MessageVisitor {
    text: String,
}

impl Visit for MessageVisitor {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.text.insert_str(0, value);
        } else {
            let _ = write!(self.text, " {}={value}", field.name());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            self.text.insert_str(0, &format!("{value:?}"));
        } else {
            let _ = write!(self.text, " {}={value:?}", field.name());
        }
    }
}

/// Formats one log line, ending in a newline:
/// `Lmmdd hh:mm:ss.uuuuuu threadid file:line] message`.
///
/// The thread id column contains the process id, right-aligned in seven
/// columns, as Seesaw v2's Go glog wrote it.
pub fn format_line(
    severity: Severity,
    now: &DateTime<Local>,
    pid: u32,
    file: &str,
    line: u32,
    message: &str,
) -> String {
    let mut text = format!(
        "{}{} {pid:>7} {file}:{line}] {message}",
        severity.letter(),
        now.format("%m%d %H:%M:%S%.6f"),
    );
    if !text.ends_with('\n') {
        text.push('\n');
    }
    text
}

/// Returns the file name glog uses:
/// `<program>.<host>.<user>.log.<SEVERITY>.<YYYYMMDD-HHMMSS>.<pid>`.
pub fn log_file_name(
    program: &str,
    host: &str,
    user: &str,
    severity: Severity,
    now: &DateTime<Local>,
    pid: u32,
) -> String {
    format!(
        "{program}.{host}.{user}.log.{}.{}.{pid}",
        severity.name(),
        now.format("%Y%m%d-%H%M%S")
    )
}

/// Returns the header at the top of every log file, in glog's layout.
///
/// The Go original names its compiler on the `Binary:` line; this names
/// seesaw-rs and its version instead.
pub fn log_file_header(host: &str, now: &DateTime<Local>) -> String {
    format!(
        "Log file created at: {}\n\
         Running on machine: {host}\n\
         Binary: Built with Rust (seesaw-rs {}) for {}/{}\n\
         Previous log: <none>\n\
         Log line format: [IWEF]mmdd hh:mm:ss.uuuuuu threadid file:line] msg\n",
        now.format("%Y/%m/%d %H:%M:%S"),
        env!("CARGO_PKG_VERSION"),
        std::env::consts::OS,
        std::env::consts::ARCH,
    )
}

/// Points `link` at `target` (a name in the same directory). Failures are
/// ignored, as glog ignores them, because the log file itself was created.
pub fn replace_symlink(target: &str, link: &Path) {
    let _ = fs::remove_file(link);
    let _ = std::os::unix::fs::symlink(target, link);
}

/// Returns the host name up to its first dot, or `unknownhost`.
fn short_hostname() -> String {
    let host = nix::unistd::gethostname()
        .ok()
        .and_then(|name| name.into_string().ok())
        .unwrap_or_default();
    let short = host.split('.').next().unwrap_or("");
    if short.is_empty() {
        "unknownhost".to_string()
    } else {
        short.to_string()
    }
}

/// Returns the name of the real user, with every character other than
/// ASCII letters, digits and `_` replaced by `_`, or `unknownuser`.
fn user_name() -> String {
    let name = nix::unistd::User::from_uid(nix::unistd::getuid())
        .ok()
        .flatten()
        .map(|user| user.name)
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_default();
    sanitize_user(&name)
}

fn sanitize_user(name: &str) -> String {
    if name.is_empty() {
        return "unknownuser".to_string();
    }
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flags::GoBool;
    use chrono::TimeZone;

    fn flags() -> GlogFlags {
        GlogFlags {
            stderrthreshold: "ERROR".to_string(),
            ..GlogFlags::default()
        }
    }

    fn settings_for(dir: &Path) -> LogSettings {
        LogSettings {
            program: "seesaw_test".to_string(),
            log_dir: Some(dir.to_path_buf()),
            // FATAL keeps the test output free of copies on standard error.
            stderr_threshold: Severity::Fatal,
            max_level: LevelFilter::INFO,
        }
    }

    /// Returns the names in `dir` that start with `prefix`, sorted.
    fn names_with_prefix(dir: &Path, prefix: &str) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().into_string().unwrap())
            .filter(|name| name.starts_with(prefix))
            .collect();
        names.sort();
        names
    }

    fn read_link_target(dir: &Path, severity: Severity) -> String {
        let link = dir.join(format!("seesaw_test.{}", severity.name()));
        let target = fs::read_link(&link).unwrap();
        assert!(target.is_relative(), "{target:?} should be relative");
        fs::read_to_string(dir.join(target)).unwrap()
    }

    #[test]
    fn severity_parse_names_and_numbers() {
        assert_eq!(Severity::parse("ERROR"), Some(Severity::Error));
        assert_eq!(Severity::parse("warning"), Some(Severity::Warning));
        assert_eq!(Severity::parse("0"), Some(Severity::Info));
        assert_eq!(Severity::parse("3"), Some(Severity::Fatal));
        assert_eq!(Severity::parse("4"), None);
        assert_eq!(Severity::parse("loud"), None);
    }

    #[test]
    fn settings_default_to_temp_dir_files() {
        let (settings, warning) =
            LogSettings::from_flags("seesaw_x", &flags(), false, Path::new("/tmp"));
        assert_eq!(settings.log_dir, Some(PathBuf::from("/tmp")));
        assert_eq!(settings.stderr_threshold, Severity::Error);
        assert_eq!(settings.max_level, LevelFilter::INFO);
        assert!(warning.is_none());
    }

    #[test]
    fn settings_journal_without_log_dir_uses_stderr() {
        let (settings, _) = LogSettings::from_flags("seesaw_x", &flags(), true, Path::new("/tmp"));
        assert_eq!(settings.log_dir, None);
        assert_eq!(settings.stderr_threshold, Severity::Info);
    }

    #[test]
    fn settings_log_dir_wins_over_journal() {
        let flags = GlogFlags {
            log_dir: "/var/log/seesaw".to_string(),
            ..flags()
        };
        let (settings, _) = LogSettings::from_flags("seesaw_x", &flags, true, Path::new("/tmp"));
        assert_eq!(settings.log_dir, Some(PathBuf::from("/var/log/seesaw")));
        assert_eq!(settings.stderr_threshold, Severity::Error);
    }

    #[test]
    fn settings_logtostderr_writes_no_files() {
        let flags = GlogFlags {
            log_dir: "/var/log/seesaw".to_string(),
            logtostderr: GoBool(true),
            ..flags()
        };
        let (settings, _) = LogSettings::from_flags("seesaw_x", &flags, false, Path::new("/tmp"));
        assert_eq!(settings.log_dir, None);
        assert_eq!(settings.stderr_threshold, Severity::Info);
    }

    #[test]
    fn settings_alsologtostderr_keeps_files() {
        let flags = GlogFlags {
            alsologtostderr: GoBool(true),
            ..flags()
        };
        let (settings, _) = LogSettings::from_flags("seesaw_x", &flags, false, Path::new("/t"));
        assert_eq!(settings.log_dir, Some(PathBuf::from("/t")));
        assert_eq!(settings.stderr_threshold, Severity::Info);
    }

    #[test]
    fn settings_verbosity_levels() {
        for (verbosity, expected) in [
            (0, LevelFilter::INFO),
            (1, LevelFilter::DEBUG),
            (2, LevelFilter::TRACE),
            (5, LevelFilter::TRACE),
        ] {
            let flags = GlogFlags {
                verbosity,
                ..flags()
            };
            let (settings, _) = LogSettings::from_flags("x", &flags, false, Path::new("/t"));
            assert_eq!(settings.max_level, expected, "-v={verbosity}");
        }
    }

    #[test]
    fn settings_invalid_threshold_warns() {
        let flags = GlogFlags {
            stderrthreshold: "LOUD".to_string(),
            ..flags()
        };
        let (settings, warning) = LogSettings::from_flags("x", &flags, false, Path::new("/t"));
        assert_eq!(settings.stderr_threshold, Severity::Error);
        assert!(warning.unwrap().contains("\"LOUD\""));
    }

    #[test]
    fn line_format_matches_glog() {
        let now = Local
            .with_ymd_and_hms(2026, 12, 4, 19, 45, 19)
            .unwrap()
            .checked_add_signed(chrono::TimeDelta::microseconds(287_874))
            .unwrap();
        let line = format_line(Severity::Info, &now, 3333, "main.rs", 43, "hello");
        assert_eq!(line, "I1204 19:45:19.287874    3333 main.rs:43] hello\n");
        let line = format_line(Severity::Error, &now, 12, "a.rs", 1, "two\n");
        assert_eq!(line, "E1204 19:45:19.287874      12 a.rs:1] two\n");
    }

    #[test]
    fn file_name_and_header_layout() {
        let now = Local.with_ymd_and_hms(2026, 12, 4, 20, 20, 14).unwrap();
        let name = log_file_name(
            "seesaw_ecu",
            "seesaw-n1",
            "root",
            Severity::Error,
            &now,
            322,
        );
        assert_eq!(
            name,
            "seesaw_ecu.seesaw-n1.root.log.ERROR.20261204-202014.322"
        );

        let header = log_file_header("seesaw-n1", &now);
        let lines: Vec<&str> = header.lines().collect();
        assert_eq!(lines.len(), 5);
        assert_eq!(lines[0], "Log file created at: 2026/12/04 20:20:14");
        assert_eq!(lines[1], "Running on machine: seesaw-n1");
        assert!(lines[2].starts_with("Binary: Built with "), "{}", lines[2]);
        assert_eq!(lines[3], "Previous log: <none>");
        assert_eq!(
            lines[4],
            "Log line format: [IWEF]mmdd hh:mm:ss.uuuuuu threadid file:line] msg"
        );
    }

    #[test]
    fn user_names_are_sanitized() {
        assert_eq!(sanitize_user("root"), "root");
        assert_eq!(sanitize_user("first.last-1"), "first_last_1");
        assert_eq!(sanitize_user(""), "unknownuser");
    }

    #[test]
    fn files_hold_their_severity_and_higher() {
        let dir = tempfile::tempdir().unwrap();
        let subscriber = Registry::default().with(GlogLayer::new(settings_for(dir.path())));
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!("first info");
            tracing::debug!("hidden debug");
            tracing::warn!(service = "ha", "a warning");
            tracing::error!("an error");
        });

        let info = read_link_target(dir.path(), Severity::Info);
        let warning = read_link_target(dir.path(), Severity::Warning);
        let error = read_link_target(dir.path(), Severity::Error);

        assert!(info.starts_with("Log file created at: "), "{info}");
        assert!(info.contains("] first info\n"), "{info}");
        assert!(info.contains("] a warning service=ha\n"), "{info}");
        assert!(info.contains("] an error\n"), "{info}");
        assert!(!info.contains("hidden debug"), "{info}");

        assert!(!warning.contains("first info"), "{warning}");
        assert!(warning.contains("] a warning"), "{warning}");
        assert!(warning.contains("] an error"), "{warning}");

        assert!(!error.contains("a warning"), "{error}");
        assert!(error.contains("] an error"), "{error}");

        let line = info.lines().find(|l| l.ends_with("] first info")).unwrap();
        assert!(line.starts_with('I'), "{line}");
        assert!(line.contains(" logging.rs:"), "{line}");
        let pid = format!(" {} ", std::process::id());
        assert!(line.contains(&pid), "{line} should contain the pid");
    }

    #[test]
    fn files_are_created_on_first_use() {
        let dir = tempfile::tempdir().unwrap();
        let subscriber = Registry::default().with(GlogLayer::new(settings_for(dir.path())));
        tracing::subscriber::with_default(subscriber, || tracing::info!("only info"));

        let files = names_with_prefix(dir.path(), "seesaw_test.");
        assert_eq!(files.len(), 2, "{files:?}");
        assert_eq!(files[0], "seesaw_test.INFO");
        let prefix = format!("seesaw_test.{}.{}.log.INFO.", short_hostname(), user_name());
        assert!(
            files[1].starts_with(&prefix),
            "{} should start with {prefix}",
            files[1]
        );
        let suffix = format!(".{}", std::process::id());
        assert!(files[1].ends_with(&suffix), "{}", files[1]);
    }

    #[test]
    fn verbosity_enables_debug() {
        let dir = tempfile::tempdir().unwrap();
        let settings = LogSettings {
            max_level: LevelFilter::DEBUG,
            ..settings_for(dir.path())
        };
        let subscriber = Registry::default().with(GlogLayer::new(settings));
        tracing::subscriber::with_default(subscriber, || {
            tracing::debug!("shown debug");
            tracing::trace!("hidden trace");
        });

        let info = read_link_target(dir.path(), Severity::Info);
        assert!(info.contains("] shown debug\n"), "{info}");
        assert!(!info.contains("hidden trace"), "{info}");
    }

    #[test]
    fn missing_directory_is_created() {
        let dir = tempfile::tempdir().unwrap();
        let nested = dir.path().join("a/b");
        let subscriber = Registry::default().with(GlogLayer::new(settings_for(&nested)));
        tracing::subscriber::with_default(subscriber, || tracing::error!("boom"));

        assert!(read_link_target(&nested, Severity::Error).contains("] boom\n"));
    }
}
