//! The per-spawn files that receive a service's standard output and error.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write as _};
use std::path::Path;

use chrono::{DateTime, Local};
use seesaw_runtime::logging::replace_symlink;

/// Creates `<dir>/<program>.log.<YYYYMMDD-HHMMSS>`, points the
/// `<program>.log` symlink at it and writes the two header lines that
/// Seesaw v2's watchdog wrote.
///
/// A file that already exists, because the service was spawned twice in
/// one second, is appended to rather than truncated.
pub fn create(dir: &Path, program: &str, now: &DateTime<Local>) -> io::Result<File> {
    fs::create_dir_all(dir)?;
    let name = format!("{program}.log.{}", now.format("%Y%m%d-%H%M%S"));
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(&name))?;
    replace_symlink(&name, &dir.join(format!("{program}.log")));

    let header = format!(
        "Log file for {program} (stdout/stderr)\nCreated at: {}\n",
        now.format("%Y/%m/%d %H:%M:%S")
    );
    file.write_all(header.as_bytes())?;
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn create_writes_header_and_symlink() {
        let dir = tempfile::tempdir().unwrap();
        let now = Local.with_ymd_and_hms(2026, 12, 4, 20, 20, 13).unwrap();
        let mut file = create(dir.path(), "seesaw_ecu", &now).unwrap();
        file.write_all(b"child output\n").unwrap();

        let link = fs::read_link(dir.path().join("seesaw_ecu.log")).unwrap();
        assert_eq!(link, Path::new("seesaw_ecu.log.20261204-202013"));
        let text = fs::read_to_string(dir.path().join(link)).unwrap();
        assert_eq!(
            text,
            "Log file for seesaw_ecu (stdout/stderr)\n\
             Created at: 2026/12/04 20:20:13\n\
             child output\n"
        );
    }

    #[test]
    fn create_moves_symlink_to_newest() {
        let dir = tempfile::tempdir().unwrap();
        let first = Local.with_ymd_and_hms(2026, 12, 4, 20, 20, 13).unwrap();
        let second = Local.with_ymd_and_hms(2026, 12, 4, 20, 20, 21).unwrap();
        create(dir.path(), "seesaw_ecu", &first).unwrap();
        create(dir.path(), "seesaw_ecu", &second).unwrap();

        let link = fs::read_link(dir.path().join("seesaw_ecu.log")).unwrap();
        assert_eq!(link, Path::new("seesaw_ecu.log.20261204-202021"));
        assert!(dir.path().join("seesaw_ecu.log.20261204-202013").exists());
    }
}
