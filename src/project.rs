//! What a project's `.escrc` resolves to, whoever applies it: the shell hook, `exec`, or
//! `credential-process`. The environment's variables pass the `export` filter; AWS credentials
//! get their expiry; `aws.region` and inline `values` are added on top; names and values that no
//! shell can hold are refused; `files` are written to a private directory.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::escrc::{self, Escrc};
use crate::files;
use crate::log;
use crate::names::{VarName, printable};
use crate::provider::{Resolved, Value};
use crate::state;
use crate::time;

/// Every variable the project asks for, by name: the environment's (filtered), then
/// `AWS_CREDENTIAL_EXPIRATION`, then `aws.region`, then inline values, later ones winning.
pub fn wanted(escrc: &Escrc, resolved: Option<&Resolved>) -> BTreeMap<String, Value> {
    let mut wanted = BTreeMap::new();
    if let Some(resolved) = resolved {
        for var in &resolved.vars {
            if escrc.export.allows(&var.name) {
                wanted.insert(var.name.clone(), var.value.clone());
            }
        }
        // Prompts (starship's aws module) and SDKs read this to show or act on time left.
        if wanted.contains_key("AWS_ACCESS_KEY_ID")
            && !wanted.contains_key("AWS_CREDENTIAL_EXPIRATION")
        {
            let expires = time::rfc3339(time::unix(resolved.expires_at));
            wanted.insert("AWS_CREDENTIAL_EXPIRATION".into(), Value::Text(expires));
        }
    }
    if let Some(region) = escrc.aws.as_ref().and_then(|aws| aws.region.as_ref()) {
        for name in ["AWS_REGION", "AWS_DEFAULT_REGION"] {
            wanted.insert(name.into(), Value::Text(region.clone()));
        }
    }
    // Inline values are the project's own word: they win over the environment's.
    for (name, value) in &escrc.values {
        wanted.insert(name.clone(), Value::Text(value.clone()));
    }
    wanted
}

/// Keeps what can be exported, saying why anything else is skipped; `refuse` may veto a
/// name for the caller's own reason.
pub fn accept(
    wanted: BTreeMap<String, Value>,
    refuse: impl Fn(&str) -> Option<String>,
) -> Vec<(VarName, Value)> {
    let mut accepted = Vec::new();
    for (name, value) in wanted {
        let Some(var_name) = VarName::parse(&name).filter(|n| n.as_str() != state::VAR) else {
            log::warn(format!(
                "skipped `{}`: not a usable variable name",
                printable(&name, 60)
            ));
            continue;
        };
        let (Value::Text(text) | Value::File(text)) = &value;
        if text.contains('\0') {
            log::warn(format!("skipped {name}: its value contains a NUL byte"));
            continue;
        }
        if let Some(reason) = refuse(&name) {
            log::warn(reason);
            continue;
        }
        accepted.push((var_name, value));
    }
    accepted
}

/// The variables ready to export, and the private directory holding their files, if any.
pub struct Materialized {
    pub vars: Vec<(VarName, String)>,
    pub files_dir: Option<PathBuf>,
}

/// Writes the `files` into a private directory and gives each variable its final text (a
/// file variable holds its file's path).
pub fn materialize(accepted: Vec<(VarName, Value)>) -> Result<Materialized, String> {
    let contents: Vec<(String, String)> = accepted
        .iter()
        .filter_map(|(name, value)| match value {
            Value::File(content) => Some((name.to_string(), content.clone())),
            Value::Text(_) => None,
        })
        .collect();
    let (files_dir, mut paths) = if contents.is_empty() {
        (None, Vec::new().into_iter())
    } else {
        let (dir, paths) = files::write_private(&contents).map_err(|e| {
            format!(
                "could not write the environment's files: {}",
                escrc::io_reason(&e)
            )
        })?;
        (Some(dir), paths.into_iter())
    };
    let mut vars = Vec::with_capacity(accepted.len());
    for (name, value) in accepted {
        let text = match value {
            Value::Text(text) => text,
            Value::File(_) => match paths.next().map(|p| p.into_os_string().into_string()) {
                Some(Ok(path)) => path,
                _ => {
                    if let Some(dir) = &files_dir {
                        files::remove(dir);
                    }
                    return Err("the files directory path is not UTF-8: set XDG_RUNTIME_DIR".into());
                }
            },
        };
        vars.push((name, text));
    }
    Ok(Materialized { vars, files_dir })
}
