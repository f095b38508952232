//! The private directory holding an environment's `files` while it is loaded.
//!
//! Lives in `$XDG_RUNTIME_DIR/esc-hook` (memory-backed on most systems) or else
//! `<temp>/esc-hook-<uid>`; the base is 0700, must be ours and not a link, each load gets its
//! own 0700 subdirectory named `<owner pid>-<random>`, and each file is 0600, created without
//! following links. Unload removes the subdirectory only when this process is its owner (the
//! same shell, or the same `exec`), and only ever a direct child of the base, whatever the
//! state variable claims: a subshell leaving the project leaves its parent's files alone.
//! A shell that exits while loaded cannot unload: the next load sweeps the directories of
//! shells that are gone.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::ground::digest::random_hex;

/// The base of the private runtime files, set once by `main` from the settings
/// ([`crate::settings::Settings::runtime_base`]), and the user's own directory to use instead
/// when another user holds that base (in a shared temp directory, without `XDG_RUNTIME_DIR`).
static BASE: OnceLock<(PathBuf, Option<PathBuf>)> = OnceLock::new();
static EFFECTIVE: OnceLock<PathBuf> = OnceLock::new();

pub fn set_base_dir(base: PathBuf, instead: Option<PathBuf>) {
    let _ = BASE.set((base, instead));
}

/// The base every process of the user agrees on: the settings' base, unless something that is
/// not the user's directory stands there and there is a directory of the user's own to use.
pub fn base_dir() -> PathBuf {
    EFFECTIVE
        .get_or_init(|| {
            let (base, instead) = BASE.get().cloned().unwrap_or_else(|| {
                // Only before `main` set it (unit tests): the default the settings use too.
                // SAFETY: geteuid has no preconditions and cannot fail.
                let me = unsafe { libc::geteuid() };
                (PathBuf::from(format!("/tmp/esc-hook-{me}")), None)
            });
            match (held_by_another(&base), instead) {
                (true, Some(instead)) => instead,
                _ => base,
            }
        })
        .clone()
}

/// Whether something other than a directory of this user's stands at `base`.
fn held_by_another(base: &Path) -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    match fs::symlink_metadata(base) {
        Ok(meta) => !meta.is_dir() || meta.uid() != me,
        Err(e) => e.kind() != io::ErrorKind::NotFound,
    }
}

/// The process whose files this run makes and may remove: the shell the hook runs in (named by
/// the hook itself, else the parent process), or `exec`'s own process.
static OWNER: OnceLock<libc::pid_t> = OnceLock::new();

pub fn set_owner(pid: libc::pid_t) {
    let _ = OWNER.set(pid);
}

pub fn owner() -> libc::pid_t {
    // SAFETY: getppid has no preconditions and cannot fail.
    *OWNER.get_or_init(|| unsafe { libc::getppid() })
}

/// The base directory, made private and checked to be ours; every path under it is used only
/// after this (see [`ensure_private_base`]).
pub fn private_base() -> io::Result<PathBuf> {
    let base = base_dir();
    if let Some((_, Some(instead))) = BASE.get()
        && base == *instead
    {
        // The user's own directory (under the cache directory): its parents are made too.
        if let Some(parent) = base.parent() {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(parent)?;
        }
    }
    ensure_private_base(&base)?;
    Ok(base)
}

/// When the runtime files are not where the settings put them, the line that says where they
/// are instead (said when an environment's files are written there).
fn moved_base_line(base: &Path) -> Option<String> {
    let (settings_base, instead) = BASE.get()?;
    (Some(base) == instead.as_deref()).then(|| {
        format!(
            "{} is not a directory of yours: an environment's files go to {} instead (set XDG_RUNTIME_DIR to keep them in memory)",
            crate::ground::names::printable(&settings_base.to_string_lossy(), 200),
            crate::ground::fs::home_relative(base)
        )
    })
}

/// A directory directly under the private base (`locks`), made 0700 and checked like the base.
pub fn private_subdir(name: &str) -> io::Result<PathBuf> {
    let dir = private_base()?.join(name);
    ensure_private_base(&dir)?;
    Ok(dir)
}

/// Opens a file under the private base for writing, creating it 0600, never through a link.
pub fn open_private(path: &Path, truncate: bool) -> io::Result<fs::File> {
    fs::OpenOptions::new()
        .create(true)
        .truncate(truncate)
        .write(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
}

/// Writes each `(name, content)` into a fresh private directory; returns the directory and
/// each file's path, in order.
pub fn write_private(files: &[(String, String)]) -> io::Result<(PathBuf, Vec<PathBuf>)> {
    let base = private_base()?;
    if let Some(line) = moved_base_line(&base) {
        crate::ground::log::warn(line);
    }
    sweep_dead_shells(&base);
    let dir = base.join(format!("{}-{}", owner(), random_hex(8)));
    fs::DirBuilder::new().mode(0o700).create(&dir)?;
    let mut paths = Vec::with_capacity(files.len());
    for (name, content) in files {
        let path = dir.join(name);
        let written = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&path)
            .and_then(|mut file| file.write_all(content.as_bytes()));
        if let Err(e) = written {
            let _ = fs::remove_dir_all(&dir);
            return Err(e);
        }
        paths.push(path);
    }
    Ok((dir, paths))
}

/// Removes a directory made by [`write_private`] for this same owner; anything else (another
/// shell's, a subshell's parent's, a forged path) is left alone.
pub fn remove(dir: &Path) {
    let base = base_dir();
    let name = dir.file_name().and_then(|n| n.to_str());
    if dir.parent() == Some(base.as_path()) && name.and_then(owner_pid) == Some(owner()) {
        let _ = fs::remove_dir_all(dir);
    }
}

/// The shell pid in a directory name made by [`write_private`] (`<pid>-<16 hex digits>`).
fn owner_pid(name: &str) -> Option<libc::pid_t> {
    let (pid, random) = name.split_once('-')?;
    let random_ok = random.len() == 16 && random.bytes().all(|b| b.is_ascii_hexdigit());
    random_ok.then(|| pid.parse().ok()).flatten()
}

/// The shell pid of a per-shell marker (`watch-<pid>`, `interrupted-<pid>`).
fn marker_pid(name: &str) -> Option<libc::pid_t> {
    let (_, pid) = name.split_once('-')?;
    ["watch-", "interrupted-"]
        .iter()
        .any(|prefix| name.starts_with(prefix))
        .then(|| pid.parse().ok())
        .flatten()
}

pub fn sweep_dead_shells(base: &Path) {
    let Ok(entries) = fs::read_dir(base) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| owner_pid(n).or_else(|| marker_pid(n)))
        else {
            continue;
        };
        // SAFETY: signal 0 only checks that the process exists.
        let gone = unsafe { libc::kill(pid, 0) } == -1
            && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH);
        if gone {
            let path = entry.path();
            let _ = fs::remove_dir_all(&path).or_else(|_| fs::remove_file(&path));
        }
    }
}

/// The base must be a real directory (not a link) owned by us and closed to others: in a shared
/// temp dir someone else could have made it first, and would then choose where our files go.
pub fn ensure_private_base(base: &Path) -> io::Result<()> {
    match fs::DirBuilder::new().mode(0o700).create(base) {
        Err(e) if e.kind() != io::ErrorKind::AlreadyExists => return Err(e),
        _ => {}
    }
    let meta = fs::symlink_metadata(base)?;
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    if !meta.is_dir() || meta.uid() != me {
        return Err(io::Error::other(format!(
            "{} is not a directory of yours: remove it, or set XDG_RUNTIME_DIR",
            crate::ground::names::printable(&base.to_string_lossy(), 200)
        )));
    }
    if meta.mode() & 0o077 != 0 {
        fs::set_permissions(base, fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}
