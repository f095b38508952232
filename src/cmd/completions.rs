//! `esc-hook completions` and `esc-hook man`, generated from the command line definition.

use clap::CommandFactory;
use clap_complete::Shell;

use crate::cli::{Cli, CompletionShell};

pub fn run(shell: CompletionShell) -> anyhow::Result<()> {
    let shell = match shell {
        CompletionShell::Bash => Shell::Bash,
        CompletionShell::Zsh => Shell::Zsh,
        CompletionShell::Fish => Shell::Fish,
        CompletionShell::Pwsh => Shell::PowerShell,
    };
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "esc-hook", &mut out);
    let mut script = String::from_utf8_lossy(&out).into_owned();
    if shell == Shell::PowerShell {
        // `.Where{…}` (the method call without parentheses) is the same as `.Where({…})`, which
        // every PowerShell parser accepts, the tree-sitter grammar our tests use included.
        script = script.replace(
            "$completions.Where{ $_.CompletionText -like \"$wordToComplete*\" }",
            "$completions.Where({ $_.CompletionText -like \"$wordToComplete*\" })",
        );
    }
    super::print(&script)
}

pub fn man() -> anyhow::Result<()> {
    let mut out = Vec::new();
    clap_mangen::Man::new(Cli::command()).render(&mut out)?;
    super::print(&String::from_utf8_lossy(&out))
}
