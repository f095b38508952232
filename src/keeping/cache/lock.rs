//! A per-key lock, so N shells entering one project on a cold cache make one open: the first
//! takes the lock and opens; the others wait, then find the entry it wrote.

use std::fs::{self, File};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

/// Held until dropped (closing the file releases the `flock`).
pub struct KeyLock {
    _file: File,
}

/// Waits up to `wait` for the lock on `path` (in a directory the caller made private); `None` if
/// it could not be had (the caller then goes on without it: a duplicate open is better than a
/// stuck prompt). The lock file is never opened through a link.
pub fn acquire(path: &Path, wait: Duration) -> Option<KeyLock> {
    let file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .ok()?;
    let deadline = Instant::now() + wait;
    loop {
        // SAFETY: flock on a file descriptor we own.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
            return Some(KeyLock { _file: file });
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_waits_and_then_gives_up() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.lock");
        let first = acquire(&path, Duration::ZERO).unwrap();
        assert!(acquire(&path, Duration::from_millis(60)).is_none());
        drop(first);
        assert!(acquire(&path, Duration::ZERO).is_some());
    }
}
