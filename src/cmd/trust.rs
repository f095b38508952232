//! `esc-hook allow` and `esc-hook deny`.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail};

use crate::ground::log;
use crate::inputs::escrc;
use crate::keeping::trust::{self, TrustStore, Verdict};
use crate::project::chain::Chain;
use crate::settings::Settings;

pub fn allow(settings: &Settings, path: Option<PathBuf>, whole_chain: bool) -> anyhow::Result<()> {
    let nearest = path.is_none();
    let path = target(settings, path)?;
    let content = escrc::read(&path)?;
    if let Some(problem) = trust::unsafe_ownership(&path, &content, true) {
        bail!("not allowed: {problem}");
    }
    let shown = crate::ground::fs::home_relative(&path);
    // A file that does not parse is not allowed: what would be trusted is not what the user
    // will have fixed.
    let parsed = escrc::parse(&path, &content)
        .map_err(|error| anyhow!("{error}: not allowed; fix it, then `esc-hook allow` again"))?;
    let environment = (!parsed.environments.is_empty())
        .then(|| format!(" ({})", escrc::environments_label(&parsed.environments)));
    let found_above = nearest && found_above(settings, &path);
    let store = store(settings)?;
    store.allow(&path, &content).map_err(|e| {
        anyhow!(
            "could not record the allow: {}",
            crate::ground::fs::io_reason(&e)
        )
    })?;
    log::info(format!(
        "allowed {shown}{}{}",
        environment.unwrap_or_default(),
        if found_above {
            " (found in a parent directory)"
        } else {
            ""
        }
    ));
    if settings.hooked_shell().is_none() {
        log::info(
            "the hook does not run in this shell: add it (`esc-hook doctor` shows the line), then open a new terminal",
        );
    }
    // Trust is per file: a layered project still waits for each parent that is not allowed.
    if let Some(stamp) = escrc::stamp_of(&path) {
        let chain = Chain::discover(stamp);
        if whole_chain {
            allow_waiting_parents(&chain, &store, &shown)?;
        }
        if let Some(blocked) = chain.blocked(&store).filter(|b| b.depth > 0) {
            let parent = crate::ground::fs::home_relative(&blocked.layer.stamp.path);
            let state = match blocked.verdict {
                Verdict::Denied => "denied".to_string(),
                Verdict::Unsafe(problem) => format!("unsafe ({problem})"),
                _ => "not allowed".to_string(),
            };
            let fix = match chain.waiting(&store).len() {
                0 | 1 => format!(
                    "`esc-hook allow {}`",
                    crate::project::chain::shown_path(&parent)
                ),
                _ => "`esc-hook allow --chain` for all of them".to_string(),
            };
            log::warn(format!(
                "{shown} builds on {parent}, which is {state}: it loads once that is allowed too ({fix})"
            ));
        }
    }
    Ok(())
}

/// `allow --chain`: every file above that the project builds on and that waits (not allowed,
/// not denied: a deny is only undone by naming the file) is checked as `allow` checks one,
/// then allowed; the line names them all.
fn allow_waiting_parents(chain: &Chain, store: &TrustStore, shown: &str) -> anyhow::Result<()> {
    let mut allowed = Vec::new();
    for layer in chain.waiting(store) {
        let (Some(file), Ok(_)) = (&layer.file, &layer.parsed) else {
            let error = layer.parsed.as_ref().err().map(ToString::to_string);
            bail!(
                "{}: not allowed; fix it, then `esc-hook allow --chain` again",
                error.unwrap_or_else(|| crate::ground::fs::home_relative(&layer.stamp.path))
            );
        };
        if let Some(problem) = trust::unsafe_ownership(&layer.stamp.path, file, true) {
            bail!("not allowed: {problem}");
        }
        store.allow(&layer.stamp.path, file).map_err(|e| {
            anyhow!(
                "could not record the allow: {}",
                crate::ground::fs::io_reason(&e)
            )
        })?;
        allowed.push(crate::ground::fs::home_relative(&layer.stamp.path));
    }
    if !allowed.is_empty() {
        log::info(format!(
            "allowed too, as {shown} builds on them: {}",
            allowed.join(", ")
        ));
    }
    Ok(())
}

pub fn deny(settings: &Settings, path: Option<PathBuf>) -> anyhow::Result<()> {
    let nearest = path.is_none();
    let path = target(settings, path)?;
    // A file that cannot be read can still be denied: the deny record only needs the path.
    let content = escrc::read(&path).ok();
    store(settings)?
        .deny(&path, content.as_deref())
        .map_err(|e| {
            anyhow!(
                "could not record the deny: {}",
                crate::ground::fs::io_reason(&e)
            )
        })?;
    let found_above = nearest && found_above(settings, &path);
    log::info(format!(
        "denied {}{}: it stays unloaded until allowed again",
        crate::ground::fs::home_relative(&path),
        if found_above {
            " (found in a parent directory)"
        } else {
            ""
        }
    ));
    Ok(())
}

/// `esc-hook prune`, as direnv's: forget what can no longer apply.
pub fn prune(settings: &Settings) -> anyhow::Result<()> {
    let (allows, denies) = store(settings)?
        .prune()
        .map_err(|e| anyhow!("could not prune: {}", crate::ground::fs::io_reason(&e)))?;
    log::info(format!(
        "pruned {allows} allow and {denies} deny record{} (files gone or edited since)",
        if allows + denies == 1 { "" } else { "s" }
    ));
    Ok(())
}

/// Whether the nearest `.escrc` is in a directory above the current one.
fn found_above(settings: &Settings, path: &Path) -> bool {
    settings
        .current_dir()
        .is_some_and(|cwd| path.parent() != Some(cwd.as_path()))
}

fn store(settings: &Settings) -> anyhow::Result<TrustStore> {
    TrustStore::open(settings.data_dir(), settings.config()).map_err(|reason| anyhow!(reason))
}

/// The `.escrc` meant: PATH (a file, or a directory holding one), else the nearest one.
pub fn target(settings: &Settings, path: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    let path = nearest_or(settings, path)?;
    // The hook only ever loads files named .escrc: trusting anything else does nothing.
    let name = path.file_name().unwrap_or_default();
    if name != escrc::FILE_NAME && std::fs::symlink_metadata(&path).is_ok() {
        let hint = match name.to_str() {
            Some(".escrc.example") => " (to start from the example: cp .escrc.example .escrc)",
            _ => "",
        };
        bail!(
            "{} is not an .escrc: the hook only loads files named .escrc{hint}",
            path.display()
        );
    }
    Ok(path)
}

fn nearest_or(settings: &Settings, path: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    let cwd = settings
        .current_dir()
        .ok_or_else(|| anyhow!("could not find the current directory"))?;
    match path {
        Some(path) => {
            let path = absolute(&cwd, &path);
            // `../../.escrc` is named as the file it is (the directory's canonical form), in
            // messages as in trust records.
            let canonical = |dir: &Path| std::fs::canonicalize(dir).unwrap_or(dir.to_path_buf());
            if path.is_dir() {
                Ok(canonical(&path).join(escrc::FILE_NAME))
            } else {
                match (path.parent(), path.file_name()) {
                    (Some(dir), Some(name)) => Ok(canonical(dir).join(name)),
                    _ => Ok(path),
                }
            }
        }
        None => escrc::find_nearest(&cwd)
            .map(|stamp| stamp.path)
            .ok_or_else(|| {
                anyhow!(
                    "no {} in {} or any parent directory",
                    escrc::FILE_NAME,
                    cwd.display()
                )
            }),
    }
}

fn absolute(cwd: &Path, path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        cwd.join(path)
    }
}
