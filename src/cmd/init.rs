use std::os::fd::AsRawFd;

use anyhow::{Context, anyhow, bail};

use crate::settings::Settings;
use crate::shell::HookShell;

/// Prints the hook for `shell`, or for the shell that runs it (else the one `$SHELL` names).
/// Read by another shell than the one asked for (`eval "$(esc-hook init bash)"` in
/// `~/.zshrc`), it prints one line saying which to use instead, in a form every shell runs,
/// rather than a script that shell would half run and then never call.
pub fn run(settings: &Settings, shell: Option<HookShell>) -> anyhow::Result<()> {
    let reader = reading_shell();
    let shell = match (shell, reader) {
        (Some(asked), Some(reader)) if asked != reader => {
            let line = reader.wrong_hook_line(asked.name());
            // No single quote or backslash in it: one plain '…' is literal in every shell.
            debug_assert!(!line.contains(['\'', '\\']));
            return super::print(&format!("echo '{line}'\n"));
        }
        (Some(shell), _) | (None, Some(shell)) => shell,
        (None, None) => {
            let Some(login) = settings.var("SHELL") else {
                bail!(
                    "SHELL is not set, so the shell is not known: name it (esc-hook init bash, zsh, fish, pwsh or nu)"
                );
            };
            let name = login.rsplit('/').next().unwrap_or_default();
            HookShell::from_program(name).ok_or_else(|| {
                anyhow!(
                    "SHELL={} is not a shell esc-hook has a hook for: name one (bash, zsh, fish, pwsh, nu)",
                    crate::ground::names::printable(login, 60)
                )
            })?
        }
    };
    let exe = std::env::current_exe().context("could not find the esc-hook binary's own path")?;
    super::print(&shell.init_script(&exe))
}

/// The shell that will run what this prints: the parent, when the output goes into a pipe (to
/// `eval "$(…)"` or `| source`). Printed to a terminal or a file, the script is for looking
/// at or saving, whoever asks.
fn reading_shell() -> Option<HookShell> {
    // SAFETY: fstat on standard output, into a zeroed stat.
    let into_pipe = unsafe {
        let mut st: libc::stat = std::mem::zeroed();
        libc::fstat(std::io::stdout().as_raw_fd(), &mut st) == 0
            && st.st_mode & libc::S_IFMT == libc::S_IFIFO
    };
    if !into_pipe {
        return None;
    }
    crate::ground::process::parent_name().and_then(|name| HookShell::from_program(&name))
}
