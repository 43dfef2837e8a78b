//! Saving a fetched config to cluster.pb, with the previous file archived.
//!
//! The disk copy is the last known good config across restarts: a config
//! from a config server or the peer is written there only after it passed
//! every check. The previous file is first copied to
//! `<dir>/archive/cluster.pb.<unix seconds>`, and the archive is pruned to
//! [`ArchiveLimits`].

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use seesaw_config::cluster_text::format_cluster_text;
use seesaw_config::pb;

/// How much the archive may keep. A file beyond any limit is removed,
/// together with every older file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArchiveLimits {
    pub max_age: Duration,
    pub max_bytes: u64,
    pub max_count: usize,
}

impl Default for ArchiveLimits {
    /// Seesaw's limits: 60 days, 10 GiB and 1,500 files.
    fn default() -> Self {
        ArchiveLimits {
            max_age: Duration::from_secs(60 * 24 * 60 * 60),
            max_bytes: 10 << 30,
            max_count: 1500,
        }
    }
}

/// Counts of the files a prune removed and kept.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PruneStats {
    pub removed: usize,
    /// Files that were to be removed but could not be.
    pub failed: usize,
    pub kept: usize,
    pub kept_bytes: u64,
    /// Age of the oldest file kept.
    pub oldest_kept: Duration,
}

/// A failed save, naming the file and the step.
#[derive(Debug, thiserror::Error)]
#[error("failed to {step} {}: {source}", path.display())]
pub struct SaveError {
    step: &'static str,
    path: PathBuf,
    source: io::Error,
}

/// Writes `message` to `file` as text, replacing it atomically: the text
/// goes to `<file>.<pid>` with mode 0644 (less the umask), is synced, and
/// is renamed over `file`. With `backup`, the existing file is archived
/// first. A failed backup is logged and the save goes ahead.
pub fn save_config(message: &pb::Cluster, file: &Path, backup: bool) -> Result<(), SaveError> {
    if backup {
        match backup_config(file, SystemTime::now()) {
            Ok(Some(copy)) => tracing::info!("archived {} as {}", file.display(), copy.display()),
            Ok(None) => {}
            Err(error) => tracing::warn!("failed to archive {}: {error}", file.display()),
        }
    }

    let temporary = PathBuf::from(format!("{}.{}", file.display(), std::process::id()));
    let failed = |step, path: &Path| {
        let path = path.to_path_buf();
        move |source| SaveError { step, path, source }
    };
    let written = write_synced(&temporary, format_cluster_text(message).as_bytes())
        .map_err(failed("write", &temporary))
        .and_then(|()| fs::rename(&temporary, file).map_err(failed("rename over", file)));
    if written.is_err() {
        let _ = fs::remove_file(&temporary);
        return written;
    }

    // Persist the rename too. A failure here leaves the new file in place
    // but possibly not on disk yet after a crash, so it is only logged.
    if let Some(dir) = file.parent().filter(|dir| !dir.as_os_str().is_empty())
        && let Err(error) = File::open(dir).and_then(|dir| dir.sync_all())
    {
        tracing::warn!("failed to sync directory {}: {error}", dir.display());
    }
    Ok(())
}

fn write_synced(path: &Path, contents: &[u8]) -> io::Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o644)
        .open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

/// Copies `file` to `<dir>/archive/<name>.<unix seconds of now>` with the
/// same permissions, after pruning the archive. Returns the copy, or `None`
/// when `file` does not exist. A failed prune is logged and the copy is
/// still made.
pub fn backup_config(file: &Path, now: SystemTime) -> io::Result<Option<PathBuf>> {
    let metadata = match fs::metadata(file) {
        Ok(metadata) => metadata,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(error),
    };
    let name = file
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "the path names no file"))?;
    let archive = file.parent().unwrap_or(Path::new(".")).join("archive");
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(&archive)?;

    match prune_archive(&archive, now, &ArchiveLimits::default()) {
        Ok(stats) => tracing::info!(
            "pruned {} files from {}; kept {} files ({} bytes, oldest {}s); {} files failed to be removed",
            stats.removed,
            archive.display(),
            stats.kept,
            stats.kept_bytes,
            stats.oldest_kept.as_secs(),
            stats.failed
        ),
        Err(error) => tracing::error!("failed to prune {}: {error}", archive.display()),
    }

    let seconds = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    let mode = metadata.permissions().mode() & 0o7777;
    // Two saves within one second must not overwrite each other's copy:
    // the second gets a numbered suffix.
    let base = format!("{}.{seconds}", name.to_string_lossy());
    let mut suffix = 0u32;
    let (copy, mut destination) = loop {
        let copy = match suffix {
            0 => archive.join(&base),
            n => archive.join(format!("{base}.{n}")),
        };
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&copy)
        {
            Ok(destination) => break (copy, destination),
            Err(error) if error.kind() == io::ErrorKind::AlreadyExists => suffix += 1,
            Err(error) => return Err(error),
        }
    };
    io::copy(&mut File::open(file)?, &mut destination)?;
    Ok(Some(copy))
}

/// Removes old files from `dir` so that the files kept stay within
/// `limits`. Walking the files newest first by modification time, the
/// first file that would take the count, the total size or the age past
/// its limit is removed, together with every file after it.
pub fn prune_archive(
    dir: &Path,
    now: SystemTime,
    limits: &ArchiveLimits,
) -> io::Result<PruneStats> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let metadata = entry.metadata()?;
        files.push((metadata.modified()?, metadata.len(), entry.path()));
    }
    files.sort_by_key(|(modified, _, _)| std::cmp::Reverse(*modified));

    let mut stats = PruneStats::default();
    for (index, (modified, size, _)) in files.iter().enumerate() {
        let age = now.duration_since(*modified).unwrap_or_default();
        let count = stats.kept + 1;
        let bytes = stats.kept_bytes + size;
        if count > limits.max_count || bytes > limits.max_bytes || age > limits.max_age {
            for (_, _, path) in &files[index..] {
                match fs::remove_file(path) {
                    Ok(()) => stats.removed += 1,
                    Err(error) => {
                        tracing::warn!("failed to remove {}: {error}", path.display());
                        stats.failed += 1;
                    }
                }
            }
            break;
        }
        stats.kept = count;
        stats.kept_bytes = bytes;
        stats.oldest_kept = age;
    }
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use seesaw_config::cluster_text::parse_cluster_text;

    use super::*;

    const DAY: Duration = Duration::from_secs(24 * 60 * 60);

    /// Writes `size` bytes to `dir/name`, last modified `age` before `now`.
    fn archived_file(dir: &Path, name: &str, size: usize, age: Duration, now: SystemTime) {
        let path = dir.join(name);
        fs::write(&path, vec![b'x'; size]).unwrap();
        File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(now - age)
            .unwrap();
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn prune_keeps_files_within_limits() {
        let dir = tempfile::tempdir().unwrap();
        let now = SystemTime::now();
        for (name, age) in [("a", 1), ("b", 2), ("c", 3)] {
            archived_file(dir.path(), name, 10, DAY * age, now);
        }

        let stats = prune_archive(dir.path(), now, &ArchiveLimits::default()).unwrap();

        assert_eq!(stats.removed, 0);
        assert_eq!(stats.kept, 3);
        assert_eq!(stats.kept_bytes, 30);
        assert_eq!(stats.oldest_kept, DAY * 3);
        assert_eq!(names(dir.path()), ["a", "b", "c"]);
    }

    #[test]
    fn prune_by_count_removes_oldest() {
        let dir = tempfile::tempdir().unwrap();
        let now = SystemTime::now();
        for (name, age) in [("new", 1), ("middle", 2), ("old", 3), ("oldest", 4)] {
            archived_file(dir.path(), name, 10, DAY * age, now);
        }
        let limits = ArchiveLimits {
            max_count: 2,
            ..ArchiveLimits::default()
        };

        let stats = prune_archive(dir.path(), now, &limits).unwrap();

        assert_eq!((stats.removed, stats.kept), (2, 2));
        assert_eq!(names(dir.path()), ["middle", "new"]);
    }

    #[test]
    fn prune_by_size_removes_rest() {
        let dir = tempfile::tempdir().unwrap();
        let now = SystemTime::now();
        archived_file(dir.path(), "new", 60, DAY, now);
        archived_file(dir.path(), "big", 50, DAY * 2, now);
        archived_file(dir.path(), "small", 1, DAY * 3, now);
        let limits = ArchiveLimits {
            max_bytes: 100,
            ..ArchiveLimits::default()
        };

        prune_archive(dir.path(), now, &limits).unwrap();

        // "small" would fit, but every file older than the first one over
        // the limit goes too.
        assert_eq!(names(dir.path()), ["new"]);
    }

    #[test]
    fn prune_by_age_at_sixty_days() {
        let dir = tempfile::tempdir().unwrap();
        let now = SystemTime::now();
        archived_file(dir.path(), "recent", 10, DAY * 59, now);
        archived_file(dir.path(), "stale", 10, DAY * 61, now);

        let stats = prune_archive(dir.path(), now, &ArchiveLimits::default()).unwrap();

        assert_eq!(stats.removed, 1);
        assert_eq!(names(dir.path()), ["recent"]);
    }

    #[test]
    fn backup_copies_with_mode_and_time() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("cluster.pb");
        fs::write(&file, "old config\n").unwrap();
        fs::set_permissions(&file, fs::Permissions::from_mode(0o640)).unwrap();
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);

        let copy = backup_config(&file, now).unwrap().unwrap();

        assert_eq!(copy, dir.path().join("archive/cluster.pb.1700000000"));
        assert_eq!(fs::read_to_string(&copy).unwrap(), "old config\n");
        let mode = fs::metadata(&copy).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o640);
        let archive_mode = fs::metadata(dir.path().join("archive"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(archive_mode & 0o777, 0o755);
    }

    #[test]
    fn backups_within_one_second_keep_both_copies() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("cluster.pb");
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        fs::write(&file, "first\n").unwrap();
        let first = backup_config(&file, now).unwrap().unwrap();
        fs::write(&file, "second\n").unwrap();
        let second = backup_config(&file, now).unwrap().unwrap();

        assert_eq!(second, dir.path().join("archive/cluster.pb.1700000000.1"));
        assert_eq!(fs::read_to_string(&first).unwrap(), "first\n");
        assert_eq!(fs::read_to_string(&second).unwrap(), "second\n");
    }

    #[test]
    fn backup_of_missing_file_is_none() {
        let dir = tempfile::tempdir().unwrap();
        let copy = backup_config(&dir.path().join("cluster.pb"), SystemTime::now()).unwrap();
        assert_eq!(copy, None);
        assert!(!dir.path().join("archive").exists());
    }

    fn message() -> pb::Cluster {
        let text = "seesaw_vip: < fqdn: \"vip.\" status: PRODUCTION >\nnode: < fqdn: \"lb1.\" ipv4: \"192.0.2.2/24\" >\n";
        parse_cluster_text(Path::new("cluster.pb"), text)
            .unwrap()
            .message
    }

    #[test]
    fn save_replaces_file_and_archives() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("cluster.pb");
        fs::write(&file, "previous\n").unwrap();

        save_config(&message(), &file, true).unwrap();

        let saved = fs::read_to_string(&file).unwrap();
        let reparsed = parse_cluster_text(&file, &saved).unwrap().message;
        assert_eq!(reparsed, message());
        let mode = fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(
            mode & !0o022,
            0o644 & !0o022,
            "0644 less a umask of at most 022"
        );
        let archive = names(&dir.path().join("archive"));
        assert_eq!(archive.len(), 1, "{archive:?}");
        assert_eq!(
            names(dir.path()),
            ["archive", "cluster.pb"],
            "no temporary file is left"
        );
    }

    #[test]
    fn save_without_backup_archives_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("cluster.pb");
        fs::write(&file, "previous\n").unwrap();

        save_config(&message(), &file, false).unwrap();

        assert_eq!(names(dir.path()), ["cluster.pb"]);
    }

    #[test]
    fn failed_save_names_file_and_cleans_up() {
        let dir = tempfile::tempdir().unwrap();
        // A directory in the file's place makes the rename fail.
        let file = dir.path().join("cluster.pb");
        fs::create_dir(&file).unwrap();
        fs::write(file.join("keep"), "").unwrap();

        let error = save_config(&message(), &file, false).unwrap_err();

        let expected = format!("failed to rename over {}: ", file.display());
        assert!(error.to_string().starts_with(&expected), "{error}");
        assert_eq!(
            names(dir.path()),
            ["cluster.pb"],
            "the temporary file is removed"
        );
    }
}
