//! The OIDC token for an `aws.web-identity` login: read from a file, printed by a command (run
//! in the project's directory with the user's own environment, bounded in time), or taken from
//! the opened environment's properties.

use std::ffi::OsString;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value as Json;

use super::{ProviderError, Resolved};
use crate::ground::fs::{FileId, HeldDir};
use crate::ground::names::printable;
use crate::inputs::escrc::{FILE_NAME, WebIdentity};

const TOKEN_COMMAND_TIMEOUT: Duration = Duration::from_secs(10);

/// An OIDC token is a few KiB; a file or a command's output larger than this is refused.
const MAX_TOKEN_LEN: u64 = 64 * 1024;

/// The OIDC token, from a file, a command, or the environment's properties. A file or command
/// relative to the project is read or run in the directory that holds the `.escrc` whose trust
/// was checked (`escrc_file`), through one handle: never the path resolved again.
pub fn web_identity_token(
    web: &WebIdentity,
    resolved: &Resolved,
    project_dir: &Path,
    escrc_file: Option<FileId>,
    child_env: &[(String, OsString)],
) -> Result<String, ProviderError> {
    let fail = |message: String| ProviderError::Config(format!("aws.web-identity: {message}"));
    // A parent's section (in a layered project) reads and runs where that parent is.
    let (project_dir, checked) = match &web.dir {
        Some(dir) => (dir.as_path(), web.dir_file),
        None => (project_dir, escrc_file),
    };
    let held = || {
        let shown = crate::ground::fs::home_relative(project_dir);
        checked
            .ok_or_else(|| format!("{shown} has no checked {FILE_NAME}"))
            .and_then(|checked| HeldDir::open(project_dir, FILE_NAME, checked))
            .map_err(|reason| {
                fail(format!(
                    "{shown} {reason}: nothing is read or run there (esc-hook reload to check it again)"
                ))
            })
    };
    let token = if let Some(file) = &web.token_file {
        // A regular file, opened without blocking and bounded: a FIFO or `/dev/zero` put
        // there must not hold up or flood the prompt.
        let shown = || crate::ground::fs::home_relative(&project_dir.join(file));
        let file = held()?
            .read_small(file, MAX_TOKEN_LEN)
            .map_err(|reason| fail(format!("the token file {} {reason}", shown())))?;
        String::from_utf8(file.content)
            .map_err(|_| fail(format!("the token file {} is not text", shown())))?
    } else if let Some(command) = &web.token_command {
        run_token_command(command, &held()?, child_env).map_err(fail)?
    } else if let Some(property) = &web.token_property {
        let raw = resolved
            .raw
            .as_ref()
            .ok_or_else(|| fail("token-property needs an `environment`".into()))?;
        property_text(raw, property)
            .ok_or_else(|| fail(format!("the environment has no text property `{property}`")))?
    } else {
        return Err(fail("no token source".into()));
    };
    let token = token.trim().to_string();
    if token.is_empty() {
        return Err(fail("the token is empty".into()));
    }
    Ok(token)
}

fn run_token_command(
    command: &str,
    dir: &HeldDir,
    env: &[(String, OsString)],
) -> Result<String, String> {
    let words = shell_words::split(command).map_err(|e| format!("token-command: {e}"))?;
    let (program, args) = words.split_first().ok_or("token-command is empty")?;
    let mut child = Command::new(program);
    dir.start_in(&mut child);
    let mut child = child
        .args(args)
        .env_clear()
        .envs(env.iter().map(|(name, value)| (name, value)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| {
            format!(
                "could not run token-command `{}`: {}",
                printable(program, 60),
                crate::ground::fs::io_reason(&e)
            )
        })?;
    let started = std::time::Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => break,
            Ok(Some(status)) => return Err(format!("token-command failed ({status})")),
            Ok(None) if started.elapsed() > TOKEN_COMMAND_TIMEOUT => {
                let _ = child.kill();
                return Err(format!(
                    "token-command took longer than {}s",
                    TOKEN_COMMAND_TIMEOUT.as_secs()
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => return Err(format!("token-command: {e}")),
        }
    }
    let mut out = String::new();
    use std::io::Read;
    child
        .stdout
        .take()
        .ok_or("token-command printed nothing")?
        .take(MAX_TOKEN_LEN + 1)
        .read_to_string(&mut out)
        .map_err(|e| format!("token-command output is not text: {e}"))?;
    if out.len() as u64 > MAX_TOKEN_LEN {
        return Err(format!(
            "token-command printed more than {} KiB",
            MAX_TOKEN_LEN / 1024
        ));
    }
    Ok(out)
}

/// The text at a dotted path of ESC `properties` (each level a `{"value": …}` node).
fn property_text(raw: &Json, path: &str) -> Option<String> {
    let mut node = raw.get("properties")?;
    for (i, part) in path.split('.').enumerate() {
        node = if i == 0 {
            node.get(part)?
        } else {
            node.get("value")?.get(part)?
        };
    }
    node.get("value")?.as_str().map(String::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn properties_are_found_by_dotted_path() {
        let raw: Json =
            serde_json::json!({"properties": {"oidc": {"value": {"token": {"value": "eyJ"}}}}});
        assert_eq!(property_text(&raw, "oidc.token").as_deref(), Some("eyJ"));
        assert_eq!(property_text(&raw, "oidc"), None);
        assert_eq!(property_text(&raw, "nope.token"), None);
    }
}
