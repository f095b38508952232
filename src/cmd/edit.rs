//! `esc-hook edit`: open the nearest `.escrc` (or a new one here, from a template) in the
//! user's editor, and allow it if they saved it: the edit itself is the review.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use anyhow::{anyhow, bail};

use crate::ground::log;
use crate::inputs::escrc;
use crate::keeping::trust::TrustStore;
use crate::settings::Settings;

const TEMPLATE: &str = "\
# esc-hook: what this project loads into your shell. Every key: `esc-hook man` (.ESCRC).
environment: org/project/env

# values:
#   AWS_REGION: eu-west-1
";

pub fn run(settings: &Settings) -> anyhow::Result<()> {
    let cwd = settings
        .current_dir()
        .ok_or_else(|| anyhow!("could not find the current directory"))?;
    let path = escrc::find_nearest(&cwd)
        .map(|stamp| stamp.path)
        .unwrap_or_else(|| cwd.join(escrc::FILE_NAME));
    let before = match fs::read(&path) {
        Ok(content) => Some(content),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => bail!(
            "could not read {}: {}",
            path.display(),
            crate::ground::fs::io_reason(&e)
        ),
    };
    if before.is_none() {
        fs::write(&path, TEMPLATE)
            .and_then(|()| fs::set_permissions(&path, fs::Permissions::from_mode(0o644)))
            .map_err(|e| {
                anyhow!(
                    "could not create {}: {}",
                    path.display(),
                    crate::ground::fs::io_reason(&e)
                )
            })?;
    }
    let editor = ["VISUAL", "EDITOR"]
        .iter()
        .find_map(|name| settings.var(name).filter(|v| !v.trim().is_empty()))
        .unwrap_or("vi");
    let words = shell_words::split(editor)
        .map_err(|e| anyhow!("could not read the editor command `{editor}`: {e}"))?;
    let (program, args) = words
        .split_first()
        .ok_or_else(|| anyhow!("the editor command is empty"))?;
    // The user's own environment: not what the current project exported.
    let status = Command::new(program)
        .args(args)
        .arg(&path)
        .env_clear()
        .envs(settings.clean_env())
        .status()
        .map_err(|e| {
            anyhow!(
                "could not start the editor `{program}`: {}",
                crate::ground::fs::io_reason(&e)
            )
        })?;
    let after = fs::read(&path).unwrap_or_default();
    let unchanged = match &before {
        Some(before) => *before == after,
        None => after == TEMPLATE.as_bytes(),
    };
    if unchanged {
        if before.is_none() {
            let _ = fs::remove_file(&path);
        }
        if !status.success() {
            bail!("the editor exited with {status}; nothing was allowed");
        }
        let shown = crate::ground::fs::home_relative(&path);
        match before {
            Some(_) => log::info(format!("{shown} unchanged: its trust is as it was")),
            None => log::info(format!("{shown} not saved; nothing allowed")),
        }
        return Ok(());
    }
    if !status.success() {
        bail!(
            "the editor exited with {status}; {} was not allowed",
            path.display()
        );
    }
    let parsed = escrc::parse(&path, &after)
        .map_err(|e| anyhow!("{e}; not allowed until it parses (run `esc-hook edit` again)"))?;
    TrustStore::open(settings.data_dir(), settings.config())
        .map_err(|e| anyhow!(e))?
        .allow(&path, &after)
        .map_err(|e| {
            anyhow!(
                "could not record the allow: {}",
                crate::ground::fs::io_reason(&e)
            )
        })?;
    log::info(format!("allowed {} ({})", path.display(), parsed.label()));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_template_parses() {
        let parsed = escrc::parse(std::path::Path::new("/p/.escrc"), TEMPLATE.as_bytes()).unwrap();
        assert_eq!(parsed.label(), "org/project/env");
    }
}
