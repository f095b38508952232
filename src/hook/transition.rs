//! A transition: leave what was loaded (restoring the user's values), then enter what is
//! found, and hand back the list of changes for one shell script.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::ground::fs::FileStamp;
use crate::ground::fs::home_relative;
use crate::ground::log;
use crate::ground::names::VarName;
use crate::ground::time;
use crate::inputs::escrc::{CredentialsMode, Escrc};
use crate::keeping;
use crate::keeping::files;
use crate::keeping::interrupt;
use crate::keeping::trust::Verdict;
use crate::project;
use crate::project::chain::Chain;
use crate::provider::{OpenRequest, ProviderError};
use crate::settings::Environ;
use crate::settings::state::{self, Loaded, Outcome, SetVar, State};
use crate::shell::Change;

use super::inputs::{Holding, Inputs};

/// What a state records as the failed login when there was none to use.
pub(super) const NO_LOGIN: &str = "-";

/// A state for a file that was not loaded, saying why (once, here, and in `status` after).
fn failed(stamp: FileStamp, label: String, outcome: Outcome, message: impl ToString) -> State {
    let message = message.to_string();
    log::warn(&message);
    let mut state = State::new(stamp, label, outcome);
    state.error = Some(crate::ground::names::printable(&message, 400));
    state
}

enum Current {
    Unset,
    Text(String),
    NotUtf8,
}

/// The environment as it will be once the changes so far are applied.
pub(super) struct Transition<'a> {
    original: &'a Environ,
    overlay: BTreeMap<String, Option<String>>,
    pub(super) changes: Vec<Change>,
    /// This shell's previous hook run was interrupted during the open of this stamp.
    interrupted: Option<String>,
    /// This shell was already told that the keyring does not answer.
    pub(super) keyring_warned: bool,
    /// The fingerprint of a login the backend refused during this transition.
    failed_login: Option<String>,
    /// A transient failure during this transition: when to try again (unix seconds).
    retry_at: Option<u64>,
    /// What the state being left said went wrong: a retry that fails the same way is not
    /// said again.
    previous_error: Option<String>,
    /// What was unloaded (its label), said together with what is loaded instead.
    left: Option<String>,
    /// What was loaded, as the message names it (`label (cached, 50m left)`).
    entered: Option<String>,
    /// Where the user's own secret values wait while a project overrides them.
    holding: &'a Holding<'a>,
    /// The held values read back while leaving (by salted hash), or why they could not be.
    released: Option<Result<BTreeMap<String, String>, String>>,
}

/// Why a load did not happen.
pub(super) enum LoadError {
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
    pub(super) fn new(original: &'a Environ, holding: &'a Holding<'a>) -> Transition<'a> {
        Transition {
            original,
            holding,
            released: None,
            overlay: BTreeMap::new(),
            changes: Vec::new(),
            interrupted: None,
            keyring_warned: false,
            failed_login: None,
            retry_at: None,
            previous_error: None,
            left: None,
            entered: None,
        }
    }

    /// Begins a transition by leaving what the previous state loaded (restoring the user's
    /// values); remembers what this shell was already told.
    pub(super) fn leave_previous(&mut self, previous: &Result<Option<State>, String>) {
        self.interrupted = interrupt::take();
        match previous {
            Ok(Some(previous)) => {
                self.keyring_warned = previous.keyring_warned;
                self.previous_error = previous.error.clone();
                self.leave(previous, true);
            }
            Ok(None) => {}
            Err(reason) => log::warn(format!("ignoring {reason}")),
        }
    }

    /// Enters the `.escrc` found, if any: the state the shell is then in.
    pub(super) fn enter_found(
        &mut self,
        found: Option<FileStamp>,
        inputs: &Inputs,
    ) -> Option<State> {
        match found {
            Some(stamp) => Some(self.enter(stamp, inputs)),
            None if self.keyring_warned => Some(State::outside(true)),
            None => None,
        }
    }

    /// What changed, names only: on loading, and on unloading alike.
    pub(super) fn report_change(
        &self,
        previous: &Result<Option<State>, String>,
        entered: Option<&State>,
    ) {
        let previous = previous.as_ref().ok().and_then(Option::as_ref);
        let left_loaded = previous.is_some_and(|state| state.loaded.is_some());
        if left_loaded || entered.is_some_and(|s| s.outcome == Outcome::Loaded) {
            let file_of = |state: Option<&State>| {
                state
                    .and_then(|s| s.escrc.as_ref())
                    .map(|stamp| home_relative(&stamp.path))
            };
            self.report(file_of(previous), file_of(entered));
        }
    }

    /// The changes for the shell: the state variable last, and nothing for a name that ends as
    /// it began (a swap between a child and its parent, or two siblings, touches only what
    /// differs).
    pub(super) fn finish(mut self, entered: Option<State>) -> Vec<Change> {
        let state_name = VarName::constant(state::VAR);
        match entered {
            Some(state) => self.set(state_name, state.encode()),
            None => self.unset(state_name),
        }
        let unchanged: Vec<String> = self
            .overlay
            .iter()
            .filter(|(name, new)| {
                let old = self.original.vars.get(name.as_str());
                match (old, new) {
                    (None, None) => true,
                    (Some(old), Some(new)) => old.to_str() == Some(new.as_str()),
                    _ => false,
                }
            })
            .map(|(name, _)| name.clone())
            .collect();
        self.changes
            .retain(|change| !unchanged.iter().any(|name| name == change.name().as_str()));
        self.changes
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

    pub(super) fn set(&mut self, name: VarName, value: String) {
        self.overlay.insert(name.to_string(), Some(value.clone()));
        self.changes.push(Change::Set(name, value));
    }

    pub(super) fn unset(&mut self, name: VarName) {
        self.overlay.insert(name.to_string(), None);
        self.changes.push(Change::Unset(name));
    }

    /// Puts back what the user had, for every variable that still holds what esc-hook set;
    /// returns the names the user changed meanwhile, which keep the user's value.
    pub(super) fn leave(&mut self, previous: &State, announce: bool) -> Vec<String> {
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
            let prev = match &var.held {
                Some(hash) => self.held_value(loaded.held_in.as_deref(), hash, &name),
                None => var.prev.clone(),
            };
            match prev {
                Some(prev) => self.set(name, prev),
                None => self.unset(name),
            }
        }
        if let Some(dir) = &loaded.files_dir {
            files::remove(dir);
        }
        kept
    }

    /// The user's own value held under `hash` in the keyring entry `account`; none, said once
    /// per name, when the keyring cannot give it back.
    fn held_value(&mut self, account: Option<&str>, hash: &str, name: &VarName) -> Option<String> {
        let released = self.released.get_or_insert_with(|| {
            let account = account.ok_or("the state names no keyring entry")?;
            let store = (self.holding.store)()?;
            keeping::cache::held::held_values(store.as_ref(), account).map_err(|e| e.to_string())
        });
        let problem = match released {
            Ok(values) => match values.get(hash) {
                Some(value) => return Some(value.clone()),
                None => "the keyring no longer has it".to_string(),
            },
            Err(reason) => reason.clone(),
        };
        log::warn(format!(
            "could not bring back your own {name} ({problem}): it is unset; set it again"
        ));
        None
    }

    /// Moves the user's previous values of secret names out of `vars` (and so out of the
    /// state) into this shell's keyring entry; returns its account, if anything was held.
    fn hold_secrets(&self, salt: &str, vars: &mut [SetVar]) -> Result<Option<String>, String> {
        let mut values = Vec::new();
        let mut names = Vec::new();
        for var in vars.iter_mut() {
            if !crate::ground::names::is_secret_name(&var.name) {
                continue;
            }
            if let Some(value) = var.prev.take() {
                let hash = Loaded::hash(salt, &format!("held:{}", var.name), &value);
                var.held = Some(hash.clone());
                values.push((hash, value));
                names.push(var.name.clone());
            }
        }
        if values.is_empty() {
            return Ok(None);
        }
        let them = if names.len() == 1 { "it" } else { "them" };
        let cannot = |reason: String| {
            format!(
                "not loaded: your own {} would wait in a keyring while the project overrides \
                 {them}, and none is usable ({reason}); unset {them} first, or set up a keyring \
                 (see `esc-hook doctor`), then `esc-hook reload`",
                names.join(" "),
            )
        };
        let store = (self.holding.store)().map_err(cannot)?;
        keeping::cache::held::hold(
            store.as_ref(),
            self.holding.list.as_ref(),
            self.holding.owner,
            values,
        )
        .map(Some)
        .map_err(|e| cannot(e.to_string()))
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
        let mut quiet_error = None;
        let blocked = chain.blocked(store);
        let outcome = match blocked.as_ref().map(|b| &b.verdict) {
            Some(Verdict::Unsafe(problem)) => {
                return with_chain(failed(stamp, label, Outcome::Unsafe, problem));
            }
            Some(verdict) => {
                error = blocked
                    .as_ref()
                    .and_then(|blocked| chain.blocked_message(blocked, &label, store));
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
                        crate::ground::duration::human(Duration::from_secs(
                            at.saturating_sub(inputs.now),
                        ))
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
                Err(LoadError::AlreadyInterrupted) => {
                    // Said at the prompt where it happened; `status` says it again.
                    quiet_error = Some(format!(
                        "stopped opening {label} (Ctrl-C): `esc-hook reload`, or leave and re-enter, to try again"
                    ));
                    Outcome::Failed
                }
            },
        };
        let error = error.map(|m| crate::ground::names::printable(&m, 400));
        if let Some(message) = &error
            && self.previous_error.as_ref() != Some(message)
        {
            log::warn(message);
        }
        let error = error.or(quiet_error);
        let mut state = with_chain(State::new(stamp, label, outcome));
        state.trust = keys;
        state.loaded = loaded;
        state.keyring_warned = self.keyring_warned;
        state.error = error;
        state.failed_login = self.failed_login.take();
        state.retry_at = self.retry_at.take();
        state
    }

    /// Resolves the environment and the inline values, and sets them, except the names in
    /// `keep` (the user's own since the last load). Says whether the cache served it.
    pub(super) fn load(
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
            let provider = (inputs.provider)(&request).map_err(|e| {
                // No login, or one esc-hook cannot use: retried once the login changes.
                self.failed_login = Some((inputs.login)().unwrap_or_else(|| NO_LOGIN.into()));
                e.to_string()
            })?;
            let spinner = log::Spinner::start(format!("opening {}", request.label()));
            let result = provider.resolve(&request);
            drop(spinner);
            let result = result.map_err(|error| {
                match &error {
                    ProviderError::Interrupted { .. } => interrupt::remember(stamp),
                    ProviderError::Unauthorized { login, .. } => {
                        self.failed_login = Some(login.clone());
                    }
                    transient if transient.is_transient() => {
                        let wait = crate::refresh::retry_after(inputs.refresh_margin);
                        self.retry_at = Some(inputs.now.saturating_add(wait.as_secs()));
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
            let esc_hook = std::env::current_exe().map_err(|e| {
                format!(
                    "could not find esc-hook itself: {}",
                    crate::ground::fs::io_reason(&e)
                )
            })?;
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
                        held: None,
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
                    held: None,
                }
            })
            .collect();
        // The state names every variable and keeps the user's previous values: it must stay
        // within what one variable may hold, or no program (esc-hook included) could start.
        let fits = state::fitting(&vars);
        if fits < vars.len() {
            let dropped: Vec<String> = vars.drain(fits..).map(|v| v.name).collect();
            log::warn(state::skipped_line(&dropped));
        }
        let mut accepted = accepted;
        accepted.truncate(fits);
        let aside: Vec<VarName> = set_aside
            .iter()
            .filter_map(|var| VarName::parse(&var.name))
            .collect();
        vars.extend(set_aside);
        // Before anything changes: a load that cannot hold them changes nothing.
        let held_in = self.hold_secrets(&salt, &mut vars).inspect_err(|_| {
            if let Some(dir) = &files_dir {
                files::remove(dir);
            }
        })?;
        for name in aside {
            self.unset(name);
        }
        let loaded = Loaded {
            salt,
            vars,
            files_dir,
            opened_at,
            // The profile refreshes by itself: nothing in the shell to swap at the prompt.
            expires_at: if process_mode { None } else { expires_at },
            retry_at: None,
            origins,
            held_in,
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
