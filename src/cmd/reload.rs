//! `esc-hook reload`: open this directory's environment again now, bypassing the cache, and
//! have every shell in the project pick up the result at its next prompt.

use std::fs;
use std::time::{Duration, SystemTime};

use anyhow::anyhow;

use crate::ground::log;
use crate::inputs::escrc;
use crate::keeping::cache::forget;
use crate::provider::{OpenRequest, Provider};
use crate::settings::Settings;

pub fn run(settings: &'static Settings) -> anyhow::Result<()> {
    let path = super::trust::target(settings, None)?;
    let stamp =
        escrc::stamp_of(&path).ok_or_else(|| anyhow!("{}: no such file", path.display()))?;
    let not_allowed = format!(
        "{} is not allowed: run `esc-hook allow` first",
        path.display()
    );
    let escrc = super::allowed_project(settings, stamp, &not_allowed)?;
    if OpenRequest::for_escrc(&escrc).is_none() {
        log::info(format!(
            "reloaded {} (values only: nothing to open); every shell in the project reloads it at its next prompt",
            crate::ground::fs::home_relative(&path)
        ));
    }
    if let Some(request) = OpenRequest::for_escrc(&escrc) {
        let provider = crate::project::sources::provider_for(settings, &request)?;
        // A keyring that does not answer (over SSH, in a container) holds nothing to drop:
        // the open below goes to the network, and its warning says the keyring is unused.
        if let Ok(Some(store)) = &provider.store {
            let _ = forget(
                store.as_ref(),
                &provider.account(&request),
                provider.index.as_ref(),
            );
        }
        let resolved = provider.resolve(&request)?;
        if let Some(warning) = resolved.warning {
            log::warn(warning);
        }
        let left = resolved
            .expires_at
            .duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO);
        log::info(format!(
            "reloaded {} ({} left)",
            request.label(),
            crate::ground::duration::human(left)
        ));
    }
    // A new mtime makes every shell in the project load again at its next prompt; the cache
    // entry just written serves them without another open. Trust follows the content, so it
    // is unaffected.
    fs::File::options()
        .write(true)
        .open(&path)
        .and_then(|file| file.set_modified(SystemTime::now()))
        .map_err(|e| {
            anyhow!(
                "could not touch {}: {}",
                path.display(),
                crate::ground::fs::io_reason(&e)
            )
        })?;
    Ok(())
}
