//! Remembering a Ctrl-C across the shell's lost output.
//!
//! When the user interrupts an open, esc-hook prints a state that records the failure, but an
//! interactive bash aborts its whole `PROMPT_COMMAND` on Ctrl-C and never evaluates it; at the
//! next prompt the hook would start the same slow open again. So the interrupted run also
//! leaves a marker for its shell (keyed by the parent process id, holding a hash of the
//! `.escrc` stamp and the time); the shell's next hook run takes it, and if it is about to
//! open the same file within a few seconds, it records the failure instead of opening.

use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

use crate::ground::digest::sha256_hex;
use crate::ground::fs::FileStamp;
use crate::ground::time;
use crate::keeping::files;

/// A marker older than this is ignored: it only has to bridge to the next prompt.
const FRESH_SECONDS: u64 = 30;

fn marker() -> Option<PathBuf> {
    let base = files::private_base().ok()?;
    Some(base.join(format!("interrupted-{}", files::owner())))
}

fn key(stamp: &FileStamp) -> String {
    sha256_hex(&[serde_json::to_string(stamp).unwrap_or_default().as_bytes()])
}

/// Notes that the open for `stamp` was interrupted in this shell.
pub fn remember(stamp: &FileStamp) {
    if let Some(marker) = marker() {
        let line = format!("{} {}\n", key(stamp), time::now());
        let _ = files::open_private(&marker, true).and_then(|mut f| f.write_all(line.as_bytes()));
    }
}

/// Takes this shell's marker, if any: the stamp key it names, when still fresh.
pub fn take() -> Option<String> {
    let path = marker()?;
    let mut text = String::new();
    fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(&path)
        .ok()?
        .take(4096)
        .read_to_string(&mut text)
        .ok()?;
    let _ = fs::remove_file(&path);
    let (key, at) = text.trim().split_once(' ')?;
    let at: u64 = at.parse().ok()?;
    (time::now().saturating_sub(at) <= FRESH_SECONDS).then(|| key.to_string())
}

/// Whether a taken marker is about this `.escrc` as it is now.
pub fn matches(taken: Option<&str>, stamp: &FileStamp) -> bool {
    taken == Some(key(stamp).as_str())
}
