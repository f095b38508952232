//! What `esc-hook export` decides at each prompt: load, reload, unload, or nothing.
//!
//! The decision ([`decide`], one screen) reads only the state variable, the directory walk for
//! `.escrc`, and two trust records (in a layered project, the same again for each parent: see
//! [`crate::project::chain`]); an unchanged prompt ends there. Credentials at their refresh
//! point are refreshed here. Anything else goes through a [`Transition`] (transition.rs): leave
//! what was loaded (restoring the user's values), then enter what is found, and hand back the
//! list of changes for one shell script.

use std::time::Duration;

mod inputs;
mod transition;

pub use inputs::{Holding, Inputs};

use crate::ground::fs::FileStamp;
use crate::ground::log;
use crate::ground::names::VarName;
use crate::inputs::escrc::{self, Escrc};
use crate::keeping::trust::TrustStore;
use crate::project::chain;
use crate::provider::OpenRequest;
use crate::refresh;
use crate::settings::state::{self, Outcome, State};
use crate::shell::Change;

use transition::{LoadError, Transition};

/// The changes to apply to the shell (empty when nothing changed), and the state the shell
/// is left in.
pub fn export(inputs: &Inputs) -> (Vec<Change>, Option<State>) {
    let mut changes = decide(inputs);
    record_config_said(&mut changes, inputs);
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

/// The state the shell is left in records which config problems it was told, so that they are
/// said once per state of the file, not at every `cd`.
fn record_config_said(changes: &mut Vec<Change>, inputs: &Inputs) {
    let at = changes
        .iter()
        .rposition(|c| c.name().as_str() == state::VAR);
    let state = match at.map(|i| &changes[i]) {
        Some(Change::Set(_, text)) => State::decode(text).ok(),
        Some(Change::Unset(_)) => None,
        None => inputs.previous.clone().ok().flatten(),
    };
    let mut state = match state {
        Some(state) if state.config_said == inputs.config_said => return,
        Some(state) => state,
        None if inputs.config_said.is_none() => return,
        None => State::outside(false),
    };
    state.config_said = inputs.config_said.clone();
    let change = Change::Set(VarName::constant(state::VAR), state.encode());
    match at {
        Some(i) => changes[i] = change,
        None => changes.push(change),
    }
}

fn decide(inputs: &Inputs) -> Vec<Change> {
    let found = inputs.pwd.as_deref().and_then(escrc::find_nearest);
    if is_unchanged(&inputs.previous, found.as_ref(), inputs.trust.as_ref().ok())
        && !login_changed_since_refused(&inputs.previous, inputs.login)
    {
        match &inputs.previous {
            // After a transient failure, its wait over: entered afresh below.
            Ok(Some(state)) if state.retry_at.is_some_and(|at| inputs.now >= at) => {}
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
    crate::ground::log::debug(format!(
        "decision: {} ({})",
        match &found {
            Some(stamp) => crate::ground::fs::home_relative(&stamp.path),
            None => "no .escrc here".into(),
        },
        "changed since the last prompt"
    ));
    // Anything else: leave what was loaded, enter what is here, say what changed, and hand
    // the shell only the names whose values differ.
    let mut transition = Transition::new(inputs.environ, &inputs.holding);
    transition.leave_previous(&inputs.previous);
    let entered = transition.enter_found(found, inputs);
    transition.report_change(&inputs.previous, entered.as_ref());
    transition.finish(entered)
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
        })) => login().as_deref().unwrap_or(transition::NO_LOGIN) != refused,
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
    let mut attempt = Transition::new(inputs.environ, &inputs.holding);
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
                crate::ground::duration::human(Duration::from_secs(left))
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
                let left =
                    crate::ground::duration::human(Duration::from_secs(expires_at - inputs.now));
                log::warn(format!(
                    "could not refresh {} ({reason}); its credentials expire in {left}",
                    previous.label
                ));
                if let Some(loaded) = &mut state.loaded {
                    loaded.retry_at = Some(inputs.now.saturating_add(REFRESH_RETRY_SECONDS));
                }
                return Some(vec![Change::Set(state_name, state.encode())]);
            }
            let mut unload = Transition::new(inputs.environ, &inputs.holding);
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
            let left = crate::ground::duration::human(Duration::from_secs(
                expires_at.saturating_sub(inputs.now),
            ));
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
