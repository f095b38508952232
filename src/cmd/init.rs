use anyhow::Context;

use crate::shell::HookShell;

pub fn run(shell: HookShell) -> anyhow::Result<()> {
    let exe = std::env::current_exe().context("could not find the esc-hook binary's own path")?;
    super::print(&shell.init_script(&exe))
}
