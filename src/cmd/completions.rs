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
    if shell == Shell::Bash {
        // clap_complete escapes the hyphen of `esc-hook` one way where it records the command
        // (`esc__hook__subcmd__init`) and another in the case labels that complete it
        // (`esc__subcmd__hook__subcmd__init`): nothing after the first word completed.
        script = script.replace("esc__subcmd__hook", "esc__hook");
    }
    if shell == Shell::Fish {
        script.push_str(&fish_positional_values());
    }
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

/// clap_complete's fish script completes options but not a positional argument's values
/// (`esc-hook init <TAB>` offered files): one line per subcommand whose positional takes a
/// fixed set of values, from the same definition.
fn fish_positional_values() -> String {
    let mut lines = String::new();
    for sub in Cli::command().get_subcommands() {
        for arg in sub.get_positionals() {
            let values: Vec<String> = arg
                .get_possible_values()
                .iter()
                .filter(|v| !v.is_hide_set())
                .map(|v| v.get_name().to_string())
                .collect();
            if !values.is_empty() {
                lines.push_str(&format!(
                    "complete -c esc-hook -n \"__fish_esc_hook_using_subcommand {}\" -f -a \"{}\"\n",
                    sub.get_name(),
                    values.join(" ")
                ));
            }
        }
    }
    lines
}

pub fn man() -> anyhow::Result<()> {
    let mut out = Vec::new();
    clap_mangen::Man::new(Cli::command()).render(&mut out)?;
    super::print(&String::from_utf8_lossy(&out))
}
