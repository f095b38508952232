//! `esc-hook exec -- CMD ARGS…`: run one command with a project's environment, for scripts, CI
//! jobs and editors. The exit code is the command's; signals sent to esc-hook reach it; the
//! environment's files are removed when it ends.

use std::ffi::OsString;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicI32, Ordering};

use anyhow::{anyhow, bail};

use crate::credential_server::{Credentials, Endpoint};
use crate::ground::log;
use crate::ground::names::VarName;
use crate::ground::time;
use crate::inputs::escrc::CredentialsMode;
use crate::keeping::cache;
use crate::keeping::files;
use crate::project;
use crate::provider::sts::Session;
use crate::provider::{OpenRequest, Provider, Resolved};
use crate::settings::Settings;
use crate::settings::state::{self, Loaded, Outcome, SetVar, State};
use std::time::SystemTime;

/// The exit code when esc-hook itself fails (no `.escrc`, not allowed, the open failed, …).
pub const OWN_FAILURE: u8 = 125;

/// Names an SDK takes static credentials or a profile from, which would win over the
/// endpoint of `--server`: left out of the command's environment then.
const STATIC_CREDENTIALS: [&str; 9] = [
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_CREDENTIAL_EXPIRATION",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
];

/// How `exec` runs its command, from the command line.
pub struct Options {
    /// An environment named on the command line instead of a directory's `.escrc`.
    pub env: Option<String>,
    pub dir: Option<PathBuf>,
    /// Serve refreshing credentials on a loopback endpoint instead of static keys.
    pub server: bool,
    /// The credentials must last at least this long when the command starts (`--min-ttl`).
    pub min_ttl: Option<String>,
    /// Replace every secret value in the command's output with `[secret]` (`--redact`).
    pub redact: bool,
}

pub fn run(
    settings: &'static Settings,
    options: Options,
    command: Vec<OsString>,
) -> anyhow::Result<u8> {
    let Options {
        env,
        dir,
        server,
        min_ttl,
        redact,
    } = options;
    let Some((program, args)) = command.split_first() else {
        bail!("name a command to run: esc-hook exec -- CMD ARGS…");
    };
    let min_ttl = min_ttl
        .map(|text| {
            crate::ground::duration::parse(&text).map_err(|reason| anyhow!("--min-ttl: {reason}"))
        })
        .transpose()?;
    let escrc = super::project_escrc(settings, env, dir)?;
    let request = OpenRequest::for_escrc(&escrc);
    let provider = match &request {
        Some(request) => Some(crate::project::sources::provider_for(settings, request)?),
        None => None,
    };
    let resolved = match (&request, &provider) {
        (Some(request), Some(provider)) => {
            // No keyring is said once per shell, by the hook (and by `doctor`), not at every
            // command a script runs.
            let mut resolved = provider.resolve(request)?;
            if let Some(min_ttl) = min_ttl {
                resolved = lasting(provider, request, resolved, min_ttl)?;
            }
            Some(resolved)
        }
        _ => None,
    };
    let serve = server
        || matches!(
            escrc.credentials_mode(),
            CredentialsMode::Server | CredentialsMode::Process
        );
    let endpoint = match serve {
        true => {
            let has_session = resolved
                .as_ref()
                .is_some_and(|r| Session::from_vars(&r.vars).is_some());
            if !has_session {
                bail!(
                    "{} has no AWS credentials to serve (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)",
                    escrc.label()
                );
            }
            Some(Endpoint::bind().map_err(|e| {
                anyhow!(
                    "could not listen on loopback: {}",
                    crate::ground::fs::io_reason(&e)
                )
            })?)
        }
        false => None,
    };
    let mut wanted = project::wanted(&escrc, resolved.as_ref());
    if serve {
        wanted.retain(|name, _| !STATIC_CREDENTIALS.contains(&name.as_str()));
    }
    let accepted = project::accept(wanted, &escrc, |_| None);
    // The files are exec's own: only this process removes them, whatever the command does.
    files::set_owner(std::process::id() as i32);
    let mut materialized = project::materialize(accepted).map_err(|e| anyhow!(e))?;
    if let Some(endpoint) = &endpoint {
        // First, so that they are recorded whatever else fits.
        let served = endpoint
            .variables()
            .into_iter()
            .map(|(name, value)| (VarName::constant(name), value));
        materialized.vars.splice(0..0, served);
    }
    // The state that tells a shell started here what exec set must name every variable the
    // command gets: what it cannot record, the command does not get either (as in the hook).
    let opened = resolved.as_ref().map(|r| (r.opened_at, r.expires_at));
    let state = child_state(
        settings,
        &escrc.label(),
        &mut materialized.vars,
        opened,
        &materialized.files_dir,
    );

    // The command gets the user's environment without anything esc-hook set (another
    // project's variables, loaded in the calling shell, stay out), plus this project's.
    let mut child = Command::new(program);
    child.args(args).env_clear().envs(settings.clean_env());
    if serve {
        // The user's own static keys or profile would win over the endpoint.
        for name in STATIC_CREDENTIALS {
            child.env_remove(name);
        }
    }
    for (name, value) in &materialized.vars {
        child.env(name.as_str(), value);
    }
    // And the state saying what exec set: a shell started here (an editor's terminal,
    // `exec -- $SHELL`) then knows these values are esc-hook's, not the user's, keeps none of
    // them in its own state, and unsets them when it enters another project.
    child.env(state::VAR, state.encode());
    // What `--redact` hides: every secret value the command is handed.
    let secrets: Vec<String> = match redact {
        true => project::secret_values(&materialized.vars, resolved.as_ref())
            .into_iter()
            .map(String::from)
            .collect(),
        false => Vec::new(),
    };
    if redact {
        child
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
    }
    if materialized.files_dir.is_none() && endpoint.is_none() && !redact {
        // Nothing to clean up or serve afterwards: become the command, so its exit code and
        // signals are simply its own.
        let error = child.exec();
        return Ok(not_started(program, &error));
    }
    // Signals arriving between the spawn and the handlers are held back, not lost: the
    // command (whose signal mask std resets) would otherwise outlive an esc-hook killed early.
    let held = hold_signals();
    let mut spawned = child.spawn();
    if let Ok(running) = &spawned {
        forward_signals_to(running.id() as i32);
    }
    release_signals(held);
    let copiers = match &mut spawned {
        Ok(running) if redact => redacting_copiers(running, &secrets),
        _ => Vec::new(),
    };
    let status = match (spawned, &endpoint) {
        (Err(error), _) => {
            if let Some(dir) = &materialized.files_dir {
                files::remove(dir);
            }
            return Ok(not_started(program, &error));
        }
        (Ok(mut running), None) => running.wait(),
        (Ok(mut running), Some(endpoint)) => {
            // The command is waited for on a thread of its own; this one serves until it ends.
            let stopper = endpoint.stopper();
            let waiter = std::thread::spawn(move || {
                let status = running.wait();
                stopper.stop();
                status
            });
            // Serving was only chosen with an open behind it (checked before the spawn).
            if let (Some(request), Some(provider), Some(resolved)) = (&request, &provider, resolved)
            {
                let mut source =
                    Refreshing::new(&escrc.label(), settings.refresh_margin(), resolved);
                endpoint.serve(&mut || source.credentials(provider, request));
            }
            let status = waiter
                .join()
                .unwrap_or_else(|_| Err(std::io::Error::other("the waiting thread failed")));
            endpoint.keep_while_held();
            status
        }
    };
    // Everything the command wrote is out before exec ends.
    for copier in copiers {
        let _ = copier.join();
    }
    if let Some(dir) = &materialized.files_dir {
        files::remove(dir);
    }
    let status =
        status.map_err(|e| anyhow!("lost the command: {}", crate::ground::fs::io_reason(&e)))?;
    // A command killed by a signal exits like a shell reports it: 128 + the signal.
    let code = status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0));
    Ok(u8::try_from(code).unwrap_or(1))
}

/// `--min-ttl`: credentials that would not last `min_ttl` are opened anew (bypassing the
/// cache); if even fresh ones fall short (the environment's lifetime is shorter), exec fails
/// before the command starts, rather than have it die half-way.
fn lasting(
    provider: &crate::keeping::cache::CachedProvider,
    request: &OpenRequest,
    resolved: Resolved,
    min_ttl: std::time::Duration,
) -> anyhow::Result<Resolved> {
    let left = |r: &Resolved| {
        r.expires_at
            .duration_since(std::time::SystemTime::now())
            .unwrap_or_default()
    };
    if left(&resolved) >= min_ttl {
        return Ok(resolved);
    }
    if let Ok(Some(store)) = &provider.store {
        let _ = cache::forget(
            store.as_ref(),
            &provider.account(request),
            provider.index.as_ref(),
        );
    }
    let fresh = provider.resolve(request)?;
    if left(&fresh) < min_ttl {
        bail!(
            "the credentials of {} last {} even freshly opened, less than --min-ttl {}: ask for less, or for a longer lifetime (the environment's login duration, or `ttl` in .escrc)",
            request.label(),
            crate::ground::duration::human(left(&fresh)),
            crate::ground::duration::human(min_ttl)
        );
    }
    Ok(fresh)
}

/// `--redact`: the command's standard output and error, each copied on a thread of its own
/// through a [`Redactor`](crate::ground::redact::Redactor), as they flow.
fn redacting_copiers(
    running: &mut std::process::Child,
    secrets: &[String],
) -> Vec<std::thread::JoinHandle<()>> {
    use std::io::{Read, Write};
    fn copy(
        mut from: impl Read + Send + 'static,
        mut to: impl Write + Send + 'static,
        secrets: Vec<String>,
    ) -> Option<std::thread::JoinHandle<()>> {
        std::thread::Builder::new()
            .name("redact".into())
            .spawn(move || {
                let mut redactor =
                    crate::ground::redact::Redactor::new(secrets.iter().map(String::as_str));
                let mut buffer = [0u8; 8192];
                loop {
                    let read = match from.read(&mut buffer) {
                        Ok(0) => break,
                        Ok(read) => read,
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                        Err(_) => break,
                    };
                    let out = redactor.push(&buffer[..read]);
                    if to.write_all(&out).and_then(|()| to.flush()).is_err() {
                        break;
                    }
                }
                let _ = to.write_all(&redactor.finish());
                let _ = to.flush();
            })
            .ok()
    }
    let mut copiers = Vec::new();
    if let Some(out) = running.stdout.take() {
        copiers.extend(copy(out, std::io::stdout(), secrets.to_vec()));
    }
    if let Some(err) = running.stderr.take() {
        copiers.extend(copy(err, std::io::stderr(), secrets.to_vec()));
    }
    copiers
}

/// The credentials `--server` hands out: the cached ones until their refresh point, then fresh
/// ones (from the keyring cache if another process refreshed first). A failed refresh keeps the
/// current credentials while they are valid, says so once, and is retried a minute later.
struct Refreshing {
    label: String,
    margin: std::time::Duration,
    current: Resolved,
    retry_at: Option<SystemTime>,
}

/// After a failed refresh, wait this long before asking the backend again.
const RETRY: std::time::Duration = std::time::Duration::from_secs(60);

impl Refreshing {
    fn new(label: &str, margin: std::time::Duration, current: Resolved) -> Refreshing {
        Refreshing {
            label: label.to_string(),
            margin,
            current,
            retry_at: None,
        }
    }

    fn credentials(
        &mut self,
        provider: &dyn Provider,
        request: &OpenRequest,
    ) -> Result<Credentials, String> {
        let now = SystemTime::now();
        let due = !cache::serves(&self.current, now, self.margin)
            && self.retry_at.is_none_or(|at| now >= at);
        if due {
            match provider.resolve(request) {
                Ok(fresh) if Session::from_vars(&fresh.vars).is_some() => {
                    self.current = fresh;
                    self.retry_at = None;
                }
                Ok(_) => self.failed(now, "it no longer has AWS credentials".into()),
                Err(error) => self.failed(now, error.to_string()),
            }
        }
        if now >= self.current.expires_at {
            return Err(format!(
                "the credentials of {} expired and could not be refreshed",
                self.label
            ));
        }
        Session::from_vars(&self.current.vars)
            .map(|session| Credentials {
                session,
                expires_at: self.current.expires_at,
            })
            .ok_or_else(|| format!("{} has no AWS credentials", self.label))
    }

    fn failed(&mut self, now: SystemTime, reason: String) {
        if self.retry_at.is_none() {
            log::warn(format!(
                "could not refresh {} ({reason}): serving the current credentials while they last",
                self.label
            ));
        }
        self.retry_at = Some(now + RETRY);
    }
}

/// The exit code for a command that could not be started, as shells and env(1) give it: 127
/// when it was not found, 126 when it could not be run.
fn not_started(program: &std::ffi::OsStr, error: &std::io::Error) -> u8 {
    log::warn(format!(
        "could not run {}: {}",
        program.to_string_lossy(),
        crate::ground::fs::io_reason(error)
    ));
    match error.kind() {
        std::io::ErrorKind::NotFound => 127,
        _ => 126,
    }
}

/// What exec set, as a state: outside any `.escrc` (nothing for the child's hook to re-check),
/// each variable with the user's own previous value and a salted hash of exec's. `vars` loses
/// what the state cannot record, with a line naming it.
fn child_state(
    settings: &Settings,
    label: &str,
    vars: &mut Vec<(VarName, String)>,
    opened: Option<(SystemTime, SystemTime)>,
    files_dir: &Option<PathBuf>,
) -> State {
    let salt = Loaded::new_salt();
    let mut set: Vec<SetVar> = vars
        .iter()
        .map(|(name, value)| SetVar {
            name: name.to_string(),
            // A secret of the user's is never written into a state (every program inherits
            // it): a shell started here unsets such a name when it leaves, and the user's own
            // value is back when that shell and exec end.
            prev: match crate::ground::names::is_secret_name(name.as_str()) {
                true => None,
                false => settings.clean_var(name.as_str()),
            },
            hash: Loaded::hash(&salt, name.as_str(), value),
            unset: false,
            from: None,
            held: None,
        })
        .collect();
    let fits = state::fitting(&set);
    if fits < set.len() {
        let dropped: Vec<String> = set.drain(fits..).map(|var| var.name).collect();
        vars.truncate(fits);
        log::warn(state::skipped_line(&dropped));
    }
    let mut child = State::outside(false);
    child.label = state::bounded_label(format!("{label} (exec)"));
    child.outcome = Outcome::Loaded;
    child.loaded = Some(Loaded {
        salt,
        vars: set,
        files_dir: files_dir.clone(),
        opened_at: opened.map_or_else(time::now, |(at, _)| time::unix(at)),
        expires_at: opened.map(|(_, until)| time::unix(until)),
        retry_at: None,
        origins: Vec::new(),
        held_in: None,
    });
    child
}

static CHILD: AtomicI32 = AtomicI32::new(0);

const FORWARDED: [libc::c_int; 6] = [
    libc::SIGINT,
    libc::SIGTERM,
    libc::SIGHUP,
    libc::SIGQUIT,
    libc::SIGUSR1,
    libc::SIGUSR2,
];

/// Blocks the forwarded signals; returns the previous mask.
fn hold_signals() -> libc::sigset_t {
    // SAFETY: plain signal-mask manipulation on this thread.
    unsafe {
        let mut block: libc::sigset_t = std::mem::zeroed();
        let mut previous: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut block);
        for signal in FORWARDED {
            libc::sigaddset(&mut block, signal);
        }
        libc::pthread_sigmask(libc::SIG_BLOCK, &block, &mut previous);
        previous
    }
}

fn release_signals(previous: libc::sigset_t) {
    // SAFETY: restores the mask saved by `hold_signals`.
    unsafe {
        libc::pthread_sigmask(libc::SIG_SETMASK, &previous, std::ptr::null_mut());
    }
}

/// Passes signals sent to esc-hook on to the command. Signals from the terminal (Ctrl-C)
/// already reach the whole foreground group, the command included, so only those sent by a
/// process (`kill`) are forwarded; esc-hook itself stays to clean up.
fn forward_signals_to(pid: i32) {
    CHILD.store(pid, Ordering::SeqCst);
    extern "C" fn forward(signal: libc::c_int, info: *mut libc::siginfo_t, _: *mut libc::c_void) {
        // SAFETY: the kernel passes a valid siginfo; kill is async-signal-safe.
        unsafe {
            let code = (*info).si_code;
            if code == libc::SI_USER || code == libc::SI_QUEUE {
                libc::kill(CHILD.load(Ordering::SeqCst), signal);
            }
        }
    }
    for signal in [
        libc::SIGINT,
        libc::SIGTERM,
        libc::SIGHUP,
        libc::SIGQUIT,
        libc::SIGUSR1,
        libc::SIGUSR2,
    ] {
        // SAFETY: installing a handler that only calls async-signal-safe functions.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = forward as *const () as usize;
            action.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(signal, &action, std::ptr::null_mut());
        }
    }
}
