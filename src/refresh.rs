//! Background refresh: credentials that reach their refresh point are renewed by a detached
//! esc-hook process while the prompt goes on, and every shell swaps them in from the cache at
//! its first prompt after. A real open (ESC calling STS for `fn::open::aws-login`) easily takes
//! a second; no prompt waits for one.
//!
//! One refresher per cache entry across all shells: a shell starts one only by creating its
//! `running` marker (create-new, so exactly one shell wins), and the refresher opens under the
//! entry's lock, as every open does. A refresher that fails leaves a `failed` marker with the
//! reason, which the shells say once and which holds off the next attempt for a while. The
//! markers live in the private runtime directory and name the entry by (part of) its cache
//! account, never a secret.

use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::ground::time;
use crate::inputs::escrc;
use crate::keeping::files;
use crate::keeping::trust::TrustStore;
use crate::provider::{OpenRequest, Provider};
use crate::settings::Settings;

/// The name of the hidden command a refresher runs.
pub const COMMAND: &str = "__refresh";

/// What is known about the refresh of one cache entry.
#[derive(Debug, PartialEq, Eq)]
pub enum Progress {
    /// A refresher is at work.
    Running,
    /// The last refresher failed at `at` (unix seconds), for `reason`.
    Failed {
        at: u64,
        reason: String,
    },
    Idle,
}

fn marker(account: &str, kind: &str) -> Option<PathBuf> {
    let dir = files::private_subdir("refresh").ok()?;
    Some(dir.join(format!("{}.{kind}", &account[..account.len().min(32)])))
}

/// The unix time a marker was written, from its first word.
fn read_marker(path: &Path) -> Option<(u64, String)> {
    let mut text = String::new();
    fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
        .open(path)
        .ok()?
        .take(4096)
        .read_to_string(&mut text)
        .ok()?;
    let (at, rest) = text.split_once(' ').unwrap_or((text.as_str(), ""));
    Some((at.trim().parse().ok()?, rest.trim().to_string()))
}

/// Where the refresh of the entry `account` stands. A `running` marker older than `lifetime`
/// belongs to a refresher that died: it counts as nothing.
pub fn progress(account: &str, now: u64, lifetime: Duration) -> Progress {
    if let Some((at, _)) = marker(account, "running").and_then(|m| read_marker(&m))
        && now < at.saturating_add(lifetime.as_secs())
    {
        return Progress::Running;
    }
    match marker(account, "failed").and_then(|m| read_marker(&m)) {
        Some((at, reason)) => Progress::Failed { at, reason },
        None => Progress::Idle,
    }
}

/// Starts a detached refresher for the `.escrc` at `escrc_path` (whose entry is `account`),
/// unless another shell just did. Says whether one is now running.
pub fn start(account: &str, escrc_path: &Path, now: u64, lifetime: Duration) -> bool {
    let Some(running) = marker(account, "running") else {
        return false;
    };
    // A stale marker (its refresher died) is replaced; a live one means someone else started.
    if let Some((at, _)) = read_marker(&running)
        && now >= at.saturating_add(lifetime.as_secs())
    {
        let _ = fs::remove_file(&running);
    }
    let created = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(&running)
        .and_then(|mut file| write!(file, "{now} {}", std::process::id()));
    if created.is_err() {
        return true;
    }
    let Ok(exe) = std::env::current_exe() else {
        let _ = fs::remove_file(&running);
        return false;
    };
    let mut command = Command::new(exe);
    command
        .arg(COMMAND)
        .arg(escrc_path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .current_dir("/");
    // SAFETY: setsid is async-signal-safe; the refresher leaves the shell's session, so
    // neither the terminal's signals nor the shell's exit reach it.
    unsafe {
        command.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    match command.spawn() {
        Ok(_) => true,
        Err(_) => {
            let _ = fs::remove_file(&running);
            false
        }
    }
}

/// The refresher (`esc-hook __refresh PATH`): opens the `.escrc` at PATH again, if it is still
/// allowed as it is, into the cache, and leaves a `failed` marker if that does not work. Never
/// writes to the terminal (its standard streams are /dev/null) and ends within `lifetime`.
pub fn run(settings: &'static Settings, escrc_path: &Path) -> u8 {
    let lifetime = lifetime(settings.open_timeout());
    // SAFETY: alarm only schedules SIGALRM, whose default action ends the process: a refresher
    // stuck anywhere (a keyring that never answers) cannot outlive its marker.
    unsafe { libc::alarm(lifetime.as_secs() as libc::c_uint) };
    // The same project the shell loaded: the file's chain, every file still allowed as it is.
    let Some(stamp) = escrc::stamp_of(escrc_path) else {
        return 1;
    };
    let Ok(store) = TrustStore::open(settings.data_dir(), settings.config()) else {
        return 1;
    };
    let Ok(escrc) = crate::project::chain::allowed_project(stamp, &store) else {
        return 1;
    };
    let Some(request) = OpenRequest::for_escrc(&escrc) else {
        return 0;
    };
    // Without a provider (no login) there is no entry to report under: the shell, which
    // builds the same provider, says why itself.
    let Ok(provider) = crate::project::sources::provider_for(settings, &request) else {
        return 1;
    };
    let Some(account) = provider.cache_account(&request) else {
        return 1;
    };
    let result = provider.resolve(&request);
    let now = time::now();
    let failed = marker(&account, "failed");
    match &result {
        Ok(_) => {
            if let Some(failed) = &failed {
                let _ = fs::remove_file(failed);
            }
        }
        Err(error) => {
            if let Some(failed) = &failed {
                let reason = crate::ground::names::printable(&error.to_string(), 300);
                let _ = files::open_private(failed, true)
                    .and_then(|mut file| write!(file, "{now} {reason}"));
            }
        }
    }
    if let Some(running) = marker(&account, "running") {
        let _ = fs::remove_file(running);
    }
    u8::from(result.is_err())
}

/// How long a refresher may live: a whole open, a wait for another's, and the keyring.
pub fn lifetime(open_timeout: Duration) -> Duration {
    open_timeout * 2 + Duration::from_secs(15)
}

/// After a failed refresh of still-valid credentials, how long until the next attempt: a
/// quarter of the refresh margin, between 1 second and a minute.
pub fn retry_after(margin: Duration) -> Duration {
    (margin / 4).clamp(Duration::from_secs(1), Duration::from_secs(60))
}

/// Forgets a failure once it has been said and its wait is over, so a new refresher may run.
pub fn forget_failure(account: &str) {
    if let Some(failed) = marker(account, "failed") {
        let _ = fs::remove_file(failed);
    }
}
