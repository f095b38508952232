//! `esc-hook login --oidc-token`: a CI job logs in without a stored Pulumi token, exchanging
//! the job's OIDC ID token for a short-lived Pulumi access token, kept in the keyring with its
//! expiry for the later `exec`, `export` and hook runs of the job, for that backend only.

use std::time::Duration;

use anyhow::{anyhow, bail};

use crate::ground::log;
use crate::keeping::cache::{logins, store};
use crate::provider::login;
use crate::provider::oidc::{self, Exchange, Scope};
use crate::settings::Settings;

pub struct Options {
    /// The ID token, or `@FILE` naming a file that holds it.
    pub oidc_token: String,
    pub org: String,
    pub team: Option<String>,
    pub user: Option<String>,
    pub expiration: Option<String>,
    pub backend: Option<String>,
}

pub fn run(settings: &'static Settings, options: Options) -> anyhow::Result<()> {
    // The ID token never appears in an error: only where it came from.
    let id_token = match options.oidc_token.strip_prefix('@') {
        Some(path) => {
            let file = crate::ground::fs::read_small(std::path::Path::new(path), 64 * 1024)
                .map_err(|reason| anyhow!("--oidc-token @{path}: the file {reason}"))?;
            String::from_utf8(file.content)
                .map_err(|_| anyhow!("--oidc-token @{path}: the file is not text"))?
        }
        None => options.oidc_token.clone(),
    };
    let id_token = id_token.trim();
    let expiration = options
        .expiration
        .as_deref()
        .map(|text| {
            crate::ground::duration::parse(text)
                .map_err(|reason| anyhow!("--oidc-expiration: {reason}"))
        })
        .transpose()?;
    let org = options.org.as_str();
    if org.is_empty()
        || !org
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    {
        bail!(
            "--oidc-org: `{}` is not an organization name",
            crate::ground::names::printable(org, 60)
        );
    }
    let scope = match (options.team, options.user) {
        (Some(team), None) => Scope::Team(team),
        (None, Some(user)) => Scope::Personal(user),
        (None, None) => Scope::Organization,
        (Some(_), Some(_)) => {
            bail!("--oidc-team and --oidc-user ask for different tokens: name one")
        }
    };
    let var = |name: &str| settings.var(name).map(String::from);
    let backend = match &options.backend {
        Some(url) => login::checked_backend(url)?,
        None => login::backend(&var, settings.home())?,
    };
    // Where it will be kept, before anything is sent: a token nobody can reuse is not asked for.
    let keyring = store::open(settings.setting(store::SETTING).as_ref(), settings.session_bus())
        .map_err(|e| anyhow!(e.to_string()))
        .and_then(|store| store.ok_or_else(|| anyhow!("{}=none", store::SETTING)))
        .map_err(|reason| {
            anyhow!(
                "no keyring to keep the exchanged token in ({reason}): esc-hook never writes a token to disk; in CI run the job under `keyctl session` with ESC_HOOK_KEYRING=keyutils"
            )
        })?;
    let network = settings.network().map_err(|e| anyhow!(e))?;
    let timeouts = settings.timeouts().map_err(|e| anyhow!(e))?;
    let exchanged = oidc::exchange(
        &Exchange {
            backend: &backend,
            id_token,
            org,
            scope: scope.clone(),
            expiration,
        },
        &network,
        timeouts,
    )?;
    let now = crate::ground::time::now();
    let expires_at = now.saturating_add(exchanged.expires_in.as_secs());
    logins::keep(
        keyring.as_ref(),
        &backend,
        &exchanged.token,
        now,
        expires_at,
    )
    .map_err(|e| anyhow!("could not keep the exchanged token: {e}"))?;
    let who = match scope {
        Scope::Organization => format!("organization {org}"),
        Scope::Team(team) => format!("team {team} of {org}"),
        Scope::Personal(user) => format!("user {user} of {org}"),
    };
    log::info(format!(
        "logged in to {backend} as {who} for {} (in the {} keyring)",
        crate::ground::duration::human(Duration::from_secs(expires_at - now)),
        keyring.name()
    ));
    Ok(())
}
