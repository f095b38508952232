//! Remembering a Ctrl-C across the shell's lost output.
//!
//! When the user interrupts an open, esc-hook prints a state that records the failure, but an
//! interactive bash aborts its whole `PROMPT_COMMAND` on Ctrl-C and never evaluates it; at the
//! next prompt the hook would start the same slow open again. So the interrupted run also
//! leaves a marker for its shell (keyed by the parent process id, holding a hash of the
//! `.escrc` stamp and the time); the shell's next hook run takes it, and if it is about to
//! open the same file within a few seconds, it records the failure instead of opening.

use std::fs;
use std::path::PathBuf;

use crate::digest::sha256_hex;
use crate::escrc::FileStamp;
use crate::files;
use crate::time;

/// A marker older than this is ignored: it only has to bridge to the next prompt.
const FRESH_SECONDS: u64 = 30;

fn marker() -> PathBuf {
    // SAFETY: getppid has no preconditions and cannot fail.
    let shell = unsafe { libc::getppid() };
    files::base_dir().join(format!("interrupted-{shell}"))
}

fn key(stamp: &FileStamp) -> String {
    sha256_hex(&[serde_json::to_string(stamp).unwrap_or_default().as_bytes()])
}

/// Notes that the open for `stamp` was interrupted in this shell.
pub fn remember(stamp: &FileStamp) {
    if files::ensure_private_base(&files::base_dir()).is_ok() {
        let _ = fs::write(marker(), format!("{} {}\n", key(stamp), time::now()));
    }
}

/// Takes this shell's marker, if any: the stamp key it names, when still fresh.
pub fn take() -> Option<String> {
    let path = marker();
    let text = fs::read_to_string(&path).ok()?;
    let _ = fs::remove_file(&path);
    let (key, at) = text.trim().split_once(' ')?;
    let at: u64 = at.parse().ok()?;
    (time::now().saturating_sub(at) <= FRESH_SECONDS).then(|| key.to_string())
}

/// Whether a taken marker is about this `.escrc` as it is now.
pub fn matches(taken: Option<&str>, stamp: &FileStamp) -> bool {
    taken == Some(key(stamp).as_str())
}
