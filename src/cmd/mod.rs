//! One module per command.

pub mod cache;
pub mod completions;
pub mod credential_process;
pub mod doctor;
pub mod edit;
pub mod exec;
pub mod export;
pub mod init;
pub mod reload;
pub mod status;
pub mod trust;

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{anyhow, bail};

use crate::chain::{self, Refused};
use crate::escrc::{self, EnvRef, Escrc};
use crate::glob::ExportFilter;
use crate::settings::Settings;
use crate::trust::{TrustStore, Verdict};

use crate::cache::{self as credential_cache, CachedProvider};
use crate::provider::esc::{EscClient, Timeouts};
use crate::provider::sts::StsProvider;
use crate::provider::{OpenRequest, Provider, ProviderError, login};

/// The project a command outside the hook works on: an environment named on the command line
/// (opened with default settings; the user named it in their own configuration), or the
/// allowed `.escrc` of a directory (the nearest at or above it; the current one by default).
pub fn project_escrc(
    settings: &Settings,
    env: Option<String>,
    dir: Option<PathBuf>,
) -> anyhow::Result<Escrc> {
    if let Some(reference) = env {
        let env = EnvRef::parse(&reference).map_err(|e| anyhow!(e))?;
        return Ok(Escrc {
            path: PathBuf::from(format!("/{}", escrc::FILE_NAME)),
            environments: vec![env],
            open_duration: None,
            ttl: None,
            export: ExportFilter::default(),
            values: Default::default(),
            aws: None,
            allow_names: Default::default(),
            value_lines: Default::default(),
            inherit: false,
            export_given: false,
            value_files: Default::default(),
        });
    }
    let dir = match dir {
        Some(dir) if !dir.is_dir() => bail!("no such directory: {}", dir.display()),
        Some(dir) => std::path::absolute(&dir).unwrap_or(dir),
        None => escrc::current_dir(settings)
            .ok_or_else(|| anyhow!("could not find the current directory"))?,
    };
    let stamp = escrc::find_nearest(&dir).ok_or_else(|| {
        anyhow!(
            "no {} in {} or any parent directory",
            escrc::FILE_NAME,
            dir.display()
        )
    })?;
    let not_allowed = format!(
        "{} is not allowed: run `esc-hook allow {}`",
        stamp.path.display(),
        dir.display()
    );
    allowed_project(settings, stamp, &not_allowed)
}

/// The project of the chain at `nearest` for a command, every file of it allowed; else the
/// command's error (`not_allowed` when it is the nearest file itself that is not allowed).
pub fn allowed_project(
    settings: &Settings,
    nearest: escrc::FileStamp,
    not_allowed: &str,
) -> anyhow::Result<Escrc> {
    let store = TrustStore::open(settings).map_err(|e| anyhow!(e))?;
    match chain::allowed_project(nearest, &store) {
        Ok(project) => Ok(project),
        Err(Refused::Nearest(Verdict::Unsafe(problem))) => bail!("{problem}"),
        Err(Refused::Nearest(_)) => bail!("{not_allowed}"),
        Err(Refused::Parent(message)) => bail!("{message}"),
        Err(Refused::Invalid(error)) => Err(error.into()),
    }
}

/// The production provider for a request: the Pulumi ESC API for the user's login (only when
/// the request names an environment), then AWS STS (only when the `.escrc` asks for it), all
/// behind the keyring cache, with timeouts and store from the environment.
pub fn provider_for(
    settings: &'static Settings,
    request: &OpenRequest,
) -> Result<CachedProvider, ProviderError> {
    // Before the first thread (the keyring's) and anything that reads the environment itself
    // (the HTTP clients' proxy and CA settings, a token command).
    settings.sanitize_process();
    let var = |name: &str| settings.var(name).map(String::from);
    let timeouts = Timeouts {
        connect: timeout_from(
            settings,
            "ESC_HOOK_CONNECT_TIMEOUT",
            Timeouts::DEFAULT.connect,
        )?,
        total: timeout_from(settings, "ESC_HOOK_TIMEOUT", Timeouts::DEFAULT.total)?,
    };
    let (mut inner, backend, identity): (Option<Box<dyn Provider>>, String, String) =
        match request.envs.first() {
            Some(_) => {
                let login = login::resolve(&var, settings.home())?;
                let identity = credential_cache::key::identity(&login.backend, &login.token);
                let backend = login.backend.clone();
                (
                    Some(Box::new(EscClient::new(login, timeouts))),
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
        }));
    }
    let inner = inner.ok_or_else(|| ProviderError::Config("nothing to open".into()))?;
    Ok(CachedProvider {
        inner,
        store: credential_cache::store::open(
            settings.setting(credential_cache::store::SETTING).as_ref(),
        ),
        backend,
        identity,
        margin: settings.refresh_margin(),
        // Long enough for another shell's whole open, so it is waited for, not repeated.
        lock_wait: timeouts.total + Duration::from_secs(2),
    })
}

/// The bound on a whole open (`ESC_HOOK_TIMEOUT`), its default when the setting is unusable.
pub fn open_timeout(settings: &Settings) -> Duration {
    timeout_from(settings, "ESC_HOOK_TIMEOUT", Timeouts::DEFAULT.total)
        .unwrap_or(Timeouts::DEFAULT.total)
}

/// A timeout setting (the variable `name`, else the config file's entry), else `default`.
fn timeout_from(
    settings: &Settings,
    name: &str,
    default: Duration,
) -> Result<Duration, ProviderError> {
    match settings.setting(name) {
        None => Ok(default),
        Some(setting) => crate::duration::parse(&setting.value)
            .ok()
            .filter(|d| !d.is_zero())
            .ok_or_else(|| {
                ProviderError::Config(format!("{setting} is not a duration (examples: 5s, 1m)"))
            }),
    }
}

/// Writes all of `text` to stdout at once. A closed pipe (`esc-hook … | head -1`) is not an
/// error worth a message.
pub fn print(text: &str) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}
