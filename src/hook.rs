//! What `esc-hook export` decides at each prompt: load, reload, unload, or nothing.
//!
//! The decision reads only the state variable, the directory walk for `.escrc`, and two trust
//! records (in a layered project, the same again for each parent: see [`crate::chain`]); an
//! unchanged prompt ends there. Anything else goes through a [`Transition`]: leave
//! what was loaded (restoring the user's values), then enter what is found, and hand back the
//! list of changes for one shell script.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use crate::chain::{self, Chain};
use crate::escrc::{self, CredentialsMode, Escrc, FileStamp};
use crate::files;
use crate::interrupt;
use crate::log;
use crate::names::VarName;
use crate::project;
use crate::provider::{OpenRequest, Provider, ProviderError};
use crate::refresh;
use crate::settings::Environ;
use crate::shell::Change;
use crate::state::{self, Loaded, Outcome, SetVar, State};
use crate::time;
use crate::trust::{TrustStore, Verdict};

/// Builds the provider for an environment only when one is needed: finding the login reads
/// files, and an untrusted or values-only `.escrc` must never touch the token.
pub type ProviderFactory<'a> = &'a dyn Fn(&OpenRequest) -> Result<Box<dyn Provider>, ProviderError>;

/// Everything the decision needs from the outside world.
pub struct Inputs<'a> {
    pub environ: &'a Environ,
    pub pwd: Option<PathBuf>,
    pub previous: Result<Option<State>, String>,
    pub trust: Result<TrustStore, String>,
    pub provider: ProviderFactory<'a>,
    /// The fingerprint of the Pulumi login as it is now (read only after a refused login).
    pub login: &'a dyn Fn() -> Option<String>,
    /// Unix seconds.
    pub now: u64,
    /// Credentials are refreshed this long before they expire.
    pub refresh_margin: Duration,
    /// How long a background refresher may take before it counts as dead.
    pub refresh_lifetime: Duration,
}

/// The changes to apply to the shell (empty when nothing changed), and the state the shell
/// is left in.
pub fn export(inputs: &Inputs) -> (Vec<Change>, Option<State>) {
    let changes = decide(inputs);
    let state = match changes
        .iter()
        .rev()
        .find(|c| c.name().as_str() == state::VAR)
    {
        Some(Change::Set(_, text)) => State::decode(text).ok(),
        Some(Change::Unset(_)) => None,
        None => inputs.previous.clone().ok().flatten(),
    };
    (changes, state)
}

fn decide(inputs: &Inputs) -> Vec<Change> {
    let found = inputs.pwd.as_deref().and_then(escrc::find_nearest);
    if is_unchanged(&inputs.previous, found.as_ref(), inputs.trust.as_ref().ok())
        && !login_changed_since_refused(&inputs.previous, inputs.login)
    {
        match &inputs.previous {
            Ok(Some(state)) if refresh_due(state, inputs) => {
                if let Some(changes) = refresh(state, inputs) {
                    return changes;
                }
                // The file is no longer allowed as it is: decided afresh below, which
                // unloads and says why.
            }
            _ => return Vec::new(),
        }
    }
    let mut transition = Transition::new(inputs.environ);
    transition.interrupted = interrupt::take();
    match &inputs.previous {
        Ok(Some(previous)) => {
            transition.keyring_warned = previous.keyring_warned;
            transition.leave(previous, true);
        }
        Ok(None) => {}
        Err(reason) => log::warn(format!("ignoring {reason}")),
    }
    let entered = match found {
        Some(stamp) => Some(transition.enter(stamp, inputs)),
        None if transition.keyring_warned => Some(State::outside(true)),
        None => None,
    };
    // What changed, names only: on loading, and on unloading alike.
    let left_loaded = matches!(
        &inputs.previous,
        Ok(Some(State {
            loaded: Some(_),
            ..
        }))
    );
    if left_loaded
        || entered
            .as_ref()
            .is_some_and(|s| s.outcome == Outcome::Loaded)
    {
        let file_of = |state: Option<&State>| {
            state
                .and_then(|s| s.escrc.as_ref())
                .map(|stamp| escrc::home_relative(&stamp.path))
        };
        let left_file = file_of(inputs.previous.as_ref().ok().and_then(Option::as_ref));
        transition.report(left_file, file_of(entered.as_ref()));
    }
    let state_name = VarName::constant(state::VAR);
    match entered {
        Some(state) => transition.set(state_name, state.encode()),
        None => transition.unset(state_name),
    }
    // A swap (a child for its parent, a sibling for a sibling) touches only what differs:
    // a name that ends as it began is left alone.
    let unchanged: Vec<String> = transition
        .overlay
        .iter()
        .filter(|(name, new)| {
            let old = transition.original.vars.get(name.as_str());
            match (old, new) {
                (None, None) => true,
                (Some(old), Some(new)) => old.to_str() == Some(new.as_str()),
                _ => false,
            }
        })
        .map(|(name, _)| name.clone())
        .collect();
    transition
        .changes
        .retain(|change| !unchanged.iter().any(|name| name == change.name().as_str()));
    transition.changes
}

/// Nothing to do: the same `.escrc` (or none) as last time, and its trust records unchanged.
/// A state that loaded from a file without the trust keys it was allowed by (which esc-hook
/// never writes) is not believed.
fn is_unchanged(
    previous: &Result<Option<State>, String>,
    found: Option<&FileStamp>,
    store: Option<&TrustStore>,
) -> bool {
    match previous {
        Ok(None) => found.is_none(),
        Ok(Some(state)) if state.escrc.as_ref() == found => {
            let path = state.escrc.as_ref().map(|stamp| stamp.path.as_path());
            if let Some(path) = path
                && !chain::unchanged(path, &state.parents, state.seeks_parent)
            {
                return false;
            }
            match (&state.trust, store) {
                (Some(keys), Some(store)) => {
                    // Every file of the chain on its own: a parent's record counts as much
                    // as the nearest file's.
                    let parents_allowed = state.parents.iter().all(|link| {
                        link.trust
                            .as_ref()
                            .is_none_or(|keys| store.still_allowed(&link.stamp.path, keys))
                    });
                    let allowed =
                        path.is_some_and(|path| store.still_allowed(path, keys)) && parents_allowed;
                    allowed == state.outcome.was_allowed()
                }
                (Some(_), None) => !state.outcome.was_allowed(),
                // Nothing loaded (an unreadable or unsafe file), or nothing loaded from a file
                // (what `exec` set, outside any project): nothing to re-check.
                (None, _) => state.loaded.is_none() || state.escrc.is_none(),
            }
        }
        _ => false,
    }
}

/// After a 401, the user fixing their login (a new `PULUMI_ACCESS_TOKEN`, `pulumi login`) is
/// reason enough to try again.
fn login_changed_since_refused(
    previous: &Result<Option<State>, String>,
    login: &dyn Fn() -> Option<String>,
) -> bool {
    match previous {
        Ok(Some(State {
            failed_login: Some(refused),
            ..
        })) => login().as_ref() != Some(refused),
        _ => false,
    }
}

/// Loaded credentials that reached their refresh point (unless a retry is pending), or that
/// expired (always: expired credentials never stay in the shell silently).
fn refresh_due(state: &State, inputs: &Inputs) -> bool {
    state.loaded.as_ref().is_some_and(|loaded| {
        let Some(expires) = loaded.expires_at else {
            return false;
        };
        let due = inputs.now.saturating_add(inputs.refresh_margin.as_secs()) >= expires
            && loaded.retry_at.is_none_or(|retry| inputs.now >= retry);
        due || inputs.now >= expires
    })
}

/// After a failed refresh of still-valid credentials, wait this long before trying again.
const REFRESH_RETRY_SECONDS: u64 = 60;

/// Swaps in fresh credentials for the same `.escrc` (cache first, then the network), which must
/// still be allowed as it is now (`None` when it is not: the caller decides afresh). If the
/// refresh fails the old ones stay while they are valid; once expired they are removed, loudly.
fn refresh(previous: &State, inputs: &Inputs) -> Option<Vec<Change>> {
    let Some(loaded) = &previous.loaded else {
        return Some(Vec::new());
    };
    let expires_at = loaded.expires_at.unwrap_or(inputs.now);
    let result = match &previous.escrc {
        Some(stamp) => {
            let store = inputs.trust.as_ref().ok()?;
            match chain::allowed_project(stamp.clone(), store) {
                Ok(project) => Ok((stamp, project)),
                Err(chain::Refused::Invalid(error)) => Err(LoadError::Report(error.to_string())),
                // No longer allowed as it is: decided afresh by the caller.
                Err(chain::Refused::Nearest(_) | chain::Refused::Parent(_)) => return None,
            }
        }
        // What `exec` set has no file to refresh from: it stays until it expires.
        None if inputs.now < expires_at => {
            let mut state = previous.clone();
            if let Some(loaded) = &mut state.loaded {
                loaded.retry_at = Some(expires_at);
            }
            return Some(vec![Change::Set(
                VarName::constant(state::VAR),
                state.encode(),
            )]);
        }
        None => Err(LoadError::Report(
            "it was set by `esc-hook exec`, which cannot refresh it".into(),
        )),
    };
    // Still valid: renewed in the background, unless the cache already has fresh ones.
    if let Ok((stamp, project)) = &result
        && inputs.now < expires_at
        && let Some(changes) = refresh_in_background(previous, stamp, project, inputs)
    {
        return Some(changes);
    }
    let mut attempt = Transition::new(inputs.environ);
    attempt.keyring_warned = previous.keyring_warned;
    let kept = attempt.leave(previous, false);
    let result = result.and_then(|(stamp, project)| attempt.load(&project, stamp, inputs, &kept));
    let state_name = VarName::constant(state::VAR);
    let mut state = previous.clone();
    match result {
        Ok((fresh, _)) => {
            let left = fresh
                .expires_at
                .unwrap_or(inputs.now)
                .saturating_sub(inputs.now);
            log::info(format!(
                "refreshed {} ({} left)",
                previous.label,
                crate::duration::human(Duration::from_secs(left))
            ));
            state.loaded = Some(fresh);
            state.keyring_warned = attempt.keyring_warned;
            attempt.set(state_name, state.encode());
            Some(attempt.changes)
        }
        Err(error) => {
            let reason = match error {
                LoadError::Report(message) => message,
                LoadError::AlreadyInterrupted => "interrupted".to_string(),
            };
            if inputs.now < expires_at {
                let left = crate::duration::human(Duration::from_secs(expires_at - inputs.now));
                log::warn(format!(
                    "could not refresh {} ({reason}); its credentials expire in {left}",
                    previous.label
                ));
                if let Some(loaded) = &mut state.loaded {
                    loaded.retry_at = Some(inputs.now.saturating_add(REFRESH_RETRY_SECONDS));
                }
                return Some(vec![Change::Set(state_name, state.encode())]);
            }
            let mut unload = Transition::new(inputs.environ);
            unload.leave(previous, false);
            let names: Vec<&str> = loaded.vars.iter().map(|v| v.name.as_str()).collect();
            log::warn(format!(
                "the credentials of {} expired and could not be refreshed ({reason}): unset {}",
                previous.label,
                names.join(" ")
            ));
            state.outcome = Outcome::Failed;
            state.loaded = None;
            unload.set(state_name, state.encode());
            Some(unload.changes)
        }
    }
}

/// At the refresh point of still-valid credentials: the prompt goes on with them while a
/// detached refresher (one per cache entry, across shells) opens anew into the cache. `None`
/// when the cache already holds fresh credentials (the caller swaps them in, with no network),
/// or when there is no cache to refresh into (the caller refreshes in place).
fn refresh_in_background(
    previous: &State,
    stamp: &FileStamp,
    project: &Escrc,
    inputs: &Inputs,
) -> Option<Vec<Change>> {
    let request = OpenRequest::for_escrc(project)?;
    let provider = (inputs.provider)(&request).ok()?;
    let account = provider.cache_account(&request)?;
    let expires_at = previous.loaded.as_ref()?.expires_at?;
    let progress = refresh::progress(&account, inputs.now, inputs.refresh_lifetime);
    if progress == refresh::Progress::Running {
        return Some(Vec::new());
    }
    if provider.cached(&request).is_some() {
        return None;
    }
    let retry = refresh::retry_after(inputs.refresh_margin).as_secs();
    match progress {
        refresh::Progress::Failed { at, reason } if inputs.now < at.saturating_add(retry) => {
            // Said once in each shell, which then waits as long as the refresher said.
            let mut state = previous.clone();
            let loaded = state.loaded.as_mut()?;
            if loaded.retry_at == Some(at.saturating_add(retry)) {
                return Some(Vec::new());
            }
            loaded.retry_at = Some(at.saturating_add(retry));
            let left =
                crate::duration::human(Duration::from_secs(expires_at.saturating_sub(inputs.now)));
            log::warn(format!(
                "could not refresh {} ({reason}); its credentials expire in {left}",
                previous.label
            ));
            Some(vec![Change::Set(
                VarName::constant(state::VAR),
                state.encode(),
            )])
        }
        _ => {
            refresh::forget_failure(&account);
            refresh::start(&account, &stamp.path, inputs.now, inputs.refresh_lifetime);
            Some(Vec::new())
        }
    }
}

/// A state for a file that was not loaded, saying why (once, here, and in `status` after).
fn failed(stamp: FileStamp, label: String, outcome: Outcome, message: impl ToString) -> State {
    let message = message.to_string();
    log::warn(&message);
    let mut state = State::new(stamp, label, outcome);
    state.error = Some(crate::names::printable(&message, 400));
    state
}

enum Current {
    Unset,
    Text(String),
    NotUtf8,
}

/// The environment as it will be once the changes so far are applied.
struct Transition<'a> {
    original: &'a Environ,
    overlay: BTreeMap<String, Option<String>>,
    changes: Vec<Change>,
    /// This shell's previous hook run was interrupted during the open of this stamp.
    interrupted: Option<String>,
    /// This shell was already told that the keyring does not answer.
    keyring_warned: bool,
    /// The fingerprint of a login the backend refused during this transition.
    failed_login: Option<String>,
    /// What was unloaded (its label), said together with what is loaded instead.
    left: Option<String>,
    /// What was loaded, as the message names it (`label (cached, 50m left)`).
    entered: Option<String>,
}

/// Why a load did not happen.
enum LoadError {
    /// Say this, once.
    Report(String),
    /// The user pressed Ctrl-C during this open at the last prompt and was told then.
    AlreadyInterrupted,
}

impl From<String> for LoadError {
    fn from(message: String) -> LoadError {
        LoadError::Report(message)
    }
}

impl<'a> Transition<'a> {
    fn new(original: &'a Environ) -> Transition<'a> {
        Transition {
            original,
            overlay: BTreeMap::new(),
            changes: Vec::new(),
            interrupted: None,
            keyring_warned: false,
            failed_login: None,
            left: None,
            entered: None,
        }
    }

    fn current(&self, name: &str) -> Current {
        let value = match self.overlay.get(name) {
            Some(value) => return value.clone().map_or(Current::Unset, Current::Text),
            None => self.original.vars.get(name),
        };
        match value.map(|v| v.to_str()) {
            None => Current::Unset,
            Some(Some(text)) => Current::Text(text.to_string()),
            Some(None) => Current::NotUtf8,
        }
    }

    fn set(&mut self, name: VarName, value: String) {
        self.overlay.insert(name.to_string(), Some(value.clone()));
        self.changes.push(Change::Set(name, value));
    }

    fn unset(&mut self, name: VarName) {
        self.overlay.insert(name.to_string(), None);
        self.changes.push(Change::Unset(name));
    }

    /// Puts back what the user had, for every variable that still holds what esc-hook set;
    /// returns the names the user changed meanwhile, which keep the user's value.
    fn leave(&mut self, previous: &State, announce: bool) -> Vec<String> {
        let mut kept = Vec::new();
        let Some(loaded) = &previous.loaded else {
            return kept;
        };
        if announce {
            self.left = Some(previous.label.clone());
        }
        for var in &loaded.vars {
            // A forged state could name anything; only valid names are touched.
            let Some(name) = VarName::parse(&var.name) else {
                continue;
            };
            let still_ours = match self.current(name.as_str()) {
                Current::Text(value) => loaded.still_ours(var, Some(&value)),
                Current::Unset => loaded.still_ours(var, None),
                Current::NotUtf8 => false,
            };
            if !still_ours {
                let current = match self.current(name.as_str()) {
                    Current::Text(value) => Some(value),
                    Current::Unset | Current::NotUtf8 => None,
                };
                // Still the user's own value: the shell refused the assignment (a read-only
                // name), or the user put it back. Nothing to restore and nothing to say.
                if current == var.prev {
                    continue;
                }
                log::warn(format!("kept {name}: it changed since esc-hook set it"));
                kept.push(name.to_string());
                continue;
            }
            match &var.prev {
                Some(prev) => self.set(name, prev.clone()),
                None => self.unset(name),
            }
        }
        if let Some(dir) = &loaded.files_dir {
            files::remove(dir);
        }
        kept
    }

    /// Decides what the `.escrc` at `stamp` gets: it and every file it builds on are checked
    /// for trust before anything else, and the project is loaded only when all are allowed.
    fn enter(&mut self, stamp: FileStamp, inputs: &Inputs) -> State {
        let chain = Chain::discover(stamp.clone());
        let label = chain.label();
        let with_chain = |mut state: State| {
            state.parents = chain.links();
            state.seeks_parent = chain.seeks_parent;
            state
        };
        if let Err(error) = &chain.nearest().parsed
            && chain.nearest().file.is_none()
        {
            return with_chain(failed(stamp, label, Outcome::Failed, error));
        }
        let store = match &inputs.trust {
            Ok(store) => store,
            Err(reason) => {
                let message = format!("cannot check whether .escrc is allowed: {reason}");
                return with_chain(failed(stamp, label, Outcome::NotAllowed, message));
            }
        };
        let keys = chain.nearest().trust_keys();
        let mut loaded = None;
        let mut error = None;
        let blocked = chain.blocked(store);
        let outcome = match blocked.as_ref().map(|b| &b.verdict) {
            Some(Verdict::Unsafe(problem)) => {
                return with_chain(failed(stamp, label, Outcome::Unsafe, problem));
            }
            Some(verdict) => {
                error = blocked
                    .as_ref()
                    .and_then(|blocked| chain.blocked_message(blocked, &label));
                match verdict {
                    Verdict::Denied => Outcome::Denied,
                    _ => Outcome::NotAllowed,
                }
            }
            None => match chain
                .project()
                .map_err(|e| LoadError::Report(e.to_string()))
                .and_then(|project| self.load(&project, &stamp, inputs, &[]))
            {
                Ok((done, from_cache)) => {
                    let left = done.expires_at.map(|at| {
                        crate::duration::human(Duration::from_secs(at.saturating_sub(inputs.now)))
                    });
                    self.entered = Some(match (from_cache, left) {
                        (true, Some(left)) => format!("{label} (cached, {left} left)"),
                        _ => label.clone(),
                    });
                    loaded = Some(done);
                    Outcome::Loaded
                }
                Err(LoadError::Report(message)) => {
                    error = Some(message);
                    Outcome::Failed
                }
                Err(LoadError::AlreadyInterrupted) => Outcome::Failed,
            },
        };
        if let Some(message) = &error {
            log::warn(message);
        }
        let mut state = with_chain(State::new(stamp, label, outcome));
        state.trust = keys;
        state.loaded = loaded;
        state.keyring_warned = self.keyring_warned;
        state.error = error.map(|m| crate::names::printable(&m, 400));
        state.failed_login = self.failed_login.take();
        state
    }

    /// Resolves the environment and the inline values, and sets them, except the names in
    /// `keep` (the user's own since the last load). Says whether the cache served it.
    fn load(
        &mut self,
        escrc: &Escrc,
        stamp: &FileStamp,
        inputs: &Inputs,
        keep: &[String],
    ) -> Result<(Loaded, bool), LoadError> {
        if OpenRequest::for_escrc(escrc).is_some()
            && interrupt::matches(self.interrupted.as_deref(), stamp)
        {
            return Err(LoadError::AlreadyInterrupted);
        }
        let mut resolved = None;
        if let Some(request) = OpenRequest::for_escrc(escrc) {
            let provider = (inputs.provider)(&request).map_err(|e| e.to_string())?;
            let spinner = log::Spinner::start(format!("opening {}", request.label()));
            let result = provider.resolve(&request);
            drop(spinner);
            let result = result.map_err(|error| {
                match &error {
                    ProviderError::Interrupted { .. } => interrupt::remember(stamp),
                    ProviderError::Unauthorized { login, .. } => {
                        self.failed_login = Some(login.clone());
                    }
                    _ => {}
                }
                error.to_string()
            })?;
            if let Some(warning) = &result.warning
                && !self.keyring_warned
            {
                log::warn(warning);
                self.keyring_warned = true;
            }
            resolved = Some(result);
        }
        let from_cache = resolved.as_ref().is_some_and(|r| r.from_cache);
        let opened_at = resolved
            .as_ref()
            .map_or(inputs.now, |r| time::unix(r.opened_at));
        let expires_at = resolved.as_ref().map(|r| time::unix(r.expires_at));
        let mut wanted = project::wanted(escrc, resolved.as_ref());
        wanted.retain(|name, _| !keep.contains(name));
        // `credentials: process`: a profile that refreshes by itself, and the user's own
        // static keys set aside while inside (the SDKs would take them first).
        let process_mode = escrc.credentials_mode() == CredentialsMode::Process;
        let mut set_aside = Vec::new();
        if process_mode {
            let esc_hook = std::env::current_exe()
                .map_err(|e| format!("could not find esc-hook itself: {}", escrc::io_reason(&e)))?;
            project::use_credential_process(&mut wanted, escrc, &esc_hook)?;
            for name in project::STATIC_AWS_CREDENTIALS {
                if let (Current::Text(prev), false) =
                    (self.current(name), keep.iter().any(|k| k == name))
                {
                    set_aside.push(SetVar {
                        name: name.to_string(),
                        prev: Some(prev),
                        hash: String::new(),
                        unset: true,
                        from: None,
                    });
                }
            }
        }
        let accepted = project::accept(wanted, escrc, |name| {
            matches!(self.current(name), Current::NotUtf8)
                .then(|| format!("left {name} alone: its current value is not UTF-8"))
        });
        let project::Materialized {
            vars: accepted,
            files_dir,
        } = project::materialize(accepted)?;

        let salt = Loaded::new_salt();
        let mut origins: Vec<String> = Vec::new();
        let mut vars: Vec<SetVar> = accepted
            .iter()
            .map(|(name, text)| {
                let origin = project::origin_of(escrc, resolved.as_ref(), name.as_str());
                let from = origins
                    .iter()
                    .position(|o| *o == origin)
                    .unwrap_or_else(|| {
                        origins.push(origin);
                        origins.len() - 1
                    });
                SetVar {
                    name: name.to_string(),
                    prev: match self.current(name.as_str()) {
                        Current::Text(prev) => Some(prev),
                        Current::Unset | Current::NotUtf8 => None,
                    },
                    hash: Loaded::hash(&salt, name.as_str(), text),
                    unset: false,
                    from: (from > 0).then_some(from),
                }
            })
            .collect();
        // The state names every variable and keeps the user's previous values: it must stay
        // within what one variable may hold, or no program (esc-hook included) could start.
        let fits = state::fitting(&vars);
        if fits < vars.len() {
            let dropped: Vec<String> = vars.drain(fits..).map(|v| v.name).collect();
            log::warn(format!(
                "skipped {} variable{} ({}): the state that records them would exceed {} KiB",
                dropped.len(),
                if dropped.len() == 1 { "" } else { "s" },
                crate::names::printable(&dropped.join(" "), 80),
                state::MAX_STATE_LEN / 1024
            ));
        }
        let mut accepted = accepted;
        accepted.truncate(fits);
        for name in project::STATIC_AWS_CREDENTIALS {
            if set_aside.iter().any(|var| var.name == name) {
                self.unset(VarName::constant(name));
            }
        }
        vars.extend(set_aside);
        let loaded = Loaded {
            salt,
            vars,
            files_dir,
            opened_at,
            // The profile refreshes by itself: nothing in the shell to swap at the prompt.
            expires_at: if process_mode { None } else { expires_at },
            retry_at: None,
            origins,
        };
        for (name, text) in accepted {
            self.set(name, text);
        }
        Ok((loaded, from_cache))
    }

    /// What this transition did, names only: `loading X` or `unloading X`, then
    /// `+ADDED ~CHANGED -REMOVED` against the environment as it was; a swap from one project to
    /// another (a child for its parent, a sibling for a sibling) is one line with only what
    /// differs.
    /// `left_file` and `entered_file` name the two projects when their labels are the same
    /// (levels of one chain that add no environment).
    fn report(&self, left_file: Option<String>, entered_file: Option<String>) {
        let diff = self.diff();
        match (&self.left, &self.entered) {
            (Some(left), Some(entered)) => {
                let changes = match diff.is_empty() {
                    true => "nothing changed".to_string(),
                    false => diff,
                };
                // The same file again (allowed anew, or edited): one line, named once.
                if left_file.is_some() && left_file == entered_file {
                    log::info(format!("reloading {entered}: {changes}"));
                    return;
                }
                let (left, entered) = match (left_file, entered_file) {
                    (Some(from), Some(to))
                        if entered == left || entered.starts_with(&format!("{left} (")) =>
                    {
                        let detail = entered.strip_prefix(left.as_str()).unwrap_or_default();
                        (from, format!("{to}{detail}"))
                    }
                    _ => (left.clone(), entered.clone()),
                };
                log::info(format!("leaving {left} for {entered}: {changes}"));
                return;
            }
            (Some(left), None) => log::info(format!("unloading {left}")),
            (None, Some(entered)) => log::info(format!("loading {entered}")),
            (None, None) => {}
        }
        if !diff.is_empty() {
            log::info(diff);
        }
    }

    fn diff(&self) -> String {
        let mut parts = Vec::new();
        for (name, new) in &self.overlay {
            let old = self.original.vars.get(name);
            let mark = match (old, new) {
                (None, Some(_)) => '+',
                (Some(_), None) => '-',
                (Some(old), Some(new)) if old.to_str() != Some(new.as_str()) => '~',
                _ => continue,
            };
            parts.push(format!("{mark}{name}"));
        }
        parts.join(" ")
    }
}
