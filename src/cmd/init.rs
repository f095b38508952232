use anyhow::{Context, anyhow};

use crate::settings::Settings;
use crate::shell::HookShell;

/// Prints the hook for `shell`, or for the shell `$SHELL` names.
pub fn run(settings: &Settings, shell: Option<HookShell>) -> anyhow::Result<()> {
    let shell = match shell {
        Some(shell) => shell,
        None => {
            let login = settings.var("SHELL").unwrap_or_default();
            let name = login.rsplit('/').next().unwrap_or_default();
            match name {
                "bash" => HookShell::Bash,
                "zsh" => HookShell::Zsh,
                "fish" => HookShell::Fish,
                "pwsh" | "pwsh-preview" => HookShell::Pwsh,
                "nu" => HookShell::Nu,
                _ => {
                    return Err(anyhow!(
                        "SHELL={} is not a shell esc-hook has a hook for: name one (bash, zsh, fish, pwsh, nu)",
                        crate::ground::names::printable(login, 60)
                    ));
                }
            }
        }
    };
    let exe = std::env::current_exe().context("could not find the esc-hook binary's own path")?;
    super::print(&shell.init_script(&exe))
}
