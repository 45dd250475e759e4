//! The polling backend: for filesystems without change notification (NFS, some container mounts)
//! and as the fallback when the native watcher cannot be had.
//!
//! Every interval it reads each watched path (following symlinks, so a re-pointed link or a
//! swapped `..data` directory is seen) and compares a hash of the bytes, and the metadata, with
//! the previous poll. The bytes, because a rewrite within one timestamp tick that keeps the size
//! fools a comparison of modification times; the metadata too, because a stream of writes can
//! show the same bytes at two polls (the empty moment of two truncating writes) and must still
//! count as activity, so the debounce waits for it to end. (A `touch` alone thus leads to a look
//! at the content, which finds the same bytes and reloads nothing.)

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::files::{fingerprint, stamps, FileState, Stamp};

/// Polls watched files for content changes.
#[derive(Debug)]
pub(crate) struct PollBackend {
    pub interval: Duration,
    next: Instant,
    seen: Seen,
}

type Seen = (BTreeMap<PathBuf, FileState>, Vec<Option<Stamp>>);

fn observe(files: &[PathBuf]) -> Seen {
    (fingerprint(files), stamps(files))
}

impl PollBackend {
    /// Starts polling `files` every `interval`, from their content now.
    pub fn new(interval: Duration, files: &[PathBuf]) -> Self {
        let interval = interval.max(Duration::from_millis(1));
        PollBackend {
            interval,
            next: Instant::now() + interval,
            seen: observe(files),
        }
    }

    /// When the next poll is due.
    pub fn next(&self) -> Instant {
        self.next
    }

    /// Polls if due; returns `None` when not due, or whether any file changed since the last poll.
    pub fn poll(&mut self, files: &[PathBuf], now: Instant) -> Option<bool> {
        if now < self.next {
            return None;
        }
        self.next = now + self.interval;
        let current = observe(files);
        if current == self.seen {
            return Some(false);
        }
        self.seen = current;
        Some(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sees_content_and_metadata_changes() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("a.toml");
        std::fs::write(&file, "x = 1").unwrap();
        let files = vec![file.clone()];
        // Each poll below is at the instant it is due: an interval of an hour keeps the first
        // "not due yet" true on a loaded machine (10 ms once went by before it, issue 22).
        let mut poll = PollBackend::new(Duration::from_secs(3600), &files);
        let start = Instant::now();
        assert_eq!(poll.poll(&files, start), None, "not due yet");
        let mut at = poll.next();
        assert_eq!(poll.poll(&files, at), Some(false));

        std::fs::File::options()
            .write(true)
            .open(&file)
            .unwrap()
            .set_modified(std::time::SystemTime::UNIX_EPOCH)
            .unwrap();
        at = poll.next();
        assert_eq!(poll.poll(&files, at), Some(true), "a touch is activity");
        at = poll.next();
        assert_eq!(poll.poll(&files, at), Some(false));

        // Same size, same instant: only the bytes differ.
        std::fs::write(&file, "x = 2").unwrap();
        at = poll.next();
        assert_eq!(poll.poll(&files, at), Some(true));
        at = poll.next();
        assert_eq!(poll.poll(&files, at), Some(false));

        std::fs::remove_file(&file).unwrap();
        at = poll.next();
        assert_eq!(poll.poll(&files, at), Some(true), "a removal is a change");
    }
}
