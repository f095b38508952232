//! What a project's `.escrc` resolves to, whoever applies it: the shell hook, `exec`, or
//! `credential-process`. The environment's variables pass the `export` filter; AWS credentials
//! get their expiry; `aws.region` and inline `values` are added on top; names and values that no
//! shell can hold are refused; `files` are written to a private directory.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::escrc::{self, Escrc};
use crate::files;
use crate::log;
use crate::names::{Refusal, VarName, printable, refusal};
use crate::provider::{Resolved, Value};
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

/// A single exported value larger than this is refused: Linux refuses to start any program
/// whose environment holds a string over 128 KiB (E2BIG), so one such value would leave the
/// shell unable to run anything, esc-hook included. Large values belong under `files`.
pub const MAX_VALUE_BYTES: usize = 64 * 1024;
/// What one project exports at most, so that the whole environment stays within what the
/// kernel passes to a program. (The state's own bound, which also limits the count, is applied
/// where it is built.)
pub const MAX_TOTAL_BYTES: usize = 512 * 1024;
const MAX_NAME_BYTES: usize = 256;

/// Keeps what can be exported, saying (one line per reason) why anything else is not:
/// unusable names, NUL bytes, names that change how a shell behaves unless the `.escrc` lists
/// them in `allow_names`, reserved names, and what exceeds the size bounds. `refuse` may veto a
/// name for the caller's own reason.
pub fn accept(
    wanted: BTreeMap<String, Value>,
    escrc: &Escrc,
    refuse: impl Fn(&str) -> Option<String>,
) -> Vec<(VarName, Value)> {
    let allow_names = &escrc.allow_names;
    let mut accepted = Vec::new();
    let (mut behaviour, mut reserved, mut too_many) = (Vec::new(), Vec::new(), Vec::new());
    let mut total = 0usize;
    for (name, value) in wanted {
        let Some(var_name) = VarName::parse(&name).filter(|n| n.as_str().len() <= MAX_NAME_BYTES)
        else {
            // A name written in the .escrc is the user's to fix: say where.
            let place = escrc
                .place_of_value(&name)
                .map(|place| format!(" ({place})"))
                .unwrap_or_default();
            log::warn(format!(
                "skipped `{}`{place}: not a usable variable name",
                printable(&name, 60)
            ));
            continue;
        };
        match refusal(&name) {
            Some(Refusal::Reserved) => {
                reserved.push(name);
                continue;
            }
            Some(Refusal::Behaviour) if !allow_names.contains(&name) => {
                behaviour.push(name);
                continue;
            }
            _ => {}
        }
        let (Value::Text(text) | Value::File(text)) = &value;
        if text.contains('\0') {
            log::warn(format!("skipped {name}: its value contains a NUL byte"));
            continue;
        }
        // A file variable exports only its path; its content goes to disk.
        let exported = match &value {
            Value::Text(text) => text.len(),
            Value::File(_) => 256,
        };
        if exported > MAX_VALUE_BYTES {
            log::warn(format!(
                "skipped {name}: its value is {} KiB, over the {} KiB a variable may hold (serve it under `files` instead)",
                exported.div_ceil(1024),
                MAX_VALUE_BYTES / 1024
            ));
            continue;
        }
        if let Some(reason) = refuse(&name) {
            log::warn(reason);
            continue;
        }
        let size = name.len() + exported + 2;
        if total + size > MAX_TOTAL_BYTES {
            too_many.push(name);
            continue;
        }
        total += size;
        accepted.push((var_name, value));
    }
    if !behaviour.is_empty() {
        let (they, them) = match behaviour.len() {
            1 => ("it changes", "it"),
            _ => ("they change", "them"),
        };
        log::warn(format!(
            "refused {}: {they} how the shell or the loader behaves (list {them} under `allow-names` in .escrc to export {them})",
            behaviour.join(" ")
        ));
    }
    if !reserved.is_empty() {
        log::warn(format!(
            "refused {}: reserved by a shell or by esc-hook",
            reserved.join(" ")
        ));
    }
    if !too_many.is_empty() {
        log::warn(format!(
            "skipped {} variable{} ({}): a project exports at most {} KiB",
            too_many.len(),
            if too_many.len() == 1 { "" } else { "s" },
            printable(&too_many.join(" "), 80),
            MAX_TOTAL_BYTES / 1024
        ));
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
