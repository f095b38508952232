//! One module per command.

pub mod cache;
pub mod completions;
pub mod console;
pub mod credential_process;
pub mod doctor;
pub mod edit;
pub mod exec;
pub mod export;
pub mod export_to;
pub mod init;
pub mod login;
pub mod reload;
pub mod status;
pub mod trust;

use std::io::Write;
use std::path::PathBuf;

use anyhow::{anyhow, bail};

use crate::ground::glob::ExportFilter;
use crate::inputs::escrc::{self, EnvRef, Escrc};
use crate::keeping::trust::{TrustStore, Verdict};
use crate::project::chain::{self, Refused};
use crate::settings::Settings;

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
            file_id: None,
        });
    }
    let dir = match dir {
        Some(dir) if !dir.is_dir() => bail!("no such directory: {}", dir.display()),
        Some(dir) => std::path::absolute(&dir).unwrap_or(dir),
        None => settings
            .current_dir()
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
    nearest: crate::ground::fs::FileStamp,
    not_allowed: &str,
) -> anyhow::Result<Escrc> {
    let store = TrustStore::open(settings.data_dir(), settings.config()).map_err(|e| anyhow!(e))?;
    let shown = crate::ground::fs::home_relative(&nearest.path);
    match chain::allowed_project(nearest, &store) {
        Ok(project) => {
            crate::ground::log::debug(format!("{shown}: allowed; {}", project.label()));
            Ok(project)
        }
        Err(Refused::Nearest(Verdict::Unsafe(problem))) => bail!("{problem}"),
        Err(Refused::Nearest(_)) => bail!("{not_allowed}"),
        Err(Refused::Parent(message)) => bail!("{message}"),
        Err(Refused::Invalid(error)) => Err(error.into()),
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
