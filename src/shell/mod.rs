//! Everything that writes shell code. Quoting lives here and nowhere else: one writer per
//! shell, each proven by the hostile-values tests in real shells.

mod fish;
mod json;
mod posix;
mod pwsh;

use std::collections::BTreeMap;
use std::path::Path;

use crate::names::VarName;

/// One change to the shell's environment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    Set(VarName, String),
    Unset(VarName),
}

/// The shells (and the JSON format for editors) that `esc-hook export` can speak.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
    Pwsh,
    Json,
}

/// The shells that have a hook for `esc-hook init`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum HookShell {
    Bash,
    Zsh,
    Fish,
    Pwsh,
    /// nushell: the hook applies `export json` with load-env / hide-env.
    Nu,
}

impl Shell {
    /// The whole script for a set of changes, as one string: the caller prints it once, so a
    /// failure can never leave half a script for the shell to evaluate. Changes to the same
    /// name collapse to the last one; output is sorted by name.
    pub fn render(self, changes: &[Change]) -> String {
        let mut last: BTreeMap<&VarName, Option<&str>> = BTreeMap::new();
        for change in changes {
            match change {
                Change::Set(name, value) => last.insert(name, Some(value.as_str())),
                Change::Unset(name) => last.insert(name, None),
            };
        }
        if self == Shell::Json {
            return json::render(&last);
        }
        let mut script = String::new();
        for (name, value) in last {
            let line = match (self, value) {
                (Shell::Bash | Shell::Zsh, Some(value)) => posix::set(name, value),
                (Shell::Bash | Shell::Zsh, None) => posix::unset(name),
                (Shell::Fish, Some(value)) => fish::set(name, value),
                (Shell::Fish, None) => fish::unset(name),
                (Shell::Pwsh, Some(value)) => pwsh::set(name, value),
                (Shell::Pwsh, None) => pwsh::unset(name),
                (Shell::Json, _) => unreachable!("handled above"),
            };
            script.push_str(&line);
            script.push('\n');
        }
        script
    }
}

impl HookShell {
    /// The hook script for this shell, calling the binary at `exe`.
    pub fn init_script(self, exe: &Path) -> String {
        let exe = exe.to_string_lossy();
        let (template, quoted) = match self {
            HookShell::Bash => (
                include_str!("../../shells/esc-hook.bash"),
                posix::quote(&exe),
            ),
            HookShell::Zsh => (
                include_str!("../../shells/esc-hook.zsh"),
                posix::quote(&exe),
            ),
            HookShell::Fish => (
                include_str!("../../shells/esc-hook.fish"),
                fish::quote(&exe),
            ),
            HookShell::Pwsh => (include_str!("../../shells/esc-hook.ps1"), pwsh::quote(&exe)),
            // nushell's single-quoted strings have no escapes at all; a path holding `'` gets
            // a raw string instead.
            HookShell::Nu if !exe.contains('\'') => {
                (include_str!("../../shells/esc-hook.nu"), format!("'{exe}'"))
            }
            HookShell::Nu => (
                include_str!("../../shells/esc-hook.nu"),
                format!("r#'{exe}'#"),
            ),
        };
        template.replace("@ESC_HOOK@", &quoted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(n: &str) -> VarName {
        VarName::parse(n).unwrap()
    }

    #[test]
    fn later_changes_to_a_name_win_and_output_is_sorted() {
        let changes = [
            Change::Set(name("B"), "1".into()),
            Change::Set(name("A"), "x".into()),
            Change::Unset(name("B")),
        ];
        assert_eq!(Shell::Bash.render(&changes), "export A=x;\nunset B;\n");
        assert_eq!(Shell::Json.render(&changes), "{\"A\":\"x\",\"B\":null}\n");
    }

    #[test]
    fn each_shell_quotes_its_own_way() {
        let changes = [Change::Set(name("V"), "it's \\".into())];
        assert_eq!(Shell::Zsh.render(&changes), "export V='it'\\''s \\';\n");
        assert_eq!(Shell::Fish.render(&changes), "set -gx V 'it\\'s \\\\';\n");
        assert_eq!(Shell::Pwsh.render(&changes), "${env:V} = 'it''s \\'\n");
    }

    #[test]
    fn init_scripts_embed_the_quoted_binary_path() {
        let exe = Path::new("/opt/my tools/esc-hook");
        assert!(
            HookShell::Bash
                .init_script(exe)
                .contains("'/opt/my tools/esc-hook'")
        );
        assert!(
            HookShell::Fish
                .init_script(exe)
                .contains("'/opt/my tools/esc-hook'")
        );
        assert!(
            HookShell::Pwsh
                .init_script(exe)
                .contains("'/opt/my tools/esc-hook'")
        );
        assert!(!HookShell::Zsh.init_script(exe).contains("@ESC_HOOK@"));
    }
}
