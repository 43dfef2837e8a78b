//! Noticing that cluster.pb changed, by polling its metadata.
//!
//! Polling `stat` detects every way an editor saves: in place, by writing a
//! new file and renaming it over the old one, or by deleting and
//! recreating it. It also works when the file or its directory does not
//! exist yet, which inotify cannot watch. A change is reported once the
//! metadata has stayed the same for one more poll, so a file still being
//! written is not read half-done.

use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

/// The metadata that changes whenever the file's content does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Signature {
    device: u64,
    inode: u64,
    size: u64,
    modified_ns: i128,
    changed_ns: i128,
}

impl Signature {
    fn of(metadata: &std::fs::Metadata) -> Self {
        let nanoseconds =
            |seconds: i64, nanos: i64| i128::from(seconds) * 1_000_000_000 + i128::from(nanos);
        Signature {
            device: metadata.dev(),
            inode: metadata.ino(),
            size: metadata.size(),
            modified_ns: nanoseconds(metadata.mtime(), metadata.mtime_nsec()),
            changed_ns: nanoseconds(metadata.ctime(), metadata.ctime_nsec()),
        }
    }
}

/// The polling state for one file.
#[derive(Debug)]
pub(crate) struct FileWatch {
    path: PathBuf,
    /// The signature at the last poll, or `None` while the file is missing.
    seen: Option<Signature>,
    /// Set when the signature changed and has not yet held for a poll.
    settling: bool,
}

impl FileWatch {
    /// Starts watching `path` from its current state, so that a file that
    /// does not change is never reported.
    pub(crate) fn new(path: PathBuf) -> Self {
        let seen = Self::signature(&path);
        FileWatch {
            path,
            seen,
            settling: false,
        }
    }

    fn signature(path: &PathBuf) -> Option<Signature> {
        std::fs::metadata(path)
            .ok()
            .map(|metadata| Signature::of(&metadata))
    }

    /// Polls the file. Returns true once per change, at the first poll
    /// after the change at which the metadata is unchanged.
    pub(crate) fn poll(&mut self) -> bool {
        let current = Self::signature(&self.path);
        if current != self.seen {
            self.seen = current;
            self.settling = true;
            return false;
        }
        std::mem::take(&mut self.settling)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_change_after_it_settles() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cluster.pb");
        std::fs::write(&path, "a").unwrap();
        let mut watch = FileWatch::new(path.clone());
        assert!(!watch.poll(), "an unchanged file is not reported");

        std::fs::write(&path, "bb").unwrap();
        assert!(!watch.poll(), "a change is held back for one poll");
        assert!(watch.poll(), "a settled change is reported");
        assert!(!watch.poll(), "a change is reported once");
    }

    #[test]
    fn sees_rename_over_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cluster.pb");
        std::fs::write(&path, "a").unwrap();
        let mut watch = FileWatch::new(path.clone());

        let temporary = dir.path().join("cluster.pb.tmp");
        std::fs::write(&temporary, "b").unwrap();
        std::fs::rename(&temporary, &path).unwrap();
        assert!(!watch.poll());
        assert!(watch.poll());
    }

    #[test]
    fn sees_file_appear_and_vanish() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cluster.pb");
        let mut watch = FileWatch::new(path.clone());
        assert!(!watch.poll());

        std::fs::write(&path, "a").unwrap();
        assert!(!watch.poll());
        assert!(watch.poll(), "a new file is reported");

        std::fs::remove_file(&path).unwrap();
        assert!(!watch.poll());
        assert!(watch.poll(), "a removed file is reported");
    }
}
