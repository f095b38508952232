//! What a shell hook checks with its own builtins to skip the binary on an unchanged prompt.
//!
//! After each run the binary hands the hook: the directory it decided for, the state value it
//! left, the `.escrc` paths that must stay absent on the way up, the ones that must stay as
//! they are (the nearest, and every file a layered project builds on), the trust record
//! directories, and when the credentials need refreshing. Modification
//! times are compared against a per-shell watch file the binary touches at each run (dated one
//! second back, so that shells comparing whole seconds miss nothing). Any difference, and the
//! hook calls the binary; none, and the prompt spawns no process at all.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::inputs::escrc;
use crate::keeping::files;
use crate::settings::state::State;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Watch {
    pub pwd: String,
    /// `ESC_HOOK_STATE` as this run leaves it (empty when unset).
    pub state: String,
    /// Touched at every run; the reference for modification times.
    pub file: PathBuf,
    /// `.escrc` paths that did not exist, from the directory up to the project's farthest
    /// file (or `/`).
    pub absent: Vec<PathBuf>,
    /// The `.escrc` files in force, nearest first (more than one in a layered project), which
    /// must not change.
    pub present: Vec<PathBuf>,
    /// Their texts, for shells that can read a file but not its change time (bash, fish): an
    /// edit that keeps an old mtime (`cp -p`, `rsync -t`, `tar x`) must still be seen. `None`
    /// when nothing changed: the shell keeps what it was given (the unchanged path reads no
    /// `.escrc`).
    pub present_text: Option<Vec<String>>,
    /// The `device:inode` of each of `present` as it was decided for (digits and a colon).
    pub present_id: Vec<String>,
    /// Directories whose change (a trust record added or removed) matters.
    pub newer: Vec<PathBuf>,
    /// After a login failed (none, or refused): the hook keeps a copy of the Pulumi login
    /// variables and calls the binary once they change (the credentials file is in `newer`).
    pub login: bool,
    /// Unix seconds at which the binary must run again (refresh or expiry); 0 for never.
    pub due: u64,
}

/// The watch for the state a run leaves behind, touching the watch file.
pub fn after_run(
    pwd: &Path,
    state: Option<&State>,
    state_text: &str,
    mut trust_dirs: Vec<PathBuf>,
    margin: Duration,
    changed: bool,
    login_file: Option<PathBuf>,
) -> Watch {
    let stamps: Vec<&crate::ground::fs::FileStamp> = state
        .and_then(|s| s.escrc.as_ref())
        .into_iter()
        .chain(
            state
                .into_iter()
                .flat_map(|s| s.parents.iter().map(|l| &l.stamp)),
        )
        .collect();
    let present: Vec<PathBuf> = stamps.iter().map(|stamp| stamp.path.clone()).collect();
    let present_id = stamps
        .iter()
        .map(|stamp| format!("{}:{}", stamp.dev, stamp.ino))
        .collect();
    // Up to the farthest file, unless it looks for a parent still (then up to `/`).
    let seeks_parent = state.is_some_and(|s| s.seeks_parent);
    let stop = present
        .last()
        .filter(|_| !seeks_parent)
        .and_then(|p| p.parent().map(Path::to_path_buf));
    let mut absent = Vec::new();
    let mut dir = Some(pwd);
    while let Some(current) = dir {
        let candidate = current.join(escrc::FILE_NAME);
        if !present.contains(&candidate) {
            absent.push(candidate);
        }
        if Some(current) == stop.as_deref() {
            break;
        }
        dir = current.parent();
    }
    // While the file is unsafe, the binary looks at every prompt: the fix (a `chmod` of a
    // file or of a directory above it) is not something every shell's builtins can see.
    let unsafe_file = state
        .is_some_and(|s| s.outcome == crate::settings::state::Outcome::Unsafe)
        .then_some(1);
    // After a login failed: its inputs are watched instead (the variables by the hook, the
    // Pulumi credentials file here).
    let login = state.is_some_and(|s| s.failed_login.is_some());
    if login && let Some(file) = login_file {
        trust_dirs.push(file);
    }
    let retry = state.and_then(|s| s.retry_at);
    let due = unsafe_file.or(retry).or_else(|| {
        state.and_then(|s| s.loaded.as_ref()).and_then(|loaded| {
            let expires = loaded.expires_at?;
            let refresh = expires
                .saturating_sub(margin.as_secs())
                .max(loaded.retry_at.unwrap_or(0));
            Some(refresh.min(expires))
        })
    });
    let present_text = changed.then(|| {
        present
            .iter()
            .map(|path| {
                escrc::read(path)
                    .ok()
                    .and_then(|file| String::from_utf8(file.content).ok())
                    .unwrap_or_default()
            })
            .collect()
    });
    let file = watch_file();
    touch(&file);
    Watch {
        pwd: pwd.to_string_lossy().into_owned(),
        state: state_text.to_string(),
        file,
        absent,
        present,
        present_id,
        present_text,
        newer: trust_dirs,
        login,
        due: due.unwrap_or(0),
    }
}

fn watch_file() -> PathBuf {
    files::base_dir().join(format!("watch-{}", files::owner()))
}

/// Creates or re-dates the watch file, one second in the past.
fn touch(file: &Path) {
    let Ok(base) = files::private_base() else {
        return;
    };
    if fs::symlink_metadata(file).is_err() {
        // A new shell: a moment to forget the watch files of shells that are gone.
        files::sweep_dead_shells(&base);
    }
    let dated = SystemTime::now() - Duration::from_secs(1);
    let _ = files::open_private(file, false).and_then(|f| f.set_modified(dated));
}
