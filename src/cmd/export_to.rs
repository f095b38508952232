//! `esc-hook export gha` and `esc-hook export dotenv`: a project's variables for the places a
//! prompt never reaches (a GitHub Actions job, Docker Compose, a script), from the same gate
//! and filters as the hook and `exec`: an allowed `.escrc` (or `--env`), `export`, refused
//! names and bounds.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{anyhow, bail};

use crate::ground::log;
use crate::ground::names::VarName;
use crate::provider::{OpenRequest, Provider, Value};
use crate::settings::Settings;
use crate::shell::files;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// Appended to the file `$GITHUB_ENV` names, each secret masked in the job's log.
    Gha,
    /// A `.env` file on standard output.
    Dotenv,
}

pub fn run(
    settings: &'static Settings,
    target: Target,
    env: Option<String>,
    dir: Option<PathBuf>,
) -> anyhow::Result<()> {
    // Checked first: outside Actions nothing is opened for nothing.
    let github_env = match target {
        Target::Gha => Some(settings.var("GITHUB_ENV").map(PathBuf::from).ok_or_else(|| {
            anyhow!(
                "export gha runs in a GitHub Actions step, and GITHUB_ENV is not set (for a .env file: esc-hook export dotenv)"
            )
        })?),
        Target::Dotenv => None,
    };
    let escrc = super::project_escrc(settings, env, dir)?;
    let resolved = match OpenRequest::for_escrc(&escrc) {
        Some(request) => {
            let provider = crate::project::sources::provider_for(settings, &request)?;
            Some(provider.resolve(&request)?)
        }
        None => None,
    };
    let wanted = crate::project::wanted(&escrc, resolved.as_ref());
    let mut vars: Vec<(VarName, String)> = Vec::new();
    let mut file_vars = Vec::new();
    for (name, value) in crate::project::accept(wanted, &escrc, |_| None) {
        match value {
            Value::Text(text) => vars.push((name, text)),
            // A path into a private directory of this process would point at nothing later.
            Value::File(_) => file_vars.push(name.to_string()),
        }
    }
    if !file_vars.is_empty() {
        log::warn(format!(
            "left out {}: an environment's files exist only for the shell and `esc-hook exec`",
            file_vars.join(" ")
        ));
    }
    match github_env {
        None => super::print(&files::dotenv(&vars)),
        Some(path) => {
            // The runner reads $GITHUB_ENV by lines, and a carriage return ends one.
            let (carriage, vars): (Vec<_>, Vec<_>) = vars
                .into_iter()
                .partition(|(_, value)| value.contains('\r'));
            if !carriage.is_empty() {
                let names: Vec<String> = carriage.iter().map(|(n, _)| n.to_string()).collect();
                log::warn(format!(
                    "left out {}: a carriage return in a value cannot pass through $GITHUB_ENV (esc-hook exec can hand it over)",
                    names.join(" ")
                ));
            }
            let secrets = crate::project::secret_values(&vars, resolved.as_ref());
            // Masked before the values exist anywhere the log could show them.
            super::print(&files::github_masks(secrets.iter().copied()))?;
            let text = files::github_env(&vars, &mut || crate::ground::digest::random_hex(32));
            append(&path, &text)?;
            log::info(format!(
                "exported {} variable{} to $GITHUB_ENV ({} masked in the log)",
                vars.len(),
                if vars.len() == 1 { "" } else { "s" },
                secrets.len()
            ));
            Ok(())
        }
    }
}

/// Appends to the runner's file, which must already exist (the runner makes it): a path that
/// names nothing is a mistake to report, not a file to create.
fn append(path: &std::path::Path, text: &str) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let shown = crate::ground::fs::home_relative(path);
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| {
            anyhow!(
                "could not write GITHUB_ENV ({shown}): {}",
                crate::ground::fs::io_reason(&e)
            )
        })?;
    if !file.metadata().is_ok_and(|m| m.is_file()) {
        bail!("GITHUB_ENV ({shown}) is not a regular file");
    }
    file.write_all(text.as_bytes()).map_err(|e| {
        anyhow!(
            "could not write GITHUB_ENV ({shown}): {}",
            crate::ground::fs::io_reason(&e)
        )
    })
}
