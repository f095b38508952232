//! The production provider for a project's request: the Pulumi ESC API for the user's login,
//! then AWS STS, all behind the keyring cache, with the timeouts and store the settings name.

use std::time::Duration;

use crate::keeping::cache::{self as credential_cache, CachedProvider};
use crate::provider::esc::EscClient;
use crate::provider::sts::StsProvider;
use crate::provider::{OpenRequest, Provider, ProviderError, login};
use crate::settings::Settings;

/// The tokens `esc-hook login --oidc-token` keeps, by backend, from the keyring (opened at the
/// first question only).
pub fn exchanged_logins(settings: &'static Settings) -> impl Fn(&str) -> login::Exchanged {
    let store = std::sync::OnceLock::new();
    move |backend: &str| {
        let store = store.get_or_init(|| {
            credential_cache::store::open(
                settings.setting(credential_cache::store::SETTING).as_ref(),
                settings.session_bus(),
            )
            .ok()
            .flatten()
        });
        let Some(store) = store else {
            return login::Exchanged::None;
        };
        let now = crate::ground::time::now();
        let at = |unix: u64| crate::ground::time::rfc3339(unix);
        match credential_cache::logins::stored(store.as_ref(), backend, now) {
            credential_cache::logins::Stored::Valid(token, until) => {
                login::Exchanged::Valid(token, at(until))
            }
            credential_cache::logins::Stored::Expired(when) => login::Exchanged::Expired(at(when)),
            credential_cache::logins::Stored::None => login::Exchanged::None,
        }
    }
}

/// The production provider for a request: the Pulumi ESC API for the user's login (only when
/// the request names an environment), then AWS STS (only when the `.escrc` asks for it), all
/// behind the keyring cache, with timeouts and store from the environment.
pub fn provider_for(
    settings: &'static Settings,
    request: &OpenRequest,
) -> Result<CachedProvider, ProviderError> {
    // The HTTP clients, the keyring and a token command get the user's own environment
    // explicitly: the process environment holds what the current project exported.
    let network = settings.network().map_err(ProviderError::Config)?;
    let var = |name: &str| settings.var(name).map(String::from);
    let timeouts = settings.timeouts().map_err(ProviderError::Config)?;
    let (mut inner, backend, identity): (Option<Box<dyn Provider>>, String, String) =
        match request.envs.first() {
            Some(_) => {
                let login =
                    login::resolve_with(&var, settings.home(), &exchanged_logins(settings))?;
                let identity = login.identity();
                let backend = login.backend.clone();
                (
                    Some(Box::new(EscClient::new(login, timeouts, network.clone()))),
                    backend,
                    identity,
                )
            }
            // STS alone (web identity from a file or command): no Pulumi login involved.
            None => (None, "-".into(), "-".into()),
        };
    if request.aws.is_some() {
        inner = Some(Box::new(StsProvider {
            esc: inner,
            setting: Box::new(move |name| settings.var(name).map(String::from)),
            timeout: timeouts.total,
            network,
            child_env: settings
                .clean_env()
                .map(|(name, value)| (name.clone(), value.to_os_string()))
                .collect(),
        }));
    }
    let inner = inner.ok_or_else(|| ProviderError::Config("nothing to open".into()))?;
    Ok(CachedProvider {
        inner,
        store: credential_cache::store::open(
            settings.setting(credential_cache::store::SETTING).as_ref(),
            settings.session_bus(),
        ),
        backend,
        identity,
        index: credential_cache::Index::open(settings.cache_dir().as_deref()),
        margin: settings.refresh_margin(),
        // Long enough for another shell's whole open, so it is waited for, not repeated.
        lock_wait: timeouts.total + Duration::from_secs(2),
    })
}
