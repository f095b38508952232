//! What a project's `.escrc` resolves to, whoever applies it: the shell hook, `exec`, or
//! `credential-process`. The environment's variables pass the `export` filter; AWS credentials
//! get their expiry; `aws.region` and inline `values` are added on top; names and values that no
//! shell can hold are refused; `files` are written to a private directory.

pub mod chain;
pub mod sources;

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::ground::log;
use crate::ground::names::{Refusal, VarName, printable, refusal};
use crate::ground::time;
use crate::inputs::escrc::{self, Escrc};
use crate::keeping::files;
use crate::provider::{Resolved, Value};

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

/// Where the project's variable `name` comes from, for `status` (a name, never a value): the
/// file that writes it under `values`, `aws.region`, the environment that defined it, the STS
/// session that replaced the environment's keys, or esc-hook itself (`credentials: process`).
pub fn origin_of(escrc: &Escrc, resolved: Option<&Resolved>, name: &str) -> String {
    if escrc.values.contains_key(name) {
        return crate::ground::fs::home_relative(escrc.file_of_value(name));
    }
    let aws = escrc.aws.as_ref();
    if matches!(name, "AWS_REGION" | "AWS_DEFAULT_REGION")
        && aws.is_some_and(|aws| aws.region.is_some())
    {
        return "aws.region".into();
    }
    // The expiry esc-hook adds goes with the keys it describes.
    let source = match name {
        "AWS_CREDENTIAL_EXPIRATION" => {
            ["AWS_CREDENTIAL_EXPIRATION", "AWS_ACCESS_KEY_ID"].as_slice()
        }
        _ => std::slice::from_ref(&name),
    };
    let var = source
        .iter()
        .find_map(|source| resolved.and_then(|r| r.vars.iter().find(|var| var.name == *source)));
    match var.map(|var| var.origin) {
        Some(Some(index)) => escrc
            .environments
            .get(usize::from(index))
            .map_or_else(|| escrc.label(), ToString::to_string),
        Some(None) => match aws {
            Some(aws) if aws.assume_role.is_some() => "aws.assume-role".into(),
            Some(aws) if aws.web_identity.is_some() => "aws.web-identity".into(),
            _ => escrc::environments_label(&escrc.environments),
        },
        None => "esc-hook (credentials: process)".into(),
    }
}

/// The values among `vars` that are secrets: what ESC marked secret (and what `aws:` produced),
/// and any whose name says it holds one (`ground::names::is_secret_name`). What
/// `exec --redact` hides and `export gha` masks.
pub fn secret_values<'v>(
    vars: &'v [(VarName, String)],
    resolved: Option<&Resolved>,
) -> Vec<&'v str> {
    vars.iter()
        .filter(|(name, _)| {
            crate::ground::names::is_secret_name(name.as_str())
                || resolved
                    .is_some_and(|r| r.vars.iter().any(|v| v.secret && v.name == name.as_str()))
        })
        .map(|(_, value)| value.as_str())
        .collect()
}

/// The variables that carry static AWS credentials: the SDKs take them before any profile,
/// so a mode that hands out refreshing credentials leaves them out.
pub const STATIC_AWS_CREDENTIALS: [&str; 5] = [
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_CREDENTIAL_EXPIRATION",
];

/// `aws: { credentials: process }`: instead of static keys, the shell gets an AWS config of its
/// own (`AWS_CONFIG_FILE`, a private file) whose default profile runs `esc-hook
/// credential-process` for this project, so every SDK and CLI started from the shell refreshes
/// by itself. `AWS_PROFILE` and `AWS_DEFAULT_PROFILE` point at that profile and
/// `AWS_SHARED_CREDENTIALS_FILE` at an empty file: a profile or credentials file of the user's
/// would win over it. (The user's own static keys are set aside by the caller.)
pub fn use_credential_process(
    wanted: &mut BTreeMap<String, Value>,
    escrc: &Escrc,
    esc_hook: &std::path::Path,
) -> Result<(), String> {
    let region = ["AWS_REGION", "AWS_DEFAULT_REGION"]
        .iter()
        .find_map(|name| match wanted.get(*name) {
            Some(Value::Text(region)) => Some(region.clone()),
            _ => None,
        });
    for name in STATIC_AWS_CREDENTIALS {
        wanted.remove(name);
    }
    let dir = escrc.path.parent().unwrap_or(std::path::Path::new("/"));
    // The command line is read by shlex (botocore) or `sh -c` (the Go and Rust SDKs), and the
    // file is INI: single quotes hold anything but a line break.
    let mut words = Vec::new();
    for path in [esc_hook, dir] {
        let text = path
            .to_str()
            .filter(|t| !t.chars().any(char::is_control))
            .ok_or_else(|| {
                format!(
                    "credentials: process needs paths without control characters ({})",
                    printable(&path.to_string_lossy(), 80)
                )
            })?;
        words.push(crate::ground::text::posix_quote(text));
    }
    let mut config = format!(
        "# Written by esc-hook for {}; removed when the shell leaves the project.
[default]
credential_process = {} credential-process --dir {}
",
        printable(&escrc.label(), 200),
        words[0],
        words[1]
    );
    if let Some(region) = region.filter(|r| {
        !r.is_empty()
            && r.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    }) {
        config.push_str(&format!(
            "region = {region}
"
        ));
    }
    wanted.insert("AWS_CONFIG_FILE".into(), Value::File(config));
    wanted.insert(
        "AWS_SHARED_CREDENTIALS_FILE".into(),
        Value::File(String::new()),
    );
    for name in ["AWS_PROFILE", "AWS_DEFAULT_PROFILE"] {
        wanted.insert(name.into(), Value::Text("default".into()));
    }
    Ok(())
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
                crate::ground::fs::io_reason(&e)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn escrc_at(dir: &str) -> Escrc {
        let path = std::path::Path::new(dir).join(".escrc");
        escrc::parse(&path, b"environment: a/b/c\naws:\n  credentials: process\n").unwrap()
    }

    /// The profile's command survives a hostile directory name, read as botocore (shlex) and
    /// `sh -c` read it; a line break is refused (it would add lines to the INI file).
    #[test]
    fn the_credential_process_profile_quotes_hostile_paths() {
        let dir = "/tmp/it's $(touch pwned) `x` ; rm -rf ~";
        let mut wanted = BTreeMap::from([
            ("AWS_ACCESS_KEY_ID".to_string(), Value::Text("AKIA".into())),
            ("AWS_REGION".to_string(), Value::Text("eu-west-1".into())),
        ]);
        use_credential_process(
            &mut wanted,
            &escrc_at(dir),
            std::path::Path::new("/usr/bin/esc-hook"),
        )
        .unwrap();
        assert!(!wanted.contains_key("AWS_ACCESS_KEY_ID"));
        let Some(Value::File(config)) = wanted.get("AWS_CONFIG_FILE") else {
            panic!("no config");
        };
        let command = config
            .lines()
            .find_map(|l| l.strip_prefix("credential_process = "))
            .unwrap();
        assert_eq!(
            shell_words::split(command).unwrap(),
            ["/usr/bin/esc-hook", "credential-process", "--dir", dir]
        );
        assert!(config.contains("\nregion = eu-west-1\n"), "{config}");
        assert_eq!(wanted["AWS_PROFILE"], Value::Text("default".into()));
        let broken = use_credential_process(
            &mut BTreeMap::new(),
            &escrc_at("/tmp/two\nlines"),
            std::path::Path::new("/usr/bin/esc-hook"),
        );
        assert!(broken.is_err());
    }
}
