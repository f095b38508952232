//! What the per-prompt decision reads from the outside world, gathered by `export`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::keeping::cache::held::HeldList;
use crate::keeping::cache::store::SecretStore;
use crate::keeping::trust::TrustStore;
use crate::provider::{OpenRequest, Provider, ProviderError};
use crate::settings::Environ;
use crate::settings::state::State;

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
    /// Where the user's own secret values wait while a project overrides them.
    pub holding: Holding<'a>,
    /// The config file's problems (their fingerprint), said at this run unless the shell was
    /// told them already: the state records it.
    pub config_said: Option<String>,
}

/// The keyring entry of this shell's held values (`keeping::cache::held`), opened only when a
/// value must be held or brought back.
pub struct Holding<'a> {
    /// The keyring, or why there is none to use (caching off, no store answers).
    pub store: &'a dyn Fn() -> Result<Arc<dyn SecretStore>, String>,
    pub list: Option<HeldList>,
    /// The shell whose entry it is.
    pub owner: libc::pid_t,
}
